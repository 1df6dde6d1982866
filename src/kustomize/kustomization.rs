//! The kustomization file: `kustomize.config.k8s.io/v1beta1` `Kustomization`
//! and `v1alpha1` `Component`, read strictly into [`Kustomization`]. Legacy
//! fields are folded in as kustomize does (`bases` into `resources`,
//! `imageTags` into `images`, `env` into `envs`); fields mooring refuses
//! (Helm charts, validators) are errors that say why and what to do.

use super::error::{Error, Source, code};
use super::read::{Reader, Spanned};
use super::resource::{Behavior, Gvk};
use super::yaml::{Node, Pos};

pub const FILE_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

const FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "openapi",
    "namePrefix",
    "nameSuffix",
    "namespace",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "patchesStrategicMerge",
    "patchesJson6902",
    "patches",
    "images",
    "imageTags",
    "replacements",
    "replicas",
    "vars",
    "sortOptions",
    "resources",
    "components",
    "crds",
    "bases",
    "configMapGenerator",
    "secretGenerator",
    "helmGlobals",
    "helmCharts",
    "helmChartInflationGenerator",
    "generatorOptions",
    "configurations",
    "generators",
    "transformers",
    "validators",
    "buildMetadata",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    pub gvk: Gvk,
    pub path: String,
    pub create: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    pub gvk: Gvk,
    pub name: String,
    pub namespace: String,
    pub label_selector: String,
    pub annotation_selector: String,
}

#[derive(Debug, Clone)]
pub struct PatchSpec {
    pub path: Option<Spanned<String>>,
    pub patch: Option<Spanned<String>>,
    pub target: Option<Selector>,
    pub allow_name_change: bool,
    pub allow_kind_change: bool,
    pub pos: Pos,
}

#[derive(Debug, Clone, Default)]
pub struct ImageSpec {
    pub name: String,
    pub new_name: String,
    pub new_tag: String,
    pub digest: String,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub struct ReplicaSpec {
    pub name: String,
    pub count: i64,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub struct Label {
    pub pairs: Vec<(String, String)>,
    pub include_selectors: bool,
    pub include_templates: bool,
    pub fields: Vec<FieldSpec>,
}

#[derive(Debug, Clone, Default)]
pub struct GenOptions {
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub disable_name_suffix_hash: bool,
    pub immutable: bool,
}

#[derive(Debug, Clone, Default)]
pub struct GeneratorArgs {
    pub name: String,
    pub namespace: String,
    pub behavior: Behavior,
    pub literals: Vec<Spanned<String>>,
    pub files: Vec<Spanned<String>>,
    pub envs: Vec<Spanned<String>>,
    pub options: Option<GenOptions>,
    /// Secrets only.
    pub kind: Option<String>,
    pub pos: Pos,
}

#[derive(Debug, Clone, Default)]
pub struct FieldOptions {
    pub delimiter: String,
    pub index: i64,
    pub encoding: String,
    pub create: bool,
}

#[derive(Debug, Clone, Default)]
pub struct SourceSelector {
    pub id: Selector,
    pub field_path: String,
    pub options: Option<FieldOptions>,
}

#[derive(Debug, Clone, Default)]
pub struct TargetSelector {
    pub select: Option<Selector>,
    pub reject: Vec<Selector>,
    pub field_paths: Vec<String>,
    pub options: Option<FieldOptions>,
}

#[derive(Debug, Clone, Default)]
pub struct Replacement {
    pub source: Option<SourceSelector>,
    pub targets: Vec<TargetSelector>,
}

/// A `replacements` entry: inline, or a file of them.
#[derive(Debug, Clone)]
pub enum ReplacementEntry {
    Inline(Box<Replacement>),
    Path(Spanned<String>),
}

#[derive(Debug, Clone, Default)]
pub struct VarSpec {
    pub name: String,
    pub api_version: String,
    pub gvk: Gvk,
    pub obj_name: String,
    pub obj_namespace: String,
    pub field_path: String,
    pub pos: Pos,
}

/// A `transformers:` or `generators:` entry: a path, or an inline object.
#[derive(Debug, Clone)]
pub enum PluginEntry {
    Path(Spanned<String>),
    Inline(Node),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Legacy,
    Fifo,
}

#[derive(Debug, Clone)]
pub struct SortOptions {
    pub order: Option<Order>,
    pub order_first: Option<Vec<String>>,
    pub order_last: Option<Vec<String>>,
    pub has_legacy_options: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Kustomization {
    pub is_component: bool,
    pub namespace: String,
    pub name_prefix: String,
    pub name_suffix: String,
    pub resources: Vec<Spanned<String>>,
    pub components: Vec<Spanned<String>>,
    pub crds: Vec<Spanned<String>>,
    pub configurations: Vec<Spanned<String>>,
    pub generators: Vec<PluginEntry>,
    pub transformers: Vec<PluginEntry>,
    pub common_labels: Vec<(String, String)>,
    pub labels: Vec<Label>,
    pub common_annotations: Vec<(String, String)>,
    pub patches_strategic_merge: Vec<Spanned<String>>,
    pub patches_json6902: Vec<PatchSpec>,
    pub patches: Vec<PatchSpec>,
    pub images: Vec<ImageSpec>,
    pub replicas: Vec<ReplicaSpec>,
    pub replacements: Vec<ReplacementEntry>,
    pub vars: Vec<VarSpec>,
    pub sort_options: Option<SortOptions>,
    pub config_map_generator: Vec<GeneratorArgs>,
    pub secret_generator: Vec<GeneratorArgs>,
    pub generator_options: Option<GenOptions>,
    pub openapi_path: Option<Spanned<String>>,
    pub openapi_version: Option<Spanned<String>>,
    pub build_metadata: Vec<String>,
    pub set: Vec<&'static str>,
}

/// Read a kustomization file (already parsed).
pub fn read(src: &Source, node: &Node) -> Result<Kustomization, Error> {
    let mut r = Reader::new(src);
    let mut k = Kustomization::default();
    let fields = r.fields(node, "a kustomization", FIELDS).unwrap_or_default();
    let mut kind = String::new();
    let mut api_version: Option<Spanned<String>> = None;
    let mut image_tags = Vec::new();
    let mut bases = Vec::new();
    for (key, v) in fields {
        if let Some(f) = FIELDS.iter().find(|f| **f == key) {
            k.set.push(f);
        }
        match key {
            "apiVersion" => api_version = r.string(v, "apiVersion"),
            "kind" => kind = r.string(v, "kind").map(|s| s.value).unwrap_or_default(),
            "metadata" => {}
            "openapi" => {
                for (key, value) in r.fields(v, "openapi", &["path", "version"]).unwrap_or_default() {
                    let s = r.string(value, key);
                    if key == "path" {
                        k.openapi_path = s;
                    } else {
                        k.openapi_version = s;
                    }
                }
            }
            "namePrefix" => k.name_prefix = r.string(v, key).map(|s| s.value).unwrap_or_default(),
            "nameSuffix" => k.name_suffix = r.string(v, key).map(|s| s.value).unwrap_or_default(),
            "namespace" => k.namespace = r.string(v, key).map(|s| s.value).unwrap_or_default(),
            "commonLabels" => k.common_labels = r.string_map(v, key),
            "commonAnnotations" => k.common_annotations = r.string_map(v, key),
            "labels" => {
                for item in r.list(v, key) {
                    if let Some(l) = label(&mut r, item) {
                        k.labels.push(l);
                    }
                }
            }
            "patchesStrategicMerge" => k.patches_strategic_merge = r.strings(v, key),
            "patchesJson6902" => {
                for item in r.list(v, key) {
                    if let Some(p) = patch(&mut r, item, true) {
                        k.patches_json6902.push(p);
                    }
                }
            }
            "patches" => {
                for item in r.list(v, key) {
                    if let Some(p) = patch(&mut r, item, false) {
                        k.patches.push(p);
                    }
                }
            }
            "images" => k.images = images(&mut r, v, key),
            "imageTags" => image_tags = images(&mut r, v, key),
            "replicas" => {
                for item in r.list(v, key) {
                    let mut rep = ReplicaSpec {
                        name: String::new(),
                        count: 0,
                        pos: item.pos,
                    };
                    for (key, value) in r
                        .fields(item, "a replicas entry", &["name", "count"])
                        .unwrap_or_default()
                    {
                        match key {
                            "name" => rep.name = r.string(value, "name").map(|s| s.value).unwrap_or_default(),
                            _ => rep.count = r.int(value, "count").unwrap_or(0),
                        }
                    }
                    k.replicas.push(rep);
                }
            }
            "replacements" => {
                for item in r.list(v, key) {
                    if let Some(e) = replacement_entry(&mut r, item) {
                        k.replacements.push(e);
                    }
                }
            }
            "vars" => {
                for item in r.list(v, key) {
                    if let Some(var) = var(&mut r, item) {
                        k.vars.push(var);
                    }
                }
            }
            "sortOptions" => k.sort_options = sort_options(&mut r, v),
            "resources" => k.resources = r.strings(v, key),
            "bases" => bases = r.strings(v, key),
            "components" => k.components = r.strings(v, key),
            "crds" => k.crds = r.strings(v, key),
            "configurations" => k.configurations = r.strings(v, key),
            "generators" => k.generators = plugin_entries(&mut r, v, key),
            "transformers" => k.transformers = plugin_entries(&mut r, v, key),
            "configMapGenerator" => {
                for item in r.list(v, key) {
                    if let Some(g) = generator(&mut r, item, false) {
                        k.config_map_generator.push(g);
                    }
                }
            }
            "secretGenerator" => {
                for item in r.list(v, key) {
                    if let Some(g) = generator(&mut r, item, true) {
                        k.secret_generator.push(g);
                    }
                }
            }
            "generatorOptions" => k.generator_options = gen_options(&mut r, v),
            "buildMetadata" => {
                for s in r.strings(v, key) {
                    if !["originAnnotations", "transformerAnnotations", "managedByLabel"]
                        .contains(&s.value.as_str())
                    {
                        r.error(
                            code::INVALID,
                            s.pos,
                            format!("unknown buildMetadata option `{}`", s.value),
                        )
                        .help =
                            Some("use originAnnotations, transformerAnnotations or managedByLabel".into());
                    }
                    k.build_metadata.push(s.value);
                }
            }
            "helmCharts" | "helmGlobals" | "helmChartInflationGenerator" => {
                let pos = src_key_pos(node, key);
                r.error(code::REFUSED, pos, format!("`{key}` is not supported: mooring does not inflate Helm charts inside a kustomization"))
                    .help = Some("declare the chart as an app of its own in mooring.kdl (`chart` with `values`), or commit the rendered manifests and list them under resources".into());
            }
            "validators" => {
                let pos = src_key_pos(node, key);
                r.error(
                    code::REFUSED,
                    pos,
                    "`validators` run plugins, which mooring does not run",
                )
                .help = Some("remove the validators; mooring validates objects when it applies them".into());
            }
            _ => {}
        }
    }
    // Legacy fields, folded in as kustomize's FixKustomization does.
    k.resources.extend(bases);
    k.images.extend(image_tags);
    match kind.as_str() {
        "" | "Kustomization" => {}
        "Component" => k.is_component = true,
        other => {
            let pos = src_key_pos(node, "kind");
            r.error(
                code::INVALID,
                pos,
                format!("kind `{other}` is neither Kustomization nor Component"),
            )
            .help = Some("use `kind: Kustomization` (or `kind: Component` for a component)".into());
        }
    }
    if let Some(av) = api_version {
        let want = if k.is_component {
            "kustomize.config.k8s.io/v1alpha1"
        } else {
            "kustomize.config.k8s.io/v1beta1"
        };
        if av.value != want && !av.value.is_empty() {
            let kind = if k.is_component {
                "Component"
            } else {
                "Kustomization"
            };
            r.error(
                code::INVALID,
                av.pos,
                format!("apiVersion for {kind} should be {want}"),
            );
        }
    }
    if r.errors.is_empty()
        && k.set
            .iter()
            .all(|f| ["apiVersion", "kind", "metadata"].contains(f))
    {
        return Err(
            Error::in_file(code::INVALID, &src.file, "kustomization.yaml is empty")
                .help("list what it builds under `resources`"),
        );
    }
    finish(r, k)
}

/// The errors of a reader, or `value`.
pub fn finish<T>(r: Reader<'_>, value: T) -> Result<T, Error> {
    let mut errors = r.errors;
    if errors.is_empty() {
        return Ok(value);
    }
    let mut first = errors.remove(0);
    first.more = errors;
    Err(first)
}

fn src_key_pos(node: &Node, key: &str) -> Pos {
    node.entry(key).map(|e| e.key_pos).unwrap_or_default()
}

fn plugin_entries(r: &mut Reader<'_>, node: &Node, what: &str) -> Vec<PluginEntry> {
    let items = r.list(node, what);
    let mut out = Vec::new();
    for item in items {
        if item.as_map().is_some() {
            out.push(PluginEntry::Inline(item.clone()));
        } else if let Some(s) = r.string(item, what) {
            // An entry may also be an object written as a string.
            if (s.value.contains('\n') || s.value.trim_start().starts_with('{'))
                && let Ok(docs) = super::yaml::parse_documents(&s.value)
            {
                for d in docs.into_iter().filter_map(|d| d.node) {
                    if d.as_map().is_some() {
                        out.push(PluginEntry::Inline(d.at(s.pos)));
                    }
                }
                continue;
            }
            out.push(PluginEntry::Path(s));
        }
    }
    out
}

pub fn field_spec(r: &mut Reader<'_>, node: &Node) -> Option<FieldSpec> {
    let fields = r.fields(
        node,
        "a field spec",
        &["group", "version", "kind", "path", "create"],
    )?;
    let mut fs = FieldSpec {
        gvk: Gvk::default(),
        path: String::new(),
        create: false,
    };
    for (key, v) in fields {
        match key {
            "create" => fs.create = r.bool(v, "create"),
            _ => {
                let s = r.string(v, key).map(|s| s.value).unwrap_or_default();
                match key {
                    "group" => fs.gvk.group = s,
                    "version" => fs.gvk.version = s,
                    "kind" => fs.gvk.kind = s,
                    _ => fs.path = s,
                }
            }
        }
    }
    Some(fs)
}

pub fn field_specs(r: &mut Reader<'_>, node: &Node, what: &str) -> Vec<FieldSpec> {
    let items = r.list(node, what);
    items.iter().filter_map(|n| field_spec(r, n)).collect()
}

fn label(r: &mut Reader<'_>, node: &Node) -> Option<Label> {
    let fields = r.fields(
        node,
        "a labels entry",
        &["pairs", "includeSelectors", "includeTemplates", "fields"],
    )?;
    let mut l = Label {
        pairs: Vec::new(),
        include_selectors: false,
        include_templates: false,
        fields: Vec::new(),
    };
    for (key, v) in fields {
        match key {
            "pairs" => l.pairs = r.string_map(v, "pairs"),
            "includeSelectors" => l.include_selectors = r.bool(v, key),
            "includeTemplates" => l.include_templates = r.bool(v, key),
            _ => l.fields = field_specs(r, v, "fields"),
        }
    }
    Some(l)
}

pub fn selector(r: &mut Reader<'_>, node: &Node, what: &str) -> Option<Selector> {
    let fields = r.fields(
        node,
        what,
        &[
            "group",
            "version",
            "kind",
            "name",
            "namespace",
            "labelSelector",
            "annotationSelector",
        ],
    )?;
    let mut s = Selector::default();
    for (key, v) in fields {
        let value = r.string(v, key).map(|s| s.value).unwrap_or_default();
        match key {
            "group" => s.gvk.group = value,
            "version" => s.gvk.version = value,
            "kind" => s.gvk.kind = value,
            "name" => s.name = value,
            "namespace" => s.namespace = value,
            "labelSelector" => s.label_selector = value,
            _ => s.annotation_selector = value,
        }
    }
    Some(s)
}

fn patch(r: &mut Reader<'_>, node: &Node, json6902: bool) -> Option<PatchSpec> {
    if !json6902 && node.as_scalar().is_some() {
        // A bare string: kustomize reads it as the patch's path.
        let path = r.string(node, "a patch")?;
        return Some(PatchSpec {
            path: Some(path),
            patch: None,
            target: None,
            allow_name_change: false,
            allow_kind_change: false,
            pos: node.pos,
        });
    }
    let what = if json6902 {
        "a patchesJson6902 entry"
    } else {
        "a patches entry"
    };
    let fields = r.fields(node, what, &["path", "patch", "target", "options"])?;
    let mut p = PatchSpec {
        path: None,
        patch: None,
        target: None,
        allow_name_change: false,
        allow_kind_change: false,
        pos: node.pos,
    };
    for (key, v) in fields {
        match key {
            "path" => p.path = r.string(v, key),
            "patch" => p.patch = r.string(v, key),
            "target" => p.target = selector(r, v, "a patch target"),
            _ => {
                for (key, v) in r
                    .fields(v, "patch options", &["allowNameChange", "allowKindChange"])
                    .unwrap_or_default()
                {
                    let b = r.bool(v, key);
                    if key == "allowNameChange" {
                        p.allow_name_change = b;
                    } else {
                        p.allow_kind_change = b;
                    }
                }
            }
        }
    }
    Some(p)
}

fn images(r: &mut Reader<'_>, node: &Node, what: &str) -> Vec<ImageSpec> {
    let mut out = Vec::new();
    for item in r.list(node, what) {
        let Some(fields) = r.fields(item, "an images entry", &["name", "newName", "newTag", "digest"]) else {
            continue;
        };
        let mut img = ImageSpec {
            pos: item.pos,
            ..ImageSpec::default()
        };
        for (key, v) in fields {
            let s = r.string(v, key).map(|s| s.value).unwrap_or_default();
            match key {
                "name" => img.name = s,
                "newName" => img.new_name = s,
                "newTag" => img.new_tag = s,
                _ => img.digest = s,
            }
        }
        out.push(img);
    }
    out
}

fn field_options(r: &mut Reader<'_>, node: &Node) -> Option<FieldOptions> {
    let fields = r.fields(
        node,
        "field options",
        &["delimiter", "index", "encoding", "create"],
    )?;
    let mut o = FieldOptions::default();
    for (key, v) in fields {
        match key {
            "delimiter" => o.delimiter = r.string(v, key).map(|s| s.value).unwrap_or_default(),
            "index" => o.index = r.int(v, key).unwrap_or(0),
            "encoding" => o.encoding = r.string(v, key).map(|s| s.value).unwrap_or_default(),
            _ => o.create = r.bool(v, key),
        }
    }
    Some(o)
}

pub fn replacement(r: &mut Reader<'_>, node: &Node) -> Option<Replacement> {
    let fields = r.fields(node, "a replacement", &["source", "targets"])?;
    let mut rep = Replacement::default();
    for (key, v) in fields {
        if key == "source" {
            let f = r.fields(
                v,
                "a replacement source",
                &[
                    "group",
                    "version",
                    "kind",
                    "name",
                    "namespace",
                    "fieldPath",
                    "options",
                ],
            )?;
            let mut s = SourceSelector::default();
            for (key, v) in f {
                match key {
                    "options" => s.options = field_options(r, v),
                    _ => {
                        let value = r.string(v, key).map(|s| s.value).unwrap_or_default();
                        match key {
                            "group" => s.id.gvk.group = value,
                            "version" => s.id.gvk.version = value,
                            "kind" => s.id.gvk.kind = value,
                            "name" => s.id.name = value,
                            "namespace" => s.id.namespace = value,
                            _ => s.field_path = value,
                        }
                    }
                }
            }
            rep.source = Some(s);
        } else {
            for t in r.list(v, "targets") {
                let Some(f) = r.fields(
                    t,
                    "a replacement target",
                    &["select", "reject", "fieldPaths", "options"],
                ) else {
                    continue;
                };
                let mut target = TargetSelector::default();
                for (key, v) in f {
                    match key {
                        "select" => target.select = selector(r, v, "a replacement target's select"),
                        "reject" => {
                            for item in r.list(v, "reject") {
                                if let Some(s) = selector(r, item, "a replacement target's reject") {
                                    target.reject.push(s);
                                }
                            }
                        }
                        "fieldPaths" => {
                            target.field_paths = r.strings(v, key).into_iter().map(|s| s.value).collect();
                        }
                        _ => target.options = field_options(r, v),
                    }
                }
                rep.targets.push(target);
            }
        }
    }
    Some(rep)
}

fn replacement_entry(r: &mut Reader<'_>, node: &Node) -> Option<ReplacementEntry> {
    if let Some(path) = node.get("path") {
        r.fields(node, "a replacements entry", &["path"])?;
        return r.string(path, "path").map(ReplacementEntry::Path);
    }
    replacement(r, node).map(|r| ReplacementEntry::Inline(Box::new(r)))
}

fn var(r: &mut Reader<'_>, node: &Node) -> Option<VarSpec> {
    let fields = r.fields(node, "a var", &["name", "objref", "fieldref"])?;
    let mut v = VarSpec {
        pos: node.pos,
        ..VarSpec::default()
    };
    for (key, value) in fields {
        match key {
            "name" => v.name = r.string(value, key).map(|s| s.value).unwrap_or_default(),
            "objref" => {
                for (key, value) in r
                    .fields(
                        value,
                        "a var's objref",
                        &["apiVersion", "group", "version", "kind", "name", "namespace"],
                    )
                    .unwrap_or_default()
                {
                    let s = r.string(value, key).map(|s| s.value).unwrap_or_default();
                    match key {
                        "apiVersion" => v.api_version = s,
                        "group" => v.gvk.group = s,
                        "version" => v.gvk.version = s,
                        "kind" => v.gvk.kind = s,
                        "name" => v.obj_name = s,
                        _ => v.obj_namespace = s,
                    }
                }
            }
            _ => {
                for (key, value) in r
                    .fields(value, "a var's fieldref", &["fieldPath"])
                    .unwrap_or_default()
                {
                    v.field_path = r.string(value, key).map(|s| s.value).unwrap_or_default();
                }
            }
        }
    }
    if v.field_path.is_empty() {
        v.field_path = "metadata.name".into();
    }
    if !v.api_version.is_empty() {
        let gvk = Gvk::new(&v.api_version, &v.gvk.kind);
        v.gvk.group = gvk.group;
        v.gvk.version = gvk.version;
    }
    Some(v)
}

pub fn sort_options(r: &mut Reader<'_>, node: &Node) -> Option<SortOptions> {
    let fields = r.fields(node, "sortOptions", &["order", "legacySortOptions"])?;
    let mut s = SortOptions {
        order: None,
        order_first: None,
        order_last: None,
        has_legacy_options: false,
    };
    for (key, v) in fields {
        if key == "order" {
            let o = r.string(v, key)?;
            s.order = match o.value.as_str() {
                "legacy" => Some(Order::Legacy),
                "fifo" => Some(Order::Fifo),
                other => {
                    r.error(code::INVALID, o.pos, format!("unknown sort order `{other}`"))
                        .help = Some("use `legacy` or `fifo`".into());
                    None
                }
            };
        } else {
            s.has_legacy_options = true;
            for (key, v) in r
                .fields(v, "legacySortOptions", &["orderFirst", "orderLast"])
                .unwrap_or_default()
            {
                let list = r.strings(v, key).into_iter().map(|s| s.value).collect();
                if key == "orderFirst" {
                    s.order_first = Some(list);
                } else {
                    s.order_last = Some(list);
                }
            }
        }
    }
    Some(s)
}

pub fn gen_options(r: &mut Reader<'_>, node: &Node) -> Option<GenOptions> {
    let fields = r.fields(
        node,
        "generator options",
        &["labels", "annotations", "disableNameSuffixHash", "immutable"],
    )?;
    let mut o = GenOptions::default();
    for (key, v) in fields {
        match key {
            "labels" => o.labels = r.string_map(v, key),
            "annotations" => o.annotations = r.string_map(v, key),
            "disableNameSuffixHash" => o.disable_name_suffix_hash = r.bool(v, key),
            _ => o.immutable = r.bool(v, key),
        }
    }
    Some(o)
}

pub fn generator(r: &mut Reader<'_>, node: &Node, secret: bool) -> Option<GeneratorArgs> {
    let mut known = vec![
        "name",
        "namespace",
        "behavior",
        "literals",
        "files",
        "envs",
        "env",
        "options",
    ];
    if secret {
        known.push("type");
    }
    let what = if secret {
        "a secretGenerator entry"
    } else {
        "a configMapGenerator entry"
    };
    let fields = r.fields(node, what, &known)?;
    let mut g = GeneratorArgs {
        pos: node.pos,
        ..GeneratorArgs::default()
    };
    let mut env = None;
    for (key, v) in fields {
        match key {
            "name" => g.name = r.string(v, key).map(|s| s.value).unwrap_or_default(),
            "namespace" => g.namespace = r.string(v, key).map(|s| s.value).unwrap_or_default(),
            "behavior" => {
                let b = r.string(v, key)?;
                g.behavior = match b.value.as_str() {
                    "" | "create" => Behavior::Create,
                    "merge" => Behavior::Merge,
                    "replace" => Behavior::Replace,
                    other => {
                        r.error(code::INVALID, b.pos, format!("unknown behavior `{other}`"))
                            .help = Some("use create, merge or replace".into());
                        Behavior::Create
                    }
                };
            }
            "literals" => g.literals = r.strings(v, key),
            "files" => g.files = r.strings(v, key),
            "envs" => g.envs = r.strings(v, key),
            "env" => env = r.string(v, key),
            "type" => g.kind = r.string(v, key).map(|s| s.value),
            _ => g.options = gen_options(r, v),
        }
    }
    if let Some(env) = env
        && !env.value.is_empty()
    {
        g.envs.push(env);
    }
    Some(g)
}

/// kustomize's MergeGlobalOptionsIntoLocal: the kustomization's
/// `generatorOptions` win over an entry's own.
pub fn merge_options(local: Option<&GenOptions>, global: Option<&GenOptions>) -> GenOptions {
    let mut o = local.cloned().unwrap_or_default();
    if let Some(g) = global {
        for (k, v) in &g.labels {
            upsert(&mut o.labels, k, v);
        }
        for (k, v) in &g.annotations {
            upsert(&mut o.annotations, k, v);
        }
        o.disable_name_suffix_hash |= g.disable_name_suffix_hash;
        o.immutable |= g.immutable;
    }
    o
}

pub fn upsert(list: &mut Vec<(String, String)>, k: &str, v: &str) {
    match list.iter_mut().find(|(key, _)| key == k) {
        Some(e) => e.1 = v.to_string(),
        None => list.push((k.to_string(), v.to_string())),
    }
}
