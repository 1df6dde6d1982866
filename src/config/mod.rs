//! Configuration: takes the text of a `mooring.kdl` file and gives either a
//! typed, validated [`Config`] (plus warnings) or every problem in the file
//! as [`Diagnostics`]. Also edits the file in place (`suspend`/`resume`)
//! and describes the language as a schema.

pub mod diagnostic;
pub mod diff;
pub mod edit;
pub mod graph;
pub mod model;
pub mod parse;
pub mod schema;
pub mod syntax;
pub mod template;
pub mod validate;
pub mod value;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use model::*;

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read config file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}", diagnostics.summary())]
    Invalid { diagnostics: Diagnostics },
}

impl Error {
    /// A read error may go away (the file is being replaced); an invalid
    /// file stays invalid until someone edits it.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Read { .. })
    }
}

/// A valid config and the warnings it came with.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Diagnostics,
}

/// Read and check the file at `path`.
pub fn load(path: &Path) -> Result<Loaded, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    from_str(path, text, jiff::Timestamp::now())
}

/// Check `text` as if read from `path` (used for messages only). `now`
/// decides whether suspensions have expired.
pub fn from_str(path: &Path, text: String, now: jiff::Timestamp) -> Result<Loaded, Error> {
    let (config, diagnostics) = check(path, text, now);
    match config {
        Some(config) if !diagnostics.has_errors() => Ok(Loaded {
            config,
            warnings: diagnostics,
        }),
        _ => Err(Error::Invalid { diagnostics }),
    }
}

/// Every problem in `text`, and the decoded config if the text was
/// syntactically KDL at all (it may still have errors).
pub fn check(path: &Path, text: String, now: jiff::Timestamp) -> (Option<Config>, Diagnostics) {
    let mut diags = Vec::new();
    let config = match syntax::parse(&text) {
        Err(syntax) => {
            diags = syntax;
            None
        }
        Ok(doc) => {
            parse::check_shape(&doc, &text, &mut diags);
            let mut cfg = parse::decode(&doc, &text, &mut diags);
            drop(doc);
            diags.extend(validate::validate(&cfg, now));
            let base = path.parent().unwrap_or(Path::new(""));
            resolve_paths(
                &mut cfg,
                base,
                std::env::var_os("HOME").map(PathBuf::from).as_deref(),
            );
            Some(cfg)
        }
    };
    (config, Diagnostics::new(path, Arc::new(text), diags))
}

/// The config file to use: `-c`, else `$MOORING_CONFIG`, else
/// `./mooring.kdl` if it exists, else `/etc/mooring/mooring.kdl`.
pub fn resolve_path(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("MOORING_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let local = PathBuf::from("mooring.kdl");
    if local.exists() {
        return local;
    }
    PathBuf::from("/etc/mooring/mooring.kdl")
}

/// Make the config independent of the working directory: relative paths
/// (and `file://` URLs with a relative path) are taken relative to the
/// directory of the config file, and `~/` to the home directory.
pub fn resolve_paths(cfg: &mut Config, base: &Path, home: Option<&Path>) {
    let fix = |p: &mut PathBuf| *p = resolve_path_from(p, base, home);
    fix(&mut cfg.agent.state_dir);
    if let Some(f) = &mut cfg.agent.log_file {
        fix(&mut f.dir);
    }
    if let Some(t) = &mut cfg.agent.api_token_file {
        fix(t);
    }
    for c in &mut cfg.clusters {
        for p in [&mut c.kubeconfig, &mut c.ca_file].into_iter().flatten() {
            fix(p);
        }
    }
    for app in &mut cfg.apps {
        if let Some(s) = &mut app.sops {
            fix(&mut s.age_key_file);
        }
        // A relative file is in the app's source; only `~/` is the host's.
        for f in &mut app.substitute_from {
            if let VarSource::File(p) = &mut f.from
                && p.starts_with("~")
            {
                fix(p);
            }
        }
    }
    let fix_auth = |auth: &mut Option<Auth>| {
        if let Some(a) = auth {
            for p in [
                &mut a.password_file,
                &mut a.token_file,
                &mut a.ssh_key,
                &mut a.known_hosts,
                &mut a.docker_config,
            ]
            .into_iter()
            .flatten()
            {
                fix(p);
            }
        }
    };
    for s in &mut cfg.sources {
        fix_auth(&mut s.auth);
        if let Some(ca) = &mut s.ca_file {
            fix(ca);
        }
        if let SourceKind::Git { url, .. } = &mut s.kind
            && let Some(rest) = url.strip_prefix("file://")
            && !rest.starts_with('/')
            // file://localhost/srv/x is the absolute /srv/x.
            && !rest.starts_with("localhost/")
        {
            let abs = resolve_path_from(Path::new(rest), base, home);
            *url = format!("file://{}", abs.display());
        }
    }
    for a in &mut cfg.apps {
        if let Target::Dir(d) = &mut a.target {
            fix(d);
        }
    }
    for i in &mut cfg.images {
        fix_auth(&mut i.auth);
        if let Some(ca) = &mut i.ca_file {
            fix(ca);
        }
    }
    for r in &mut cfg.receivers {
        fix(&mut r.secret_file);
    }
    for n in &mut cfg.notifications {
        fix(&mut n.url_file);
        for p in [&mut n.token_file, &mut n.ca_file].into_iter().flatten() {
            fix(p);
        }
    }
}

fn resolve_path_from(p: &Path, base: &Path, home: Option<&Path>) -> PathBuf {
    if let (Ok(rest), Some(home)) = (p.strip_prefix("~"), home) {
        return home.join(rest);
    }
    if p.is_absolute() {
        return p.to_path_buf();
    }
    let base = if base.is_absolute() {
        base.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(base))
            .unwrap_or_else(|_| base.to_path_buf())
    };
    normalize(&base.join(p))
}

/// Drop `.` and resolve `..` lexically, so paths in status read cleanly.
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_follow_the_config_file() {
        let text = r#"
            agent { state-dir "state"; api-token-file "~/token" }
            source "repo" { git "file://.."; auth { token-file "/abs/token" } }
            app "a" { source "repo"; target dir="../out" }
        "#;
        let loaded = from_str(Path::new("/srv/cfg/x.kdl"), text.into(), jiff::Timestamp::now())
            .unwrap_or_else(|e| panic!("{e}"));
        let cfg = loaded.config;
        assert_eq!(cfg.agent.state_dir, Path::new("/srv/cfg/state"));
        assert_eq!(cfg.sources[0].kind.url(), "file:///srv");
        let token = cfg.sources[0].auth.as_ref().and_then(|a| a.token_file.as_deref());
        assert_eq!(token, Some(Path::new("/abs/token")));
        let home = resolve_path_from(
            Path::new("~/token"),
            Path::new("/srv"),
            Some(Path::new("/home/u")),
        );
        assert_eq!(home, Path::new("/home/u/token"));
        assert_eq!(cfg.apps[0].target, Target::Dir(PathBuf::from("/srv/out")));
    }

    #[test]
    fn cluster_lists_and_default_cluster() {
        let load = |text: String| from_str(Path::new("m.kdl"), text, jiff::Timestamp::now());
        let base = "cluster \"old\" {}\ncluster \"new\" {}\nsource \"s\" { git \"https://h/r.git\" }\n";
        let cfg = load(format!(
            "agent {{ default-cluster \"new\" }}\n{base}\
             app \"a\" {{ source \"s\"; cluster \"old\" \"new\" }}\n\
             app \"b\" {{ source \"s\" }}\n\
             app \"c\" {{ source \"s\"; target dir=\"/o\" }}\n"
        ))
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
        let names = |i: usize| {
            cfg.app_clusters(&cfg.apps[i])
                .map(|l| l.iter().map(|n| n.as_str()).collect::<Vec<_>>())
        };
        assert_eq!(names(0), Some(vec!["old", "new"]));
        assert_eq!(names(1), Some(vec!["new"]), "default-cluster");
        assert_eq!(names(2), None, "target dir=");
        let cfg = load(format!("{base}app \"b\" {{ source \"s\" }}\n"))
            .unwrap_or_else(|e| panic!("{e}"))
            .config;
        assert_eq!(cfg.app_clusters(&cfg.apps[0]).map(<[_]>::len), Some(0));

        // A name twice, in an app's list or in default-cluster; a name no
        // cluster has.
        let problems = |text: String| match load(text) {
            Ok(_) => panic!("accepted"),
            Err(Error::Invalid { diagnostics }) => diagnostics
                .items
                .iter()
                .map(|d| (d.code, d.message.clone(), d.help.clone().unwrap_or_default()))
                .collect::<Vec<_>>(),
            Err(e) => panic!("{e}"),
        };
        let p = problems(format!(
            "{base}app \"a\" {{ source \"s\"; cluster \"old\" \"new\" \"old\" }}\n"
        ));
        assert_eq!(
            p,
            [(
                diagnostic::code::INVALID_VALUE,
                "app \"a\" names cluster \"old\" twice".to_string(),
                "name each cluster once: remove this \"old\"".to_string()
            )]
        );
        let p = problems(format!("agent {{ default-cluster \"new\" \"new\" }}\n{base}"));
        assert_eq!(p[0].1, "`default-cluster` names cluster \"new\" twice");
        let p = problems(format!("agent {{ default-cluster \"gone\" }}\n{base}"));
        assert_eq!(p[0].0, diagnostic::code::UNKNOWN_REFERENCE, "{p:?}");
        let p = problems(format!(
            "{base}app \"a\" {{ source \"s\"; cluster \"old\"; target dir=\"/o\" }}\n"
        ));
        assert_eq!(p[0].0, diagnostic::code::CONFLICTING_OPTIONS, "{p:?}");
    }

    #[test]
    fn substitute_flags_and_an_empty_substitute() {
        let load = |app: &str| {
            let text = format!("source \"s\" {{ git \"https://h/r.git\" }}\n{app}\n");
            from_str(Path::new("m.kdl"), text, jiff::Timestamp::now()).unwrap_or_else(|e| panic!("{e}"))
        };
        let loaded = load(r#"app "a" { source "s"; substitute strict=#true { x "1" } }"#);
        let app = &loaded.config.apps[0];
        assert!(app.substitute_strict && !app.substitute_always);
        assert!(loaded.warnings.items.is_empty());
        let loaded = load(r#"app "a" { source "s"; substitute always=#true }"#);
        assert!(loaded.config.apps[0].substitute_always);
        assert!(loaded.warnings.items.is_empty());
        // As in Flux, no variable turns nothing on: worth a warning.
        let loaded = load(r#"app "a" { source "s"; substitute strict=#true {} }"#);
        let codes: Vec<_> = loaded.warnings.items.iter().map(|d| d.code).collect();
        assert_eq!(codes, [diagnostic::code::NOT_APPLICABLE]);
    }
}
