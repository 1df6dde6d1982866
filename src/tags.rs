//! Choosing among version tags, as Flux does: one reading of versions for
//! git tags (`semver` sources), OCI tags (`semver` OCI sources) and image
//! policies.
//!
//! A tag is a version when, after one optional leading lowercase `v`, it is
//! a strict semver version `MAJOR.MINOR.PATCH[-PRE][+BUILD]` (fluxcd/pkg
//! `version.ParseVersion`, Masterminds' `StrictNewVersion`): `1.2`, `V1.2.3`,
//! `01.2.3` are not. Versions compare by semver precedence (build metadata
//! ignored). Ranges are Masterminds constraints ([`Range`]), with their
//! pre-release rule. The highest matching version wins; when two tags name
//! the same version (`v1.0.1` and `1.0.1`), the one without the `v` wins,
//! then the shorter, then the lexically smaller, so the choice never
//! depends on the order tags were listed in.

mod range;

use std::cmp::Ordering;

pub use range::{RANGE_HELP, Range, RangeError};

/// A pre-release identifier: numbers sort before words, numbers by value,
/// words byte by byte (Masterminds' `comparePrePart`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ident {
    Num(u64),
    Word(String),
}

/// A semantic version. Equality and order ignore build metadata.
#[derive(Debug, Clone)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: Vec<Ident>,
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.pre.cmp(&other.pre),
            })
    }
}

fn is_alnum_dash(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Masterminds' `validatePrerelease`: non-empty identifiers of `[0-9A-Za-z-]`,
/// numbers without leading zeros.
fn prerelease(text: &str) -> Option<Vec<Ident>> {
    text.split('.')
        .map(|part| {
            if part.is_empty() || !is_alnum_dash(part) {
                None
            } else if part.bytes().all(|b| b.is_ascii_digit()) {
                if part.len() > 1 && part.starts_with('0') {
                    return None;
                }
                // A number too large for 64 bits compares as a word.
                Some(
                    part.parse()
                        .map_or_else(|_| Ident::Word(part.to_string()), Ident::Num),
                )
            } else {
                Some(Ident::Word(part.to_string()))
            }
        })
        .collect()
}

/// Masterminds' `validateMetadata`: parts of `[0-9A-Za-z-]` (empty ones too).
fn metadata_ok(text: &str) -> bool {
    text.split('.').all(is_alnum_dash)
}

impl Version {
    /// A tag's version, as Flux reads it (see the module doc).
    pub fn parse(tag: &str) -> Option<Version> {
        let v = tag.strip_prefix('v').unwrap_or(tag);
        let mut parts = v.splitn(3, '.');
        let (major, minor, rest) = (parts.next()?, parts.next()?, parts.next()?);
        let (rest, build) = match rest.split_once('+') {
            Some((r, b)) => (r, Some(b)),
            None => (rest, None),
        };
        if build.is_some_and(|b| !metadata_ok(b)) {
            return None;
        }
        let (patch, pre) = match rest.split_once('-') {
            Some((p, pre)) => (p, prerelease(pre)?),
            None => (rest, Vec::new()),
        };
        let number = |s: &str| -> Option<u64> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
                return None;
            }
            s.parse().ok()
        };
        Some(Version {
            major: number(major)?,
            minor: number(minor)?,
            patch: number(patch)?,
            pre,
        })
    }

    /// Masterminds' `NewVersion`, which the versions inside a range go
    /// through: a `v` and leading zeros allowed, minor and patch optional.
    fn parse_loose(text: &str) -> Option<Version> {
        let v = text.strip_prefix('v').unwrap_or(text);
        let (v, build) = match v.split_once('+') {
            Some((r, b)) => (r, Some(b)),
            None => (v, None),
        };
        if build.is_some_and(|b| b.is_empty() || b.split('.').any(str::is_empty) || !metadata_ok(b)) {
            return None;
        }
        let (numbers, pre) = match v.split_once('-') {
            Some((n, pre)) => (n, prerelease(pre)?),
            None => (v, Vec::new()),
        };
        let mut parts = numbers.split('.');
        let mut number = |required: bool| -> Option<u64> {
            match parts.next() {
                None if !required => Some(0),
                Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
                _ => None,
            }
        };
        let (major, minor, patch) = (number(true)?, number(false)?, number(false)?);
        if parts.next().is_some() {
            return None;
        }
        Some(Version {
            major,
            minor,
            patch,
            pre,
        })
    }
}

/// The version a tag names, if it names one.
pub fn version(tag: &str) -> Option<Version> {
    Version::parse(tag)
}

/// The tag with the highest version satisfying `range`, if any.
pub fn highest<'a>(tags: impl IntoIterator<Item = &'a str>, range: &Range) -> Option<&'a str> {
    tags.into_iter()
        .filter_map(|t| Some((version(t)?, t)))
        .filter(|(v, _)| range.satisfies(v))
        .max_by(|(va, ta), (vb, tb)| va.cmp(vb).then_with(|| preference(tb).cmp(&preference(ta))))
        .map(|(_, t)| t)
}

/// Lower is preferred among tags that compare equal (the same version, or
/// the same value under an image policy): without a leading `v`/`V`
/// first, then the shorter, then the lexically (byte-wise) smaller. Every
/// choice among tags breaks ties with this order, so that no result
/// depends on the order a server lists tags in.
pub fn preference(tag: &str) -> (bool, usize, &str) {
    (tag.starts_with(['v', 'V']), tag.len(), tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(s: &str) -> Range {
        Range::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn picks_the_highest_matching_version() {
        let tags = [
            "1.0.0",
            "v1.2.3",
            "1.10.0",
            "2.0.0",
            "latest",
            "1.11.0-rc.1",
            "v1.9",
        ];
        assert_eq!(highest(tags, &range(">=1.0.0 <2.0.0")), Some("1.10.0"));
        assert_eq!(highest(tags, &range(">=1.0.0, <2.0.0")), Some("1.10.0"));
        assert_eq!(highest(tags, &range("^1.2.0")), Some("1.10.0"));
        assert_eq!(highest(tags, &range("*")), Some("2.0.0"));
        assert_eq!(highest(tags, &range(">=3")), None);
    }

    /// Masterminds: a pre-release needs a pre-release in every comparison
    /// of the alternative, of any version.
    #[test]
    fn prereleases_only_when_the_range_asks() {
        let tags = ["1.0.0", "1.1.0-rc.1", "2.0.0-beta.1"];
        assert_eq!(highest(tags, &range("^1.0.0")), Some("1.0.0"));
        assert_eq!(highest(tags, &range(">=1.1.0-rc.0")), Some("2.0.0-beta.1"));
        assert_eq!(highest(tags, &range(">=1.1.0-rc.0 <2.0.0-0")), Some("1.1.0-rc.1"));
        assert_eq!(highest(tags, &range(">=1.1.0-rc.0 <2.0.0")), None);
    }

    #[test]
    fn ties_are_broken_the_same_way_for_any_order() {
        let a = ["v1.0.1", "1.0.1", "v1.0.1+b"];
        let b = ["1.0.1", "v1.0.1+b", "v1.0.1"];
        assert_eq!(highest(a, &range("*")), Some("1.0.1"));
        assert_eq!(highest(b, &range("*")), Some("1.0.1"));
        assert_eq!(highest(["v2.0.0", "v2.0.0+x"], &range("*")), Some("v2.0.0"));
    }

    /// fluxcd/pkg `version.ParseVersion`: one lowercase `v`, then strict semver.
    #[test]
    fn non_versions_are_skipped() {
        for t in [
            "latest",
            "main-abc123",
            "1.2",
            "v",
            "",
            " 1.0.0",
            "=1.0.0",
            "1.0.0 ",
            "V1.0.0",
            "vv1.0.0",
            "01.0.0",
            "1.0.0-01",
            "1.0.0-",
            "1.0.0-a..b",
            "1.0.0+b@d",
            "1.2.3.4",
        ] {
            assert!(version(t).is_none(), "{t:?}");
        }
        for t in [
            "v1.2.3+build.5",
            "1.0.0-0",
            "1.0.0-x.7.z.92",
            "1.0.0+",
            "0.0.0",
            "1.0.0-rc-1",
        ] {
            assert!(version(t).is_some(), "{t:?}");
        }
    }

    /// The precedence example of semver.org §11.
    #[test]
    fn precedence() {
        let order = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.10.0",
            "2.0.0",
        ];
        for pair in order.windows(2) {
            assert!(version(pair[0]) < version(pair[1]), "{pair:?}");
        }
        assert_eq!(version("1.0.0+a"), version("1.0.0+b"));
    }
}
