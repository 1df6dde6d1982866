//! Semver ranges as Flux reads them: Masterminds semver v3 constraints
//! (`github.com/Masterminds/semver/v3`, `constraints.go`), used by Flux's
//! ImagePolicy and by the `semver` refs of GitRepository and
//! OCIRepository. The grammar and every rule are Masterminds':
//!
//! - `a || b` is OR; inside an alternative, comparisons separated by
//!   blanks or commas are AND (`>=1.0.0, <2.0.0` = `>=1.0.0 <2.0.0`);
//! - comparisons: `=`, `!=`, `>`, `<`, `>=` (`=>`), `<=` (`=<`), `~`
//!   (`~>`), `^`, or none (`1.2.3`, `1.2.x`); versions may lack parts or
//!   use `x`, `X`, `*` for them, and may start with `v`;
//! - `1.2.3 - 2.3.4` is `>= 1.2.3, <= 2.3.4`;
//! - a pre-release version satisfies a comparison only when that
//!   comparison's own version has a pre-release (any version, not only
//!   the same `MAJOR.MINOR.PATCH`): `>=1.0.0-0` admits `1.5.0-rc.1`, but
//!   `>=1.0.0-0 <2.0.0` does not, since `<2.0.0` has none.
//!
//! The regular expressions are Masterminds' own, with Go's `\s` (ASCII
//! blanks) spelled out; the `regex` crate matches leftmost-first as Go's
//! does, so every string splits the same way.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use super::{Ident, Version};

const WS: &str = r"[\t\n\f\r ]";
const OPS: &str = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^";
const CV: &str = concat!(
    r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?",
    r"(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?",
    r"(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
);

fn regex(pattern: String) -> Regex {
    Regex::new(&pattern).expect("a valid constant pattern")
}

static CONSTRAINT: LazyLock<Regex> = LazyLock::new(|| regex(format!(r"^{WS}*({OPS}){WS}*({CV}){WS}*$")));
static HYPHEN: LazyLock<Regex> = LazyLock::new(|| regex(format!(r"{WS}*({CV}){WS}+-{WS}+({CV}){WS}*")));
static FIND: LazyLock<Regex> = LazyLock::new(|| regex(format!(r"({OPS}){WS}*({CV})")));
static VALID: LazyLock<Regex> = LazyLock::new(|| {
    regex(format!(
        r"^({WS}*({OPS}){WS}*({CV}){WS}*)((?:{WS}+|,{WS}*)({OPS}){WS}*({CV}){WS}*)*$"
    ))
});

/// A parsed range: alternatives of comparisons that must all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    alternatives: Vec<Vec<Constraint>>,
}

/// Why a range was refused: what is wrong (without the range itself),
/// a short label for the part to blame and, when it can be told, its
/// byte range in the range's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeError {
    pub reason: String,
    pub label: &'static str,
    pub within: Option<(usize, usize)>,
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// What ranges look like, for help texts.
pub const RANGE_HELP: &str = "write comparisons such as \">=1.2.0\", \"<2\", \"!=1.3.0\", \"^1.2\", \"~1.2\", \"1.2.x\" \
     or \"*\", joined by blanks or commas (AND) and \"||\" (OR), or a span \"1.2.3 - 2.0.0\"; ranges are \
     read as Flux reads them (Masterminds semver)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    TildeOrEqual,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    Tilde,
    Caret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Constraint {
    op: Op,
    con: Version,
    /// A part of the version was left out or written `x`.
    dirty: bool,
    minor_dirty: bool,
    patch_dirty: bool,
}

impl Range {
    /// Masterminds' `NewConstraint`.
    pub fn parse(text: &str) -> Result<Range, RangeError> {
        let rewritten = rewrite_hyphens(text);
        // Positions within `text`, exact unless a span was rewritten.
        let place = Place {
            text,
            exact: rewritten == text,
            offset: 0,
        };
        let mut alternatives = Vec::new();
        let mut offset = 0;
        for segment in rewritten.split("||") {
            let place = Place { offset, ..place };
            offset += segment.len() + 2;
            if !VALID.is_match(segment) {
                return Err(explain(&place, segment));
            }
            let mut all = Vec::new();
            for m in FIND.find_iter(segment) {
                all.push(parse_constraint(m.as_str()).map_err(|reason| RangeError {
                    reason,
                    label: "not a valid version",
                    within: place.of(m.start(), m.as_str()),
                })?);
            }
            alternatives.push(all);
        }
        Ok(Range { alternatives })
    }

    /// Whether `v` satisfies the range (Masterminds' `Check`).
    pub fn satisfies(&self, v: &Version) -> bool {
        self.alternatives.iter().any(|all| all.iter().all(|c| c.check(v)))
    }
}

/// `1.2 - 2.3` as `>= 1.2, <= 2.3`, replacing the first occurrence of each
/// match in turn, as Masterminds' `rewriteRange` does.
fn rewrite_hyphens(text: &str) -> String {
    let mut out = text.to_string();
    for c in HYPHEN.captures_iter(text) {
        let (Some(whole), Some(from), Some(to)) = (c.get(0), c.get(1), c.get(11)) else {
            continue;
        };
        out = out.replacen(
            whole.as_str(),
            &format!(">= {}, <= {}", from.as_str(), to.as_str()),
            1,
        );
    }
    out
}

/// Where a part of one alternative is in the range as written.
#[derive(Clone, Copy)]
struct Place<'t> {
    text: &'t str,
    /// The rewritten text is the text: offsets carry over.
    exact: bool,
    /// Where the alternative starts.
    offset: usize,
}

impl Place<'_> {
    /// The span of `part`, found at `at` in the alternative; after a
    /// rewrite, wherever `part` first occurs in the text, if it does.
    fn of(&self, at: usize, part: &str) -> Option<(usize, usize)> {
        let trimmed = part.trim_start();
        let at = at + part.len() - trimmed.len();
        let part = trimmed.trim_end();
        if part.is_empty() {
            None
        } else if self.exact {
            Some((self.offset + at, part.len()))
        } else {
            self.text.find(part).map(|i| (i, part.len()))
        }
    }
}

/// Why `segment` (one `||` alternative) is not a list of comparisons.
fn explain(place: &Place<'_>, segment: &str) -> RangeError {
    let blank = |s: &str| s.chars().all(|c| matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' '));
    let separator = |c: char| c == ',' || matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ');
    // `at`: where `stretch` starts in the segment.
    let stray = |at: usize, stretch: &str| {
        let (start, shown) = match stretch.trim_matches(separator) {
            "" => (at + stretch.len() - stretch.trim_start().len(), stretch.trim()),
            shown => (
                at + stretch.len() - stretch.trim_start_matches(separator).len(),
                shown,
            ),
        };
        RangeError {
            reason: format!("\"{shown}\" is not a comparison or a version"),
            label: "not a comparison or version",
            within: place.of(start, shown),
        }
    };
    if blank(segment) {
        let reason = if blank(place.text) {
            "the range is empty (\"*\" accepts any version)"
        } else {
            "an alternative next to \"||\" is empty"
        };
        return RangeError {
            reason: reason.into(),
            label: "empty",
            within: None,
        };
    }
    // The first stretch that no comparison covers and that is not a separator.
    let mut last = 0;
    let mut previous_end = None;
    for m in FIND.find_iter(segment) {
        let gap = &segment[last..m.start()];
        if !gap.trim_matches(separator).is_empty() || (last == 0 && gap.contains(',')) {
            return stray(last, gap);
        }
        if previous_end == Some(m.start()) {
            return RangeError {
                reason: format!(
                    "\"{}\" needs a blank or a comma between it and the comparison before it",
                    m.as_str()
                ),
                label: "no separator before this",
                within: place.of(m.start(), m.as_str()),
            };
        }
        previous_end = Some(m.end());
        last = m.end();
    }
    let rest = &segment[last..];
    if rest.trim_matches(separator).is_empty() {
        return RangeError {
            reason: "it ends in a separator".into(),
            label: "nothing after this",
            within: place.of(last, rest),
        };
    }
    stray(last, rest)
}

fn is_x(s: &str) -> bool {
    matches!(s, "x" | "X" | "*")
}

/// Masterminds' `parseConstraint`, for a string `FIND` matched.
fn parse_constraint(s: &str) -> Result<Constraint, String> {
    let bad = || format!("\"{}\" does not hold a valid version", s.trim());
    let m = CONSTRAINT.captures(s).ok_or_else(bad)?;
    let group = |i: usize| m.get(i).map_or("", |g| g.as_str());
    let op = match group(1) {
        "" | "=" => Op::TildeOrEqual,
        "!=" => Op::NotEqual,
        ">" => Op::Greater,
        "<" => Op::Less,
        ">=" | "=>" => Op::GreaterEqual,
        "<=" | "=<" => Op::LessEqual,
        "~" | "~>" => Op::Tilde,
        _ => Op::Caret,
    };
    let (major, minor, patch, pre) = (group(3), group(4), group(5), group(6));
    let trim = |part: &str| part.strip_prefix('.').unwrap_or(part).to_string();
    let (version, dirty, minor_dirty, patch_dirty) = if is_x(major) {
        (format!("0.0.0{pre}"), true, false, false)
    } else if minor.is_empty() || is_x(&trim(minor)) {
        (format!("{major}.0.0{pre}"), true, true, false)
    } else if patch.is_empty() || is_x(&trim(patch)) {
        (format!("{major}{minor}.0{pre}"), true, false, true)
    } else {
        (group(2).to_string(), false, false, false)
    };
    let con = Version::parse_loose(&version).ok_or_else(bad)?;
    Ok(Constraint {
        op,
        con,
        dirty,
        minor_dirty,
        patch_dirty,
    })
}

impl Constraint {
    fn check(&self, v: &Version) -> bool {
        let c = &self.con;
        // Masterminds issue 21: a pre-release only satisfies a comparison
        // whose own version has one.
        let pre_refused = !v.pre.is_empty() && c.pre.is_empty();
        match self.op {
            Op::NotEqual => {
                if self.dirty {
                    if pre_refused {
                        return false;
                    }
                    if c.major != v.major {
                        return true;
                    }
                    if c.minor != v.minor && !self.minor_dirty {
                        return true;
                    } else if self.minor_dirty {
                        return false;
                    } else if c.patch != v.patch && !self.patch_dirty {
                        return true;
                    } else if self.patch_dirty {
                        return (!v.pre.is_empty() || !c.pre.is_empty())
                            && compare_pre(&v.pre, &c.pre).is_ne();
                    }
                }
                v.cmp(c).is_ne()
            }
            _ if pre_refused => false,
            Op::Greater => {
                if !self.dirty {
                    return v.cmp(c).is_gt();
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
                v.cmp(c).is_gt()
            }
            Op::Less => v.cmp(c).is_lt(),
            Op::GreaterEqual => v.cmp(c).is_ge(),
            Op::LessEqual => {
                if !self.dirty {
                    return v.cmp(c).is_le();
                }
                !(v.major > c.major || (v.major == c.major && v.minor > c.minor && !self.minor_dirty))
            }
            Op::Tilde => self.tilde(v),
            Op::TildeOrEqual if self.dirty => self.tilde(v),
            Op::TildeOrEqual => v.cmp(c).is_eq(),
            Op::Caret => {
                if v.cmp(c).is_lt() {
                    return false;
                }
                if c.major > 0 || self.minor_dirty {
                    return v.major == c.major;
                }
                if v.major > 0 {
                    return false;
                }
                if c.minor > 0 || self.patch_dirty {
                    return v.minor == c.minor;
                }
                if v.minor > 0 {
                    return false;
                }
                c.patch == v.patch
            }
        }
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.con;
        if v.cmp(c).is_lt() {
            return false;
        }
        // `~0.0.0` (and `~*`) accepts everything from 0.0.0 on.
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        v.major == c.major && (v.minor == c.minor || self.minor_dirty)
    }
}

fn compare_pre(a: &[Ident], b: &[Ident]) -> std::cmp::Ordering {
    a.cmp(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(range: &str, version: &str) -> bool {
        let r = Range::parse(range).unwrap_or_else(|e| panic!("{range}: {e}"));
        let v = Version::parse_loose(version).unwrap_or_else(|| panic!("{version}"));
        r.satisfies(&v)
    }

    /// Rows of Masterminds' `TestConstraintCheck` (constraints_test.go).
    #[test]
    fn masterminds_check_table() {
        for (range, version, want) in [
            ("=2.0.0", "1.2.3", false),
            ("=2.0.0", "2.0.0", true),
            ("=2.0", "1.2.3", false),
            ("=2.0", "2.0.0", true),
            ("=2.0", "2.0.1", true),
            ("4.1", "4.1.0", true),
            ("!=4.1.0", "4.1.0", false),
            ("!=4.1.0", "4.1.1", true),
            ("!=4.1", "4.1.0", false),
            ("!=4.1", "4.1.1", false),
            ("!=4.1", "5.1.0-alpha.1", false),
            ("!=4.1-alpha", "4.1.0", true),
            ("!=4.1", "5.1.0", true),
            ("<11", "0.1.0", true),
            ("<11", "11.1.0", false),
            ("<1.1", "0.1.0", true),
            ("<1.1", "1.1.0", false),
            ("<1.1", "1.1.1", false),
            ("<=11", "1.2.3", true),
            ("<=11", "12.2.3", false),
            ("<=11", "11.2.3", true),
            ("<=1.1", "1.2.3", false),
            ("<=1.1", "0.1.0", true),
            ("<=1.1", "1.1.0", true),
            ("<=1.1", "1.1.1", true),
            (">5.0.0", "5.0.1", true),
            (">5.0.0", "4.0.0", false),
            (">5.0.0", "5.0.0", false),
            (">1.1", "4.1.0", true),
            (">1.1", "1.1.0", false),
            (">1.1", "1.1.1", false),
            (">11", "11.1.0", false),
            (">11", "12.0.0", true),
            (">=11", "11.1.2", true),
            (">=11.1", "11.1.2", true),
            (">=11.1", "11.0.2", false),
            (">=1.1", "4.1.0", true),
            (">=1.1", "1.1.0", true),
            (">=1.1", "0.0.9", false),
            (">=0", "0.0.1-alpha", false),
            (">=0.0", "0.0.1-alpha", false),
            (">=0-0", "0.0.1-alpha", true),
            (">=0.0.0-0", "0.0.1-alpha", true),
            (">=0.0.0-0", "1.2.3", true),
            (">=0.0.0-0", "3.4.5-beta.1", true),
            ("<0", "0.0.0-alpha", false),
            ("<0-z", "0.0.0-alpha", true),
            (">=0", "0.0.0", true),
            ("=0", "1.0.0", false),
            ("*", "1.0.0", true),
            ("*", "4.5.6", true),
            ("*", "1.2.3-alpha.1", false),
            ("*-0", "1.2.3-alpha.1", true),
            ("2.*", "1.0.0", false),
            ("2.*", "3.4.5", false),
            ("2.*", "2.1.1", true),
            ("2.1.*", "2.1.1", true),
            ("2.1.*", "2.2.1", false),
            ("", "1.0.0", false), // refused below; kept out of the loop
            ("2", "1.0.0", false),
            ("2", "3.4.5", false),
            ("2", "2.1.1", true),
            ("2.1", "2.1.1", true),
            ("2.1", "2.2.1", false),
            ("~1.2.3", "1.2.4", true),
            ("~1.2.3", "1.3.4", false),
            ("~1.2", "1.2.4", true),
            ("~1.2", "1.3.4", false),
            ("~1", "1.2.4", true),
            ("~1", "2.3.4", false),
            ("~0.2.3", "0.2.5", true),
            ("~0.2.3", "0.3.5", false),
            ("~1.2.3-beta.2", "1.2.3-beta.4", true),
            ("~1.2.3-beta.2", "1.2.4-beta.2", true),
            ("~1.2.3-beta.2", "1.3.4-beta.2", false),
            ("^1.2.3", "1.8.9", true),
            ("^1.2.3", "2.8.9", false),
            ("^1.2.3", "1.2.1", false),
            ("^1.1.0", "2.1.0", false),
            ("^1.2.0", "2.2.1", false),
            ("^1.2.0", "1.2.1-alpha.1", false),
            ("^1.2.0-alpha.0", "1.2.1-alpha.1", true),
            ("^1.2.0-alpha.0", "1.2.1-alpha.0", true),
            ("^1.2.0-alpha.2", "1.2.0-alpha.1", false),
            ("^1.2", "1.8.9", true),
            ("^1.2", "2.8.9", false),
            ("^1", "1.8.9", true),
            ("^1", "2.8.9", false),
            ("^0.2.3", "0.2.5", true),
            ("^0.2.3", "0.5.6", false),
            ("^0.2", "0.2.5", true),
            ("^0.2", "0.5.6", false),
            ("^0.0.3", "0.0.3", true),
            ("^0.0.3", "0.0.4", false),
            ("^0.0", "0.0.3", true),
            ("^0.0", "0.1.4", false),
            ("^0.0", "1.0.4", false),
            ("^0", "0.2.3", true),
            ("^0", "1.1.4", false),
            ("^0.2.3-beta.2", "0.2.3-beta.4", true),
            ("^0.2.3-beta.2", "0.2.4-beta.2", true),
            ("^0.2.3-beta.2", "0.3.4-beta.2", false),
            ("^0.2.3-beta.2", "0.2.3-beta.2", true),
        ] {
            if range.is_empty() {
                continue;
            }
            assert_eq!(check(range, version), want, "{range} {version}");
        }
    }

    /// Flux's own reading: commas and blanks are AND, `||` OR, `v` prefixes.
    #[test]
    fn and_or_and_prefixes() {
        for (range, version, want) in [
            (">=1.0.0, <2.0.0", "1.5.0", true),
            (">=1.0.0, <2.0.0", "2.0.0", false),
            (">=1.0.0 <2.0.0", "1.5.0", true),
            (">0,<2.0", "1.0.0", true),
            (">= 1.0 , < 2", "1.9.9", true),
            ("1.x || >=3.0.0", "2.0.0", false),
            ("1.x || >=3.0.0", "3.1.0", true),
            ("v1.2.3", "1.2.3", true),
            ("1.2.3 - 2.3.4", "2.3.4", true),
            ("1.2.3 - 2.3.4", "2.3.5", false),
            ("1.2 - 2.3", "2.3.9", true),
            ("1.2 - 2.3 || 5", "5.1.0", true),
            ("=>1.0, =<1.1", "1.1.9", true),
            ("~>1.2", "1.2.9", true),
            ("~0.0.0", "9.0.0", true),
            (">=1.0.0-0", "1.5.0-rc.1", true),
            (">=1.0.0-0 <2.0.0", "1.5.0-rc.1", false),
            (">=1.0.0-rc.0 <1.0.0", "1.0.0-rc.1", false),
            ("1.2.3+build.1", "1.2.3", true),
        ] {
            assert_eq!(check(range, version), want, "{range} {version}");
        }
    }

    #[test]
    fn refusals_say_why_and_where() {
        for (range, reason, within) in [
            ("", "the range is empty (\"*\" accepts any version)", None),
            ("1.0 ||", "an alternative next to \"||\" is empty", None),
            (
                ">=1.0 <<2",
                "\"<\" is not a comparison or a version",
                Some((6, 1)),
            ),
            (
                "not a range",
                "\"not a range\" is not a comparison or a version",
                Some((0, 11)),
            ),
            (
                ">=1.0 banana",
                "\"banana\" is not a comparison or a version",
                Some((6, 6)),
            ),
            (
                ">=1.0.0<2.0.0",
                "\"<2.0.0\" needs a blank or a comma between it and the comparison before it",
                Some((7, 6)),
            ),
            (">=1.0.0,", "it ends in a separator", Some((7, 1))),
            (",>=1.0.0", "\",\" is not a comparison or a version", Some((0, 1))),
            ("1x", "\"1x\" does not hold a valid version", Some((0, 2))),
            ("V1.0.0", "\"V\" is not a comparison or a version", Some((0, 1))),
            (
                "1.0.0-01",
                "\"1.0.0-01\" does not hold a valid version",
                Some((0, 8)),
            ),
            (">=", "\">=\" is not a comparison or a version", Some((0, 2))),
        ] {
            let err = Range::parse(range).expect_err(range);
            assert_eq!(err.reason, reason, "{range}");
            assert_eq!(err.within, within, "{range}");
        }
    }
}
