//! Masterminds semver v3, as Helm and Sprig use it: lenient versions
//! (`v1.2`, `1`), constraints (`>=1.21.0-0`, `~1.2`, `^2`, `1.x`,
//! `1.2 - 1.4`, `>=1 <2 || 3`), and its rule that a pre-release version
//! satisfies only a constraint that names a pre-release itself.

use std::cmp::Ordering;
use std::sync::OnceLock;

use regex::Regex;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: String,
    pub metadata: String,
    pub original: String,
}

pub const INVALID: &str = "Invalid Semantic Version";

impl Version {
    /// `semver.NewVersion`.
    pub fn parse(s: &str) -> Result<Version, String> {
        let body = s.strip_prefix('v').unwrap_or(s);
        let (body, metadata) = match body.split_once('+') {
            Some((b, m)) => (b, m),
            None => (body, ""),
        };
        let (core, pre) = match body.split_once('-') {
            Some((c, p)) => (c, p),
            None => (body, ""),
        };
        let nums: Vec<&str> = core.split('.').collect();
        if nums.is_empty()
            || nums.len() > 3
            || nums
                .iter()
                .any(|n| n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()))
        {
            return Err(INVALID.into());
        }
        let num = |i: usize| -> Result<u64, String> {
            match nums.get(i) {
                None => Ok(0),
                Some(n) => n.parse().map_err(|_| INVALID.to_string()),
            }
        };
        let ident_ok = |p: &str| {
            !p.is_empty()
                && p.split('.')
                    .all(|x| !x.is_empty() && x.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
        };
        if body.contains('-') && !ident_ok(pre) {
            return Err(INVALID.into());
        }
        if s.contains('+') && !ident_ok(metadata) {
            return Err(INVALID.into());
        }
        for seg in pre.split('.') {
            if seg.len() > 1 && seg.starts_with('0') && seg.bytes().all(|c| c.is_ascii_digit()) {
                return Err("Version segment starts with 0".into());
            }
        }
        Ok(Version {
            major: num(0)?,
            minor: num(1)?,
            patch: num(2)?,
            pre: pre.to_string(),
            metadata: metadata.to_string(),
            original: s.to_string(),
        })
    }

    pub fn compare(&self, o: &Version) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(o.major, o.minor, o.patch))
            .then_with(|| compare_pre(&self.pre, &o.pre))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        if !self.metadata.is_empty() {
            write!(f, "+{}", self.metadata)?;
        }
        Ok(())
    }
}

fn compare_pre(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    let (xs, ys): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    for (x, y) in xs.iter().zip(&ys) {
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(i), Ok(j)) => i.cmp(&j),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            _ => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    xs.len().cmp(&ys.len())
}

#[derive(Debug, Clone)]
struct Constraint {
    op: String,
    con: Version,
    dirty: bool,
    minor_dirty: bool,
    patch_dirty: bool,
}

/// `semver.Constraints`: OR of ANDs.
#[derive(Debug, Clone)]
pub struct Constraints {
    ors: Vec<Vec<Constraint>>,
}

const CV: &str = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
const OPS: &str = r"!=|>=|=>|<=|=<|~>|=|>|<|~|\^|";

struct Regexes {
    constraint: Regex,
    find: Regex,
    valid: Regex,
    range: Regex,
}

fn regexes() -> &'static Regexes {
    static R: OnceLock<Regexes> = OnceLock::new();
    R.get_or_init(|| {
        let build = |p: String| Regex::new(&p).unwrap_or_else(|_| Regex::new("^$").expect("empty regex"));
        Regexes {
            constraint: build(format!(r"^\s*({OPS})\s*({CV})\s*$")),
            find: build(format!(r"({OPS})\s*({CV})")),
            valid: build(format!(
                r"^(\s*({OPS})\s*({CV})\s*)((?:\s+|,\s*)({OPS})\s*({CV})\s*)*$"
            )),
            range: build(format!(r"\s*({CV})\s+-\s+({CV})\s*")),
        }
    })
}

fn is_x(s: &str) -> bool {
    matches!(s, "x" | "X" | "*")
}

impl Constraints {
    /// `semver.NewConstraint`.
    pub fn parse(c: &str) -> Result<Constraints, String> {
        let r = regexes();
        let c = r
            .range
            .replace_all(c, |caps: &regex::Captures| {
                format!(">= {}, <= {}", &caps[1], &caps[11])
            })
            .into_owned();
        let mut ors = Vec::new();
        for part in c.split("||") {
            if !r.valid.is_match(part) {
                return Err(format!("improper constraint: {part}"));
            }
            let mut found: Vec<String> = r.find.find_iter(part).map(|m| m.as_str().to_string()).collect();
            if found.is_empty() {
                found.push(part.to_string());
            }
            let mut and = Vec::new();
            for s in found {
                and.push(parse_one(&s)?);
            }
            ors.push(and);
        }
        Ok(Constraints { ors })
    }

    pub fn check(&self, v: &Version) -> bool {
        self.ors.iter().any(|and| and.iter().all(|c| c.check(v)))
    }
}

fn parse_one(c: &str) -> Result<Constraint, String> {
    if c.is_empty() {
        return Ok(Constraint {
            op: String::new(),
            con: Version::parse("0.0.0")?,
            dirty: true,
            minor_dirty: false,
            patch_dirty: false,
        });
    }
    let m = regexes()
        .constraint
        .captures(c)
        .ok_or_else(|| format!("improper constraint: {c}"))?;
    let g = |i: usize| m.get(i).map_or("", |x| x.as_str());
    let (major, minor, patch, pre) = (g(3), g(4), g(5), g(6));
    let (mut dirty, mut minor_dirty, mut patch_dirty) = (false, false, false);
    let ver = if is_x(major) || major.is_empty() {
        dirty = true;
        format!("0.0.0{pre}")
    } else if is_x(minor.trim_start_matches('.')) || minor.is_empty() {
        dirty = true;
        minor_dirty = true;
        format!("{major}.0.0{pre}")
    } else if is_x(patch.trim_start_matches('.')) || patch.is_empty() {
        dirty = true;
        patch_dirty = true;
        format!("{major}{minor}.0{pre}")
    } else {
        g(2).to_string()
    };
    let con = Version::parse(&ver).map_err(|_| "constraint Parser Error".to_string())?;
    Ok(Constraint {
        op: g(1).to_string(),
        con,
        dirty,
        minor_dirty,
        patch_dirty,
    })
}

impl Constraint {
    fn check(&self, v: &Version) -> bool {
        let c = &self.con;
        if !v.pre.is_empty() && c.pre.is_empty() {
            return false;
        }
        let cmp = v.compare(c);
        match self.op.as_str() {
            "" | "=" => {
                if self.dirty {
                    self.tilde(v)
                } else {
                    cmp == Ordering::Equal
                }
            }
            "!=" => {
                if self.dirty {
                    !self.tilde(v)
                } else {
                    cmp != Ordering::Equal
                }
            }
            ">" => {
                if !self.dirty {
                    return cmp == Ordering::Greater;
                }
                if v.major != c.major {
                    return v.major > c.major;
                }
                if self.minor_dirty {
                    return false;
                }
                if self.patch_dirty {
                    return v.minor > c.minor;
                }
                cmp == Ordering::Greater
            }
            "<" => cmp == Ordering::Less,
            ">=" | "=>" => cmp != Ordering::Less,
            "<=" | "=<" => {
                if !self.dirty {
                    return cmp != Ordering::Greater;
                }
                if v.major > c.major {
                    return false;
                }
                !(v.major == c.major && v.minor > c.minor && !self.minor_dirty)
            }
            "~" | "~>" => self.tilde(v),
            "^" => {
                if cmp == Ordering::Less {
                    return false;
                }
                if c.major > 0 || self.minor_dirty {
                    return v.major == c.major;
                }
                if c.minor > 0 || self.patch_dirty {
                    return v.major == c.major && v.minor == c.minor;
                }
                v.major == c.major && v.minor == c.minor && v.patch == c.patch
            }
            _ => false,
        }
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.con;
        if v.compare(c) == Ordering::Less {
            return false;
        }
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        if v.major != c.major {
            return false;
        }
        if v.minor != c.minor && !self.minor_dirty {
            return false;
        }
        true
    }
}

/// Sprig's `semverCompare`.
pub fn compare(constraint: &str, version: &str) -> Result<bool, String> {
    let c = Constraints::parse(constraint)?;
    let v = Version::parse(version)?;
    Ok(c.check(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints_like_masterminds() {
        let cases = [
            (">=1.21-0", "v1.32.0", true),
            (">=1.21", "1.32.0-eks.1", false),
            (">=1.21-0", "1.32.0-eks.1", true),
            ("~1.2.3", "1.2.9", true),
            ("~1.2.3", "1.3.0", false),
            ("^1.2.3", "1.9.0", true),
            ("^1.2.3", "2.0.0", false),
            ("^0.2.3", "0.2.9", true),
            ("^0.2.3", "0.3.0", false),
            ("1.x", "1.9.9", true),
            ("1.x", "2.0.0", false),
            ("1.2 - 1.4.5", "1.4.5", true),
            ("1.2 - 1.4.5", "1.4.6", false),
            (">=1 <2 || 3", "3.5.0", true),
            (">=1, <2", "1.5.0", true),
            ("<1.25.0-0", "1.24.3", true),
            (">= 1.19.0-0", "v1.20.0", true),
            ("*", "1.0.0", true),
            (">11", "11.1.0", false),
            ("!=1.2.3", "1.2.3", false),
            (">=3.9.0-0", "v3.17.2", true),
        ];
        for (c, v, want) in cases {
            assert_eq!(compare(c, v), Ok(want), "{c} {v}");
        }
        assert_eq!(compare("foo", "1.0.0"), Err("improper constraint: foo".into()));
        assert_eq!(compare(">1", "x.y"), Err(INVALID.into()));
    }

    #[test]
    fn versions_order() {
        let v = |s: &str| Version::parse(s).unwrap();
        assert!(v("1.0.0-alpha") < v("1.0.0-alpha.1"));
        assert!(v("1.0.0-alpha.beta") > v("1.0.0-alpha.1"));
        assert!(v("1.0.0-rc.1") < v("1.0.0"));
        assert_eq!(v("v1.2").to_string(), "1.2.0");
    }

    impl PartialOrd for Version {
        fn partial_cmp(&self, o: &Version) -> Option<Ordering> {
            Some(self.compare(o))
        }
    }
}
