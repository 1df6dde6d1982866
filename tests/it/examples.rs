//! Every example config is valid, without warnings, as shipped.

use crate::support::{TestEnv, repo_root};

fn example_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join("examples"))
        .expect("examples/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "kdl"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_validates_cleanly() {
    let files = example_files();
    for required in ["quickstart.kdl", "full.kdl", "host-systemd.kdl", "in-cluster.kdl"] {
        assert!(
            files.iter().any(|f| f.ends_with(required)),
            "examples/{required} is missing"
        );
    }
    let env = TestEnv::new();
    for file in files {
        let run = env.run(&["validate", "--format", "json", "-c", file.to_str().unwrap()]);
        run.expect_code(0);
        assert_eq!(run.stdout.trim(), "[]", "{} has diagnostics", file.display());
    }
}

#[test]
fn quickstart_needs_no_cluster() {
    let path = repo_root().join("examples/quickstart.kdl");
    let text = std::fs::read_to_string(&path).unwrap();
    let loaded = mooring::config::from_str(&path, text, jiff::Timestamp::now()).unwrap();
    let cfg = loaded.config;
    assert!(cfg.clusters.is_empty());
    assert!(!cfg.apps.is_empty());
    for app in &cfg.apps {
        assert!(
            matches!(app.target, mooring::config::Target::Dir(_)),
            "{} needs a cluster",
            app.name.value
        );
    }
    // The source is this repository, over file://.
    let root = repo_root().canonicalize().unwrap();
    assert!(
        cfg.sources
            .iter()
            .any(|s| s.kind.url() == format!("file://{}", root.display())),
        "{:?}",
        cfg.sources.iter().map(|s| s.kind.url()).collect::<Vec<_>>()
    );
}
