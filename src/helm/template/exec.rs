//! The executor of Go's `text/template`, following `exec.go`: pipelines,
//! variables, field chains on maps and structs (a missing key reads as
//! nil, as with `missingkey=zero`), method calls, function calls with Go's
//! argument checks, `if`/`with`/`range` (over lists and maps in key order;
//! Go 1.23, which Helm 3.17 is built with, has no range over integers)
//! with `else`, `break` and `continue`, and `template`. Errors
//! read as Go's (`template: FILE:LINE:COL: executing "NAME" at <NODE>:
//! …`), and are raised at the node Go would blame.

use crate::helm::FastMap;
use std::fmt;
use std::rc::Rc;

use super::parse::{Arg, Call, Command, Node, Pipe, Tree};
use crate::helm::funcs::{self, FnError, Special, Ty};
use crate::helm::gofmt;
use crate::helm::value::{Elem, MapKind, Str, StructType, Value};

/// A set of templates by name.
pub type Set = FastMap<Str, Rc<Tree>>;

/// Limits on what one render may do; charts are untrusted.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Nested `template`, `include` and `tpl` calls.
    pub max_depth: usize,
    /// Times one name may be nested in `include` (Helm's limit).
    pub max_include: usize,
    /// Bytes one template or `include` may produce.
    pub max_output: usize,
    /// Bytes all templates together may produce (counting `include`s).
    pub max_total: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_depth: 3000,
            max_include: 1000,
            max_output: 64 << 20,
            max_total: 1 << 30,
        }
    }
}

/// Where an error happened: a template file, line and column.
#[derive(Debug, Clone)]
pub struct Location {
    pub file: Str,
    pub text: Rc<str>,
    pub offset: usize,
    pub line: usize,
    /// Go's column: the byte offset in the line, 0-based.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// An execution error, as Go reports it.
#[derive(Debug, Clone)]
pub struct ExecError {
    /// `template: FILE:LINE:COL: executing "NAME" at <NODE>: MESSAGE`
    pub message: String,
    /// The outermost place, where the error left the template being run.
    pub at: Option<Location>,
    /// The message of a `fail` or `required` that caused it.
    pub fail: Option<String>,
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExecError {}

type Result<T> = std::result::Result<T, ExecError>;

/// Control flow out of a list of nodes.
#[derive(PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

/// What the executor shares across nested executions: the templates,
/// counters and limits. Functions get it to run `include` and `tpl`.
pub struct Env {
    pub base: Rc<Set>,
    /// Sets added by `tpl` (its text and its definitions), innermost last.
    pub overlays: Vec<Rc<Set>>,
    pub limits: Limits,
    depth: usize,
    included: FastMap<Str, usize>,
    written: usize,
    /// Whatever the functions keep between calls (Helm's context).
    pub host: Box<dyn std::any::Any>,
}

/// The node blamed for an error.
#[derive(Clone, Copy)]
enum At<'t> {
    None,
    Node(&'t Node),
    Pipe(&'t Pipe),
    Cmd(&'t Command),
    Arg(&'t Arg),
    Call(&'t Call),
}

impl At<'_> {
    fn pos(&self) -> Option<usize> {
        Some(match self {
            At::None => return None,
            At::Node(n) => match n {
                Node::Action(p) => p.pos as usize,
                Node::If(b) | Node::Range(b) | Node::With(b) => b.pipe.pos as usize,
                Node::Template(c) => c.pos as usize,
                Node::Break(p) | Node::Continue(p) => *p as usize,
                Node::Text { start, .. } => *start as usize,
            },
            At::Pipe(p) => p.pos as usize,
            At::Cmd(c) => c.pos as usize,
            At::Arg(a) => a.pos() as usize,
            At::Call(c) => c.pos as usize,
        })
    }

    fn context(&self) -> String {
        match self {
            At::None => String::new(),
            At::Node(n) => n.to_string(),
            At::Pipe(p) => p.to_string(),
            At::Cmd(c) => c.to_string(),
            At::Arg(a) => a.to_string(),
            At::Call(c) => Node::Template(Box::new(Call {
                pos: c.pos,
                name: c.name.clone(),
                pipe: None,
            }))
            .to_string()
            .replace(
                "}}",
                &match &c.pipe {
                    Some(p) => format!(" {p}}}}}"),
                    None => "}}".to_string(),
                },
            ),
        }
    }
}

/// A value with whether Go would see it through an `interface{}` (it came
/// out of a map or a slice): a nil one of those is a "nil pointer" when a
/// field is read from it, where a plain missing value reads as nil.
#[derive(Clone)]
struct Got {
    v: Value,
    iface: bool,
}

impl Got {
    fn plain(v: Value) -> Got {
        Got { v, iface: false }
    }
}

struct State<'t> {
    tree: &'t Tree,
    vars: Vec<(Str, Got)>,
    at: At<'t>,
}

impl Env {
    pub fn new(base: Rc<Set>, limits: Limits, host: Box<dyn std::any::Any>) -> Env {
        Env {
            base,
            overlays: Vec::new(),
            limits,
            depth: 0,
            included: FastMap::default(),
            written: 0,
            host,
        }
    }

    pub fn lookup(&self, name: &str) -> Option<Rc<Tree>> {
        for set in self.overlays.iter().rev() {
            if let Some(t) = set.get(name) {
                return Some(t.clone());
            }
        }
        self.base.get(name).cloned()
    }

    /// Run the template `name` with `data` as dot and `$`, as Go's
    /// `ExecuteTemplate` (what `include` does).
    pub fn execute(&mut self, name: &str, data: Value) -> std::result::Result<String, FnError> {
        let Some(tree) = self.lookup(name) else {
            return Err(FnError::Msg(format!(
                "template: no template {} associated with template \"gotpl\"",
                gofmt::quote(name)
            )));
        };
        let mut out = String::new();
        self.run(&tree, data, &mut out)
            .map_err(|e| FnError::Exec(Box::new(e)))?;
        Ok(out)
    }

    /// `include`: `execute`, counting how deep each name is nested.
    pub fn include(&mut self, name: &str, data: Value) -> std::result::Result<String, FnError> {
        let count = self.included.entry(Rc::from(name)).or_insert(0);
        if *count > self.limits.max_include {
            return Err(FnError::Msg(format!(
                "rendering template has a nested reference name: {name}: unable to execute template"
            )));
        }
        *count += 1;
        let r = self.execute(name, data);
        if let Some(c) = self.included.get_mut(name) {
            *c -= 1;
        }
        r
    }

    /// Run a tree with `data` as dot and `$`, appending to `out`.
    pub fn run(&mut self, tree: &Tree, data: Value, out: &mut String) -> Result<()> {
        if self.depth >= self.limits.max_depth {
            return Err(ExecError {
                message: format!(
                    "template: {}: exceeded maximum template depth ({})",
                    tree.name, self.limits.max_depth
                ),
                at: None,
                fail: None,
            });
        }
        self.depth += 1;
        let mut st = State {
            tree,
            vars: vec![(Rc::from("$"), Got::plain(data.clone()))],
            at: At::None,
        };
        let r = self.walk_list(&mut st, &Got::plain(data), &tree.root, out);
        self.depth -= 1;
        r.map(|_| ())
    }

    fn errorf<T>(&self, st: &State, message: impl Into<String>) -> Result<T> {
        Err(self.error(st, message.into(), None))
    }

    fn error(&self, st: &State, message: String, fail: Option<String>) -> ExecError {
        let name = &st.tree.name;
        match st.at.pos() {
            None => ExecError {
                message: format!("template: {name}: {message}"),
                at: None,
                fail,
            },
            Some(pos) => {
                let loc = location(st.tree, pos);
                ExecError {
                    message: format!(
                        "template: {loc}: executing {} at <{}>: {message}",
                        gofmt::quote(name),
                        st.at.context()
                    ),
                    at: Some(loc),
                    fail,
                }
            }
        }
    }

    fn write(&mut self, st: &State, out: &mut String, s: &str) -> Result<()> {
        self.written += s.len();
        if out.len() + s.len() > self.limits.max_output || self.written > self.limits.max_total {
            return self.errorf(
                st,
                format!(
                    "output too large: a template may produce at most {} bytes, a chart {} bytes",
                    self.limits.max_output, self.limits.max_total
                ),
            );
        }
        out.push_str(s);
        Ok(())
    }

    fn walk_list<'t>(
        &mut self,
        st: &mut State<'t>,
        dot: &Got,
        list: &'t [Node],
        out: &mut String,
    ) -> Result<Flow> {
        for node in list {
            let flow = self.walk(st, dot, node, out)?;
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn walk<'t>(&mut self, st: &mut State<'t>, dot: &Got, node: &'t Node, out: &mut String) -> Result<Flow> {
        st.at = At::Node(node);
        match node {
            Node::Text { src, start, end } => self.write(st, out, &src[*start as usize..*end as usize])?,
            Node::Action(pipe) => {
                let v = self.eval_pipeline(st, dot, pipe)?;
                if pipe.decl.is_empty() {
                    st.at = At::Node(node);
                    match &v {
                        Value::Nil => self.write(st, out, "<no value>")?,
                        Value::Str(s) => self.write(st, out, s)?,
                        other => {
                            let s = gofmt::sprint_value(other);
                            self.write(st, out, &s)?;
                        }
                    }
                }
            }
            Node::If(b) | Node::With(b) => {
                let mark = st.vars.len();
                let v = self.eval_pipeline(st, dot, &b.pipe)?;
                let flow = if v.truthy() {
                    if matches!(node, Node::With(_)) {
                        self.walk_list(st, &Got::plain(v), &b.list, out)?
                    } else {
                        self.walk_list(st, dot, &b.list, out)?
                    }
                } else if let Some(e) = &b.else_list {
                    self.walk_list(st, dot, e, out)?
                } else {
                    Flow::Normal
                };
                st.vars.truncate(mark);
                return Ok(flow);
            }
            Node::Range(b) => {
                let mark = st.vars.len();
                let flow = self.walk_range(st, dot, node, b, out);
                st.vars.truncate(mark);
                return flow;
            }
            Node::Template(c) => {
                let Some(tree) = self.lookup(&c.name) else {
                    st.at = At::Call(c);
                    return self.errorf(st, format!("template {} not defined", gofmt::quote(&c.name)));
                };
                let data = match &c.pipe {
                    Some(p) => self.eval_pipeline(st, dot, p)?,
                    None => Value::Nil,
                };
                self.run(&tree, data, out)?;
            }
            Node::Break(_) => return Ok(Flow::Break),
            Node::Continue(_) => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn walk_range<'t>(
        &mut self,
        st: &mut State<'t>,
        dot: &Got,
        node: &'t Node,
        b: &'t super::parse::Branch,
        out: &mut String,
    ) -> Result<Flow> {
        st.at = At::Node(node);
        let val = self.eval_pipeline(st, dot, &b.pipe)?;
        let mark = st.vars.len();
        let ndecl = b.pipe.decl.len();
        let mut iterations: Vec<(Value, Got)> = Vec::new();
        match &val {
            Value::List(l) => {
                let iface = l.elem == Elem::Any;
                for (i, x) in l.items.iter().enumerate() {
                    iterations.push((Value::Int(i as i64), Got { v: x.clone(), iface }));
                }
            }
            Value::Bytes(bytes) => {
                for (i, x) in bytes.iter().enumerate() {
                    iterations.push((Value::Int(i as i64), Got::plain(Value::Int(*x as i64))));
                }
            }
            Value::Map(m) => {
                let iface = m.kind() == MapKind::Any;
                for (k, v) in m.snapshot() {
                    iterations.push((Value::Str(k), Got { v, iface }));
                }
            }
            Value::Nil => {}
            other => {
                return self.errorf(
                    st,
                    format!("range can't iterate over {}", gofmt::sprint_value(other)),
                );
            }
        }
        if iterations.is_empty() {
            if let Some(e) = &b.else_list {
                return self.walk_list(st, dot, e, out);
            }
            return Ok(Flow::Normal);
        }
        for (index, elem) in iterations {
            if ndecl > 0 {
                let top = st.vars.len() - 1;
                st.vars[top].1 = elem.clone();
            }
            if ndecl > 1 {
                let second = st.vars.len() - 2;
                st.vars[second].1 = Got::plain(index);
            }
            let flow = self.walk_list(st, &elem, &b.list, out)?;
            st.vars.truncate(mark);
            if flow == Flow::Break {
                break;
            }
        }
        Ok(Flow::Normal)
    }

    // ---- evaluation ------------------------------------------------------------

    fn eval_pipeline<'t>(&mut self, st: &mut State<'t>, dot: &Got, pipe: &'t Pipe) -> Result<Value> {
        st.at = At::Pipe(pipe);
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(st, dot, cmd, value)?.v);
        }
        let value = value.unwrap_or_default();
        for var in &pipe.decl {
            if pipe.is_assign {
                match st.vars.iter_mut().rev().find(|(n, _)| n == var) {
                    Some(slot) => slot.1 = Got::plain(value.clone()),
                    None => return self.errorf(st, format!("undefined variable: {var}")),
                }
            } else {
                st.vars.push((var.clone(), Got::plain(value.clone())));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, st: &State, args: &[Arg], fin: &Option<Value>) -> Result<()> {
        if args.len() > 1 || fin.is_some() {
            return self.errorf(st, format!("can't give argument to non-function {}", args[0]));
        }
        Ok(())
    }

    fn eval_command<'t>(
        &mut self,
        st: &mut State<'t>,
        dot: &Got,
        cmd: &'t Command,
        fin: Option<Value>,
    ) -> Result<Got> {
        let first = &cmd.args[0];
        match first {
            Arg::Field { idents, .. } => {
                st.at = At::Arg(first);
                return self.eval_field_chain(st, dot, dot.clone(), first, idents, &cmd.args, fin);
            }
            Arg::Chain { node, fields, .. } => {
                st.at = At::Arg(first);
                let recv = self.eval_chain_receiver(st, dot, first, node)?;
                return self.eval_field_chain(st, dot, recv, first, fields, &cmd.args, fin);
            }
            Arg::Func { id, name, .. } => {
                st.at = At::Arg(first);
                let def = funcs::get(*id);
                let v = self.eval_call(
                    st,
                    dot,
                    Callee::Func(def),
                    At::Cmd(cmd),
                    name,
                    &cmd.args[1..],
                    fin,
                )?;
                return Ok(Got::plain(v));
            }
            Arg::Pipe(p) => {
                self.not_a_function(st, &cmd.args, &fin)?;
                return Ok(Got::plain(self.eval_pipeline(st, dot, p)?));
            }
            Arg::Variable { idents, .. } => {
                st.at = At::Arg(first);
                let value = self.var_value(st, &idents[0])?;
                if idents.len() == 1 {
                    self.not_a_function(st, &cmd.args, &fin)?;
                    return Ok(value);
                }
                return self.eval_field_chain(st, dot, value, first, &idents[1..], &cmd.args, fin);
            }
            _ => {}
        }
        st.at = At::Arg(first);
        self.not_a_function(st, &cmd.args, &fin)?;
        Ok(Got::plain(match first {
            Arg::Bool(_, b) => Value::Bool(*b),
            Arg::Dot(_) => dot.v.clone(),
            Arg::Nil(_) => return self.errorf(st, "nil is not a command"),
            Arg::Number(_, n) => self.ideal_constant(st, n)?,
            Arg::String { text, .. } => Value::Str(text.clone()),
            _ => return self.errorf(st, format!("can't evaluate command {:?}", first.to_string())),
        }))
    }

    fn var_value(&self, st: &State, name: &str) -> Result<Got> {
        match st.vars.iter().rev().find(|(n, _)| &**n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => self.errorf(st, format!("undefined variable: {name}")),
        }
    }

    fn ideal_constant(&self, st: &State, n: &super::parse::Number) -> Result<Value> {
        let text = &n.text;
        let hex_int = text.len() > 2
            && text.starts_with('0')
            && matches!(text.as_bytes()[1], b'x' | b'X')
            && !text.contains(['p', 'P']);
        if n.is_complex {
            return self.errorf(st, format!("complex constant {text} is not supported"));
        }
        if n.is_float && !hex_int && !text.starts_with('\'') && text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Ok(Value::Float(n.float));
        }
        if n.is_int {
            return Ok(Value::Int(n.int));
        }
        if n.is_uint {
            return self.errorf(st, format!("{text} overflows int"));
        }
        Ok(Value::Nil)
    }

    fn eval_chain_receiver<'t>(
        &mut self,
        st: &mut State<'t>,
        dot: &Got,
        chain: &'t Arg,
        node: &'t Arg,
    ) -> Result<Got> {
        if let Arg::Nil(_) = node {
            return self.errorf(st, format!("indirection through explicit nil in {chain}"));
        }
        let v = self.eval_arg(st, dot, Ty::Any, node)?;
        Ok(Got::plain(v))
    }

    /// `.X.Y.Z` on `receiver`, the last possibly a method taking `args`.
    #[allow(clippy::too_many_arguments)]
    fn eval_field_chain<'t>(
        &mut self,
        st: &mut State<'t>,
        dot: &Got,
        mut receiver: Got,
        node: &'t Arg,
        idents: &[Str],
        args: &'t [Arg],
        fin: Option<Value>,
    ) -> Result<Got> {
        let n = idents.len();
        for ident in &idents[..n - 1] {
            receiver = self.eval_field(st, dot, ident, node, &[], None, receiver)?;
        }
        self.eval_field(st, dot, &idents[n - 1], node, args, fin, receiver)
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_field<'t>(
        &mut self,
        st: &mut State<'t>,
        dot: &Got,
        name: &str,
        node: &'t Arg,
        args: &'t [Arg],
        fin: Option<Value>,
        receiver: Got,
    ) -> Result<Got> {
        let typ = if receiver.iface {
            "interface {}".to_string()
        } else {
            receiver.v.type_name()
        };
        if receiver.v.is_nil() {
            if receiver.iface {
                return self.errorf(st, format!("nil pointer evaluating interface {{}}.{name}"));
            }
            return Ok(Got::plain(Value::Nil));
        }
        if let Some(m) = funcs::method(&receiver.v, name) {
            let call_args = if args.is_empty() { args } else { &args[1..] };
            let v = self.eval_call(
                st,
                dot,
                Callee::Method(m, receiver.v),
                At::Arg(node),
                name,
                call_args,
                fin,
            )?;
            return Ok(Got::plain(v));
        }
        let has_args = args.len() > 1 || fin.is_some();
        match &receiver.v {
            Value::Struct(s) => {
                if let Some(v) = s.field(name) {
                    if has_args {
                        return self.errorf(
                            st,
                            format!("{name} has arguments but cannot be invoked as function"),
                        );
                    }
                    return Ok(Got::plain(v.clone()));
                }
                if s.ty == StructType::Chart
                    || s.ty == StructType::KubeVersion
                    || s.ty == StructType::HelmVersion
                {
                    return self.errorf(st, format!("can't evaluate field {name} in type {typ}"));
                }
            }
            Value::Map(m) => {
                if has_args {
                    return self.errorf(st, format!("{name} is not a method but has arguments"));
                }
                return Ok(match m.get(name) {
                    Some(v) => Got { v, iface: true },
                    None if m.kind() == MapKind::Strings => Got::plain(Value::str("")),
                    None if m.kind() == MapKind::Files => {
                        Got::plain(Value::Bytes(std::sync::Arc::from(&[][..])))
                    }
                    None => Got {
                        v: Value::Nil,
                        iface: true,
                    },
                });
            }
            _ => {}
        }
        self.errorf(st, format!("can't evaluate field {name} in type {typ}"))
    }

    /// Call a function or method: check and convert arguments as Go does,
    /// call, and wrap its error as `error calling NAME: …`.
    #[allow(clippy::too_many_arguments)]
    fn eval_call<'t>(
        &mut self,
        st: &mut State<'t>,
        dot: &Got,
        callee: Callee,
        node: At<'t>,
        name: &str,
        args: &'t [Arg],
        fin: Option<Value>,
    ) -> Result<Value> {
        let def = callee.def();
        if let Special::And | Special::Or = def.special {
            return self.eval_and_or(st, dot, def.special == Special::And, node, name, args, fin);
        }
        let num_in = args.len() + usize::from(fin.is_some());
        let fixed = def.params.len();
        match def.variadic {
            Some(_) if num_in < fixed => {
                return self.errorf(
                    st,
                    format!(
                        "wrong number of args for {name}: want at least {fixed} got {}",
                        args.len()
                    ),
                );
            }
            None if num_in != fixed => {
                return self.errorf(
                    st,
                    format!("wrong number of args for {name}: want {fixed} got {num_in}"),
                );
            }
            _ => {}
        }
        let mut argv: Vec<Value> = Vec::with_capacity(num_in + 1);
        if let Callee::Method(_, recv) = &callee {
            argv.push(recv.clone());
        }
        let param = |i: usize| -> Ty {
            if i < fixed {
                def.params[i]
            } else {
                def.variadic.unwrap_or(Ty::Any)
            }
        };
        for (i, a) in args.iter().enumerate() {
            let v = self.eval_arg(st, dot, param(i), a)?;
            argv.push(v);
        }
        if let Some(f) = fin {
            let t = param(num_in - 1);
            let v = self.validate(st, f, false, t)?;
            argv.push(v);
        }
        match (def.call)(self, argv) {
            Ok(v) => Ok(v),
            Err(e) => {
                st.at = node;
                let (text, fail) = match e {
                    FnError::Msg(m) => (m, None),
                    FnError::Fail(m) => (format!("HELM_ERR_START{m}HELM_ERR_END"), Some(m)),
                    FnError::Exec(inner) => {
                        let at_inner = inner.fail.clone();
                        (inner.message.clone(), at_inner)
                    }
                    FnError::Wrapped(prefix, inner) => {
                        (format!("{prefix}: {}", inner.message), inner.fail.clone())
                    }
                };
                Err(self.error(st, format!("error calling {name}: {text}"), fail))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_and_or<'t>(
        &mut self,
        st: &mut State<'t>,
        dot: &Got,
        is_and: bool,
        node: At<'t>,
        name: &str,
        args: &'t [Arg],
        fin: Option<Value>,
    ) -> Result<Value> {
        let num_in = args.len() + usize::from(fin.is_some());
        if num_in < 1 {
            st.at = node;
            return self.errorf(
                st,
                format!("wrong number of args for {name}: want at least 1 got 0"),
            );
        }
        let mut v = Value::Nil;
        for a in args {
            v = self.eval_arg(st, dot, Ty::Any, a)?;
            if v.truthy() != is_and {
                return Ok(v);
            }
        }
        if let Some(f) = fin {
            v = f;
        }
        Ok(v)
    }

    /// Evaluate an argument for a parameter of type `ty`.
    fn eval_arg<'t>(&mut self, st: &mut State<'t>, dot: &Got, ty: Ty, n: &'t Arg) -> Result<Value> {
        st.at = At::Arg(n);
        match n {
            Arg::Dot(_) => return self.validate(st, dot.v.clone(), dot.iface, ty),
            Arg::Nil(_) => {
                if ty.can_be_nil() {
                    return Ok(Value::Nil);
                }
                return self.errorf(st, format!("cannot assign nil to {}", ty.go_name()));
            }
            Arg::Field { idents, .. } => {
                let g =
                    self.eval_field_chain(st, dot, dot.clone(), n, idents, std::slice::from_ref(n), None)?;
                return self.validate(st, g.v, g.iface, ty);
            }
            Arg::Variable { idents, .. } => {
                let value = self.var_value(st, &idents[0])?;
                let g = if idents.len() == 1 {
                    value
                } else {
                    self.eval_field_chain(st, dot, value, n, &idents[1..], &[], None)?
                };
                return self.validate(st, g.v, g.iface, ty);
            }
            Arg::Pipe(p) => {
                let v = self.eval_pipeline(st, dot, p)?;
                return self.validate(st, v, false, ty);
            }
            Arg::Func { id, name, .. } => {
                let def = funcs::get(*id);
                let v = self.eval_call(st, dot, Callee::Func(def), At::Arg(n), name, &[], None)?;
                return self.validate(st, v, false, ty);
            }
            Arg::Chain { node, fields, .. } => {
                let recv = self.eval_chain_receiver(st, dot, n, node)?;
                let g = self.eval_field_chain(st, dot, recv, n, fields, &[], None)?;
                return self.validate(st, g.v, g.iface, ty);
            }
            _ => {}
        }
        match ty {
            Ty::Bool => match n {
                Arg::Bool(_, b) => Ok(Value::Bool(*b)),
                _ => self.errorf(st, format!("expected bool; found {n}")),
            },
            Ty::Str => match n {
                Arg::String { text, .. } => Ok(Value::Str(text.clone())),
                _ => self.errorf(st, format!("expected string; found {n}")),
            },
            Ty::Int | Ty::Int64 => match n {
                Arg::Number(_, num) if num.is_int => Ok(if ty == Ty::Int {
                    Value::Int(num.int)
                } else {
                    Value::Int64(num.int)
                }),
                _ => self.errorf(st, format!("expected integer; found {n}")),
            },
            Ty::Float => match n {
                Arg::Number(_, num) if num.is_float => Ok(Value::Float(num.float)),
                _ => self.errorf(st, format!("expected float; found {n}")),
            },
            Ty::Any | Ty::Reflect => match n {
                Arg::Bool(_, b) => Ok(Value::Bool(*b)),
                Arg::Number(_, num) => self.ideal_constant(st, num),
                Arg::String { text, .. } => Ok(Value::Str(text.clone())),
                _ => self.errorf(
                    st,
                    format!("can't handle assignment of {n} to empty interface argument"),
                ),
            },
            _ => self.errorf(st, format!("can't handle {n} for arg of type {}", ty.go_name())),
        }
    }

    /// Go's `validateType`: the value must fit the parameter.
    fn validate(&self, st: &State, v: Value, iface: bool, ty: Ty) -> Result<Value> {
        if v.is_nil() {
            // A nil interface fits only an interface parameter; nothing
            // (an invalid value) fits any type that can be nil.
            if ty.can_be_nil() && (!iface || matches!(ty, Ty::Any | Ty::Reflect)) {
                return Ok(Value::Nil);
            }
            if iface {
                return self.errorf(
                    st,
                    format!(
                        "wrong type for value; expected {}; got interface {{}}",
                        ty.go_name()
                    ),
                );
            }
            return self.errorf(st, format!("invalid value; expected {}", ty.go_name()));
        }
        if ty.accepts(&v) {
            return Ok(v);
        }
        self.errorf(
            st,
            format!(
                "wrong type for value; expected {}; got {}",
                ty.go_name(),
                v.type_name()
            ),
        )
    }
}

enum Callee {
    Func(&'static funcs::FuncDef),
    Method(&'static funcs::FuncDef, Value),
}

impl Callee {
    fn def(&self) -> &'static funcs::FuncDef {
        match self {
            Callee::Func(d) | Callee::Method(d, _) => d,
        }
    }
}

/// Go's `ErrorContext` location: `FILE:LINE:COL`, COL the 0-based byte
/// offset in the line (on the first line, the offset in the file).
pub fn location(tree: &Tree, pos: usize) -> Location {
    let text = &tree.text;
    let pos = pos.min(text.len());
    let before = &text[..pos];
    let line = before.matches('\n').count() + 1;
    let column = match before.rfind('\n') {
        Some(nl) => pos - (nl + 1),
        None => pos,
    };
    Location {
        file: tree.parse_name.clone(),
        text: tree.text.clone(),
        offset: pos,
        line,
        column,
    }
}
