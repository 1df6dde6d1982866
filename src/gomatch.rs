//! Go's `path.Match` shell patterns, which Flux applies in two places whose
//! rules mooring follows exactly: `.sourceignore` / `ignore` patterns
//! (go-git's gitignore matcher runs `filepath.Match` on each path
//! component) and the `${var#pattern}` family of post-build substitution.
//!
//! A pattern is `*` (any run of characters but `/`), `?` (one character but
//! `/`), `[…]` (a class: ranges `a-z`, negation with `^` — not `!` —,
//! `\` escapes) and `\c` (the character `c`); everything else matches
//! itself. Patterns and names are untrusted: matching allocates nothing and
//! takes at most `O(pattern × name)` steps per `*`.

/// The pattern is malformed (an unclosed class, a trailing `\`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPattern;

/// Whether `name` matches `pattern`, as the Go releases of `path.Match`
/// before 1.16 say: a malformed part of the pattern is an error only when
/// matching reaches it. This is the copy Flux's envsubst carries.
pub fn match_lazy(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let (mut pattern, mut name) = (pattern.as_bytes(), name.as_bytes());
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing `*` matches the rest unless it holds a `/`.
            return Ok(!name.contains(&b'/'));
        }
        let (matched, err) = match_chunk(chunk, name);
        if let Some(t) = matched
            && (t.is_empty() || !pattern.is_empty())
        {
            name = t;
            continue;
        }
        if err {
            return Err(BadPattern);
        }
        if star {
            // Try again after skipping 1, 2, … bytes; a `*` never skips `/`.
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                let (matched, err) = match_chunk(chunk, &name[i + 1..]);
                if let Some(t) = matched {
                    // The last chunk must use up the name.
                    if pattern.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    continue 'pattern;
                }
                if err {
                    return Err(BadPattern);
                }
                i += 1;
            }
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Whether `name` matches `pattern`, as Go's `path.Match` has said since
/// 1.16: a malformed pattern is an error whatever the name.
pub fn match_strict(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let mut rest = pattern.as_bytes();
    while !rest.is_empty() {
        let (_, chunk, after) = scan_chunk(rest);
        rest = after;
        check_chunk(chunk)?;
    }
    match_lazy(pattern, name)
}

/// Leading stars, then everything up to the next star outside a class.
fn scan_chunk(pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut p = pattern;
    let mut star = false;
    while let [b'*', rest @ ..] = p {
        p = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'\\' if i + 1 < p.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &p[..i], &p[i..])
}

/// The first character of `s` (a byte that is not UTF-8 counts as one).
fn first_char(s: &[u8]) -> (u32, usize) {
    let len = match s.first() {
        None => return (0, 0),
        Some(b) if *b < 0x80 => 1,
        Some(b) if *b >= 0xF0 => 4,
        Some(b) if *b >= 0xE0 => 3,
        Some(b) if *b >= 0xC0 => 2,
        Some(_) => 1,
    };
    match s
        .get(..len)
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.chars().next())
    {
        Some(c) => (u32::from(c), len),
        None => (u32::from(char::REPLACEMENT_CHARACTER), 1),
    }
}

/// `chunk` against the start of `s`: the rest of `s` when it matches, and
/// whether a malformed part of the chunk was reached.
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> (Option<&'a [u8]>, bool) {
    while !chunk.is_empty() {
        if s.is_empty() {
            return (None, false);
        }
        match chunk[0] {
            b'[' => {
                let (r, n) = first_char(s);
                s = &s[n..];
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let Some((lo, rest)) = class_char(chunk) else {
                        return (None, true);
                    };
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&b'-') {
                        let Some((h, rest)) = class_char(&chunk[1..]) else {
                            return (None, true);
                        };
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    return (None, false);
                }
            }
            b'?' => {
                if s[0] == b'/' {
                    return (None, false);
                }
                let (_, n) = first_char(s);
                s = &s[n..];
                chunk = &chunk[1..];
            }
            b'\\' => {
                chunk = &chunk[1..];
                let Some(&c) = chunk.first() else {
                    return (None, true);
                };
                if c != s[0] {
                    return (None, false);
                }
                s = &s[1..];
                chunk = &chunk[1..];
            }
            c => {
                if c != s[0] {
                    return (None, false);
                }
                s = &s[1..];
                chunk = &chunk[1..];
            }
        }
    }
    (Some(s), false)
}

/// One character of a class (`\` escapes it), and the rest of the chunk,
/// which must not be empty; `None` when malformed.
fn class_char(chunk: &[u8]) -> Option<(u32, &[u8])> {
    let mut c = chunk;
    match c.first() {
        None | Some(b'-') | Some(b']') => return None,
        Some(b'\\') => c = &c[1..],
        Some(_) => {}
    }
    if c.is_empty() {
        return None;
    }
    let (r, n) = first_char(c);
    let bad_utf8 = r == u32::from(char::REPLACEMENT_CHARACTER) && n == 1 && c[0] >= 0x80;
    let rest = &c[n..];
    (!bad_utf8 && !rest.is_empty()).then_some((r, rest))
}

/// Whether a chunk is well formed, matching or not (Go 1.16's check).
fn check_chunk(mut chunk: &[u8]) -> Result<(), BadPattern> {
    while !chunk.is_empty() {
        match chunk[0] {
            b'[' => {
                chunk = &chunk[1..];
                if chunk.first() == Some(&b'^') {
                    chunk = &chunk[1..];
                }
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (_, rest) = class_char(chunk).ok_or(BadPattern)?;
                    chunk = rest;
                    if chunk.first() == Some(&b'-') {
                        let (_, rest) = class_char(&chunk[1..]).ok_or(BadPattern)?;
                        chunk = rest;
                    }
                    ranges += 1;
                }
            }
            b'\\' => {
                if chunk.len() < 2 {
                    return Err(BadPattern);
                }
                chunk = &chunk[2..];
            }
            _ => chunk = &chunk[1..],
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of Go's own `path.Match` table (src/path/match_test.go).
    #[test]
    fn go_match_table() {
        let ok = |p: &str, s: &str, want: bool| {
            assert_eq!(match_strict(p, s), Ok(want), "{p:?} {s:?}");
        };
        let bad = |p: &str, s: &str| assert_eq!(match_strict(p, s), Err(BadPattern), "{p:?} {s:?}");
        ok("abc", "abc", true);
        ok("*", "abc", true);
        ok("*c", "abc", true);
        ok("a*", "a", true);
        ok("a*", "abc", true);
        ok("a*", "ab/c", false);
        ok("a*/b", "abc/b", true);
        ok("a*/b", "a/c/b", false);
        ok("a*b*c*d*e*/f", "axbxcxdxe/f", true);
        ok("a*b*c*d*e*/f", "axbxcxdxexxx/f", true);
        ok("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false);
        ok("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false);
        ok("a*b?c*x", "abxbbxdbxebxczzx", true);
        ok("a*b?c*x", "abxbbxdbxebxczzy", false);
        ok("ab[c]", "abc", true);
        ok("ab[b-d]", "abc", true);
        ok("ab[e-g]", "abc", false);
        ok("ab[^c]", "abc", false);
        ok("ab[^b-d]", "abc", false);
        ok("ab[^e-g]", "abc", true);
        ok("a\\*b", "a*b", true);
        ok("a\\*b", "ab", false);
        ok("a?b", "a☺b", true);
        ok("a[^a]b", "a☺b", true);
        ok("a???b", "a☺b", false);
        ok("a[^a][^a][^a]b", "a☺b", false);
        ok("[a-ζ]*", "α", true);
        ok("*[a-ζ]", "A", false);
        ok("a?b", "a/b", false);
        ok("a*b", "a/b", false);
        ok("[\\]a]", "]", true);
        ok("[\\-]", "-", true);
        ok("[x\\-]", "x", true);
        ok("[x\\-]", "-", true);
        ok("[x\\-]", "z", false);
        ok("[\\-x]", "x", true);
        ok("[\\-x]", "-", true);
        ok("[\\-x]", "a", false);
        bad("[]a]", "]");
        bad("[-]", "-");
        bad("[x-]", "x");
        bad("[x-]", "-");
        bad("[x-]", "z");
        bad("[-x]", "x");
        bad("[-x]", "-");
        bad("[-x]", "a");
        bad("\\", "a");
        bad("[a-b-c]", "a");
        bad("[", "a");
        bad("[^", "a");
        bad("[^bc", "a");
        bad("a[", "a");
        bad("a[", "ab");
        bad("a[", "x");
        bad("a/b[", "x");
        ok("*x", "xxx", true);
    }

    #[test]
    fn lazy_errors_only_when_reached() {
        // Go before 1.16: the malformed class is never reached.
        assert_eq!(match_lazy("a[", "x"), Ok(false));
        assert_eq!(match_lazy("a[", "ab"), Err(BadPattern));
        assert_eq!(match_strict("a[", "x"), Err(BadPattern));
    }
}
