//! The values templates work on, modelled on the Go values Helm's templates
//! see: `interface{}` holding a bool, an `int`, an `int64`, a `float64`, a
//! string, a `[]byte`, a slice, a `map[string]interface{}` (shared and
//! mutable, as Go maps are: `set` and `merge` change them in place), or one
//! of the few structs Helm passes (`.Chart`, `.Capabilities`, …).
//!
//! Which Go type a value has matters: `int` and `float64` print differently
//! (`1000000` against `1e+06`), compare differently (`eq 1 1.0` is an error)
//! and are accepted by different function parameters.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// A shared string.
pub type Str = Rc<str>;

/// The entries of a map, in key order (Go sorts keys wherever order shows).
pub type Entries = BTreeMap<Str, Value>;

/// A template value.
#[derive(Clone, Default)]
pub enum Value {
    /// Go's invalid value or a nil `interface{}`: a missing map key, `nil`.
    #[default]
    Nil,
    Bool(bool),
    /// Go `int`.
    Int(i64),
    /// Go `int64` (sprig's arithmetic returns these).
    Int64(i64),
    Float(f64),
    Str(Str),
    /// A `[]byte`; shared with the loaded chart, whose files it holds.
    Bytes(std::sync::Arc<[u8]>),
    List(Rc<List>),
    Map(MapRef),
    Struct(Rc<Struct>),
}

/// A slice. `elem` is the Go element type, for `typeOf` and for methods of
/// named slice types.
#[derive(Clone, Default)]
pub struct List {
    pub elem: Elem,
    pub items: Vec<Value>,
}

/// Element types of the slices templates meet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Elem {
    /// `[]interface {}`
    #[default]
    Any,
    /// `[]string`
    Str,
    /// `[]int`
    Int,
    /// `chartutil.VersionSet` (a `[]string` with a `Has` method).
    VersionSet,
}

/// A shared, mutable map.
#[derive(Clone)]
pub struct MapRef(pub Rc<RefCell<Map>>);

/// A map's kind: the Go type it stands for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MapKind {
    /// `map[string]interface {}`
    #[default]
    Any,
    /// `map[string]string`: a missing key reads as `""`.
    Strings,
    /// Helm's `.Files` (`map[string][]byte` with methods).
    Files,
}

#[derive(Clone, Default)]
pub struct Map {
    pub kind: MapKind,
    pub entries: Entries,
}

/// A Go struct: ordered fields (Go names, JSON names) and a type that
/// decides its methods.
pub struct Struct {
    pub ty: StructType,
    pub fields: Vec<Field>,
}

pub struct Field {
    pub name: &'static str,
    /// The JSON name; `None` when the Go name is used.
    pub json: Option<&'static str>,
    /// `omitempty` in JSON.
    pub omit_empty: bool,
    pub value: Value,
}

impl Field {
    /// A field without a JSON tag.
    pub fn new(name: &'static str, value: Value) -> Field {
        Field {
            name,
            json: None,
            omit_empty: false,
            value,
        }
    }
}

/// The struct types templates meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StructType {
    /// `.Chart`: `chart.Metadata` plus `IsRoot`.
    Chart,
    Maintainer,
    Dependency,
    Capabilities,
    /// `chartutil.KubeVersion`, with methods `String` and `GitVersion`.
    KubeVersion,
    /// `version.BuildInfo`
    HelmVersion,
    /// `*semver.Version` from sprig's `semver`.
    Semver,
    /// `time.Time` from `now`, `toDate`, …: fields hold the Unix time.
    Time,
    /// Sprig's `certificate` (`Cert`, `Key`).
    Certificate,
}

impl StructType {
    pub fn go_name(self) -> &'static str {
        match self {
            StructType::Chart => "struct { chart.Metadata; IsRoot bool }",
            StructType::Maintainer => "*chart.Maintainer",
            StructType::Dependency => "*chart.Dependency",
            StructType::Capabilities => "*chartutil.Capabilities",
            StructType::KubeVersion => "chartutil.KubeVersion",
            StructType::HelmVersion => "version.BuildInfo",
            StructType::Semver => "*semver.Version",
            StructType::Time => "time.Time",
            StructType::Certificate => "sprig.certificate",
        }
    }
}

impl Struct {
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|f| f.name == name).map(|f| &f.value)
    }
}

impl MapRef {
    pub fn new(map: Map) -> MapRef {
        MapRef(Rc::new(RefCell::new(map)))
    }

    pub fn get(&self, key: &str) -> Option<Value> {
        self.0.borrow().entries.get(key).cloned()
    }

    pub fn kind(&self) -> MapKind {
        self.0.borrow().kind
    }

    pub fn len(&self) -> usize {
        self.0.borrow().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.borrow().entries.is_empty()
    }

    pub fn insert(&self, key: Str, value: Value) {
        self.0.borrow_mut().entries.insert(key, value);
    }

    pub fn remove(&self, key: &str) -> Option<Value> {
        self.0.borrow_mut().entries.remove(key)
    }

    /// A snapshot of the entries, for iterating while the map may change.
    pub fn snapshot(&self) -> Vec<(Str, Value)> {
        self.0
            .borrow()
            .entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn keys(&self) -> Vec<Str> {
        self.0.borrow().entries.keys().cloned().collect()
    }

    pub fn ptr_eq(&self, other: &MapRef) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(Rc::from(s))
    }

    pub fn string(s: String) -> Value {
        Value::Str(Rc::from(s))
    }

    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Rc::new(List {
            elem: Elem::Any,
            items,
        }))
    }

    pub fn str_list(items: Vec<Value>) -> Value {
        Value::List(Rc::new(List {
            elem: Elem::Str,
            items,
        }))
    }

    pub fn map(entries: Entries) -> Value {
        Value::Map(MapRef::new(Map {
            kind: MapKind::Any,
            entries,
        }))
    }

    pub fn empty_map() -> Value {
        Value::map(Entries::new())
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&MapRef> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// A plain `map[string]interface{}` (not `.Files` or `map[string]string`).
    pub fn as_table(&self) -> Option<&MapRef> {
        match self {
            Value::Map(m) if m.kind() == MapKind::Any => Some(m),
            _ => None,
        }
    }

    /// Go's `reflect.Type.String()` of the value.
    pub fn type_name(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Int64(_) => "int64".into(),
            Value::Float(_) => "float64".into(),
            Value::Str(_) => "string".into(),
            Value::Bytes(_) => "[]uint8".into(),
            Value::List(l) => match l.elem {
                Elem::Any => "[]interface {}".into(),
                Elem::Str => "[]string".into(),
                Elem::Int => "[]int".into(),
                Elem::VersionSet => "chartutil.VersionSet".into(),
            },
            Value::Map(m) => match m.kind() {
                MapKind::Any => "map[string]interface {}".into(),
                MapKind::Strings => "map[string]string".into(),
                MapKind::Files => "engine.files".into(),
            },
            Value::Struct(s) => s.ty.go_name().into(),
        }
    }

    /// Go's `reflect.Kind.String()` of the value.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Nil => "invalid",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Bytes(_) | Value::List(_) => "slice",
            Value::Map(_) => "map",
            Value::Struct(s) => match s.ty {
                StructType::Chart
                | StructType::KubeVersion
                | StructType::HelmVersion
                | StructType::Time
                | StructType::Certificate => "struct",
                _ => "ptr",
            },
        }
    }

    /// Go template truth: not the zero value of its type.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) | Value::Int64(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Bytes(b) => !b.is_empty(),
            Value::List(l) => !l.items.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Struct(_) => true,
        }
    }

    /// A deep copy: maps become new maps (sprig's `deepCopy`, and values
    /// handed to a chart so that a template cannot change the caller's).
    pub fn deep_copy(&self) -> Value {
        match self {
            Value::List(l) => Value::List(Rc::new(List {
                elem: l.elem,
                items: l.items.iter().map(Value::deep_copy).collect(),
            })),
            Value::Map(m) => {
                let map = m.0.borrow();
                Value::Map(MapRef::new(Map {
                    kind: map.kind,
                    entries: map
                        .entries
                        .iter()
                        .map(|(k, v)| (k.clone(), v.deep_copy()))
                        .collect(),
                }))
            }
            other => other.clone(),
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::str(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::string(s)
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::helm::gofmt::sprint_value(self))
    }
}

/// Deep equality, as Go's `reflect.DeepEqual` (maps by content, `int` and
/// `int64` never equal).
pub fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) | (Value::Int64(x), Value::Int64(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Bytes(x), Value::Bytes(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.elem == y.elem
                && x.items.len() == y.items.len()
                && x.items.iter().zip(&y.items).all(|(a, b)| deep_equal(a, b))
        }
        (Value::Map(x), Value::Map(y)) => {
            if x.ptr_eq(y) {
                return true;
            }
            let (x, y) = (x.0.borrow(), y.0.borrow());
            x.kind == y.kind
                && x.entries.len() == y.entries.len()
                && x.entries
                    .iter()
                    .zip(&y.entries)
                    .all(|((ka, va), (kb, vb))| ka == kb && deep_equal(va, vb))
        }
        (Value::Struct(x), Value::Struct(y)) => {
            x.ty == y.ty
                && x.fields.len() == y.fields.len()
                && x.fields
                    .iter()
                    .zip(&y.fields)
                    .all(|(a, b)| deep_equal(&a.value, &b.value))
        }
        _ => false,
    }
}

/// The first of 256 private-use characters that stand for the bytes of a
/// Go string that are not UTF-8 (a `.Files.Get` of a binary file, a
/// `b64dec` of binary data), so that such a string survives until
/// `b64enc` or a checksum turns it back into its bytes.
const RAW_BYTE_BASE: u32 = 0x10FF00;

/// Bytes as a Go string: valid UTF-8 as it is, any other byte as a
/// stand-in character.
pub fn string_from_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => {
            let mut out = String::with_capacity(bytes.len() + 16);
            let mut rest = bytes;
            while !rest.is_empty() {
                match std::str::from_utf8(rest) {
                    Ok(s) => {
                        out.push_str(s);
                        break;
                    }
                    Err(e) => {
                        let (good, bad) = rest.split_at(e.valid_up_to());
                        out.push_str(std::str::from_utf8(good).unwrap_or_default());
                        let n = e.error_len().unwrap_or(bad.len()).max(1);
                        for b in &bad[..n] {
                            out.push(char::from_u32(RAW_BYTE_BASE + *b as u32).unwrap_or('\u{FFFD}'));
                        }
                        rest = &bad[n..];
                    }
                }
            }
            out
        }
    }
}

/// The bytes of a Go string made by [`string_from_bytes`].
pub fn string_bytes(s: &str) -> std::borrow::Cow<'_, [u8]> {
    if !s.chars().any(|c| c as u32 >= RAW_BYTE_BASE) {
        return std::borrow::Cow::Borrowed(s.as_bytes());
    }
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        let n = c as u32;
        if n >= RAW_BYTE_BASE {
            out.push((n - RAW_BYTE_BASE) as u8);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    std::borrow::Cow::Owned(out)
}
