//! Shell completions and man pages, in the real tools: bash sources what
//! `mooring completions bash` prints and completes verbs, flags and the
//! names of the config's objects; `man` renders the pages `mooring man DIR`
//! writes.

use std::path::Path;
use std::process::Command;

use crate::support::{TestEnv, checked, skip};

/// What bash offers for the words of `line` (the last one being completed),
/// in `dir`, with `mooring` on the PATH.
fn bash_complete(dir: &Path, words: &[&str]) -> Vec<String> {
    let bin = crate::support::mooring_bin();
    let path = format!(
        "{}:{}",
        bin.parent().expect("binary dir").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let script = format!(
        "eval \"$(mooring completions bash)\"\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_TYPE=9\n_clap_complete_mooring mooring '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        quoted.join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let mut bash = Command::new("bash");
    bash.args(["--norc", "--noprofile", "-c", &script])
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("MOORING_CONFIG");
    checked(&mut bash)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn bash_completes_verbs_flags_and_object_names() {
    let env = TestEnv::new();
    env.write(
        "mooring.kdl",
        "source \"platform\" { git \"https://example.com/p.git\"; }\napp \"infra\" { source \"platform\"; target dir=\"/o/i\"; }\napp \"web\" { source \"platform\"; target dir=\"/o/w\"; }\nimage \"podinfo\" { repository \"ghcr.io/a/podinfo\"; semver \"^6\"; }\n",
    );
    assert_eq!(bash_complete(env.path(), &["mooring", "sus"]), ["suspend"]);
    assert_eq!(
        bash_complete(env.path(), &["mooring", "suspend", "app/"]),
        ["app/infra", "app/web"]
    );
    // An empty word: every object, then the verb's flags.
    let names = |words: &[&str]| -> Vec<String> {
        bash_complete(env.path(), words)
            .into_iter()
            .filter(|c| !c.starts_with('-'))
            .collect()
    };
    assert_eq!(
        names(&["mooring", "reconcile", ""]),
        ["source/platform", "app/infra", "app/web", "image/podinfo"]
    );
    assert!(bash_complete(env.path(), &["mooring", "reconcile", ""]).contains(&"--token-file".to_string()));
    // Arguments that take one kind offer only that kind.
    assert_eq!(names(&["mooring", "render", ""]), ["app/infra", "app/web"]);
    assert_eq!(
        bash_complete(env.path(), &["mooring", "events", "app/"]),
        ["app/infra", "app/web"]
    );
    assert_eq!(
        bash_complete(env.path(), &["mooring", "status", "so"]),
        ["source/platform"]
    );
    assert_eq!(names(&["mooring", "images", ""]), ["image/podinfo"]);
    assert_eq!(
        bash_complete(env.path(), &["mooring", "graph", "--format", ""]),
        ["tree", "mermaid", "dot"]
    );
    // No config here: no names, and nothing printed into the shell.
    let empty = TestEnv::new();
    assert_eq!(
        bash_complete(empty.path(), &["mooring", "suspend", "app/"]),
        Vec::<String>::new()
    );
}

#[test]
fn man_renders_every_page() {
    if Command::new("man").arg("--version").output().is_err() {
        skip("man_renders_every_page", "`man` is not installed");
        return;
    }
    let env = TestEnv::new();
    env.run(&["man", "pages"]).expect_code(0);
    let pages: Vec<String> = std::fs::read_dir(env.path().join("pages"))
        .expect("read pages")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    for page in [
        "mooring.1",
        "mooring-validate.1",
        "mooring-import-flux.1",
        "mooring-graph.1",
    ] {
        assert!(pages.iter().any(|p| p == page), "no {page} in {pages:?}");
    }
    let out = Command::new("man")
        .args(["-l", "pages/mooring-suspend.1"])
        .current_dir(env.path())
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .output()
        .expect("run man");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("NAME"), "{text}");
    assert!(text.contains("--reason"), "{text}");
    // The printed page is the top one.
    let top = env.run(&["man"]);
    top.expect_code(0);
    assert!(top.stdout.contains(".TH mooring 1"), "{}", top.stdout);
}
