//! The lexer of Go's `text/template`: splits a template into text and the
//! tokens of actions (`{{ … }}`), trimming the whitespace next to `{{- `
//! and ` -}}` and dropping comments, as Go's `parse/lex.go` does.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    Error,
    Bool,
    Char,
    CharConstant,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    String,
    Text,
    Variable,
    // Keywords.
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

impl Tok {
    pub fn is_keyword(self) -> bool {
        matches!(
            self,
            Tok::Block
                | Tok::Break
                | Tok::Continue
                | Tok::Dot
                | Tok::Define
                | Tok::Else
                | Tok::End
                | Tok::If
                | Tok::Nil
                | Tok::Range
                | Tok::Template
                | Tok::With
        )
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub tok: Tok,
    /// Byte offset in the input.
    pub pos: usize,
    /// The token's text; for `Text`, after trimming. (An `Error`'s message
    /// is [`Lexed::error`].)
    pub val: &'a str,
    /// The 1-based line where the token starts.
    pub line: usize,
}

/// The items of a template, and the error that ended them, if any.
pub struct Lexed<'a> {
    pub items: Vec<Item<'a>>,
    pub error: Option<String>,
}

const LEFT: &str = "{{";
const RIGHT: &str = "}}";

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

fn keyword(word: &str) -> Option<Tok> {
    Some(match word {
        "." => Tok::Dot,
        "block" => Tok::Block,
        "break" => Tok::Break,
        "continue" => Tok::Continue,
        "define" => Tok::Define,
        "else" => Tok::Else,
        "end" => Tok::End,
        "if" => Tok::If,
        "range" => Tok::Range,
        "nil" => Tok::Nil,
        "template" => Tok::Template,
        "with" => Tok::With,
        _ => return None,
    })
}

/// Split a template into items. The last item is `Eof` or `Error`.
pub fn lex(input: &str) -> Lexed<'_> {
    let mut l = Lexer {
        input,
        pos: 0,
        start: 0,
        line: 1,
        start_line: 1,
        items: Vec::with_capacity(input.len() / 8),
        error: None,
        paren_depth: 0,
        inside: false,
    };
    l.run();
    Lexed {
        items: l.items,
        error: l.error,
    }
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    line: usize,
    start_line: usize,
    items: Vec<Item<'a>>,
    error: Option<String>,
    paren_depth: usize,
    inside: bool,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &str {
        &self.input[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        match *self.input.as_bytes().get(self.pos)? {
            b if b < 0x80 => Some(b as char),
            _ => self.rest().chars().next(),
        }
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    /// Past letters, digits and `_` (no newlines among them).
    fn skip_alnum(&mut self) {
        let bytes = self.input.as_bytes();
        while let Some(&b) = bytes.get(self.pos) {
            if b < 0x80 {
                if b != b'_' && !b.is_ascii_alphanumeric() {
                    break;
                }
                self.pos += 1;
            } else {
                match self.peek() {
                    Some(c) if is_alnum(c) => self.pos += c.len_utf8(),
                    _ => break,
                }
            }
        }
    }

    fn backup(&mut self, c: char) {
        self.pos -= c.len_utf8();
        if c == '\n' {
            self.line -= 1;
        }
    }

    fn emit(&mut self, tok: Tok) {
        let val = &self.input[self.start..self.pos];
        self.items.push(Item {
            tok,
            pos: self.start,
            val,
            line: self.start_line,
        });
        self.ignore();
    }

    fn ignore(&mut self) {
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn error(&mut self, msg: String) {
        self.items.push(Item {
            tok: Tok::Error,
            pos: self.start,
            val: "",
            line: self.start_line,
        });
        self.error = Some(msg);
    }

    fn run(&mut self) {
        loop {
            let ok = if self.inside {
                self.inside_action()
            } else {
                self.text()
            };
            match ok {
                Some(true) => {}
                Some(false) => return,
                None => return,
            }
        }
    }

    /// Text up to the next `{{`. `Some(false)` at the end.
    fn text(&mut self) -> Option<bool> {
        if let Some(x) = find_left(self.rest().as_bytes()) {
            if x > 0 {
                self.set_pos(self.pos + x);
                let mut end = self.pos;
                let after = &self.input[self.pos + LEFT.len()..];
                let trim = has_left_trim(after);
                if trim {
                    end = self.input[self.start..end]
                        .trim_end_matches([' ', '\t', '\r', '\n'])
                        .len()
                        + self.start;
                }
                let text = &self.input[self.start..end];
                if !text.is_empty() {
                    self.items.push(Item {
                        tok: Tok::Text,
                        pos: self.start,
                        val: text,
                        line: self.start_line,
                    });
                }
                self.start = self.pos;
                self.start_line = self.line;
            }
            return self.left_delim();
        }
        self.set_pos(self.input.len());
        if self.pos > self.start {
            self.emit(Tok::Text);
        }
        self.items.push(Item {
            tok: Tok::Eof,
            pos: self.pos,
            val: "",
            line: self.line,
        });
        Some(false)
    }

    /// Move to `pos`, counting lines.
    fn set_pos(&mut self, pos: usize) {
        self.line += memchr::memchr_iter(b'\n', &self.input.as_bytes()[self.pos..pos]).count();
        self.pos = pos;
    }

    fn left_delim(&mut self) -> Option<bool> {
        self.set_pos(self.pos + LEFT.len());
        let trim = has_left_trim(self.rest());
        let after_marker = if trim { 2 } else { 0 };
        if self.rest()[after_marker..].starts_with("/*") {
            self.set_pos(self.pos + after_marker);
            self.ignore();
            return self.comment();
        }
        self.emit(Tok::LeftDelim);
        self.set_pos(self.pos + after_marker);
        self.ignore();
        self.paren_depth = 0;
        self.inside = true;
        Some(true)
    }

    fn comment(&mut self) -> Option<bool> {
        self.set_pos(self.pos + 2);
        let Some(x) = self.rest().find("*/") else {
            self.error("unclosed comment".into());
            return Some(false);
        };
        self.set_pos(self.pos + x + 2);
        let (delim, trim) = self.at_right_delim();
        if !delim {
            self.error("comment ends before closing delimiter".into());
            return Some(false);
        }
        if trim {
            self.set_pos(self.pos + 2);
        }
        self.set_pos(self.pos + RIGHT.len());
        if trim {
            let skip = self.rest().len() - self.rest().trim_start_matches([' ', '\t', '\r', '\n']).len();
            self.set_pos(self.pos + skip);
        }
        self.ignore();
        Some(true)
    }

    fn at_right_delim(&self) -> (bool, bool) {
        let r = self.rest();
        if has_right_trim(r) && r[2..].starts_with(RIGHT) {
            return (true, true);
        }
        (r.starts_with(RIGHT), false)
    }

    fn right_delim(&mut self, trim: bool) -> Option<bool> {
        if trim {
            self.set_pos(self.pos + 2);
            self.ignore();
        }
        self.set_pos(self.pos + RIGHT.len());
        self.emit(Tok::RightDelim);
        if trim {
            let skip = self.rest().len() - self.rest().trim_start_matches([' ', '\t', '\r', '\n']).len();
            self.set_pos(self.pos + skip);
            self.ignore();
        }
        self.inside = false;
        Some(true)
    }

    fn inside_action(&mut self) -> Option<bool> {
        let (delim, trim) = self.at_right_delim();
        if delim {
            if self.paren_depth == 0 {
                return self.right_delim(trim);
            }
            self.error("unclosed left paren".into());
            return Some(false);
        }
        let Some(c) = self.next() else {
            self.error("unclosed action".into());
            return Some(false);
        };
        match c {
            _ if c.is_ascii() && is_space(c as u8) => {
                self.backup(c);
                return self.space();
            }
            '=' => self.emit(Tok::Assign),
            ':' => {
                if self.next() != Some('=') {
                    self.error("expected :=".into());
                    return Some(false);
                }
                self.emit(Tok::Declare);
            }
            '|' => self.emit(Tok::Pipe),
            '"' => return self.quoted('"', Tok::String, "quoted string"),
            '`' => return self.raw_quote(),
            '$' => return self.variable(),
            '\'' => return self.quoted('\'', Tok::CharConstant, "character constant"),
            '.' => {
                if let Some(n) = self.peek()
                    && n.is_ascii_digit()
                {
                    self.backup(c);
                    return self.number();
                }
                return self.field();
            }
            '+' | '-' | '0'..='9' => {
                self.backup(c);
                return self.number();
            }
            _ if is_alnum(c) => {
                self.backup(c);
                return self.identifier();
            }
            '(' => {
                self.emit(Tok::LeftParen);
                self.paren_depth += 1;
            }
            ')' => {
                if self.paren_depth == 0 {
                    self.error(format!("unexpected right paren {}", go_rune(c)));
                    return Some(false);
                }
                self.paren_depth -= 1;
                self.emit(Tok::RightParen);
            }
            _ if (c as u32) <= 0x7f && !c.is_ascii_control() => self.emit(Tok::Char),
            _ => {
                self.error(format!("unrecognized character in action: {}", go_rune(c)));
                return Some(false);
            }
        }
        Some(true)
    }

    fn space(&mut self) -> Option<bool> {
        let mut count = 0;
        while let Some(&b) = self.input.as_bytes().get(self.pos)
            && is_space(b)
        {
            self.pos += 1;
            if b == b'\n' {
                self.line += 1;
            }
            count += 1;
        }
        // Be careful about a trim-marked closing delimiter, which starts with a space.
        if has_right_trim(&self.input[self.pos - 1..]) && self.input[self.pos + 1..].starts_with(RIGHT) {
            let last = self.input.as_bytes()[self.pos - 1] as char;
            self.backup(last);
            if count == 1 {
                return Some(true);
            }
        }
        self.emit(Tok::Space);
        Some(true)
    }

    fn identifier(&mut self) -> Option<bool> {
        self.skip_alnum();
        let word = &self.input[self.start..self.pos];
        if !self.at_terminator() {
            let c = self.peek().unwrap_or(' ');
            self.error(format!("bad character {}", go_rune(c)));
            return Some(false);
        }
        let tok = match keyword(word) {
            Some(k) => k,
            None if word.starts_with('.') => Tok::Field,
            None if word == "true" || word == "false" => Tok::Bool,
            None => Tok::Identifier,
        };
        self.emit(tok);
        Some(true)
    }

    fn field(&mut self) -> Option<bool> {
        self.field_or_variable(Tok::Field)
    }

    fn variable(&mut self) -> Option<bool> {
        self.field_or_variable(Tok::Variable)
    }

    fn field_or_variable(&mut self, tok: Tok) -> Option<bool> {
        if self.at_terminator() {
            if tok == Tok::Variable {
                self.emit(Tok::Variable);
            } else {
                self.emit(Tok::Dot);
            }
            return Some(true);
        }
        self.skip_alnum();
        if !self.at_terminator() {
            let c = self.peek().unwrap_or(' ');
            self.error(format!("bad character {}", go_rune(c)));
            return Some(false);
        }
        self.emit(tok);
        Some(true)
    }

    fn at_terminator(&self) -> bool {
        let Some(&b) = self.input.as_bytes().get(self.pos) else {
            return true;
        };
        is_space(b) || matches!(b, b'.' | b',' | b'|' | b':' | b')' | b'(') || self.rest().starts_with(RIGHT)
    }

    /// A quoted string or character constant up to its closing `close`;
    /// a backslash escapes the next character, a line break ends it early.
    fn quoted(&mut self, close: char, tok: Tok, what: &str) -> Option<bool> {
        loop {
            match self.next() {
                Some('\\') => {
                    if let Some(c) = self.next()
                        && c != '\n'
                    {
                        continue;
                    }
                    self.error(format!("unterminated {what}"));
                    return Some(false);
                }
                None | Some('\n') => {
                    self.error(format!("unterminated {what}"));
                    return Some(false);
                }
                Some(c) if c == close => break,
                _ => {}
            }
        }
        self.emit(tok);
        Some(true)
    }

    fn number(&mut self) -> Option<bool> {
        if !self.scan_number() {
            let text = &self.input[self.start..self.pos];
            self.error(format!("bad number syntax: {text:?}"));
            return Some(false);
        }
        if let Some(c) = self.peek()
            && (c == '+' || c == '-')
        {
            // Complex: 1+2i.
            if !self.scan_number() || !self.input[..self.pos].ends_with('i') {
                let text = &self.input[self.start..self.pos];
                self.error(format!("bad number syntax: {text:?}"));
                return Some(false);
            }
        }
        self.emit(Tok::Number);
        Some(true)
    }

    fn accept(&mut self, valid: &str) -> bool {
        if let Some(c) = self.peek()
            && valid.contains(c)
        {
            self.next();
            return true;
        }
        false
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    fn scan_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 10 + 1 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 16 + 6 + 1 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if let Some(c) = self.peek()
            && is_alnum(c)
        {
            self.next();
            return false;
        }
        true
    }

    fn raw_quote(&mut self) -> Option<bool> {
        match self.rest().find('`') {
            Some(x) => {
                self.set_pos(self.pos + x + 1);
                self.emit(Tok::RawString);
                Some(true)
            }
            None => {
                self.error("unterminated raw quoted string".into());
                Some(false)
            }
        }
    }
}

/// Where `{{` starts.
fn find_left(s: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(x) = memchr::memchr(b'{', &s[from..]) {
        let at = from + x;
        if s.get(at + 1) == Some(&b'{') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn has_left_trim(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(b[1])
}

fn has_right_trim(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space(b[0]) && b[1] == b'-'
}

/// Go's `%#U` of a rune: `U+0041 'A'`.
pub fn go_rune(c: char) -> String {
    if super::super::gofmt::is_print(c) {
        format!("U+{:04X} '{c}'", c as u32)
    } else {
        format!("U+{:04X}", c as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<(Tok, String)> {
        lex(s)
            .items
            .into_iter()
            .map(|i| (i.tok, i.val.to_string()))
            .collect()
    }

    #[test]
    fn text_actions_and_trim_markers() {
        use Tok::*;
        assert_eq!(
            toks("a {{- .X -}} b"),
            vec![
                (Text, "a".into()),
                (LeftDelim, "{{".into()),
                (Field, ".X".into()),
                (RightDelim, "}}".into()),
                (Text, "b".into()),
                (Eof, "".into())
            ]
        );
        assert_eq!(
            toks("{{-3}}"),
            vec![
                (LeftDelim, "{{".into()),
                (Number, "-3".into()),
                (RightDelim, "}}".into()),
                (Eof, "".into())
            ]
        );
        assert_eq!(
            toks("x {{- /* c */ -}} y"),
            vec![(Text, "x".into()), (Text, "y".into()), (Eof, "".into())]
        );
    }

    #[test]
    fn tokens_inside_actions() {
        use Tok::*;
        let got: Vec<Tok> = lex("{{$x := printf \"%d\" 3 | len}}{{range $i, $e := .A}}{{end}}")
            .items
            .into_iter()
            .map(|i| i.tok)
            .collect();
        assert_eq!(
            got,
            vec![
                LeftDelim, Variable, Space, Declare, Space, Identifier, Space, String, Space, Number, Space,
                Pipe, Space, Identifier, RightDelim, LeftDelim, Range, Space, Variable, Char, Space,
                Variable, Space, Declare, Space, Field, RightDelim, LeftDelim, End, RightDelim, Eof
            ]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(lex("{{").error, Some("unclosed action".into()));
        assert_eq!(lex("{{3k}}").error, Some("bad number syntax: \"3k\"".into()));
        assert_eq!(
            lex("{{/* x */ .}}").error,
            Some("comment ends before closing delimiter".into())
        );
    }
}
