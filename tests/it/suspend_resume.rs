//! `mooring suspend` / `mooring resume`: in-place edits that keep every
//! other byte, refuse bad input, and replace the file atomically.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::support::TestEnv;

/// A config written the way people write them: comments everywhere, odd
/// spacing, slashdash, a multi-line node, a trailing comment, no final
/// newline handling surprises.
const MESSY: &str = r#"// mooring config — edited by hand, ünïcödé comments welcome
/* block
   comment */
agent {
    state-dir   "state"     // relative to this file
    concurrency 2
}

source   "platform"   {
    git "https://example.com/acme/platform.git" ; branch "main"
    /- tag "v1"
    ignore "docs/**" \
        "*.md"
}

app "podinfo" { source "platform"; path "apps/podinfo"; target dir="out" }
app "infra" {
	source "platform"   // tab-indented
	target dir="out-infra"
}
/-app "old" { source "platform" }

    suspend app="infra" reason="already paused"   // indented on purpose
/-suspend app="podinfo"

// the end
"#;

#[test]
fn suspend_then_resume_restores_the_file_byte_for_byte() {
    let env = TestEnv::new();
    let path = env.write("mooring.kdl", MESSY);
    let path = path.to_str().unwrap();

    env.run(&["suspend", "app/podinfo", "--reason", "memory leak", "-c", path])
        .expect_code(0);
    let suspended = env.read("mooring.kdl");
    // Exactly one line was added, right after the last suspension, with its indent.
    let added: Vec<&str> = suspended
        .lines()
        .filter(|l| !MESSY.lines().any(|m| m == *l))
        .collect();
    assert_eq!(added, [r#"    suspend app="podinfo" reason="memory leak""#]);
    assert_eq!(suspended.len(), MESSY.len() + added[0].len() + 1);
    assert!(suspended.contains("// indented on purpose\n    suspend app=\"podinfo\""));
    env.run(&["validate", "-c", path]).expect_code(0);

    env.run(&["resume", "app/podinfo", "-c", path]).expect_code(0);
    assert_eq!(env.read("mooring.kdl"), MESSY);
}

#[test]
fn resume_removes_a_hand_written_suspension_and_keeps_its_neighbours() {
    let env = TestEnv::new();
    env.write("mooring.kdl", MESSY);
    let run = env.run(&["resume", "app/infra"]);
    run.expect_code(0);
    assert!(run.stdout.contains("resumed app/infra"), "{}", run.stdout);
    let expected = MESSY.replace(
        "    suspend app=\"infra\" reason=\"already paused\"   // indented on purpose\n",
        "",
    );
    assert_eq!(env.read("mooring.kdl"), expected);
}

#[test]
fn suspending_again_updates_the_existing_node_in_place() {
    let env = TestEnv::new();
    env.write("mooring.kdl", MESSY);
    env.run(&[
        "suspend",
        "app/infra",
        "--reason",
        "vendor bug",
        "--until",
        "2099-01-02T03:04:05Z",
    ])
    .expect_code(0);
    let expected = MESSY.replace(
        r#"suspend app="infra" reason="already paused"   // indented"#,
        r#"suspend app="infra" reason="vendor bug" until="2099-01-02T03:04:05Z"   // indented"#,
    );
    assert_eq!(env.read("mooring.kdl"), expected);
}

#[test]
fn until_accepts_a_duration_from_now_and_refuses_the_past() {
    let env = TestEnv::new();
    env.write("mooring.kdl", MESSY);
    let before = jiff::Timestamp::now();
    env.run(&["suspend", "app/podinfo", "--until", "2h"])
        .expect_code(0);
    let text = env.read("mooring.kdl");
    let until: jiff::Timestamp = text
        .lines()
        .find(|l| l.contains(r#"suspend app="podinfo""#))
        .and_then(|l| l.split("until=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .and_then(|ts| ts.parse().ok())
        .expect("an until= timestamp");
    let offset = until.as_second() - before.as_second();
    assert!((7190..=7210).contains(&offset), "until is {offset}s from now");

    let run = env.run(&["suspend", "app/infra", "--until", "2001-01-01T00:00:00Z"]);
    run.expect_code(2);
    assert!(run.stderr.contains("in the past"), "{}", run.stderr);
    let run = env.run(&["suspend", "app/infra", "--until", "tomorrow-ish"]);
    run.expect_code(2);
    assert_eq!(env.read("mooring.kdl"), text, "a refused edit changes nothing");
}

#[test]
fn unknown_targets_and_bad_arguments_change_nothing() {
    let env = TestEnv::new();
    env.write("mooring.kdl", MESSY);

    let run = env.run(&["suspend", "app/podinf"]);
    run.expect_code(1);
    assert!(run.stderr.contains("no app named \"podinf\""), "{}", run.stderr);
    assert!(run.stderr.contains("did you mean \"podinfo\""), "{}", run.stderr);

    let run = env.run(&["suspend", "image/podinfo"]);
    run.expect_code(1);

    let run = env.run(&["suspend", "pod/podinfo"]);
    run.expect_code(2);
    assert!(run.stderr.contains("unknown kind"), "{}", run.stderr);
    env.run(&["suspend", "podinfo"]).expect_code(2);
    env.run(&["suspend", "app/"]).expect_code(2);

    assert_eq!(env.read("mooring.kdl"), MESSY);
}

#[test]
fn resuming_what_is_not_suspended_leaves_the_file_alone() {
    let env = TestEnv::new();
    env.write("mooring.kdl", MESSY);
    let run = env.run(&["resume", "app/podinfo"]);
    run.expect_code(0);
    assert!(run.stdout.contains("not suspended"), "{}", run.stdout);
    assert_eq!(env.read("mooring.kdl"), MESSY);
}

#[test]
fn an_invalid_file_is_refused_with_its_diagnostics() {
    let env = TestEnv::new();
    let broken = MESSY.replace("concurrency 2", "concurency 2");
    env.write("mooring.kdl", &broken);
    let run = env.run(&["suspend", "app/podinfo"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("mooring::config::unknown-node"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean `concurrency`?"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("was not changed"), "{}", run.stderr);
    assert_eq!(env.read("mooring.kdl"), broken);
}

#[test]
fn a_missing_file_is_an_io_error() {
    let env = TestEnv::new();
    let run = env.run(&["suspend", "app/podinfo", "-c", "nope.kdl"]);
    run.expect_code(2);
    assert!(run.stderr.contains("nope.kdl"), "{}", run.stderr);
}

#[test]
fn crlf_files_keep_their_line_endings() {
    let env = TestEnv::new();
    let crlf = "source \"s\" {\r\n    git \"https://example.com/r.git\"\r\n}\r\napp \"a\" {\r\n    source \"s\"\r\n    target dir=\"out\"\r\n}\r\n";
    env.write("mooring.kdl", crlf);
    env.run(&["suspend", "app/a", "--reason", "x"]).expect_code(0);
    let suspended = env.read("mooring.kdl");
    assert!(
        suspended.ends_with("}\r\nsuspend app=\"a\" reason=\"x\"\r\n"),
        "{suspended:?}"
    );
    env.run(&["resume", "app/a"]).expect_code(0);
    assert_eq!(env.read("mooring.kdl"), crlf);
}

#[test]
fn kdl_v1_files_are_refused_and_left_alone() {
    let env = TestEnv::new();
    let v1 = "source \"s\" {\n    git \"https://example.com/r.git\"\n}\napp \"a\" { source \"s\"; prune true; target dir=\"out\"; }\n";
    env.write("mooring.kdl", v1);
    let run = env.run(&["suspend", "app/a"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("KDL v2 writes `#true`") || run.stdout.contains("KDL v2 writes `#true`"),
        "{run:?}"
    );
    assert_eq!(env.read("mooring.kdl"), v1);
}

#[cfg(unix)]
#[test]
fn the_file_keeps_its_mode_and_symlinks_stay_symlinks() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = TestEnv::new();
    let real = env.write("conf/real.kdl", MESSY);
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = env.path().join("mooring.kdl");
    std::os::unix::fs::symlink("conf/real.kdl", &link).unwrap();

    env.run(&["suspend", "app/podinfo"]).expect_code(0);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(env.read("conf/real.kdl").contains(r#"suspend app="podinfo""#));
    assert_eq!(
        std::fs::metadata(&real).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Nothing but the config is left in its directory: no temp files.
    let names: Vec<_> = std::fs::read_dir(env.path().join("conf")).unwrap().collect();
    assert_eq!(names.len(), 1);
}

/// A reader that polls the file while edits run must only ever see a whole
/// old file or a whole new one: the file is replaced by rename, never
/// rewritten in place.
#[test]
fn readers_never_see_a_half_written_file() {
    let env = TestEnv::new();
    // Big enough that a non-atomic write would be observable.
    let padding: String = (0..2000).map(|i| format!("// padding line {i}\n")).collect();
    let original = format!("{MESSY}{padding}");
    let path = env.write("mooring.kdl", &original);
    let suspended = {
        env.run(&["suspend", "app/podinfo"]).expect_code(0);
        let s = env.read("mooring.kdl");
        env.run(&["resume", "app/podinfo"]).expect_code(0);
        s
    };
    assert_eq!(env.read("mooring.kdl"), original);

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, path, original, suspended) =
            (stop.clone(), path.clone(), original.clone(), suspended.clone());
        std::thread::spawn(move || {
            let mut reads = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let text = std::fs::read_to_string(&path).expect("the file always exists");
                assert!(
                    text == original || text == suspended,
                    "saw a partial file of {} bytes",
                    text.len()
                );
                reads += 1;
            }
            reads
        })
    };
    for _ in 0..8 {
        env.run(&["suspend", "app/podinfo"]).expect_code(0);
        env.run(&["resume", "app/podinfo"]).expect_code(0);
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("reader saw only whole files");
    assert!(reads > 0);
    assert_eq!(env.read("mooring.kdl"), original);
}

#[test]
fn the_config_path_rule_applies_to_edits() {
    let env = TestEnv::new();
    env.write("elsewhere.kdl", MESSY);
    let out = env
        .cmd()
        .args(["suspend", "app/podinfo"])
        .env("MOORING_CONFIG", "elsewhere.kdl")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env.read("elsewhere.kdl").contains(r#"suspend app="podinfo""#));
}
