//! The parser of Go's `text/template`: builds a tree per template (the
//! file's own, and one per `define`/`block`) as Go's `parse/parse.go`
//! does, with the same error messages (`template: NAME:LINE: …`) and the
//! same node positions (they appear in execution errors).

use crate::helm::FastMap;
use std::fmt::{self, Write as _};
use std::rc::Rc;

use super::lex::{Item, Tok, lex};
use crate::helm::value::Str;

/// A parsed template.
#[derive(Debug)]
pub struct Tree {
    /// The template's name (the file, or the name of a `define`).
    pub name: Str,
    /// The file it was parsed from: error locations name it.
    pub parse_name: Str,
    /// The file's text, to turn positions into lines and columns.
    pub text: Rc<str>,
    pub root: Vec<Node>,
}

#[derive(Debug)]
pub enum Node {
    /// Text between actions: a range of the file's text.
    Text {
        src: Rc<str>,
        start: u32,
        end: u32,
    },
    Action(Pipe),
    If(Box<Branch>),
    Range(Box<Branch>),
    With(Box<Branch>),
    Template(Box<Call>),
    Break(u32),
    Continue(u32),
}

#[derive(Debug)]
pub struct Branch {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Debug)]
pub struct Call {
    pub pos: u32,
    pub name: Str,
    pub pipe: Option<Pipe>,
}

#[derive(Debug)]
pub struct Pipe {
    pub pos: u32,
    pub is_assign: bool,
    pub decl: Vec<Str>,
    pub cmds: Vec<Command>,
}

#[derive(Debug)]
pub struct Command {
    pub pos: u32,
    pub args: Vec<Arg>,
}

#[derive(Debug)]
pub enum Arg {
    /// `.A.B`
    Field {
        pos: u32,
        idents: Vec<Str>,
    },
    /// `$x.A.B`: `idents[0]` is the variable.
    Variable {
        pos: u32,
        idents: Vec<Str>,
    },
    /// `(pipe).A.B`, or fields after a function name.
    Chain {
        pos: u32,
        node: Box<Arg>,
        fields: Vec<Str>,
    },
    /// A function name.
    Func {
        pos: u32,
        name: Str,
        id: u16,
    },
    Dot(u32),
    Nil(u32),
    Bool(u32, bool),
    Number(u32, Box<Number>),
    String {
        pos: u32,
        quoted: Str,
        text: Str,
    },
    Pipe(Box<Pipe>),
}

#[derive(Debug, Default)]
pub struct Number {
    pub text: String,
    pub is_int: bool,
    pub is_uint: bool,
    pub is_float: bool,
    pub is_complex: bool,
    pub int: i64,
    pub uint: u64,
    pub float: f64,
}

impl Arg {
    pub fn pos(&self) -> u32 {
        match self {
            Arg::Field { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Func { pos, .. }
            | Arg::Dot(pos)
            | Arg::Nil(pos)
            | Arg::Bool(pos, _)
            | Arg::Number(pos, _)
            | Arg::String { pos, .. } => *pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

// ---- printing nodes back (Go's Node.String, used in error messages) ------------

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field { idents, .. } => {
                for i in idents {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Variable { idents, .. } => f.write_str(&idents.join(".")),
            Arg::Chain { node, fields, .. } => {
                if let Arg::Pipe(p) = node.as_ref() {
                    write!(f, "({p})")?;
                } else {
                    write!(f, "{node}")?;
                }
                for x in fields {
                    write!(f, ".{x}")?;
                }
                Ok(())
            }
            Arg::Func { name, .. } => f.write_str(name),
            Arg::Dot(_) => f.write_str("."),
            Arg::Nil(_) => f.write_str("nil"),
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Number(_, n) => f.write_str(&n.text),
            Arg::String { quoted, .. } => f.write_str(quoted),
            Arg::Pipe(p) => write!(f, "{p}"),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_char(' ')?;
            }
            if let Arg::Pipe(p) = a {
                write!(f, "({p})")?;
            } else {
                write!(f, "{a}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, list: &[Node]) -> fmt::Result {
    for n in list {
        write!(f, "{n}")?;
    }
    Ok(())
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Text { src, start, end } => f.write_str(&src[*start as usize..*end as usize]),
            Node::Action(p) => write!(f, "{{{{{p}}}}}"),
            Node::If(b) | Node::Range(b) | Node::With(b) => {
                let kw = match self {
                    Node::If(_) => "if",
                    Node::Range(_) => "range",
                    _ => "with",
                };
                write!(f, "{{{{{kw} {}}}}}", b.pipe)?;
                write_list(f, &b.list)?;
                if let Some(e) = &b.else_list {
                    f.write_str("{{else}}")?;
                    write_list(f, e)?;
                }
                f.write_str("{{end}}")
            }
            Node::Template(c) => match &c.pipe {
                None => write!(f, "{{{{template {}}}}}", crate::helm::gofmt::quote(&c.name)),
                Some(p) => write!(f, "{{{{template {} {p}}}}}", crate::helm::gofmt::quote(&c.name)),
            },
            Node::Break(_) => f.write_str("{{break}}"),
            Node::Continue(_) => f.write_str("{{continue}}"),
        }
    }
}

impl Node {
    /// Go's `parse.IsEmptyTree` for one node.
    fn is_empty(&self) -> bool {
        match self {
            Node::Text { src, start, end } => src[*start as usize..*end as usize].trim().is_empty(),
            _ => false,
        }
    }
}

/// Whether a template holds only whitespace (such a definition does not
/// replace an existing one).
pub fn is_empty_tree(root: &[Node]) -> bool {
    root.iter().all(Node::is_empty)
}

// ---- errors -------------------------------------------------------------------

/// A parse error: `template: NAME:LINE: MESSAGE`.
#[derive(Debug, Clone)]
pub struct ParseError {
    pub name: Str,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "template: {}:{}: {}", self.name, self.line, self.message)
    }
}

type Result<T> = std::result::Result<T, ParseError>;

// ---- the parser --------------------------------------------------------------------

/// Parse `text` as the template `name`: the file's tree and one per
/// definition in it, by name. `func` resolves a function name to its id.
pub fn parse(name: &str, text: &str, func: &dyn Fn(&str) -> Option<u16>) -> Result<FastMap<Str, Rc<Tree>>> {
    let shared: Rc<str> = Rc::from(text);
    let lexed = lex(&shared);
    let name: Str = Rc::from(name);
    let mut p = Parser {
        items: lexed.items,
        lex_error: lexed.error,
        interned: FastMap::default(),
        i: 0,
        name: name.clone(),
        text: shared.clone(),
        vars: vec![Rc::from("$")],
        range_depth: 0,
        action_line: 0,
        func,
        trees: FastMap::default(),
        line: 1,
    };
    let root = p.parse_top()?;
    p.add(name.clone(), root)?;
    Ok(p.trees)
}

struct Parser<'a> {
    items: Vec<Item<'a>>,
    /// The message of the lexer's error item.
    lex_error: Option<String>,
    /// Names met so far: one allocation per distinct name.
    interned: FastMap<&'a str, Str>,
    i: usize,
    name: Str,
    text: Rc<str>,
    vars: Vec<Str>,
    range_depth: usize,
    action_line: usize,
    func: &'a dyn Fn(&str) -> Option<u16>,
    trees: FastMap<Str, Rc<Tree>>,
    /// Line of the last token read, for errors.
    line: usize,
}

/// What `item_list` stopped at.
enum Stop {
    End,
    Else,
}

impl<'a> Parser<'a> {
    fn intern(&mut self, s: &'a str) -> Str {
        if let Some(r) = self.interned.get(s) {
            return r.clone();
        }
        let r: Str = Rc::from(s);
        self.interned.insert(s, r.clone());
        r
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T> {
        Err(ParseError {
            name: self.name.clone(),
            line: self.line,
            message: message.into(),
        })
    }

    /// The next item. Past the end it is the last one again (the lexer's
    /// EOF or error), and the cursor still moves, so that `backup` always
    /// undoes exactly one `next` (a parser loop cannot spin at the end).
    fn next(&mut self) -> Item<'a> {
        let item = self.items[self.i.min(self.items.len() - 1)];
        self.i += 1;
        self.line = item.line;
        item
    }

    fn backup(&mut self) {
        self.i -= 1;
    }

    fn peek(&self) -> &Item<'a> {
        &self.items[self.i.min(self.items.len() - 1)]
    }

    fn next_non_space(&mut self) -> Item<'a> {
        loop {
            let t = self.next();
            if t.tok != Tok::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item<'a> {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn item_string(&self, item: &Item) -> String {
        match item.tok {
            Tok::Eof => "EOF".into(),
            Tok::Error => self.lex_error.clone().unwrap_or_default(),
            t if t.is_keyword() => format!("<{}>", item.val),
            _ => {
                if item.val.chars().count() > 10 {
                    let short: String = item.val.chars().take(10).collect();
                    format!("{}...", crate::helm::gofmt::quote(&short))
                } else {
                    crate::helm::gofmt::quote(item.val)
                }
            }
        }
    }

    fn unexpected<T>(&mut self, item: &Item, context: &str) -> Result<T> {
        if item.tok == Tok::Error {
            let msg = self.lex_error.clone().unwrap_or_default();
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != item.line {
                extra = format!(" in action started at {}:{}", self.name, self.action_line);
                if msg.ends_with(" action") {
                    extra = extra[" in action".len()..].to_string();
                }
            }
            return self.err(format!("{msg}{extra}"));
        }
        self.err(format!("unexpected {} in {context}", self.item_string(item)))
    }

    fn expect(&mut self, tok: Tok, context: &str) -> Result<Item<'a>> {
        let t = self.next_non_space();
        if t.tok != tok {
            return self.unexpected(&t, context);
        }
        Ok(t)
    }

    fn add(&mut self, name: Str, root: Vec<Node>) -> Result<()> {
        if let Some(old) = self.trees.get(&name)
            && !is_empty_tree(&old.root)
        {
            if is_empty_tree(&root) {
                return Ok(());
            }
            return self.err(format!("template: multiple definition of template {:?}", &*name));
        }
        self.trees.insert(
            name.clone(),
            Rc::new(Tree {
                name,
                parse_name: self.name.clone(),
                text: self.text.clone(),
                root,
            }),
        );
        Ok(())
    }

    fn parse_top(&mut self) -> Result<Vec<Node>> {
        let mut root = Vec::new();
        while self.peek().tok != Tok::Eof {
            if self.peek().tok == Tok::LeftDelim {
                let save = self.i;
                self.next();
                if self.next_non_space().tok == Tok::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.i = save;
            }
            match self.text_or_action()? {
                Parsed::Node(n) => root.push(n),
                Parsed::End => return self.err("unexpected {{end}}"),
                Parsed::Else => return self.err("unexpected {{else}}"),
            }
        }
        if let Some(&item) = self.items.last()
            && item.tok == Tok::Error
        {
            self.line = item.line;
            return self.unexpected(&item, "input");
        }
        Ok(root)
    }

    fn parse_definition(&mut self) -> Result<()> {
        let context = "define clause";
        let t = self.next_non_space();
        if !matches!(t.tok, Tok::String | Tok::RawString) {
            return self.unexpected(&t, context);
        }
        let name = self.unquote(t.val)?;
        self.expect(Tok::RightDelim, context)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec![Rc::from("$")]);
        let (list, stop) = self.item_list()?;
        self.vars = saved_vars;
        if let Stop::Else = stop {
            return self.err(format!("unexpected {{{{else}}}} in {context}"));
        }
        self.add(Rc::from(name.as_str()), list)
    }

    fn unquote(&self, s: &str) -> Result<String> {
        match unquote(s) {
            Some(u) => Ok(u),
            None => self.err("invalid syntax"),
        }
    }

    /// Nodes up to `{{end}}` or `{{else}}`.
    fn item_list(&mut self) -> Result<(Vec<Node>, Stop)> {
        let mut list = Vec::new();
        while self.peek_non_space().tok != Tok::Eof {
            match self.text_or_action()? {
                Parsed::Node(n) => list.push(n),
                Parsed::End => return Ok((list, Stop::End)),
                Parsed::Else => return Ok((list, Stop::Else)),
            }
        }
        if let Some(&item) = self.items.last()
            && item.tok == Tok::Error
        {
            self.line = item.line;
            return self.unexpected(&item, "input");
        }
        self.err("unexpected EOF")
    }

    fn text_or_action(&mut self) -> Result<Parsed> {
        let t = self.next_non_space();
        match t.tok {
            Tok::Text => Ok(Parsed::Node(Node::Text {
                src: self.text.clone(),
                start: t.pos as u32,
                end: (t.pos + t.val.len()) as u32,
            })),
            Tok::LeftDelim => {
                self.action_line = t.line;
                let r = self.action();
                self.action_line = 0;
                r
            }
            _ => self.unexpected(&t, "input"),
        }
    }

    fn action(&mut self) -> Result<Parsed> {
        let t = self.next_non_space();
        match t.tok {
            Tok::Block => return self.block_control().map(Parsed::Node),
            Tok::Break | Tok::Continue => {
                let what = if t.tok == Tok::Break { "break" } else { "continue" };
                let n = self.next_non_space();
                if n.tok != Tok::RightDelim {
                    return self.unexpected(&n, &format!("{}{what}{}", "{{", "}}"));
                }
                if self.range_depth == 0 {
                    return self.err(format!("{}{what}{} outside {{{{range}}}}", "{{", "}}"));
                }
                let pos = t.pos as u32;
                return Ok(Parsed::Node(if t.tok == Tok::Break {
                    Node::Break(pos)
                } else {
                    Node::Continue(pos)
                }));
            }
            Tok::Else => {
                let p = self.peek_non_space();
                if p.tok == Tok::If || p.tok == Tok::With {
                    return Ok(Parsed::Else);
                }
                self.expect(Tok::RightDelim, "else")?;
                return Ok(Parsed::Else);
            }
            Tok::End => {
                self.expect(Tok::RightDelim, "end")?;
                return Ok(Parsed::End);
            }
            Tok::If => return self.control("if").map(|b| Parsed::Node(Node::If(b))),
            Tok::Range => return self.control("range").map(|b| Parsed::Node(Node::Range(b))),
            Tok::With => return self.control("with").map(|b| Parsed::Node(Node::With(b))),
            Tok::Template => return self.template_control().map(Parsed::Node),
            _ => {}
        }
        self.backup();
        let pipe = self.pipeline("command", Tok::RightDelim)?;
        Ok(Parsed::Node(Node::Action(pipe)))
    }

    fn control(&mut self, context: &str) -> Result<Box<Branch>> {
        let mark = self.vars.len();
        let r = self.control_inner(context);
        self.vars.truncate(mark);
        r
    }

    fn control_inner(&mut self, context: &str) -> Result<Box<Branch>> {
        let pipe = self.pipeline(context, Tok::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let r = self.item_list();
        if context == "range" {
            self.range_depth -= 1;
        }
        let (list, stop) = r?;
        let mut else_list = None;
        if let Stop::Else = stop {
            let peek = self.peek().tok;
            if context == "if" && peek == Tok::If {
                self.next();
                else_list = Some(vec![Node::If(self.control("if")?)]);
            } else if context == "with" && peek == Tok::With {
                self.next();
                else_list = Some(vec![Node::With(self.control("with")?)]);
            } else {
                let (list, stop) = self.item_list()?;
                if let Stop::Else = stop {
                    return self.err("expected end; found {{else}}");
                }
                else_list = Some(list);
            }
        }
        Ok(Box::new(Branch {
            pipe,
            list,
            else_list,
        }))
    }

    fn block_control(&mut self) -> Result<Node> {
        let context = "block clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, context)?;
        let pipe = self.pipeline(context, Tok::RightDelim)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec![Rc::from("$")]);
        let saved_depth = std::mem::take(&mut self.range_depth);
        let r = self.item_list();
        self.vars = saved_vars;
        self.range_depth = saved_depth;
        let (list, stop) = r?;
        if let Stop::Else = stop {
            return self.err(format!("unexpected {{{{else}}}} in {context}"));
        }
        let name: Str = Rc::from(name.as_str());
        self.add(name.clone(), list)?;
        Ok(Node::Template(Box::new(Call {
            pos: t.pos as u32,
            name,
            pipe: Some(pipe),
        })))
    }

    fn template_control(&mut self) -> Result<Node> {
        let context = "template clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, context)?;
        let mut pipe = None;
        if self.next_non_space().tok != Tok::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(context, Tok::RightDelim)?);
        }
        Ok(Node::Template(Box::new(Call {
            pos: t.pos as u32,
            name: Rc::from(name.as_str()),
            pipe,
        })))
    }

    fn template_name(&mut self, t: &Item, context: &str) -> Result<String> {
        match t.tok {
            Tok::String | Tok::RawString => self.unquote(t.val),
            _ => self.unexpected(t, context),
        }
    }

    fn pipeline(&mut self, context: &str, end: Tok) -> Result<Pipe> {
        let t = self.peek_non_space();
        let mut pipe = Pipe {
            pos: t.pos as u32,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        // Declarations or assignments.
        loop {
            let v = self.peek_non_space();
            if v.tok != Tok::Variable {
                break;
            }
            let save = self.i;
            self.next_non_space();
            let after = self.peek().tok;
            let next = self.peek_non_space();
            match next.tok {
                Tok::Assign | Tok::Declare => {
                    pipe.is_assign = next.tok == Tok::Assign;
                    self.next_non_space();
                    let name = self.intern(v.val);
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                }
                Tok::Char if next.val == "," => {
                    self.next_non_space();
                    let name = self.intern(v.val);
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().tok {
                            Tok::Variable | Tok::RightDelim | Tok::RightParen => continue,
                            _ => return self.err("range can only initialize variables"),
                        }
                    }
                    return self.err(format!("too many declarations in {context}"));
                }
                _ => {
                    let _ = after;
                    self.i = save;
                }
            }
            break;
        }
        loop {
            let t = self.next_non_space();
            match t.tok {
                tok if tok == end => {
                    self.check_pipeline(&pipe, context)?;
                    return Ok(pipe);
                }
                Tok::Bool
                | Tok::CharConstant
                | Tok::Dot
                | Tok::Field
                | Tok::Identifier
                | Tok::Number
                | Tok::Nil
                | Tok::RawString
                | Tok::String
                | Tok::Variable
                | Tok::LeftParen => {
                    self.backup();
                    let c = self.command()?;
                    pipe.cmds.push(c);
                }
                _ => return self.unexpected(&t, context),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> Result<()> {
        if pipe.cmds.is_empty() {
            return self.err(format!("missing value for {context}"));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args.first(),
                Some(Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number(..) | Arg::String { .. })
            ) {
                return self.err(format!("non executable command in pipeline stage {}", i + 1));
            }
        }
        Ok(())
    }

    fn command(&mut self) -> Result<Command> {
        let pos = self.peek_non_space().pos as u32;
        let mut cmd = Command {
            pos,
            args: Vec::new(),
        };
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let t = self.next();
            match t.tok {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RightParen => self.backup(),
                Tok::Pipe => {}
                _ => return self.unexpected(&t, "operand"),
            }
            break;
        }
        if cmd.args.is_empty() {
            return self.err("empty command");
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> Result<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().tok != Tok::Field {
            return Ok(Some(node));
        }
        let chain_pos = self.peek().pos as u32;
        let mut fields: Vec<Str> = Vec::new();
        while self.peek().tok == Tok::Field {
            let t = self.next();
            fields.push(self.intern(&t.val[1..]));
        }
        Ok(Some(match node {
            Arg::Field { mut idents, .. } => {
                idents.extend(fields);
                Arg::Field {
                    pos: chain_pos,
                    idents,
                }
            }
            Arg::Variable { mut idents, .. } => {
                idents.extend(fields);
                Arg::Variable {
                    pos: chain_pos,
                    idents,
                }
            }
            Arg::Bool(..) | Arg::String { .. } | Arg::Number(..) | Arg::Nil(_) | Arg::Dot(_) => {
                return self.err(format!("unexpected . after term {:?}", node.to_string()));
            }
            other => Arg::Chain {
                pos: chain_pos,
                node: Box::new(other),
                fields,
            },
        }))
    }

    fn term(&mut self) -> Result<Option<Arg>> {
        let t = self.next_non_space();
        let pos = t.pos as u32;
        Ok(Some(match t.tok {
            Tok::Identifier => match (self.func)(t.val) {
                Some(id) => Arg::Func {
                    pos,
                    name: self.intern(t.val),
                    id,
                },
                None => return self.err(format!("function {:?} not defined", t.val)),
            },
            Tok::Dot => Arg::Dot(pos),
            Tok::Nil => Arg::Nil(pos),
            Tok::Variable => {
                let name = t.val.split('.').next().unwrap_or("");
                if !self.vars.iter().any(|v| &**v == name) {
                    return self.err(format!("undefined variable {name:?}"));
                }
                Arg::Variable {
                    pos,
                    idents: vec![self.intern(t.val)],
                }
            }
            Tok::Field => Arg::Field {
                pos,
                idents: vec![self.intern(&t.val[1..])],
            },
            Tok::Bool => Arg::Bool(pos, t.val == "true"),
            Tok::CharConstant | Tok::Number => match number(t.val, t.tok == Tok::CharConstant) {
                Ok(n) => Arg::Number(pos, Box::new(n)),
                Err(e) => return self.err(e),
            },
            Tok::LeftParen => Arg::Pipe(Box::new(
                self.pipeline("parenthesized pipeline", Tok::RightParen)?,
            )),
            Tok::String | Tok::RawString => {
                let plain = match t.tok {
                    Tok::RawString => !t.val.contains('\r'),
                    _ => !t.val.contains('\\'),
                };
                let text = if plain {
                    self.intern(&t.val[1..t.val.len() - 1])
                } else {
                    Rc::from(self.unquote(t.val)?)
                };
                Arg::String {
                    pos,
                    quoted: self.intern(t.val),
                    text,
                }
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

enum Parsed {
    Node(Node),
    End,
    Else,
}

/// Go's `strconv.Unquote` for "…", `…` and '…'.
pub fn unquote(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 2 {
        return None;
    }
    let q = b[0];
    if b[b.len() - 1] != q {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    match q {
        b'`' => {
            if inner.contains('`') {
                return None;
            }
            Some(inner.replace('\r', ""))
        }
        b'"' | b'\'' => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars().peekable();
            while let Some(c) = chars.next() {
                if c == q as char && q == b'"' || c == '\n' {
                    return None;
                }
                if c != '\\' {
                    out.push(c);
                    continue;
                }
                let e = chars.next()?;
                match e {
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'v' => out.push('\u{b}'),
                    '\\' => out.push('\\'),
                    '\'' if q == b'\'' => out.push('\''),
                    '"' if q == b'"' => out.push('"'),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = (0..n).filter_map(|_| chars.next()).collect();
                        if hex.len() != n {
                            return None;
                        }
                        let v = u32::from_str_radix(&hex, 16).ok()?;
                        if e == 'x' {
                            // A byte; only valid UTF-8 survives in a Rust string.
                            out.push(char::from_u32(v)?);
                        } else {
                            out.push(char::from_u32(v)?);
                        }
                    }
                    '0'..='7' => {
                        let mut v = e.to_digit(8)?;
                        for _ in 0..2 {
                            v = v * 8 + chars.next()?.to_digit(8)?;
                        }
                        if v > 255 {
                            return None;
                        }
                        out.push(char::from_u32(v)?);
                    }
                    _ => return None,
                }
            }
            if q == b'\'' && out.chars().count() != 1 {
                return None;
            }
            Some(out)
        }
        _ => None,
    }
}

/// A number literal, as Go's `parse.newNumber`.
fn number(text: &str, is_char: bool) -> std::result::Result<Number, String> {
    let mut n = Number {
        text: text.to_string(),
        ..Number::default()
    };
    if is_char {
        let s = unquote(text).ok_or_else(|| format!("malformed character constant: {text}"))?;
        let c = s.chars().next().unwrap_or('\0') as i64;
        n.is_int = true;
        n.int = c;
        n.is_uint = true;
        n.uint = c as u64;
        n.is_float = true;
        n.float = c as f64;
        return Ok(n);
    }
    if text.ends_with('i') {
        n.is_complex = true;
        return Ok(n);
    }
    if let Some(u) = parse_go_uint(text) {
        n.is_uint = true;
        n.uint = u;
    }
    if let Some(i) = parse_go_int(text) {
        n.is_int = true;
        n.int = i;
        if i == 0 {
            n.is_uint = true;
            n.uint = 0;
        }
    }
    if n.is_int {
        n.is_float = true;
        n.float = n.int as f64;
    } else if n.is_uint {
        n.is_float = true;
        n.float = n.uint as f64;
    } else if let Some(f) = parse_go_float(text) {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {text:?}"));
        }
        n.is_float = true;
        n.float = f;
        if f.fract() == 0.0 && f.abs() < 9.2e18 {
            n.is_int = true;
            n.int = f as i64;
        }
        if f.fract() == 0.0 && (0.0..1.8e19).contains(&f) {
            n.is_uint = true;
            n.uint = f as u64;
        }
    }
    if !n.is_int && !n.is_uint && !n.is_float {
        return Err(format!("illegal number syntax: {text:?}"));
    }
    Ok(n)
}

/// `strconv.ParseInt(s, 0, 64)`.
pub fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let u = parse_go_uint(body)?;
    if neg {
        if u <= i64::MAX as u64 + 1 {
            Some((u as i128).wrapping_neg() as i64)
        } else {
            None
        }
    } else {
        i64::try_from(u).ok()
    }
}

/// `strconv.ParseUint(s, 0, 64)`: prefixes 0x, 0o, 0b, a leading 0 for
/// octal, and `_` between digits when there is a prefix.
pub fn parse_go_uint(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(r) = lower.strip_prefix("0x") {
        (16, r.to_string(), true)
    } else if let Some(r) = lower.strip_prefix("0o") {
        (8, r.to_string(), true)
    } else if let Some(r) = lower.strip_prefix("0b") {
        (2, r.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower.clone(), false)
    };
    let digits = if prefixed || lower.contains('_') {
        if !underscore_ok(&lower) {
            return None;
        }
        digits.replace('_', "")
    } else {
        digits
    };
    if digits.is_empty() || digits.starts_with('+') || digits.starts_with('-') {
        return None;
    }
    u64::from_str_radix(&digits, radix).ok()
}

/// Go's `underscoreOK`: underscores only between digits (or after a base prefix).
fn underscore_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    if !b.is_empty() && (b[0] == b'-' || b[0] == b'+') {
        i = 1;
    }
    let mut hex = false;
    if b.len() - i >= 2 && b[i] == b'0' && matches!(b[i + 1] | 0x20, b'b' | b'o' | b'x') {
        hex = b[i + 1] | 0x20 == b'x';
        i += 2;
        saw = b'0';
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || hex && c.is_ascii_hexdigit() {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// `strconv.ParseFloat(s, 64)` for Go's float literal syntax.
pub fn parse_go_float(s: &str) -> Option<f64> {
    if s.contains('_') && !underscore_ok(s) {
        return None;
    }
    let t = s.replace('_', "");
    let lower = t.to_ascii_lowercase();
    let (neg, body) = match lower.as_bytes().first() {
        Some(b'-') => (true, &lower[1..]),
        Some(b'+') => (false, &lower[1..]),
        _ => (false, lower.as_str()),
    };
    let v = match body {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ if body.starts_with("0x") => parse_hex_float(&body[2..])?,
        _ => {
            if body.is_empty()
                || !body
                    .bytes()
                    .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'+' | b'-'))
            {
                return None;
            }
            body.parse::<f64>().ok()?
        }
    };
    Some(if neg { -v } else { v })
}

fn parse_hex_float(s: &str) -> Option<f64> {
    let (mant, exp) = match s.find('p') {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    Some(v * 2f64.powi(exp))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn funcs(name: &str) -> Option<u16> {
        ["printf", "len", "and", "or", "not", "eq", "index", "print"]
            .iter()
            .position(|f| *f == name)
            .map(|i| i as u16)
    }

    fn tree(text: &str) -> String {
        match parse("t", text, &funcs) {
            Ok(trees) => trees["t"].root.iter().map(|n| n.to_string()).collect(),
            Err(e) => e.to_string(),
        }
    }

    // From Go's parse_test.go: input, and the tree printed back.
    #[test]
    fn parses_like_go() {
        let cases = [
            ("", ""),
            ("{{/*\n\n\n*/}}", ""),
            (" \t\n", " \t\n"),
            ("some text", "some text"),
            ("{{.X}}", "{{.X}}"),
            ("{{printf}}", "{{printf}}"),
            ("{{$}}", "{{$}}"),
            (
                "{{with $x := 3}}{{$x 23}}{{end}}",
                "{{with $x := 3}}{{$x 23}}{{end}}",
            ),
            ("{{$.I}}", "{{$.I}}"),
            ("{{printf `%d` 23}}", "{{printf `%d` 23}}"),
            ("{{.X|.Y}}", "{{.X | .Y}}"),
            ("{{$x := .X|.Y}}", "{{$x := .X | .Y}}"),
            ("{{(.X).Y}}", "{{(.X).Y}}"),
            (
                "{{.X (.Y .Z) (.A | .B .C) (.E)}}",
                "{{.X (.Y .Z) (.A | .B .C) (.E)}}",
            ),
            ("{{(.Y .Z).Field}}", "{{(.Y .Z).Field}}"),
            ("{{if .X}}hello{{end}}", "{{if .X}}hello{{end}}"),
            (
                "{{if .X}}true{{else}}false{{end}}",
                "{{if .X}}true{{else}}false{{end}}",
            ),
            (
                "{{if .X}}true{{else if .Y}}false{{end}}",
                "{{if .X}}true{{else}}{{if .Y}}false{{end}}{{end}}",
            ),
            (
                "{{with .X}}a{{else with .Y}}b{{end}}",
                "{{with .X}}a{{else}}{{with .Y}}b{{end}}{{end}}",
            ),
            ("{{range .X}}hello{{end}}", "{{range .X}}hello{{end}}"),
            ("{{range .X.Y.Z}}hello{{end}}", "{{range .X.Y.Z}}hello{{end}}"),
            (
                "{{range .X}}true{{else}}false{{end}}",
                "{{range .X}}true{{else}}false{{end}}",
            ),
            (
                "{{range .X|.M}}true{{else}}false{{end}}",
                "{{range .X | .M}}true{{else}}false{{end}}",
            ),
            ("{{range .SI}}{{.}}{{end}}", "{{range .SI}}{{.}}{{end}}"),
            (
                "{{range $x := .SI}}{{.}}{{end}}",
                "{{range $x := .SI}}{{.}}{{end}}",
            ),
            (
                "{{range $x, $y := .SI}}{{.}}{{end}}",
                "{{range $x, $y := .SI}}{{.}}{{end}}",
            ),
            (
                "{{range .SI}}{{.}}{{break}}{{end}}",
                "{{range .SI}}{{.}}{{break}}{{end}}",
            ),
            (
                "{{range .SI}}{{.}}{{continue}}{{end}}",
                "{{range .SI}}{{.}}{{continue}}{{end}}",
            ),
            ("{{template `x`}}", "{{template \"x\"}}"),
            ("{{template `x` .Y}}", "{{template \"x\" .Y}}"),
            ("{{with .X}}hello{{end}}", "{{with .X}}hello{{end}}"),
            (
                "{{with .X}}hello{{else}}goodbye{{end}}",
                "{{with .X}}hello{{else}}goodbye{{end}}",
            ),
            ("{{$x := 1}}{{$x = 2}}", "{{$x := 1}}{{$x = 2}}"),
            ("{{.X | printf \"%s\" | len}}", "{{.X | printf \"%s\" | len}}"),
            ("{{- 3 -}}", "{{3}}"),
            ("{{-3}}", "{{-3}}"),
            ("{{1|printf}}", "{{1 | printf}}"),
            ("{{print 1 (nil)}}", "{{print 1 (nil)}}"),
            ("{{0x_1}}", "{{0x_1}}"),
            ("{{'a'}}", "{{'a'}}"),
        ];
        for (input, want) in cases {
            assert_eq!(tree(input), want, "input {input:?}");
        }
    }

    /// Found by the `chart` fuzz target: a bad character after blanks in an
    /// action made `command` spin on the blanks for ever.
    #[test]
    fn a_bad_character_after_blanks_ends_the_parse() {
        let got = tree("{{ printf \"%s\" .            \u{0} }}");
        assert!(got.contains("U+0000"), "{got}");
        for text in [
            "{{ .x ",
            "{{ printf . \u{0}",
            "{{ ( . \u{1} ) }}",
            "{{ .a | \u{0} }}",
        ] {
            let _ = tree(text);
        }
    }

    #[test]
    fn parse_errors_like_go() {
        let cases = [
            (
                "{{nonexistent}}",
                "template: t:1: function \"nonexistent\" not defined",
            ),
            ("{{.X", "template: t:1: unclosed action"),
            ("hello{{range .x}}", "template: t:1: unexpected EOF"),
            ("{{end}}", "template: t:1: unexpected {{end}}"),
            ("{{else}}", "template: t:1: unexpected {{else}}"),
            ("{{if}}", "template: t:1: missing value for if"),
            ("{{range}}", "template: t:1: missing value for range"),
            ("{{$x}}", "template: t:1: undefined variable \"$x\""),
            (
                "{{with $x := 4}}{{end}}{{$x}}",
                "template: t:1: undefined variable \"$x\"",
            ),
            (
                "{{template $v}}",
                "template: t:1: unexpected \"$v\" in template clause",
            ),
            ("{{printf 3, 4}}", "template: t:1: unexpected \",\" in operand"),
            (
                "{{range $i, $x, $y := .}}{{end}}",
                "template: t:1: too many declarations in range",
            ),
            (
                "{{$a, $b := 3}}",
                "template: t:1: too many declarations in command",
            ),
            (
                "{{.X | 3}}",
                "template: t:1: non executable command in pipeline stage 2",
            ),
            ("{{true.X}}", "template: t:1: unexpected . after term \"true\""),
            ("{{break}}", "template: t:1: {{break}} outside {{range}}"),
            (
                "{{define \"a\"}}a{{end}}{{define \"a\"}}b{{end}}",
                "template: t:1: template: multiple definition of template \"a\"",
            ),
            (
                "{{printf 99999999999999999999}}",
                "template: t:1: integer overflow: \"99999999999999999999\"",
            ),
            (
                "\n\n{{if .X}}\n{{else}}\n{{else}}{{end}}",
                "template: t:5: expected end; found {{else}}",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(tree(input), want, "input {input:?}");
        }
    }

    #[test]
    fn positions_of_chained_fields_are_their_second_field() {
        let trees = parse("t", "{{ .Values.a.b }}", &funcs).unwrap();
        let Node::Action(p) = &trees["t"].root[0] else {
            panic!()
        };
        assert_eq!(p.cmds[0].args[0].pos(), 10);
    }

    #[test]
    fn definitions_are_separate_trees() {
        let trees = parse("f", "a{{define \"x\"}}X{{end}}{{block \"y\" .}}Y{{end}}", &funcs).unwrap();
        let mut names: Vec<&str> = trees.keys().map(|k| &**k).collect();
        names.sort();
        assert_eq!(names, ["f", "x", "y"]);
        assert_eq!(&*trees["x"].parse_name, "f");
    }
}
