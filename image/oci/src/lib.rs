//! lichen-oci: writes OCI image-layout tarballs — the format `ctr images
//! import` reads — of a one-layer busybox image, so that a node needs no
//! registry: the image builder bakes a `pause` sandbox image and a `busybox`
//! image into the rootfs (the air-gap images), and the node tests import the
//! same images into their own containerd.
//!
//! Everything is explicit (the busybox binary's bytes, its applet list, the
//! target platform), so that an image for another architecture can be built
//! on this host, and deterministic: fixed mtimes and owners, entries in a
//! fixed order, gzip without a timestamp. The same inputs give the same
//! bytes, which keeps disk images reproducible.
//!
//! This crate only builds bytes in memory. It must not run programs, touch
//! the file system or talk to a registry.

#![forbid(unsafe_code)]

mod tar;

use std::io::Write;

use flate2::{Compression, GzBuilder};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub use crate::tar::{TarError, TarWriter};

/// `PATH` in the images' config.
pub const IMAGE_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What [`busybox_layer`] puts at `/var/www/index.html` unless told otherwise.
pub const INDEX_HTML: &str = "lichen test page\n";

/// Why an image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The reference is not `registry/repository:tag` without a digest.
    #[error(
        "image reference {reference:?}: want a fully qualified name with a tag and no digest, \
         e.g. docker.io/lichen/busybox:1"
    )]
    Reference {
        /// The reference as given.
        reference: String,
    },
    /// The applet list has no `sh`: the image could not run a shell.
    #[error("busybox applet list has no sh (got {count} applets); list them with `busybox --list`")]
    NoShell {
        /// How many applets were given.
        count: usize,
    },
    /// A path or link target does not fit in a ustar header.
    #[error("layer entry")]
    Tar(#[from] TarError),
    /// No OCI architecture name for a Debian or Rust architecture.
    #[error("no OCI architecture name for {0:?}")]
    Arch(String),
}

/// An OCI platform: architecture (GOARCH names) and variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    /// `amd64`, `arm64` or `arm`.
    pub architecture: &'static str,
    /// `v7` for armhf; none otherwise.
    pub variant: Option<&'static str>,
}

impl Platform {
    /// From a Debian architecture name (`amd64`, `arm64`, `armhf`).
    pub fn from_debian(arch: &str) -> Result<Platform, OciError> {
        match arch {
            "amd64" => Ok(Platform { architecture: "amd64", variant: None }),
            "arm64" => Ok(Platform { architecture: "arm64", variant: None }),
            "armhf" => Ok(Platform { architecture: "arm", variant: Some("v7") }),
            other => Err(OciError::Arch(other.to_owned())),
        }
    }

    /// This host's platform (what the tests run images on).
    pub fn host() -> Result<Platform, OciError> {
        match std::env::consts::ARCH {
            "x86_64" => Platform::from_debian("amd64"),
            "aarch64" => Platform::from_debian("arm64"),
            "arm" => Platform::from_debian("armhf"),
            other => Err(OciError::Arch(other.to_owned())),
        }
    }

    fn to_json(self) -> Value {
        let mut v = json!({ "architecture": self.architecture, "os": "linux" });
        if let Some(variant) = self.variant {
            v["variant"] = json!(variant);
        }
        v
    }
}

/// The applets in `busybox --list` output: trimmed, sorted, deduplicated,
/// without `busybox` itself.
pub fn parse_applets(list: &str) -> Vec<String> {
    let mut applets: Vec<String> =
        list.lines().map(str::trim).filter(|a| !a.is_empty() && *a != "busybox").map(String::from).collect();
    applets.sort_unstable();
    applets.dedup();
    applets
}

/// One compressed image layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The gzip-compressed tar (the blob).
    pub gzip: Vec<u8>,
    /// `sha256:<hex>` of the compressed blob.
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar (`rootfs.diff_ids`).
    pub diff_id: String,
}

impl Layer {
    /// Compresses `tar` without a timestamp or file name in the gzip header.
    pub fn from_tar(tar: &[u8]) -> Layer {
        let mut gz = GzBuilder::new().mtime(0).write(Vec::new(), Compression::default());
        // Writing to a Vec cannot fail.
        let gzip = gz.write_all(tar).and_then(|()| gz.finish()).unwrap_or_default();
        Layer { digest: sha256_digest(&gzip), diff_id: sha256_digest(tar), gzip }
    }
}

/// The busybox layer: `/bin/busybox` (`busybox`, the static binary's bytes)
/// with a link per applet in `/bin`, `/tmp`, `/root`, `/etc/passwd`,
/// `/etc/group` and `/var/www/index.html` holding `index_html`.
pub fn busybox_layer(busybox: &[u8], applets: &[String], index_html: &str) -> Result<Layer, OciError> {
    if !applets.iter().any(|a| a == "sh") {
        return Err(OciError::NoShell { count: applets.len() });
    }
    let mut sorted: Vec<&str> = applets.iter().map(String::as_str).filter(|a| *a != "busybox").collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut tar = TarWriter::default();
    for dir in ["bin/", "etc/", "root/", "var/", "var/www/"] {
        tar.dir(dir, if dir == "root/" { 0o700 } else { 0o755 })?;
    }
    tar.dir("tmp/", 0o1777)?;
    tar.file("bin/busybox", 0o755, busybox)?;
    for applet in sorted {
        tar.symlink(&format!("bin/{applet}"), "busybox")?;
    }
    let passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    tar.file("etc/passwd", 0o644, passwd.as_bytes())?;
    tar.file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n")?;
    tar.file("var/www/index.html", 0o644, index_html.as_bytes())?;
    Ok(Layer::from_tar(&tar.finish()))
}

/// The config of the busybox image: `Cmd: ["sh"]`.
pub fn busybox_config() -> Value {
    json!({ "Env": [IMAGE_PATH], "Cmd": ["sh"] })
}

/// The config of the pause (pod sandbox) image: it only sleeps, as long as
/// busybox's `sleep` allows (2^31-1 s, about 68 years).
pub fn pause_config() -> Value {
    json!({ "Env": [IMAGE_PATH], "Entrypoint": ["/bin/sleep", "2147483647"] })
}

/// An OCI image-layout tarball of one image: `layer` with `config` (the
/// image config's `config` object), for `platform`, named `reference` in the
/// index (`io.containerd.image.name`, and the tag as
/// `org.opencontainers.image.ref.name`).
pub fn image_tar(
    reference: &str,
    platform: Platform,
    config: Value,
    layer: &Layer,
) -> Result<Vec<u8>, OciError> {
    let tag = tag_of(reference)?;
    let mut image_config = json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": platform.architecture,
        "os": "linux",
        "config": config,
        "rootfs": { "type": "layers", "diff_ids": [layer.diff_id] },
        "history": [{ "created": "1970-01-01T00:00:00Z", "created_by": "lichen-oci" }],
    });
    if let Some(variant) = platform.variant {
        image_config["variant"] = json!(variant);
    }
    let image_config = to_vec(&image_config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256_digest(&image_config),
            "size": image_config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer.digest,
            "size": layer.gzip.len(),
        }],
    });
    let manifest = to_vec(&manifest);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha256_digest(&manifest),
            "size": manifest.len(),
            "platform": platform.to_json(),
            "annotations": {
                "io.containerd.image.name": reference,
                "org.opencontainers.image.ref.name": tag,
            },
        }],
    });
    let index = to_vec(&index);

    let mut tar = TarWriter::default();
    tar.file("oci-layout", 0o644, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    tar.file("index.json", 0o644, &index)?;
    tar.dir("blobs/", 0o755)?;
    tar.dir("blobs/sha256/", 0o755)?;
    for blob in [&image_config, &manifest, &layer.gzip] {
        tar.file(&format!("blobs/sha256/{}", sha256_hex(blob)), 0o644, blob)?;
    }
    Ok(tar.finish())
}

/// Keys come out in a fixed order (sorted, or as inserted by `json!` when
/// serde_json's `preserve_order` is on), so the bytes are stable.
fn to_vec(v: &Value) -> Vec<u8> {
    // Serializing a `Value` to a Vec cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

/// The tag of a fully qualified reference (`docker.io/lichen/busybox:1` → `1`).
pub fn tag_of(reference: &str) -> Result<&str, OciError> {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    match (reference.contains('/'), reference.contains('@'), last.split_once(':')) {
        (true, false, Some((name, tag))) if !tag.is_empty() && !name.is_empty() => Ok(tag),
        _ => Err(OciError::Reference { reference: reference.to_owned() }),
    }
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

/// `sha256:<hex>`, an OCI digest.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

#[cfg(test)]
mod tests;
