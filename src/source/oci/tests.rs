use std::io::Write as _;

use std::sync::atomic::AtomicBool;

use super::*;
use crate::source::Store;

static KEEP_GOING: AtomicBool = AtomicBool::new(false);

/// A tar.gz whose entries are written raw (names unchecked), so that
/// hostile archives can be built: (name, type, link target, content).
/// (name, type, link target, content)
type RawEntry<'a> = (&'a str, tar::EntryType, &'a str, &'a [u8]);

fn tarball(entries: &[RawEntry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        let mut h = tar::Header::new_gnu();
        {
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        builder.append(&h, *data).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

fn extract(bytes: &[u8], limits: Limits) -> (tempfile::TempDir, Result<Artifact, Error>) {
    let state = tempfile::tempdir().unwrap();
    let store = Store::new(state.path());
    let result = store.create("s", "r", &[], limits, &KEEP_GOING, |w| {
        extract::tar_gz(bytes, w, "sha256:layer", limits)
    });
    (state, result)
}

#[test]
fn regular_files_and_directories_are_extracted() {
    use tar::EntryType::*;
    let gz = tarball(&[
        ("./", Directory, "", b""),
        ("./apps/", Directory, "", b""),
        ("./apps/a.yaml", Regular, "", b"a: 1\n"),
        ("b.yaml", Regular, "", b"b: 2\n"),
    ]);
    let (_state, result) = extract(&gz, Limits::default());
    let a = result.unwrap();
    assert_eq!(
        std::fs::read_to_string(a.dir.join("apps/a.yaml")).unwrap(),
        "a: 1\n"
    );
    assert_eq!(std::fs::read_to_string(a.dir.join("b.yaml")).unwrap(), "b: 2\n");
}

#[test]
fn hostile_entries_are_rejected_by_name_and_leave_nothing() {
    use tar::EntryType::*;
    let cases: Vec<(Vec<RawEntry<'_>>, &str)> = vec![
        (vec![("../../etc/x", Regular, "", b"evil")], "../../etc/x"),
        (vec![("/abs/path", Regular, "", b"evil")], "/abs/path"),
        (
            vec![("link", Symlink, "/tmp", b""), ("link/x", Regular, "", b"evil")],
            "link",
        ),
        (vec![("ok", Regular, "", b"x"), ("hard", Link, "ok", b"")], "hard"),
        (vec![("dev", Char, "", b"")], "dev"),
        (vec![("pipe", Fifo, "", b"")], "pipe"),
    ];
    for (entries, bad) in cases {
        let (state, result) = extract(&tarball(&entries), Limits::default());
        match result {
            Err(Error::Rejected { entry, .. }) => assert_eq!(entry, bad),
            other => panic!("{bad}: {other:?}"),
        }
        let left: Vec<_> = std::fs::read_dir(state.path().join("artifacts/s"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "{bad}: left {left:?}");
    }
}

#[test]
fn gzip_bombs_hit_the_byte_cap() {
    let zeros = vec![0u8; 64 * 1024];
    let gz = tarball(&[("big", tar::EntryType::Regular, "", &zeros)]);
    let limits = Limits {
        max_bytes: 1024,
        max_files: 10,
    };
    let (_state, result) = extract(&gz, limits);
    assert!(matches!(result, Err(Error::Rejected { .. })), "{result:?}");
    // Skipped entries count too: a global header full of zeros.
    let gz = tarball(&[("g", tar::EntryType::XGlobalHeader, "", &zeros)]);
    let (_state, result) = extract(
        &gz,
        Limits {
            max_bytes: 1024,
            max_files: 1,
        },
    );
    assert!(
        matches!(&result, Err(Error::Rejected { entry, .. }) if entry == "sha256:layer"),
        "{result:?}"
    );
}

#[test]
fn garbage_is_rejected() {
    let (_state, result) = extract(b"not gzip at all", Limits::default());
    assert!(
        matches!(&result, Err(Error::Rejected { entry, .. }) if entry == "sha256:layer"),
        "{result:?}"
    );
}

#[test]
fn blob_verification() {
    let good = format!("sha256:{}", hex(&Sha256::digest(b"abc")));
    assert!(verify_blob(&good, 3, &good, 3).is_ok());
    let other = format!("sha256:{}", hex(&Sha256::digest(b"abd")));
    let err = verify_blob(&good, 3, &other, 3).unwrap_err();
    assert!(
        matches!(&err, Error::Rejected { entry, .. } if *entry == good),
        "{err:?}"
    );
    assert!(matches!(
        verify_blob(&good, 4, &good, 3),
        Err(Error::Rejected { .. })
    ));
}

#[test]
fn flux_layer_is_preferred() {
    let d = |m: &str| OciDescriptor {
        media_type: m.into(),
        ..Default::default()
    };
    let layers = [d("application/x-other"), d(FLUX_CONTENT_MEDIA_TYPE)];
    assert_eq!(pick_layer(&layers).unwrap().media_type, FLUX_CONTENT_MEDIA_TYPE);
    assert_eq!(
        pick_layer(&layers[..1]).unwrap().media_type,
        "application/x-other"
    );
    assert!(pick_layer(&[]).is_none());
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn pagination_follows_last_and_stops() {
    let all: Vec<String> = (0..7).map(|i| format!("t{i}")).collect();
    // A registry that honours n=3 / last.
    let mut calls = 0;
    let got = run(paginate(|last| {
        calls += 1;
        let start = last.map_or(0, |l| all.iter().position(|t| *t == l).unwrap() + 1);
        let page = all[start.min(all.len())..].iter().take(3).cloned().collect();
        async move { Ok(page) }
    }))
    .unwrap();
    assert_eq!(got, all);
    assert_eq!(calls, 4, "three pages and an empty one");
    // A registry that ignores paging sends everything every time.
    let mut calls = 0;
    let got = run(paginate(|_| {
        calls += 1;
        let page = all.clone();
        async move { Ok(page) }
    }))
    .unwrap();
    assert_eq!(got, all);
    assert_eq!(calls, 2);
}

#[test]
fn registry_errors_map_to_kinds() {
    let e = map_error(
        "r/x",
        "tag \"v\"",
        OciDistributionError::ServerError {
            code: 404,
            url: "u".into(),
            message: String::new(),
        },
    );
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    let e = map_error(
        "r/x",
        "t",
        OciDistributionError::UnauthorizedError { url: "u".into() },
    );
    assert!(matches!(e, Error::Auth { .. }), "{e:?}");
    let e = map_error(
        "r/x",
        "t",
        OciDistributionError::DigestError(DigestError::VerificationError {
            expected: "sha256:a".into(),
            actual: "sha256:b".into(),
        }),
    );
    assert!(matches!(e, Error::Rejected { .. }), "{e:?}");
}
