//! `mooring graph`: the drawings are accepted by the tools they are for
//! (Graphviz's `dot`), and an invalid config gets its diagnostics. The
//! tree and Mermaid forms are checked by docs/cli.md's transcript.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::support::{TestEnv, repo_root, skip};

#[test]
fn dot_output_is_accepted_by_graphviz() {
    if Command::new("dot").arg("-V").output().is_err() {
        skip(
            "dot_output_is_accepted_by_graphviz",
            "Graphviz's `dot` is not installed",
        );
        return;
    }
    let env = TestEnv::new();
    let full = repo_root().join("examples/full.kdl");
    let run = env.run(&["graph", "--format", "dot", "-c", &full.display().to_string()]);
    run.expect_code(0);
    let mut dot = Command::new("dot")
        .args(["-Tplain"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dot");
    dot.stdin
        .take()
        .expect("dot's stdin")
        .write_all(run.stdout.as_bytes())
        .expect("write to dot");
    let out = dot.wait_with_output().expect("run dot");
    let plain = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "dot refused it: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        run.stdout
    );
    // Every object of the config is a node of the drawing, and every edge is there.
    let nodes = plain.lines().filter(|l| l.starts_with("node ")).count();
    let edges = plain.lines().filter(|l| l.starts_with("edge ")).count();
    assert_eq!(nodes, run.stdout.matches("[label=").count(), "{plain}");
    assert_eq!(edges, run.stdout.matches(" -> ").count(), "{plain}");
    assert!(plain.contains("\"app/edge (suspended)\""), "{plain}");
}

#[test]
fn an_invalid_config_gets_its_diagnostics() {
    let env = TestEnv::new();
    env.write(
        "mooring.kdl",
        "app \"web\" { source \"nope\"; target dir=\"/o\"; }\n",
    );
    let run = env.run(&["graph", "-c", "mooring.kdl"]);
    run.expect_code(1);
    assert!(run.stderr.contains("unknown-reference"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}
