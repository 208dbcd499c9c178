//! Against moby/spdystream itself, built from
//! `tests/data/spdy/interop.go` (see there); opt-in, as CI has no Go.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::*;

fn interop_binary() -> String {
    std::env::var("SPDY_GO_INTEROP").expect("SPDY_GO_INTEROP names the built interop.go")
}

/// This side as client (the agent towards containerd's streaming server)
/// against a spdystream echo server: three streams of 3 MiB each way at
/// once, reply headers, PING, GOAWAY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs SPDY_GO_INTEROP: see tests/data/spdy/interop.go"]
async fn rust_client_go_server() {
    let mut child = tokio::process::Command::new(interop_binary())
        .args(["server", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next_line().await.expect("read").expect("a line");
    let addr = first.strip_prefix("listening ").expect("listening ADDR").to_string();
    let tcp = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let client = Connection::new(tcp, Role::Client).expect("conn");
    let payload: Vec<u8> = (0u8..=250).cycle().take(3 << 20).collect();
    let mut tasks = Vec::new();
    for t in ["stdin", "data", "error"] {
        let mut s =
            client.open_stream(Headers::from([("streamType", t)]), OpenOptions::new()).await.expect("open");
        let reply = s.wait_reply().await.expect("reply");
        assert_eq!(reply.get("x-echo"), Some(t));
        let p = payload.clone();
        tasks.push(tokio::spawn(async move {
            let (mut rx, tx) = s.into_split();
            let w = tokio::spawn(async move {
                tx.write(&p).await.expect("write");
                tx.close_write().expect("fin");
                tx
            });
            let mut back = Vec::new();
            rx.read_to_end(&mut back).await.expect("read back");
            let _tx = w.await.expect("w");
            back
        }));
    }
    for t in tasks {
        let back = t.await.expect("task");
        assert!(back == payload, "echo differs: {} bytes", back.len());
    }
    let d = client.ping().await.expect("ping");
    println!("rust client ok, ping {d:?}");
    client.goaway().expect("goaway");
    drop(client);
    let _ = child.kill().await;
}

/// A spdystream client (as kubectl, through the API server) against this
/// side as server: two streams of 3 MiB each way, written 32 KiB at a time,
/// PING, then the client's GOAWAY and close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs SPDY_GO_INTEROP: see tests/data/spdy/interop.go"]
async fn go_client_rust_server() {
    let bin = interop_binary();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let conn = Connection::new(tcp, Role::Server).expect("conn");
        let mut echoes = Vec::new();
        while let Some(s) = conn.accept_stream().await {
            s.reply(Headers::new()).expect("reply");
            echoes.push(tokio::spawn(async move {
                let (mut rx, mut tx) = s.into_split();
                let n = tokio::io::copy(&mut rx, &mut tx).await.expect("echo");
                tx.shutdown().await.expect("fin");
                (n, rx, tx)
            }));
        }
        let mut total = 0;
        for e in echoes {
            total += e.await.expect("echo task").0;
        }
        conn.closed().await;
        total
    });
    let out = tokio::process::Command::new(&bin).args(["client", &addr]).output().await.expect("run client");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    let total = tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("server ends")
        .expect("task");
    assert_eq!(total, 2 * (3 << 20));
}
