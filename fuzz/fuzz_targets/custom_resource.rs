//! A custom resource pruned, defaulted and validated against a schema,
//! both arbitrary JSON: `schema\nobject`.
#![no_main]
use serde_json::Value;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some(at) = data.iter().position(|b| *b == b'\n') else { return };
    let (Ok(schema), Ok(mut obj)) =
        (serde_json::from_slice::<Value>(&data[..at]), serde_json::from_slice::<Value>(&data[at + 1..]))
    else {
        return;
    };
    lichen_apimachinery::crd::prune(&schema, &mut obj);
    lichen_apimachinery::crd::default(&schema, &mut obj);
    let _ = lichen_apimachinery::crd::validate(&schema, &obj);
});
