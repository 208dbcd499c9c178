use std::collections::BTreeMap;
use std::io::Read;

use super::*;

/// (kind, link target, data) by name, read back from a ustar archive.
fn read_tar(tar: &[u8]) -> BTreeMap<String, (u8, String, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at] != 0 {
        let h = &tar[at..at + 512];
        let text = |r: std::ops::Range<usize>| {
            String::from_utf8(h[r].iter().copied().take_while(|&b| b != 0).collect()).unwrap()
        };
        let size = usize::from_str_radix(text(124..136).trim(), 8).unwrap();
        assert_eq!(text(136..148).trim(), "00000000000", "mtime is pinned");
        let data = tar[at + 512..at + 512 + size].to_vec();
        out.insert(text(0..100), (h[156], text(157..257), data));
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}

fn applets() -> Vec<String> {
    parse_applets("sh\nls\n  cat\nbusybox\nsh\n\n")
}

fn busybox_image(reference: &str, platform: Platform) -> Vec<u8> {
    let layer = busybox_layer(b"\x7fELF fake busybox", &applets(), INDEX_HTML).unwrap();
    image_tar(reference, platform, busybox_config(), &layer).unwrap()
}

#[test]
fn applet_list_is_sorted_and_deduplicated() {
    assert_eq!(applets(), vec!["cat", "ls", "sh"]);
}

#[test]
fn same_input_gives_same_bytes() {
    let amd64 = Platform::from_debian("amd64").unwrap();
    let a = busybox_image("docker.io/lichen/busybox:1", amd64);
    let b = busybox_image("docker.io/lichen/busybox:1", amd64);
    assert!(a == b, "two builds differ");
    let other = busybox_image("docker.io/lichen/busybox:2", amd64);
    assert!(a != other);
}

#[test]
fn gzip_header_has_no_timestamp() {
    let layer = busybox_layer(b"x", &applets(), INDEX_HTML).unwrap();
    assert_eq!(&layer.gzip[..3], &[0x1f, 0x8b, 8]);
    assert_eq!(&layer.gzip[4..8], &[0, 0, 0, 0], "MTIME");
    assert_eq!(layer.gzip[3] & 0x08, 0, "no FNAME");
}

#[test]
fn layout_is_what_ctr_import_reads() {
    let arm = Platform::from_debian("armhf").unwrap();
    let files = read_tar(&busybox_image("docker.io/lichen/busybox:1", arm));
    assert_eq!(files["oci-layout"].2, br#"{"imageLayoutVersion":"1.0.0"}"#);
    let index: Value = serde_json::from_slice(&files["index.json"].2).unwrap();
    let m = &index["manifests"][0];
    assert_eq!(m["annotations"]["io.containerd.image.name"], "docker.io/lichen/busybox:1");
    assert_eq!(m["annotations"]["org.opencontainers.image.ref.name"], "1");
    assert_eq!(m["platform"], json!({ "architecture": "arm", "variant": "v7", "os": "linux" }));

    // Every digest names a blob that holds those bytes.
    let blob = |digest: &Value| {
        let hex = digest.as_str().unwrap().strip_prefix("sha256:").unwrap();
        let data = files[&format!("blobs/sha256/{hex}")].2.clone();
        assert_eq!(sha256_hex(&data), hex);
        data
    };
    let manifest: Value = serde_json::from_slice(&blob(&m["digest"])).unwrap();
    let config: Value = serde_json::from_slice(&blob(&manifest["config"]["digest"])).unwrap();
    assert_eq!(config["architecture"], "arm");
    assert_eq!(config["config"]["Cmd"], json!(["sh"]));
    let gz = blob(&manifest["layers"][0]["digest"]);
    let mut layer = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut layer).unwrap();
    assert_eq!(config["rootfs"]["diff_ids"][0], sha256_digest(&layer));

    let entries = read_tar(&layer);
    assert_eq!(entries["bin/busybox"].2, b"\x7fELF fake busybox");
    assert_eq!(entries["bin/sh"].0, b'2');
    assert_eq!(entries["bin/sh"].1, "busybox");
    assert_eq!(entries["bin/busybox"].0, b'0');
    assert_eq!(entries["tmp/"].0, b'5');
    assert_eq!(entries["var/www/index.html"].2, INDEX_HTML.as_bytes());
}

#[test]
fn pause_and_busybox_share_the_layer_but_not_the_id() {
    let amd64 = Platform::from_debian("amd64").unwrap();
    let layer = busybox_layer(b"x", &applets(), INDEX_HTML).unwrap();
    let pause = read_tar(&image_tar("docker.io/lichen/pause:3.9", amd64, pause_config(), &layer).unwrap());
    let busybox =
        read_tar(&image_tar("docker.io/lichen/busybox:1", amd64, busybox_config(), &layer).unwrap());
    assert!(pause.keys().any(|k| k.ends_with(&layer.digest["sha256:".len()..])));
    assert!(pause.keys().collect::<Vec<_>>() != busybox.keys().collect::<Vec<_>>());
}

#[test]
fn bad_inputs_are_named() {
    let amd64 = Platform::from_debian("amd64").unwrap();
    let layer = busybox_layer(b"x", &applets(), INDEX_HTML).unwrap();
    for bad in ["busybox", "busybox:1", "docker.io/lichen/busybox", "docker.io/x/y:1@sha256:00"] {
        let e = image_tar(bad, amd64, busybox_config(), &layer).unwrap_err().to_string();
        assert!(e.contains(bad), "{e}");
    }
    let e = busybox_layer(b"x", &["ls".to_owned()], INDEX_HTML).unwrap_err().to_string();
    assert!(e.contains("no sh"), "{e}");
    assert!(Platform::from_debian("mips").is_err());
    let long = "a".repeat(101);
    assert!(TarWriter::default().file(&long, 0o644, b"").is_err());
}
