//! Checking and converting single values (a duration, a URL, a regex …).
//! Each check returns the converted value or a [`Problem`] that the
//! decoder turns into a diagnostic at the value's span.

use std::time::Duration;

use super::diagnostic::code;
use super::schema::Ty;

/// Why a value is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: &'static str,
    pub message: String,
    pub help: Option<String>,
    /// A byte range inside the (decoded) string that is to blame.
    pub within: Option<(usize, usize)>,
    /// What to write under the span; the decoder picks one by code if unset.
    pub label: Option<String>,
}

impl Problem {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            code,
            message: message.into(),
            help: None,
            within: None,
            label: None,
        }
    }

    fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    fn within(mut self, start: usize, len: usize) -> Self {
        self.within = Some((start, len));
        self
    }

    fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
}

/// Check a string value against its type.
pub fn check_str(ty: Ty, s: &str) -> Result<(), Problem> {
    match ty {
        Ty::String | Ty::Template => Ok(()),
        Ty::Name | Ty::Ref(_) => check_name(s),
        Ty::Path => check_path(s),
        Ty::RelPath => check_rel_path(s).map(|_| ()),
        Ty::GitUrl => check_git_url(s),
        Ty::OciRepo => check_oci_repo(s).map(|_| ()),
        Ty::HelmRepo => check_helm_repo(s),
        Ty::Release => check_release(s),
        Ty::Duration => parse_duration(s).map(|_| ()),
        Ty::Timestamp => parse_timestamp(s).map(|_| ()),
        Ty::Regex => check_regex(s).map(|_| ()),
        Ty::Semver => check_semver(s),
        Ty::Message => check_message(s),
        Ty::Enum(values) => {
            if values.contains(&s) {
                Ok(())
            } else {
                Err(Problem::new(
                    code::INVALID_VALUE,
                    format!("\"{s}\" is not one of the allowed values"),
                )
                .help(match suggest(s, values.iter().copied()) {
                    Some(m) => format!(
                        "did you mean \"{m}\"? Allowed: {}",
                        Ty::Enum(values).describe().trim_start_matches("one of ")
                    ),
                    None => format!("use {}", Ty::Enum(values).describe()),
                }))
            }
        }
        Ty::SocketAddr => s.parse::<std::net::SocketAddr>().map(|_| ()).map_err(|_| {
            Problem::new(
                code::INVALID_VALUE,
                format!("\"{s}\" is not an IP address and port"),
            )
            .help("write an IP address and a port, such as \"127.0.0.1:9797\" or \"[::1]:9797\"")
        }),
        Ty::Glob => {
            if s.is_empty() {
                Err(Problem::new(code::INVALID_VALUE, "empty glob pattern"))
            } else {
                Ok(())
            }
        }
        Ty::Namespace => check_dns_label(s, "namespace"),
        Ty::Branch => check_branch(s),
        Ty::Commit => {
            let hex = s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if hex && (s.len() == 40 || s.len() == 64) {
                Ok(())
            } else {
                Err(Problem::new(code::INVALID_VALUE, format!("\"{s}\" is not a full commit id"))
                    .help("pin the full id (40 hex digits for SHA-1 repositories): `git rev-parse <commit>` prints it"))
            }
        }
        Ty::Digest => check_digest(s),
        Ty::VarName => {
            let mut chars = s.chars();
            let ok = chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
                && chars.all(|c| c == '_' || c.is_ascii_alphanumeric());
            if ok {
                Ok(())
            } else {
                Err(Problem::new(
                    code::INVALID_NAME,
                    format!("\"{s}\" is not a valid variable name"),
                )
                .help("variable names use letters, digits and `_`, and do not start with a digit"))
            }
        }
        Ty::Email => {
            let ok = s
                .split_once('@')
                .is_some_and(|(user, host)| !user.is_empty() && !host.is_empty() && !host.contains('@'))
                && !s.contains(|c: char| c.is_whitespace() || c == '<' || c == '>');
            if ok {
                Ok(())
            } else {
                Err(
                    Problem::new(code::INVALID_VALUE, format!("\"{s}\" is not an email address"))
                        .help("write a plain address such as \"mooring@example.com\""),
                )
            }
        }
        Ty::Size => parse_size(s).map(|_| ()),
        Ty::ObjectRef => parse_object_ref(s).map(|_| ()),
        Ty::ObjectPattern => parse_object_pattern(s).map(|_| ()),
        Ty::Bool | Ty::Int { .. } => Ok(()),
    }
}

/// `KIND/NAME`: the kind, and the byte offset where the name starts.
pub fn parse_object_ref(s: &str) -> Result<(super::Kind, usize), Problem> {
    let kinds = "`source/`, `app/`, `image/` or `automation/`";
    let Some((kind, name)) = s.split_once('/') else {
        return Err(Problem::new(
            code::INVALID_VALUE,
            format!("\"{s}\" does not say which kind of object it is"),
        )
        .help(format!("write KIND/NAME, e.g. \"source/{s}\"; KIND is {kinds}")));
    };
    let Some(k) = super::Kind::parse(kind) else {
        let help = match suggest(kind, super::Kind::ALL.iter().map(|k| k.as_str())) {
            Some(m) => format!("did you mean `{m}/`?"),
            None => format!("the kind is {kinds}"),
        };
        return Err(
            Problem::new(code::INVALID_VALUE, format!("\"{kind}\" is not a kind of object"))
                .help(help)
                .within(0, kind.len())
                .label("unknown kind"),
        );
    };
    check_name(name).map_err(|p| p.within(kind.len() + 1, name.len()))?;
    Ok((k, kind.len() + 1))
}

/// `KIND/GLOB`, `*/GLOB` or `*`: the kind (`None` for any) and the name glob.
pub fn parse_object_pattern(s: &str) -> Result<(Option<super::Kind>, String), Problem> {
    if s == "*" {
        return Ok((None, "*".into()));
    }
    let Some((kind, name)) = s.split_once('/') else {
        return Err(Problem::new(
            code::INVALID_VALUE,
            format!("\"{s}\" does not say which kind of object it is"),
        )
        .help(format!(
            "write KIND/NAME, where NAME may hold `*`: e.g. \"app/{s}\" or \"*/{s}\"; or \"*\" for every object"
        )));
    };
    let k = match kind {
        "*" => None,
        _ => Some(super::Kind::parse(kind).ok_or_else(|| {
            Problem::new(code::INVALID_VALUE, format!("\"{kind}\" is not a kind of object"))
                .help("the kind is `source`, `app`, `image`, `automation` or `*`")
                .within(0, kind.len())
                .label("unknown kind")
        })?),
    };
    let plain = name.replace('*', "a");
    if name.is_empty() || (name != "*" && check_name(&plain).is_err()) {
        return Err(Problem::new(
            code::INVALID_VALUE,
            format!("\"{name}\" is not a name or a name pattern"),
        )
        .help("a name, where `*` matches any run of characters: \"web\", \"web-*\", \"*\"")
        .within(kind.len() + 1, name.len()));
    }
    Ok((k, name.to_string()))
}

/// Sizes: a number and an optional unit, B, KB/MB/GB (powers of 1000) or
/// KiB/MiB/GiB (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, Problem> {
    let help = "write a number and a unit, such as \"512MiB\", \"2GiB\" or \"100MB\"";
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let factor: u64 = match unit.trim_start() {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(
                Problem::new(code::INVALID_VALUE, format!("unknown size unit \"{other}\"")).help(help),
            );
        }
    };
    let n: u64 = number
        .parse()
        .map_err(|_| Problem::new(code::INVALID_VALUE, format!("\"{s}\" is not a size")).help(help))?;
    match n.checked_mul(factor) {
        Some(0) => Err(Problem::new(code::INVALID_VALUE, "a size must be larger than zero").help(help)),
        Some(bytes) => Ok(bytes),
        None => Err(Problem::new(code::INVALID_VALUE, format!("\"{s}\" is too large")).help(help)),
    }
}

/// Durations are humantime strings: `90s`, `1m30s`, `1h 30m`, `2d`.
pub fn parse_duration(s: &str) -> Result<Duration, Problem> {
    use humantime::DurationError as E;
    let help = "write a number with a unit: \"90s\", \"1m30s\", \"2h\" (units: ms, s, m, h, d)";
    let err = match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => {
            return Err(
                Problem::new(code::INVALID_DURATION, "a duration must be longer than zero")
                    .label("zero")
                    .help("use at least \"1s\"; to stop an object from running, suspend it"),
            );
        }
        Ok(d) => return Ok(d),
        Err(e) => e,
    };
    let word_at = |i: usize| {
        let rest = s.get(i..).unwrap_or_default();
        let len = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
        (i, len)
    };
    let p = match err {
        E::InvalidCharacter(i) => {
            let c = s.get(i..).and_then(|r| r.chars().next()).unwrap_or(' ');
            Problem::new(
                code::INVALID_DURATION,
                format!("\"{s}\" is not a duration: `{c}` is not allowed"),
            )
            .within(i, c.len_utf8())
            .label("unexpected character")
        }
        E::NumberExpected(i) => {
            let (start, len) = word_at(i);
            Problem::new(
                code::INVALID_DURATION,
                format!("\"{s}\" is not a duration: expected a number"),
            )
            .within(start, len)
            .label("expected a number here")
        }
        E::UnknownUnit { unit, start, .. } if unit.is_empty() => {
            let digits = s.get(..start).unwrap_or_default();
            let number = digits.len() - digits.trim_end_matches(|c: char| c.is_ascii_digit()).len();
            Problem::new(
                code::INVALID_DURATION,
                format!("\"{s}\" is not a duration: the number has no unit"),
            )
            .within(start - number, number)
            .label("no unit")
        }
        E::UnknownUnit { unit, start, end, .. } => Problem::new(
            code::INVALID_DURATION,
            format!("\"{s}\" is not a duration: unknown unit \"{unit}\""),
        )
        .within(start, end.saturating_sub(start))
        .label("unknown unit"),
        E::NumberOverflow => {
            Problem::new(code::INVALID_DURATION, format!("\"{s}\" is too long a duration")).label("too large")
        }
        E::Empty => Problem::new(code::INVALID_DURATION, "empty duration").label("empty"),
    };
    Err(p.help(help))
}

pub fn parse_timestamp(s: &str) -> Result<jiff::Timestamp, Problem> {
    s.parse::<jiff::Timestamp>().map_err(|_| {
        // Well formed, but beyond what a timestamp can hold (the last
        // hours of year 9999, or before year -9999).
        let formed = jiff::fmt::temporal::Pieces::parse(s).is_ok_and(|p| p.offset().is_some());
        if formed {
            return Problem::new(
                code::INVALID_TIMESTAMP,
                format!(
                    "\"{s}\" is outside the range of times mooring can hold ({} to {})",
                    jiff::Timestamp::MIN.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    jiff::Timestamp::MAX.strftime("%Y-%m-%dT%H:%M:%SZ"),
                ),
            )
            .help("to suspend without an end, leave out `until`");
        }
        Problem::new(
            code::INVALID_TIMESTAMP,
            format!("\"{s}\" is not an RFC 3339 timestamp"),
        )
        .help("write a date and a time with a UTC offset, such as \"2026-12-01T09:00:00Z\"")
    })
}

/// The capture groups of a pattern: what `extract` may refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Groups {
    pub names: Vec<String>,
    /// Groups including the implicit group 0.
    pub count: usize,
}

/// Check a pattern and list its groups. The syntax check is cheap; the
/// full build (which enforces the size limit) runs only for patterns that
/// could plausibly exceed it: long ones and counted repetitions.
pub fn check_regex(s: &str) -> Result<Groups, Problem> {
    thread_local! {
        static CHECKED: Memo<Result<Groups, Problem>> = Memo::default();
    }
    memoized(&CHECKED, s, check_regex_uncached)
}

/// Results per pattern: large configs repeat a handful of patterns
/// hundreds of times, and checking or building one is far dearer than
/// anything else a check does.
type Memo<T> = std::cell::RefCell<std::collections::HashMap<String, T>>;

fn memoized<T: Clone>(memo: &'static std::thread::LocalKey<Memo<T>>, key: &str, compute: fn(&str) -> T) -> T {
    if let Some(hit) = memo.with(|m| m.borrow().get(key).cloned()) {
        return hit;
    }
    let value = compute(key);
    memo.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= 4096 {
            m.clear();
        }
        m.insert(key.to_string(), value.clone());
    });
    value
}

fn check_regex_uncached(s: &str) -> Result<Groups, Problem> {
    if s.len() > 256 || s.contains('{') {
        let re = compile_regex(s)?;
        return Ok(Groups {
            names: re.capture_names().flatten().map(str::to_string).collect(),
            count: re.captures_len(),
        });
    }
    let hir = match regex_syntax::Parser::new().parse(s) {
        Ok(hir) => hir,
        // Let the full path produce the diagnostic.
        Err(_) => {
            return compile_regex(s).map(|_| Groups {
                names: Vec::new(),
                count: 1,
            });
        }
    };
    let mut names = Vec::new();
    let mut stack = vec![&hir];
    while let Some(h) = stack.pop() {
        use regex_syntax::hir::HirKind;
        match h.kind() {
            HirKind::Capture(c) => {
                if let Some(name) = &c.name {
                    names.push(name.to_string());
                }
                stack.push(&c.sub);
            }
            HirKind::Repetition(r) => stack.push(&r.sub),
            HirKind::Concat(hs) | HirKind::Alternation(hs) => stack.extend(hs.iter()),
            _ => {}
        }
    }
    Ok(Groups {
        names,
        count: hir.properties().explicit_captures_len() + 1,
    })
}

/// Compile a pattern the way image policies will, with a size limit so a
/// config cannot make the agent build a huge automaton.
pub fn compile_regex(s: &str) -> Result<regex::Regex, Problem> {
    thread_local! {
        static COMPILED: Memo<Result<regex::Regex, Problem>> = Memo::default();
    }
    memoized(&COMPILED, s, compile_regex_uncached)
}

fn compile_regex_uncached(s: &str) -> Result<regex::Regex, Problem> {
    let syntax_error = match regex_syntax::Parser::new().parse(s) {
        Ok(_) => None,
        Err(regex_syntax::Error::Parse(e)) => Some((e.kind().to_string(), regex_label(e.kind()), *e.span())),
        Err(regex_syntax::Error::Translate(e)) => Some((e.kind().to_string(), "here", *e.span())),
        Err(_) => None,
    };
    if let Some((kind, label, span)) = syntax_error {
        let start = span.start.offset;
        let len = span.end.offset.saturating_sub(start);
        return Err(
            Problem::new(code::INVALID_REGEX, format!("invalid regular expression: {kind}"))
                .within(start, len)
                .label(label)
                .help("the syntax is Rust's `regex` crate: no look-around or back-references"),
        );
    }
    regex::RegexBuilder::new(s)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            let msg = match &e {
                regex::Error::CompiledTooBig(_) => "the regular expression is too large".to_string(),
                other => format!("invalid regular expression: {}", first_line(&other.to_string())),
            };
            Problem::new(code::INVALID_REGEX, msg)
                .help("simplify the pattern; the syntax is Rust's `regex` crate")
        })
}

fn regex_label(kind: &regex_syntax::ast::ErrorKind) -> &'static str {
    use regex_syntax::ast::ErrorKind as K;
    match kind {
        K::GroupUnclosed => "this group is never closed",
        K::GroupUnopened => "no group to close",
        K::ClassUnclosed => "this class is never closed",
        K::EscapeUnrecognized => "unknown escape",
        K::UnsupportedLookAround => "look-around",
        K::UnsupportedBackreference => "back-reference",
        K::RepetitionMissing => "nothing to repeat",
        K::ClassRangeInvalid => "start is after end",
        K::GroupNameInvalid | K::GroupNameEmpty => "invalid group name",
        K::GroupNameDuplicate { .. } => "second group with this name",
        _ => "here",
    }
}

fn first_line(s: &str) -> &str {
    s.lines().last().unwrap_or(s).trim_start_matches("error: ")
}

/// A commit message template that compiles and renders over a sample
/// change ([`super::template`]); the problem points into the template.
fn check_message(s: &str) -> Result<(), Problem> {
    let Err(e) = super::template::check(s) else {
        return Ok(());
    };
    let line_start = |line: usize| {
        s.split_inclusive('\n')
            .take(line.saturating_sub(1))
            .map(str::len)
            .sum::<usize>()
    };
    let (start, len) = match (e.range(), e.line()) {
        (Some(r), _) => {
            let start = r.start.min(s.len());
            (start, r.end.min(s.len()).saturating_sub(start))
        }
        (None, Some(line)) => {
            let start = line_start(line).min(s.len());
            (start, s[start..].find('\n').unwrap_or(s.len() - start))
        }
        (None, None) => (0, s.len()),
    };
    let line = s[..start].matches('\n').count() + 1;
    let column = s[..start].rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let what = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    let fields = super::template::CHANGE_FIELDS.join(", ");
    let help = if super::template::looks_like_go(s) {
        format!(
            "this looks like a Go template (Flux's messageTemplate); mooring's messages are minijinja (Jinja2) \
             templates over `changes`, each with {fields}: \
             \"{{% for c in changes %}}- {{{{ c.file }}}}: {{{{ c.old }}}} -> {{{{ c.new }}}}\\n{{% endfor %}}\""
        )
    } else {
        format!(
            "messages are minijinja (Jinja2) templates: {{{{ … }}}} prints, {{% for c in changes %}}…{{% endfor %}} \
             loops; each change has {fields}"
        )
    };
    Err(Problem::new(
        code::INVALID_TEMPLATE,
        format!("the commit message template fails at line {line}, column {column}: {what}"),
    )
    .within(start, len.max(usize::from(start < s.len())))
    .label(e.kind().to_string())
    .help(help))
}

/// A range as Flux reads it ([`crate::tags::Range`]).
fn check_semver(s: &str) -> Result<(), Problem> {
    crate::tags::Range::parse(s).map(|_| ()).map_err(|e| {
        let p = Problem::new(
            code::INVALID_SEMVER,
            format!("\"{s}\" is not a semver range: {}", e.reason),
        )
        .label(e.label)
        .help(crate::tags::RANGE_HELP);
        match e.within {
            Some((start, len)) => p.within(start, len),
            None => p,
        }
    })
}

fn check_name(s: &str) -> Result<(), Problem> {
    let bytes = s.as_bytes();
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    let ok = !s.is_empty()
        && s.len() <= 63
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|b| alnum(b) || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Problem::new(code::INVALID_NAME, format!("\"{s}\" is not a valid name"))
            .help("names have 1 to 63 letters, digits, `-`, `_` or `.`, and start and end with a letter or digit"))
    }
}

/// `https://host/path`, `http://host/path` or `oci://host/path`, without
/// credentials (never repeated in a message: they may be a token).
fn check_helm_repo(s: &str) -> Result<(), Problem> {
    let help = "write the repository's URL, such as \"https://charts.bitnami.com/bitnami\" or \"oci://ghcr.io/org/charts\"";
    if s.starts_with("oci://") {
        return check_oci_repo(s).map(|_| ());
    }
    let bad = || {
        let shown = if s.contains('@') { "this" } else { s };
        Err(Problem::new(
            code::INVALID_URL,
            format!("\"{shown}\" is not a Helm repository URL"),
        )
        .help(help))
    };
    let Some((scheme, rest)) = s
        .split_once("://")
        .filter(|(scheme, _)| matches!(*scheme, "https" | "http"))
    else {
        return bad();
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        return Err(Problem::new(code::INVALID_URL, "the URL contains credentials")
            .within(scheme.len() + 3, userinfo.len() + 1)
            .label("credentials")
            .help("remove them from the URL and keep secrets in files: `auth { username \"…\"; password-file \"…\" }` or `auth { token-file \"…\" }`"));
    }
    if authority.is_empty() || s.contains(['?', '#', ' ']) {
        return bad();
    }
    Ok(())
}

/// Helm values written inline: YAML whose top level is a mapping (or
/// nothing). The problem points at the line and column YAML blames.
pub fn check_values_yaml(s: &str) -> Result<(), Problem> {
    use serde_saphyr::MessageFormatter as _;
    let help = "write Helm values as a YAML mapping, such as `replicaCount: 2`, inside #\"\"\"…\"\"\"#";
    match serde_saphyr::from_str::<Option<serde_json::Value>>(s) {
        Ok(None | Some(serde_json::Value::Object(_) | serde_json::Value::Null)) => Ok(()),
        Ok(Some(_)) => {
            Err(Problem::new(code::INVALID_VALUE, "Helm values must be a YAML mapping").help(help))
        }
        Err(e) => {
            let (line, column) = e
                .location()
                .filter(|l| l.line() > 0)
                .map_or((1, 1), |l| (l.line() as usize, l.column().max(1) as usize));
            let start: usize = s
                .split_inclusive('\n')
                .take(line - 1)
                .map(str::len)
                .sum::<usize>();
            let line_text = s[start.min(s.len())..].lines().next().unwrap_or_default();
            let at = start
                + line_text
                    .char_indices()
                    .nth(column - 1)
                    .map_or(line_text.len(), |(i, _)| i);
            let len = s[at.min(s.len())..].chars().next().map_or(0, char::len_utf8);
            let message: String = serde_saphyr::UserMessageFormatter
                .format_message(&e)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            Err(Problem::new(
                code::INVALID_VALUE,
                format!("the Helm values are not valid YAML: {message}"),
            )
            .within(at.min(s.len()), len)
            .label("here")
            .help(help))
        }
    }
}

/// Helm's release name rule: a DNS-1123 subdomain of at most 53 characters.
fn check_release(s: &str) -> Result<(), Problem> {
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        let lower = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        !l.is_empty()
            && b.first().is_some_and(lower)
            && b.last().is_some_and(lower)
            && b.iter().all(|c| lower(c) || *c == b'-')
    };
    if s.len() <= 53 && s.split('.').all(label_ok) {
        return Ok(());
    }
    Err(Problem::new(code::INVALID_NAME, format!("\"{s}\" is not a valid Helm release name"))
        .help("release names have at most 53 lowercase letters, digits, `-` and `.`, and start and end with a letter or digit"))
}

/// A Kubernetes object name: a DNS subdomain (lowercase letters, digits,
/// `-` and `.`, at most 253 characters, alphanumeric at both ends).
pub fn is_object_name(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 253
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter().all(|c| alnum(c) || *c == b'-' || *c == b'.')
}

/// A label or annotation key: `[prefix/]name`, the prefix a DNS subdomain,
/// the name at most 63 letters, digits, `-`, `_`, `.`, alphanumeric at both ends.
pub fn check_label_key(s: &str) -> Result<(), String> {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix
        && !is_object_name(p)
    {
        return Err(format!("\"{s}\": the prefix \"{p}\" is not a DNS subdomain"));
    }
    if name.is_empty() {
        return Err(format!("\"{s}\": the name part is empty"));
    }
    check_label_value(name).map_err(|_| format!("\"{s}\": the name part \"{name}\" is not valid"))
}

/// A label value: empty, or at most 63 letters, digits, `-`, `_`, `.`,
/// alphanumeric at both ends.
pub fn check_label_value(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_alphanumeric();
    let ok = s.is_empty()
        || (s.len() <= 63
            && b.first().is_some_and(alnum)
            && b.last().is_some_and(alnum)
            && b.iter().all(|c| alnum(c) || matches!(c, b'-' | b'_' | b'.')));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{s}\" is not a valid label value (at most 63 letters, digits, `-`, `_`, `.`, starting and ending alphanumeric)"
        ))
    }
}

fn check_dns_label(s: &str, what: &str) -> Result<(), Problem> {
    let b = s.as_bytes();
    let lower = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ok = !s.is_empty()
        && s.len() <= 63
        && b.first().is_some_and(lower)
        && b.last().is_some_and(lower)
        && b.iter().all(|c| lower(c) || *c == b'-');
    if ok {
        return Ok(());
    }
    let rules = "Kubernetes namespaces have 1 to 63 lowercase letters, digits or `-`, and start and end with a letter or digit";
    let fixed: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if matches!(c, '_' | '.' | ' ') { '-' } else { c })
        .collect();
    let fixed = fixed.trim_matches('-');
    let help = if fixed != s && check_dns_label(fixed, what).is_ok() {
        format!("{rules}: \"{fixed}\" would do")
    } else {
        rules.to_string()
    };
    Err(Problem::new(code::INVALID_NAME, format!("\"{s}\" is not a valid {what}")).help(help))
}

fn check_path(s: &str) -> Result<(), Problem> {
    if s.is_empty() {
        Err(Problem::new(code::INVALID_VALUE, "empty path"))
    } else if s.contains('\0') {
        Err(Problem::new(
            code::INVALID_VALUE,
            "a path cannot contain a NUL character",
        ))
    } else {
        Ok(())
    }
}

/// A path inside a repository, normalised: no leading `./`, no trailing
/// `/`, `.` for the root. Absolute paths and `..` are refused so an app can
/// never read outside its source.
pub fn check_rel_path(s: &str) -> Result<String, Problem> {
    check_path(s)?;
    if s.starts_with('/') || s.starts_with('\\') {
        return Err(Problem::new(code::INVALID_VALUE, format!("\"{s}\" is absolute"))
            .help("paths are relative to the root of the source, e.g. \"apps/podinfo\""));
    }
    let mut parts = Vec::new();
    for part in s.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(Problem::new(
                    code::INVALID_VALUE,
                    format!("\"{s}\" leaves the source with `..`"),
                )
                .help("paths are relative to the root of the source and stay inside it"));
            }
            p => parts.push(p),
        }
    }
    Ok(if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    })
}

fn check_git_url(s: &str) -> Result<(), Problem> {
    let help = "use https://host/org/repo.git, ssh://git@host/org/repo.git, git@host:org/repo.git, git://host/repo or file:///path/to/repo";
    // `ext::COMMAND`, `fd::…` and other `<helper>::<address>` forms make git
    // run a program: never a URL of a source.
    if let Some(helper) = s.find("::").filter(|at| !s[..*at].contains('/')) {
        return Err(Problem::new(
            code::INVALID_URL,
            format!(
                "\"{}::\" is git's syntax for running a remote helper, not a URL",
                &s[..helper]
            ),
        )
        .within(0, helper + 2)
        .label("remote helper")
        .help(help));
    }
    // A host or user that starts with `-` would reach ssh as an option.
    let option_like = |part: &str, offset: usize| {
        part.starts_with('-').then(|| {
            Problem::new(
                code::INVALID_URL,
                format!("\"{part}\" starts with `-`: ssh would read it as an option"),
            )
            .within(offset, part.len())
            .label("starts with `-`")
            .help(help)
        })
    };
    if let Some((scheme, rest)) = s.split_once("://") {
        if !matches!(scheme, "https" | "http" | "ssh" | "git" | "file") {
            return Err(
                Problem::new(code::INVALID_URL, format!("unsupported URL scheme \"{scheme}\""))
                    .within(0, scheme.len())
                    .label("unsupported scheme")
                    .help(help),
            );
        }
        if rest.is_empty() || (scheme != "file" && rest.starts_with('/')) {
            return Err(Problem::new(code::INVALID_URL, format!("\"{s}\" has no host")).help(help));
        }
        if scheme != "file" {
            let authority = rest.split('/').next().unwrap_or_default();
            let start = scheme.len() + 3;
            let (user, host) = match authority.rsplit_once('@') {
                Some((user, host)) => (Some(user), (host, start + user.len() + 1)),
                None => (None, (authority, start)),
            };
            if let Some(p) = user
                .and_then(|u| option_like(u, start))
                .or_else(|| option_like(host.0, host.1))
            {
                return Err(p);
            }
            if let Some((userinfo, _)) = authority.rsplit_once('@')
                && (userinfo.contains(':') || scheme.starts_with("http"))
            {
                // Never repeat the user info in messages: it may be a token.
                return Err(Problem::new(code::INVALID_URL, "the URL contains credentials")
                    .within(scheme.len() + 3, userinfo.len() + 1)
                    .label("credentials")
                    .help("remove them from the URL and keep secrets in files: `auth { username \"…\"; password-file \"…\" }` or `auth { token-file \"…\" }`"));
            }
        }
        return Ok(());
    }
    // scp-like: [user@]host:path
    if let Some((host, path)) = s.split_once(':')
        && !host.is_empty()
        && !path.is_empty()
        && !host.contains('/')
    {
        let (user, host_at) = match host.rsplit_once('@') {
            Some((user, h)) => (Some(user), (h, user.len() + 1)),
            None => (None, (host, 0)),
        };
        if let Some(p) = user
            .and_then(|u| option_like(u, 0))
            .or_else(|| option_like(host_at.0, host_at.1))
        {
            return Err(p);
        }
        return Ok(());
    }
    Err(Problem::new(code::INVALID_URL, format!("\"{s}\" is not a git URL")).help(help))
}

/// An OCI repository reference without tag or digest; `oci://` is allowed
/// (Flux writes it) and stripped. Returns the repository.
pub fn check_oci_repo(s: &str) -> Result<String, Problem> {
    let repo = s.strip_prefix("oci://").unwrap_or(s);
    let help = "write the repository without tag or digest, such as \"ghcr.io/org/app\"";
    if repo.is_empty() {
        return Err(Problem::new(code::INVALID_URL, "empty repository").help(help));
    }
    if let Some(at) = repo.find('@') {
        return Err(Problem::new(code::INVALID_URL, "the repository includes a digest")
            .within(s.len() - repo.len() + at, repo.len() - at)
            .label("digest")
            .help("remove it: a source pins a digest with `digest \"sha256:…\"`; an image policy chooses tags itself"));
    }
    if repo.contains("://") {
        return Err(Problem::new(code::INVALID_URL, format!("\"{s}\" is not an OCI repository")).help(help));
    }
    let mut components = repo.split('/');
    let first = components.next().unwrap_or_default();
    let has_host = repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let path_start = if has_host { first.len() + 1 } else { 0 };
    let path = &repo[path_start.min(repo.len())..];
    if let Some(colon) = path.rfind(':') {
        let at = s.len() - repo.len() + path_start + colon;
        let tag = &s[at + 1..];
        return Err(Problem::new(code::INVALID_URL, format!("the repository includes the tag \"{tag}\""))
            .within(at, s.len() - at)
            .label("tag")
            .help(format!("remove \":{tag}\": a source picks its tag with `tag \"{tag}\"` (or `semver`, `digest`); an image policy picks tags by its policy")));
    }
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
            && c.as_bytes().first().is_some_and(|b| b.is_ascii_alphanumeric())
            && c.as_bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
    };
    if path.is_empty() || !path.split('/').all(component_ok) {
        return Err(Problem::new(
            code::INVALID_URL,
            format!("\"{s}\" is not a valid OCI repository"),
        )
        .help("repository paths use lowercase letters, digits, `.`, `_` and `-`, e.g. \"ghcr.io/org/app\""));
    }
    Ok(repo.to_string())
}

fn check_branch(s: &str) -> Result<(), Problem> {
    if let Some(short) = s.strip_prefix("refs/heads/") {
        return Err(Problem::new(
            code::INVALID_VALUE,
            format!("\"{s}\" is a full ref name, not a branch name"),
        )
        .help(format!("write the branch name alone: \"{short}\"")));
    }
    if s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'') {
        return Err(Problem::new(
            code::INVALID_VALUE,
            format!("the branch name {s} includes its quotes"),
        )
        .help(format!(
            "KDL strings use double quotes: \"{}\"",
            &s[1..s.len() - 1]
        )));
    }
    let bad_char = s
        .char_indices()
        .find(|(_, c)| c.is_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\'));
    let invalid = s.is_empty()
        || bad_char.is_some()
        || s.starts_with(['-', '/'])
        || s.ends_with(['/', '.'])
        || s.ends_with(".lock")
        || s.contains("..")
        || s.contains("@{")
        || s.contains("//")
        || s == "@";
    if !invalid {
        return Ok(());
    }
    let mut p = Problem::new(code::INVALID_VALUE, format!("\"{s}\" is not a valid branch name"))
        .help("branch names follow `git check-ref-format`: no spaces, `~ ^ : ? * [ \\`, `..` or `@{`; write \"main\", not \"refs/heads/main\" or \"origin/main\"");
    if let Some((i, c)) = bad_char {
        p.within = Some((i, c.len_utf8()));
    }
    Err(p)
}

fn check_digest(s: &str) -> Result<(), Problem> {
    let ok = match s.split_once(':') {
        Some(("sha256", hex)) => hex.len() == 64,
        Some(("sha512", hex)) => hex.len() == 128,
        _ => false,
    } && s.split_once(':').is_some_and(|(_, hex)| {
        hex.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        Ok(())
    } else {
        Err(
            Problem::new(code::INVALID_VALUE, format!("\"{s}\" is not a digest"))
                .help("write \"sha256:\" followed by 64 lowercase hex digits"),
        )
    }
}

/// The candidate closest to `name`, if one is close enough to be a typo.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| {
            *d <= limit || (c.len() > 2 && name.len() > 2 && (c.contains(name) || name.contains(c)))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("100MB"), Ok(100_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert!(parse_size("0").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
        assert!(parse_size("MiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("five minutes").is_err());
    }

    #[test]
    fn rel_paths_are_normalised_and_confined() {
        assert_eq!(check_rel_path("./apps/podinfo/").unwrap(), "apps/podinfo");
        assert_eq!(check_rel_path(".").unwrap(), ".");
        assert!(check_rel_path("../etc").is_err());
        assert!(check_rel_path("apps/../../etc").is_err());
        assert!(check_rel_path("/etc").is_err());
    }

    #[test]
    fn timestamps_beyond_the_range_say_so() {
        assert!(parse_timestamp("9999-12-30T21:00:00Z").is_ok());
        let far = parse_timestamp("9999-12-31T23:59:59Z").unwrap_err();
        assert!(far.message.contains("outside the range"), "{}", far.message);
        let bad = parse_timestamp("2026-13-01T00:00:00Z").unwrap_err();
        assert!(
            bad.message.contains("not an RFC 3339 timestamp"),
            "{}",
            bad.message
        );
        let no_offset = parse_timestamp("2026-12-01T09:00:00").unwrap_err();
        assert!(
            no_offset.message.contains("not an RFC 3339"),
            "{}",
            no_offset.message
        );
    }

    #[test]
    fn git_urls() {
        for ok in [
            "https://github.com/acme/platform.git",
            "ssh://git@github.com/acme/platform.git",
            "git@github.com:acme/platform.git",
            "git://127.0.0.1:9418/repo",
            "file:///srv/git/repo.git",
        ] {
            assert_eq!(check_git_url(ok), Ok(()), "{ok}");
        }
        assert!(check_git_url("ftp://host/repo").is_err());
        for bad in [
            "ext::sh -c touch% /tmp/pwned",
            "fd::17",
            "-oProxyCommand=touch /tmp/pwned:repo",
            "git@-oProxyCommand=x:repo",
            "ssh://-oProxyCommand=x/repo",
            "ssh://-l@host/repo",
        ] {
            assert!(check_git_url(bad).is_err(), "{bad}");
        }
        assert!(check_git_url("platform").is_err());
        let creds = check_git_url("https://bot:s3cret@github.com/acme/p.git").unwrap_err();
        assert_eq!(creds.within, Some((8, 11)));
        assert!(!creds.message.contains("s3cret"));
    }

    #[test]
    fn oci_repositories() {
        assert_eq!(check_oci_repo("ghcr.io/org/app").unwrap(), "ghcr.io/org/app");
        assert_eq!(
            check_oci_repo("oci://ghcr.io/org/app").unwrap(),
            "ghcr.io/org/app"
        );
        assert_eq!(
            check_oci_repo("localhost:5000/app").unwrap(),
            "localhost:5000/app"
        );
        assert_eq!(check_oci_repo("nginx").unwrap(), "nginx");
        let tagged = check_oci_repo("ghcr.io/org/app:6.5.0").unwrap_err();
        assert_eq!(tagged.within, Some((15, 6)));
        assert!(check_oci_repo("ghcr.io/org/app@sha256:abc").is_err());
        assert!(check_oci_repo("ghcr.io/Org/App").is_err());
    }

    #[test]
    fn regex_errors_point_into_the_pattern() {
        let p = compile_regex("^main-(?<ts>\\d+$").unwrap_err();
        assert_eq!(p.code, code::INVALID_REGEX);
        assert!(p.within.is_some());
        assert!(compile_regex(r"^v?\d+\.\d+$").is_ok());
        let groups = check_regex(r"^main-(?<sha>[a-f0-9]+)-(?<ts>\d+)$").unwrap();
        assert_eq!(groups.count, 3);
        assert_eq!(groups.names.len(), 2);
        assert!(groups.names.iter().any(|n| n == "ts"));
        assert!(check_regex("^(a$").is_err());
        assert_eq!(check_regex("a{2}(?<x>b)").unwrap().names, ["x"]);
        assert!(check_regex("\\w{1000}{1000}").is_err());
    }

    #[test]
    fn semver_ranges() {
        for ok in [
            ">=1.2.0 <2.0.0",
            ">=1.2.0, <2.0.0",
            ">0,<2.0",
            "^6.0.0",
            "^6",
            "~1.4",
            "6.x",
            "*",
            "x",
            ">= 6.0",
            "1.2.3 - 2.3.4",
            ">=1.0.0-0",
            "v1.2.3",
            "^1.2.3-rc.1+build.5",
            "^1 || ^2",
            "^1||^2",
            "~>1.0",
            "!=1.3.0",
            "=>1.0, =<2",
        ] {
            assert_eq!(check_semver(ok), Ok(()), "{ok}");
        }
        for (bad, token) in [
            (">= 6.0 <<7", "<"),
            ("^6.0.0 || banana", "banana"),
            (">=1.0.0 foo", "foo"),
            ("latest", "latest"),
            ("6.0.0.0", "."),
            (">=", ">="),
            (">=1.0.0<2.0.0", "<2.0.0"),
        ] {
            let p = check_semver(bad).unwrap_err();
            let (start, len) = p.within.unwrap_or_else(|| panic!("{bad}: no span"));
            assert_eq!(&bad[start..start + len], token, "{bad}");
            assert!(p.help.is_some_and(|h| h.contains("Masterminds")), "{bad}");
        }
        assert!(check_semver("").unwrap_err().message.contains("empty"));
        assert!(check_semver("1 || ").unwrap_err().message.contains("\"||\""));
    }

    #[test]
    fn duration_problems_point_at_the_bad_part() {
        fn at(s: &str) -> &str {
            let (start, len) = parse_duration(s).unwrap_err().within.unwrap();
            &s[start..start + len]
        }
        assert_eq!(at("1x"), "x");
        assert_eq!(at("five"), "five");
        assert_eq!(at("5"), "5");
        assert_eq!(at("1m 30"), "30");
    }

    #[test]
    fn branches() {
        assert!(check_branch("main").is_ok());
        assert!(check_branch("release/1.2").is_ok());
        assert!(check_branch("my branch").is_err());
        assert!(check_branch("a..b").is_err());
        assert!(check_branch("x.lock").is_err());
        assert!(check_branch("refs/heads/main").is_err());
        assert!(check_branch("'main'").is_err());
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("intervall", ["interval", "timeout"]), Some("interval"));
        assert_eq!(suggest("brnach", ["branch", "tag"]), Some("branch"));
        assert_eq!(suggest("zzz", ["branch", "tag"]), None);
    }

    #[test]
    fn helm_repositories_releases_and_values() {
        for ok in [
            "https://charts.bitnami.com/bitnami",
            "http://127.0.0.1:8080/charts",
            "oci://ghcr.io/acme/charts",
        ] {
            assert_eq!(check_str(Ty::HelmRepo, ok), Ok(()), "{ok}");
        }
        for bad in [
            "charts.bitnami.com",
            "ftp://x/y",
            "https://",
            "https://x/index.yaml?a=b",
            "oci://ghcr.io/acme/charts:1.0",
        ] {
            assert!(check_str(Ty::HelmRepo, bad).is_err(), "{bad}");
        }
        for ok in ["cache", "my-app.v2", "a"] {
            assert_eq!(check_str(Ty::Release, ok), Ok(()), "{ok}");
        }
        for bad in ["Cache", "a_b", "-a", "a.", &"x".repeat(54)] {
            assert!(check_str(Ty::Release, bad).is_err(), "{bad}");
        }
        assert_eq!(check_values_yaml("a: 1\nb: { c: [1, 2] }\n"), Ok(()));
        assert_eq!(check_values_yaml(""), Ok(()));
        let list = check_values_yaml("- a\n- b\n").expect_err("a list");
        assert!(list.message.contains("mapping"), "{list:?}");
        let broken = check_values_yaml("a: 1\nb: [1, 2\n").expect_err("broken");
        let (at, _) = broken.within.expect("a position");
        assert!(at >= "a: 1\n".len(), "{broken:?}");
    }
}
