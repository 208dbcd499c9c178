//! JSON, merge and strategic merge patches of arbitrary documents: first
//! byte picks the type, then `original\npatch`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = lichen_apimachinery::patch::fuzz::apply(data);
});
