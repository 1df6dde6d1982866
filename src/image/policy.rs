//! Image policies as pure functions: takes the tags of a repository and an
//! image's `semver` / `alphabetical` / `numerical` policy with its
//! `filter`, `extract` and `exclude`, gives the one tag the policy picks.
//!
//! In order, for every tag:
//!
//! 1. a tag that matches an `exclude` pattern is dropped (`excluded`);
//!    without any `exclude`, Flux's default `^.*\.sig$` applies, so that
//!    cosign signature tags never win;
//! 2. with a `filter`, a tag that does not match it is dropped
//!    (`filtered`); one that does is compared by its `extract` value
//!    (`$ts`, `${ts}`, `$1` expanded from the first match), or as a whole;
//! 3. the value is read by the policy: a semver version (after an optional
//!    `v`), a decimal number, or any non-empty string. A value that cannot
//!    be read is *skipped*, with the reason, instead of failing the policy;
//! 4. the highest value wins (`order="desc"`: the lowest); a semver range
//!    must also be satisfied, pre-releases only as Masterminds semver
//!    (Flux's) allows them ([`crate::tags::Range`]).
//!
//! Ties (`v1.0.1` and `1.0.1`, or two tags extracting the same value) go
//! to the value, then the tag, that [`crate::tags::preference`] prefers,
//! so the result never depends on the order tags are listed in.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use crate::tags::{Range, Version};
use regex::Regex;

use crate::config::{self, Order};

/// Flux's default exclusion (ImageRepository `exclusionList`): cosign
/// signatures. Used only when an image has no `exclude` of its own.
pub const DEFAULT_EXCLUDE: &str = r"^.*\.sig$";

/// How many skipped tags a "no match" message quotes.
const EXAMPLES: usize = 3;

/// Why a policy cannot pick a tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The policy itself is wrong (a bad pattern, range or template);
    /// config validation reports these first, so only library callers
    /// that skip it see them.
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },
    /// No tag is left after excluding, filtering and skipping.
    #[error("{}", no_match_message(.policy, *.total, *.excluded, *.filtered, .skipped))]
    NoMatch {
        /// The policy, as written in the config (`semver ">=1.0.0"`).
        policy: String,
        /// How many tags there were.
        total: usize,
        excluded: usize,
        filtered: usize,
        /// `(tag, why)`, sorted by tag.
        skipped: Vec<(String, String)>,
    },
}

fn no_match_message(
    policy: &str,
    total: usize,
    excluded: usize,
    filtered: usize,
    skipped: &[(String, String)],
) -> String {
    if total == 0 {
        return "the repository has no tags".into();
    }
    let mut parts = Vec::new();
    if excluded > 0 {
        parts.push(format!("{excluded} excluded"));
    }
    if filtered > 0 {
        parts.push(format!("{filtered} not matching the filter"));
    }
    if !skipped.is_empty() {
        let examples: Vec<String> = skipped
            .iter()
            .take(EXAMPLES)
            .map(|(tag, why)| format!("\"{tag}\" ({why})"))
            .collect();
        let more = if skipped.len() > EXAMPLES { ", …" } else { "" };
        parts.push(format!(
            "{} skipped, e.g. {}{more}",
            skipped.len(),
            examples.join(", ")
        ));
    }
    let head = if total == 1 {
        format!("the only tag does not match {policy}")
    } else {
        format!("no tag of {total} matches {policy}")
    };
    if parts.is_empty() {
        head
    } else {
        format!("{head} ({})", parts.join("; "))
    }
}

/// What a policy picked, and what it made of the other tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The tag as the registry lists it (never the extracted value).
    pub tag: String,
    /// How many tags there were.
    pub total: usize,
    /// Dropped by `exclude` (or the default `.sig` exclusion).
    pub excluded: usize,
    /// Dropped because they do not match `filter`.
    pub filtered: usize,
    /// Tags whose value the policy cannot read: `(tag, why)`, sorted by tag.
    pub skipped: Vec<(String, String)>,
}

/// A policy ready to run: patterns compiled, range parsed, template read.
#[derive(Debug, Clone)]
pub struct Rules {
    kind: Kind,
    filter: Option<Filter>,
    exclude: Vec<Regex>,
    /// As written in the config, for messages.
    describe: String,
}

#[derive(Debug, Clone)]
enum Kind {
    Semver(Range),
    Alphabetical(Order),
    Numerical(Order),
}

#[derive(Debug, Clone)]
struct Filter {
    regex: Regex,
    extract: Option<Template>,
}

impl Rules {
    /// The rules of an `image` node.
    pub fn for_image(image: &config::Image) -> Result<Rules, Error> {
        Rules::new(&image.policy, image.filter.as_ref(), &image.exclude)
    }

    pub fn new(
        policy: &config::Policy,
        filter: Option<&config::TagFilter>,
        exclude: &[String],
    ) -> Result<Rules, Error> {
        let (kind, describe) = match policy {
            config::Policy::Semver(range) => (
                Kind::Semver(Range::parse(range).map_err(|e| Error::Invalid {
                    what: format!("semver range \"{range}\""),
                    reason: e.reason,
                })?),
                format!("semver \"{range}\""),
            ),
            config::Policy::Alphabetical(order) => (
                Kind::Alphabetical(*order),
                format!("alphabetical order=\"{}\"", order_str(*order)),
            ),
            config::Policy::Numerical(order) => (
                Kind::Numerical(*order),
                format!("numerical order=\"{}\"", order_str(*order)),
            ),
        };
        let filter = match filter {
            Some(f) => {
                let regex = regex(&f.pattern, "filter")?;
                let extract = match &f.extract {
                    Some(t) => Some(Template::parse(t, &regex)?),
                    None => None,
                };
                Some(Filter { regex, extract })
            }
            None => None,
        };
        let exclude = if exclude.is_empty() {
            vec![regex(DEFAULT_EXCLUDE, "exclude")?]
        } else {
            exclude
                .iter()
                .map(|p| regex(p, "exclude"))
                .collect::<Result<_, _>>()?
        };
        Ok(Rules {
            kind,
            filter,
            exclude,
            describe,
        })
    }

    /// The tag the policy picks among `tags`. The result is the same for
    /// any order of `tags`.
    pub fn select<'t>(&self, tags: impl IntoIterator<Item = &'t str>) -> Result<Choice, Error> {
        let mut best: Option<Candidate<'t>> = None;
        let (mut total, mut excluded, mut filtered) = (0, 0, 0);
        let mut skipped = Vec::new();
        for tag in tags {
            total += 1;
            if self.exclude.iter().any(|re| re.is_match(tag)) {
                excluded += 1;
                continue;
            }
            let value: Cow<'t, str> = match &self.filter {
                None => Cow::Borrowed(tag),
                Some(Filter { regex, extract: None }) => {
                    if !regex.is_match(tag) {
                        filtered += 1;
                        continue;
                    }
                    Cow::Borrowed(tag)
                }
                Some(Filter {
                    regex,
                    extract: Some(template),
                }) => match template.expand(regex, tag) {
                    Some(v) => Cow::Owned(v),
                    None => {
                        filtered += 1;
                        continue;
                    }
                },
            };
            let extracted = matches!(value, Cow::Owned(_));
            let key = match self.read(&value) {
                Ok(Some(key)) => key,
                // A valid value outside the range: not a match, not skipped.
                Ok(None) => continue,
                Err(why) => {
                    let why = if extracted {
                        format!("extracted \"{value}\" {why}")
                    } else {
                        why.to_string()
                    };
                    skipped.push((tag.to_string(), why));
                    continue;
                }
            };
            let candidate = Candidate { tag, value, key };
            if best.as_ref().is_none_or(|b| self.beats(&candidate, b)) {
                best = Some(candidate);
            }
        }
        skipped.sort_unstable();
        match best {
            Some(b) => Ok(Choice {
                tag: b.tag.to_string(),
                total,
                excluded,
                filtered,
                skipped,
            }),
            None => Err(Error::NoMatch {
                policy: self.describe.clone(),
                total,
                excluded,
                filtered,
                skipped,
            }),
        }
    }

    /// The policy's reading of a value: `Ok(None)` when it is valid but
    /// outside the semver range, `Err(why)` when it cannot be read.
    fn read(&self, value: &str) -> Result<Option<Key>, &'static str> {
        match &self.kind {
            Kind::Semver(range) => {
                let v = Version::parse(value).ok_or("is not a semantic version (MAJOR.MINOR.PATCH)")?;
                Ok(range.satisfies(&v).then_some(Key::Version(v)))
            }
            Kind::Alphabetical(_) if value.is_empty() => Err("is empty"),
            Kind::Alphabetical(_) => Ok(Some(Key::Text)),
            Kind::Numerical(_) => Ok(Some(Key::Number(Number::parse(value).ok_or("is not a number")?))),
        }
    }

    /// Whether `a` wins over `b`.
    fn beats(&self, a: &Candidate<'_>, b: &Candidate<'_>) -> bool {
        let by_value = match (&a.key, &b.key) {
            (Key::Version(x), Key::Version(y)) => x.cmp(y),
            (Key::Number(x), Key::Number(y)) => x.cmp(y, &a.value, &b.value),
            _ => a.value.as_bytes().cmp(b.value.as_bytes()),
        };
        let by_value = match self.kind {
            Kind::Alphabetical(Order::Desc) | Kind::Numerical(Order::Desc) => by_value.reverse(),
            _ => by_value,
        };
        match by_value {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => {
                use crate::tags::preference;
                (preference(&a.value), preference(a.tag)) < (preference(&b.value), preference(b.tag))
            }
        }
    }
}

/// The tag `image`'s policy picks among `tags`.
pub fn select<'t>(image: &config::Image, tags: impl IntoIterator<Item = &'t str>) -> Result<Choice, Error> {
    Rules::for_image(image)?.select(tags)
}

impl fmt::Display for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe)
    }
}

fn order_str(order: Order) -> &'static str {
    match order {
        Order::Asc => "asc",
        Order::Desc => "desc",
    }
}

fn regex(pattern: &str, what: &str) -> Result<Regex, Error> {
    crate::config::value::compile_regex(pattern).map_err(|p| Error::Invalid {
        what: format!("{what} pattern \"{pattern}\""),
        reason: p.message,
    })
}

struct Candidate<'t> {
    tag: &'t str,
    value: Cow<'t, str>,
    key: Key,
}

enum Key {
    Version(Version),
    Number(Number),
    Text,
}

/// A decimal number, read exactly (no float rounding: a 20-digit
/// timestamp compares right), as byte ranges into its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Number {
    negative: bool,
    /// The integer digits without leading zeros.
    int: (usize, usize),
    /// The fraction digits without trailing zeros.
    frac: (usize, usize),
}

impl Number {
    /// `[+-]digits[.digits]`, `[+-]digits.` or `[+-].digits`.
    fn parse(s: &str) -> Option<Number> {
        let b = s.as_bytes();
        let mut i = 0;
        let negative = match b.first() {
            Some(b'-') => {
                i = 1;
                true
            }
            Some(b'+') => {
                i = 1;
                false
            }
            _ => false,
        };
        let int_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int_end = i;
        let (mut frac_start, mut frac_end) = (i, i);
        if i < b.len() && b[i] == b'.' {
            i += 1;
            frac_start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            frac_end = i;
        }
        if i != b.len() || (int_end == int_start && frac_end == frac_start) {
            return None;
        }
        let mut lead = int_start;
        while lead < int_end && b[lead] == b'0' {
            lead += 1;
        }
        while frac_end > frac_start && b[frac_end - 1] == b'0' {
            frac_end -= 1;
        }
        let zero = lead == int_end && frac_end == frac_start;
        Some(Number {
            negative: negative && !zero,
            int: (lead, int_end),
            frac: (frac_start, frac_end),
        })
    }

    /// Compare `self` (read from `a`) with `other` (read from `b`).
    fn cmp(&self, other: &Number, a: &str, b: &str) -> Ordering {
        let magnitude = || {
            let (ai, bi) = (&a[self.int.0..self.int.1], &b[other.int.0..other.int.1]);
            ai.len()
                .cmp(&bi.len())
                .then_with(|| ai.cmp(bi))
                .then_with(|| a[self.frac.0..self.frac.1].cmp(&b[other.frac.0..other.frac.1]))
        };
        match (self.negative, other.negative) {
            (false, false) => magnitude(),
            (true, true) => magnitude().reverse(),
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
        }
    }
}

/// An `extract` template, read once: literal text and group references,
/// with the syntax of the `regex` crate (and Go's `Regexp.Expand`):
/// `$name` (the longest run of letters, digits and `_`), `${name}`, `$1`,
/// and `$$` for a `$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Group(usize),
}

impl Template {
    /// Read `template` against `regex`: every group it names must exist.
    pub fn parse(template: &str, regex: &Regex) -> Result<Template, Error> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = template;
        while let Some(at) = rest.find('$') {
            literal.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                literal.push('$');
                rest = after;
                continue;
            }
            let (name, after) = if let Some(braced) = rest.strip_prefix('{') {
                match braced.find('}') {
                    Some(end) if end > 0 => (&braced[..end], &braced[end + 1..]),
                    // `${` without a name and `}`: literal, as the regex crate does.
                    _ => {
                        literal.push('$');
                        continue;
                    }
                }
            } else {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                if end == 0 {
                    literal.push('$');
                    continue;
                }
                (&rest[..end], &rest[end..])
            };
            let index = match name.parse::<usize>() {
                Ok(i) if i < regex.captures_len() => Some(i),
                Ok(_) => None,
                Err(_) => regex.capture_names().position(|n| n == Some(name)),
            };
            let Some(index) = index else {
                let groups: Vec<&str> = regex.capture_names().flatten().collect();
                return Err(Error::Invalid {
                    what: format!("extract \"{template}\""),
                    reason: if groups.is_empty() {
                        format!("it refers to `{name}`, but the filter has no named group")
                    } else {
                        format!(
                            "it refers to `{name}`, which the filter does not capture (it captures {})",
                            groups
                                .iter()
                                .map(|g| format!("`{g}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    },
                });
            };
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(Part::Group(index));
            rest = after;
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    /// The template expanded with the first match of `regex` in `text`,
    /// or `None` when it does not match. A group that did not take part in
    /// the match expands to nothing.
    pub fn expand(&self, regex: &Regex, text: &str) -> Option<String> {
        let caps = regex.captures(text)?;
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Group(i) => out.push_str(caps.get(*i).map_or("", |m| m.as_str())),
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Policy, TagFilter};

    fn rules(policy: Policy, filter: Option<(&str, Option<&str>)>, exclude: &[&str]) -> Rules {
        let filter = filter.map(|(p, e)| TagFilter {
            pattern: p.to_string(),
            extract: e.map(str::to_string),
        });
        let exclude: Vec<String> = exclude.iter().map(|s| s.to_string()).collect();
        Rules::new(&policy, filter.as_ref(), &exclude).unwrap()
    }

    fn semver(range: &str) -> Rules {
        rules(Policy::Semver(range.into()), None, &[])
    }

    fn pick(rules: &Rules, tags: &[&str]) -> String {
        rules.select(tags.iter().copied()).unwrap().tag
    }

    /// Deterministic permutations of `tags` (a seeded xorshift Fisher–Yates).
    fn shuffles<'a>(tags: &[&'a str], n: usize) -> Vec<Vec<&'a str>> {
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut out = vec![tags.to_vec(), tags.iter().rev().copied().collect()];
        for _ in 0..n {
            let mut v = tags.to_vec();
            for i in (1..v.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                v.swap(i, (state % (i as u64 + 1)) as usize);
            }
            out.push(v);
        }
        out
    }

    /// The same choice (and the same skipped list) for every order.
    fn same_for_any_order(rules: &Rules, tags: &[&str]) -> Result<Choice, Error> {
        let first = rules.select(tags.iter().copied());
        for order in shuffles(tags, 50) {
            assert_eq!(rules.select(order.iter().copied()), first, "order {order:?}");
        }
        first
    }

    const MIXED: &[&str] = &[
        "1.0.0",
        "1.2.0",
        "v1.10.0",
        "2.0.0-rc.1",
        "latest",
        "sha-abc",
        "1.9",
        "v1.10.0-beta.2",
        "1.10.0+build.5",
    ];

    #[test]
    fn semver_picks_the_highest_version_in_range() {
        let tags = &["1.0.0", "1.2.0", "v1.10.0", "2.0.0-rc.1", "latest", "sha-abc"];
        assert_eq!(pick(&semver("*"), tags), "v1.10.0");
        assert_eq!(pick(&semver("^1.0.0"), tags), "v1.10.0");
        assert_eq!(pick(&semver("~1.2"), tags), "1.2.0");
        assert_eq!(pick(&semver(">=1.0.0 <1.5.0"), tags), "1.2.0");
        assert_eq!(pick(&semver("1.0.0 || 1.2.0"), tags), "1.2.0");
        let choice = semver("*").select(tags.iter().copied()).unwrap();
        assert_eq!(choice.total, 6);
        assert_eq!(
            choice.skipped,
            vec![
                (
                    "latest".to_string(),
                    "is not a semantic version (MAJOR.MINOR.PATCH)".to_string()
                ),
                (
                    "sha-abc".to_string(),
                    "is not a semantic version (MAJOR.MINOR.PATCH)".to_string()
                ),
            ]
        );
    }

    #[test]
    fn prereleases_only_through_comparisons_that_name_one() {
        let tags = &["1.0.0", "1.2.0", "v1.10.0", "2.0.0-rc.1", "2.0.0-rc.2"];
        // Masterminds: a pre-release satisfies a comparison only when the
        // comparison's own version has a pre-release — of any version.
        assert_eq!(pick(&semver("*"), tags), "v1.10.0");
        assert_eq!(pick(&semver(">=1.0.0"), tags), "v1.10.0");
        assert_eq!(pick(&semver(">=2.0.0-rc.0"), tags), "2.0.0-rc.2");
        assert_eq!(pick(&semver(">=2.0.0-rc.0 <2.0.0-rc.2"), tags), "2.0.0-rc.1");
        assert_eq!(
            pick(&semver(">=1.0.0-alpha"), &["1.0.0", "2.0.0-rc.1"]),
            "2.0.0-rc.1"
        );
        // Every comparison of the AND must have one.
        assert_eq!(
            pick(&semver(">=1.0.0-alpha, <3.0.0"), &["1.0.0", "2.0.0-rc.1"]),
            "1.0.0"
        );
        let err = semver("^2.0.0").select(tags.iter().copied()).unwrap_err();
        assert!(matches!(err, Error::NoMatch { .. }), "{err:?}");
    }

    #[test]
    fn semver_ties_prefer_no_v_then_shorter_then_byte_order() {
        let r = semver("*");
        assert_eq!(
            same_for_any_order(&r, &["v1.0.1", "1.0.1", "v1.0.1+b"])
                .unwrap()
                .tag,
            "1.0.1"
        );
        // Only a lowercase `v` may precede a version, as in Flux.
        assert_eq!(
            same_for_any_order(&r, &["v2.0.0", "V3.0.0"]).unwrap().tag,
            "v2.0.0"
        );
        // Build metadata does not order versions: the shorter tag wins.
        assert_eq!(
            same_for_any_order(&r, &["1.0.0+b.2", "1.0.0+a", "v1.0.0"])
                .unwrap()
                .tag,
            "1.0.0+a"
        );
    }

    #[test]
    fn every_policy_is_independent_of_tag_order() {
        let cases = [
            rules(Policy::Semver("*".into()), None, &[]),
            rules(Policy::Semver("<1.10.0".into()), None, &[]),
            rules(Policy::Alphabetical(Order::Asc), None, &[]),
            rules(Policy::Alphabetical(Order::Desc), None, &[]),
            rules(Policy::Numerical(Order::Asc), None, &[]),
            rules(Policy::Numerical(Order::Desc), None, &[]),
        ];
        let numbers = &["10", "9", "010", "10.0", "-3", "+10", "abc", "1e3", "9.99"];
        for r in &cases {
            same_for_any_order(r, MIXED).ok();
            same_for_any_order(r, numbers).ok();
        }
        let asc = rules(Policy::Numerical(Order::Asc), None, &[]);
        assert_eq!(same_for_any_order(&asc, numbers).unwrap().tag, "10");
        let desc = rules(Policy::Numerical(Order::Desc), None, &[]);
        assert_eq!(same_for_any_order(&desc, numbers).unwrap().tag, "-3");
    }

    #[test]
    fn alphabetical_asc_picks_the_last_and_desc_the_first() {
        let tags = &["b", "a", "c", "C", "ab"];
        assert_eq!(
            pick(&rules(Policy::Alphabetical(Order::Asc), None, &[]), tags),
            "c"
        );
        assert_eq!(
            pick(&rules(Policy::Alphabetical(Order::Desc), None, &[]), tags),
            "C"
        );
        // Byte order, as Go's sort: digits < upper case < lower case.
        let tags = &["RELEASE.2024-01-02", "RELEASE.2023-12-31", "release.2000"];
        assert_eq!(
            pick(&rules(Policy::Alphabetical(Order::Asc), None, &[]), tags),
            "release.2000"
        );
    }

    #[test]
    fn numerical_reads_integers_and_decimals_exactly() {
        let asc = rules(Policy::Numerical(Order::Asc), None, &[]);
        let desc = rules(Policy::Numerical(Order::Desc), None, &[]);
        assert_eq!(pick(&asc, &["9", "10", "2"]), "10");
        assert_eq!(pick(&desc, &["9", "10", "2"]), "2");
        assert_eq!(pick(&asc, &["1.5", "1.45", "1.05"]), "1.5");
        assert_eq!(pick(&asc, &["-1", "-0.5", "-2"]), "-0.5");
        assert_eq!(pick(&desc, &["-1", "-0.5", "-2", "0"]), "-2");
        assert_eq!(pick(&asc, &[".5", "0.49", "5."]), "5.");
        // Beyond f64 precision (Flux reads float64 and would see a tie).
        assert_eq!(
            pick(&asc, &["20240101123045000000001", "20240101123045000000000"]),
            "20240101123045000000001"
        );
        // Equal values: the preferred spelling wins, whatever the order.
        assert_eq!(
            same_for_any_order(&asc, &["010", "10.0", "10", "+10"])
                .unwrap()
                .tag,
            "10"
        );
        assert_eq!(same_for_any_order(&asc, &["-0", "0", "0.0"]).unwrap().tag, "0");
        for bad in [
            "", "-", "+", ".", "1.2.3", "1e3", "0x10", "1_000", " 1", "inf", "NaN", "--1",
        ] {
            assert!(Number::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn unreadable_tags_are_skipped_with_a_reason() {
        let asc = rules(Policy::Numerical(Order::Asc), None, &[]);
        let c = asc.select(["3", "latest", "2", "v4"]).unwrap();
        assert_eq!(c.tag, "3");
        assert_eq!(
            c.skipped,
            vec![
                ("latest".to_string(), "is not a number".to_string()),
                ("v4".to_string(), "is not a number".to_string()),
            ]
        );
        assert_eq!((c.total, c.excluded, c.filtered), (4, 0, 0));
    }

    #[test]
    fn filter_and_extract_compare_the_extracted_value_but_return_the_tag() {
        let pattern = r"^main-[a-f0-9]+-(?<ts>\d+)$";
        let tags = &[
            "main-abc1234-1718300000",
            "main-def5678-1718400000",
            "main-0000000-999999999",
            "feature-x-1818400000",
            "main-badc0de-notanumber",
            "latest",
        ];
        for extract in ["$ts", "${ts}", "$1"] {
            let num = rules(Policy::Numerical(Order::Asc), Some((pattern, Some(extract))), &[]);
            let c = same_for_any_order(&num, tags).unwrap();
            assert_eq!(c.tag, "main-def5678-1718400000");
            assert_eq!(c.filtered, 3, "{extract}");
            let desc = rules(
                Policy::Numerical(Order::Desc),
                Some((pattern, Some(extract))),
                &[],
            );
            assert_eq!(pick(&desc, tags), "main-0000000-999999999");
        }
        // Alphabetically "999999999" > "1718400000".
        let alpha = rules(
            Policy::Alphabetical(Order::Asc),
            Some((pattern, Some("$ts"))),
            &[],
        );
        assert_eq!(pick(&alpha, tags), "main-0000000-999999999");
        // Extracted text that the policy cannot read is skipped, quoted.
        let loose = rules(
            Policy::Numerical(Order::Asc),
            Some((r"^main-[a-f0-9]+-(?<ts>\w+)$", Some("$ts"))),
            &[],
        );
        let c = loose.select(tags.iter().copied()).unwrap();
        assert_eq!(
            c.skipped,
            vec![(
                "main-badc0de-notanumber".to_string(),
                "extracted \"notanumber\" is not a number".to_string()
            )]
        );
        // Without extract, the whole tag is compared.
        let whole = rules(Policy::Alphabetical(Order::Asc), Some((r"^main-", None)), &[]);
        assert_eq!(pick(&whole, tags), "main-def5678-1718400000");
        // A template with literal text and `$$`.
        let semver = rules(
            Policy::Semver("*".into()),
            Some((r"^release-(?<maj>\d+)_(?<min>\d+)$", Some("$maj.${min}.0"))),
            &[],
        );
        assert_eq!(
            pick(&semver, &["release-1_9", "release-1_10", "1.11.0"]),
            "release-1_10"
        );
    }

    #[test]
    fn ties_in_extracted_values_go_to_the_preferred_tag() {
        let r = rules(
            Policy::Numerical(Order::Asc),
            Some((r"-(?<n>\d+)$", Some("$n"))),
            &[],
        );
        let c = same_for_any_order(&r, &["b-7", "a-7", "aa-7", "v-7", "c-6"]).unwrap();
        assert_eq!(c.tag, "a-7");
    }

    #[test]
    fn exclude_drops_tags_and_defaults_to_signatures() {
        let alpha = rules(Policy::Alphabetical(Order::Asc), None, &[]);
        let c = alpha.select(["main-1", "sha256-abc.sig", "main-2"]).unwrap();
        assert_eq!(c.tag, "main-2");
        assert_eq!(c.excluded, 1);
        let own = rules(Policy::Alphabetical(Order::Asc), None, &["^main-2$"]);
        // An own `exclude` replaces the default, as Flux's exclusionList.
        assert_eq!(
            pick(&own, &["main-1", "sha256-abc.sig", "main-2"]),
            "sha256-abc.sig"
        );
        let sv = rules(Policy::Semver("*".into()), None, &[r"-rc\.\d+$", "^2\\."]);
        let c = sv.select(["1.0.0", "1.1.0-rc.1", "2.0.0", "latest"]).unwrap();
        assert_eq!(c.tag, "1.0.0");
        assert_eq!(c.excluded, 2);
    }

    #[test]
    fn nothing_left_is_a_clear_error() {
        let err = semver(">=3.0.0").select(MIXED.iter().copied()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "no tag of 9 matches semver \">=3.0.0\" (3 skipped, e.g. \"1.9\" (is not a semantic version"
            ),
            "{msg}"
        );
        let r = rules(
            Policy::Numerical(Order::Asc),
            Some((r"^(?<n>[a-z]+)-\d+$", Some("$n"))),
            &["^x-"],
        );
        let msg = r
            .select(["a-1", "b-2", "c-3", "d-4", "x-5", "1.0", "other"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "no tag of 7 matches numerical order=\"asc\" (1 excluded; 2 not matching the filter; \
             4 skipped, e.g. \"a-1\" (extracted \"a\" is not a number), \"b-2\" (extracted \"b\" is not a number), \
             \"c-3\" (extracted \"c\" is not a number), …)"
        );
        let msg = semver("*").select([]).unwrap_err().to_string();
        assert_eq!(msg, "the repository has no tags");
        let msg = semver("*").select(["latest"]).unwrap_err().to_string();
        assert_eq!(
            msg,
            "the only tag does not match semver \"*\" (1 skipped, e.g. \"latest\" (is not a semantic version (MAJOR.MINOR.PATCH)))"
        );
    }

    #[test]
    fn bad_patterns_ranges_and_templates_are_invalid() {
        let err = |policy: Policy, filter: Option<(&str, Option<&str>)>, exclude: &[&str]| {
            let filter = filter.map(|(p, e)| TagFilter {
                pattern: p.into(),
                extract: e.map(Into::into),
            });
            let exclude: Vec<String> = exclude.iter().map(|s| s.to_string()).collect();
            Rules::new(&policy, filter.as_ref(), &exclude)
                .unwrap_err()
                .to_string()
        };
        let alpha = || Policy::Alphabetical(Order::Asc);
        let e = err(alpha(), Some(("main-(", None)), &[]);
        assert!(e.starts_with("invalid filter pattern \"main-(\": "), "{e}");
        let e = err(alpha(), None, &["[z-a]"]);
        assert!(e.starts_with("invalid exclude pattern \"[z-a]\": "), "{e}");
        let e = err(Policy::Semver("not a range".into()), None, &[]);
        assert!(e.starts_with("invalid semver range \"not a range\""), "{e}");
        let e = err(alpha(), Some((r"^main-(?<ts>\d+)$", Some("$tss"))), &[]);
        assert_eq!(
            e,
            "invalid extract \"$tss\": it refers to `tss`, which the filter does not capture (it captures `ts`)"
        );
        let e = err(alpha(), Some((r"^main-(\d+)$", Some("${2}"))), &[]);
        assert_eq!(
            e,
            "invalid extract \"${2}\": it refers to `2`, but the filter has no named group"
        );
    }

    #[test]
    fn templates_follow_the_regex_crate_syntax() {
        let re = Regex::new(r"^(?<a>\w)-(?<b_c>\w)-(\w)$").unwrap();
        let cases = [
            ("$a", "x"),
            ("${a}", "x"),
            ("$a$b_c", "xy"),
            ("${a}_$3", "x_z"),
            ("$$a", "$a"),
            ("cost: $", "cost: $"),
            ("${", "${"),
            ("$0!", "x-y-z!"),
            ("plain", "plain"),
        ];
        for (template, want) in cases {
            let t = Template::parse(template, &re).unwrap();
            assert_eq!(t.expand(&re, "x-y-z").as_deref(), Some(want), "{template}");
            // Same as the regex crate's own expansion.
            let mut theirs = String::new();
            re.captures("x-y-z").unwrap().expand(template, &mut theirs);
            assert_eq!(theirs, want, "{template}");
        }
        // `$a_` is the group `a_`, which does not exist.
        assert!(Template::parse("$a_", &re).is_err());
        assert_eq!(Template::parse("$a", &re).unwrap().expand(&re, "nope"), None);
    }
}
