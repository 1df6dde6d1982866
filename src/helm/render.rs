//! Rendering a loaded chart as `helm template` does (`pkg/action/install.go`,
//! `pkg/engine`, `pkg/chartutil`): user values merged, dependencies
//! checked, disabled (`condition`, `tags`) subcharts dropped, aliases
//! applied, `import-values` imported, values coalesced with every chart's
//! defaults and checked against every `values.schema.json`, every template
//! of every chart parsed into one set (deeper charts first, so a parent's
//! `define` wins) and run with its chart's `.Values`, `.Chart`, `.Files`,
//! `.Release`, `.Capabilities` and `.Template`, `NOTES.txt` run but kept
//! apart, and the documents sorted as Helm installs them.

use std::collections::HashMap;
use std::rc::Rc;

use super::caps::{Capabilities, KubeVersion};
use super::chart::{Chart, Dependency, ImportValue};
use super::manifest::{self, Document};
use super::template::exec::{Env, ExecError, Limits, Set};
use super::template::parse;
use super::value::{Elem, Entries, Field, List, Map, MapKind, MapRef, Struct, StructType, Value};
use super::values::{self, ChartValues, Warnings};
use super::{Error, Snippet, funcs, schema, strvals, yaml};

/// What to render, beyond the chart.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub release: String,
    pub namespace: String,
    /// Values files in order, later ones winning: (name for messages, YAML).
    pub values_files: Vec<(String, String)>,
    /// Values built on their own, in order, and merged over the files
    /// (Flux's `valuesFrom`, then its inline `values`).
    pub layers: Vec<Layer>,
    /// `--set` assignments, applied after the files.
    pub set: Vec<String>,
    /// `--set-string` assignments, applied last.
    pub set_string: Vec<String>,
    pub kube_version: Option<KubeVersion>,
    /// Extra API versions, after Helm's default set.
    pub api_versions: Vec<String>,
    /// `api_versions` are all there is (a cluster's discovery, as `helm
    /// install` reads it), not additions to Helm's default set.
    pub only_api_versions: bool,
    /// Print the charts' `crds/` files too.
    pub include_crds: bool,
}

/// A part of [`Options::layers`].
#[derive(Debug, Clone)]
pub struct Layer {
    /// Names it in messages.
    pub name: String,
    pub kind: LayerKind,
    /// Its text must not appear in messages (it comes from a Secret).
    pub secret: bool,
}

#[derive(Debug, Clone)]
pub enum LayerKind {
    /// A YAML mapping, merged as values files merge.
    Yaml(String),
    /// `PATH=VALUE` in `--set` syntax; `strings`: as `--set-string`.
    Set { assignment: String, strings: bool },
}

/// A rendered release.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// `crds/` files of the enabled charts, when asked for: (path, text).
    pub crds: Vec<(String, String)>,
    pub manifests: Vec<Document>,
    pub hooks: Vec<Document>,
    /// The root chart's `NOTES.txt`, rendered.
    pub notes: String,
}

impl Rendered {
    /// What `helm template` prints.
    pub fn output(&self) -> String {
        let mut body = String::new();
        for (path, text) in &self.crds {
            body.push_str("---\n# Source: ");
            body.push_str(path);
            body.push('\n');
            body.push_str(text);
            body.push('\n');
        }
        for m in &self.manifests {
            body.push_str("---\n# Source: ");
            body.push_str(&m.source);
            body.push('\n');
            body.push_str(&m.content);
            body.push('\n');
        }
        let mut out = String::with_capacity(body.len() + 64);
        out.push_str(body.trim_matches(|c: char| c.is_whitespace()));
        out.push('\n');
        for h in &self.hooks {
            out.push_str("---\n# Source: ");
            out.push_str(&h.source);
            out.push('\n');
            out.push_str(&h.content);
            out.push('\n');
        }
        out
    }
}

/// The stack of the thread templates run on: nested `include`s recurse.
const STACK_BYTES: usize = 256 << 20;

/// Render a chart. `warnings` receives what Helm logs on the way (values
/// dropped while coalescing), also when rendering fails.
pub fn render(chart: &Chart, opts: &Options, warnings: &mut Vec<String>) -> Result<Rendered, Error> {
    let mut warn = Warnings::default();
    let result = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("helm-render".into())
            .stack_size(STACK_BYTES)
            .spawn_scoped(scope, || render_here(chart, opts, &mut warn))
            .map_err(|e| Error::Other(format!("cannot start the render thread: {e}")))?
            .join()
            .unwrap_or_else(|_| Err(Error::Other("the render thread panicked".into())))
    });
    warnings.extend(warn.into_vec());
    result
}

/// The user's values: files, then `--set`, then `--set-string`.
pub fn user_values(opts: &Options) -> Result<MapRef, Error> {
    let mut base = values::new_table();
    for (name, text) in &opts.values_files {
        let v = yaml::parse_map(text).map_err(|e| Error::Values(format!("failed to parse {name}: {e}")))?;
        if let Value::Map(m) = v {
            base = values::merge_maps(&base, &m);
        }
    }
    if !opts.layers.is_empty() {
        base = values::merge_maps(&base, &layered(&opts.layers)?);
    }
    for s in &opts.set {
        strvals::parse_into(s, &base, false)
            .map_err(|e| Error::Values(format!("failed parsing --set data: {e}")))?;
    }
    for s in &opts.set_string {
        strvals::parse_into(s, &base, true)
            .map_err(|e| Error::Values(format!("failed parsing --set-string data: {e}")))?;
    }
    Ok(base)
}

/// [`Options::layers`] made into one map, as Flux's helm-controller builds
/// the values of a HelmRelease: each YAML layer merged over the result so
/// far, each `--set` layer set into it.
fn layered(layers: &[Layer]) -> Result<MapRef, Error> {
    let result = values::new_table();
    let mut result = result;
    for layer in layers {
        let failed = |what: &str, e: String| {
            let detail = if layer.secret {
                "the details are not shown, as they may quote the Secret".to_string()
            } else {
                e
            };
            Error::Values(format!("failed to {what} {}: {detail}", layer.name))
        };
        match &layer.kind {
            LayerKind::Yaml(text) => {
                let v = yaml::parse_map(text).map_err(|e| failed("parse", e))?;
                if let Value::Map(m) = v {
                    result = values::merge_maps(&result, &m);
                }
            }
            LayerKind::Set { assignment, strings } => {
                strvals::parse_into(assignment, &result, *strings).map_err(|e| failed("set", e))?;
            }
        }
    }
    Ok(result)
}

/// One chart of the release: a loaded chart under its (alias) name, with
/// the parts Helm changes while processing dependencies.
struct Node<'c> {
    chart: &'c Chart,
    name: String,
    deps: Vec<Dependency>,
    values: MapRef,
    children: Vec<Node<'c>>,
}

impl ChartValues for Node<'_> {
    fn name(&self) -> &str {
        &self.name
    }
    fn values(&self) -> MapRef {
        self.values.clone()
    }
    fn children(&self) -> Vec<&dyn ChartValues> {
        self.children.iter().map(|c| c as &dyn ChartValues).collect()
    }
}

impl<'c> Node<'c> {
    fn new(chart: &'c Chart) -> Result<Node<'c>, Error> {
        let values = match &chart.values {
            None => values::new_table(),
            Some(raw) => match yaml::to_value(raw.clone()) {
                Ok(Value::Map(m)) => m,
                Ok(_) => values::new_table(),
                Err(e) => {
                    return Err(Error::Chart(format!(
                        "cannot load values.yaml of {}: error converting YAML to JSON: {e}",
                        chart.name()
                    )));
                }
            },
        };
        Ok(Node {
            chart,
            name: chart.metadata.name.clone(),
            deps: chart.metadata.dependencies.clone(),
            values,
            children: chart
                .dependencies
                .iter()
                .map(Node::new)
                .collect::<Result<_, _>>()?,
        })
    }

    /// A copy of this node under another name (`getAliasDependency`).
    fn copy(&self, name: &str) -> Node<'c> {
        Node {
            chart: self.chart,
            name: name.to_string(),
            deps: self.deps.clone(),
            values: self.values.clone(),
            children: self.children.iter().map(|c| c.copy(&c.name)).collect(),
        }
    }
}

fn compatible(constraint: &str, version: &str) -> bool {
    let Ok(v) = super::semver::Version::parse(version) else {
        return false;
    };
    super::semver::Constraints::parse(constraint).is_ok_and(|c| c.check(&v))
}

/// `processDependencyEnabled`.
fn process_enabled(node: &mut Node, v: &MapRef, path: &str, warn: &mut Warnings) -> Result<(), Error> {
    if node.deps.is_empty() {
        return Ok(());
    }
    let existing = std::mem::take(&mut node.children);
    let mut kept: Vec<Node> = Vec::new();
    for e in &existing {
        let managed = node
            .deps
            .iter()
            .any(|r| e.name == r.name && compatible(&r.version, &e.chart.metadata.version));
        if !managed {
            kept.push(e.copy(&e.name));
        }
    }
    for req in &mut node.deps {
        if let Some(c) = existing
            .iter()
            .find(|c| c.name == req.name && compatible(&req.version, &c.chart.metadata.version))
        {
            let name = if req.alias.is_empty() {
                c.name.clone()
            } else {
                req.alias.clone()
            };
            kept.push(c.copy(&name));
        }
        if !req.alias.is_empty() {
            req.name = req.alias.clone();
        }
    }
    node.children = kept;
    for d in &mut node.deps {
        d.enabled = true;
    }
    let cvals = values::coalesce_chart(&*node, v, false, warn).map_err(Error::Values)?;
    // Tags.
    if let Some(tags) = values::table_at(&cvals, "tags") {
        for r in &mut node.deps {
            let (mut has_true, mut has_false) = (false, false);
            for t in &r.tags {
                match tags.get(t) {
                    Some(Value::Bool(true)) => has_true = true,
                    Some(Value::Bool(false)) => has_false = true,
                    _ => {}
                }
            }
            if !has_true && has_false {
                r.enabled = false;
            } else if has_true || !has_false {
                r.enabled = true;
            }
        }
    }
    // Conditions: the first that names a boolean decides.
    for r in &mut node.deps {
        for c in r.condition.trim().split(',') {
            if c.is_empty() {
                continue;
            }
            if let Some(Value::Bool(b)) = values::path_value(&cvals, &format!("{path}{c}")) {
                r.enabled = b;
                break;
            }
        }
    }
    let disabled: Vec<String> = node
        .deps
        .iter()
        .filter(|r| !r.enabled)
        .map(|r| r.name.clone())
        .collect();
    node.children.retain(|c| !disabled.contains(&c.name));
    node.deps.retain(|r| !disabled.contains(&r.name));
    for child in &mut node.children {
        let sub = format!("{path}{}.", child.name);
        process_enabled(child, &cvals, &sub, warn)?;
    }
    Ok(())
}

/// `processDependencyImportValues` (with Helm's merge, which keeps nulls).
fn process_imports(node: &mut Node, warn: &mut Warnings) -> Result<(), Error> {
    for child in &mut node.children {
        process_imports(child, warn)?;
    }
    if node.deps.is_empty() {
        return Ok(());
    }
    let cvals = values::coalesce_chart(&*node, &values::new_table(), true, warn).map_err(Error::Values)?;
    let mut b = values::new_table();
    for r in &node.deps {
        for iv in &r.import_values {
            match iv {
                ImportValue::Map { child, parent } => {
                    if let Some(vv) = values::table_at(&cvals, &format!("{}.{child}", r.name)) {
                        b = values::merge_tables(&b, &values::path_to_map(parent, &vv), warn);
                    }
                }
                ImportValue::Export(name) => {
                    if let Some(vm) = values::table_at(&cvals, &format!("{}.exports.{name}", r.name)) {
                        b = values::merge_tables(&b, &vm, warn);
                    }
                }
            }
        }
    }
    let cvals = values::deep_copy(&cvals);
    node.values = values::merge_tables(&cvals, &b, warn);
    Ok(())
}

fn field(name: &'static str, json: &'static str, value: Value) -> Field {
    Field {
        name,
        json: Some(json),
        omit_empty: true,
        value,
    }
}

fn strs(items: &[String]) -> Value {
    Value::str_list(items.iter().map(|s| Value::str(s)).collect())
}

/// `.Chart`: the chart's metadata (as processed) and `IsRoot`.
fn chart_value(node: &Node, is_root: bool) -> Value {
    let md = &node.chart.metadata;
    let maintainers: Vec<Value> = md
        .maintainers
        .iter()
        .map(|m| {
            Value::Struct(Rc::new(Struct {
                ty: StructType::Maintainer,
                fields: vec![
                    field("Name", "name", Value::str(&m.name)),
                    field("Email", "email", Value::str(&m.email)),
                    field("URL", "url", Value::str(&m.url)),
                ],
            }))
        })
        .collect();
    let deps: Vec<Value> = node
        .deps
        .iter()
        .map(|d| {
            Value::Struct(Rc::new(Struct {
                ty: StructType::Dependency,
                fields: vec![
                    field("Name", "name", Value::str(&d.name)),
                    field("Version", "version", Value::str(&d.version)),
                    field("Repository", "repository", Value::str(&d.repository)),
                    field("Condition", "condition", Value::str(&d.condition)),
                    field("Tags", "tags", strs(&d.tags)),
                    field("Enabled", "enabled", Value::Bool(d.enabled)),
                    field("ImportValues", "import-values", Value::list(Vec::new())),
                    field("Alias", "alias", Value::str(&d.alias)),
                ],
            }))
        })
        .collect();
    let annotations: Entries = md
        .annotations
        .iter()
        .map(|(k, v)| (Rc::from(k.as_str()), Value::str(v)))
        .collect();
    let annotations = Value::Map(MapRef::new(Map {
        kind: MapKind::Strings,
        entries: annotations,
    }));
    Value::Struct(Rc::new(Struct {
        ty: StructType::Chart,
        fields: vec![
            field("Name", "name", Value::str(&node.name)),
            field("Home", "home", Value::str(&md.home)),
            field("Sources", "sources", strs(&md.sources)),
            field("Version", "version", Value::str(&md.version)),
            field("Description", "description", Value::str(&md.description)),
            field("Keywords", "keywords", strs(&md.keywords)),
            field(
                "Maintainers",
                "maintainers",
                Value::List(Rc::new(List {
                    elem: Elem::Any,
                    items: maintainers,
                })),
            ),
            field("Icon", "icon", Value::str(&md.icon)),
            field("APIVersion", "apiVersion", Value::str(&md.api_version)),
            field("Condition", "condition", Value::str(&md.condition)),
            field("Tags", "tags", Value::str(&md.tags)),
            field("AppVersion", "appVersion", Value::str(&md.app_version)),
            field("Deprecated", "deprecated", Value::Bool(md.deprecated)),
            field("Annotations", "annotations", annotations),
            field("KubeVersion", "kubeVersion", Value::str(&md.kube_version)),
            field(
                "Dependencies",
                "dependencies",
                Value::List(Rc::new(List {
                    elem: Elem::Any,
                    items: deps,
                })),
            ),
            field("Type", "type", Value::str(&md.chart_type)),
            Field {
                name: "IsRoot",
                json: None,
                omit_empty: false,
                value: Value::Bool(is_root),
            },
        ],
    }))
}

/// A template to run: its name (`chart/templates/x.yaml`), text, and the
/// top-level value of its chart.
struct Template {
    name: String,
    text: String,
    top: MapRef,
    base_path: String,
}

/// What every chart's top-level value shares.
struct Shared<'a> {
    root_values: &'a MapRef,
    release: &'a Value,
    caps: &'a Value,
}

/// `recAllTpls`: every template of `node` and its subcharts, with the
/// chart's top-level value (`.Chart`, `.Files`, `.Release`,
/// `.Capabilities`, `.Values`, `.Subcharts`), which it returns.
fn collect(
    node: &Node,
    full_path: &str,
    is_root: bool,
    parent_top: Option<&MapRef>,
    shared: &Shared,
    out: &mut Vec<Template>,
) -> MapRef {
    let Shared {
        root_values,
        release,
        caps,
    } = *shared;
    let values = if is_root {
        Value::Map(root_values.clone())
    } else {
        let parent_values = parent_top
            .and_then(|t| t.get("Values"))
            .and_then(|v| v.as_table().cloned());
        match parent_values.and_then(|pv| values::table_at(&pv, &node.name)) {
            Some(t) => Value::Map(t),
            None => Value::empty_map(),
        }
    };
    let files: Entries = node
        .chart
        .files
        .iter()
        .map(|f| (Rc::from(f.name.as_str()), Value::Bytes(f.data.clone())))
        .collect();
    let subcharts = values::new_table();
    let mut entries = Entries::new();
    entries.insert(Rc::from("Chart"), chart_value(node, is_root));
    entries.insert(Rc::from("Files"), funcs::helm::files_value(files));
    entries.insert(Rc::from("Release"), release.clone());
    entries.insert(Rc::from("Capabilities"), caps.clone());
    entries.insert(Rc::from("Values"), values);
    entries.insert(Rc::from("Subcharts"), Value::Map(subcharts.clone()));
    let top = MapRef::new(Map {
        kind: MapKind::Any,
        entries,
    });
    for child in &node.children {
        let path = format!("{full_path}/charts/{}", child.name);
        let child_top = collect(child, &path, false, Some(&top), shared, out);
        subcharts.insert(Rc::from(child.name.as_str()), Value::Map(child_top));
    }
    let library = node.chart.metadata.chart_type == "library";
    for t in &node.chart.templates {
        let base = t.name.rsplit('/').next().unwrap_or(&t.name);
        if library && !base.starts_with('_') {
            continue;
        }
        out.push(Template {
            name: format!("{full_path}/{}", t.name),
            text: String::from_utf8_lossy(&t.data).into_owned(),
            top: top.clone(),
            base_path: format!("{full_path}/templates"),
        });
    }
    top
}

/// `crds/` files of enabled charts, depth first (`CRDObjects`).
fn crds(node: &Node, full_path: &str, out: &mut Vec<(String, String)>) {
    for f in &node.chart.files {
        let ext = f
            .name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        if f.name.starts_with("crds/") && matches!(ext.as_str(), "yaml" | "yml" | "json") {
            out.push((
                format!("{full_path}/{}", f.name),
                String::from_utf8_lossy(&f.data).into_owned(),
            ));
        }
    }
    for child in &node.children {
        crds(child, &format!("{full_path}/charts/{}", child.name), out);
    }
}

/// Helm's `sortTemplates`: deeper paths first, then reverse lexical order.
fn template_order(names: &mut [String]) {
    names.sort_by(|a, b| {
        let (ca, cb) = (a.matches('/').count(), b.matches('/').count());
        cb.cmp(&ca).then_with(|| b.cmp(a))
    });
}

fn schema_check(node: &Node, values: &MapRef, out: &mut String) {
    if let Some(s) = &node.chart.schema
        && let Err(e) = schema::validate(s, &Value::Map(values.clone()))
    {
        out.push_str(&format!("{}:\n{e}", node.name));
    }
    for child in &node.children {
        if let Some(v) = values.get(&child.name).and_then(|v| v.as_table().cloned()) {
            schema_check(child, &v, out);
        }
    }
}

fn render_here(chart: &Chart, opts: &Options, warn: &mut Warnings) -> Result<Rendered, Error> {
    let user = user_values(opts)?;
    let missing: Vec<String> = chart
        .metadata
        .dependencies
        .iter()
        .filter(|r| !chart.dependencies.iter().any(|d| d.name() == r.name))
        .map(|r| r.name.clone())
        .collect();
    if !missing.is_empty() {
        return Err(Error::MissingDependencies { missing });
    }
    match chart.metadata.chart_type.as_str() {
        "" | "application" => {}
        other => return Err(Error::Chart(format!("{other} charts are not installable"))),
    }
    let mut root = Node::new(chart)?;
    process_enabled(&mut root, &user, "", warn)?;
    process_imports(&mut root, warn)?;

    let mut caps = Capabilities::default();
    if let Some(kv) = &opts.kube_version {
        caps.kube_version = kv.clone();
    }
    if opts.only_api_versions {
        caps.api_versions.clear();
    }
    caps.api_versions.extend(opts.api_versions.iter().cloned());

    let values = values::coalesce_chart(&root, &user, false, warn).map_err(Error::Values)?;
    let mut problems = String::new();
    schema_check(&root, &values, &mut problems);
    if !problems.is_empty() {
        return Err(Error::Schema(problems));
    }

    if !chart.metadata.kube_version.is_empty()
        && !compatible(&chart.metadata.kube_version, &caps.kube_version.version)
    {
        return Err(Error::KubeVersion {
            constraint: chart.metadata.kube_version.clone(),
            version: caps.kube_version.version.clone(),
        });
    }

    let mut release = Entries::new();
    release.insert(Rc::from("Name"), Value::str(&opts.release));
    release.insert(Rc::from("Namespace"), Value::str(&opts.namespace));
    release.insert(Rc::from("IsUpgrade"), Value::Bool(false));
    release.insert(Rc::from("IsInstall"), Value::Bool(true));
    release.insert(Rc::from("Revision"), Value::Int(1));
    release.insert(Rc::from("Service"), Value::str("Helm"));
    let release = Value::map(release);

    let mut templates = Vec::new();
    let root_name = root.name.clone();
    let caps_value = caps.value();
    let shared = Shared {
        root_values: &values,
        release: &release,
        caps: &caps_value,
    };
    collect(&root, &root_name, true, None, &shared, &mut templates);
    let by_name: HashMap<String, usize> = templates
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let mut order: Vec<String> = templates.iter().map(|t| t.name.clone()).collect();
    template_order(&mut order);

    let mut set: Set = Set::default();
    for name in &order {
        let t = &templates[by_name[name]];
        let trees = parse::parse(name, &t.text, &funcs::lookup).map_err(|e| {
            let message = e.message.rsplit(": ").next().unwrap_or(&e.message).to_string();
            Error::Template {
                message: format!("parse error at ({}:{}): {message}", e.name, e.line),
                snippet: Some(Box::new(Snippet::at_line(&e.name, &t.text, e.line))),
                fail: false,
            }
        })?;
        for (tname, tree) in trees {
            if let Some(old) = set.get(&tname)
                && parse::is_empty_tree(&tree.root)
                && !old.root.is_empty()
            {
                continue;
            }
            set.insert(tname, tree);
        }
    }
    let set = Rc::new(set);
    let mut env = Env::new(
        set.clone(),
        Limits::default(),
        Box::new(funcs::helm::Host::default()),
    );
    let mut rendered: Vec<(String, String)> = Vec::new();
    for name in &order {
        let base = name.rsplit('/').next().unwrap_or(name);
        if base.starts_with('_') {
            continue;
        }
        let t = &templates[by_name[name]];
        let mut tmeta = Entries::new();
        tmeta.insert(Rc::from("Name"), Value::str(name));
        tmeta.insert(Rc::from("BasePath"), Value::str(&t.base_path));
        t.top.insert(Rc::from("Template"), Value::map(tmeta));
        let Some(tree) = set.get(name.as_str()).cloned() else {
            continue;
        };
        let mut out = String::new();
        env.run(&tree, Value::Map(t.top.clone()), &mut out)
            .map_err(exec_error)?;
        rendered.push((name.clone(), out.replace("<no value>", "")));
    }
    drop(env);

    let mut notes = String::new();
    let root_notes = format!("{root_name}/templates/NOTES.txt");
    rendered.retain(|(name, text)| {
        if name.ends_with("NOTES.txt") {
            if *name == root_notes {
                notes = text.clone();
            }
            return false;
        }
        true
    });
    let (manifests, hooks) = manifest::sort(&rendered).map_err(|e| {
        Error::Yaml(Box::new(super::YamlError {
            file: e.file.clone(),
            message: e.message,
            line: e.line,
            content: miette::NamedSource::new(e.file.clone(), e.content),
        }))
    })?;
    let mut crd_files = Vec::new();
    if opts.include_crds {
        crds(&root, &root_name, &mut crd_files);
    }
    Ok(Rendered {
        crds: crd_files,
        manifests,
        hooks,
        notes,
    })
}

/// An execution error as Helm reports it: a `fail` or `required` as
/// `execution error at (FILE:LINE:COL): MESSAGE`, anything else as Go's
/// text.
fn exec_error(e: ExecError) -> Error {
    let snippet = e.at.as_ref().map(|l| {
        Box::new(Snippet {
            file: l.file.to_string(),
            source: miette::NamedSource::new(&l.file, l.text.to_string()),
            offset: l.offset,
            line: l.line,
            column: l.column,
        })
    });
    match (&e.fail, &e.at) {
        (Some(msg), Some(loc)) => Error::Template {
            message: format!("execution error at ({loc}): {msg}"),
            snippet,
            fail: true,
        },
        _ => Error::Template {
            message: e.message.clone(),
            snippet,
            fail: false,
        },
    }
}
