//! A create body checked against a built-in kind's schema (unknown and
//! duplicate fields), as `fieldValidation=Strict` does.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (kind, body) = match data.split_first() {
        Some((k, rest)) => (usize::from(*k), rest),
        None => return,
    };
    const KINDS: [(&str, &str, &str); 4] = [
        ("", "v1", "Pod"),
        ("apps", "v1", "Deployment"),
        ("", "v1", "ConfigMap"),
        ("batch", "v1", "CronJob"),
    ];
    let (g, v, k) = KINDS[kind % KINDS.len()];
    let _ = lichen_apimachinery::openapi::strict_field_errors(g, v, k, body);
});
