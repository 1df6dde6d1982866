//! The KDL v2 grammar, by recursive descent over the text (one level of
//! recursion per children block). Each error is worded by [`explain`],
//! then the parser resumes at the next place where the grammar is certain
//! again (the end of the line's entries, the next node), so that one
//! mistake is reported once and the next mistake is reported too.

use miette::SourceSpan;

use super::super::diagnostic::{Diagnostic, code};
use super::explain;
use super::{Block, Document, Entry, Ident, MAX_DEPTH, MAX_ERRORS, Node, Value};

pub(super) fn parse(text: &str) -> Result<Document, Vec<Diagnostic>> {
    let mut p = Parser {
        text,
        pos: 0,
        errors: Vec::new(),
        fatal: false,
    };
    if text.starts_with('\u{FEFF}') {
        p.pos = '\u{FEFF}'.len_utf8();
    }
    let nodes = p.nodes(0, None);
    if p.errors.is_empty() {
        Ok(Document { nodes })
    } else {
        Err(p.errors)
    }
}

/// The parse of one entry or name failed; the error is recorded.
struct Failed;

type Parsed<T> = Result<T, Failed>;

struct Parser<'t> {
    text: &'t str,
    pos: usize,
    errors: Vec<Diagnostic>,
    /// Stop: the file ended inside a block, blocks nest too deep, or too
    /// many errors.
    fatal: bool,
}

fn is_newline(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{85}' | '\u{0B}' | '\u{0C}' | '\u{2028}' | '\u{2029}'
    )
}

fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

/// Code points that may not appear literally anywhere in a document.
fn is_disallowed(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{8}'
            | '\u{E}'..='\u{1F}'
            | '\u{7F}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

fn is_ident_char(c: char) -> bool {
    !is_space(c)
        && !is_newline(c)
        && !matches!(
            c,
            '\\' | '/' | '(' | ')' | '{' | '}' | ';' | '[' | ']' | '"' | '#' | '='
        )
        && !is_disallowed(c)
}

fn span(from: usize, to: usize) -> SourceSpan {
    SourceSpan::from((from, to.saturating_sub(from)))
}

/// What a string token is for: names cannot be numbers or keywords.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Name,
    Value,
}

impl<'t> Parser<'t> {
    fn rest(&self) -> &'t str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut chars = self.rest().chars();
        chars.next();
        chars.next()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.pos += c.len_utf8();
        }
    }

    fn error(&mut self, d: Diagnostic) {
        // One mistake, one report: a later error inside the span of an
        // earlier one is the same mistake seen again.
        if let Some(last) = self.errors.last()
            && d.span.offset() >= last.span.offset()
            && d.span.offset() < explain::end(last.span)
            && d.code == last.code
        {
            return;
        }
        self.errors.push(d);
        if self.errors.len() >= MAX_ERRORS {
            self.fatal = true;
        }
    }

    fn disallowed(&mut self, at: usize, c: char) {
        self.error(
            Diagnostic::error(
                code::SYNTAX,
                SourceSpan::from((at, c.len_utf8())),
                format!("U+{:04X} may not appear in a KDL document", u32::from(c)),
            )
            .label("invisible or control character")
            .help(format!(
                "remove it; inside a quoted string, write it as \\u{{{:x}}}",
                u32::from(c)
            )),
        );
    }

    // ---- space and comments ------------------------------------------------

    /// Consume a newline (CRLF is one); false if there is none here.
    fn newline(&mut self) -> bool {
        match self.peek() {
            Some('\r') if self.rest().starts_with("\r\n") => {
                self.pos += 2;
                true
            }
            Some(c) if is_newline(c) => {
                self.bump();
                true
            }
            _ => false,
        }
    }

    /// `ws*`: spaces and `/* */` comments. True if anything was consumed.
    fn ws(&mut self) -> bool {
        let start = self.pos;
        loop {
            match self.peek() {
                Some(c) if is_space(c) => self.bump(),
                Some('/') if self.peek2() == Some('*') => self.block_comment(),
                _ => break,
            }
        }
        self.pos > start
    }

    fn block_comment(&mut self) {
        let start = self.pos;
        self.pos += 2;
        let mut depth = 1usize;
        while depth > 0 {
            let rest = self.rest();
            if rest.starts_with("/*") {
                depth += 1;
                self.pos += 2;
            } else if rest.starts_with("*/") {
                depth -= 1;
                self.pos += 2;
            } else if let Some(c) = self.peek() {
                if is_disallowed(c) {
                    self.disallowed(self.pos, c);
                }
                self.bump();
            } else {
                self.error(
                    Diagnostic::error(code::SYNTAX, span(start, start + 2), "this comment is not closed")
                        .label("no closing `*/`")
                        .help("end the comment with `*/` (comments nest: each `/*` needs its own `*/`)"),
                );
                return;
            }
        }
    }

    /// `//` to the end of the line, the newline included.
    fn line_comment(&mut self) {
        self.pos += 2;
        while let Some(c) = self.peek() {
            if is_newline(c) {
                self.newline();
                return;
            }
            if is_disallowed(c) {
                self.disallowed(self.pos, c);
            }
            self.bump();
        }
    }

    /// `node-space*`: spaces, comments and line continuations. True if
    /// anything was consumed.
    fn node_space(&mut self) -> bool {
        let start = self.pos;
        loop {
            self.ws();
            if self.peek() != Some('\\') {
                break;
            }
            let at = self.pos;
            self.pos += 1;
            self.ws();
            match self.peek() {
                None => {}
                Some('/') if self.peek2() == Some('/') => self.line_comment(),
                Some(c) if is_newline(c) => {
                    self.newline();
                }
                Some(_) => {
                    self.pos = at;
                    break;
                }
            }
        }
        self.pos > start
    }

    /// `line-space*`: node space, newlines and `//` comments.
    fn line_space(&mut self) {
        loop {
            let before = self.pos;
            self.node_space();
            if self.rest().starts_with("//") {
                self.line_comment();
            } else {
                self.newline();
            }
            match self.peek() {
                Some(c) if is_disallowed(c) => {
                    self.disallowed(self.pos, c);
                    self.bump();
                }
                _ if self.pos == before => return,
                _ => {}
            }
        }
    }

    // ---- nodes -------------------------------------------------------------

    /// Nodes up to the end of the file (`open` is None) or to the `}` of
    /// the block opened at `open`, which is left for the caller.
    fn nodes(&mut self, depth: usize, open: Option<usize>) -> Vec<Node> {
        let mut nodes = Vec::new();
        loop {
            self.line_space();
            if self.fatal {
                break;
            }
            match self.peek() {
                None => {
                    if let Some(open) = open {
                        self.error(explain::unclosed_block(self.text, open));
                        self.fatal = true;
                    }
                    break;
                }
                Some('}') if open.is_some() => break,
                Some('}') => {
                    self.error(explain::unexpected(self.text, self.pos));
                    self.pos += 1;
                }
                Some(';') => {
                    self.error(
                        Diagnostic::error(
                            code::SYNTAX,
                            span(self.pos, self.pos + 1),
                            "`;` with no node before it",
                        )
                        .label("nothing to end")
                        .help("a `;` ends a node: remove this one"),
                    );
                    self.pos += 1;
                }
                Some(_) => {
                    let slashdash = self.slashdash();
                    if slashdash && self.nothing_after_slashdash() {
                        continue;
                    }
                    if let Some(node) = self.node(depth)
                        && !slashdash
                    {
                        nodes.push(node);
                    }
                }
            }
        }
        nodes
    }

    /// `/-` and the space after it; true if there was one.
    fn slashdash(&mut self) -> bool {
        if !self.rest().starts_with("/-") {
            return false;
        }
        self.pos += 2;
        self.line_space();
        true
    }

    /// A `/-` (just consumed, with the space after it, up to here) that is
    /// followed by nothing it could comment out; reported.
    fn nothing_after_slashdash(&mut self) -> bool {
        if self.rest().starts_with("/-") {
            self.error(
                Diagnostic::error(
                    code::SYNTAX,
                    span(self.pos, self.pos + 2),
                    "`/-` right after `/-`",
                )
                .label("second `/-`")
                .help("one `/-` comments out what follows it: remove this one"),
            );
            self.skip_entries();
            return true;
        }
        if !matches!(self.peek(), None | Some('}' | ';')) {
            return false;
        }
        let at = self.text[..self.pos].rfind("/-").unwrap_or(self.pos);
        self.error(
            Diagnostic::error(code::SYNTAX, span(at, at + 2), "`/-` comments out nothing")
                .label("nothing after it")
                .help("`/-` comments out the node, value, property or block right after it: remove it"),
        );
        true
    }

    /// One node, its terminator included (a `}` that closes the enclosing
    /// block is left). `None` when it had errors.
    fn node(&mut self, depth: usize) -> Option<Node> {
        let start = self.pos;
        let mut ok = true;
        if self.peek() == Some('(') {
            ok &= self.type_annotation().is_ok();
            self.node_space();
        }
        let name = match self.string(Role::Name) {
            Ok(Some((value, name_span))) => Ident {
                value: value.into(),
                span: name_span,
            },
            _ => {
                self.skip_node(depth);
                return None;
            }
        };
        let mut entries = Vec::new();
        let mut children: Option<Block> = None;
        // Past the first block (slashdashed or not) only blocks may follow.
        let mut blocks = false;
        let mut end = explain::end(name.span);
        loop {
            if self.fatal {
                return None;
            }
            let spaced = self.node_space();
            match self.peek() {
                None => break,
                Some(';') => {
                    self.pos += 1;
                    break;
                }
                Some(c) if is_newline(c) => {
                    self.newline();
                    break;
                }
                Some('/') if self.peek2() == Some('/') => {
                    self.line_comment();
                    break;
                }
                Some('}') => break,
                Some('/') if self.peek2() == Some('-') && !spaced => {
                    ok = false;
                    self.error(
                        Diagnostic::error(
                            code::SYNTAX,
                            span(self.pos, self.pos + 2),
                            "`/-` needs a space before it".to_string(),
                        )
                        .label("no space before `/-`")
                        .help("separate it from what comes before with a space"),
                    );
                    self.pos += 2;
                    self.skip_token();
                }
                Some('/') if self.peek2() == Some('-') => {
                    self.pos += 2;
                    self.line_space();
                    if self.nothing_after_slashdash() {
                        ok = false;
                    } else if self.peek() == Some('{') {
                        blocks = true;
                        let _ = self.block(depth + 1);
                    } else if blocks {
                        ok = false;
                        self.after_block();
                    } else if self.entry().is_err() {
                        ok = false;
                        self.skip_token();
                    }
                }
                Some('{') => {
                    if children.is_some() {
                        ok = false;
                        self.error(
                            Diagnostic::error(
                                code::SYNTAX,
                                span(self.pos, self.pos + 1),
                                format!("`{}` has a second children block", name.value),
                            )
                            .label("second block")
                            .help("a node has one `{ … }`: merge the two blocks"),
                        );
                    }
                    blocks = true;
                    let block = self.block(depth + 1);
                    if let Some(b) = block {
                        end = explain::end(b.span);
                        if children.is_none() {
                            children = Some(b);
                        }
                    } else {
                        ok = false;
                    }
                }
                Some(_) if blocks => {
                    ok = false;
                    self.after_block();
                }
                Some(_) if !spaced => {
                    ok = false;
                    self.error(explain::at_value(self.text, self.pos));
                    self.skip_token();
                }
                Some(_) => match self.entry() {
                    Ok(Some(entry)) => {
                        end = explain::end(entry.span);
                        entries.push(entry);
                    }
                    Ok(None) => ok = false,
                    Err(Failed) => {
                        ok = false;
                        self.skip_token();
                    }
                },
            }
        }
        ok.then(|| Node {
            name,
            entries,
            children,
            span: span(start, end),
        })
    }

    /// Something after a node's children block other than another block.
    fn after_block(&mut self) {
        let at = self.pos;
        self.skip_entries();
        self.error(
            Diagnostic::error(
                code::SYNTAX,
                span(at, self.pos.max(at + 1)),
                "unexpected text after a children block",
            )
            .label("after the `}`")
            .help(
                "a node's arguments and properties come before its `{ … }`; start a new line for a new node",
            ),
        );
    }

    /// A children block from its `{`; `None` when the file ended inside it
    /// or it nests too deep.
    fn block(&mut self, depth: usize) -> Option<Block> {
        let open = self.pos;
        if depth > MAX_DEPTH {
            self.error(
                Diagnostic::error(
                    code::SYNTAX,
                    SourceSpan::from((open, 1)),
                    format!("blocks are nested more than {MAX_DEPTH} deep"),
                )
                .label("too deep")
                .help("a mooring config needs at most three levels of `{ }`; look for unbalanced braces"),
            );
            self.fatal = true;
            return None;
        }
        self.pos += 1;
        let nodes = self.nodes(depth, Some(open));
        if self.fatal {
            return None;
        }
        self.pos += 1; // the `}`
        Some(Block {
            nodes,
            span: span(open, self.pos),
        })
    }

    /// After an error in a node's name: skip to its end, its block included.
    fn skip_node(&mut self, depth: usize) {
        self.skip_entries();
        loop {
            self.node_space();
            match self.peek() {
                Some('{') => {
                    let _ = self.block(depth + 1);
                }
                Some(';') => {
                    self.pos += 1;
                    return;
                }
                Some(c) if is_newline(c) => {
                    self.newline();
                    return;
                }
                Some('/') if self.peek2() == Some('/') => {
                    self.line_comment();
                    return;
                }
                None | Some('}') => return,
                Some(_) => self.skip_entries(),
            }
        }
    }

    /// After an error in an entry: skip the rest of the bad token (strings
    /// whole), so that the next entry is read, and reported, on its own.
    fn skip_token(&mut self) {
        self.skip(true);
    }

    /// Skip what remains of the line's entries, up to a terminator, a block
    /// or a comment (strings are skipped whole).
    fn skip_entries(&mut self) {
        self.skip(false);
    }

    fn skip(&mut self, one_token: bool) {
        while let Some(c) = self.peek() {
            match c {
                c if one_token && is_space(c) => return,
                ';' | '{' | '}' => return,
                '/' if matches!(self.peek2(), Some('/' | '*')) => return,
                '"' => {
                    self.pos += 1;
                    while let Some(c) = self.peek() {
                        if is_newline(c) {
                            break;
                        }
                        self.bump();
                        if c == '\\' {
                            self.bump();
                        } else if c == '"' {
                            break;
                        }
                    }
                }
                c if is_newline(c) => return,
                _ => self.bump(),
            }
        }
    }

    // ---- entries -----------------------------------------------------------

    /// An argument or a property. `Ok(None)`: an error that consumed the
    /// entry cleanly (a KDL v1 keyword), so the line goes on.
    fn entry(&mut self) -> Parsed<Option<Entry>> {
        let start = self.pos;
        let typed = self.peek() == Some('(');
        if typed {
            self.type_annotation()?;
            self.node_space();
        }
        let first = self.value()?;
        // A string followed by `=` is a property's name.
        let before_eq = self.pos;
        self.node_space();
        if self.peek() != Some('=') {
            self.pos = before_eq;
            return Ok(first.map(|(value, value_span)| Entry {
                name: None,
                value,
                value_span,
                span: span(start, explain::end(value_span)),
            }));
        }
        let eq = self.pos;
        let key = match first {
            Some((Value::String(s), key_span)) if !typed => Ident {
                value: s,
                span: key_span,
            },
            _ => {
                self.error(explain::at_value(self.text, eq));
                return Err(Failed);
            }
        };
        self.pos += 1;
        self.node_space();
        let value_start = self.pos;
        if matches!(self.peek(), None | Some(';' | '{' | '}')) || self.peek().is_some_and(is_newline) {
            self.error(explain::at_value(self.text, eq));
            return Err(Failed);
        }
        if self.peek() == Some('(') {
            self.type_annotation()?;
            self.node_space();
        }
        let Some((value, value_span)) = self.value()? else {
            return Ok(None);
        };
        let _ = value_start;
        Ok(Some(Entry {
            name: Some(key),
            value,
            value_span,
            span: span(start, explain::end(value_span)),
        }))
    }

    /// `(type)`: parsed, then refused, as mooring gives types no meaning.
    fn type_annotation(&mut self) -> Parsed<()> {
        let open = self.pos;
        self.pos += 1;
        self.node_space();
        let ok = matches!(self.string(Role::Name), Ok(Some(_))) && {
            self.node_space();
            self.peek() == Some(')')
        };
        if !ok {
            self.errors.retain(|e| e.span.offset() < open);
            self.error(explain::unexpected(self.text, open));
            return Err(Failed);
        }
        self.pos += 1;
        // What follows must be a value, or this was not a type annotation.
        let after = self.pos;
        self.node_space();
        let next = self.peek();
        self.pos = after;
        if next.is_none_or(|c| is_newline(c) || matches!(c, ';' | '{' | '}' | '=' | ')')) {
            self.error(explain::unexpected(self.text, open));
            return Err(Failed);
        }
        let written = self.text.get(open..self.pos).unwrap_or_default().to_string();
        self.error(
            Diagnostic::error(
                code::SYNTAX,
                span(open, self.pos),
                "mooring does not use type annotations",
            )
            .label("type annotation")
            .help(format!(
                "remove `{written}`: no node or value of the config takes a type"
            )),
        );
        Ok(())
    }

    /// A value token. `Ok(None)`: a KDL v1 keyword, reported.
    fn value(&mut self) -> Parsed<Option<(Value, SourceSpan)>> {
        let start = self.pos;
        let Some(c) = self.peek() else {
            // Reports the end of the file.
            self.string(Role::Value)?;
            return Err(Failed);
        };
        let next = self.peek2();
        let numeric =
            c.is_ascii_digit() || (matches!(c, '+' | '-') && next.is_some_and(|n| n.is_ascii_digit()));
        if numeric {
            return self.number().map(Some);
        }
        if c == '#' && !matches!(next, Some('"' | '#')) {
            return self.keyword().map(Some);
        }
        match self.string(Role::Value)? {
            Some((s, sp)) => Ok(Some((Value::String(s.into()), sp))),
            None => {
                // A keyword without `#`, reported; the line goes on.
                let _ = start;
                Ok(None)
            }
        }
    }

    fn keyword(&mut self) -> Parsed<(Value, SourceSpan)> {
        let start = self.pos;
        let word_end = self.rest()[1..]
            .find(|c: char| !is_ident_char(c))
            .map_or(self.text.len(), |i| start + 1 + i);
        let word = &self.text[start..word_end];
        let value = match word {
            "#true" => Value::Bool(true),
            "#false" => Value::Bool(false),
            "#null" => Value::Null,
            "#inf" => Value::Float(f64::INFINITY),
            "#-inf" => Value::Float(f64::NEG_INFINITY),
            "#nan" => Value::Float(f64::NAN),
            _ => {
                self.error(explain::at_value(self.text, start));
                return Err(Failed);
            }
        };
        self.pos = word_end;
        self.boundary(start)?;
        Ok((value, span(start, word_end)))
    }

    /// After a token that started at `start`: the next character must end it.
    fn boundary(&mut self, start: usize) -> Parsed<()> {
        if self.at_boundary() {
            return Ok(());
        }
        self.not_a_boundary(start);
        Err(Failed)
    }

    /// Report what follows the token at `start` without a space.
    fn not_a_boundary(&mut self, start: usize) {
        match self.peek() {
            Some(c) if is_disallowed(c) => self.disallowed(self.pos, c),
            _ if self.text[start..].starts_with('"') => {
                self.error(explain::glued_to_string(self.pos.saturating_sub(1)));
            }
            _ => self.error(explain::at_value(self.text, start)),
        }
    }

    fn number(&mut self) -> Parsed<(Value, SourceSpan)> {
        let start = self.pos;
        let len = self
            .rest()
            .find(|c: char| !is_ident_char(c))
            .unwrap_or(self.rest().len());
        let token = &self.text[start..start + len];
        match parse_number(token) {
            Some(Ok(value)) => {
                self.pos = start + len;
                self.boundary(start)?;
                Ok((value, span(start, self.pos)))
            }
            Some(Err(())) => {
                self.error(
                    Diagnostic::error(
                        code::SYNTAX,
                        span(start, start + len),
                        format!("`{token}` is too large"),
                    )
                    .label("beyond 128 bits")
                    .help("no value in a mooring config is that large; quote it if it is text"),
                );
                self.pos = start + len;
                Err(Failed)
            }
            None => {
                self.error(explain::at_value(self.text, start));
                Err(Failed)
            }
        }
    }

    /// A string: identifier, quoted, raw or multi-line. `Ok(None)`: a
    /// keyword without `#` (a KDL v1 spelling), reported.
    fn string(&mut self, role: Role) -> Parsed<Option<(String, SourceSpan)>> {
        let start = self.pos;
        let Some(c) = self.peek() else {
            self.error(
                Diagnostic::error(code::SYNTAX, span(start, start), "the file ends here")
                    .label("more expected")
                    .help("complete the node or remove what is left of it"),
            );
            return Err(Failed);
        };
        let value = match c {
            '"' => self.quoted()?,
            '#' => self.raw()?,
            c if is_ident_char(c) => return self.identifier(role),
            c if is_disallowed(c) => {
                self.disallowed(start, c);
                return Err(Failed);
            }
            _ => {
                self.error(explain::at_value(self.text, start));
                return Err(Failed);
            }
        };
        if !self.at_boundary() {
            self.not_a_boundary(start);
            return Err(Failed);
        }
        Ok(Some((value, span(start, self.pos))))
    }

    fn at_boundary(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if is_space(c) || is_newline(c) => true,
            Some(';' | '}' | '=' | ')' | '\\' | '{') => true,
            Some('/') => matches!(self.peek2(), Some('/' | '*')),
            Some(_) => false,
        }
    }

    fn identifier(&mut self, role: Role) -> Parsed<Option<(String, SourceSpan)>> {
        let start = self.pos;
        let len = self
            .rest()
            .find(|c: char| !is_ident_char(c))
            .unwrap_or(self.rest().len());
        let word = &self.text[start..start + len];
        let mut chars = word.chars();
        let first = chars.next();
        let second = chars.next();
        let third = chars.next();
        let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
        let looks_numeric = digit(first)
            || (matches!(first, Some('+' | '-')) && digit(second))
            || (first == Some('.') && digit(second))
            || (matches!(first, Some('+' | '-')) && second == Some('.') && digit(third));
        if looks_numeric {
            self.error(explain::at_value(self.text, start));
            return Err(Failed);
        }
        self.pos = start + len;
        if !self.at_boundary() {
            self.not_a_boundary(start);
            return Err(Failed);
        }
        if explain::KEYWORDS.contains(&word) {
            self.error(explain::keyword_diagnostic(word, span(start, self.pos)));
            return if role == Role::Name { Err(Failed) } else { Ok(None) };
        }
        Ok(Some((word.to_string(), span(start, self.pos))))
    }

    /// A quoted string from its `"`, single- or multi-line.
    fn quoted(&mut self) -> Parsed<String> {
        let start = self.pos;
        if self.rest().starts_with("\"\"\"") {
            return self.multi_line(start, 0);
        }
        self.pos += 1;
        let body_start = self.pos;
        loop {
            let Some(c) = self.peek() else {
                self.error(explain::unclosed_string(self.text, start, self.pos));
                return Err(Failed);
            };
            match c {
                '"' => break,
                '\\' => {
                    if !self.escape(start) {
                        self.skip_string_rest();
                        return Err(Failed);
                    }
                }
                c if is_newline(c) => {
                    self.error(explain::unclosed_string(self.text, start, self.pos));
                    return Err(Failed);
                }
                c if is_disallowed(c) => {
                    self.disallowed(self.pos, c);
                    self.bump();
                }
                _ => self.bump(),
            }
        }
        let body = &self.text[body_start..self.pos];
        self.pos += 1;
        Ok(unescape(body))
    }

    /// After an error inside a single-line string: to its closing quote, or
    /// the end of the line.
    fn skip_string_rest(&mut self) {
        while let Some(c) = self.peek() {
            if is_newline(c) {
                return;
            }
            self.bump();
            if c == '\\' {
                self.bump();
            } else if c == '"' {
                return;
            }
        }
    }

    /// Check the escape at the `\` here, of a string opened at `start`, and
    /// move past it. False (reported) when it is not an escape.
    fn escape(&mut self, start: usize) -> bool {
        let at = self.pos;
        self.pos += 1;
        match self.peek() {
            Some('n' | 'r' | 't' | '\\' | '"' | 'b' | 'f' | 's') => {
                self.bump();
                true
            }
            Some('u') => {
                let rest = self.rest();
                let hex = rest
                    .strip_prefix("u{")
                    .and_then(|r| r.find('}').map(|close| &r[..close]));
                let scalar = hex
                    .filter(|h| (1..=6).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .and_then(char::from_u32);
                match (hex, scalar) {
                    (Some(h), Some(_)) => {
                        self.pos += h.len() + 3;
                        true
                    }
                    _ => {
                        let len = hex.map_or(2, |h| h.len() + 4);
                        self.error(
                            Diagnostic::error(
                                code::SYNTAX,
                                span(at, (at + len).min(self.text.len())),
                                "invalid unicode escape",
                            )
                            .label("not a character")
                            .help(
                                "write \\u{…} with 1 to 6 hex digits of a Unicode scalar value, e.g. \\u{e9}",
                            ),
                        );
                        false
                    }
                }
            }
            Some('/') => {
                self.error(explain::v1_escape(at));
                false
            }
            Some(c) if is_space(c) || is_newline(c) => {
                while self.peek().is_some_and(|c| is_space(c) || is_newline(c)) {
                    self.bump();
                }
                true
            }
            _ => {
                self.error(explain::bad_escape(self.text, start, at));
                false
            }
        }
    }

    /// A raw string from its first `#`.
    fn raw(&mut self) -> Parsed<String> {
        let start = self.pos;
        let hashes = self.rest().bytes().take_while(|b| *b == b'#').count();
        self.pos += hashes;
        if self.peek() != Some('"') {
            self.error(explain::at_value(self.text, start));
            return Err(Failed);
        }
        if self.rest().starts_with("\"\"\"") {
            return self.multi_line(start, hashes);
        }
        self.pos += 1;
        let body_start = self.pos;
        let close: String = std::iter::once('"')
            .chain(std::iter::repeat_n('#', hashes))
            .collect();
        loop {
            if self.rest().starts_with(close.as_str()) {
                break;
            }
            match self.peek() {
                None => {
                    self.error(explain::unexpected(self.text, start));
                    return Err(Failed);
                }
                Some(c) if is_newline(c) => {
                    self.error(explain::unexpected(self.text, start));
                    return Err(Failed);
                }
                Some(c) if is_disallowed(c) => {
                    self.disallowed(self.pos, c);
                    self.bump();
                }
                Some(_) => self.bump(),
            }
        }
        let body = self.text[body_start..self.pos].to_string();
        self.pos += close.len();
        Ok(body)
    }

    /// A multi-line string from its opening quotes (after `hashes` `#`):
    /// `"""`, a newline, lines, then `"""` on a line of its own whose
    /// indentation every other line starts with and loses.
    fn multi_line(&mut self, start: usize, hashes: usize) -> Parsed<String> {
        let raw = hashes > 0;
        self.pos += 3;
        let open_end = self.pos;
        if !self.newline() {
            self.error(
                Diagnostic::error(
                    code::SYNTAX,
                    span(start, open_end),
                    "a multi-line string starts with a new line",
                )
                .label("text after the opening quotes")
                .help("start the text on the next line, or use a single-line string \"…\""),
            );
            return Err(Failed);
        }
        let body_start = self.pos;
        // Find the closing quotes; check escapes and code points on the way.
        let close: String = "\"\"\"".chars().chain(std::iter::repeat_n('#', hashes)).collect();
        let close_at = loop {
            if self.rest().starts_with(close.as_str()) {
                break self.pos;
            }
            match self.peek() {
                None => {
                    self.error(
                        Diagnostic::error(
                            code::SYNTAX,
                            span(start, open_end),
                            "this multi-line string is not closed",
                        )
                        .label("never closed")
                        .help(format!(
                            "end it with {close} on a line of its own, indented like the text"
                        )),
                    );
                    self.fatal = true;
                    return Err(Failed);
                }
                Some('\\') if !raw => {
                    if !self.escape(start) {
                        // Go on to the closing quotes, then give up on the value.
                        while !self.rest().is_empty() && !self.rest().starts_with(close.as_str()) {
                            self.bump();
                        }
                        self.pos = (self.pos + close.len()).min(self.text.len());
                        return Err(Failed);
                    }
                }
                Some(c) if is_disallowed(c) => {
                    self.disallowed(self.pos, c);
                    self.bump();
                }
                Some(_) => self.bump(),
            }
        };
        self.pos = close_at + close.len();
        let body = &self.text[body_start..close_at];
        match dedent(body, raw) {
            Ok(s) => Ok(if raw { s } else { unescape(&s) }),
            Err(Dedent::LastLine) => {
                self.error(
                    Diagnostic::error(
                        code::SYNTAX,
                        span(close_at, close_at + 3),
                        "the closing quotes of a multi-line string must be on a line of their own",
                    )
                    .label("text before the closing quotes")
                    .help("put the closing quotes on the next line, indented like the text"),
                );
                Err(Failed)
            }
            Err(Dedent::Line(offset)) => {
                let at = body_start + offset;
                self.error(
                    Diagnostic::error(
                        code::SYNTAX,
                        span(at, at + 1),
                        "this line is indented less than the closing quotes",
                    )
                    .label("less indented")
                    .help(
                        "every line of a multi-line string starts with the indentation of its closing \
                         quotes (the same spaces or tabs); indent this line, or the closing quotes less",
                    ),
                );
                Err(Failed)
            }
        }
    }
}

enum Dedent {
    /// The closing line holds more than whitespace.
    LastLine,
    /// A line (at this offset in the body) lacks the closing indentation.
    Line(usize),
}

/// The value of a multi-line string's `body` (from after the opening
/// newline to before the closing quotes), before escapes other than
/// whitespace escapes are decoded.
fn dedent(body: &str, raw: bool) -> Result<String, Dedent> {
    // Lines (with their offsets), split at every kind of newline; whitespace
    // escapes are resolved first, so an escaped newline joins two lines.
    let mut lines: Vec<(usize, String)> = vec![(0, String::new())];
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\\' && !raw {
            match chars.peek() {
                Some((_, n)) if is_space(*n) || is_newline(*n) => {
                    while chars.peek().is_some_and(|(_, n)| is_space(*n) || is_newline(*n)) {
                        chars.next();
                    }
                }
                Some((_, n)) => {
                    let n = *n;
                    chars.next();
                    if let Some((_, line)) = lines.last_mut() {
                        line.push('\\');
                        line.push(n);
                    }
                }
                None => {}
            }
            continue;
        }
        if is_newline(c) {
            if c == '\r' && chars.peek().is_some_and(|(_, n)| *n == '\n') {
                chars.next();
            }
            let next = chars.peek().map_or(body.len(), |(j, _)| *j);
            lines.push((next, String::new()));
            continue;
        }
        if let Some((_, line)) = lines.last_mut() {
            line.push(c);
        }
        let _ = i;
    }
    let Some((_, last)) = lines.pop() else {
        return Ok(String::new());
    };
    if !last.chars().all(is_space) {
        return Err(Dedent::LastLine);
    }
    let mut out = String::with_capacity(body.len());
    for (k, (offset, line)) in lines.iter().enumerate() {
        if k > 0 {
            out.push('\n');
        }
        if line.chars().all(is_space) {
            continue;
        }
        match line.strip_prefix(last.as_str()) {
            Some(rest) => out.push_str(rest),
            None => return Err(Dedent::Line(*offset)),
        }
    }
    Ok(out)
}

/// Decode the escapes of a string body already checked by `escape`.
fn unescape(body: &str) -> String {
    if !body.contains('\\') {
        return body.to_string();
    }
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{C}'),
            Some('s') => out.push(' '),
            Some('u') => {
                let mut hex = String::new();
                chars.next(); // `{`
                for h in chars.by_ref() {
                    if h == '}' {
                        break;
                    }
                    hex.push(h);
                }
                if let Some(c) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(c);
                }
            }
            Some(c) if is_space(c) || is_newline(c) => {
                while chars.peek().is_some_and(|c| is_space(*c) || is_newline(*c)) {
                    chars.next();
                }
            }
            Some(c) => out.push(c),
            None => {}
        }
    }
    out
}

/// A number token: `None` if it is not one, `Some(Err)` if it is one too
/// large for 128 bits.
fn parse_number(token: &str) -> Option<Result<Value, ()>> {
    let (negative, unsigned) = match token.as_bytes().first()? {
        b'-' => (true, &token[1..]),
        b'+' => (false, &token[1..]),
        _ => (false, token),
    };
    // kdl also reads 0X, 0O and 0B: so does mooring.
    let radix = match unsigned.get(..2) {
        Some("0x" | "0X") => Some(16),
        Some("0o" | "0O") => Some(8),
        Some("0b" | "0B") => Some(2),
        _ => None,
    };
    if let Some(radix) = radix {
        let digits = &unsigned[2..];
        if !digits.chars().next()?.is_digit(radix) || !digits.chars().all(|c| c == '_' || c.is_digit(radix)) {
            return None;
        }
        return Some(integer(digits, radix, negative));
    }
    // decimal := integer ('.' integer)? (('e' | 'E') sign? integer)?
    let is_integer = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_digit()) && s.chars().all(|c| c == '_' || c.is_ascii_digit())
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(e) => (&unsigned[..e], Some(&unsigned[e + 1..])),
        None => (unsigned, None),
    };
    let (int_part, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    if !is_integer(int_part) || frac.is_some_and(|f| !is_integer(f)) {
        return None;
    }
    if let Some(exp) = exponent
        && !is_integer(exp.strip_prefix(['+', '-']).unwrap_or(exp))
    {
        return None;
    }
    if frac.is_none() && exponent.is_none() {
        return Some(integer(int_part, 10, negative));
    }
    let clean: String = token.chars().filter(|c| *c != '_').collect();
    clean.parse::<f64>().ok().map(|f| Ok(Value::Float(f)))
}

fn integer(digits: &str, radix: u32, negative: bool) -> Result<Value, ()> {
    let mut n: i128 = 0;
    for c in digits.chars().filter(|c| *c != '_') {
        let d = i128::from(c.to_digit(radix).ok_or(())?);
        n = n.checked_mul(i128::from(radix)).ok_or(())?;
        n = if negative {
            n.checked_sub(d)
        } else {
            n.checked_add(d)
        }
        .ok_or(())?;
    }
    Ok(Value::Integer(n))
}
