//! Tag policies on any tag list: the first line is a semver range (also
//! used as a filter regex), the rest are tags. `tags::highest` and every
//! policy of `image::policy::select` return a pick or an error, never
//! panic, and a pick is one of the tags.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mooring::config::{self, Order, Policy, Spanned, TagFilter};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.lines();
    let range = lines.next().unwrap_or("");
    let tags: Vec<&str> = lines.take(2000).collect();
    if let Ok(parsed) = mooring::tags::Range::parse(range)
        && let Some(t) = mooring::tags::highest(tags.iter().copied(), &parsed)
    {
        assert!(tags.contains(&t));
    }
    for t in &tags {
        let _ = mooring::tags::version(t);
    }
    let filters = [
        None,
        Some(TagFilter {
            pattern: r"^main-[a-f0-9]+-(?<ts>\d+)$".into(),
            extract: Some("$ts".into()),
        }),
        Some(TagFilter {
            pattern: r"^v?(?<v>.*)$".into(),
            extract: Some("${v}".into()),
        }),
    ];
    for policy in [
        Policy::Semver(range.to_string()),
        Policy::Alphabetical(Order::Asc),
        Policy::Alphabetical(Order::Desc),
        Policy::Numerical(Order::Asc),
        Policy::Numerical(Order::Desc),
    ] {
        for filter in &filters {
            let image = config::Image {
                name: Spanned::new("fuzz".into(), (0, 0).into()),
                namespace: "flux-system".into(),
                repository: "ghcr.io/acme/app".into(),
                interval: Duration::from_secs(60),
                timeout: Duration::from_secs(60),
                policy: policy.clone(),
                filter: filter.clone(),
                exclude: vec![r"^.*\.sig$".into()],
                auth: None,
                insecure: false,
                ca_file: None,
            };
            if let Ok(choice) = mooring::image::policy::select(&image, tags.iter().copied()) {
                let _ = format!("{choice:?}");
            }
        }
    }
});
