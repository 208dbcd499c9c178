//! A kubeconfig written by hand: a fixed shape, every string double-quoted and
//! escaped, so no YAML library is needed and no value can change the structure.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// What goes into a kubeconfig with one cluster, one user and one context.
pub(crate) struct Kubeconfig<'a> {
    pub(crate) server: &'a str,
    pub(crate) cluster: &'a str,
    pub(crate) user: &'a str,
    pub(crate) ca_pem: &'a str,
    pub(crate) cert_pem: &'a str,
    pub(crate) key_pem: &'a str,
}

impl Kubeconfig<'_> {
    /// The YAML text. The context is named after the cluster and is current.
    pub(crate) fn render(&self) -> String {
        let cluster = quote(self.cluster);
        let user = quote(self.user);
        let ca = STANDARD.encode(self.ca_pem);
        let cert = STANDARD.encode(self.cert_pem);
        let key = STANDARD.encode(self.key_pem);
        let server = quote(self.server);
        format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: {cluster}\n\
             \x20 cluster:\n\
             \x20   certificate-authority-data: {ca}\n\
             \x20   server: {server}\n\
             contexts:\n\
             - name: {cluster}\n\
             \x20 context:\n\
             \x20   cluster: {cluster}\n\
             \x20   user: {user}\n\
             current-context: {cluster}\n\
             preferences: {{}}\n\
             users:\n\
             - name: {user}\n\
             \x20 user:\n\
             \x20   client-certificate-data: {cert}\n\
             \x20   client-key-data: {key}\n"
        )
    }
}

/// A YAML double-quoted scalar holding exactly `s`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            // Printable ASCII and ordinary non-ASCII letters go as they are; control
            // characters, YAML's extra line breaks (U+0085, U+2028, U+2029) and the
            // BOM are escaped.
            ' '..='~' => out.push(c),
            c if !c.is_control() && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => out.push(c),
            c => {
                let code = u32::from(c);
                if code <= 0xffff {
                    let _ = write!(out, "\\u{code:04x}");
                } else {
                    let _ = write!(out, "\\U{code:08x}");
                }
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quotes_the_awkward_ones() {
        assert_eq!(quote("a"), "\"a\"");
        assert_eq!(quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\u000ad\"");
        assert_eq!(quote("#: - {}"), "\"#: - {}\"");
    }

    proptest! {
        #[test]
        fn any_string_roundtrips_through_a_yaml_parser(s in "\\PC*|[\\x00-\\x1f\"\\\\:#\u{85}\u{2028}]{0,8}") {
            let doc = format!("v: {}\n", quote(&s));
            let parsed: std::collections::BTreeMap<String, String> = serde_saphyr::from_str(&doc).unwrap();
            prop_assert_eq!(&parsed["v"], &s);
        }
    }
}
