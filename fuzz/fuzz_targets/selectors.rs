//! `?labelSelector=` and `?fieldSelector=` strings.
#![no_main]
use lichen_apimachinery::selector::{FieldSelector, SelectableFields, Selector};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(sel) = Selector::parse(s) {
        // What it prints parses back.
        let again = Selector::parse(&sel.to_string()).expect("canonical form parses");
        assert_eq!(again.to_string(), sel.to_string());
    }
    if let Ok(f) = FieldSelector::parse(s) {
        let _ = f.bind(&SelectableFields::built_in("", "Pod"));
    }
});
