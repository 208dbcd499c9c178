//! Serving v3 documents: the bytes and their hash, and the `/openapi/v3`
//! index that points at each group-version with `?hash=`. The server answers
//! a GV request whose `hash` differs with a 301 to the current URL, sends
//! `ETag: "<hash>"`, and answers a matching `If-None-Match` with 304.

use std::fmt::Write;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

/// A document ready to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerializedDocument {
    /// The JSON body.
    pub bytes: Vec<u8>,
    /// [`v3_hash`] of `bytes`.
    pub hash: String,
}

/// Serialize a document once and hash exactly the bytes that will be sent.
pub fn serialize_v3(document: &Value) -> SerializedDocument {
    let bytes = document.to_string().into_bytes();
    let hash = v3_hash(&bytes);
    SerializedDocument { bytes, hash }
}

/// Upstream's document hash: the SHA-512 of the bytes, uppercase hex.
pub fn v3_hash(bytes: &[u8]) -> String {
    Sha512::digest(bytes).iter().fold(String::with_capacity(128), |mut out, byte| {
        let _ = write!(out, "{byte:02X}");
        out
    })
}

/// The key of a group-version in the index, and the path after
/// `/openapi/v3/`: `api/v1`, `apis/apps/v1`.
pub fn v3_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// The URL a client should fetch for a group-version's document.
pub fn v3_url(group: &str, version: &str, hash: &str) -> String {
    format!("/openapi/v3/{}?hash={hash}", v3_path(group, version))
}

/// One entry of the index: `("apis/apps/v1", {"serverRelativeURL": "/openapi/v3/apis/apps/v1?hash=…"})`.
pub fn v3_index_entry(group: &str, version: &str, hash: &str) -> (String, Value) {
    (v3_path(group, version), json!({"serverRelativeURL": v3_url(group, version, hash)}))
}

/// The `/openapi/v3` body: `{"paths": {<entry>...}}`.
pub fn v3_index(entries: impl IntoIterator<Item = (String, Value)>) -> Value {
    json!({"paths": entries.into_iter().collect::<Map<String, Value>>()})
}

/// The `ETag` header value for a hash: the hash in double quotes.
pub fn etag(hash: &str) -> String {
    format!("\"{hash}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_uppercase_hex_sha512() {
        // SHA-512 of the empty string.
        assert_eq!(
            v3_hash(b""),
            "CF83E1357EEFB8BDF1542850D66D8007D620E4050B5715DC83F4A921D36CE9CE47D0D13C5D85F2B0FF8318D2877EEC2F63B931BD47417A81A538327AF927DA3E"
        );
    }

    #[test]
    fn index_entries_point_at_hashed_urls() {
        let index = v3_index([v3_index_entry("", "v1", "AB"), v3_index_entry("apps", "v1", "CD")]);
        assert_eq!(
            index,
            json!({"paths": {
                "api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=AB"},
                "apis/apps/v1": {"serverRelativeURL": "/openapi/v3/apis/apps/v1?hash=CD"},
            }})
        );
        assert_eq!(etag("AB"), "\"AB\"");
    }

    #[test]
    fn serialized_documents_hash_their_bytes() {
        let doc = serialize_v3(&json!({"openapi": "3.0.0"}));
        assert_eq!(doc.bytes, br#"{"openapi":"3.0.0"}"#);
        assert_eq!(doc.hash, v3_hash(&doc.bytes));
    }
}
