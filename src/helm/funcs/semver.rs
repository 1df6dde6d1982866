//! Sprig's `semver` and `semverCompare`, and the methods of the version
//! `semver` returns (`.Major`, `.LessThan`, …).

use std::rc::Rc;

use super::{FnResult, FuncDef, Ty, err, f, s};
use crate::helm::semver::{self, Version};
use crate::helm::value::{Field, Struct, StructType, Value};

pub fn version_value(v: &Version) -> Value {
    Value::Struct(Rc::new(Struct {
        ty: StructType::Semver,
        fields: vec![
            Field::new("Major", Value::Int64(v.major as i64)),
            Field::new("Minor", Value::Int64(v.minor as i64)),
            Field::new("Patch", Value::Int64(v.patch as i64)),
            Field::new("Prerelease", Value::str(&v.pre)),
            Field::new("Metadata", Value::str(&v.metadata)),
            Field::new("Original", Value::str(&v.original)),
        ],
    }))
}

fn version_of(v: &Value) -> Version {
    let Value::Struct(st) = v else {
        return Version::parse("0.0.0").unwrap_or_else(|_| unreachable_version());
    };
    let num = |n: &str| match st.field(n) {
        Some(Value::Int64(i)) => *i as u64,
        _ => 0,
    };
    let text = |n: &str| {
        st.field(n)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Version {
        major: num("Major"),
        minor: num("Minor"),
        patch: num("Patch"),
        pre: text("Prerelease"),
        metadata: text("Metadata"),
        original: text("Original"),
    }
}

fn unreachable_version() -> Version {
    Version {
        major: 0,
        minor: 0,
        patch: 0,
        pre: String::new(),
        metadata: String::new(),
        original: String::new(),
    }
}

fn field(v: &Value, name: &str) -> FnResult {
    match v {
        Value::Struct(s) => Ok(s.field(name).cloned().unwrap_or_default()),
        _ => err("not a version"),
    }
}

fn cmp(a: &Value, b: &Value) -> std::cmp::Ordering {
    version_of(a).compare(&version_of(b))
}

fn bumped(v: &Value, part: u8) -> Value {
    let mut x = version_of(v);
    match part {
        0 => {
            x.major += 1;
            x.minor = 0;
            x.patch = 0;
        }
        1 => {
            x.minor += 1;
            x.patch = 0;
        }
        _ => {
            if x.pre.is_empty() {
                x.patch += 1;
            }
        }
    }
    x.pre.clear();
    x.metadata.clear();
    x.original = x.to_string();
    version_value(&x)
}

pub const FUNCS: &[FuncDef] = &[
    f("semver", &[Ty::Str], |_, a| match Version::parse(s(&a[0])) {
        Ok(v) => Ok(version_value(&v)),
        Err(e) => err(e),
    }),
    f("semverCompare", &[Ty::Str, Ty::Str], |_, a| {
        semver::compare(s(&a[0]), s(&a[1])).map(Value::Bool).or_else(err)
    }),
];

pub const METHODS: &[FuncDef] = &[
    f("Major", &[], |_, a| field(&a[0], "Major")),
    f("Minor", &[], |_, a| field(&a[0], "Minor")),
    f("Patch", &[], |_, a| field(&a[0], "Patch")),
    f("Prerelease", &[], |_, a| field(&a[0], "Prerelease")),
    f("Metadata", &[], |_, a| field(&a[0], "Metadata")),
    f("Original", &[], |_, a| field(&a[0], "Original")),
    f("String", &[], |_, a| {
        Ok(Value::string(version_of(&a[0]).to_string()))
    }),
    f("Compare", &[Ty::Semver], |_, a| {
        Ok(Value::Int(match cmp(&a[0], &a[1]) {
            std::cmp::Ordering::Less => -1,
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Greater => 1,
        }))
    }),
    f("LessThan", &[Ty::Semver], |_, a| {
        Ok(Value::Bool(cmp(&a[0], &a[1]).is_lt()))
    }),
    f("GreaterThan", &[Ty::Semver], |_, a| {
        Ok(Value::Bool(cmp(&a[0], &a[1]).is_gt()))
    }),
    f("Equal", &[Ty::Semver], |_, a| {
        Ok(Value::Bool(cmp(&a[0], &a[1]).is_eq()))
    }),
    f("IncMajor", &[], |_, a| Ok(bumped(&a[0], 0))),
    f("IncMinor", &[], |_, a| Ok(bumped(&a[0], 1))),
    f("IncPatch", &[], |_, a| Ok(bumped(&a[0], 2))),
];
