//! Entry points for cargo-fuzz targets: they take raw bytes and must never
//! panic, whatever the bytes. A target is one line:
//!
//! ```text
//! fuzz_target!(|data: &[u8]| { let _ = lichen_apimachinery::patch::fuzz::apply(data); });
//! ```

use serde_json::{Map, Value};

use super::meta::{FieldMeta, PatchMeta};
use super::{PatchError, PatchType, apply_patch};

/// Splits `data` into a patch type (the first byte), an original object and
/// a patch body (the rest, split at the first newline) and applies the patch
/// with [`FuzzMeta`]. An original that is not JSON becomes `{}`.
pub fn apply(data: &[u8]) -> Result<Value, PatchError> {
    let (kind, rest) = match data.split_first() {
        Some((first, rest)) => (patch_type(*first), rest),
        None => (PatchType::StrategicMerge, data),
    };
    let (original, patch) = match rest.iter().position(|byte| *byte == b'\n') {
        Some(at) => rest.split_at(at),
        None => (&rest[..0], rest),
    };
    let original = serde_json::from_slice(original).unwrap_or_else(|_| Value::Object(Map::new()));
    apply_patch(kind, &original, patch, &FuzzMeta)
}

fn patch_type(selector: u8) -> PatchType {
    match selector % 3 {
        0 => PatchType::Json,
        1 => PatchType::Merge,
        _ => PatchType::StrategicMerge,
    }
}

/// Patch metadata chosen by the first letter of a field's name, so that
/// fuzzed documents reach every strategy: `m…` lists merge on `name`,
/// `s…` lists are sets, `v…` merge on `name` with retainKeys, `r…` fields
/// are replaced, `k…` fields are maps. Other fields have no strategy.
pub struct FuzzMeta;

impl PatchMeta for FuzzMeta {
    fn field(&self, path: &[&str]) -> FieldMeta {
        let name = |key: &str| Some(key.to_string());
        match path.last().and_then(|field| field.chars().next()) {
            Some('m') => FieldMeta { merge: true, merge_key: name("name"), ..FieldMeta::default() },
            Some('s') => FieldMeta { merge: true, ..FieldMeta::default() },
            Some('v') => {
                FieldMeta { merge: true, retain_keys: true, merge_key: name("name"), ..FieldMeta::default() }
            }
            Some('r') => FieldMeta { replace: true, ..FieldMeta::default() },
            Some('k') => FieldMeta { is_map: true, ..FieldMeta::default() },
            _ => FieldMeta::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn splits_type_original_and_patch() {
        let got =
            apply(b"\x02{\"m\":[{\"name\":\"a\",\"x\":1}]}\n{\"m\":[{\"name\":\"a\",\"y\":2}]}").unwrap();
        assert_eq!(got, json!({"m": [{"name": "a", "x": 1, "y": 2}]}));
        let got = apply(b"\x01{\"a\":1}\n{\"b\":2}").unwrap();
        assert_eq!(got, json!({"a": 1, "b": 2}));
        let got = apply(b"\x00not json\n[{\"op\":\"add\",\"path\":\"/a\",\"value\":1}]").unwrap();
        assert_eq!(got, json!({"a": 1}));
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        for data in
            [&b""[..], b"\x00", b"\x02\n", b"\x02{}\n{\"$patch\":7}", b"\x01[]\n{}", b"\xff\xfe\n\xfd"]
        {
            let _ = apply(data);
        }
    }
}
