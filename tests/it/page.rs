//! The status page in a real browser: Debian's `chromium`, headless, loads
//! the page of a running agent (`--dump-dom` gives the DOM after the page's
//! script ran), finds the objects and the graph, sees a suspension and its
//! reason appear after `mooring suspend`, and takes screenshots (kept in
//! the test's temp dir and copied under `target/page/` for a person to look
//! at). A second test drives the page over the DevTools protocol to press
//! "Reconcile now" against an agent that needs a token.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::agent::{Fixture, app, object, state};
use crate::support::{output_within, skip, wait_for};

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

/// `chromium` headless, quiet, with its profile (and HOME) in `profile`.
fn headless(exe: &Path, profile: &Path) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .env("HOME", profile);
    cmd
}

struct Browser {
    exe: PathBuf,
    profile: tempfile::TempDir,
}

impl Browser {
    /// `chromium --headless … ARGS URL`, killed if it takes longer than a
    /// minute; its standard output.
    fn run(&self, args: &[&str], url: &str) -> String {
        let mut cmd = headless(&self.exe, self.profile.path());
        cmd.args([
            "--disable-component-update",
            "--hide-scrollbars",
            "--mute-audio",
            // Time to run the script: its fetches and a poll or two.
            "--virtual-time-budget=5000",
        ])
        .args(args)
        .arg(url);
        let run = output_within(&mut cmd, Duration::from_secs(60))
            .unwrap_or_else(|run| panic!("chromium still running after a minute: {run:?}"));
        run.expect_code(0);
        run.stdout
    }

    fn dom(&self, url: &str) -> String {
        self.run(&["--dump-dom"], url)
    }

    /// Load the page until `pred` holds for its DOM, at most `within`.
    #[track_caller]
    fn wait(&self, url: &str, within: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        wait_for(within, &format!("the page to show {what}"), || {
            let dom = self.dom(url);
            if pred(&dom) {
                Ok(dom)
            } else {
                Err(format!("last DOM:\n{dom}"))
            }
        })
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

/// Chromium driven over the DevTools protocol on a pipe
/// (`--remote-debugging-pipe`: commands on fd 3, answers on fd 4, each a
/// JSON text ended by NUL), for what needs clicks and typing.
struct Devtools {
    child: std::process::Child,
    to: std::io::PipeWriter,
    from: std::sync::mpsc::Receiver<serde_json::Value>,
    next: u64,
    session: String,
    _profile: tempfile::TempDir,
}

impl Devtools {
    fn open(exe: &Path, url: &str) -> Devtools {
        use std::os::fd::AsRawFd as _;
        use std::os::unix::process::CommandExt as _;
        let profile = tempfile::tempdir().expect("profile dir");
        let (cmd_read, to) = std::io::pipe().expect("pipe");
        let (from_read, answer_write) = std::io::pipe().expect("pipe");
        let (r, w) = (cmd_read.as_raw_fd(), answer_write.as_raw_fd());
        let mut cmd = headless(exe, profile.path());
        cmd.arg("--remote-debugging-pipe")
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork
        // and exec; dup2 onto the fd itself would keep FD_CLOEXEC, so the
        // flag is cleared on 3 and 4 explicitly.
        unsafe {
            cmd.pre_exec(move || {
                let (r2, w2) = (libc::dup(r), libc::dup(w));
                if r2 < 0 || w2 < 0 || libc::dup2(r2, 3) < 0 || libc::dup2(w2, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                for fd in [3, 4] {
                    libc::fcntl(fd, libc::F_SETFD, 0);
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start chromium");
        drop((cmd_read, answer_write));
        let (tx, from) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            let mut reader = std::io::BufReader::new(from_read);
            let mut message = Vec::new();
            while reader.read_until(0, &mut message).is_ok_and(|n| n > 0) {
                message.pop_if(|b| *b == 0);
                if let Ok(v) = serde_json::from_slice(&message)
                    && tx.send(v).is_err()
                {
                    return;
                }
                message.clear();
            }
        });
        let mut d = Devtools {
            child,
            to,
            from,
            next: 0,
            session: String::new(),
            _profile: profile,
        };
        let targets = d.call("Target.getTargets", serde_json::json!({}));
        let page = targets["targetInfos"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["targetId"].as_str())
            .unwrap_or_else(|| panic!("no page target: {targets}"))
            .to_string();
        let attached = d.call(
            "Target.attachToTarget",
            serde_json::json!({ "targetId": page, "flatten": true }),
        );
        d.session = attached["sessionId"].as_str().expect("a session").to_string();
        d
    }

    fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        use std::io::Write as _;
        self.next += 1;
        let id = self.next;
        let mut msg = serde_json::json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            msg["sessionId"] = self.session.clone().into();
        }
        let mut bytes = serde_json::to_vec(&msg).expect("JSON");
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to chromium");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let answer = self
                .from
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no answer to {method}: {e}"));
            if answer["id"] == id {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    fn eval(&mut self, expression: &str) -> serde_json::Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    #[track_caller]
    fn wait(&mut self, expression: &str, what: &str) -> serde_json::Value {
        wait_for(LONG, &format!("the page to show {what} ({expression})"), || {
            let v = self.eval(expression);
            if v.is_null() || v == false || v == "" {
                Err(format!("it gave {v}"))
            } else {
                Ok(v)
            }
        })
    }
}

impl Drop for Devtools {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn reconcile_now_asks_for_the_token_and_keeps_it_in_the_tab() {
    let Some(exe) = chromium() else {
        skip(
            "reconcile_now_asks_for_the_token_and_keeps_it_in_the_tab",
            "chromium is not installed (apt-get install chromium)",
        );
        return;
    };
    let f = Fixture::new();
    f.env.write("token", "s3cret-token\n");
    let config = f
        .config(&app("web", "web"))
        .replace("agent {\n", "agent {\n    api-token-file \"token\"\n");
    f.env.write("mooring.kdl", &config);
    let agent = f.spawn(&[]);
    agent.wait(LONG, "app/web ready", |s| state(s, "app", "web") == "ready");
    let runs = |s: &serde_json::Value| crate::agent::runs(s, "app", "web");
    let before = runs(&agent.status());

    let mut page = Devtools::open(&exe, &format!("http://127.0.0.1:{}/", f.port));
    let button = r#"document.querySelector('article[data-key="app/web"] button.reconcile')"#;
    let result = r#"document.querySelector('article[data-key="app/web"] .result').textContent"#;
    page.wait(&format!("{button} !== null"), "the reconcile button");

    // Without a token the agent refuses, and the page asks for one.
    page.eval(&format!("{button}.click()"));
    page.wait(
        &format!("{result} === 'this agent needs an API token'"),
        "the refusal",
    );
    assert_eq!(page.eval("document.getElementById('token-form').hidden"), false);
    assert_eq!(runs(&agent.status()), before, "ran without a token");

    // A wrong token is refused too.
    page.eval(
        "document.getElementById('token-input').value = 'wrong'; \
         document.getElementById('token-form').requestSubmit()",
    );
    page.eval(&format!("{button}.click()"));
    page.wait(
        &format!("{result} === 'the agent refused this token'"),
        "the wrong token refused",
    );

    // The right one: accepted, and the agent runs the app.
    page.eval(
        "document.getElementById('token-input').value = 's3cret-token'; \
         document.getElementById('token-form').requestSubmit()",
    );
    assert_eq!(page.eval("document.getElementById('token-form').hidden"), true);
    page.eval(&format!("{button}.click()"));
    page.wait(
        &format!("{result} === 'accepted: it runs now'"),
        "the reconcile accepted",
    );
    let s = agent.wait(LONG, "app/web ran again", |s| runs(s) > before);
    let web = object(&s, "app", "web").expect("app/web");
    assert_eq!(web["trigger"], "manual", "{web}");

    // The keyboard's place survives the redraws of the poll.
    page.eval(&format!("window.before = {button}; {button}.focus()"));
    page.wait(&format!("{button} !== window.before"), "a redraw");
    assert_eq!(page.eval(&format!("document.activeElement === {button}")), true);

    // Kept in the tab's session storage, not in the URL or the page.
    assert_eq!(
        page.eval("sessionStorage.getItem('mooring.token')"),
        "s3cret-token"
    );
    assert_eq!(page.eval("localStorage.length"), 0);
    let href = page.eval("location.href");
    assert!(!href.as_str().unwrap_or_default().contains("s3cret"), "{href}");
    let html = page.eval("document.documentElement.outerHTML");
    assert!(
        !html.as_str().unwrap_or_default().contains("s3cret"),
        "the token is in the DOM"
    );
}
