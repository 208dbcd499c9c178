//! The `?labelSelector=` grammar, lexed and parsed the way upstream's
//! `labels.Parse` does, so the same inputs fail with the same messages:
//!
//! ```text
//! selector    ::= requirement | requirement "," selector
//! requirement ::= ["!"] KEY [ set-based | exact-match ]
//! set-based   ::= ("in" | "notin") "(" values ")"
//! exact-match ::= ("=" | "==" | "!=" | ">" | "<") VALUE
//! ```

use std::collections::BTreeSet;

use crate::selector::field_error::{FieldErrors, FieldPath};
use crate::selector::labels::requirement::{Operator, Requirement, key_error};

/// Why a label selector string was rejected; `Display` is upstream's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A requirement was malformed or invalid. Upstream prefixes the cause
    /// into one message, so this variant prints it rather than chaining it.
    #[error("unable to parse requirement: {0}")]
    Requirement(RequirementError),
    #[error("found '{found}', expected: {expected}")]
    Unexpected { found: String, expected: &'static str },
}

/// What was wrong inside one requirement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequirementError {
    #[error("found '{found}', expected: {expected}")]
    Unexpected { found: String, expected: &'static str },
    /// Upstream's message has no comma here.
    #[error("found '{found}' expected: '('")]
    ExpectedOpenParen { found: String },
    #[error("{0}")]
    Invalid(FieldErrors),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn literal_token(s: &str) -> Option<Token> {
    Some(match s {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "in" => Token::In,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "notin" => Token::NotIn,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits on whitespace and the special symbols. A NUL byte ends a token
/// (and, where a token would start, the input), as upstream's lexer treats
/// its `0` end marker.
struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn read(&mut self) -> u8 {
        match self.src.as_bytes().get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    /// Token boundaries fall on ASCII bytes, so the slice is valid UTF-8.
    fn slice(&self, start: usize, end: usize) -> String {
        self.src.get(start..end).unwrap_or_default().to_owned()
    }

    fn lex(&mut self) -> (Token, String) {
        let mut ch = self.read();
        while is_whitespace(ch) {
            ch = self.read();
        }
        if ch == 0 {
            return (Token::EndOfString, String::new());
        }
        self.unread();
        if is_special(ch) { self.special_symbol() } else { self.identifier_or_keyword() }
    }

    fn identifier_or_keyword(&mut self) -> (Token, String) {
        let start = self.pos;
        let mut end = start;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special(ch) || is_whitespace(ch) {
                self.unread();
                break;
            }
            end = self.pos;
        }
        let word = self.slice(start, end);
        match literal_token(&word) {
            Some(token) => (token, word),
            None => (Token::Identifier, word),
        }
    }

    /// The longest run of special symbols that is still a token: `!=`, not
    /// `!` then `=`.
    fn special_symbol(&mut self) -> (Token, String) {
        let start = self.pos;
        let mut last: Option<(Token, usize)> = None;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if !is_special(ch) {
                self.unread();
                break;
            }
            match literal_token(&self.slice(start, self.pos)) {
                Some(token) => last = Some((token, self.pos)),
                None if last.is_some() => {
                    self.unread();
                    break;
                }
                None => {}
            }
        }
        match last {
            Some((token, end)) => (token, self.slice(start, end)),
            None => {
                (Token::Error, format!("error expected: keyword found '{}'", self.slice(start, self.pos)))
            }
        }
    }
}

/// In a value position `in` and `notin` are plain words.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser {
    items: Vec<(Token, String)>,
    position: usize,
}

impl Parser {
    fn new(selector: &str) -> Self {
        let mut lexer = Lexer { src: selector, pos: 0 };
        let mut items = Vec::new();
        loop {
            let item = lexer.lex();
            let end = item.0 == Token::EndOfString;
            items.push(item);
            if end {
                break;
            }
        }
        Self { items, position: 0 }
    }

    fn lookahead(&self, context: Context) -> (Token, String) {
        let (token, literal) =
            self.items.get(self.position).cloned().unwrap_or((Token::EndOfString, String::new()));
        match token {
            Token::In | Token::NotIn if context == Context::Values => (Token::Identifier, literal),
            _ => (token, literal),
        }
    }

    fn consume(&mut self, context: Context) -> (Token, String) {
        let item = self.lookahead(context);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, ParseError> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    requirements.push(self.requirement().map_err(ParseError::Requirement)?);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (next, literal) = self.lookahead(Context::Values);
                            if next != Token::Identifier && next != Token::DoesNotExist {
                                return Err(ParseError::Unexpected {
                                    found: literal,
                                    expected: "identifier after ','",
                                });
                            }
                        }
                        _ => {
                            return Err(ParseError::Unexpected {
                                found: literal,
                                expected: "',' or 'end of string'",
                            });
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(ParseError::Unexpected {
                        found: literal,
                        expected: "!, identifier, or 'end of string'",
                    });
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, RequirementError> {
        let (key, inferred) = self.key_and_inferred_operator()?;
        if let Some(operator) = inferred {
            return Requirement::new_at(&FieldPath::root(), key, operator, Vec::new())
                .map_err(RequirementError::Invalid);
        }
        let operator = self.operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.value_set()?,
            _ => self.exact_value()?,
        };
        Requirement::new_at(&FieldPath::root(), key, operator, values.into_iter().collect())
            .map_err(RequirementError::Invalid)
    }

    /// The key, and `Exists`/`DoesNotExist` when no operator follows.
    /// `!key` stays `DoesNotExist` even if something does follow; the
    /// caller then reports that something.
    fn key_and_inferred_operator(&mut self) -> Result<(String, Option<Operator>), RequirementError> {
        let mut negated = false;
        let (mut token, mut literal) = self.consume(Context::Values);
        if token == Token::DoesNotExist {
            negated = true;
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(RequirementError::Unexpected { found: literal, expected: "identifier" });
        }
        if let Some(error) = key_error(&literal, &FieldPath::root()) {
            return Err(RequirementError::Invalid(error.into()));
        }
        if negated {
            return Ok((literal, Some(Operator::DoesNotExist)));
        }
        let (next, _) = self.lookahead(Context::Values);
        let bare = matches!(next, Token::EndOfString | Token::Comma);
        Ok((literal, bare.then_some(Operator::Exists)))
    }

    fn operator(&mut self) -> Result<Operator, RequirementError> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        Ok(match token {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(RequirementError::Unexpected {
                    found: literal,
                    expected: "in, notin, =, ==, !=, gt, lt",
                });
            }
        })
    }

    /// `(a,b)`; `()` is the set holding the empty value.
    fn value_set(&mut self) -> Result<BTreeSet<String>, RequirementError> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(RequirementError::ExpectedOpenParen { found: literal });
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let set = self.identifier_list()?;
                let (token, _) = self.consume(Context::Values);
                if token != Token::ClosedPar {
                    return Err(RequirementError::Unexpected { found: literal, expected: "')'" });
                }
                Ok(set)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => Err(RequirementError::Unexpected { found: literal, expected: "',', ')' or identifier" }),
        }
    }

    /// Comma-separated, possibly empty values, up to (not past) `)`.
    fn identifier_list(&mut self) -> Result<BTreeSet<String>, RequirementError> {
        let mut set = BTreeSet::new();
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    set.insert(literal);
                    let (next, literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set),
                        _ => {
                            return Err(RequirementError::Unexpected {
                                found: literal,
                                expected: "',' or ')'",
                            });
                        }
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    let (next, _) = self.lookahead(Context::Values);
                    if next == Token::ClosedPar {
                        set.insert(String::new());
                        return Ok(set);
                    }
                    if next == Token::Comma {
                        self.consume(Context::Values);
                        set.insert(String::new());
                    }
                }
                _ => {
                    return Err(RequirementError::Unexpected {
                        found: literal,
                        expected: "',', or identifier",
                    });
                }
            }
        }
    }

    /// The one value after `=`, `==`, `!=`, `>`, `<`; nothing means `""`.
    fn exact_value(&mut self) -> Result<BTreeSet<String>, RequirementError> {
        let (token, _) = self.lookahead(Context::Values);
        if matches!(token, Token::EndOfString | Token::Comma) {
            return Ok(BTreeSet::from([String::new()]));
        }
        let (token, literal) = self.consume(Context::Values);
        if token == Token::Identifier {
            Ok(BTreeSet::from([literal]))
        } else {
            Err(RequirementError::Unexpected { found: literal, expected: "identifier" })
        }
    }
}

/// The requirements of `selector` in the order written; the caller sorts.
pub(crate) fn parse(selector: &str) -> Result<Vec<Requirement>, ParseError> {
    Parser::new(selector).parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex_all(s: &str) -> Vec<(Token, String)> {
        Parser::new(s).items
    }

    #[test]
    fn lexer_takes_longest_symbol() {
        let tokens: Vec<Token> = lex_all("a!=b,c==d,!e,f>1,(g)").into_iter().map(|(t, _)| t).collect();
        use Token::*;
        assert_eq!(
            tokens,
            vec![
                Identifier,
                NotEquals,
                Identifier,
                Comma,
                Identifier,
                DoubleEquals,
                Identifier,
                Comma,
                DoesNotExist,
                Identifier,
                Comma,
                Identifier,
                GreaterThan,
                Identifier,
                Comma,
                OpenPar,
                Identifier,
                ClosedPar,
                EndOfString
            ]
        );
        assert_eq!(lex_all("=(")[0].0, Token::Equals);
        assert_eq!(lex_all("a\0b")[0], (Token::Identifier, "a".to_owned()));
    }

    #[test]
    fn keywords_are_values_in_value_position() {
        let reqs = parse("in in (in,notin),notin=in").expect("parses");
        assert_eq!(reqs[0].key(), "in");
        assert_eq!(reqs[0].values(), ["in".to_owned(), "notin".to_owned()]);
        assert_eq!(reqs[1].key(), "notin");
        assert_eq!(reqs[1].values(), ["in".to_owned()]);
    }

    #[test]
    fn empty_values_follow_upstream() {
        let values = |s: &str| parse(s).map(|r| r[0].values().to_vec());
        assert_eq!(values("x in ()"), Ok(vec![String::new()]));
        assert_eq!(values("x in (,a)"), Ok(vec![String::new(), "a".into()]));
        assert_eq!(values("x in (a,)"), Ok(vec![String::new(), "a".into()]));
        assert_eq!(values("x in (b,a,b)"), Ok(vec!["a".into(), "b".into()]));
        assert_eq!(values("x="), Ok(vec![String::new()]));
        assert_eq!(
            values("x in (a,,)").map_err(|e| e.to_string()),
            Err("unable to parse requirement: found ')', expected: ',', or identifier".to_owned())
        );
    }
}
