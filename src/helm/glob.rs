//! Glob patterns as Helm's `.Files.Glob` reads them (gobwas/glob with `/`
//! as the separator): `*` and `?` stay within a path segment, `**`
//! crosses segments, `[a-z]`/`[!x]` classes, `{a,b}` alternatives and `\`
//! escapes.

#[derive(Debug, Clone)]
enum Tok {
    Lit(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `**`
    Super,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    Alt(Vec<Vec<Tok>>),
}

#[derive(Debug, Clone)]
pub struct Glob {
    toks: Vec<Tok>,
}

impl Glob {
    /// `None` for a pattern gobwas would not compile.
    pub fn new(pattern: &str) -> Option<Glob> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut i = 0;
        let toks = parse(&chars, &mut i, false)?;
        if i != chars.len() {
            return None;
        }
        Some(Glob { toks })
    }

    pub fn matches(&self, s: &str) -> bool {
        let chars: Vec<char> = s.chars().collect();
        let mut budget = 1_000_000usize;
        match_toks(&self.toks, &chars, &mut budget)
    }
}

fn parse(c: &[char], i: &mut usize, in_alt: bool) -> Option<Vec<Tok>> {
    let mut out = Vec::new();
    while *i < c.len() {
        match c[*i] {
            ',' | '}' if in_alt => return Some(out),
            '\\' => {
                *i += 1;
                out.push(Tok::Lit(*c.get(*i)?));
                *i += 1;
            }
            '*' => {
                if c.get(*i + 1) == Some(&'*') {
                    out.push(Tok::Super);
                    *i += 2;
                } else {
                    out.push(Tok::Star);
                    *i += 1;
                }
            }
            '?' => {
                out.push(Tok::One);
                *i += 1;
            }
            '[' => {
                *i += 1;
                let negated = c.get(*i) == Some(&'!');
                if negated {
                    *i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    let lo = *c.get(*i)?;
                    if lo == ']' {
                        *i += 1;
                        break;
                    }
                    *i += 1;
                    if c.get(*i) == Some(&'-') && c.get(*i + 1).is_some_and(|x| *x != ']') {
                        let hi = c[*i + 1];
                        ranges.push((lo, hi));
                        *i += 2;
                    } else {
                        ranges.push((lo, lo));
                    }
                }
                out.push(Tok::Class { negated, ranges });
            }
            '{' => {
                *i += 1;
                let mut alts = Vec::new();
                loop {
                    alts.push(parse(c, i, true)?);
                    match c.get(*i)? {
                        ',' => *i += 1,
                        '}' => {
                            *i += 1;
                            break;
                        }
                        _ => return None,
                    }
                }
                out.push(Tok::Alt(alts));
            }
            ch => {
                out.push(Tok::Lit(ch));
                *i += 1;
            }
        }
    }
    if in_alt {
        return None;
    }
    Some(out)
}

fn match_toks(toks: &[Tok], s: &[char], budget: &mut usize) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    let Some((first, rest)) = toks.split_first() else {
        return s.is_empty();
    };
    match first {
        Tok::Lit(c) => s.first() == Some(c) && match_toks(rest, &s[1..], budget),
        Tok::One => s.first().is_some_and(|c| *c != '/') && match_toks(rest, &s[1..], budget),
        Tok::Class { negated, ranges } => {
            s.first()
                .is_some_and(|c| ranges.iter().any(|(lo, hi)| lo <= c && c <= hi) != *negated)
                && match_toks(rest, &s[1..], budget)
        }
        Tok::Star | Tok::Super => {
            let cross = matches!(first, Tok::Super);
            for n in 0..=s.len() {
                if match_toks(rest, &s[n..], budget) {
                    return true;
                }
                if n < s.len() && !cross && s[n] == '/' {
                    return false;
                }
            }
            false
        }
        Tok::Alt(alts) => alts.iter().any(|alt| {
            let mut joined = alt.clone();
            joined.extend_from_slice(rest);
            match_toks(&joined, s, budget)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_gobwas() {
        let m = |p: &str, s: &str| Glob::new(p).unwrap().matches(s);
        assert!(m("files/*.conf", "files/a.conf"));
        assert!(!m("files/*.conf", "files/x/a.conf"));
        assert!(m("files/**.conf", "files/x/a.conf"));
        assert!(m("files/**", "files/x/y"));
        assert!(m("{a,b}/*.yaml", "b/c.yaml"));
        assert!(m("file[0-9].txt", "file3.txt"));
        assert!(!m("file[!0-9].txt", "file3.txt"));
        assert!(m("?.txt", "a.txt"));
        assert!(!m("*", "a/b"));
        assert!(Glob::new("[abc").is_none());
    }
}
