//! kubectl's protobuf request bodies: any bytes decode or fail cleanly.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = lichen_apimachinery::protobuf::decode(data);
});
