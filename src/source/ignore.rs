//! Which files of an artifact are ignored, by Flux source-controller's
//! rules (fluxcd/pkg `sourceignore`, whose matcher is go-git's gitignore):
//!
//! - patterns come from every `.sourceignore` in the tree (each applies
//!   below its own directory; read root first, then subdirectories in
//!   name order, depth first, `.git` skipped), then from the source's
//!   `ignore`, which come last and so win;
//! - without any pattern at all, Flux's defaults apply: VCS files
//!   (`.git/`, `.gitignore`, `.gitmodules`, `.gitattributes`), images and
//!   archives (`*.jpg`, `*.jpeg`, `*.gif`, `*.png`, `*.wmv`, `*.flv`,
//!   `*.tar.gz`, `*.zip`), CI configuration (`.github/`, `.circleci/`,
//!   `.travis.yml`, `.gitlab-ci.yml`, `appveyor.yml`, `.drone.yml`,
//!   `cloudbuild.yaml`, `codeship-services.yml`, `codeship-steps.yml`) and
//!   `**/.goreleaser.yml`, `**/.sops.yaml`, `**/.flux.yaml`; with any
//!   pattern, only the VCS ones stay;
//! - every file is judged on its own path by the last pattern that
//!   matches it, so `!keep.yaml` brings back a file under an ignored
//!   directory (git itself would not look inside that directory);
//! - a pattern without `/` matches any component of the path (`secret`
//!   ignores `a/secret/b.yaml`), one with `/` is anchored at its
//!   directory and also matches everything below what it names; `**`
//!   spans directories; components match as Go's `filepath.Match`.
//!
//! Patterns come from the repository, which is hostile: at most
//! [`MAX_PATTERNS`] are read, from at most [`MAX_FILE_BYTES`] per file.

use std::fs;
use std::io::Read as _;
use std::path::Path;

use super::Error;

/// The most patterns a tree may hold.
pub const MAX_PATTERNS: usize = 10_000;
/// The largest `.sourceignore` read.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

const IGNORE_FILE: &str = ".sourceignore";
const VCS: &[&str] = &[".git/", ".gitignore", ".gitmodules", ".gitattributes"];
const DEFAULTS: &[&str] = &[
    "*.jpg",
    "*.jpeg",
    "*.gif",
    "*.png",
    "*.wmv",
    "*.flv",
    "*.tar.gz",
    "*.zip",
    ".github/",
    ".circleci/",
    ".travis.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    ".drone.yml",
    "cloudbuild.yaml",
    "codeship-services.yml",
    "codeship-steps.yml",
    "**/.goreleaser.yml",
    "**/.sops.yaml",
    "**/.flux.yaml",
];

/// One gitignore line, scoped to the directory it was read in.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    /// The directory (components below the root) it applies under.
    domain: Vec<String>,
    parts: Vec<String>,
    inclusion: bool,
    dir_only: bool,
    /// Holds a `/`: anchored at the domain.
    anchored: bool,
}

impl Pattern {
    fn parse(line: &str, domain: &[String]) -> Pattern {
        let (inclusion, mut p) = match line.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        if !p.ends_with("\\ ") {
            p = p.trim_end_matches(' ');
        }
        let dir_only = p.ends_with('/');
        if dir_only {
            p = &p[..p.len() - 1];
        }
        Pattern {
            domain: domain.to_vec(),
            parts: p.split('/').map(str::to_string).collect(),
            inclusion,
            dir_only,
            anchored: p.contains('/'),
        }
    }

    /// `Some(true)`: ignore; `Some(false)`: keep; `None`: no opinion.
    fn judge(&self, path: &[&str], is_dir: bool) -> Option<bool> {
        if path.len() <= self.domain.len() || self.domain.iter().zip(path).any(|(d, p)| d != p) {
            return None;
        }
        let path = &path[self.domain.len()..];
        let matched = if self.anchored {
            self.glob_match(path, is_dir)
        } else {
            self.name_match(path, is_dir)
        };
        matched.then_some(!self.inclusion)
    }

    fn name_match(&self, path: &[&str], is_dir: bool) -> bool {
        let pattern = &self.parts[0];
        for (i, name) in path.iter().enumerate() {
            match crate::gomatch::match_strict(pattern, name) {
                Err(_) => return false,
                Ok(false) => continue,
                Ok(true) => return !(self.dir_only && !is_dir && i == path.len() - 1),
            }
        }
        false
    }

    fn glob_match(&self, mut path: &[&str], is_dir: bool) -> bool {
        let mut matched = false;
        let mut traverse = false;
        for (i, pattern) in self.parts.iter().enumerate() {
            if pattern.is_empty() {
                traverse = false;
                continue;
            }
            if pattern == "**" {
                if i == self.parts.len() - 1 {
                    break;
                }
                traverse = true;
                continue;
            }
            if pattern.contains("**") || path.is_empty() {
                return false;
            }
            if traverse {
                traverse = false;
                while let Some((first, rest)) = path.split_first() {
                    path = rest;
                    match crate::gomatch::match_strict(pattern, first) {
                        Err(_) => return false,
                        Ok(true) => {
                            matched = true;
                            break;
                        }
                        Ok(false) if path.is_empty() => matched = false,
                        Ok(false) => {}
                    }
                }
            } else {
                if crate::gomatch::match_strict(pattern, path[0]) != Ok(true) {
                    return false;
                }
                matched = true;
                path = &path[1..];
            }
        }
        matched && !(self.dir_only && !is_dir && path.is_empty())
    }
}

/// The patterns in force for one artifact, lowest priority first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    patterns: Vec<Pattern>,
}

impl Rules {
    /// The rules for the tree at `root` and the source's `ignore` lines.
    pub fn load(root: &Path, ignore: &[String]) -> Result<Rules, Error> {
        let mut found = Vec::new();
        load_dir(root, &mut Vec::new(), &mut found)?;
        for text in ignore {
            read_patterns(text, &[], &mut found);
        }
        if found.len() > MAX_PATTERNS {
            return Err(too_many());
        }
        let defaults: &[&[&str]] = if found.is_empty() {
            &[VCS, DEFAULTS]
        } else {
            &[VCS]
        };
        let mut patterns: Vec<Pattern> = defaults
            .iter()
            .flat_map(|list| list.iter())
            .map(|p| Pattern::parse(p, &[]))
            .collect();
        patterns.extend(found);
        Ok(Rules { patterns })
    }

    /// Whether the entry at `path` (components below the root) is ignored.
    pub fn ignored(&self, path: &[&str], is_dir: bool) -> bool {
        self.patterns
            .iter()
            .rev()
            .find_map(|p| p.judge(path, is_dir))
            .unwrap_or(false)
    }
}

fn too_many() -> Error {
    Error::Rejected {
        entry: IGNORE_FILE.into(),
        reason: format!("more than {MAX_PATTERNS} ignore patterns"),
    }
}

/// Flux's `ReadPatterns`: one pattern a line; blank lines and lines that
/// start with `#` are not patterns.
fn read_patterns(text: &str, domain: &[String], out: &mut Vec<Pattern>) {
    for line in text.lines() {
        if !line.starts_with('#') && !line.trim().is_empty() {
            out.push(Pattern::parse(line, domain));
        }
    }
}

/// `.sourceignore` of `dir`, then of its subdirectories, recursively.
fn load_dir(dir: &Path, domain: &mut Vec<String>, out: &mut Vec<Pattern>) -> Result<(), Error> {
    let file = dir.join(IGNORE_FILE);
    if let Ok(meta) = fs::symlink_metadata(&file)
        && meta.is_file()
    {
        let mut bytes = Vec::new();
        fs::File::open(&file)
            .and_then(|f| f.take(MAX_FILE_BYTES).read_to_end(&mut bytes))
            .map_err(|e| Error::io(&file, e))?;
        read_patterns(&String::from_utf8_lossy(&bytes), domain, out);
        if out.len() > MAX_PATTERNS {
            return Err(too_many());
        }
    }
    let mut subdirs = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let is_dir = entry
            .file_type()
            .map_err(|e| Error::io(&entry.path(), e))?
            .is_dir();
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_dir && name != ".git" {
            subdirs.push(name);
        }
    }
    subdirs.sort();
    for name in subdirs {
        let path = dir.join(&name);
        domain.push(name);
        load_dir(&path, domain, out)?;
        domain.pop();
    }
    Ok(())
}

/// Delete every file of the tree at `root` that `rules` ignore, and the
/// ignored directories left empty. Links are never followed.
pub fn prune(root: &Path, rules: &Rules) -> Result<(), Error> {
    prune_dir(root, &mut Vec::new(), rules)
}

fn prune_dir(dir: &Path, rel: &mut Vec<String>, rules: &Rules) -> Result<(), Error> {
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let ty = entry.file_type().map_err(|e| Error::io(&path, e))?;
        rel.push(entry.file_name().to_string_lossy().into_owned());
        let parts: Vec<&str> = rel.iter().map(String::as_str).collect();
        let ignored = rules.ignored(&parts, ty.is_dir());
        if ty.is_dir() {
            // Flux judges each file on its own: look inside even so.
            prune_dir(&path, rel, rules)?;
            let empty = fs::read_dir(&path)
                .map_err(|e| Error::io(&path, e))?
                .next()
                .is_none();
            if ignored && empty {
                fs::remove_dir(&path).map_err(|e| Error::io(&path, e))?;
            }
        } else if ignored {
            fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
        rel.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(lines: &[(&str, &str)]) -> Rules {
        let dir = tempfile::tempdir().unwrap();
        for (at, text) in lines {
            let file = dir.path().join(at).join(IGNORE_FILE);
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            fs::write(file, text).unwrap();
        }
        Rules::load(dir.path(), &[]).unwrap()
    }

    fn ignored(r: &Rules, path: &str) -> bool {
        let is_dir = path.ends_with('/');
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        r.ignored(&parts, is_dir)
    }

    /// fluxcd/pkg sourceignore: the defaults hold only while no pattern is given.
    #[test]
    fn defaults_only_without_patterns() {
        let none = rules(&[]);
        for p in [
            ".git/",
            ".git/config",
            ".gitignore",
            "a/.gitmodules",
            "logo.png",
            "docs/shot.jpg",
            "bundle.tar.gz",
            ".github/workflows/ci.yaml",
            ".circleci/config.yml",
            "cloudbuild.yaml",
            "deep/.sops.yaml",
            ".flux.yaml",
        ] {
            assert!(ignored(&none, p), "{p}");
        }
        for p in ["apps/a.yaml", "bundle.tgz", "github/x.yaml", "a/cloudbuild.yml"] {
            assert!(!ignored(&none, p), "{p}");
        }
        let some = rules(&[("", "*.md\n")]);
        assert!(ignored(&some, ".git/config") && ignored(&some, ".gitignore"));
        assert!(!ignored(&some, "logo.png") && !ignored(&some, ".github/workflows/ci.yaml"));
        assert!(ignored(&some, "README.md"));
    }

    /// go-git's matcher judges each path by the last matching pattern:
    /// a file re-included under an ignored directory is kept.
    #[test]
    fn a_file_comes_back_from_an_ignored_directory() {
        let r = rules(&[("", "secret/\n!secret/keep.yaml\n# comment\n\n")]);
        assert!(ignored(&r, "secret/"));
        assert!(ignored(&r, "secret/key.yaml"));
        assert!(!ignored(&r, "secret/keep.yaml"));
        assert!(
            ignored(&r, "a/secret/keep.yaml"),
            "the re-inclusion is anchored, the exclusion is not"
        );
        let r = rules(&[("", "/docs/**\n!/docs/api/*.yaml\n")]);
        assert!(ignored(&r, "docs/guide.md"));
        assert!(!ignored(&r, "docs/api/v1.yaml"));
        assert!(ignored(&r, "docs/api/v1.md"));
    }

    #[test]
    fn pattern_forms() {
        let r = rules(&[("", "*.md\nbuild/\n/top.yaml\na/**/z.yaml\n**/gen\nlogs\n  \n")]);
        assert!(ignored(&r, "README.md") && ignored(&r, "x/y/NOTES.md"));
        assert!(ignored(&r, "build/") && ignored(&r, "x/build/out.yaml"));
        assert!(!ignored(&r, "x/build"), "a file named like a dir-only pattern");
        assert!(ignored(&r, "top.yaml") && !ignored(&r, "x/top.yaml"));
        assert!(ignored(&r, "a/z.yaml") && ignored(&r, "a/b/c/z.yaml") && !ignored(&r, "b/a/z.yaml"));
        assert!(ignored(&r, "gen/x") && ignored(&r, "p/q/gen/x"));
        assert!(ignored(&r, "logs") && ignored(&r, "a/logs/x"));
        // A bad pattern matches nothing, as Go's filepath.Match fails on it.
        let r = rules(&[("", "[\n")]);
        assert!(!ignored(&r, "[") && !ignored(&r, "a"));
        // Trailing blanks go, an escaped one stays.
        let r = rules(&[("", "a  \nb\\ \n")]);
        assert!(ignored(&r, "a") && ignored(&r, "b ") && !ignored(&r, "b"));
    }

    /// LoadIgnorePatterns reads `.sourceignore` at every level, each scoped
    /// to its directory; deeper files come later and win.
    #[test]
    fn nested_sourceignore_files() {
        let r = rules(&[
            ("", "*.txt\n"),
            ("apps", "!keep.txt\nlocal/\n"),
            ("apps/x", "*.yaml\n"),
        ]);
        assert!(ignored(&r, "notes.txt") && ignored(&r, "apps/notes.txt"));
        assert!(!ignored(&r, "apps/keep.txt") && ignored(&r, "keep.txt"));
        assert!(ignored(&r, "apps/local/a.yaml") && !ignored(&r, "local/a.yaml"));
        assert!(ignored(&r, "apps/x/a.yaml") && !ignored(&r, "apps/a.yaml"));
    }

    #[test]
    fn config_ignore_comes_last() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(IGNORE_FILE), "!*.md\n").unwrap();
        let r = Rules::load(dir.path(), &["*.md".into(), "docs/**\n!docs/keep/*".into()]).unwrap();
        assert!(ignored(&r, "a.md"));
        assert!(ignored(&r, "docs/x.yaml") && !ignored(&r, "docs/keep/x.yaml"));
    }

    #[test]
    fn prune_keeps_parents_of_kept_files() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "secret/key.yaml",
            "secret/keep.yaml",
            "junk/a.yaml",
            "apps/a.yaml",
            "empty/.keep",
        ] {
            let p = dir.path().join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "x").unwrap();
        }
        let r = Rules::load(
            dir.path(),
            &[
                "secret/".into(),
                "!secret/keep.yaml".into(),
                "junk/".into(),
                ".keep".into(),
            ],
        )
        .unwrap();
        prune(dir.path(), &r).unwrap();
        assert!(dir.path().join("secret/keep.yaml").exists());
        assert!(!dir.path().join("secret/key.yaml").exists());
        assert!(!dir.path().join("junk").exists());
        assert!(dir.path().join("apps/a.yaml").exists());
        assert!(
            dir.path().join("empty").is_dir(),
            "a directory that is not ignored stays, even empty"
        );
    }

    #[test]
    fn too_many_patterns_are_refused() {
        let many = "x\n".repeat(MAX_PATTERNS + 1);
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(IGNORE_FILE), many).unwrap();
        assert!(matches!(
            Rules::load(dir.path(), &[]),
            Err(Error::Rejected { .. })
        ));
    }
}
