//! OCI sources against a real distribution registry on loopback
//! (`docker-registry serve`), artifacts pushed with `skopeo copy`, driven
//! through `mooring once source/NAME --format json`.

use std::path::{Path, PathBuf};

use crate::registry::{Entry, PASSWORD, Registry, USER, base64, files_under, tarball};
use crate::support::{SourceFixture, free_port};

fn manifests(version: &str) -> Vec<u8> {
    tarball(&[
        Entry::Dir("./"),
        Entry::Dir("./apps/"),
        Entry::File("./apps/deploy.yaml", &format!("version: {version}\n")),
        Entry::File("./kustomization.yaml", "resources: [apps/deploy.yaml]\n"),
    ])
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {file} in {}: {e}", dir.display()))
}

#[test]
fn tag_pull_no_change_and_new_push() {
    let registry = Registry::start();
    let first = registry.push("app", "latest", &manifests("1"));
    let f = SourceFixture::new();
    f.configure(&format!("oci \"{}\"\ninsecure #true", registry.repo("app")));

    let a = f.ok();
    assert_eq!(a.revision, format!("latest@{first}"));
    assert_eq!(read(&a.dir, "apps/deploy.yaml"), "version: 1\n");
    assert!(a.dir.join("kustomization.yaml").is_file());

    // Nothing changed: the same artifact, no new directory.
    let again = f.ok();
    assert_eq!(again.revision, a.revision);
    assert_eq!(again.dir, a.dir);
    assert_eq!(f.artifacts(), vec![a.dir.clone()]);

    // A new push to the same tag is a new revision.
    let second = registry.push("app", "latest", &manifests("2"));
    assert_ne!(first, second);
    let b = f.ok();
    assert_eq!(b.revision, format!("latest@{second}"));
    assert_ne!(b.dir, a.dir);
    assert_eq!(read(&b.dir, "apps/deploy.yaml"), "version: 2\n");
}

#[test]
fn semver_picks_the_highest_matching_tag() {
    let registry = Registry::start();
    let mut winner = String::new();
    for tag in [
        "1.0.0",
        "1.2.0",
        "v1.3.1",
        "1.10.0-rc.1",
        "2.0.0",
        "latest",
        "main-abc123",
        "1.9",
    ] {
        let digest = registry.push("app", tag, &manifests(tag));
        if tag == "v1.3.1" {
            winner = digest;
        }
    }
    let f = SourceFixture::new();
    f.configure(&format!(
        "oci \"{}\"\ninsecure #true\nsemver \">=1.0.0 <2.0.0\"",
        registry.repo("app")
    ));
    let a = f.ok();
    assert_eq!(a.revision, format!("v1.3.1@{winner}"));
    assert_eq!(read(&a.dir, "apps/deploy.yaml"), "version: v1.3.1\n");

    f.configure(&format!(
        "oci \"{}\"\ninsecure #true\nsemver \">=3.0.0\"",
        registry.repo("app")
    ));
    let (_, error) = f.fails();
    assert!(error.contains("has no tag matching \">=3.0.0\""), "{error}");
}

#[test]
fn digest_pin() {
    let registry = Registry::start();
    let pinned = registry.push("app", "latest", &manifests("pinned"));
    registry.push("app", "latest", &manifests("newer"));
    let f = SourceFixture::new();
    f.configure(&format!(
        "oci \"{}\"\ninsecure #true\ndigest \"{pinned}\"",
        registry.repo("app")
    ));
    let a = f.ok();
    assert_eq!(a.revision, pinned);
    assert_eq!(read(&a.dir, "apps/deploy.yaml"), "version: pinned\n");
}

#[test]
fn missing_tag_is_not_found() {
    let registry = Registry::start();
    registry.push("app", "latest", &manifests("1"));
    let f = SourceFixture::new();
    f.configure(&format!(
        "oci \"{}\"\ninsecure #true\ntag \"nope\"",
        registry.repo("app")
    ));
    let (_, error) = f.fails();
    assert!(error.contains("has no tag \"nope\""), "{error}");
    assert!(f.artifacts().is_empty());
}

#[test]
fn basic_auth_password_file_and_docker_config() {
    let registry = Registry::with_auth();
    let digest = registry.push("private", "latest", &manifests("secret"));
    let f = SourceFixture::new();
    let pw = f.env.write("password", &format!("{PASSWORD}\n"));
    f.configure(&format!(
        "oci \"{}\"\ninsecure #true\nauth {{ username \"{USER}\"; password-file \"{}\"; }}",
        registry.repo("private"),
        pw.display()
    ));
    let a = f.ok();
    assert_eq!(a.revision, format!("latest@{digest}"));
    assert_eq!(read(&a.dir, "apps/deploy.yaml"), "version: secret\n");

    // A docker config.json with the registry's host:port.
    let f = SourceFixture::new();
    let cfg = f.env.write(
        "docker/config.json",
        &serde_json::json!({"auths": {
            "other.example:5000": {"auth": base64(b"someone:else")},
            registry.host(): {"auth": base64(format!("{USER}:{PASSWORD}").as_bytes())},
        }})
        .to_string(),
    );
    f.configure(&format!(
        "oci \"{}\"\ninsecure #true\nauth {{ docker-config \"{}\"; }}",
        registry.repo("private"),
        cfg.display()
    ));
    assert_eq!(f.ok().revision, format!("latest@{digest}"));
}

#[test]
fn wrong_or_missing_credentials_are_auth_errors_without_secrets() {
    let registry = Registry::with_auth();
    registry.push("private", "latest", &manifests("secret"));
    let f = SourceFixture::new();
    let wrong = "wr0ng-passw0rd-xyz";
    let pw = f.env.write("password", wrong);
    f.configure(&format!(
        "oci \"{}\"\ninsecure #true\nauth {{ username \"{USER}\"; password-file \"{}\"; }}",
        registry.repo("private"),
        pw.display()
    ));
    let (run, error) = f.fails();
    assert!(
        error.contains(&format!("{} refused the credentials", registry.repo("private"))),
        "{error}"
    );
    assert!(
        !run.stdout.contains(wrong) && !run.stderr.contains(wrong),
        "{run:?}"
    );

    // Anonymous against a registry that wants credentials.
    f.configure(&format!("oci \"{}\"\ninsecure #true", registry.repo("private")));
    let (_, error) = f.fails();
    assert!(error.contains("refused the credentials"), "{error}");

    // An unreadable password file.
    f.configure(&format!(
        "oci \"{}\"\ninsecure #true\nauth {{ username \"{USER}\"; password-file \"{}\"; }}",
        registry.repo("private"),
        f.path().join("missing").display()
    ));
    let (_, error) = f.fails();
    assert!(error.contains("cannot read credentials from"), "{error}");
    assert!(f.artifacts().is_empty());
}

#[test]
fn registry_down_is_unreachable() {
    let port = free_port();
    let f = SourceFixture::new();
    f.configure(&format!("oci \"127.0.0.1:{port}/app\"\ninsecure #true"));
    let (_, error) = f.fails();
    assert!(
        error.starts_with(&format!("cannot reach 127.0.0.1:{port}/app")),
        "{error}"
    );
}

#[test]
fn https_only_unless_insecure() {
    let registry = Registry::start();
    registry.push("app", "latest", &manifests("1"));
    let f = SourceFixture::new();
    f.configure(&format!("oci \"{}\"", registry.repo("app")));
    let (_, error) = f.fails();
    assert!(
        error.starts_with(&format!("cannot reach {}", registry.repo("app"))),
        "{error}"
    );
}

#[test]
fn a_silent_registry_times_out() {
    // Connections are accepted by the kernel and never answered.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let f = SourceFixture::new();
    f.configure(&format!(
        "oci \"127.0.0.1:{port}/app\"\ninsecure #true\ntimeout \"1s\""
    ));
    let (_, error) = f.fails();
    // The timeout that fired is the one configured, not a default.
    assert!(error.contains("took longer than the timeout of 1s"), "{error}");
    drop(listener);
}

#[test]
fn malicious_tarballs_are_rejected_and_leave_nothing() {
    let registry = Registry::start();
    let f = SourceFixture::new();
    let outside = f.path().join("outside");
    std::fs::create_dir_all(&outside).expect("outside dir");
    let outside_str = outside.display().to_string();
    let cases: Vec<(&str, Vec<Entry<'_>>, &str)> = vec![
        (
            "dotdot",
            vec![
                Entry::File("ok.yaml", "a: 1\n"),
                Entry::File("../../etc/x", "evil"),
            ],
            "../../etc/x",
        ),
        ("absolute", vec![Entry::File("/abs/path", "evil")], "/abs/path"),
        (
            "symlink",
            vec![
                Entry::Symlink("escape", &outside_str),
                Entry::File("escape/x", "evil"),
            ],
            "escape",
        ),
        (
            "hardlink",
            vec![
                Entry::File("ok.yaml", "a: 1\n"),
                Entry::Hardlink("hard", "ok.yaml"),
            ],
            "hard",
        ),
    ];
    for (tag, entries, bad) in cases {
        registry.push("evil", tag, &tarball(&entries));
        f.configure(&format!(
            "oci \"{}\"\ninsecure #true\ntag \"{tag}\"",
            registry.repo("evil")
        ));
        let (_, error) = f.fails();
        assert!(error.starts_with(&format!("rejected `{bad}`")), "{tag}: {error}");
        assert!(
            f.artifacts().is_empty(),
            "{tag}: an artifact was left: {:?}",
            f.artifacts()
        );
        // Nothing written anywhere: not in the state dir, not outside.
        assert_eq!(files_under(&f.state()), Vec::<PathBuf>::new(), "{tag}");
        assert_eq!(files_under(&outside), Vec::<PathBuf>::new(), "{tag}");
        assert!(!f.path().join("etc").exists() && !Path::new("/abs/path").exists());
    }
}

#[test]
fn a_layer_that_does_not_match_its_digest_is_rejected() {
    let registry = Registry::start();
    let layer = manifests("1");
    registry.push("app", "latest", &layer);
    // Corrupt the stored blob in place (same size): the registry serves
    // it as is, and the manifest still names the original digest.
    let layer_digest = {
        use sha2::Digest as _;
        let d = sha2::Sha256::digest(&layer);
        format!(
            "sha256:{}",
            d.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    };
    let path = registry.blob_path(&layer_digest);
    let mut bytes = std::fs::read(&path).expect("stored blob");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).expect("corrupt blob");

    let f = SourceFixture::new();
    f.configure(&format!("oci \"{}\"\ninsecure #true", registry.repo("app")));
    let (_, error) = f.fails();
    assert!(
        error.starts_with(&format!("rejected `{layer_digest}`")),
        "{error}"
    );
    assert!(f.artifacts().is_empty());
    assert_eq!(files_under(&f.state()), Vec::<PathBuf>::new());
}

#[test]
fn token_file_is_sent_as_a_bearer_token() {
    // A stand-in registry that records each request's headers and
    // refuses everything: enough to see what mooring sends.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
            let mut buf = vec![0u8; 8192];
            let n = stream.read(&mut buf).unwrap_or(0);
            record
                .lock()
                .expect("lock")
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let f = SourceFixture::new();
    let token = f.env.write("token", "t0ken-value\n");
    f.configure(&format!(
        "oci \"127.0.0.1:{port}/app\"\ninsecure #true\nauth {{ token-file \"{}\"; }}",
        token.display()
    ));
    let (run, error) = f.fails();
    assert!(error.contains("refused the credentials"), "{error}");
    assert!(
        !run.stdout.contains("t0ken") && !run.stderr.contains("t0ken"),
        "{run:?}"
    );
    let requests = seen.lock().expect("lock").clone();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("HEAD /v2/app/manifests/latest")
                && r.to_ascii_lowercase()
                    .contains("authorization: bearer t0ken-value\r\n")),
        "{requests:#?}"
    );
}
