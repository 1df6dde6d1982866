//! `.helmignore`, as Helm's `pkg/ignore` reads it: one pattern a line,
//! `#` comments, `!` negation, a trailing `/` for directories only, a
//! leading `/` or any `/` for a match on the whole path (else on the base
//! name), Go's `filepath.Match` syntax (no `**`), and the default rule
//! `templates/.?*`. The first matching rule decides.

/// A pattern Go's `path.Match` rejects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPattern;

/// Go's `path.Match`. `Err` for a malformed pattern.
pub fn path_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let mut budget = 100_000usize;
    // Validate the whole pattern once, as Go reports ErrBadPattern.
    validate(&p)?;
    Ok(matches(&p, &n, &mut budget))
}

fn validate(p: &[char]) -> Result<(), BadPattern> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err(BadPattern);
                }
                i += 2;
            }
            '[' => {
                let (_, next) = class(p, i, None)?;
                i = next;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Match a class at `p[i] == '['` against `c`: (matched, index after `]`).
fn class(p: &[char], mut i: usize, c: Option<char>) -> Result<(bool, usize), BadPattern> {
    i += 1;
    let negated = p.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let Some(&ch) = p.get(i) else {
            return Err(BadPattern);
        };
        if ch == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let lo = if ch == '\\' {
            i += 1;
            *p.get(i).ok_or(BadPattern)?
        } else {
            if ch == '-' || ch == ']' {
                return Err(BadPattern);
            }
            ch
        };
        i += 1;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            i += 1;
            let h = *p.get(i).ok_or(BadPattern)?;
            hi = if h == '\\' {
                i += 1;
                *p.get(i).ok_or(BadPattern)?
            } else {
                if h == ']' || h == '-' {
                    return Err(BadPattern);
                }
                h
            };
            i += 1;
        }
        if let Some(c) = c
            && lo <= c
            && c <= hi
        {
            matched = true;
        }
    }
    Ok((matched != negated, i))
}

fn matches(p: &[char], n: &[char], budget: &mut usize) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    let Some(&c) = p.first() else { return n.is_empty() };
    match c {
        '*' => {
            for k in 0..=n.len() {
                if matches(&p[1..], &n[k..], budget) {
                    return true;
                }
                if k < n.len() && n[k] == '/' {
                    return false;
                }
            }
            false
        }
        '?' => n.first().is_some_and(|x| *x != '/') && matches(&p[1..], &n[1..], budget),
        '[' => {
            let Some(&x) = n.first() else { return false };
            if x == '/' {
                return false;
            }
            match class(p, 0, Some(x)) {
                Ok((true, next)) => matches(&p[next..], &n[1..], budget),
                _ => false,
            }
        }
        '\\' => p.get(1).is_some_and(|e| n.first() == Some(e)) && matches(&p[2..], &n[1..], budget),
        _ => n.first() == Some(&c) && matches(&p[1..], &n[1..], budget),
    }
}

#[derive(Debug, Clone)]
struct Rule {
    pattern: String,
    negate: bool,
    dir_only: bool,
    kind: Kind,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A leading `/`: the whole path, from the chart root.
    Rooted,
    /// A `/` inside: the whole path.
    Path,
    /// No `/`: the base name.
    Base,
}

/// The rules of one `.helmignore` (plus Helm's default).
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    /// Parse a `.helmignore`. `Err` names the bad pattern.
    pub fn parse(text: &str) -> Result<Rules, String> {
        let mut r = Rules::default();
        for line in text.lines() {
            r.add(line)?;
        }
        Ok(r)
    }

    pub fn add_defaults(&mut self) {
        let _ = self.add("templates/.?*");
    }

    fn add(&mut self, line: &str) -> Result<(), String> {
        let rule = line.trim();
        if rule.is_empty() || rule.starts_with('#') {
            return Ok(());
        }
        if path_match(rule, "abc").is_err() {
            return Err(format!("syntax error in pattern: {rule}"));
        }
        let mut rule = rule;
        let negate = rule.starts_with('!');
        if negate {
            rule = &rule[1..];
        }
        let dir_only = rule.ends_with('/');
        if dir_only {
            rule = &rule[..rule.len() - 1];
        }
        let (kind, pattern) = if let Some(r) = rule.strip_prefix('/') {
            (Kind::Rooted, r)
        } else if rule.contains('/') {
            (Kind::Path, rule)
        } else {
            (Kind::Base, rule)
        };
        self.rules.push(Rule {
            pattern: pattern.to_string(),
            negate,
            dir_only,
            kind,
        });
        Ok(())
    }

    /// Whether `path` (relative to the chart, `/`-separated) is ignored.
    pub fn ignore(&self, path: &str, is_dir: bool) -> bool {
        if path.is_empty() || path == "." || path == "./" {
            return false;
        }
        for r in &self.rules {
            let subject = match r.kind {
                Kind::Rooted | Kind::Path => path,
                Kind::Base => path.rsplit('/').next().unwrap_or(path),
            };
            let hit = path_match(&r.pattern, subject).unwrap_or(false);
            if r.negate {
                if r.dir_only && !is_dir {
                    return true;
                }
                if !hit {
                    return true;
                }
                continue;
            }
            if r.dir_only && !is_dir {
                continue;
            }
            if hit {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_path_match() {
        assert_eq!(path_match("*.yaml", "a.yaml"), Ok(true));
        assert_eq!(path_match("*.yaml", "x/a.yaml"), Ok(false));
        assert_eq!(path_match("a/*/c", "a/b/c"), Ok(true));
        assert_eq!(path_match("[^a]bc", "xbc"), Ok(true));
        assert_eq!(path_match("[a-c]x", "bx"), Ok(true));
        assert_eq!(path_match("[", "a"), Err(BadPattern));
    }

    #[test]
    fn rules_like_helm() {
        let mut r = Rules::parse("# comment\n*.tgz\nci/\n/root.txt\ndocs/*.md\n").unwrap();
        r.add_defaults();
        assert!(r.ignore("charts/x-1.0.tgz", false));
        assert!(r.ignore("ci", true));
        assert!(r.ignore("charts/sub/ci", true));
        assert!(!r.ignore("ci", false));
        assert!(r.ignore("root.txt", false));
        assert!(r.ignore("docs/a.md", false));
        assert!(!r.ignore("x/docs/a.md", false));
        assert!(r.ignore("templates/.hidden", false));
        assert!(!r.ignore("templates/x.yaml", false));
    }
}
