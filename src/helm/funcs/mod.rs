//! The functions templates can call: Go's builtins (`and`, `index`,
//! `printf`, `eq`, …), Sprig's (v3.3, as Helm 3.17 ships them, without
//! `env` and `expandenv`), and Helm's own (`include`, `tpl`, `toYaml`, …).
//! A later table entry of the same name wins, as a template's functions
//! shadow Go's builtins and Helm's shadow Sprig's.
//!
//! Each function declares Go's parameter types, so that arguments are
//! checked and converted as Go's reflection-based calls do (`nindent 4`
//! takes an `int`: a `float64` from values is an error there too).

use std::rc::Rc;
use std::sync::OnceLock;

use super::gofmt;
use super::template::exec::{Env, ExecError};
use super::value::{Elem, MapKind, StructType, Value, deep_equal};

mod builtin;
mod crypto;
pub mod date;
mod dicts;
mod encoding;
pub mod helm;
mod lists;
mod math;
mod random;
mod semver;
mod strings;

/// Why a function failed.
#[derive(Debug)]
pub enum FnError {
    Msg(String),
    /// `fail` or `required`: Helm reports only this message.
    Fail(String),
    /// A template run by the function failed (`include`).
    Exec(Box<ExecError>),
    /// As `Exec`, with what the function was doing (`tpl`).
    Wrapped(String, Box<ExecError>),
}

pub type FnResult = Result<Value, FnError>;

pub fn err<T>(msg: impl Into<String>) -> Result<T, FnError> {
    Err(FnError::Msg(msg.into()))
}

/// Go parameter types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// `interface{}`
    Any,
    /// `reflect.Value` (Go's builtins): anything, also nothing.
    Reflect,
    Str,
    Int,
    Int64,
    Float,
    Bool,
    /// `map[string]interface{}`
    Map,
    /// `[]string`
    Strs,
    /// `[]interface{}`
    List,
    /// `[]byte`
    Bytes,
    /// `*semver.Version`
    Semver,
    /// `time.Time`
    Time,
    /// Sprig's `certificate`
    Certificate,
}

impl Ty {
    pub fn can_be_nil(self) -> bool {
        matches!(
            self,
            Ty::Any | Ty::Reflect | Ty::Map | Ty::Strs | Ty::List | Ty::Bytes | Ty::Semver
        )
    }

    pub fn go_name(self) -> &'static str {
        match self {
            Ty::Any => "interface {}",
            Ty::Reflect => "reflect.Value",
            Ty::Str => "string",
            Ty::Int => "int",
            Ty::Int64 => "int64",
            Ty::Float => "float64",
            Ty::Bool => "bool",
            Ty::Map => "map[string]interface {}",
            Ty::Strs => "[]string",
            Ty::List => "[]interface {}",
            Ty::Bytes => "[]uint8",
            Ty::Semver => "*semver.Version",
            Ty::Time => "time.Time",
            Ty::Certificate => "sprig.certificate",
        }
    }

    /// Whether a (non-nil) value is assignable to the type.
    pub fn accepts(self, v: &Value) -> bool {
        match self {
            Ty::Any | Ty::Reflect => true,
            Ty::Str => matches!(v, Value::Str(_)),
            Ty::Int => matches!(v, Value::Int(_)),
            Ty::Int64 => matches!(v, Value::Int64(_)),
            Ty::Float => matches!(v, Value::Float(_)),
            Ty::Bool => matches!(v, Value::Bool(_)),
            Ty::Map => matches!(v, Value::Map(m) if m.kind() == MapKind::Any),
            Ty::Strs => matches!(v, Value::List(l) if matches!(l.elem, Elem::Str | Elem::VersionSet)),
            Ty::List => matches!(v, Value::List(l) if l.elem == Elem::Any),
            Ty::Bytes => matches!(v, Value::Bytes(_)),
            Ty::Semver => matches!(v, Value::Struct(s) if s.ty == StructType::Semver),
            Ty::Time => matches!(v, Value::Struct(s) if s.ty == StructType::Time),
            Ty::Certificate => matches!(v, Value::Struct(s) if s.ty == StructType::Certificate),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    None,
    And,
    Or,
}

pub type Call = fn(&mut Env, Vec<Value>) -> FnResult;

pub struct FuncDef {
    pub name: &'static str,
    pub params: &'static [Ty],
    pub variadic: Option<Ty>,
    pub special: Special,
    pub call: Call,
}

/// A function with fixed parameters.
pub const fn f(name: &'static str, params: &'static [Ty], call: Call) -> FuncDef {
    FuncDef {
        name,
        params,
        variadic: None,
        special: Special::None,
        call,
    }
}

/// A function whose last parameter is `...variadic`.
pub const fn v(name: &'static str, params: &'static [Ty], variadic: Ty, call: Call) -> FuncDef {
    FuncDef {
        name,
        params,
        variadic: Some(variadic),
        special: Special::None,
        call,
    }
}

struct Table {
    defs: Vec<&'static FuncDef>,
    by_name: crate::helm::FastMap<&'static str, u16>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let groups: [&'static [FuncDef]; 11] = [
            builtin::FUNCS,
            strings::FUNCS,
            lists::FUNCS,
            dicts::FUNCS,
            math::FUNCS,
            encoding::FUNCS,
            date::FUNCS,
            random::FUNCS,
            crypto::FUNCS,
            semver::FUNCS,
            helm::FUNCS,
        ];
        let mut defs = Vec::new();
        let mut by_name = crate::helm::FastMap::default();
        for group in groups {
            for def in group {
                by_name.insert(def.name, defs.len() as u16);
                defs.push(def);
            }
        }
        Table { defs, by_name }
    })
}

/// The id of a function, for the parser.
pub fn lookup(name: &str) -> Option<u16> {
    table().by_name.get(name).copied()
}

pub fn get(id: u16) -> &'static FuncDef {
    table().defs[id as usize]
}

/// A method of a value's Go type. Methods take the receiver as their
/// first argument.
pub fn method(recv: &Value, name: &str) -> Option<&'static FuncDef> {
    let group: &'static [FuncDef] = match recv {
        Value::Map(m) if m.kind() == MapKind::Files => helm::FILES_METHODS,
        Value::List(l) if l.elem == Elem::VersionSet => helm::VERSION_SET_METHODS,
        Value::Struct(s) => match s.ty {
            StructType::KubeVersion => helm::KUBE_VERSION_METHODS,
            StructType::Semver => semver::METHODS,
            StructType::Time => date::METHODS,
            _ => return None,
        },
        _ => return None,
    };
    group.iter().find(|d| d.name == name)
}

// ---- conversions Sprig uses ---------------------------------------------------

/// The string of an argument declared `string`.
pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The integer of an argument declared `int` or `int64`.
pub fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        _ => 0,
    }
}

/// Sprig's `strval`: strings and bytes as they are, `String()` where there
/// is one, else `%v`.
pub fn strval(v: &Value) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        Value::Bytes(b) => super::value::string_from_bytes(b),
        other => gofmt::stringer(other).unwrap_or_else(|| gofmt::sprint_value(other)),
    }
}

/// spf13/cast's `ToInt64` (what Sprig's `int64`, `add`, … use).
pub fn to_int64(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Float(f) => {
            if f.is_nan() {
                i64::MIN
            } else {
                *f as i64
            }
        }
        Value::Bool(b) => i64::from(*b),
        Value::Str(s) => {
            let s = trim_zero_decimal(s);
            super::template::parse::parse_go_int(s).unwrap_or(0)
        }
        _ => 0,
    }
}

/// cast's `trimZeroDecimal`: `10.00` reads as `10`.
fn trim_zero_decimal(s: &str) -> &str {
    let mut found = false;
    for (i, c) in s.char_indices().rev() {
        match c {
            '.' => {
                return if found { s } else { &s[..i] };
            }
            '0' => {}
            _ => found = true,
        }
    }
    s
}

/// cast's `ToFloat64`.
pub fn to_float64(v: &Value) -> f64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(s) => super::template::parse::parse_go_float(s).unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Sprig's `empty`.
pub fn empty(v: &Value) -> bool {
    !v.truthy()
}

/// The items of a slice argument, or `None` when it is not a slice.
pub fn items(v: &Value) -> Option<Vec<Value>> {
    match v {
        Value::List(l) => Some(l.items.clone()),
        Value::Bytes(b) => Some(b.iter().map(|x| Value::Int(*x as i64)).collect()),
        _ => None,
    }
}

/// Go's `reflect.Kind` name for `Cannot … on type KIND` messages.
pub fn kind(v: &Value) -> &'static str {
    v.kind_name()
}

pub fn list_of_strings(items: Vec<String>) -> Value {
    Value::str_list(items.into_iter().map(Value::string).collect())
}

pub fn in_list(list: &[Value], needle: &Value) -> bool {
    list.iter().any(|x| deep_equal(x, needle))
}

/// A runtime panic of Go, as the error message the template reports.
pub fn nil_deref<T>() -> Result<T, FnError> {
    err("runtime error: invalid memory address or nil pointer dereference")
}

/// Go's `path.Clean`.
pub fn clean_path(p: &str) -> String {
    encoding::clean(p)
}

pub fn rc_str(s: &str) -> Rc<str> {
    Rc::from(s)
}
