//! Pass 2, shape: every node of the tree against the [`schema`] table —
//! unknown nodes and properties, counts, value types and formats,
//! exclusive options — each problem reported, none stopping the pass.

use std::collections::HashMap;

use miette::SourceSpan;

use super::super::diagnostic::{Diagnostic, code};
use super::super::schema::{self, Args, Children, NodeSpec, Ty};
use super::super::syntax::{Block, Document, Entry, Node, Value};
use super::super::value::{self, Problem};
use super::spans::span_within;

const TOP_LEVEL: &str = "the top level";

/// Check every node of `doc` (parsed from `text`) against the schema table.
pub fn check_shape(doc: &Document, text: &str, diags: &mut Vec<Diagnostic>) {
    check_children(text, doc.nodes(), &schema::DOCUMENT, TOP_LEVEL, diags);
}

/// "in source \"platform\"", "at the top level".
fn in_desc(desc: &str) -> String {
    if desc == TOP_LEVEL {
        format!("at {desc}")
    } else {
        format!("in {desc}")
    }
}

fn check_children(
    text: &str,
    nodes: &[Node],
    parent: &NodeSpec,
    parent_desc: &str,
    diags: &mut Vec<Diagnostic>,
) {
    match parent.children {
        Children::None => {}
        Children::Free { name_ty, args, .. } => {
            for node in nodes {
                if let Err(p) = value::check_str(name_ty, node.name().value()) {
                    diags.push(problem_at(text, p, node.name().span(), None));
                }
                check_args(text, node, Some(&args), node.children().is_none(), diags);
                check_props(text, node, &[], diags);
                if let Some(children) = node.children() {
                    diags.push(unexpected_children(node, children));
                }
            }
        }
        Children::Nodes(specs) => {
            let mut seen: HashMap<&str, SourceSpan> = HashMap::new();
            for node in nodes {
                let name = node.name().value();
                let Some(spec) = specs.iter().find(|s| s.name == name) else {
                    diags.push(unknown_node(node, parent, parent_desc));
                    continue;
                };
                if spec.max == Some(1) {
                    if let Some(first) = seen.get(name) {
                        diags.push(
                            Diagnostic::error(
                                code::DUPLICATE_NODE,
                                node.name().span(),
                                format!("`{name}` is given twice {}", in_desc(parent_desc)),
                            )
                            .label("second one")
                            .related(*first, "first one")
                            .help(format!("keep one `{name}`")),
                        );
                    } else {
                        seen.insert(name, node.name().span());
                    }
                }
                check_node(text, node, spec, diags);
            }
            // A misspelt required node is reported as unknown, not also as missing.
            let typos = misspelt(nodes, parent);
            for spec in specs.iter().filter(|s| s.min > 0 && !typos.contains(&s.name)) {
                if !nodes.iter().any(|n| n.name().value() == spec.name) {
                    let arg_hint = example_for(spec);
                    diags.push(
                        Diagnostic::error(
                            code::MISSING_VALUE,
                            SourceSpan::from((0, 0)),
                            format!("{parent_desc} needs a `{}`", spec.name),
                        )
                        .help(format!("add `{}{arg_hint}` inside it", spec.name)),
                    );
                }
            }
        }
    }
}

/// The names of `parent`'s children that unknown nodes among `nodes` look
/// like misspellings of.
fn misspelt(nodes: &[Node], parent: &NodeSpec) -> Vec<&'static str> {
    let names = parent.child_names();
    nodes
        .iter()
        .filter(|n| parent.child(n.name().value()).is_none())
        .filter_map(|n| value::suggest(n.name().value(), names.iter().copied()))
        .collect()
}

fn check_node(text: &str, node: &Node, spec: &NodeSpec, diags: &mut Vec<Diagnostic>) {
    let block_instead_of_value = matches!(spec.children, Children::None) && node.children().is_some();
    // `interval { … }`: one error about the block, not also one about the
    // missing value.
    check_args(text, node, spec.args.as_ref(), !block_instead_of_value, diags);
    check_props(text, node, spec.props, diags);
    let desc = describe_node(node, spec);
    let child_start = diags.len();
    match (&spec.children, node.children()) {
        (Children::None, Some(children)) => diags.push(unexpected_children(node, children)),
        (Children::None, None) => {}
        (_, children) => {
            let nodes = children.map(|c| c.nodes()).unwrap_or_default();
            check_children(text, nodes, spec, &desc, diags);
        }
    }
    // A missing required child is reported at the parent's name.
    for d in &mut diags[child_start..] {
        if d.code == code::MISSING_VALUE && d.span == SourceSpan::from((0, 0)) {
            d.span = node.name().span();
            d.label = "declared here".into();
        }
    }
    check_one_of(node, spec, &desc, diags);
}

/// "`source \"platform\"`" for named objects, "`wait`" otherwise.
fn describe_node(node: &Node, spec: &NodeSpec) -> String {
    match (
        spec.args.map(|a| a.ty),
        node.entries().iter().find(|e| e.name().is_none()),
    ) {
        (Some(Ty::Name), Some(entry)) => match entry.value().as_string() {
            Some(name) => format!("{} \"{name}\"", spec.name),
            None => format!("`{}`", spec.name),
        },
        _ => format!("`{}`", spec.name),
    }
}

/// `allow_missing: false` skips the "needs a value" error (when another
/// error already explains it).
fn check_args(
    text: &str,
    node: &Node,
    args: Option<&Args>,
    allow_missing: bool,
    diags: &mut Vec<Diagnostic>,
) {
    let positional: Vec<&Entry> = node.entries().iter().filter(|e| e.name().is_none()).collect();
    let name = node.name().value();
    let max = args.map_or(Some(0), |a| a.max);
    if let Some(max) = max
        && let (Some(first), Some(last)) = (positional.get(max), positional.last())
    {
        let span = SourceSpan::from((
            first.span().offset(),
            last.span().offset() + last.span().len() - first.span().offset(),
        ));
        let extra = positional.len() - max;
        let message = match max {
            0 => format!("`{name}` takes no arguments"),
            1 => format!("`{name}` takes 1 argument"),
            n => format!("`{name}` takes {n} arguments"),
        };
        let help = match unquoted_run(text, node, first) {
            Some(h) => h,
            None if max == 0 => node_props_hint(node).unwrap_or_else(|| "remove it".into()),
            None if extra > 1 => "remove them, or put each on a node of its own".into(),
            None => "remove it, or put it on a node of its own".into(),
        };
        diags.push(
            Diagnostic::error(code::UNEXPECTED_ARGUMENT, span, message)
                .label(if extra > 1 {
                    "extra arguments"
                } else {
                    "extra argument"
                })
                .help(help),
        );
    }
    let Some(args) = args else { return };
    if positional.len() < args.min && allow_missing {
        let hint = example_for_args(args);
        diags.push(
            Diagnostic::error(
                code::MISSING_VALUE,
                node.name().span(),
                format!("`{name}` needs {}", article(args)),
            )
            .label(format!("expects {}", describe(args.ty)))
            .help(format!("write it after the node name: `{name}{hint}`")),
        );
    }
    for entry in positional.iter().take(args.max.unwrap_or(usize::MAX)) {
        check_value(text, entry, args.ty, diags);
    }
}

/// An unquoted value with spaces reads as several values: for
/// `reason=memory leak`, "quote it: reason=\"memory leak\"".
fn unquoted_run(text: &str, node: &Node, first_extra: &Entry) -> Option<String> {
    let entries = node.entries();
    let at = entries.iter().position(|e| std::ptr::eq(e, first_extra))?;
    let start = at.checked_sub(1)?;
    let is_bare = |e: &Entry| e.value().is_string() && !repr(text, e).starts_with(['"', '#']);
    if !is_bare(&entries[start]) {
        return None;
    }
    let words: Vec<&str> = entries[start..]
        .iter()
        .take_while(|e| is_bare(e) && (e.name().is_none() || std::ptr::eq(*e, &entries[start])))
        .filter_map(|e| e.value().as_string())
        .collect();
    let text = words.join(" ");
    let quoted = schema::q(&text);
    Some(match entries[start].name() {
        Some(key) => format!("if `{text}` is one value, quote it: `{}={quoted}`", key.value()),
        None if start == 0 => format!(
            "if `{text}` is one value, quote it: `{} {quoted}`",
            node.name().value()
        ),
        None => format!("if `{text}` is one value, quote it: `{quoted}`"),
    })
}

fn node_props_hint(node: &Node) -> Option<String> {
    let spec_props = find_spec(node.name().value())?.props;
    let first = spec_props.first()?;
    Some(format!(
        "`{}` is configured with properties, e.g. `{} {}=…`",
        node.name().value(),
        node.name().value(),
        first.name
    ))
}

pub(in crate::config) fn find_spec(name: &str) -> Option<&'static NodeSpec> {
    fn walk(spec: &'static NodeSpec, name: &str) -> Option<&'static NodeSpec> {
        if let Children::Nodes(nodes) = spec.children {
            for n in nodes {
                if n.name == name {
                    return Some(n);
                }
                if let Some(found) = walk(n, name) {
                    return Some(found);
                }
            }
        }
        None
    }
    walk(&schema::DOCUMENT, name)
}

fn article(args: &Args) -> String {
    let what = args.name;
    if args.min > 1 {
        format!("at least {} values ({what})", args.min)
    } else if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {what}")
    } else {
        format!("a {what}")
    }
}

fn check_props(text: &str, node: &Node, props: &[schema::Prop], diags: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&str, SourceSpan> = HashMap::new();
    let node_name = node.name().value();
    for entry in node.entries() {
        let Some(key) = entry.name() else { continue };
        let key_name = key.value();
        let Some(spec) = props.iter().find(|p| p.name == key_name) else {
            let mut d = Diagnostic::error(
                code::UNKNOWN_PROPERTY,
                key.span(),
                format!("`{node_name}` has no property `{key_name}`"),
            )
            .label("unknown property");
            let names = props.iter().map(|p| p.name);
            d = d.with_help(match value::suggest(key_name, names) {
                Some(s) => Some(format!("did you mean `{s}`?")),
                None if props.is_empty() => {
                    let child = find_spec(node_name).and_then(|s| s.child(key_name));
                    match child {
                        Some(_) => Some(format!(
                            "`{key_name}` is a child node: `{node_name} {{ {key_name} … }}`"
                        )),
                        None => Some(format!("`{node_name}` takes no properties")),
                    }
                }
                None => Some(format!(
                    "`{node_name}` takes {}",
                    list_names(props.iter().map(|p| p.name))
                )),
            });
            diags.push(d);
            continue;
        };
        if let Some(first) = seen.insert(key_name, key.span()) {
            diags.push(
                Diagnostic::error(
                    code::DUPLICATE_PROPERTY,
                    key.span(),
                    format!("`{key_name}` is given twice"),
                )
                .label("second one")
                .related(first, "first one")
                .help(format!("keep one `{key_name}=`")),
            );
        }
        check_value(text, entry, spec.ty, diags);
    }
    let typos = misspelt_props(node, props);
    for p in props.iter().filter(|p| p.required && !typos.contains(&p.name)) {
        if !node
            .entries()
            .iter()
            .any(|e| e.name().is_some_and(|k| k.value() == p.name))
        {
            let hint = example_value(p.ty);
            diags.push(
                Diagnostic::error(
                    code::MISSING_VALUE,
                    node.name().span(),
                    format!("`{node_name}` needs the property `{}`", p.name),
                )
                .label(format!("`{}` missing", p.name))
                .help(format!("add `{}={hint}`", p.name)),
            );
        }
    }
}

/// "`a`, `b` and `c`".
pub(super) fn list_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    join_names(names, "and")
}

/// "`a`, `b` or `c`".
fn list_alternatives<'a>(names: impl Iterator<Item = &'a str>) -> String {
    join_names(names, "or")
}

fn join_names<'a>(names: impl Iterator<Item = &'a str>, conjunction: &str) -> String {
    let v: Vec<String> = names.map(|n| format!("`{n}`")).collect();
    match v.split_last() {
        None => "nothing".into(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} {conjunction} {last}", rest.join(", ")),
    }
}

fn unknown_node(node: &Node, parent: &NodeSpec, parent_desc: &str) -> Diagnostic {
    let name = node.name().value();
    let names = parent.child_names();
    let help = match value::suggest(name, names.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => match find_spec(name) {
            Some(_) => {
                let owners = owners_of(name);
                if owners.contains(&parent.name) {
                    // e.g. `ssh-key` in an image's `auth`: right node name, wrong place.
                    format!(
                        "`{name}` does not apply here; {parent_desc} takes {}",
                        list_names(names.iter().copied())
                    )
                } else {
                    format!("`{name}` belongs inside {}", list_names(owners.iter().copied()))
                }
            }
            None => format!("{parent_desc} takes {}", list_names(names.iter().copied())),
        },
    };
    Diagnostic::error(
        code::UNKNOWN_NODE,
        node.name().span(),
        format!("unknown node `{name}` {}", in_desc(parent_desc)),
    )
    .label("unknown node")
    .help(help)
}

/// The names of nodes that have a child called `name`.
fn owners_of(name: &str) -> Vec<&'static str> {
    fn walk(spec: &'static NodeSpec, name: &str, out: &mut Vec<&'static str>) {
        if let Children::Nodes(nodes) = spec.children {
            if nodes.iter().any(|n| n.name == name) && spec.name != "document" && !out.contains(&spec.name) {
                out.push(spec.name);
            }
            for n in nodes {
                walk(n, name, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&schema::DOCUMENT, name, &mut out);
    out
}

fn unexpected_children(node: &Node, children: &Block) -> Diagnostic {
    let name = node.name().value();
    let help = match find_spec(name).map(|s| (s.args, s.props)) {
        Some((Some(args), _)) => {
            let example = example_for_args(&args);
            format!("`{name}` takes a value, not a block: write `{name}{example}`")
        }
        Some((None, props)) if !props.is_empty() => {
            format!(
                "`{name}` is configured with properties: `{name} {}=…`",
                props[0].name
            )
        }
        _ => "remove the block".into(),
    };
    Diagnostic::error(
        code::UNEXPECTED_CHILDREN,
        children.span(),
        format!("`{name}` takes no children block"),
    )
    .label("unexpected block")
    .help(help)
}

/// Props of `node` not in `props` that look like misspellings of one.
fn misspelt_props<'a>(node: &Node, props: &'a [schema::Prop]) -> Vec<&'a str> {
    node.entries()
        .iter()
        .filter_map(|e| e.name())
        .filter(|k| !props.iter().any(|p| p.name == k.value()))
        .filter_map(|k| value::suggest(k.value(), props.iter().map(|p| p.name)))
        .collect()
}

fn check_one_of(node: &Node, spec: &NodeSpec, desc: &str, diags: &mut Vec<Diagnostic>) {
    let mut typos = misspelt_props(node, spec.props);
    if let Some(children) = node.children() {
        typos.extend(misspelt(children.nodes(), spec));
    }
    for group in spec.one_of {
        let mut present: Vec<(&str, SourceSpan)> = Vec::new();
        for entry in node.entries() {
            if let Some(k) = entry.name()
                && let Some(n) = group.names.iter().find(|n| **n == k.value())
            {
                present.push((n, k.span()));
            }
        }
        if let Some(children) = node.children() {
            for child in children.nodes() {
                if let Some(n) = group.names.iter().find(|n| **n == child.name().value()) {
                    present.push((n, child.name().span()));
                }
            }
        }
        // Repeats of one name are reported as duplicates elsewhere.
        let mut distinct: Vec<(&str, SourceSpan)> = Vec::new();
        for (n, span) in present {
            if !distinct.iter().any(|(d, _)| *d == n) {
                distinct.push((n, span));
            }
        }
        if let [(first, first_span), (second, second_span), ref rest @ ..] = distinct[..] {
            let mut d = Diagnostic::error(
                code::CONFLICTING_OPTIONS,
                second_span,
                format!("{desc} sets both `{first}` and `{second}`"),
            )
            .label(format!("conflicts with `{first}`"))
            .related(first_span, "set here")
            .help(format!(
                "keep only one of {}",
                list_alternatives(group.names.iter().copied())
            ));
            for (n, span) in rest {
                d = d.related(*span, format!("`{n}` conflicts too"));
            }
            diags.push(d);
        } else if distinct.is_empty() && group.required && !typos.iter().any(|t| group.names.contains(t)) {
            let subject = if spec.name == "suspend" {
                "`suspend`".to_string()
            } else {
                desc.to_string()
            };
            diags.push(
                Diagnostic::error(
                    code::MISSING_VALUE,
                    node.name().span(),
                    format!(
                        "{subject} needs one of {}",
                        list_alternatives(group.names.iter().copied())
                    ),
                )
                .label("declared here")
                .help(one_of_help(spec.name, group.names)),
            );
        }
    }
}

fn one_of_help(node: &str, names: &[&str]) -> String {
    match node {
        "source" => "add `git \"https://…\"` or `oci \"registry/repository\"`".into(),
        "image" => {
            "add a policy: `semver \"^1.0.0\"`, `alphabetical order=\"asc\"` or `numerical order=\"asc\"`"
                .into()
        }
        "suspend" => "name what to suspend: `suspend app=\"NAME\"` (or source=, image=, automation=)".into(),
        _ => format!("add one of {}", list_names(names.iter().copied())),
    }
}

fn check_value(text: &str, entry: &Entry, ty: Ty, diags: &mut Vec<Diagnostic>) {
    let span = value_span(entry);
    let found = entry.value();
    let type_ok = match (ty, found) {
        (Ty::Bool, Value::Bool(_)) => true,
        (Ty::Int { .. }, Value::Integer(_)) => true,
        (Ty::Bool | Ty::Int { .. }, _) => false,
        (_, Value::String(_)) => true,
        _ => false,
    };
    if !type_ok {
        diags.push(wrong_type(text, entry, ty, span));
        return;
    }
    match (ty, found) {
        (Ty::Int { min, max }, Value::Integer(i)) if *i < i128::from(min) || *i > i128::from(max) => {
            diags.push(
                Diagnostic::error(code::INVALID_VALUE, span, format!("{i} is out of range"))
                    .label(format!("expected {}", describe(ty)))
                    .help(format!("use a value from {min} to {max}")),
            );
        }
        // A reference is checked against the declared names instead.
        (Ty::Ref(_), Value::String(s)) if !s.is_empty() => {}
        (_, Value::String(s)) => {
            if let Err(mut p) = value::check_str(ty, s) {
                if let (Ty::Enum(_), Some(key)) = (ty, entry.name()) {
                    p.message = format!("`{}` cannot be \"{s}\"", key.value());
                    p.label = Some("not an allowed value".into());
                }
                diags.push(problem_at(text, p, span, Some(entry)));
            }
        }
        _ => {}
    }
}

/// `Ty::describe`, with "an" where English wants it.
fn describe(ty: Ty) -> String {
    match ty {
        Ty::Ref(kind @ (schema::RefKind::App | schema::RefKind::Image | schema::RefKind::Automation)) => {
            format!("the name of an {}", kind.as_str())
        }
        other => other.describe(),
    }
}

fn wrong_type(text: &str, entry: &Entry, ty: Ty, span: SourceSpan) -> Diagnostic {
    let found = entry.value();
    let repr = repr(text, entry);
    let found_desc = match found {
        Value::String(s) if s.chars().count() <= 40 => format!("the string \"{s}\""),
        Value::String(_) => "a string".to_string(),
        Value::Integer(_) | Value::Float(_) => {
            format!("the number {}", repr)
        }
        Value::Bool(b) => format!("#{b}"),
        Value::Null => "#null".to_string(),
    };
    let help = match (ty, found) {
        (Ty::Bool, Value::String(s)) if &**s == "true" || &**s == "false" => {
            format!("write #{s} without quotes")
        }
        (Ty::Bool, Value::String(s)) if matches!(&**s, "yes" | "on") => "write #true".into(),
        (Ty::Bool, Value::String(s)) if matches!(&**s, "no" | "off") => "write #false".into(),
        (Ty::Int { .. }, Value::String(s)) if s.parse::<i64>().is_ok() => {
            format!("write {s} without quotes")
        }
        (Ty::Duration, Value::Integer(i)) => format!("durations are strings with a unit: \"{i}s\""),
        (_, Value::Integer(_) | Value::Float(_)) => {
            let text = repr;
            format!("quote it: \"{text}\"")
        }
        (_, Value::Bool(b)) => format!("quote it (\"{b}\") if you mean the text"),
        _ => format!("write {}", describe(ty)),
    };
    Diagnostic::error(
        code::WRONG_TYPE,
        span,
        format!("expected {}, found {found_desc}", describe(ty)),
    )
    .label(format!("expected {}", ty.kdl_type()))
    .help(help)
}

pub(super) fn problem_at(text: &str, p: Problem, span: SourceSpan, entry: Option<&Entry>) -> Diagnostic {
    let span = match (p.within, entry) {
        (Some((start, len)), Some(entry)) => span_within(text, entry, start, len).unwrap_or(span),
        (Some((start, len)), None) => SourceSpan::from((span.offset() + start, len)),
        _ => span,
    };
    let label = p.label.unwrap_or_else(|| {
        match p.code {
            code::INVALID_DURATION => "not a duration",
            code::INVALID_TIMESTAMP => "not a timestamp",
            code::INVALID_SEMVER => "not a semver range",
            code::INVALID_NAME => "invalid name",
            _ => "invalid value",
        }
        .to_string()
    });
    let escaped = entry.is_some_and(|e| {
        let r = repr(text, e);
        r.starts_with('"') && r.contains('\\')
    });
    let help = match p.help {
        Some(h) if p.code == code::INVALID_REGEX && escaped => Some(format!(
            "{h}; a raw string such as #\"^v\\d+$\"# needs no doubled backslashes"
        )),
        other => other,
    };
    Diagnostic::error(p.code, span, p.message)
        .label(label)
        .with_help(help)
}

/// An example of how to write a node's arguments, for help texts.
fn example_for(spec: &NodeSpec) -> String {
    match &spec.args {
        Some(args) => example_for_args(args),
        None => match spec.props.iter().find(|p| p.required) {
            Some(p) => format!(" {}={}", p.name, example_value(p.ty)),
            None => String::new(),
        },
    }
}

fn example_for_args(args: &Args) -> String {
    format!(" {}", example_value(args.ty))
}

fn example_value(ty: Ty) -> String {
    let s = match ty {
        Ty::Bool => "#true",
        Ty::Int { .. } => "4",
        Ty::Duration => "\"5m\"",
        Ty::Timestamp => "\"2026-12-01T09:00:00Z\"",
        Ty::Semver => "\">=1.0.0\"",
        Ty::GitUrl => "\"https://github.com/org/repo.git\"",
        Ty::OciRepo => "\"ghcr.io/org/app\"",
        Ty::HelmRepo => "\"https://charts.example.com\"",
        Ty::Release => "\"web\"",
        Ty::Email => "\"mooring@example.com\"",
        Ty::Size => "\"512MiB\"",
        Ty::ObjectRef => "\"source/platform\"",
        Ty::ObjectPattern => "\"app/*\"",
        Ty::Ref(k) => return format!("\"<{} name>\"", k.as_str()),
        Ty::Enum(values) => return format!("\"{}\"", values.first().copied().unwrap_or_default()),
        _ => "\"…\"",
    };
    s.to_string()
}

/// The entry's value as written in `text`.
fn repr<'t>(text: &'t str, entry: &Entry) -> &'t str {
    let span = entry.value_span();
    text.get(span.offset()..span.offset() + span.len())
        .unwrap_or_default()
}

/// Where the value of an entry is written (for `key=value`, the value part).
pub(super) fn value_span(entry: &Entry) -> SourceSpan {
    entry.value_span()
}
