//! Image policies against a real distribution registry on loopback
//! (`docker-registry serve`), tags pushed with `skopeo copy`, driven
//! through `mooring images` and, for what the agent relies on after a
//! failure, through the library (`mooring::image::{scan, last}`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::registry::{Entry, PASSWORD, Registry, USER, base64, tarball};
use crate::support::{Run, TestEnv, free_port};
use mooring::reason::Classify as _;

/// A tiny artifact; `content` changes its digest.
fn layer(content: &str) -> Vec<u8> {
    tarball(&[Entry::File("app.yaml", content)])
}

/// Push one artifact to every tag in `tags`; the manifest digest.
fn push_all(registry: &Registry, repo: &str, tags: &[&str], content: &str) -> String {
    let layer = layer(content);
    let mut digest = String::new();
    for tag in tags {
        digest = registry.push(repo, tag, &layer);
    }
    digest
}

/// A test env with a state dir and a config of `images` (KDL nodes).
struct Images {
    env: TestEnv,
}

impl Images {
    fn new(images: &str) -> Images {
        let f = Images { env: TestEnv::new() };
        f.configure(images);
        f
    }

    fn configure(&self, images: &str) {
        let config = format!("agent {{ state-dir \"{}\" }}\n{images}\n", self.state().display());
        self.env.write("mooring.kdl", &config);
    }

    fn state(&self) -> PathBuf {
        self.env.path().join("state")
    }

    fn config_path(&self) -> PathBuf {
        self.env.path().join("mooring.kdl")
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut all = vec!["images", "-c", "mooring.kdl"];
        all.extend_from_slice(args);
        self.env.run(&all)
    }

    fn json(&self, args: &[&str]) -> (Run, Vec<Value>) {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        let run = self.run(&all);
        let json: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e})\n--- stdout\n{}\n--- stderr\n{}",
                run.stdout, run.stderr
            )
        });
        let items = json.as_array().expect("a JSON array").clone();
        (run, items)
    }

    /// The image `name` as the library sees it.
    fn image(&self, name: &str) -> mooring::config::Image {
        let loaded = mooring::config::load(&self.config_path()).expect("valid config");
        loaded
            .config
            .image(name)
            .unwrap_or_else(|| panic!("no image {name}"))
            .clone()
    }
}

/// `image "NAME" { repository …; insecure #true; BODY }`.
fn image(name: &str, repository: &str, body: &str) -> String {
    format!("image \"{name}\" {{\n    repository \"{repository}\"\n    insecure #true\n    {body}\n}}\n")
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

#[test]
fn semver_picks_the_highest_matching_tag_and_prereleases_only_when_asked() {
    let registry = Registry::start();
    push_all(
        &registry,
        "app",
        &["1.0.0", "1.2.0", "v1.10.0", "2.0.0-rc.1", "latest", "sha-abc"],
        "a",
    );
    let repo = registry.repo("app");
    let f = Images::new(
        &[
            image("stable", &repo, "semver \">=1.0.0\""),
            image("any", &repo, "semver \"*\""),
            image("minor", &repo, "semver \"~1.2\""),
            image("pre", &repo, "semver \">=2.0.0-rc.0\""),
            image("none", &repo, "semver \"^2.0.0\""),
        ]
        .concat(),
    );
    let run = f.run(&["image/stable", "image/any", "image/minor", "image/pre"]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        format!(
            "image/stable  {repo}:v1.10.0  (6 tags considered, 2 skipped)\n\
             image/any  {repo}:v1.10.0  (6 tags considered, 2 skipped)\n\
             image/minor  {repo}:1.2.0  (6 tags considered, 2 skipped)\n\
             image/pre  {repo}:2.0.0-rc.1  (6 tags considered, 2 skipped)\n"
        )
    );

    // `^2.0.0` allows no pre-release of 2.0.0: nothing matches.
    let run = f.run(&["image/none"]);
    run.expect_code(1);
    assert_eq!(
        run.stdout,
        format!(
            "image/none  failed: {repo}: no tag of 6 matches semver \"^2.0.0\" (2 skipped, e.g. \
             \"latest\" (is not a semantic version (MAJOR.MINOR.PATCH)), \"sha-abc\" (is not a \
             semantic version (MAJOR.MINOR.PATCH)))\n"
        )
    );

    // Every image at once: one failure fails the command, the others print.
    let run = f.run(&[]);
    run.expect_code(1);
    assert_eq!(run.stdout.lines().count(), 5, "{}", run.stdout);
    assert!(run.stdout.contains("image/none  failed: "), "{}", run.stdout);
}

#[test]
fn alphabetical_and_numerical_compare_the_extracted_value_and_honour_exclude() {
    let registry = Registry::start();
    push_all(
        &registry,
        "app",
        &[
            "main-abc1234-1718300000",
            "main-def5678-1718400000",
            "main-0a0a0a0-999999999",
            "feature-x-1818400000",
            "main-badc0de-later",
            "latest",
            "sha256-abc.sig",
        ],
        "a",
    );
    let repo = registry.repo("app");
    let filter = r##"filter #"^main-[a-f0-9]+-(?<ts>\d+)$"# extract="$ts""##;
    let loose = r##"filter #"^main-[a-f0-9]+-(?<ts>\w+)$"# extract="${ts}""##;
    let f = Images::new(
        &[
            image("num", &repo, &format!("numerical order=\"asc\"\n{filter}")),
            image("num-desc", &repo, &format!("numerical order=\"desc\"\n{filter}")),
            image("alpha", &repo, &format!("alphabetical order=\"asc\"\n{filter}")),
            image(
                "alpha-desc",
                &repo,
                &format!("alphabetical order=\"desc\"\n{filter}"),
            ),
            image(
                "excluded",
                &repo,
                &format!("numerical\n{filter}\nexclude #\"^main-def\"# #\"-rc$\"#"),
            ),
            image("loose", &repo, &format!("numerical\n{loose}")),
            image("plain", &repo, "alphabetical"),
        ]
        .concat(),
    );
    let run = f.run(&[]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        format!(
            "image/num  {repo}:main-def5678-1718400000  (7 tags considered, 0 skipped)\n\
             image/num-desc  {repo}:main-0a0a0a0-999999999  (7 tags considered, 0 skipped)\n\
             image/alpha  {repo}:main-0a0a0a0-999999999  (7 tags considered, 0 skipped)\n\
             image/alpha-desc  {repo}:main-abc1234-1718300000  (7 tags considered, 0 skipped)\n\
             image/excluded  {repo}:main-abc1234-1718300000  (7 tags considered, 0 skipped)\n\
             image/loose  {repo}:main-def5678-1718400000  (7 tags considered, 1 skipped)\n\
             image/plain  {repo}:main-def5678-1718400000  (7 tags considered, 0 skipped)\n"
        )
    );
    // The skipped tag and why, in JSON.
    let (run, items) = f.json(&["image/loose"]);
    run.expect_code(0);
    assert_eq!(
        items[0]["skipped"],
        serde_json::json!([{"tag": "main-badc0de-later", "why": "extracted \"later\" is not a number"}])
    );
}

#[test]
fn json_output_shape() {
    let registry = Registry::start();
    push_all(&registry, "app", &["1.0.0", "1.1.0", "latest"], "a");
    let repo = registry.repo("app");
    let f = Images::new(
        &[
            image("ok", &repo, "semver \"^1\""),
            image("bad", &repo, "semver \">=5\""),
        ]
        .concat(),
    );
    let (run, items) = f.json(&[]);
    run.expect_code(1);
    assert_eq!(
        items,
        vec![
            serde_json::json!({
                "kind": "image",
                "name": "ok",
                "result": "ok",
                "repository": repo,
                "tag": "1.1.0",
                "considered": 3,
                "skipped": [{"tag": "latest", "why": "is not a semantic version (MAJOR.MINOR.PATCH)"}],
            }),
            serde_json::json!({
                "kind": "image",
                "name": "bad",
                "result": "failed",
                "repository": repo,
                "error": format!(
                    "{repo}: no tag of 3 matches semver \">=5\" (1 skipped, e.g. \"latest\" (is not a \
                     semantic version (MAJOR.MINOR.PATCH)))"
                ),
                "reason": "ScanFailed",
            }),
        ]
    );
}

#[test]
fn digest_is_the_one_the_registry_reports_for_the_tag() {
    let registry = Registry::start();
    push_all(&registry, "app", &["1.0.0", "1.1.0"], "old");
    let pushed = push_all(&registry, "app", &["1.2.0"], "new");
    let repo = registry.repo("app");
    let f = Images::new(&image("app", &repo, "semver \"^1\""));
    let run = f.run(&["--digest"]);
    run.expect_code(0);
    let inspected = skopeo_digest(&format!("{repo}:1.2.0"));
    assert_eq!(inspected, pushed);
    assert_eq!(
        run.stdout,
        format!("image/app  {repo}:1.2.0@{inspected}  (3 tags considered, 0 skipped)\n")
    );
    let (_, items) = f.json(&["--digest"]);
    assert_eq!(items[0]["digest"], inspected.as_str());
    // Without --digest, none is resolved.
    let (_, items) = f.json(&[]);
    assert!(items[0].get("digest").is_none(), "{}", items[0]);
}

/// The manifest digest of `reference` as `skopeo inspect` reports it.
fn skopeo_digest(reference: &str) -> String {
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("run skopeo inspect");
    assert!(
        out.status.success(),
        "skopeo inspect failed\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The digest of a manifest is the sha256 of its bytes as served.
    use sha2::Digest as _;
    let hex: String = sha2::Sha256::digest(&out.stdout)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let digest = format!("sha256:{hex}");
    // And `skopeo inspect` says the same when it can read the config.
    let formatted = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("run skopeo inspect");
    if formatted.status.success() {
        assert_eq!(String::from_utf8_lossy(&formatted.stdout).trim(), digest);
    }
    digest
}

#[test]
fn every_tag_is_listed_whatever_the_page_size() {
    let registry = Registry::start();
    let tags: Vec<String> = (0..30).map(|i| format!("1.{i}.0")).collect();
    let refs: Vec<&str> = tags.iter().map(String::as_str).collect();
    push_all(&registry, "app", &refs, "a");
    let repo = registry.repo("app");
    let f = Images::new(&image("app", &repo, "semver \"<1.25\""));

    // Debian's distribution registry (2.8) sends every tag whatever `n`
    // asks; the paging itself is tested against a registry that honours
    // `n` and `last` in src/image/scan.rs. Either way, every tag arrives.
    let page = reqwest::blocking::get(format!("http://{}/v2/app/tags/list?n=7", registry.host()))
        .and_then(|r| r.json::<Value>())
        .expect("tags/list");
    let honours_n = page["tags"].as_array().map(Vec::len) == Some(7);
    let img = f.image("app");
    let mut listed = block_on(mooring::image::list_tags(&img, 7)).expect("list tags");
    listed.sort();
    let mut want = tags.clone();
    want.sort();
    assert_eq!(listed, want, "the registry honours n: {honours_n}");

    let run = f.run(&[]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        format!("image/app  {repo}:1.24.0  (30 tags considered, 0 skipped)\n")
    );
}

#[test]
fn registry_down_after_a_good_scan_fails_but_keeps_the_last_selection() {
    let registry = Registry::start();
    let digest = push_all(&registry, "app", &["1.0.0", "1.1.0", "latest"], "a");
    let repo = registry.repo("app");
    let f = Images::new(&image("app", &repo, "semver \"^1\""));
    let img = f.image("app");
    let state = f.state();

    let good = block_on(mooring::image::scan(&img, &state, true)).expect("scan");
    assert_eq!(good.selection.reference(), format!("{repo}:1.1.0@{digest}"));
    assert_eq!(
        (good.considered, good.skipped.len(), good.from_cache),
        (3, 1, false)
    );
    assert!(state.join("images/app.json").is_file());

    drop(registry);
    let err = block_on(mooring::image::scan(&img, &state, true)).expect_err("registry is down");
    assert!(
        err.to_string().starts_with(&format!("cannot reach {repo}")),
        "{err}"
    );
    assert!(err.retryable());
    assert_eq!(err.reason().as_str(), "ScanFailed");
    assert_eq!(mooring::image::last(&img, &state), Some(good.selection.clone()));

    let run = f.run(&[]);
    run.expect_code(1);
    assert!(
        run.stdout
            .starts_with(&format!("image/app  failed: cannot reach {repo}: ")),
        "{}",
        run.stdout
    );
    let (_, items) = f.json(&[]);
    assert_eq!(items[0]["result"], "failed");
    assert_eq!(items[0]["reason"], "ScanFailed");
    assert_eq!(
        items[0]["last"],
        serde_json::json!({"repository": repo, "tag": "1.1.0", "digest": digest})
    );
    // The failed runs kept the list: the selection is still there.
    assert_eq!(mooring::image::last(&img, &state), Some(good.selection));
}

#[test]
fn a_registry_that_is_not_there_or_speaks_http_only() {
    let port = free_port();
    let f = Images::new(&image("app", &format!("127.0.0.1:{port}/app"), "semver \"*\""));
    let run = f.run(&[]);
    run.expect_code(1);
    assert!(
        run.stdout
            .starts_with(&format!("image/app  failed: cannot reach 127.0.0.1:{port}/app: ")),
        "{}",
        run.stdout
    );

    let registry = Registry::start();
    push_all(&registry, "app", &["1.0.0"], "a");
    f.configure(&format!(
        "image \"app\" {{\n    repository \"{}\"\n    semver \"*\"\n}}\n",
        registry.repo("app")
    ));
    let run = f.run(&[]);
    run.expect_code(1);
    assert!(run.stdout.contains("needs `insecure #true`"), "{}", run.stdout);
}

#[test]
fn basic_auth_password_file_and_docker_config() {
    let registry = Registry::with_auth();
    push_all(&registry, "private", &["1.0.0", "1.3.0"], "secret");
    let repo = registry.repo("private");
    let f = Images::new("");
    let pw = f.env.write("password", &format!("{PASSWORD}\n"));
    let docker = f.env.write(
        "docker/config.json",
        &serde_json::json!({"auths": {
            registry.host(): {"auth": base64(format!("{USER}:{PASSWORD}").as_bytes())},
        }})
        .to_string(),
    );
    let wrong_secret = "wr0ng-passw0rd-xyz";
    let wrong = f.env.write("wrong", wrong_secret);
    let auth = |file: &Path| {
        format!(
            "semver \"*\"\nauth {{ username \"{USER}\"; password-file \"{}\"; }}",
            file.display()
        )
    };
    f.configure(
        &[
            image("basic", &repo, &auth(&pw)),
            image(
                "docker",
                &repo,
                &format!("semver \"*\"\nauth {{ docker-config \"{}\"; }}", docker.display()),
            ),
        ]
        .concat(),
    );
    let run = f.run(&["--digest"]);
    run.expect_code(0);
    for name in ["basic", "docker"] {
        assert!(
            run.stdout
                .contains(&format!("image/{name}  {repo}:1.3.0@sha256:")),
            "{}",
            run.stdout
        );
    }

    f.configure(
        &[
            image("wrong", &repo, &auth(&wrong)),
            image("anonymous", &repo, "semver \"*\""),
            image("missing", &repo, &auth(&f.env.path().join("nope"))),
        ]
        .concat(),
    );
    let run = f.run(&[]);
    run.expect_code(1);
    assert_eq!(run.stdout.lines().count(), 3, "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("image/wrong  failed: {repo} refused the credentials")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "image/anonymous  failed: {repo} refused the credentials"
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "image/missing  failed: cannot read the credentials for {repo} from "
        )),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains(wrong_secret) && !run.stderr.contains(wrong_secret),
        "{run:?}"
    );
    assert!(
        !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
        "{run:?}"
    );
}

#[test]
fn unknown_names_and_other_kinds_are_refused() {
    let f = Images::new(&image("podinfo", "127.0.0.1:1/podinfo", "semver \"*\""));
    let run = f.run(&["image/podinf"]);
    run.expect_code(1);
    assert_eq!(
        run.stderr,
        "error: mooring.kdl declares no image named \"podinf\" (did you mean \"podinfo\"?)\n"
    );
    let run = f.run(&["app/podinfo"]);
    run.expect_code(2);
    assert!(run.stderr.contains("use image/NAME"), "{}", run.stderr);
}

#[test]
fn the_agent_scans_images_and_keeps_the_pick_in_status() {
    let registry = Registry::start();
    push_all(&registry, "app", &["1.0.0", "1.1.0"], "a");
    let repo = registry.repo("app");
    let f = Images::new(&image("app", &repo, "semver \"^1.0.0\""));
    let run = f
        .env
        .run(&["once", "-v", "image/app", "-c", "mooring.kdl", "--format", "json"]);
    run.expect_code(0);
    let out: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(out[0]["result"], "ok", "{out}");
    assert_eq!(out[0]["revision"], format!("{repo}:1.1.0"), "{out}");
    assert!(
        out[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("2 tags considered")),
        "{out}"
    );
}
