//! `mooring validate`: exit codes, output formats and the config path rule.

use crate::support::TestEnv;

const VALID: &str = r#"
source "platform" {
    git "https://example.com/acme/platform.git"
    branch "main"
}
app "web" {
    source "platform"
    path "apps/web"
    target dir="out"
}
"#;

#[test]
fn a_valid_file_exits_zero() {
    let env = TestEnv::new();
    let path = env.write("conf.kdl", VALID);
    let run = env.run(&["validate", "-c", path.to_str().unwrap()]);
    run.expect_code(0);
    assert!(
        run.stdout.trim_end().ends_with("conf.kdl: valid"),
        "{}",
        run.stdout
    );

    let run = env.run(&["validate", "-c", "conf.kdl", "--format", "json"]);
    run.expect_code(0);
    assert_eq!(run.stdout.trim(), "[]");
}

#[test]
fn warnings_alone_exit_zero_and_are_reported() {
    let env = TestEnv::new();
    env.write(
        "mooring.kdl",
        &format!("{VALID}\nsuspend app=\"web\" until=\"2001-01-01T00:00:00Z\"\n"),
    );
    let run = env.run(&["validate"]);
    run.expect_code(0);
    assert!(run.stdout.contains("⚠"), "{}", run.stdout);
    assert!(run.stdout.contains("valid, with 1 warning"), "{}", run.stdout);

    let run = env.run(&["validate", "--format", "json"]);
    run.expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json[0]["severity"], "warning");
    assert_eq!(json[0]["code"], "mooring::config::until-in-past");
}

#[test]
fn errors_exit_one_and_json_describes_each() {
    let env = TestEnv::new();
    let text = VALID.replace("branch \"main\"", "branch \"main\"\n    intervall \"1m\"");
    env.write("mooring.kdl", &text);
    let run = env.run(&["validate", "--format", "json"]);
    run.expect_code(1);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let items = json.as_array().unwrap();
    assert_eq!(items.len(), 1, "{json:#}");
    let d = &items[0];
    let offset = text.find("intervall").unwrap();
    assert_eq!(d["severity"], "error");
    assert_eq!(d["code"], "mooring::config::unknown-node");
    assert_eq!(d["file"], "mooring.kdl");
    assert_eq!(d["line"], 5);
    assert_eq!(d["column"], 5);
    assert_eq!(d["offset"], offset);
    assert_eq!(d["length"], "intervall".len());
    assert_eq!(d["help"], "did you mean `interval`?");
    assert!(d["message"].as_str().unwrap().contains("intervall"));
}

#[test]
fn unreadable_files_and_bad_usage_exit_two() {
    let env = TestEnv::new();
    let run = env.run(&["validate", "-c", "missing.kdl"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("cannot read config file missing.kdl"),
        "{}",
        run.stderr
    );

    env.run(&["validate", "--format", "yaml"]).expect_code(2);
    env.run(&["validate", "--bogus"]).expect_code(2);
    env.run(&["frobnicate"]).expect_code(2);
    env.run(&["--help"]).expect_code(0);
    env.run(&["--version"]).expect_code(0);
}

#[test]
fn the_config_path_is_flag_then_env_then_local_file() {
    let env = TestEnv::new();
    env.write("mooring.kdl", VALID);
    env.write("env.kdl", "bogus-env-node 1\n");
    env.write("flag.kdl", "bogus-flag-node 1\n");

    // ./mooring.kdl when nothing else is said.
    env.run(&["validate"]).expect_code(0);

    // $MOORING_CONFIG beats ./mooring.kdl.
    let out = env
        .cmd()
        .args(["validate"])
        .env("MOORING_CONFIG", "env.kdl")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("bogus-env-node"));

    // -c beats both.
    let out = env
        .cmd()
        .args(["validate", "-c", "flag.kdl"])
        .env("MOORING_CONFIG", "env.kdl")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("bogus-flag-node"));
}

#[test]
fn without_any_config_the_system_path_is_named() {
    if std::path::Path::new("/etc/mooring/mooring.kdl").exists() {
        return; // this machine has a real config; the fallback is not observable
    }
    let env = TestEnv::new();
    let run = env.run(&["validate"]);
    run.expect_code(2);
    assert!(run.stderr.contains("/etc/mooring/mooring.kdl"), "{}", run.stderr);
}

#[test]
fn output_has_no_colour_codes_when_piped() {
    let env = TestEnv::new();
    env.write("mooring.kdl", "agent { concurency 4 }\n");
    let out = env
        .cmd()
        .env_remove("NO_COLOR")
        .args(["validate"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains('\u{1b}'));
}
