// The other end for lichen-kubelet's SPDY tests: moby/spdystream, the
// library client-go, the kubelet and containerd use.
//
// Build it against Debian's packages (spdystream 0.2.0) and run the opt-in
// tests, from the repository root:
//
//	apt-get install golang-go golang-github-docker-spdystream-dev
//	mkdir -p /tmp/gospdy/src/interop && cp k8s/kubelet/tests/data/spdy/interop.go /tmp/gospdy/src/interop/main.go
//	GOPATH=/tmp/gospdy:/usr/share/gocode GO111MODULE=off go build -o /tmp/gospdy/interop interop
//	SPDY_GO_INTEROP=/tmp/gospdy/interop cargo test -p lichen-kubelet spdy -- --ignored
//
// Modes: "capture" prints the hex bytes of a client session (the vectors in
// spdy/frame.rs); "server ADDR" echoes every stream; "client ADDR" sends
// 3 MiB on two streams to an echo server and checks what comes back.
package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/moby/spdystream"
)

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// capture: what a spdystream client writes for an exec-like session.
func capture() {
	c, s := net.Pipe()
	got := make(chan []byte)
	go func() {
		var buf bytes.Buffer
		io.Copy(&buf, s)
		got <- buf.Bytes()
	}()
	conn, err := spdystream.NewConnection(c, false)
	must(err)
	go conn.Serve(spdystream.NoOpStreamHandler)
	h := http.Header{}
	h.Set("streamType", "error")
	e, err := conn.CreateStream(h, nil, false)
	must(err)
	must(e.Close())
	h = http.Header{}
	h.Set("streamType", "stdin")
	in, err := conn.CreateStream(h, nil, false)
	must(err)
	_, err = in.Write([]byte("hello\n"))
	must(err)
	must(in.Close())
	h = http.Header{}
	h.Set("streamType", "data")
	h.Set("port", "8080")
	h.Set("requestID", "0")
	_, err = conn.CreateStream(h, nil, false)
	must(err)
	go conn.Ping()
	time.Sleep(200 * time.Millisecond)
	c.Close()
	fmt.Println(hex.EncodeToString(<-got))
}

// server: accept streams, reply, echo each stream's bytes back, FIN.
func server(addr string) {
	l, err := net.Listen("tcp", addr)
	must(err)
	fmt.Println("listening", l.Addr())
	for {
		nc, err := l.Accept()
		must(err)
		go func() {
			conn, err := spdystream.NewConnection(nc, true)
			must(err)
			conn.Serve(func(st *spdystream.Stream) {
				st.SendReply(http.Header{"X-Echo": {st.Headers().Get("streamType")}}, false)
				go func() {
					n, err := io.Copy(st, st)
					fmt.Println("echoed", st.Headers().Get("streamType"), n, err)
					st.Close()
				}()
			})
			fmt.Println("connection done")
		}()
	}
}

// client: open two streams to an echo server, send, half-close, read back.
func client(addr string) {
	nc, err := net.Dial("tcp", addr)
	must(err)
	conn, err := spdystream.NewConnection(nc, false)
	must(err)
	go conn.Serve(spdystream.NoOpStreamHandler)
	payload := make([]byte, 3<<20)
	for i := range payload {
		payload[i] = byte(i % 251)
	}
	done := make(chan error)
	for _, t := range []string{"stdin", "data"} {
		h := http.Header{}
		h.Set("streamType", t)
		st, err := conn.CreateStream(h, nil, false)
		must(err)
		must(st.WaitTimeout(5 * time.Second))
		go func(st *spdystream.Stream) {
			go func() {
				// Writes of 32 KiB, as io.Copy in client-go would.
				for off := 0; off < len(payload); off += 32 << 10 {
					end := off + 32<<10
					if end > len(payload) {
						end = len(payload)
					}
					if _, err := st.Write(payload[off:end]); err != nil {
						done <- err
						return
					}
				}
				st.Close()
			}()
			back, err := io.ReadAll(st)
			if err == nil && !bytes.Equal(back, payload) {
				err = fmt.Errorf("echo differs: %d bytes back", len(back))
			}
			done <- err
		}(st)
	}
	for i := 0; i < 2; i++ {
		must(<-done)
	}
	d, err := conn.Ping()
	must(err)
	fmt.Println("client ok, ping", d)
	must(conn.Close())
}

func main() {
	switch os.Args[1] {
	case "capture":
		capture()
	case "server":
		server(os.Args[2])
	case "client":
		client(os.Args[2])
	}
}
