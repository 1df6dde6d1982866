//! How fast is a git source fetch, next to the `git` command line?
//!
//! Builds two repositories with `git fast-import`, serves them with a
//! `git daemon` on a free 127.0.0.1 port (killed on drop, also on panic),
//! and measures
//!
//! 1. a no-change fetch of a 10,000-commit repository:
//!    `mooring::source::fetch` in process (a current-thread tokio runtime,
//!    the cache and artifact warmed by one fetch first; every timed fetch
//!    must give the same artifact, and the artifacts must be untouched)
//!    against `git fetch origin +refs/heads/main:refs/remotes/origin/main`
//!    in a bare clone, spawning the real `git`; for scale, the same in a
//!    shallow (`--depth 1`) clone, which is what mooring's cache is;
//! 2. the first fetch and export of a 5,000-file tree (100 directories of
//!    50 small YAML files, one commit): `source::fetch` into a fresh state
//!    directory against `git clone --depth 1` followed by
//!    `git archive HEAD | tar -x`, fresh directories every time; for
//!    scale, the same from a bare clone (no checkout: the same work as
//!    mooring's, fetch and export once).
//!
//! The rows of a scenario take turns (one run of each, then again), so
//! that a change in the machine's load weighs on all of them alike.
//!
//! Run with `cargo bench --bench git_fetch`. Targets (docs/performance.md):
//! (1) mooring no slower than 1.5× git, (2) within 2× of git.
//!
//! Without `--bench` (as under `cargo test --benches`) every row runs once,
//! as a smoke test. Environment: `MOORING_BENCH_FETCH_ITERS` (timed runs
//! of scenario 1, default 10), `MOORING_BENCH_CLONE_ITERS` (scenario 2,
//! default 5), `MOORING_BENCH_ITERS` (both, where the other two are not
//! set), `MOORING_BENCH_ONLY=1` or `2` (one scenario only, e.g. to profile
//! it), `TMPDIR` (where repositories, clones and state dirs go, e.g.
//! `/dev/shm` to leave the disk out). Every `git` the bench runs has
//! `GIT_CONFIG_GLOBAL=/dev/null`, `GIT_CONFIG_NOSYSTEM=1` and a temporary
//! `HOME`.
//!
//! No benchmark framework on purpose, as in `benches/validate.rs`: std, the
//! mooring library, tokio and tempfile.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mooring::config::{self, GitRef, Limits, SourceKind, Spanned};
use mooring::source::{self, Artifact};

use mooring_testkit::bench::{Mode, Row, table};
use mooring_testkit::gitserver::{Git, GitDaemon};

/// Commits in the history of scenario 1.
const COMMITS: usize = 10_000;
/// Files the history's commits take turns to change.
const HISTORY_FILES: usize = 8;
/// Scenario 2's tree: `DIRS` directories of `FILES_PER_DIR` files.
const DIRS: usize = 100;
const FILES_PER_DIR: usize = 50;

fn main() {
    let mode = Mode::from_args();
    let bench_mode = mode.bench;
    let fetch_iters = mode.iters(&["MOORING_BENCH_FETCH_ITERS"], 10);
    let clone_iters = mode.iters(&["MOORING_BENCH_CLONE_ITERS"], 5);
    // Untimed rounds of every row before the timed ones.
    let warmup = mode.warmup(1);

    let tmp = tempfile::tempdir().expect("create temp dir");
    let home = tmp.path().join("home");
    let srv = tmp.path().join("srv");
    std::fs::create_dir_all(&home).expect("create home");
    std::fs::create_dir_all(&srv).expect("create server root");
    let git = Git { home: home.clone() };

    println!("mooring git fetch benchmark");
    println!("{}", git.run(tmp.path(), &["--version"]));

    // The repositories, built in one `fast-import` each and repacked as a
    // server's would be.
    let start = Instant::now();
    git.fast_import(&srv.join("history.git"), &history_stream(COMMITS));
    git.fast_import(&srv.join("tree.git"), &tree_stream(DIRS, FILES_PER_DIR));
    println!(
        "built history.git ({COMMITS} commits, {HISTORY_FILES} files; {}) and tree.git ({} files in {DIRS} dirs, 1 commit; {}) in {:.1} s",
        pack_size(&srv.join("history.git")),
        DIRS * FILES_PER_DIR,
        pack_size(&srv.join("tree.git")),
        start.elapsed().as_secs_f64()
    );
    let daemon = GitDaemon::start(&home, &srv);
    println!("git daemon on 127.0.0.1:{}", daemon.port);
    if bench_mode {
        println!(
            "timing: scenario 1 {fetch_iters} runs per row, scenario 2 {clone_iters} runs per row, \
             the rows taking turns, after {warmup} untimed round"
        );
    } else {
        println!("smoke run (no --bench): one run per row; use `cargo bench --bench git_fetch` for numbers");
    }
    println!();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let fetch = |src: &config::Source, state: &Path| -> Artifact {
        rt.block_on(source::fetch(src, state, &[]))
            .unwrap_or_else(|e| panic!("mooring fetch of {} failed: {e}", src.kind.url()))
    };
    let only = std::env::var("MOORING_BENCH_ONLY").unwrap_or_default();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut ratios = Vec::new();

    // ---- 1. no-change fetch of a long history ----------------------------
    if only.is_empty() || only == "1" {
        let history_url = daemon.url("history.git");
        let history = git_source("history", &history_url);
        let state = tmp.path().join("state-history");
        let start = Instant::now();
        let warm = fetch(&history, &state);
        println!(
            "scenario 1: mooring's first fetch (shallow, into an empty state dir) took {:.0} ms: {}",
            start.elapsed().as_secs_f64() * 1000.0,
            warm.revision
        );
        let refspec = "+refs/heads/main:refs/remotes/origin/main";
        let full = tmp.path().join("git-full.git");
        git.run(
            tmp.path(),
            &["clone", "-q", "--bare", &history_url, path_str(&full)],
        );
        git.run(&full, &["fetch", "-q", "origin", refspec]);
        assert_eq!(
            git.run(&full, &["rev-parse", "refs/remotes/origin/main"]),
            warm.revision.rsplit(':').next().expect("revision"),
            "git and mooring disagree on main"
        );
        // mooring's cache is shallow (depth 1): the same for git, for scale.
        let shallow = tmp.path().join("git-shallow.git");
        git.run(
            tmp.path(),
            &[
                "clone",
                "-q",
                "--bare",
                "--depth",
                "1",
                &history_url,
                path_str(&shallow),
            ],
        );
        git.run(&shallow, &["fetch", "-q", "--depth", "1", "origin", refspec]);

        let before = Snapshot::take(&state);
        let mut contenders: Vec<Contender> = vec![
            Contender::new("  mooring source::fetch (in process)", |_| {
                let again = fetch(&history, &state);
                assert_eq!(again, warm, "a no-change fetch gave another artifact");
                None
            }),
            Contender::new("  git fetch (full bare clone)", |_| {
                git.run(&full, &["fetch", "-q", "origin", refspec]);
                None
            }),
            Contender::new("  git fetch --depth 1 (shallow bare clone)", |_| {
                git.run(&shallow, &["fetch", "-q", "--depth", "1", "origin", refspec]);
                None
            }),
        ];
        interleave(
            warmup,
            fetch_iters,
            &mut || tmp.path().to_path_buf(),
            &mut contenders,
            0,
        );
        rows.push(Row::new("1. no-change fetch, 10,000 commits", vec![]));
        rows.extend(contenders.into_iter().map(Contender::row));
        let after = Snapshot::take(&state);
        assert!(
            before.artifacts == after.artifacts,
            "no-change fetches touched the artifacts: {}",
            Snapshot::diff(&before.artifacts, &after.artifacts)
        );
        notes.push(if before.cache == after.cache {
            "scenario 1: no-change fetches left mooring's cache and artifacts untouched".to_string()
        } else {
            format!(
                "scenario 1: the cache CHANGED during no-change fetches: {}",
                Snapshot::diff(&before.cache, &after.cache)
            )
        });
        ratios.push(Ratio::of(&rows, "no-change fetch", 1.5, "the shallow clone"));
    }

    // ---- 2. first fetch and export of a large tree ------------------------
    if only.is_empty() || only == "2" {
        let tree_url = daemon.url("tree.git");
        let tree = git_source("tree", &tree_url);
        let runs = tmp.path().join("runs");
        std::fs::create_dir_all(&runs).expect("create runs dir");
        let mut run = 0;
        let mut fresh = || {
            run += 1;
            let dir = runs.join(format!("{run}"));
            std::fs::create_dir_all(&dir).expect("create run dir");
            dir
        };
        let mut contenders: Vec<Contender> = vec![
            Contender::new("  mooring source::fetch (fresh state dir)", |dir| {
                Some(fetch(&tree, &dir.join("state")).dir)
            }),
            Contender::new("  git clone --depth 1 + archive | tar -x", |dir| {
                git.run(dir, &["clone", "-q", "--depth", "1", &tree_url, "clone"]);
                git.archive_to(&dir.join("clone"), &dir.join("out"));
                Some(dir.join("out"))
            }),
            Contender::new("  git clone --bare --depth 1 + archive | tar", |dir| {
                git.run(
                    dir,
                    &["clone", "-q", "--bare", "--depth", "1", &tree_url, "clone.git"],
                );
                git.archive_to(&dir.join("clone.git"), &dir.join("out"));
                Some(dir.join("out"))
            }),
        ];
        interleave(
            warmup,
            clone_iters,
            &mut fresh,
            &mut contenders,
            DIRS * FILES_PER_DIR,
        );
        rows.push(Row::new("2. first fetch + export, 5,000 files", vec![]));
        rows.extend(contenders.into_iter().map(Contender::row));
        ratios.push(Ratio::of(&rows, "first fetch + export", 2.0, "the bare clone"));
    }
    drop(daemon);

    print!("{}", table(&rows));
    println!();
    for note in &notes {
        println!("{note}");
    }
    for r in &ratios {
        let ratio = r.mooring / r.git;
        let verdict = if !bench_mode {
            "not judged in a smoke run"
        } else if ratio <= r.target {
            "met"
        } else {
            "MISSED"
        };
        println!(
            "{}: mooring / git = {ratio:.2}× (medians; {}); target ≤ {}×: {verdict}",
            r.what, r.also, r.target
        );
    }
}

/// One ratio the targets are about.
struct Ratio {
    what: &'static str,
    mooring: f64,
    git: f64,
    target: f64,
    also: String,
}

impl Ratio {
    /// From the last three rows: mooring, git, and git's other way (`other`).
    fn of(rows: &[Row], what: &'static str, target: f64, other: &str) -> Ratio {
        let [mooring, git, alt] = &rows[rows.len() - 3..] else {
            unreachable!("three rows")
        };
        Ratio {
            what,
            mooring: mooring.median_ms(),
            git: git.median_ms(),
            target,
            also: format!("{:.2}× vs {other}", mooring.median_ms() / alt.median_ms()),
        }
    }
}

/// A git source on `main` of `url`, with the defaults a config would give.
fn git_source(name: &str, url: &str) -> config::Source {
    config::Source {
        name: Spanned::new(name.to_string(), (0, 0).into()),
        kind: SourceKind::Git {
            url: url.to_string(),
            reference: GitRef::Branch("main".into()),
        },
        interval: Duration::from_secs(60),
        timeout: Duration::from_secs(300),
        auth: None,
        ignore: Vec::new(),
        limits: Limits::default(),
        ca_file: None,
    }
}

// ---- the repositories --------------------------------------------------------

/// A `fast-import` stream of `commits` commits on `main`, each changing one
/// of a few YAML files, as an image automation would.
fn history_stream(commits: usize) -> Vec<u8> {
    let mut s = Vec::with_capacity(commits * 600);
    for i in 0..commits {
        let msg = format!("chore(images): update app-{} to 1.{i}.0\n", i % HISTORY_FILES);
        let _ = write!(
            s,
            "commit refs/heads/main\ncommitter Bench <bench@example.com> {} +0000\ndata {}\n{msg}",
            1_700_000_000 + i * 60,
            msg.len()
        );
        let first = if i == 0 {
            0..HISTORY_FILES
        } else {
            i % HISTORY_FILES..i % HISTORY_FILES + 1
        };
        for f in first {
            let path = format!("apps/app-{f}/deployment.yaml");
            file_command(&mut s, &path, &manifest(&format!("app-{f}"), i));
        }
        s.push(b'\n');
    }
    s
}

/// One commit of `dirs` × `files` small, distinct YAML files.
fn tree_stream(dirs: usize, files: usize) -> Vec<u8> {
    let mut s = Vec::with_capacity(dirs * files * 600);
    let msg = "a large tree\n";
    let _ = write!(
        s,
        "commit refs/heads/main\ncommitter Bench <bench@example.com> 1700000000 +0000\ndata {}\n{msg}",
        msg.len()
    );
    for d in 0..dirs {
        for f in 0..files {
            let name = format!("svc-{d:03}-{f:02}");
            file_command(
                &mut s,
                &format!("team-{d:03}/{name}.yaml"),
                &manifest(&name, d * files + f),
            );
        }
    }
    s.push(b'\n');
    s
}

fn file_command(s: &mut Vec<u8>, path: &str, content: &str) {
    let _ = write!(s, "M 100644 inline {path}\ndata {}\n{content}\n", content.len());
}

/// A small Deployment manifest (about 500 bytes).
fn manifest(name: &str, version: usize) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  labels:\n    app: {name}\n\
         spec:\n  replicas: {}\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    \
         metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n        - name: {name}\n          \
         image: ghcr.io/acme/{name}:1.{version}.0\n          ports:\n            - containerPort: 8080\n          \
         resources:\n            requests:\n              cpu: 100m\n              memory: 128Mi\n",
        1 + version % 5
    )
}

/// The size of a repository's packs, for the header.
fn pack_size(repo: &Path) -> String {
    let bytes: u64 = std::fs::read_dir(repo.join("objects/pack"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    format!("{:.1} MiB packed", bytes as f64 / (1024.0 * 1024.0))
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

// ---- checks --------------------------------------------------------------------

/// What a no-change fetch must not touch: the artifacts, and (to report)
/// the cache's files with their sizes and modification times.
struct Snapshot {
    artifacts: Vec<Entry>,
    cache: Vec<Entry>,
}

impl Snapshot {
    fn take(state: &Path) -> Snapshot {
        Snapshot {
            artifacts: walk(&state.join("artifacts"), usize::MAX),
            cache: walk(&state.join("git"), usize::MAX),
        }
    }

    /// The entries of `after` that are new or changed, and how many of
    /// `self` are gone.
    fn diff(before: &[Entry], after: &[Entry]) -> String {
        let changed: Vec<&str> = after
            .iter()
            .filter(|e| !before.contains(e))
            .map(|e| e.path.as_str())
            .collect();
        let gone = before
            .iter()
            .filter(|e| !after.iter().any(|a| a.path == e.path))
            .count();
        format!(
            "{} new or modified ({}), {gone} removed",
            changed.len(),
            changed.join(", ")
        )
    }
}

/// A file or directory found by [`walk`].
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    /// Relative to the walk's root.
    path: String,
    dir: bool,
    len: u64,
    modified: std::time::SystemTime,
}

/// Files and directories under `root` (to `depth` levels), sorted.
fn walk(root: &Path, depth: usize) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut pending = vec![(root.to_path_buf(), 0)];
    while let Some((dir, level)) = pending.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for entry in rd.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            let rel = path.strip_prefix(root).unwrap_or(&path).display().to_string();
            if meta.is_dir() && level + 1 < depth {
                pending.push((path, level + 1));
            }
            out.push(Entry {
                path: rel,
                dir: meta.is_dir(),
                len: if meta.is_dir() { 0 } else { meta.len() },
                modified: if meta.is_dir() {
                    std::time::UNIX_EPOCH
                } else {
                    meta.modified().unwrap_or(std::time::UNIX_EPOCH)
                },
            });
        }
    }
    out.sort();
    out
}

fn count_files(root: &Path) -> usize {
    walk(root, usize::MAX).iter().filter(|e| !e.dir).count()
}

// ---- measuring ---------------------------------------------------------------

type Run<'a> = Box<dyn FnMut(&Path) -> Option<PathBuf> + 'a>;

/// One row of a scenario: a run to time, given a fresh directory, giving
/// the directory whose files to count (untimed) or nothing.
struct Contender<'a> {
    name: &'static str,
    run: Run<'a>,
    samples: Vec<Duration>,
}

impl<'a> Contender<'a> {
    fn new(name: &'static str, run: impl FnMut(&Path) -> Option<PathBuf> + 'a) -> Contender<'a> {
        Contender {
            name,
            run: Box::new(run),
            samples: Vec::new(),
        }
    }

    fn row(mut self) -> Row {
        self.samples.sort();
        Row::new(self.name, self.samples)
    }
}

/// `warmup` untimed rounds, then `iters` timed ones; each round runs every
/// contender once, in turn, so that a change in the machine's load weighs
/// on all of them alike. Each run gets a directory from `fresh` (made
/// untimed); when a run names an output directory, it must hold `files`
/// files.
///
/// Run directories are kept until the bench ends: on ext4 without a
/// journal, creating files shortly after deleting many makes the kernel
/// scan for inodes that were not recently deleted (`recently_deleted` in
/// `find_inode_bit`), which can cost seconds per 5,000 files; removing the
/// previous run's output would make the next run pay for it.
fn interleave(
    warmup: usize,
    iters: usize,
    fresh: &mut dyn FnMut() -> PathBuf,
    contenders: &mut [Contender],
    files: usize,
) {
    for round in 0..warmup + iters {
        for c in contenders.iter_mut() {
            let dir = fresh();
            let start = Instant::now();
            let out = (c.run)(&dir);
            let elapsed = start.elapsed();
            if round >= warmup {
                c.samples.push(elapsed);
            }
            if let Some(out) = out {
                assert_eq!(
                    count_files(&out),
                    files,
                    "{}: files in {}",
                    c.name.trim(),
                    out.display()
                );
            }
        }
    }
}
