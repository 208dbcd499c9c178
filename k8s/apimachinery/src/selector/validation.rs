//! Label key and value rules, with upstream's messages
//! (`k8s.io/apimachinery/pkg/api/validate/content`). Each function returns
//! the list of problems; an empty list means valid.

const LABEL_KEY_MAX_LENGTH: usize = 63;
const LABEL_VALUE_MAX_LENGTH: usize = 63;
const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;

const LABEL_KEY_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_KEY_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', \
     and must start and end with an alphanumeric character";
const LABEL_KEY_EXAMPLES: [&str; 3] = ["MyName", "my.name", "123-abc"];

const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, \
     '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_EXAMPLES: [&str; 3] = ["MyValue", "my_value", "12345"];

const DNS1123_SUBDOMAIN_FMT: &str = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
     characters, '-' or '.', and must start and end with an alphanumeric character";

/// Problems with a label key (upstream's qualified name): an optional DNS
/// subdomain prefix and `/`, then a name of at most 63 characters.
pub fn label_key_errors(key: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push(format!("prefix part {}", empty_error()));
            } else {
                errors
                    .extend(dns1123_subdomain_errors(prefix).into_iter().map(|e| format!("prefix part {e}")));
            }
            *name
        }
        _ => {
            errors.push(format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(LABEL_KEY_ERR, LABEL_KEY_FMT, &LABEL_KEY_EXAMPLES)
            ));
            return errors;
        }
    };
    if name.is_empty() {
        errors.push(format!("name part {}", empty_error()));
    } else if name.len() > LABEL_KEY_MAX_LENGTH {
        errors.push(format!("name part {}", max_len_error(LABEL_KEY_MAX_LENGTH)));
    }
    if !is_label_name(name) {
        errors.push(format!("name part {}", regex_error(LABEL_KEY_ERR, LABEL_KEY_FMT, &LABEL_KEY_EXAMPLES)));
    }
    errors
}

/// Problems with a label value: empty, or at most 63 characters of
/// alphanumerics, `-`, `_` and `.`, starting and ending alphanumeric.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errors.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !value.is_empty() && !is_label_name(value) {
        errors.push(regex_error(LABEL_VALUE_ERR, LABEL_VALUE_FMT, &LABEL_VALUE_EXAMPLES));
    }
    errors
}

/// Problems with a lowercase RFC 1123 subdomain such as `example.com`.
pub fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errors.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !value.split('.').all(is_dns1123_label) {
        errors.push(regex_error(DNS1123_SUBDOMAIN_ERR, DNS1123_SUBDOMAIN_FMT, &["example.com"]));
    }
    errors
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, anchored.
fn is_label_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, anchored.
fn is_dns1123_label(s: &str) -> bool {
    let lower_alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            lower_alnum(first) && lower_alnum(last) && bytes.iter().all(|b| lower_alnum(b) || *b == b'-')
        }
        _ => false,
    }
}

fn empty_error() -> &'static str {
    "must be non-empty"
}

fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} bytes")
}

/// Upstream's `RegexError`, including its doubled spaces between examples.
fn regex_error(message: &str, regex: &str, examples: &[&str]) -> String {
    let mut out = format!("{message} (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{example}', "));
    }
    out.push_str(&format!("regex used for validation is '{regex}')"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME_PART_REGEX: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must \
         start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used \
         for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

    #[test]
    fn good_keys_pass() {
        for key in ["a", "app", "A.b-c_d", "example.com/name", "k8s.io/x", "a1/b"] {
            assert!(label_key_errors(key).is_empty(), "{key}");
        }
    }

    #[test]
    fn bad_name_part_uses_upstream_text() {
        assert_eq!(label_key_errors("app:"), vec![NAME_PART_REGEX.to_owned()]);
        assert_eq!(label_key_errors("-a"), vec![NAME_PART_REGEX.to_owned()]);
    }

    #[test]
    fn empty_and_long_names_say_so() {
        assert_eq!(
            label_key_errors(""),
            vec!["name part must be non-empty".to_owned(), NAME_PART_REGEX.to_owned()]
        );
        let long = "a".repeat(64);
        assert_eq!(label_key_errors(&long), vec!["name part must be no more than 63 bytes".to_owned()]);
        assert!(label_key_errors(&"a".repeat(63)).is_empty());
    }

    #[test]
    fn bad_prefix_is_named() {
        let errors = label_key_errors("app.kubernetes_io/name");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("prefix part a lowercase RFC 1123 subdomain must consist of"),
            "{errors:?}"
        );
        assert!(errors[0].ends_with(r"(e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"));
        assert_eq!(label_key_errors("/a"), vec!["prefix part must be non-empty".to_owned()]);
    }

    #[test]
    fn two_slashes_is_one_error() {
        let errors = label_key_errors("a/b/c");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("a valid label key must consist of"));
        assert!(
            errors[0].ends_with("with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")
        );
    }

    #[test]
    fn values() {
        for value in ["", "a", "my_value", "1.2-3"] {
            assert!(label_value_errors(value).is_empty(), "{value}");
        }
        assert_eq!(
            label_value_errors("-bad"),
            vec![
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', \
                 and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or \
                 '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
                    .to_owned()
            ]
        );
        assert_eq!(label_value_errors(&"v".repeat(64)), vec!["must be no more than 63 bytes".to_owned()]);
    }
}
