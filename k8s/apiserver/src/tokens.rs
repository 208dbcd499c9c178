//! Bearer tokens from a static token file, as upstream's `--token-auth-file`:
//! CSV records `token,user,uid[,"group1,group2"]`. A request with
//! `Authorization: Bearer <token>` is that user, plus `system:authenticated`.
//! Tokens are compared in constant time; the file is read once at start.
//! The chain of authenticators is in [`crate::authn`].

use std::path::{Path, PathBuf};

use axum::http::{HeaderMap, header};

use crate::authn::Identity;

#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("reading token file {}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "token file {}, line {line}: must have at least 3 columns (token, user name, user uid), found {found}",
        path.display()
    )]
    Columns { path: PathBuf, line: usize, found: usize },
    #[error("token file {}, line {line}: {problem}", path.display())]
    Csv { path: PathBuf, line: usize, problem: &'static str },
}

/// One user of the token file.
#[derive(Clone)]
struct Entry {
    token: Vec<u8>,
    identity: Identity,
}

/// The tokens the server accepts; empty without `--token-file`.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secrets.
        f.debug_struct("Tokens").field("count", &self.entries.len()).finish()
    }
}

impl Tokens {
    pub fn load(path: &Path) -> Result<Self, TokenFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| TokenFileError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text, path)
    }

    /// Parses the file's text; `path` only names it in errors. Later
    /// records win over earlier ones with the same token, as upstream.
    pub fn parse(text: &str, path: &Path) -> Result<Self, TokenFileError> {
        let records = csv_records(text).map_err(|(line, problem)| TokenFileError::Csv {
            path: path.to_path_buf(),
            line,
            problem,
        })?;
        let mut entries: Vec<Entry> = Vec::new();
        for (line, record) in records {
            if record.len() < 3 {
                return Err(TokenFileError::Columns { path: path.to_path_buf(), line, found: record.len() });
            }
            if record[0].is_empty() {
                continue;
            }
            let mut groups: Vec<String> = match record.get(3) {
                Some(g) => g.split(',').filter(|g| !g.is_empty()).map(String::from).collect(),
                None => Vec::new(),
            };
            if !groups.iter().any(|g| g == "system:authenticated") {
                groups.push("system:authenticated".into());
            }
            let identity = Identity {
                user: record[1].clone(),
                uid: record[2].clone(),
                groups,
                extra: Default::default(),
            };
            let token = record[0].as_bytes().to_vec();
            entries.retain(|e| e.token != token);
            entries.push(Entry { token, identity });
        }
        Ok(Tokens { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The user of `token`. Every entry is compared, each in constant time,
    /// so timing does not tell which (or whether a) token matched.
    pub fn authenticate(&self, token: &str) -> Option<Identity> {
        let mut found = None;
        for e in &self.entries {
            if constant_time_eq(&e.token, token.as_bytes()) {
                found = Some(e.identity.clone());
            }
        }
        found
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The token of `Authorization: Bearer <token>`, as upstream's bearer token
/// authenticator reads it; `None` without one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let mut parts = value.splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A record and the line it starts on.
type Record = (usize, Vec<String>);

/// Records of `text`, as Go's `encoding/csv` reads them: quoted fields may
/// hold commas, `""` and newlines; blank lines are skipped. An error is the
/// line and what is wrong there.
fn csv_records(text: &str) -> Result<Vec<Record>, (usize, &'static str)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        let start = line;
        let mut record = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut at_field_start = true;
        loop {
            let Some(c) = chars.next() else {
                if quoted {
                    return Err((start, "extraneous or missing \" in quoted-field"));
                }
                record.push(std::mem::take(&mut field));
                break;
            };
            if quoted {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => {
                        quoted = false;
                        if !matches!(chars.peek(), None | Some(',' | '\n' | '\r')) {
                            return Err((line, "extraneous or missing \" in quoted-field"));
                        }
                    }
                    '\n' => {
                        line += 1;
                        field.push('\n');
                    }
                    c => field.push(c),
                }
                continue;
            }
            match c {
                '"' if at_field_start => {
                    quoted = true;
                    at_field_start = false;
                }
                '"' => return Err((line, "bare \" in non-quoted-field")),
                ',' => {
                    record.push(std::mem::take(&mut field));
                    at_field_start = true;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    line += 1;
                    record.push(std::mem::take(&mut field));
                    break;
                }
                c => {
                    field.push(c);
                    at_field_start = false;
                }
            }
        }
        let blank = record.len() == 1 && record[0].is_empty();
        if !blank {
            out.push((start, record));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn parse(text: &str) -> Result<Tokens, TokenFileError> {
        Tokens::parse(text, Path::new("tokens.csv"))
    }

    #[test]
    fn reads_upstreams_format() {
        let t = parse("s3cret,alice,u1,\"dev,ops\"\n\nother,bob,u2\r\n").unwrap();
        let alice = t.authenticate("s3cret").unwrap();
        assert_eq!(alice.user, "alice");
        assert_eq!(alice.uid, "u1");
        assert_eq!(alice.groups, ["dev", "ops", "system:authenticated"]);
        let bob = t.authenticate("other").unwrap();
        assert_eq!(
            (bob.user.as_str(), bob.groups.as_slice()),
            ("bob", &["system:authenticated".to_string()][..])
        );
        assert!(t.authenticate("s3cre").is_none());
        assert!(t.authenticate("").is_none());
    }

    #[test]
    fn later_records_win_and_empty_tokens_are_skipped() {
        let t = parse("tok,first,1\ntok,second,2\n,nobody,3\n").unwrap();
        assert_eq!(t.authenticate("tok").unwrap().user, "second");
        assert!(t.authenticate("").is_none());
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("a,b,c\ntoken,user\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "token file tokens.csv, line 2: must have at least 3 columns (token, user name, user uid), found 2"
        );
        let e = parse("a,b\"c,d\n").unwrap_err();
        assert!(e.to_string().contains("line 1: bare \""), "{e}");
        let e = parse("a,b,\"c\n").unwrap_err();
        assert!(e.to_string().contains("missing \""), "{e}");
    }

    #[test]
    fn quoted_fields_keep_commas_and_quotes() {
        let t = parse("\"t,1\",\"say \"\"hi\"\"\",u,\"a,b\"\n").unwrap();
        let id = t.authenticate("t,1").unwrap();
        assert_eq!(id.user, "say \"hi\"");
        assert_eq!(id.groups, ["a", "b", "system:authenticated"]);
    }

    #[test]
    fn bearer_header() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer  abc"));
        assert_eq!(bearer(&h), None, "an empty token (double space) is no token");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
    }
}
