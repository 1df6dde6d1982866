//! Artifact extraction on any bytes: `tar_gz` writes only regular files
//! and directories inside the artifact, within its caps, or refuses the
//! whole archive; it never panics and never writes outside.
#![no_main]

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use mooring::source::{Limits, Store};

static STATE: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("temp dir"));
static RUN: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|data: &[u8]| {
    let store = Store::new(STATE.path());
    let limits = Limits {
        max_bytes: 1 << 20,
        max_files: 64,
    };
    let cancel = AtomicBool::new(false);
    let revision = format!("r{}", RUN.fetch_add(1, Ordering::Relaxed));
    // Raw bytes as gzip, and (more reachable) as a tar wrapped in gzip.
    let mut gz = Vec::new();
    {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::fast());
        let _ = e.write_all(data);
        let _ = e.finish();
    }
    for (n, blob) in [data, gz.as_slice()].into_iter().enumerate() {
        let rev = format!("{revision}-{n}");
        let result = store.create("fuzz", &rev, &[], limits, &cancel, |w| {
            mooring::source::oci::extract::tar_gz(blob, w, "layer", limits)
        });
        if let Ok(a) = result {
            assert!(a.dir.starts_with(STATE.path()));
            let _ = std::fs::remove_dir_all(&a.dir);
        }
    }
    // Nothing may be left beside the artifacts.
    let _ = std::fs::remove_dir_all(STATE.path().join("artifacts"));
});
