//! Image setters on any file text: `patch_text` returns the file with the
//! marked values set, or a problem; it never panics. Every line without a
//! marker comes back byte for byte (so does a file without one), and
//! setting again what was just set changes nothing (else an automation
//! would commit for ever).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mooring::automation::setters::{self, Policies};
use mooring::image::Selection;

const TOKEN: &str = "$imagepolicy";

fn selection(repository: &str, tag: &str, digest: bool) -> Option<Selection> {
    Some(Selection {
        repository: repository.into(),
        tag: tag.into(),
        digest: digest.then(|| format!("sha256:{}", "ab".repeat(32))),
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut policies = Policies::new();
    policies.insert("app", "flux-system", selection("ghcr.io/acme/app", "1.2.3", true));
    policies.insert(
        "web",
        "team",
        selection("registry.example.com:5000/web", "v2", false),
    );
    policies.insert("pending", "flux-system", None);
    match setters::patch_text(text, &policies, "fuzz.yaml") {
        Ok(patched) => {
            let before: Vec<&str> = text.split_inclusive('\n').collect();
            let after: Vec<&str> = patched.text.split_inclusive('\n').collect();
            assert_eq!(before.len(), after.len(), "the number of lines changed");
            for (b, a) in before.iter().zip(&after) {
                if !b.contains(TOKEN) {
                    assert_eq!(b, a, "a line without a marker changed");
                }
            }
            if !patched.changes.is_empty() {
                let again = setters::patch_text(&patched.text, &policies, "fuzz.yaml")
                    .expect("a file just set still sets");
                assert!(again.changes.is_empty(), "set twice: {:?}", again.changes);
            }
        }
        Err(problem) => {
            let _ = format!("{problem:?}");
        }
    }
    for line in text.lines().take(64) {
        if let Some((_, value)) = line.split_once(':') {
            let _ = setters::parse_marker(value.trim());
        }
    }
});
