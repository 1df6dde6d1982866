//! The shared Helm conformance corpus (`../shared/conformance/helm`) with
//! its charts' dependencies in place. The corpus ships
//! kube-prometheus-stack without the subcharts its Chart.yaml lists (helm
//! itself refuses it so) but has most of them as sibling charts at the
//! versions asked for. `assemble` builds a root beside the corpus, in a temp
//! dir: `cases` and every complete chart are symlinks; a chart with missing
//! dependencies is copied, its missing dependencies copied in from the
//! siblings whose name and version match, and any the corpus lacks taken out
//! of Chart.yaml (rewritten as JSON, YAML both tools read alike). Used by
//! the conformance test and the helm bench.

use std::path::{Path, PathBuf};

pub struct Assembled {
    /// A corpus root: `cases/`, `charts/`; run `runner.py ROOT …` on it.
    pub root: PathBuf,
    /// `(chart, dependency)` pairs taken out: the corpus does not have them.
    pub dropped: Vec<(String, String)>,
    _tmp: tempfile::TempDir,
}

/// The corpus at `../shared/conformance/helm` beside the repository (or
/// `$MOORING_HELM_CORPUS`), when it is there.
pub fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("MOORING_HELM_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::support::repo_root().join("../shared/conformance/helm"));
    dir.join("runner.py").is_file().then_some(dir)
}

pub fn assemble(corpus: &Path) -> Assembled {
    let tmp = tempfile::tempdir().expect("create temp dir");
    let root = tmp.path().to_path_buf();
    let charts = corpus.join("charts");
    std::fs::create_dir_all(root.join("charts")).expect("create charts dir");
    std::os::unix::fs::symlink(corpus.join("cases"), root.join("cases")).expect("symlink cases");
    let mut dropped = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&charts)
        .expect("read the corpus's charts")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let from = charts.join(&name);
        let to = root.join("charts").join(&name);
        let meta_path = from.join("Chart.yaml");
        let Ok(text) = std::fs::read_to_string(&meta_path) else {
            continue;
        };
        let mut meta: serde_json::Value = serde_saphyr::from_str(&text).expect("Chart.yaml is YAML");
        let deps = meta["dependencies"].as_array().cloned().unwrap_or_default();
        let missing: Vec<&serde_json::Value> = deps
            .iter()
            .filter(|d| !vendored(&from.join("charts"), d["name"].as_str().unwrap_or_default()))
            .collect();
        if missing.is_empty() {
            std::os::unix::fs::symlink(&from, &to).expect("symlink chart");
            continue;
        }
        copy_dir(&from, &to);
        let mut gone = Vec::new();
        for dep in missing {
            let dep_name = dep["name"].as_str().unwrap_or_default().to_string();
            let sibling = charts.join(&dep_name);
            if version_of(&sibling).is_some_and(|v| Some(v.as_str()) == dep["version"].as_str()) {
                copy_dir(&sibling, &to.join("charts").join(&dep_name));
            } else {
                gone.push(dep_name);
            }
        }
        if !gone.is_empty() {
            if let Some(list) = meta["dependencies"].as_array_mut() {
                list.retain(|d| !gone.iter().any(|g| Some(g.as_str()) == d["name"].as_str()));
            }
            let json = serde_json::to_string_pretty(&meta).expect("Chart.yaml as JSON");
            std::fs::write(to.join("Chart.yaml"), json).expect("write Chart.yaml");
            dropped.extend(gone.into_iter().map(|g| (name.clone(), g)));
        }
    }
    Assembled {
        root,
        dropped,
        _tmp: tmp,
    }
}

/// A directory or archive for `name` in a chart's `charts/`.
fn vendored(charts: &Path, name: &str) -> bool {
    charts.join(name).is_dir()
        || std::fs::read_dir(charts).is_ok_and(|dir| {
            dir.flatten().any(|e| {
                let file = e.file_name().to_string_lossy().into_owned();
                file.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|rest| rest.ends_with(".tgz"))
            })
        })
}

fn version_of(chart: &Path) -> Option<String> {
    let text = std::fs::read_to_string(chart.join("Chart.yaml")).ok()?;
    let meta: serde_json::Value = serde_saphyr::from_str(&text).ok()?;
    meta["version"].as_str().map(str::to_string)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let path = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            copy_dir(&path, &target);
        } else if kind.is_file() {
            std::fs::copy(&path, &target).expect("copy file");
            // The corpus is read-only; the copy need not be.
            let mut perms = std::fs::metadata(&target).expect("metadata").permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&target, perms).expect("chmod");
        } else if kind.is_symlink() {
            let link = std::fs::read_link(&path).expect("read link");
            std::os::unix::fs::symlink(link, &target).expect("copy symlink");
        }
    }
}

/// `helm` on PATH when it is 3.17.2, the version the corpus was made with.
pub fn helm_3_17() -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    let helm = std::env::split_paths(&paths)
        .map(|d| d.join("helm"))
        .find(|p| p.is_file())?;
    let out = std::process::Command::new(&helm)
        .args(["version", "--template", "{{.Version}}"])
        .output()
        .ok()?;
    (out.stdout == b"v3.17.2").then_some(helm)
}
