//! RFC 6901 JSON pointers, as JSON patch uses them.

use serde_json::Value;

/// The reference tokens of `pointer`, unescaped; `None` when it is not a
/// pointer. The empty pointer names the whole document.
pub(crate) fn parse(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    pointer.strip_prefix('/')?.split('/').map(unescape).collect()
}

fn unescape(token: &str) -> Option<String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// An array index token: `0` or digits without a leading zero.
pub(crate) fn array_index(token: &str) -> Option<usize> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

pub(crate) fn get<'a>(mut current: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    for token in tokens {
        current = match current {
            Value::Object(map) => map.get(token)?,
            Value::Array(items) => items.get(array_index(token)?)?,
            _ => return None,
        };
    }
    Some(current)
}

pub(crate) fn get_mut<'a>(mut current: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    for token in tokens {
        current = match current {
            Value::Object(map) => map.get_mut(token)?,
            Value::Array(items) => items.get_mut(array_index(token)?)?,
            _ => return None,
        };
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 6901 section 5.
    #[test]
    fn rfc6901_examples() {
        let doc = json!({
            "foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4,
            "i\\j": 5, "k\"l": 6, " ": 7, "m~n": 8
        });
        let cases = [
            ("", doc.clone()),
            ("/foo", json!(["bar", "baz"])),
            ("/foo/0", json!("bar")),
            ("/", json!(0)),
            ("/a~1b", json!(1)),
            ("/c%d", json!(2)),
            ("/i\\j", json!(5)),
            ("/ ", json!(7)),
            ("/m~0n", json!(8)),
        ];
        for (pointer, want) in cases {
            let tokens = parse(pointer).unwrap();
            assert_eq!(get(&doc, &tokens), Some(&want), "{pointer}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_pointer() {
        assert_eq!(parse("foo"), None);
        assert_eq!(parse("/a~2"), None);
        assert_eq!(parse("/a~"), None);
    }

    #[test]
    fn array_indexes_are_canonical_decimals() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("12"), Some(12));
        for bad in ["", "01", "-1", "+1", "1e3", "-", "99999999999999999999999999"] {
            assert_eq!(array_index(bad), None, "{bad}");
        }
    }
}
