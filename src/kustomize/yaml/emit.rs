//! Writing objects as `kustomize build` writes them. kustomize turns each
//! object into JSON and back into YAML with yaml.v2, so its output has keys
//! in yaml.v2's order, values as JSON typed them, and yaml.v2's (libyaml's)
//! choices of quoting, line folding at 80 columns, literal blocks for
//! multi-line strings and two-space indentation with list items at the level
//! of their key. This is a port of the parts of that emitter the output
//! uses, so that the bytes match.

use std::cmp::Ordering;

use super::scalar::{self, Out};
use super::{Node, Value};

const BEST_WIDTH: usize = 80;
const BEST_INDENT: i32 = 2;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

struct Emitter<'o> {
    out: &'o mut String,
    column: usize,
    indent: i32,
    indents: Vec<i32>,
    whitespace: bool,
    indention: bool,
    mapping_context: bool,
    simple_key_context: bool,
}

/// Write one object (a document without `---`), ending in a newline.
pub fn emit_document(node: &Node, out: &mut String) -> Result<(), String> {
    let mut e = Emitter {
        out,
        column: 0,
        indent: -1,
        indents: Vec::new(),
        whitespace: true,
        indention: true,
        mapping_context: false,
        simple_key_context: false,
    };
    e.node(node, false, false)?;
    // Document end: a line break after the content.
    e.write_indent();
    Ok(())
}

impl Emitter<'_> {
    fn node(&mut self, node: &Node, mapping: bool, simple_key: bool) -> Result<(), String> {
        self.mapping_context = mapping;
        self.simple_key_context = simple_key;
        match &node.value {
            Value::Scalar(s) => {
                let (text, style) = match scalar::output(s)? {
                    Out::Null => ("null".to_string(), Style::Plain),
                    Out::Bool(b) => (b.to_string(), Style::Plain),
                    Out::Number(n) => (n, Style::Plain),
                    Out::Str(s) => {
                        let style = if s.contains('\n') {
                            Style::Literal
                        } else if !s.is_empty() && scalar::plain_is_string(&s) {
                            Style::Plain
                        } else {
                            Style::Double
                        };
                        (s.into_owned(), style)
                    }
                };
                self.scalar(&text, style);
                Ok(())
            }
            Value::Seq(items) if items.is_empty() => {
                self.indicator("[", true, true, false);
                self.indicator("]", false, false, false);
                Ok(())
            }
            Value::Map(entries) if entries.is_empty() => {
                self.indicator("{", true, true, false);
                self.indicator("}", false, false, false);
                Ok(())
            }
            Value::Seq(items) => {
                let indentless = self.mapping_context && !self.indention;
                self.increase_indent(false, indentless);
                for item in items {
                    self.write_indent();
                    self.indicator("-", true, false, true);
                    self.node(item, false, false)?;
                }
                self.pop_indent();
                Ok(())
            }
            Value::Map(entries) => {
                self.increase_indent(false, false);
                let mut order: Vec<usize> = (0..entries.len()).collect();
                order.sort_by(|&a, &b| key_order(&entries[a].key, &entries[b].key));
                for i in order {
                    let entry = &entries[i];
                    self.write_indent();
                    let multiline = entry.key.chars().any(is_break);
                    if !multiline && entry.key.len() <= 128 {
                        self.key(&entry.key, true);
                        self.indicator(":", false, false, false);
                    } else {
                        self.indicator("?", true, false, true);
                        self.key(&entry.key, false);
                        self.write_indent();
                        self.indicator(":", true, false, true);
                    }
                    self.node(&entry.value, true, false)?;
                }
                self.pop_indent();
                Ok(())
            }
        }
    }

    fn key(&mut self, key: &str, simple: bool) {
        self.mapping_context = true;
        self.simple_key_context = simple;
        let style = if key.contains('\n') {
            Style::Literal
        } else if scalar::plain_is_string(key) {
            Style::Plain
        } else {
            Style::Double
        };
        self.scalar(key, style);
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

    fn scalar(&mut self, value: &str, requested: Style) {
        let a = analyze(value);
        let mut style = requested;
        if self.simple_key_context && a.multiline {
            style = Style::Double;
        }
        if style == Style::Plain {
            if !a.block_plain_allowed {
                style = Style::Single;
            }
            if value.is_empty() && self.simple_key_context {
                style = Style::Single;
            }
        }
        if style == Style::Single && !a.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block_allowed || self.simple_key_context) {
            style = Style::Double;
        }
        self.increase_indent(true, false);
        let allow_breaks = !self.simple_key_context;
        match style {
            Style::Plain => self.plain(value, allow_breaks),
            Style::Single => self.single(value, allow_breaks),
            Style::Double => self.double(value, allow_breaks),
            Style::Literal => self.literal(value),
        }
        self.pop_indent();
    }

    fn plain(&mut self, value: &str, allow_breaks: bool) {
        if !self.whitespace {
            self.put(' ');
        }
        let chars: Vec<char> = value.chars().collect();
        let mut spaces = false;
        let mut breaks = false;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == ' ' {
                if allow_breaks && !spaces && self.column > BEST_WIDTH && chars.get(i + 1) != Some(&' ') {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
            i += 1;
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    fn single(&mut self, value: &str, allow_breaks: bool) {
        self.indicator("'", true, false, false);
        let chars: Vec<char> = value.chars().collect();
        let mut spaces = false;
        let mut breaks = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i < chars.len() - 1
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
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.indicator("'", false, false, false);
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
            if is_break(c) {
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

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
        let last = i + 1 == chars.len();
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if last {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if last {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
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

/// yaml.v2's order of mapping keys: runs of digits compare as numbers,
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
    use super::super::parse_documents;
    use super::*;

    fn emit(text: &str) -> String {
        let docs = parse_documents(text).unwrap();
        let mut out = String::new();
        emit_document(docs[0].node.as_ref().unwrap(), &mut out).unwrap();
        out
    }

    #[test]
    fn like_kustomize() {
        // Input and output from `kubectl kustomize` (kustomize v5.5).
        let input = r##"kind: ConfigMap
apiVersion: v1
metadata: {name: a, labels: {z: "1", a: yes}}
data:
  f: 1.0
  g: "1.0"
  h: yes
  aa: "tab\there"
  bb: "ü"
  cc: "#x"
  dd: "x #y"
  ee: ""
  ff: "="
  m: "multi\nline\n"
  n: ~
  r: "  lead"
  s: "a: b"
  t: 'it''s'
  u: "- x"
  z: "trailing \n"
spec:
  list: [1, 2, {b: 1, a: 2}]
  emptyl: []
  emptym: {}
  nested: [[a, b], []]
  long: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb cccccccccccccccc"
"##;
        let want = r##"apiVersion: v1
data:
  aa: "tab\there"
  bb: ü
  cc: '#x'
  dd: 'x #y'
  ee: ""
  f: 1
  ff: =
  g: "1.0"
  h: "yes"
  m: |
    multi
    line
  "n": null
  r: '  lead'
  s: 'a: b'
  t: it's
  u: '- x'
  z: "trailing \n"
kind: ConfigMap
metadata:
  labels:
    a: "yes"
    z: "1"
  name: a
spec:
  emptyl: []
  emptym: {}
  list:
  - 1
  - 2
  - a: 2
    b: 1
  long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
    bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb cccccccccccccccc
  nested:
  - - a
    - b
  - []
"##;
        assert_eq!(emit(input), want);
    }

    #[test]
    fn key_order_is_yaml_v2s() {
        let mut keys = vec!["b", "a10", "a9", "A", "_x", "a-b", "ab", "a", "Z", "1"];
        keys.sort_by(|a, b| key_order(a, b));
        assert_eq!(keys, ["_x", "1", "A", "Z", "a", "a-b", "a9", "a10", "ab", "b"]);
    }
}
