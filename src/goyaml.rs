//! YAML text as go-yaml's emitter (a port of libyaml's) writes a value, for
//! the renderers whose output must match their peer's byte for byte:
//! kustomize (`kustomize build`) and Helm (`toYaml`) both write through
//! go-yaml. Block style, two-space indentation, mapping keys in go-yaml's
//! order ([`key_order`]), strings plain where they read back as the same
//! string and quoted or in a literal block otherwise, long lines folded at
//! 80 columns.
//!
//! It takes a tree ([`Tree`]) and gives text. How a plain scalar reads back
//! differs between the callers' YAML readers, so the tree says it
//! ([`Tree::plain_is_string`]). Every character of a string is written so
//! that it reads back as itself: what a style cannot hold moves the string
//! to a quoted style, and double quotes escape what is not printable.

use std::borrow::Cow;
use std::cmp::Ordering;

const BEST_WIDTH: usize = 80;
const BEST_INDENT: i32 = 2;

/// What a node is, as the emitter sees it.
pub enum Shape<'a, T> {
    /// A null, boolean or number, in the words go-yaml writes (`null`,
    /// `true`, `1.5`).
    Word(Cow<'a, str>),
    Str(Cow<'a, str>),
    Seq(&'a [T]),
    /// A mapping's entries, in any order: they are written in go-yaml's.
    Map(Vec<(&'a str, &'a T)>),
}

/// A tree of values to write.
pub trait Tree: Sized {
    /// What this node is. An error stops the writing.
    fn shape(&self) -> Result<Shape<'_, Self>, String>;

    /// Whether go-yaml asks for this string (one line, not empty) to be
    /// written plain: the reader's typing rules read it back as a string,
    /// and it is no base-60 float ([`is_base60_float`]).
    fn plain_is_string(text: &str) -> bool;
}

/// Where the items of a sequence that is a mapping's value start.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Sequences {
    /// At the key's column (go-yaml v2).
    AtKey,
    /// Indented under the key (go-yaml v3).
    Indented,
}

/// Write one document (without `---`), ending in a newline. On an error
/// what was written so far stays in `out`.
pub fn write_document<T: Tree>(root: &T, sequences: Sequences, out: &mut String) -> Result<(), String> {
    let mut e = Emitter {
        out,
        sequences,
        column: 0,
        indent: -1,
        indents: Vec::new(),
        whitespace: true,
        indention: true,
    };
    e.node(root, false)?;
    // Document end: a line break after the content.
    e.write_indent();
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// The style go-yaml asks for a string; the emitter may still pick a
/// quoted one for its characters.
fn string_style<T: Tree>(s: &str) -> Style {
    if s.contains('\n') {
        Style::Literal
    } else if !s.is_empty() && T::plain_is_string(s) {
        Style::Plain
    } else {
        Style::Double
    }
}

struct Emitter<'o> {
    out: &'o mut String,
    sequences: Sequences,
    column: usize,
    indent: i32,
    indents: Vec<i32>,
    whitespace: bool,
    indention: bool,
}

impl Emitter<'_> {
    /// Write a node; `mapping` when it is a mapping's value.
    fn node<T: Tree>(&mut self, node: &T, mapping: bool) -> Result<(), String> {
        match node.shape()? {
            Shape::Word(word) => self.scalar(&word, Style::Plain, false),
            Shape::Str(s) => self.scalar(&s, string_style::<T>(&s), false),
            Shape::Seq([]) => {
                self.indicator("[", true, true, false);
                self.indicator("]", false, false, false);
            }
            Shape::Map(entries) if entries.is_empty() => {
                self.indicator("{", true, true, false);
                self.indicator("}", false, false, false);
            }
            Shape::Seq(items) => {
                let indentless = mapping && !self.indention && self.sequences == Sequences::AtKey;
                self.increase_indent(false, indentless);
                for item in items {
                    self.write_indent();
                    self.indicator("-", true, false, true);
                    self.node(item, false)?;
                }
                self.pop_indent();
            }
            Shape::Map(mut entries) => {
                sort_keys(&mut entries, |a, b| key_order(a.0, b.0));
                self.increase_indent(false, false);
                for (key, value) in entries {
                    self.write_indent();
                    let style = string_style::<T>(key);
                    if !key.chars().any(is_break) && key.len() <= 128 {
                        self.scalar(key, style, true);
                        self.indicator(":", false, false, false);
                    } else {
                        self.indicator("?", true, false, true);
                        self.scalar(key, style, false);
                        self.write_indent();
                        self.indicator(":", true, false, true);
                    }
                    self.node(value, true)?;
                }
                self.pop_indent();
            }
        }
        Ok(())
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if !indentless {
            self.indent += BEST_INDENT;
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn indicator(&mut self, indicator: &str, need_whitespace: bool, is_whitespace: bool, is_indention: bool) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        for c in indicator.chars() {
            self.put(c);
        }
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    /// Write a scalar in the style asked for, or the first one after it
    /// that can hold its text; a simple key stays on one line.
    fn scalar(&mut self, value: &str, requested: Style, simple_key: bool) {
        let a = analyze(value);
        let mut style = requested;
        if simple_key && a.multiline {
            style = Style::Double;
        }
        if style == Style::Plain {
            if !a.block_plain_allowed {
                style = Style::Single;
            }
            if value.is_empty() && simple_key {
                style = Style::Single;
            }
        }
        if style == Style::Single && !a.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block_allowed || simple_key) {
            style = Style::Double;
        }
        self.increase_indent(true, false);
        let allow_breaks = !simple_key;
        match style {
            Style::Plain => {
                if !self.whitespace {
                    self.put(' ');
                }
                self.folded(value, allow_breaks, None);
            }
            Style::Single => {
                self.indicator("'", true, false, false);
                self.folded(value, allow_breaks, Some('\''));
                self.indicator("'", false, false, false);
            }
            Style::Double => self.double(value, allow_breaks),
            Style::Literal => self.literal(value),
        }
        self.pop_indent();
    }

    /// The text of a plain or single-quoted scalar (`quote`): a space may
    /// become a line break past the best width, a line break is written
    /// twice (once for the folding a reader undoes), and a single quote is
    /// doubled. A quoted scalar does not fold at its first or last
    /// character.
    fn folded(&mut self, value: &str, allow_breaks: bool, quote: Option<char>) {
        let chars: Vec<char> = value.chars().collect();
        let mut spaces = false;
        let mut breaks = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let inside = quote.is_none() || (i > 0 && i < chars.len() - 1);
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && inside
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.line_char(c, &mut breaks);
            } else {
                self.line_char(c, &mut breaks);
                if Some(c) == quote {
                    self.put(c);
                }
                spaces = false;
            }
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn double(&mut self, value: &str, allow_breaks: bool) {
        self.indicator("\"", true, false, false);
        let chars: Vec<char> = value.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match c {
                    '\0' => self.put('0'),
                    '\u{7}' => self.put('a'),
                    '\u{8}' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\u{b}' => self.put('v'),
                    '\u{c}' => self.put('f'),
                    '\r' => self.put('r'),
                    '\u{1b}' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{a0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    _ => {
                        let v = c as u32;
                        let (letter, width) = if v <= 0xFF {
                            ('x', 2)
                        } else if v <= 0xFFFF {
                            ('u', 4)
                        } else {
                            ('U', 8)
                        };
                        self.put(letter);
                        for k in (0..width).rev() {
                            let digit = (v >> (k * 4)) & 0xF;
                            self.put(char::from_digit(digit, 16).unwrap_or('0').to_ascii_uppercase());
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks && !spaces && self.column > BEST_WIDTH && i > 0 && i < chars.len() - 1 {
                    self.write_indent();
                    if chars.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn literal(&mut self, value: &str) {
        self.indicator("|", true, false, false);
        // Block scalar hints: an indentation indicator when the text starts
        // with a space or a break, a chomping indicator from its end.
        let first = value.chars().next();
        if first.is_some_and(|c| c == ' ' || is_break(c)) {
            self.indicator(&BEST_INDENT.to_string(), false, false, false);
        }
        let mut rev = value.chars().rev();
        let chomp = match (rev.next(), rev.next()) {
            (None, _) => Some("-"),
            (Some(last), _) if !is_break(last) => Some("-"),
            (Some(_), None) => Some("+"),
            (Some(_), Some(prev)) if is_break(prev) => Some("+"),
            _ => None,
        };
        if let Some(chomp) = chomp {
            self.indicator(chomp, false, false, false);
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for c in value.chars() {
            self.line_char(c, &mut breaks);
        }
    }

    /// One character of a scalar's text as it stands in its lines: a
    /// break ends a line, the first character after breaks is indented.
    /// `breaks`: whether the last character was a break.
    fn line_char(&mut self, c: char, breaks: &mut bool) {
        if is_break(c) {
            self.write_break(c);
            self.indention = true;
            *breaks = true;
        } else {
            if *breaks {
                self.write_indent();
            }
            self.put(c);
            self.indention = false;
            *breaks = false;
        }
    }
}

/// Which styles can hold a scalar's text (libyaml's `analyze_scalar`, for
/// the block context).
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// libyaml's `is_printable` (which leaves out characters beyond the BMP).
fn is_printable(c: char) -> bool {
    let v = c as u32;
    v == 0x0A
        || (0x20..=0x7E).contains(&v)
        || (0xA0..=0xD7FF).contains(&v)
        || ((0xE000..=0xFFFD).contains(&v) && v != 0xFEFF)
}

fn analyze(value: &str) -> Analysis {
    if value.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let mut block_indicators = value.starts_with("---") || value.starts_with("...");
    let mut line_breaks = false;
    let mut special_characters = false;
    let mut leading_space = false;
    let mut leading_break = false;
    let mut trailing_space = false;
    let mut trailing_break = false;
    let mut break_space = false;
    let mut space_break = false;
    let mut preceded_by_whitespace = true;
    let mut previous_space = false;
    let mut previous_break = false;
    let chars: Vec<char> = value.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = chars.get(i + 1).is_none_or(|&n| is_blank(n));
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@'
                | '`' => {
                    block_indicators = true;
                }
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if !is_printable(c) {
            special_characters = true;
        }
        let first = i == 0;
        let last = i + 1 == chars.len();
        if c == ' ' {
            leading_space |= first;
            trailing_space |= last;
            break_space |= previous_break;
        } else if is_break(c) {
            line_breaks = true;
            leading_break |= first;
            trailing_break |= last;
            space_break |= previous_space;
        }
        previous_space = c == ' ';
        previous_break = is_break(c);
        preceded_by_whitespace = is_blank(c) || is_break(c);
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special_characters {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
        a.block_allowed = false;
    }
    if line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

/// go-yaml's `isBase60Float`: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
/// YAML 1.1 reads such text (`1:20`) as a number, so go-yaml quotes it.
pub fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    i += 1;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        i += 1;
        let start = i;
        if b.get(i).is_some_and(|c| (b'0'..=b'5').contains(c)) && b.get(i + 1).is_some_and(u8::is_ascii_digit)
        {
            i += 2;
        } else if b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// Sort `items` by `order` as Go's `sort.Sort` does for up to 12 items
/// (an insertion sort), and by a merge sort beyond: go-yaml's key order
/// is not a total order ("1" < "01" < "0a" < "1"), and a sort that checks
/// for that (the standard library's may panic) must not see it. Neither
/// sort compares an item with itself or needs the order to be consistent.
fn sort_keys<T>(items: &mut Vec<T>, order: impl Fn(&T, &T) -> Ordering + Copy) {
    if items.len() <= 12 {
        for i in 1..items.len() {
            let mut j = i;
            while j > 0 && order(&items[j], &items[j - 1]) == Ordering::Less {
                items.swap(j, j - 1);
                j -= 1;
            }
        }
        return;
    }
    let right = items.split_off(items.len() / 2);
    let mut left = std::mem::take(items);
    let mut right = right;
    sort_keys(&mut left, order);
    sort_keys(&mut right, order);
    let mut right = right.into_iter().peekable();
    for l in left {
        while let Some(r) = right.next_if(|r| order(r, &l) == Ordering::Less) {
            items.push(r);
        }
        items.push(l);
    }
    items.extend(right);
}

/// go-yaml's order of mapping keys: runs of digits compare as numbers,
/// letters after other characters.
pub fn key_order(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return key_order_by(
            a.as_bytes(),
            b.as_bytes(),
            |c| c.is_ascii_alphabetic(),
            |c| *c as u32,
        );
    }
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    key_order_by(&ar, &br, |c| c.is_alphabetic(), |c| *c as u32)
}

fn key_order_by<T: PartialEq + Ord>(
    ar: &[T],
    br: &[T],
    letter: impl Fn(&T) -> bool,
    code: impl Fn(&T) -> u32,
) -> Ordering {
    let digit = |c: &T| (u32::from(b'0')..=u32::from(b'9')).contains(&code(c));
    let zero = |c: &T| code(c) == u32::from(b'0');
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = letter(&ar[i]);
        let bl = letter(&br[i]);
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl { Ordering::Less } else { Ordering::Greater };
        }
        let mut an: i64 = 0;
        let mut bn: i64 = 0;
        if zero(&ar[i]) || zero(&br[i]) {
            let mut j = i;
            while j > 0 && digit(&ar[j - 1]) {
                j -= 1;
                if !zero(&ar[j]) {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && digit(&ar[ai]) {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(code(&ar[ai]) - u32::from(b'0')));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && digit(&br[bi]) {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(code(&br[bi]) - u32::from(b'0')));
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_is_go_yamls() {
        let sorted = |keys: &[&'static str]| {
            let mut keys = keys.to_vec();
            sort_keys(&mut keys, |a, b| key_order(a, b));
            keys
        };
        assert_eq!(
            sorted(&["b", "a10", "a9", "A", "_x", "a-b", "ab", "a", "Z", "1"]),
            ["_x", "1", "A", "Z", "a", "a-b", "a9", "a10", "ab", "b"]
        );
        assert_eq!(
            sorted(&["a10", "a2", "a_b", "aB", "b", "A", "1", "10", "9"]),
            ["1", "9", "10", "A", "a_b", "a2", "a10", "aB", "b"]
        );
        assert_eq!(sorted(&["é2", "é10", "éa", "é_"]), ["é_", "é2", "é10", "éa"]);
        // Not a total order: every string of 1 to 3 of `0`, `1`, `a` (39
        // keys, so the merge sort runs too) sorts without a panic, each
        // key once.
        let mut keys: Vec<String> = Vec::new();
        for len in 1..=3u32 {
            for n in 0..3usize.pow(len) {
                let key = (0..len)
                    .map(|i| ['0', '1', 'a'][n / 3usize.pow(i) % 3])
                    .collect::<String>();
                keys.push(key);
            }
        }
        let mut once = keys.clone();
        sort_keys(&mut once, |a, b| key_order(a, b));
        let (mut a, mut b) = (once, keys);
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    #[test]
    fn base60_floats() {
        for s in ["1:20", "-1:20", "+190:20:30.15", "1_0:5:9", "1:7", "1:20."] {
            assert!(is_base60_float(s), "{s}");
        }
        for s in ["", "1", "1:", ":20", "1:75", "1:123", "a:1", "1:2x", "1.5:2"] {
            assert!(!is_base60_float(s), "{s}");
        }
    }
}
