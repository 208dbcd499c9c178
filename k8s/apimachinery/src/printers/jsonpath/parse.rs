//! The JSONPath template parser, following client-go's
//! `util/jsonpath/parser.go` rule for rule: `{...}` actions in text, fields
//! with `\`-escapes, `[n]`, slices, `[*]`, unions, `['key']`, `..`, and
//! `[?(...)]` filters.

/// One node of a parsed template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// The nodes of one `{...}` action, applied in sequence.
    List(Vec<Node>),
    Text(String),
    Field(String),
    Wildcard,
    Recursive,
    Array([Param; 3]),
    Union(Vec<Vec<Node>>),
    Filter {
        left: Vec<Node>,
        op: String,
        right: Vec<Node>,
    },
    Int(i64),
    Float(f64),
    Bool(bool),
    Identifier(String),
}

/// One of start, end and step of an array slice.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Param {
    pub(crate) value: i64,
    pub(crate) known: bool,
    /// The end of `[n]`, derived as `n + 1`.
    pub(crate) derived: bool,
}

type Result<T> = std::result::Result<T, String>;

/// Parses a whole template (`{.spec.replicas}`, `name: {.metadata.name}`).
pub(crate) fn parse(template: &str) -> Result<Vec<Node>> {
    Parser { input: template, pos: 0, start: 0, width: 0 }.parse_text()
}

/// Parses the inside of one action, as upstream's `parseAction`.
fn parse_action(text: &str) -> Result<Vec<Node>> {
    match parse(&format!("{{{text}}}"))?.into_iter().next() {
        Some(Node::List(nodes)) => Ok(nodes),
        _ => Ok(Vec::new()),
    }
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    width: usize,
}

fn is_terminator(r: Option<char>) -> bool {
    matches!(r, None | Some(' ' | '\t' | '\r' | '\n' | '.' | ',' | '[' | ']' | '$' | '@' | '{' | '}'))
}

fn is_alphanumeric(r: char) -> bool {
    r == '_' || r.is_alphanumeric()
}

impl<'a> Parser<'a> {
    fn next(&mut self) -> Option<char> {
        let c = self.input[self.pos..].chars().next();
        self.width = c.map_or(0, char::len_utf8);
        self.pos += self.width;
        c
    }

    fn backup(&mut self) {
        self.pos -= self.width;
    }

    fn peek(&mut self) -> Option<char> {
        let c = self.next();
        self.backup();
        c
    }

    fn consume(&mut self) -> &'a str {
        let text = &self.input[self.start..self.pos];
        self.start = self.pos;
        text
    }

    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    fn parse_text(&mut self) -> Result<Vec<Node>> {
        let mut root = Vec::new();
        loop {
            match self.rest().find('{') {
                None => {
                    self.pos = self.input.len();
                    if self.pos > self.start {
                        root.push(Node::Text(self.consume().to_string()));
                    }
                    return Ok(root);
                }
                Some(i) => {
                    self.pos += i;
                    if self.pos > self.start {
                        root.push(Node::Text(self.consume().to_string()));
                    }
                    self.pos += 1;
                    self.consume();
                    root.push(Node::List(self.parse_inside_action()?));
                }
            }
        }
    }

    fn parse_inside_action(&mut self) -> Result<Vec<Node>> {
        let mut cur = Vec::new();
        loop {
            let rest = self.rest();
            if rest.starts_with('}') {
                self.pos += 1;
                self.consume();
                return Ok(cur);
            }
            if rest.starts_with("[?(") {
                self.parse_filter(&mut cur)?;
                continue;
            }
            if rest.starts_with("..") {
                self.parse_recursive(&mut cur)?;
                continue;
            }
            match self.next() {
                None | Some('\r' | '\n') => return Err("unclosed action".to_string()),
                Some(' ' | '@' | '$') => {
                    self.consume();
                }
                Some('[') => self.parse_array(&mut cur)?,
                Some(q @ ('"' | '\'')) => self.parse_quote(&mut cur, q)?,
                Some('.') => self.parse_field(&mut cur),
                Some(c) if c == '+' || c == '-' || c.is_numeric() => {
                    self.backup();
                    self.parse_number(&mut cur)?;
                }
                Some(c) if is_alphanumeric(c) => {
                    self.backup();
                    self.parse_identifier(&mut cur);
                }
                Some(c) => return Err(format!("unrecognized character in action: {c:?}")),
            }
        }
    }

    fn parse_identifier(&mut self, cur: &mut Vec<Node>) {
        while !is_terminator(self.next()) {}
        self.backup();
        let value = self.consume();
        cur.push(match value {
            "true" => Node::Bool(true),
            "false" => Node::Bool(false),
            other => Node::Identifier(other.to_string()),
        });
    }

    fn parse_recursive(&mut self, cur: &mut Vec<Node>) -> Result<()> {
        if cur.last() == Some(&Node::Recursive) {
            return Err("invalid multiple recursive descent".to_string());
        }
        self.pos += 2;
        self.consume();
        cur.push(Node::Recursive);
        if self.peek().is_some_and(is_alphanumeric) {
            self.parse_field(cur);
        }
        Ok(())
    }

    fn parse_number(&mut self, cur: &mut Vec<Node>) -> Result<()> {
        if matches!(self.peek(), Some('+' | '-')) {
            self.next();
        }
        while matches!(self.next(), Some(c) if c == '.' || c.is_numeric()) {}
        self.backup();
        let value = self.consume();
        if let Ok(i) = value.parse::<i64>() {
            cur.push(Node::Int(i));
        } else if let Ok(f) = value.parse::<f64>() {
            cur.push(Node::Float(f));
        } else {
            return Err(format!("cannot parse number {value}"));
        }
        Ok(())
    }

    fn parse_array(&mut self, cur: &mut Vec<Node>) -> Result<()> {
        loop {
            match self.next() {
                None | Some('\n') => return Err("unterminated array".to_string()),
                Some(']') => break,
                Some(_) => {}
            }
        }
        let raw = self.consume();
        let mut text = &raw[1..raw.len() - 1];
        if text == "*" {
            text = ":";
        }
        let parts: Vec<&str> = text.split(',').collect();
        if parts.len() > 1 {
            let union = parts
                .iter()
                .map(|p| parse_action(&format!("[{}]", p.trim_matches(' '))))
                .collect::<Result<_>>()?;
            cur.push(Node::Union(union));
            return Ok(());
        }
        if let Some(key) =
            text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')).filter(|k| !k.contains('\''))
        {
            cur.extend(parse_action(&format!(".{key}"))?);
            return Ok(());
        }
        cur.push(Node::Array(slice_params(text)?));
        Ok(())
    }

    fn parse_filter(&mut self, cur: &mut Vec<Node>) -> Result<()> {
        self.pos += 3;
        self.consume();
        let (mut begin, mut end, mut pair) = (false, false, '"');
        loop {
            match self.next() {
                None | Some('\n') => return Err("unterminated filter".to_string()),
                Some(q @ ('"' | '\'')) => {
                    if !begin {
                        begin = true;
                        pair = q;
                    } else if self.input.as_bytes()[self.pos - 2] != b'\\' && q == pair {
                        end = true;
                    }
                }
                Some(')') if begin == end => break,
                Some(_) => {}
            }
        }
        if self.next() != Some(']') {
            return Err("unclosed array expect ]".to_string());
        }
        let raw = self.consume();
        let text = &raw[..raw.len() - 2];
        cur.push(match split_comparison(text) {
            None => Node::Filter { left: parse_action(text)?, op: "exists".to_string(), right: Vec::new() },
            Some((left, op, right)) => {
                Node::Filter { left: parse_action(left)?, op: op.to_string(), right: parse_action(right)? }
            }
        });
        Ok(())
    }

    fn parse_quote(&mut self, cur: &mut Vec<Node>, quote: char) -> Result<()> {
        loop {
            match self.next() {
                None | Some('\n') => return Err("unterminated quoted string".to_string()),
                Some(c) if c == quote && self.input.as_bytes()[self.pos - 2] != b'\\' => break,
                Some(_) => {}
            }
        }
        let value = self.consume();
        cur.push(Node::Text(unquote(value).ok_or_else(|| format!("unquote string {value} error"))?));
        Ok(())
    }

    fn parse_field(&mut self, cur: &mut Vec<Node>) {
        self.consume();
        while self.advance() {}
        let value = self.consume();
        cur.push(if value == "*" { Node::Wildcard } else { Node::Field(value.replace('\\', "")) });
    }

    /// Scans one character of a field name; `\` escapes the next one.
    fn advance(&mut self) -> bool {
        match self.next() {
            Some('\\') => {
                self.next();
                true
            }
            r if is_terminator(r) => {
                self.backup();
                false
            }
            _ => true,
        }
    }
}

/// Upstream's `^([^!<>=]+)([!<>=]+)(.+?)$` on a filter's text.
fn split_comparison(text: &str) -> Option<(&str, &str, &str)> {
    let is_op = |c: char| matches!(c, '!' | '<' | '>' | '=');
    let left_end = text.find(is_op).filter(|i| *i > 0)?;
    let mut op_end = text[left_end..].find(|c| !is_op(c)).map_or(text.len(), |i| left_end + i);
    if op_end == text.len() {
        // The right side needs at least one character: give back one.
        if op_end - left_end < 2 {
            return None;
        }
        op_end -= 1;
    }
    Some((&text[..left_end], &text[left_end..op_end], &text[op_end..]))
}

/// `[start:end:step]`, `[n]`, `[:]`.
fn slice_params(text: &str) -> Result<[Param; 3]> {
    let parts: Vec<&str> = text.split(':').collect();
    let well_formed = |p: &str| p.strip_prefix('-').unwrap_or(p).chars().all(|c| c.is_ascii_digit());
    if parts.len() > 3 || !parts.iter().all(|p| well_formed(p)) {
        return Err(format!("invalid array index {text}"));
    }
    let mut params = [Param::default(); 3];
    for i in 0..3 {
        match parts.get(i) {
            Some(v) if !v.is_empty() => {
                let value = v.parse::<i64>().map_err(|_| format!("array index {v} is not a number"))?;
                params[i] = Param { value, known: true, derived: false };
            }
            // `[:]`: an empty end or step is unknown.
            Some(_) if i > 0 => {}
            // `[n]`: the end is derived from the start.
            None if i == 1 => params[1] = Param { value: params[0].value + 1, known: true, derived: true },
            _ => {}
        }
    }
    Ok(params)
}

/// Go's `strconv.Unquote` extended to single quotes (`UnquoteExtend`).
fn unquote(s: &str) -> Option<String> {
    let quote = s.chars().next()?;
    let body = s.strip_prefix(quote)?.strip_suffix(quote)?;
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == quote {
            return None;
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escaped = match chars.next()? {
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            c @ ('\\' | '\'' | '"') => c,
            c @ ('x' | 'u' | 'U') => {
                let n = match c {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = chars.by_ref().take(n).collect();
                char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
            }
            c @ '0'..='7' => {
                let rest: String = chars.by_ref().take(2).collect();
                char::from_u32(u32::from_str_radix(&format!("{c}{rest}"), 8).ok()?)?
            }
            _ => return None,
        };
        out.push(escaped);
    }
    Some(out)
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
