//! Mutated real sops files through every parser: loading (all formats),
//! metadata, `ENC[…]` values, age files, key files and whole decryptions
//! must return, never panic, whatever the bytes. Deterministic (a fixed
//! seed, the integration tests' PRNG); `MOORING_FUZZ_ITERS` sets the
//! number of mutations per input (default 40).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use mooring_testkit::rng::Rng;

use super::tests::corpus;
use super::{Format, Keys, Options, age, cipher, format, metadata};

const TOKENS: &[&str] = &[
    "ENC[AES256_GCM,",
    "data:",
    ",iv:",
    ",tag:",
    ",type:",
    "]",
    "sops:",
    "sops_",
    "__list_0__map_",
    "__map_",
    "\n",
    "- ",
    ": ",
    "{",
    "}",
    "[",
    "\"",
    "'",
    "&a ",
    "*a",
    "!!binary ",
    "|\n",
    "#",
    "=",
    "[sops]",
    "-----BEGIN AGE ENCRYPTED FILE-----\n",
    "-> X25519 ",
    "-> mlkem768x25519 ",
    "--- ",
    "age-encryption.org/v1\n",
    "\u{0}",
    "é",
    "0x",
    ".inf",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = if out.is_empty() {
            0
        } else {
            rng.below(out.len() + 1)
        };
        match rng.below(5) {
            0 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let end = (at + 1 + rng.below(64)).min(out.len());
                out.drain(at.min(end)..end);
            }
            2 if !out.is_empty() => {
                let end = (at + 1 + rng.below(64)).min(out.len());
                let chunk = out[at.min(end)..end].to_vec();
                let to = rng.below(out.len() + 1);
                out.splice(to..to, chunk);
            }
            _ => {
                let token = rng.word(TOKENS).as_bytes();
                out.splice(at..at, token.iter().copied());
            }
        }
    }
    out
}

fn files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for group in ["cases", "unsupported"] {
        let Ok(entries) = std::fs::read_dir(dir.join(group)) else {
            continue;
        };
        for case in entries.flatten() {
            for f in std::fs::read_dir(case.path()).into_iter().flatten().flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if name.starts_with("encrypted.") {
                    out.push(f.path());
                }
            }
        }
    }
    out.sort();
    out
}

/// Everything a mutated input goes through; errors are fine, panics are not.
fn exercise(data: &[u8], keys: &Keys) {
    for f in [
        Format::Yaml,
        Format::Json,
        Format::Dotenv,
        Format::Ini,
        Format::Binary,
    ] {
        if let Ok(loaded) = format::load(data, f) {
            if let Some(m) = &loaded.metadata
                && let Ok(meta) = metadata::parse(m)
            {
                for k in meta.age_recipients() {
                    let _ = age::decrypt(k.enc.as_bytes(), &keys.identities);
                }
            }
            let _ = format::emit(&loaded.doc, f);
        }
        if let Err(e) = super::decrypt("f", data, f, keys, &Options::default()) {
            let _ = (e.to_string(), e.help());
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        for word in text.split_whitespace().filter(|w| w.contains("ENC[")) {
            let _ = cipher::decrypt_value(word, &[1; 32], "a:");
        }
        let _ = super::decrypt_manifest("m", text, keys, &Options::default());
    }
    let _ = Keys::parse("k", data);
}

#[test]
fn mutated_inputs_never_panic() {
    let Some(dir) = corpus() else { return };
    let iters: usize = std::env::var("MOORING_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let mut keys = Keys::default();
    for k in ["kc-age", "rops", "kc-age-pq"] {
        keys.extend(Keys::from_file(&dir.join(format!("keys/{k}.agekey"))).unwrap());
    }
    let mut inputs: Vec<Vec<u8>> = files(&dir).iter().map(|p| std::fs::read(p).unwrap()).collect();
    inputs.push(std::fs::read(dir.join("keys/kc-age-pq.agekey")).unwrap());
    assert!(inputs.len() > 30, "the corpus has {} files", inputs.len());
    let mut rng = Rng::new(0x736f_7073);
    let mut failures = Vec::new();
    for (n, input) in inputs.iter().enumerate() {
        for i in 0..iters {
            let mutated = mutate(&mut rng, input);
            if catch_unwind(AssertUnwindSafe(|| exercise(&mutated, &keys))).is_err() {
                failures.push(format!(
                    "input {n}, iteration {i}:\n{}",
                    String::from_utf8_lossy(&mutated)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} panics; first:\n{}",
        failures.len(),
        failures[0]
    );
}

#[test]
fn hostile_shapes_are_refused_without_overflow() {
    let keys = Keys::default();
    let deep_env = format!("sops_a{}=x\n", "__map_b".repeat(100_000));
    assert!(format::load(deep_env.as_bytes(), Format::Dotenv).is_err());
    let deep_yaml = format!("{}x\n", "- ".repeat(5_000));
    assert!(format::load(deep_yaml.as_bytes(), Format::Yaml).is_err());
    let deep_flow = format!("a: {}{}\n", "[".repeat(5_000), "]".repeat(5_000));
    assert!(format::load(deep_flow.as_bytes(), Format::Yaml).is_err());
    let deep_json = format!("{{\"a\": {}1{}}}", "[".repeat(5_000), "]".repeat(5_000));
    assert!(format::load(deep_json.as_bytes(), Format::Json).is_err());
    let huge = vec![b'a'; (super::MAX_FILE_BYTES + 1) as usize];
    assert!(super::decrypt("big", &huge, Format::Binary, &keys, &Options::default()).is_err());
}
