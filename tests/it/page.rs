//! The status page in a real browser: Debian's `chromium`, headless, loads
//! the page of a running agent (`--dump-dom` gives the DOM after the page's
//! script ran), finds the objects and the graph, sees a suspension and its
//! reason appear after `mooring suspend`, and takes screenshots (kept in
//! the test's temp dir and copied under `target/page/` for a person to look
//! at).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::agent::{Fixture, app, object, state};
use crate::support::skip;

const LONG: Duration = Duration::from_secs(30);

/// A reason written to trip a page that hands data to the HTML parser.
const HOSTILE: &str = r#"<img src=x onerror="document.title='owned'"> leak & "hunt""#;

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

struct Browser {
    exe: PathBuf,
    profile: tempfile::TempDir,
}

impl Browser {
    /// `chromium --headless … ARGS URL`, killed if it takes longer than a
    /// minute; its standard output.
    fn run(&self, args: &[&str], url: &str) -> String {
        let mut child = Command::new(&self.exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--hide-scrollbars",
                "--mute-audio",
                // Time to run the script: its fetches and a poll or two.
                "--virtual-time-budget=5000",
            ])
            .arg(format!("--user-data-dir={}", self.profile.path().display()))
            .args(args)
            .arg(url)
            .env("HOME", self.profile.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                _ => {
                    let _ = child.kill();
                    break;
                }
            }
        }
        let out = child.wait_with_output().expect("chromium output");
        assert!(
            out.status.success(),
            "chromium failed ({})\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn dom(&self, url: &str) -> String {
        self.run(&["--dump-dom"], url)
    }

    /// Load the page until `pred` holds for its DOM, at most `within`.
    #[track_caller]
    fn wait(&self, url: &str, within: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let dom = self.dom(url);
            if pred(&dom) {
                return dom;
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed {what}; last DOM:\n{dom}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn screenshot(&self, url: &str, path: &Path, size: &str) {
        let shot = format!("--screenshot={}", path.display());
        let window = format!("--window-size={size}");
        self.run(&[&shot, &window], url);
        let png = std::fs::read(path).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", path.display()));
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "not a PNG: {}",
            path.display()
        );
        assert!(png.len() > 10_000, "a blank screenshot? {} bytes", png.len());
    }
}

/// The article of one object in the DOM, as chromium serialises it.
fn card<'a>(dom: &'a str, key: &str) -> Option<&'a str> {
    let start = dom.find(&format!("<article class=\"object\" data-key=\"{key}\""))?;
    let end = dom[start..].find("</article>")? + start;
    Some(&dom[start..end])
}

#[test]
fn the_page_shows_objects_the_graph_and_a_suspension_live() {
    let Some(exe) = chromium() else {
        skip(
            "the_page_shows_objects_the_graph_and_a_suspension_live",
            "chromium is not installed (apt-get install chromium)",
        );
        return;
    };
    let browser = Browser {
        exe,
        profile: tempfile::tempdir().expect("profile dir"),
    };
    let f = Fixture::new();
    let api = app("api", "settings").replace("target", "depends-on \"web\"\n    target");
    let agent = f.start(&format!("{}{api}{}", app("web", "web"), app("broken", "missing")));
    agent.wait(LONG, "web and api ready, broken failed", |s| {
        state(s, "app", "web") == "ready"
            && state(s, "app", "api") == "ready"
            && matches!(state(s, "app", "broken").as_str(), "failed" | "stalled")
    });
    let url = format!("http://127.0.0.1:{}/", f.port);

    let dom = browser.wait(&url, LONG, "every object", |d| {
        ["source/repo", "app/web", "app/api", "app/broken"]
            .iter()
            .all(|k| card(d, k).is_some())
    });
    let web = card(&dom, "app/web").unwrap_or_default();
    assert!(web.contains("data-state=\"ready\""), "{web}");
    assert!(web.contains("main@sha1:"), "the revision: {web}");
    assert!(web.contains("Reconcile now"), "{web}");
    let broken = card(&dom, "app/broken").unwrap_or_default();
    assert!(broken.contains("Last error"), "the error, whole: {broken}");
    // The graph: a node per object and an edge per read (repo → web, api,
    // broken; web → api).
    for key in ["source/repo", "app/web", "app/api", "app/broken"] {
        assert!(
            dom.contains(&format!("<g class=\"node\" data-key=\"{key}\"")),
            "no graph node {key}:\n{dom}"
        );
    }
    assert_eq!(dom.matches("<path class=\"edge\"").count(), 4, "{dom}");
    assert!(dom.contains("class=\"reload-ok\""), "{dom}");

    f.env
        .run(&[
            "suspend",
            "app/web",
            "--reason",
            HOSTILE,
            "--until",
            "2h",
            "-c",
            "mooring.kdl",
        ])
        .expect_code(0);
    agent.wait(LONG, "app/web suspended", |s| {
        object(s, "app", "web").is_some_and(|o| o["suspended"]["reason"] == HOSTILE)
    });
    // The reason arrives as text: escaped in the serialised DOM, no <img>.
    let escaped = "&lt;img src=x onerror=\"document.title='owned'\"&gt; leak &amp; \"hunt\"";
    let dom = browser.wait(&url, LONG, "the suspension and its reason", |d| {
        card(d, "app/web").is_some_and(|c| c.contains("data-state=\"suspended\"") && c.contains(escaped))
    });
    let web = card(&dom, "app/web").unwrap_or_default();
    assert!(web.contains("until"), "the expiry: {web}");
    assert!(
        web.contains("disabled"),
        "no reconcile of a suspended object: {web}"
    );
    assert!(
        !dom.contains("<img src=\"x\""),
        "the reason became markup:\n{dom}"
    );
    assert!(
        dom.contains("<title>mooring</title>"),
        "the page's title changed:\n{dom}"
    );

    // Screenshots, wide and phone-sized.
    let shots = crate::support::repo_root().join("target/page");
    let _ = std::fs::create_dir_all(&shots);
    for (name, size) in [
        ("status-page.png", "1280,1100"),
        ("status-page-phone.png", "390,1600"),
    ] {
        let path = f.path().join(name);
        browser.screenshot(&url, &path, size);
        let _ = std::fs::copy(&path, shots.join(name));
    }
}
