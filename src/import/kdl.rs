//! Writing KDL text: quoted strings, multi-line raw strings, and a block
//! writer that keeps indentation and comments in step.

pub(super) use crate::config::schema::q;

/// A node name or property key: bare when KDL allows it, else quoted.
pub(super) fn ident(s: &str) -> String {
    let looks_numeric = |rest: &str| rest.starts_with(|c: char| c.is_ascii_digit());
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let keyword = matches!(s, "true" | "false" | "null" | "inf" | "nan");
    let number = looks_numeric(s) || (s.starts_with(['.', '-']) && looks_numeric(&s[1..]));
    let bare = !s.is_empty() && s.chars().all(allowed) && !keyword && !number;
    if bare { s.to_string() } else { q(s) }
}

/// A block of KDL being written.
#[derive(Default)]
pub(super) struct Out {
    text: String,
    depth: usize,
    /// The heads of the top-level blocks written (`app "web"`).
    declared: std::collections::HashSet<String>,
}

impl Out {
    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.text.push_str("    ");
        }
    }

    /// One line at the current depth.
    pub(super) fn line(&mut self, line: &str) {
        self.indent();
        self.text.push_str(line);
        self.text.push('\n');
    }

    /// `// …` lines, one per line of `text`.
    pub(super) fn comment(&mut self, text: &str) {
        for l in text.lines() {
            self.line(format!("// {l}").trim_end());
        }
    }

    pub(super) fn blank(&mut self) {
        self.text.push('\n');
    }

    /// `head {`, then what `body` writes one level deeper, then `}`.
    pub(super) fn block(&mut self, head: &str, body: impl FnOnce(&mut Out)) {
        if self.depth == 0 {
            self.declared.insert(head.to_string());
        }
        self.line(&format!("{head} {{"));
        self.depth += 1;
        body(self);
        self.depth -= 1;
        self.line("}");
    }

    /// `head` followed by `text` as a multi-line raw string, indented one
    /// level deeper than the node.
    pub(super) fn multiline(&mut self, head: &str, text: &str) {
        let mut hashes = String::from("#");
        while text.contains(&format!("\"\"\"{hashes}")) || text.contains(&format!("\"{hashes}")) {
            hashes.push('#');
        }
        self.line(&format!("{head} {hashes}\"\"\""));
        self.depth += 1;
        for l in text.trim_end_matches('\n').split('\n') {
            let l = l.trim_end_matches('\r');
            if l.trim().is_empty() {
                self.text.push('\n');
            } else {
                self.line(l);
            }
        }
        self.line(&format!("\"\"\"{hashes}"));
        self.depth -= 1;
    }

    /// Whether a `kind "name" { … }` block was written at the top level.
    pub(super) fn declares(&self, kind: &str, name: &str) -> bool {
        self.declared.contains(&format!("{kind} {}", q(name)))
    }

    pub(super) fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(q("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
        assert_eq!(ident("team"), "team");
        assert_eq!(ident("app.kubernetes.io/name"), "\"app.kubernetes.io/name\"");
        assert_eq!(ident("1x"), "\"1x\"");
        assert_eq!(ident("true"), "\"true\"");
    }

    #[test]
    fn multiline_strings_pick_enough_hashes() {
        let mut out = Out::default();
        out.multiline("patch", "a: \"#x\"\n\nb: 1\n");
        assert_eq!(
            out.finish(),
            "patch ##\"\"\"\n    a: \"#x\"\n\n    b: 1\n    \"\"\"##\n"
        );
    }
}
