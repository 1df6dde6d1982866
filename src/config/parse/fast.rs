//! A fast, hand-written KDL v2 parser for the common case.
//!
//! The `kdl` crate parses at about 2 MB/s; this builds the same
//! [`KdlDocument`] (nodes, names, values, `value_repr`s, every span and every
//! format field) an order of magnitude faster. It mirrors the structure of
//! kdl 6.7's `v2_parser.rs`, backtracking exactly where it backtracks, so
//! that spans and formats come out the same.
//!
//! [`parse`] returns `None` for anything kdl rejects, and also for the few
//! constructs it does not handle (type annotations, multi-line strings, the
//! `-inf` identifier, nesting
//! deeper than [`MAX_DEPTH`]): callers then fall back to kdl, which gives
//! the error messages and the KDL v1 handling. `Some` means kdl accepts the
//! text and gives an equal document with equal spans.

use kdl::{
    KdlDocument, KdlDocumentFormat, KdlEntry, KdlEntryFormat, KdlIdentifier, KdlNode, KdlNodeFormat, KdlValue,
};
use miette::SourceSpan;

/// How deep children blocks and slashdashes may nest before the fast path
/// gives up (kdl recurses too; this keeps the stack and the time bounded).
pub const MAX_DEPTH: u32 = 64;

/// Parse `text` as KDL v2, or `None` when kdl would reject it or the fast
/// path declines it.
pub fn parse(text: &str) -> Option<KdlDocument> {
    let mut p = Parser {
        s: text,
        b: text.as_bytes(),
        p: 0,
        depth: 0,
        nodes: Vec::new(),
        entries: Vec::new(),
    };
    p.document().ok()
}

/// kdl would fail here (a cut error), or the fast path declines.
struct Stop;

/// `Ok(false)` / `Ok(None)` is a backtrack: the caller resets the position.
type R<T> = Result<T, Stop>;

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    p: usize,
    depth: u32,
    /// Scratch stacks: a document's nodes and a node's entries are
    /// gathered here, then moved into a vector of the exact size (fewer
    /// and smaller allocations than growing each vector).
    nodes: Vec<KdlNode>,
    entries: Vec<KdlEntry>,
}

/// A string token: its decoded value and where it is in the text.
struct Str {
    value: String,
    start: usize,
    end: usize,
}

fn is_unicode_space(c: char) -> bool {
    matches!(
        c,
        '\t' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

fn is_newline_char(c: char) -> bool {
    matches!(
        c,
        '\r' | '\n' | '\u{85}' | '\u{0B}' | '\u{0C}' | '\u{2028}' | '\u{2029}'
    )
}

fn is_disallowed(c: char) -> bool {
    matches!(c,
        '\u{0000}'..='\u{0008}'
        | '\u{000E}'..='\u{001F}'
        | '\u{200E}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}'
    )
}

fn is_ident_char(c: char) -> bool {
    !(is_unicode_space(c)
        || is_newline_char(c)
        || is_disallowed(c)
        || matches!(
            c,
            '=' | '\\' | '/' | '(' | ')' | '{' | '}' | '[' | ']' | ';' | '"' | '#'
        ))
}

/// ASCII bytes that are identifier characters.
const IDENT_ASCII: [bool; 128] = {
    let mut t = [false; 128];
    let mut i = 0;
    while i < 128 {
        let c = i as u8;
        t[i] = c > b' '
            && !matches!(
                c,
                b'=' | b'\\' | b'/' | b'(' | b')' | b'{' | b'}' | b'[' | b']' | b';' | b'"' | b'#'
            );
        i += 1;
    }
    t
};

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.p).copied()
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.b.get(i).copied()
    }

    fn starts(&self, prefix: &[u8]) -> bool {
        self.b[self.p..].starts_with(prefix)
    }

    fn char_at(&self, i: usize) -> Option<char> {
        self.s.get(i..).and_then(|r| r.chars().next())
    }

    fn text(&self, from: usize, to: usize) -> &'a str {
        &self.s[from..to]
    }

    fn deeper(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH { Err(Stop) } else { Ok(()) }
    }

    // ---- whitespace, newlines, comments -------------------------------------

    /// Length of the newline at `i`, 0 if none.
    fn newline_len(&self, i: usize) -> usize {
        match self.at(i) {
            Some(b'\r') => {
                if self.at(i + 1) == Some(b'\n') {
                    2
                } else {
                    1
                }
            }
            Some(b'\n' | 0x0B | 0x0C) => 1,
            Some(0xC2) if self.at(i + 1) == Some(0x85) => 2,
            Some(0xE2) if self.at(i + 1) == Some(0x80) && matches!(self.at(i + 2), Some(0xA8 | 0xA9)) => 3,
            _ => 0,
        }
    }

    /// Length of the unicode space at `i`, 0 if none.
    fn space_len(&self, i: usize) -> usize {
        match self.at(i) {
            Some(b' ' | b'\t') => 1,
            Some(b) if b >= 0x80 => match self.char_at(i) {
                Some(c) if is_unicode_space(c) => c.len_utf8(),
                _ => 0,
            },
            _ => 0,
        }
    }

    /// `multi-line-comment`, at `/*`. An unclosed comment is a cut error.
    fn block_comment(&mut self) -> R<()> {
        let mut i = self.p + 2;
        let mut depth = 1u32;
        loop {
            match self.b[i..].iter().position(|&c| c == b'*' || c == b'/') {
                None => return Err(Stop),
                Some(off) => i += off,
            }
            if self.b[i] == b'*' && self.at(i + 1) == Some(b'/') {
                i += 2;
                depth -= 1;
                if depth == 0 {
                    self.p = i;
                    return Ok(());
                }
            } else if self.b[i] == b'/' && self.at(i + 1) == Some(b'*') {
                i += 2;
                depth += 1;
            } else {
                i += 1;
            }
        }
    }

    /// `ws := unicode-space | multi-line-comment`
    fn ws(&mut self) -> R<bool> {
        let n = self.space_len(self.p);
        if n > 0 {
            self.p += n;
            return Ok(true);
        }
        if self.starts(b"/*") {
            self.block_comment()?;
            return Ok(true);
        }
        Ok(false)
    }

    fn wss(&mut self) -> R<()> {
        while self.ws()? {}
        Ok(())
    }

    /// `single-line-comment := '//' ^newline* (newline | eof)`, at `//`.
    fn line_comment(&mut self) {
        let mut i = self.p + 2;
        while i < self.b.len() {
            let n = self.newline_len(i);
            if n > 0 {
                self.p = i + n;
                return;
            }
            i += 1;
        }
        self.p = i;
    }

    /// `escline := '\\' ws* (single-line-comment | newline | eof) ws*`
    fn escline(&mut self) -> R<bool> {
        if self.peek() != Some(b'\\') {
            return Ok(false);
        }
        let save = self.p;
        self.p += 1;
        self.wss()?;
        if self.starts(b"//") {
            self.line_comment();
        } else {
            let n = self.newline_len(self.p);
            if n > 0 {
                self.p += n;
            } else if self.p < self.b.len() {
                self.p = save;
                return Ok(false);
            }
        }
        self.wss()?;
        Ok(true)
    }

    /// `node-space*`: true if anything was consumed.
    fn node_space0(&mut self) -> R<bool> {
        let start = self.p;
        loop {
            if self.ws()? || self.escline()? {
                continue;
            }
            return Ok(self.p > start);
        }
    }

    /// `line-space := node-space | newline | single-line-comment`
    fn line_space(&mut self) -> R<bool> {
        if self.node_space0()? {
            return Ok(true);
        }
        let n = self.newline_len(self.p);
        if n > 0 {
            self.p += n;
            return Ok(true);
        }
        if self.starts(b"//") {
            self.line_comment();
            return Ok(true);
        }
        Ok(false)
    }

    /// `node-terminator := single-line-comment | newline | ';'`: its
    /// length, without consuming it.
    fn terminator_len(&self) -> usize {
        if self.peek() == Some(b';') {
            return 1;
        }
        let n = self.newline_len(self.p);
        if n > 0 {
            return n;
        }
        if self.starts(b"//") {
            let mut i = self.p + 2;
            while i < self.b.len() {
                let n = self.newline_len(i);
                if n > 0 {
                    return i + n - self.p;
                }
                i += 1;
            }
            return i - self.p;
        }
        0
    }

    /// `slashdash := '/-' (node-space | line-space)*`, at `/-`.
    fn slashdash(&mut self) -> R<()> {
        self.p += 2;
        while self.line_space()? {}
        Ok(())
    }

    /// `(line-space | slashdash base-node)*`
    fn skip_leading(&mut self) -> R<()> {
        loop {
            if self.line_space()? {
                continue;
            }
            if self.starts(b"/-") {
                let save = self.p;
                self.deeper()?;
                self.slashdash()?;
                let node = self.base_node("")?;
                self.depth -= 1;
                if node.is_some() {
                    continue;
                }
                self.p = save;
            }
            return Ok(());
        }
    }

    /// What may follow a string or number: kdl's `value_terminator_check`,
    /// a cut error when it fails.
    fn value_terminator_check(&mut self) -> R<()> {
        let ok = match self.peek() {
            None | Some(b'=' | b')' | b'{' | b'}' | b';') => true,
            Some(b'/') => match self.at(self.p + 1) {
                Some(b'/') => true,
                Some(b'*') => {
                    let save = self.p;
                    self.block_comment()?;
                    self.p = save;
                    true
                }
                _ => false,
            },
            Some(b'\\') => {
                let save = self.p;
                let ok = self.escline()?;
                self.p = save;
                ok
            }
            _ => self.space_len(self.p) > 0 || self.newline_len(self.p) > 0,
        };
        if ok { Ok(()) } else { Err(Stop) }
    }

    // ---- document and nodes --------------------------------------------------

    fn document(&mut self) -> R<KdlDocument> {
        let bom = self.s.starts_with('\u{FEFF}');
        if bom {
            self.p = 3;
        }
        let mut doc = self.nodes()?;
        if self.p != self.b.len() {
            return Err(Stop);
        }
        if bom && let Some(f) = doc.format_mut() {
            f.leading.insert(0, '\u{FEFF}');
        }
        Ok(doc)
    }

    /// `nodes := (line-space* node)* line-space*`, as kdl builds it.
    fn nodes(&mut self) -> R<KdlDocument> {
        let lead_start = self.p;
        self.skip_leading()?;
        let mut leading = self.text(lead_start, self.p);
        let start = self.p;
        let base = self.nodes.len();
        // The first node: its own leading is empty, as the document's
        // leading took it all; it gets the document's leading instead.
        if let Some(node) = self.base_node(leading)? {
            leading = "";
            self.nodes.push(node);
            loop {
                let save = self.p;
                let t = self.terminator_len();
                if t == 0 {
                    break;
                }
                self.p += t;
                let node_lead = self.p;
                self.skip_leading()?;
                match self.base_node(self.text(node_lead, self.p))? {
                    Some(node) => self.nodes.push(node),
                    None => {
                        self.p = save;
                        break;
                    }
                }
            }
        } else {
            self.p = start;
        }
        let end = self.p;
        self.p += self.terminator_len();
        let trail_start = self.p;
        self.skip_leading()?;
        let trailing = self.text(trail_start, self.p);
        let mut doc = KdlDocument::new();
        let list = doc.nodes_mut();
        list.reserve_exact(self.nodes.len() - base);
        list.extend(self.nodes.drain(base..));
        doc.set_span(SourceSpan::from((start, end - start)));
        doc.set_format(KdlDocumentFormat {
            leading: leading.into(),
            trailing: trailing.into(),
        });
        Ok(doc)
    }

    /// `base-node`, after its leading space; `None` at `}` or the end.
    fn base_node(&mut self, leading: &str) -> R<Option<KdlNode>> {
        match self.peek() {
            None | Some(b'}') => return Ok(None),
            // `{`: kdl reports a child block without a node name.
            // `(`: type annotations are left to kdl.
            Some(b'{' | b'(') => return Err(Stop),
            _ => {}
        }
        let start = self.p;
        self.node_space0()?;
        let after_ty = self.text(start, self.p);
        let Some(name) = self.string()? else {
            return Err(Stop);
        };
        let mut node = KdlNode::new(self.ident(name));

        let base = self.entries.len();
        loop {
            let save = self.p;
            if !self.node_space0()? {
                break;
            }
            match self.node_entry_rest(save)? {
                Some(e) => self.entries.push(e),
                None => {
                    self.p = save;
                    break;
                }
            }
        }
        let entries = node.entries_mut();
        entries.reserve_exact(self.entries.len() - base);
        entries.extend(self.entries.drain(base..));

        let bc_start = self.p;
        self.before_node_children()?;
        let bc_end = self.p;
        let mut before_children = "";
        let (bt_start, bt_end);
        match self.node_children()? {
            Some(children) => {
                before_children = self.text(bc_start, bc_end);
                node.set_children(children);
                bt_start = self.p;
                if !self.slashdashed_children()? {
                    self.p = bt_start;
                }
                bt_end = self.p;
            }
            None => {
                // `before_node_children` again, from the same place.
                self.p = bc_end;
                (bt_start, bt_end) = (bc_start, bc_end);
            }
        }
        let t = self.terminator_len();
        let terminator = self.text(self.p, self.p + t);
        self.node_space0()?;
        node.set_span(SourceSpan::from((start, self.p - start)));
        let before_terminator = self.text(bt_start, bt_end);
        if let Some(f) = node.format_mut() {
            // `KdlNode::new` wrote a trailing "\n"; kdl leaves it empty.
            // Its allocation is reused for the terminator, usually "\n".
            let mut t = std::mem::take(&mut f.trailing);
            t.clear();
            t.push_str(terminator);
            *f = KdlNodeFormat {
                leading: leading.into(),
                after_ty: after_ty.into(),
                before_children: before_children.into(),
                before_terminator: before_terminator.into(),
                terminator: t,
                ..Default::default()
            };
        }
        Ok(Some(node))
    }

    /// ```text
    /// (node-space+ slashdashed-entries node-space+ slashdashed-children)
    /// | (node-space+ slashdashed-entries) | (node-space+ slashdashed-children)
    /// | node-space*
    /// ```
    /// then `node-space*`.
    fn before_node_children(&mut self) -> R<()> {
        let s0 = self.p;
        self.node_space0()?;
        if !self.starts(b"/-") {
            // None of the slashdash alternatives can match.
            return Ok(());
        }
        self.p = s0;
        let alt1 = self.node_space0()?
            && self.slashdashed_entries()?
            && self.node_space0()?
            && self.slashdashed_children()?;
        if !alt1 {
            self.p = s0;
            let alt2 = self.node_space0()? && self.slashdashed_entries()?;
            if !alt2 {
                self.p = s0;
                let alt3 = self.node_space0()? && self.slashdashed_children()?;
                if !alt3 {
                    self.p = s0;
                    self.node_space0()?;
                }
            }
        }
        self.node_space0()?;
        Ok(())
    }

    /// `separated(1.., slashdash node-entry, node-space+)`
    fn slashdashed_entries(&mut self) -> R<bool> {
        if !self.starts(b"/-") {
            return Ok(false);
        }
        self.deeper()?;
        self.slashdash()?;
        if self.node_entry()?.is_none() {
            self.depth -= 1;
            return Ok(false);
        }
        self.more_slashdashed(|p| Ok(p.node_entry()?.is_some()))?;
        self.depth -= 1;
        Ok(true)
    }

    /// After a first slashdashed item: `(node-space+ slashdash item)*`,
    /// stopping (and rewinding) at the first that does not follow.
    fn more_slashdashed(&mut self, mut item: impl FnMut(&mut Self) -> R<bool>) -> R<()> {
        loop {
            let save = self.p;
            if !self.node_space0()? || !self.starts(b"/-") {
                self.p = save;
                return Ok(());
            }
            self.slashdash()?;
            if !item(self)? {
                self.p = save;
                return Ok(());
            }
        }
    }

    /// `node-space* separated(1.., slashdash node-children, node-space+)`
    fn slashdashed_children(&mut self) -> R<bool> {
        self.node_space0()?;
        if !self.starts(b"/-") {
            return Ok(false);
        }
        self.slashdash()?;
        if self.node_children()?.is_none() {
            return Ok(false);
        }
        self.more_slashdashed(|p| Ok(p.node_children()?.is_some()))?;
        Ok(true)
    }

    /// `'{' nodes '}'`; `None` when there is no `{`.
    fn node_children(&mut self) -> R<Option<KdlDocument>> {
        if self.peek() != Some(b'{') {
            return Ok(None);
        }
        self.deeper()?;
        self.p += 1;
        let doc = self.nodes()?;
        if self.peek() != Some(b'}') {
            return Err(Stop);
        }
        self.p += 1;
        self.depth -= 1;
        Ok(Some(doc))
    }

    // ---- entries -----------------------------------------------------------------

    fn node_entry(&mut self) -> R<Option<KdlEntry>> {
        let ls = self.p;
        self.node_space0()?;
        self.node_entry_rest(ls)
    }

    /// A node entry whose leading `node-space*` (from `ls`) is consumed.
    fn node_entry_rest(&mut self, ls: usize) -> R<Option<KdlEntry>> {
        let save = self.p;
        if !(self.slashdashed_entries()? && self.node_space0()?) {
            self.p = save;
        }
        let leading = self.text(ls, self.p);
        let start = self.p;
        let mut entry = match self.string()? {
            Some(key) => {
                let before_key_space = self.p;
                self.node_space0()?;
                if self.peek() == Some(b'=') {
                    let after_key = self.text(before_key_space, self.p);
                    self.p += 1;
                    let eq_end = self.p;
                    self.node_space0()?;
                    let after_eq = self.text(eq_end, self.p);
                    let Some((value, vs, ve)) = self.value()? else {
                        return Err(Stop);
                    };
                    let mut e = KdlEntry::new_prop(self.ident(key), value);
                    e.set_format(KdlEntryFormat {
                        value_repr: self.text(vs, ve).into(),
                        leading: leading.into(),
                        after_key: after_key.into(),
                        after_eq: after_eq.into(),
                        ..Default::default()
                    });
                    e
                } else {
                    self.p = before_key_space;
                    let mut e = KdlEntry::new(KdlValue::String(key.value));
                    e.set_format(KdlEntryFormat {
                        value_repr: self.text(key.start, key.end).into(),
                        leading: leading.into(),
                        ..Default::default()
                    });
                    e
                }
            }
            None => match self.value()? {
                Some((value, vs, ve)) => {
                    let mut e = KdlEntry::new(value);
                    e.set_format(KdlEntryFormat {
                        value_repr: self.text(vs, ve).into(),
                        leading: leading.into(),
                        ..Default::default()
                    });
                    e
                }
                None => return Ok(None),
            },
        };
        entry.set_span(SourceSpan::from((start, self.p - start)));
        Ok(Some(entry))
    }

    fn ident(&self, s: Str) -> KdlIdentifier {
        let mut id = KdlIdentifier::from(s.value);
        id.set_repr(self.text(s.start, s.end));
        id.set_span(SourceSpan::from((s.start, s.end - s.start)));
        id
    }

    /// `value := keyword | number | string` (type annotations declined).
    /// `None` where no value can start.
    fn value(&mut self) -> R<Option<(KdlValue, usize, usize)>> {
        let start = self.p;
        let next = self.at(self.p + 1);
        match self.peek() {
            Some(b'#') if !matches!(next, Some(b'#' | b'"')) => {
                let rest = &self.b[self.p + 1..];
                let (v, len) = if rest.starts_with(b"true") {
                    (KdlValue::Bool(true), 4)
                } else if rest.starts_with(b"false") {
                    (KdlValue::Bool(false), 5)
                } else if rest.starts_with(b"null") {
                    (KdlValue::Null, 4)
                } else if rest.starts_with(b"nan") {
                    (KdlValue::Float(f64::NAN), 3)
                } else if rest.starts_with(b"inf") {
                    (KdlValue::Float(f64::INFINITY), 3)
                } else if rest.starts_with(b"-inf") {
                    (KdlValue::Float(f64::NEG_INFINITY), 4)
                } else {
                    return Err(Stop);
                };
                self.p += 1 + len;
                Ok(Some((v, start, self.p)))
            }
            Some(b'0'..=b'9') => self.number().map(|v| Some((v, start, self.p))),
            Some(b'+' | b'-') if next.is_some_and(|c| c.is_ascii_digit()) => {
                self.number().map(|v| Some((v, start, self.p)))
            }
            Some(b'(') => Err(Stop),
            _ => match self.string()? {
                Some(s) => Ok(Some((KdlValue::String(s.value), s.start, s.end))),
                None => match self.peek() {
                    // Nothing here starts a value: the node goes on with
                    // children, ends, or is commented on.
                    None | Some(b'{' | b'}' | b';' | b'/') => Ok(None),
                    _ if self.newline_len(self.p) > 0 => Ok(None),
                    _ => Err(Stop),
                },
            },
        }
    }

    // ---- strings -------------------------------------------------------------------

    /// `string := identifier-string | quoted-string | raw-string`, followed
    /// by a value terminator. `None` where no string can start.
    fn string(&mut self) -> R<Option<Str>> {
        let start = self.p;
        let Some(c) = self.peek() else {
            return Ok(None);
        };
        let s = match c {
            b'"' => self.quoted_string()?,
            b'#' => {
                let hashes = self.b[start..].iter().take_while(|&&b| b == b'#').count();
                if self.at(start + hashes) != Some(b'"') {
                    return Ok(None);
                }
                self.raw_string(hashes)?
            }
            _ => {
                let digit = |i: usize| self.at(i).is_some_and(|c| c.is_ascii_digit());
                let keyword_check = match c {
                    b'0'..=b'9' => return Ok(None),
                    b'+' | b'-' => {
                        if digit(start + 1) || (self.at(start + 1) == Some(b'.') && digit(start + 2)) {
                            return Ok(None);
                        }
                        false
                    }
                    b'.' => {
                        if digit(start + 1) {
                            return Ok(None);
                        }
                        false
                    }
                    _ => true,
                };
                let end = self.ident_run(start);
                if end == start {
                    return Ok(None);
                }
                let t = self.text(start, end);
                if (keyword_check && matches!(t, "true" | "false" | "null" | "inf" | "nan")) || t == "-inf" {
                    return Err(Stop);
                }
                self.p = end;
                Str {
                    value: t.to_string(),
                    start,
                    end,
                }
            }
        };
        self.value_terminator_check()?;
        Ok(Some(s))
    }

    /// The end of the run of identifier characters from `i`.
    fn ident_run(&self, mut i: usize) -> usize {
        while let Some(&b) = self.b.get(i) {
            if b < 0x80 {
                if !IDENT_ASCII[b as usize] {
                    break;
                }
                i += 1;
            } else {
                match self.char_at(i) {
                    Some(c) if is_ident_char(c) => i += c.len_utf8(),
                    _ => break,
                }
            }
        }
        i
    }

    /// A single-line quoted string, at `"`.
    fn quoted_string(&mut self) -> R<Str> {
        let start = self.p;
        if self.starts(b"\"\"\"") {
            return Err(Stop); // multi-line strings are left to kdl
        }
        let mut i = start + 1;
        // The common case: no escapes.
        loop {
            match self.at(i) {
                None => return Err(Stop),
                Some(b'"') => {
                    self.p = i + 1;
                    return Ok(Str {
                        value: self.text(start + 1, i).to_string(),
                        start,
                        end: self.p,
                    });
                }
                Some(b'\\') => break,
                Some(0x20..=0x7F) => i += 1,
                Some(b'\t') => i += 1,
                Some(b) if b < 0x80 => return Err(Stop), // newline or control
                Some(_) => i += self.string_char(i)?.len_utf8(),
            }
        }
        let mut value = String::from(self.text(start + 1, i));
        loop {
            match self.at(i) {
                None => return Err(Stop),
                Some(b'"') => {
                    self.p = i + 1;
                    return Ok(Str {
                        value,
                        start,
                        end: self.p,
                    });
                }
                Some(b'\\') => {
                    i += 1;
                    let ws = |p: &Self, i: usize| p.space_len(i).max(p.newline_len(i));
                    if ws(self, i) > 0 {
                        while let n @ 1.. = ws(self, i) {
                            i += n;
                        }
                        continue;
                    }
                    let c = match self.at(i) {
                        Some(b'\\') => '\\',
                        Some(b'"') => '"',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{C}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b's') => ' ',
                        Some(b'u') if self.at(i + 1) == Some(b'{') => {
                            let digits = self.b[i + 2..]
                                .iter()
                                .take(6)
                                .take_while(|c| c.is_ascii_hexdigit())
                                .count();
                            if digits == 0 || self.at(i + 2 + digits) != Some(b'}') {
                                return Err(Stop);
                            }
                            let hex = self.text(i + 2, i + 2 + digits);
                            let v = u32::from_str_radix(hex, 16).map_err(|_| Stop)?;
                            let c = char::from_u32(v).ok_or(Stop)?;
                            i += 2 + digits; // now at `}`
                            c
                        }
                        _ => return Err(Stop),
                    };
                    i += 1;
                    value.push(c);
                }
                Some(b @ 0x20..=0x7F) => {
                    value.push(char::from(b));
                    i += 1;
                }
                Some(b'\t') => {
                    value.push('\t');
                    i += 1;
                }
                Some(b) if b < 0x80 => return Err(Stop),
                Some(_) => {
                    let c = self.string_char(i)?;
                    value.push(c);
                    i += c.len_utf8();
                }
            }
        }
    }

    /// A non-ASCII character in a string: not a newline or disallowed.
    fn string_char(&self, i: usize) -> R<char> {
        match self.char_at(i) {
            Some(c) if !is_newline_char(c) && !is_disallowed(c) => Ok(c),
            _ => Err(Stop),
        }
    }

    /// A single-line raw string, at its first `#`.
    fn raw_string(&mut self, hashes: usize) -> R<Str> {
        let start = self.p;
        let open = start + hashes; // the `"`
        if self.b[open..].starts_with(b"\"\"\"") {
            return Err(Stop); // multi-line (or invalid): left to kdl
        }
        let mut i = open + 1;
        loop {
            match self.at(i) {
                None => return Err(Stop),
                Some(b'"')
                    if self.b.len() >= i + 1 + hashes
                        && self.b[i + 1..i + 1 + hashes].iter().all(|&b| b == b'#') =>
                {
                    break;
                }
                Some(b'\t') => i += 1,
                Some(b) if b < 0x20 => return Err(Stop),
                Some(b) if b < 0x80 => i += 1,
                Some(_) => i += self.string_char(i)?.len_utf8(),
            }
        }
        let body = self.text(open + 1, i);
        if body == "\"" {
            return Err(Stop);
        }
        self.p = i + 1 + hashes;
        Ok(Str {
            value: body.to_string(),
            start,
            end: self.p,
        })
    }

    // ---- numbers -----------------------------------------------------------------

    /// A number, at a digit or a sign before one.
    fn number(&mut self) -> R<KdlValue> {
        let start = self.p;
        let negative = match self.peek() {
            Some(b'-') => {
                self.p += 1;
                true
            }
            Some(b'+') => {
                self.p += 1;
                false
            }
            _ => false,
        };
        let radix = match (self.peek(), self.at(self.p + 1)) {
            (Some(b'0'), Some(b'x' | b'X')) => 16,
            (Some(b'0'), Some(b'o' | b'O')) => 8,
            (Some(b'0'), Some(b'b' | b'B')) => 2,
            _ => 10,
        };
        if radix != 10 {
            self.p += 2;
            let magnitude = self.digits(radix)?.ok_or(Stop)?;
            self.value_terminator_check()?;
            return Ok(KdlValue::Integer(if negative { -magnitude } else { magnitude }));
        }
        let int = self.digits(10)?.ok_or(Stop)?;
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.p += 1;
            self.digits(10)?.ok_or(Stop)?;
            float = true;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.p += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.p += 1;
            }
            self.digits(10)?.ok_or(Stop)?;
            float = true;
        }
        self.value_terminator_check()?;
        if !float {
            return Ok(KdlValue::Integer(if negative { -int } else { int }));
        }
        let t = self.text(start, self.p);
        let v: f64 = if t.contains('_') {
            t.replace('_', "").parse()
        } else {
            t.parse()
        }
        .map_err(|_| Stop)?;
        Ok(KdlValue::Float(v))
    }

    /// `digit (digit | '_')*` in `radix`: the value, `None` without a
    /// first digit, a stop when it overflows an `i128` (as kdl fails then).
    fn digits(&mut self, radix: u32) -> R<Option<i128>> {
        let first = self.peek().and_then(|c| (c as char).to_digit(radix));
        if first.is_none() {
            return Ok(None);
        }
        let mut v: i128 = 0;
        while let Some(c) = self.peek() {
            if c == b'_' {
                self.p += 1;
                continue;
            }
            let Some(d) = (c as char).to_digit(radix) else {
                break;
            };
            v = v
                .checked_mul(i128::from(radix))
                .and_then(|v| v.checked_add(i128::from(d)))
                .ok_or(Stop)?;
            self.p += 1;
        }
        Ok(Some(v))
    }
}
