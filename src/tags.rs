//! Choosing among version tags: one normaliser for git tags (`semver`
//! sources), OCI tags (`semver` OCI sources) and, later, image policies.
//!
//! A tag is a version when, after an optional leading `v` or `V`, it parses
//! as semver. Partial versions (`1.2`, `v6`) are not versions: ranges such
//! as `^6` already match every `6.x.y`. The highest matching version wins;
//! pre-releases match only ranges that allow them (npm rules). When two
//! tags name the same version (`v1.0.1` and `1.0.1`), the one without the
//! `v` wins, then the shorter, then the lexically smaller, so the choice
//! never depends on the order tags were listed in.

use nodejs_semver::{Range, Version};

/// The version a tag names, if it names one.
pub fn version(tag: &str) -> Option<Version> {
    let bare = tag.strip_prefix(['v', 'V']).unwrap_or(tag);
    // Only the plain three-number form: no leading `=`, no spaces.
    if !bare.starts_with(|c: char| c.is_ascii_digit()) || bare.contains(char::is_whitespace) {
        return None;
    }
    let v = Version::parse(bare).ok()?;
    Some(v)
}

/// The tag with the highest version satisfying `range` (a validated
/// range string), if any.
pub fn highest<'a>(tags: impl IntoIterator<Item = &'a str>, range: &str) -> Option<&'a str> {
    let range = Range::parse(range).ok()?;
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
        assert_eq!(highest(tags, ">=1.0.0 <2.0.0"), Some("1.10.0"));
        assert_eq!(highest(tags, "^1.2.0"), Some("1.10.0"));
        assert_eq!(highest(tags, "*"), Some("2.0.0"));
        assert_eq!(highest(tags, ">=3"), None);
    }

    #[test]
    fn prereleases_only_when_the_range_asks() {
        let tags = ["1.0.0", "1.1.0-rc.1"];
        assert_eq!(highest(tags, "^1.0.0"), Some("1.0.0"));
        assert_eq!(highest(tags, ">=1.1.0-rc.0"), Some("1.1.0-rc.1"));
    }

    #[test]
    fn ties_are_broken_the_same_way_for_any_order() {
        let a = ["v1.0.1", "1.0.1", "V1.0.1"];
        let b = ["1.0.1", "V1.0.1", "v1.0.1"];
        assert_eq!(highest(a, "*"), Some("1.0.1"));
        assert_eq!(highest(b, "*"), Some("1.0.1"));
        assert_eq!(highest(["v2.0.0", "V2.0.0"], "*"), Some("V2.0.0"));
    }

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
        ] {
            assert!(version(t).is_none(), "{t:?}");
        }
        assert!(version("v1.2.3+build.5").is_some());
    }
}
