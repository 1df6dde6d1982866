//! One kustomization, built: resources (files and nested kustomizations),
//! generators, components, then the built-in transformers in kustomize's
//! order, then — at the top only — hash suffixes, name references, vars,
//! local-config removal. kustomize's KustTarget.

use std::sync::Arc;

use super::error::{Error, Result, Source, code};
use super::fieldspec::{self, TransformerConfig};
use super::fs::{self, Kind, Loader};
use super::kustomization::{self, FILE_NAMES, Kustomization, VarSpec};
use super::read::Spanned;
use super::resource::{ResMap, Resource};
use super::smp::{self, SchemaTable};
use super::yaml::{Node, Pos, Value, parse_documents};
use super::{generate, names, plugins, transform, vars};

/// The deepest nesting of kustomizations.
const MAX_DEPTH: usize = 64;
/// The most bytes of objects (as read from their files) a build may hold at
/// once; a base used many times counts each time.
pub const MAX_BUILD_BYTES: usize = 128 << 20;

pub struct Builder<'a> {
    pub fs: &'a Loader<'a>,
    /// Directories being built, outermost first: cycles are errors.
    stack: Vec<String>,
    /// buildMetadata of the top kustomization: origin annotations.
    pub origin: bool,
    pub transformer_annotations: bool,
    /// Problems that do not stop the build (fields kustomize ignores).
    pub warnings: std::cell::RefCell<Vec<Error>>,
    /// The OpenAPI schema for strategic merges: kustomize sets it once per
    /// build, from the first kustomization that names one.
    schema: Option<Arc<SchemaTable>>,
    schema_set: bool,
    /// [`MAX_BUILD_BYTES`], smaller in tests.
    pub max_bytes: usize,
    /// Flux's additions to the top kustomization.
    pub additions: Option<&'a super::Additions>,
}

/// Flux's generator: set namespace, prefix and suffix; append components
/// and patches; an image replaces the entry of its name or is appended.
fn add(k: &mut Kustomization, a: &super::Additions) {
    if let Some(ns) = &a.namespace {
        k.namespace = ns.clone();
    }
    if let Some(p) = &a.name_prefix {
        k.name_prefix = p.clone();
    }
    if let Some(s) = &a.name_suffix {
        k.name_suffix = s.clone();
    }
    for c in &a.components {
        k.components.push(Spanned {
            value: c.clone(),
            pos: Pos::default(),
        });
    }
    for p in &a.patches {
        k.patches.push(kustomization::PatchSpec {
            path: None,
            patch: Some(Spanned {
                value: p.patch.clone(),
                pos: Pos::default(),
            }),
            target: p.target.as_ref().map(|t| kustomization::Selector {
                gvk: super::resource::Gvk {
                    group: t.group.clone(),
                    version: t.version.clone(),
                    kind: t.kind.clone(),
                },
                name: t.name.clone(),
                namespace: t.namespace.clone(),
                label_selector: t.label_selector.clone(),
                annotation_selector: t.annotation_selector.clone(),
            }),
            allow_name_change: false,
            allow_kind_change: false,
            pos: Pos::default(),
        });
    }
    for i in &a.images {
        let image = kustomization::ImageSpec {
            name: i.name.clone(),
            new_name: i.new_name.clone(),
            new_tag: i.new_tag.clone(),
            digest: i.digest.clone(),
            pos: Pos::default(),
        };
        match k.images.iter_mut().find(|x| x.name == i.name) {
            Some(x) => *x = image,
            None => k.images.push(image),
        }
    }
}

/// What a kustomization accumulated: its resources and the rules that
/// still apply to them at the top (name references, vars).
#[derive(Default)]
pub struct Accumulator {
    pub resources: ResMap,
    pub config: TransformerConfig,
    pub vars: Vec<VarSpec>,
}

/// A loaded kustomization file.
pub struct Target {
    pub dir: String,
    pub src: Source,
    pub k: Kustomization,
}

impl Accumulator {
    /// Take a sub-kustomization's rules; its resources go to `pending`.
    fn absorb(&mut self, other: Accumulator, pending: &mut Vec<Resource>) -> Result<()> {
        pending.extend(other.resources.list);
        self.config
            .merge(&other.config)
            .map_err(|e| Error::new(code::INVALID, e))?;
        for v in other.vars {
            self.add_var(v)?;
        }
        Ok(())
    }

    fn add_var(&mut self, v: VarSpec) -> Result<()> {
        if self.vars.iter().any(|x| x.name == v.name) {
            return Err(
                Error::new(code::CONFLICT, format!("var '{}' already encountered", v.name))
                    .help("give each var a name of its own"),
            );
        }
        self.vars.push(v);
        Ok(())
    }
}

pub fn conflict_error(fs: &Loader, c: &super::resource::Conflict) -> Error {
    let message = format!(
        "may not add resource with an already registered id: {} (first from {}:{})",
        c.id,
        fs.shown(&c.first.0),
        c.first.1
    );
    let help = "each object may appear once; give one of them another name (namePrefix/nameSuffix) or namespace, or list it once";
    match fs.read(&c.second.0) {
        Ok(text) if c.second.1 > 0 => {
            let src = Source {
                file: c.second.0.clone(),
                text,
            };
            Error::at(
                code::CONFLICT,
                &src,
                Pos {
                    line: c.second.1,
                    col: 1,
                },
                message,
            )
            .help(help)
        }
        _ => Error::new(code::CONFLICT, message).help(help),
    }
}

/// Say what the build was doing, unless the error already points into
/// that file.
fn within(e: Error, fs: &Loader, file: &str, what: String) -> Error {
    if e.file.as_deref() == Some(file) {
        e
    } else {
        e.context(format!("{what} {}", fs.shown(file)))
    }
}

impl<'a> Builder<'a> {
    pub fn new(fs: &'a Loader<'a>) -> Builder<'a> {
        Builder {
            fs,
            stack: Vec::new(),
            origin: false,
            transformer_annotations: false,
            warnings: std::cell::RefCell::new(Vec::new()),
            schema: None,
            schema_set: false,
            max_bytes: MAX_BUILD_BYTES,
            additions: None,
        }
    }

    /// The schema strategic merges use now.
    pub fn schema(&self) -> &SchemaTable {
        self.schema.as_deref().unwrap_or(smp::builtin())
    }

    /// kustomize's openapi.SetSchema for a kustomization's `openapi`.
    fn set_schema(&mut self, t: &Target, reset: bool) -> Result<()> {
        if self.schema_set && !reset {
            return Ok(());
        }
        let k = &t.k;
        if let Some(path) = &k.openapi_path {
            if let Some(v) = &k.openapi_version {
                return Err(Error::at(
                    code::INVALID,
                    &t.src,
                    v.pos,
                    "builtin version and custom schema provided, cannot use both",
                )
                .help("keep `openapi: path:` or `openapi: version:`"));
            }
            let file = self.file_of(t, path)?;
            let text = self.fs.read(&file)?;
            let src = Source { file, text };
            let node = parse_one(&src)?;
            self.schema = Some(Arc::new(smp::from_openapi(&node)));
            self.schema_set = true;
        } else if let Some(v) = &k.openapi_version {
            if v.value != "v1.21.2" {
                return Err(Error::at(
                    code::INVALID,
                    &t.src,
                    v.pos,
                    "the specified OpenAPI version is not built in",
                )
                .help("the built-in OpenAPI version is v1.21.2"));
            }
            self.schema = None;
            self.schema_set = true;
        }
        Ok(())
    }

    fn check_size(&self, size: usize) -> Result<()> {
        if size > self.max_bytes {
            return Err(Error::new(
                code::TOO_LARGE,
                format!("the build holds more than {} bytes of objects", self.max_bytes),
            )
            .help("a base included many times over multiplies its objects; include it fewer times"));
        }
        Ok(())
    }

    /// Load the kustomization file of `dir` (a real path relative to the root).
    pub fn load(&self, dir: &str) -> Result<Target> {
        let mut found = Vec::new();
        for name in FILE_NAMES {
            let path = fs::join(dir, name);
            if self.fs.kind(&path) == Kind::File {
                found.push(path);
            }
        }
        let file = match found.len() {
            0 => {
                let shown = self.fs.shown(dir);
                return Err(Error::new(
                    code::NOT_FOUND,
                    format!("unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' in directory '{shown}'"),
                )
                .help("a directory listed under resources, bases or components must hold a kustomization file"));
            }
            1 => found.remove(0),
            _ => {
                return Err(Error::new(
                    code::INVALID,
                    format!(
                        "found multiple kustomization files: {}",
                        found
                            .iter()
                            .map(|f| self.fs.shown(f))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .help("keep one of them"));
            }
        };
        let text = self.fs.read(&file)?;
        let src = Source { file, text };
        let node = parse_one(&src)?;
        let k = kustomization::read(&src, &node)?;
        Ok(Target {
            dir: dir.to_string(),
            src,
            k,
        })
    }

    /// Build the kustomization in `dir`: kustomize's MakeCustomizedResMap.
    pub fn build(&mut self, dir: &str) -> Result<(Target, ResMap)> {
        let mut t = self.load(dir)?;
        if let Some(a) = self.additions {
            add(&mut t.k, a);
        }
        self.set_schema(&t, true)?;
        self.origin = t.k.build_metadata.iter().any(|b| b == "originAnnotations");
        self.transformer_annotations = t.k.build_metadata.iter().any(|b| b == "transformerAnnotations");
        self.stack.push(dir.to_string());
        let mut ra = self.accumulate_target(&t, Accumulator::default(), "")?;
        self.stack.pop();
        names::add_hashes(&mut ra.resources)?;
        names::fix_back_references(&mut ra.resources, &ra.config)?;
        vars::resolve(&mut ra)?;
        ra.resources
            .list
            .retain(|r| r.annotation("config.kubernetes.io/local-config").is_none());
        Ok((t, ra.resources))
    }

    /// kustomize's accumulateTarget. `ra` is empty for a kustomization and
    /// the parent's for a component. `origin_dir` is the directory relative
    /// to the top kustomization, for origin annotations.
    pub fn accumulate_target(
        &mut self,
        t: &Target,
        mut ra: Accumulator,
        origin_dir: &str,
    ) -> Result<Accumulator> {
        let k = &t.k;
        self.accumulate_resources(t, &mut ra, &k.resources, origin_dir)
            .map_err(|e| within(e, self.fs, &t.src.file, "in".into()))?;
        // Each `configurations` file is kustomize's defaults with the
        // sections it has replaced; several are merged.
        let mut config = if k.configurations.is_empty() {
            fieldspec::defaults().clone()
        } else {
            TransformerConfig::default()
        };
        for c in &k.configurations {
            let path = self.file_of(t, c)?;
            let text = self.fs.read(&path)?;
            let src = Source { file: path, text };
            let node = parse_one(&src)?;
            let more = TransformerConfig::read(&src, &node)?;
            config
                .merge(&more)
                .map_err(|e| Error::at(code::INVALID, &t.src, c.pos, e))?;
        }
        ra.config
            .merge(&config)
            .map_err(|e| Error::in_file(code::INVALID, &t.src.file, e))?;
        let mut crd_config = TransformerConfig::default();
        for c in &k.crds {
            let path = self.file_of(t, c)?;
            let text = self.fs.read(&path)?;
            let src = Source { file: path, text };
            let node = parse_one(&src)?;
            crd_config
                .merge(&fieldspec::crd_config(&node))
                .map_err(|e| Error::at(code::INVALID, &t.src, c.pos, e))?;
        }
        ra.config
            .merge(&crd_config)
            .map_err(|e| Error::in_file(code::INVALID, &t.src.file, e))?;

        generate::run(self, t, &mut ra, origin_dir)?;

        for c in &k.components {
            let dir = self.dir_of(t, c)?;
            let sub = self
                .load(&dir)
                .map_err(|e| within(e, self.fs, &t.src.file, format!("component `{}` of", c.value)))?;
            if !sub.k.is_component {
                return Err(Error::at(
                    code::INVALID,
                    &t.src,
                    c.pos,
                    format!(
                        "expected kind 'Component' for path '{}' but got 'Kustomization'",
                        c.value
                    ),
                )
                .help("a directory under `components` must hold a `kind: Component` kustomization"));
            }
            self.set_schema(&sub, false)?;
            self.enter(&dir, t, c)?;
            let taken = std::mem::take(&mut ra);
            let sub_origin = fs::join(origin_dir, &c.value);
            ra = self.accumulate_target(&sub, taken, &sub_origin)?;
            self.stack.pop();
            self.check_size(ra.resources.size())?;
        }

        transform::run_builtins(self, t, &mut ra, origin_dir)?;
        plugins::run_transformers(self, t, &mut ra, origin_dir)?;
        for v in &k.vars {
            merge_var(&mut ra, v.clone(), t)?;
        }
        Ok(ra)
    }

    fn enter(&mut self, dir: &str, t: &Target, at: &Spanned<String>) -> Result<()> {
        if self.stack.iter().any(|d| d == dir) {
            return Err(Error::at(
                code::CYCLE,
                &t.src,
                at.pos,
                format!("cycle detected: `{}` is already being built", at.value),
            )
            .help("a kustomization may not include itself, directly or through its bases"));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(Error::at(
                code::TOO_LARGE,
                &t.src,
                at.pos,
                format!("kustomizations nest more than {MAX_DEPTH} levels deep"),
            ));
        }
        self.stack.push(dir.to_string());
        Ok(())
    }

    /// A directory named in the kustomization of `t`, as a real path.
    pub fn dir_of(&self, t: &Target, p: &Spanned<String>) -> Result<String> {
        if is_remote(&p.value) {
            return Err(remote_error(&t.src, p));
        }
        let Some(path) = self.fs.resolve(&t.dir, &p.value) else {
            return Err(outside_root(&t.src, p));
        };
        match self.fs.kind(&path) {
            Kind::Dir => Ok(path),
            Kind::File => Err(Error::at(
                code::INVALID,
                &t.src,
                p.pos,
                format!("`{}` is a file, not a directory", p.value),
            )),
            Kind::Missing => Err(Error::at(
                code::NOT_FOUND,
                &t.src,
                p.pos,
                format!("`{}` does not exist", p.value),
            )),
        }
    }

    /// A file named in the kustomization of `t`: inside its directory
    /// (kustomize's load restrictor), unless the loader is unrestricted;
    /// always inside the root.
    pub fn file_of(&self, t: &Target, p: &Spanned<String>) -> Result<String> {
        self.file_in(&t.src, &t.dir, p)
    }

    pub fn file_in(&self, src: &Source, dir: &str, p: &Spanned<String>) -> Result<String> {
        if is_remote(&p.value) {
            return Err(remote_error(src, p));
        }
        let Some(path) = self.fs.resolve(dir, &p.value) else {
            return Err(outside_root(src, p));
        };
        if self.fs.restricted && !fs::is_within(&path, dir) {
            let shown = self.fs.shown(dir);
            return Err(Error::at(
                code::OUTSIDE_ROOT,
                src,
                p.pos,
                format!("security; file '{}' is not in or below '{shown}'", p.value),
            )
            .help("kustomize loads files only from the kustomization's own directory and below; move the file there, or make its directory a kustomization and list that under resources"));
        }
        match self.fs.kind(&path) {
            Kind::File => Ok(path),
            Kind::Dir => Err(Error::at(
                code::INVALID,
                src,
                p.pos,
                format!("`{}` is a directory, not a file", p.value),
            )),
            Kind::Missing => Err(Error::at(
                code::NOT_FOUND,
                src,
                p.pos,
                format!("file `{}` does not exist", p.value),
            )
            .help("check the path; it is relative to the kustomization's directory")),
        }
    }

    fn accumulate_resources(
        &mut self,
        t: &Target,
        ra: &mut Accumulator,
        paths: &[Spanned<String>],
        origin_dir: &str,
    ) -> Result<()> {
        // Resources are appended (and checked for conflicts) all at once.
        let mut pending: Vec<Resource> = Vec::new();
        let mut size = ra.resources.size();
        for p in paths {
            if is_remote(&p.value) {
                return Err(remote_error(&t.src, p));
            }
            let Some(path) = self.fs.resolve(&t.dir, &p.value) else {
                return Err(outside_root(&t.src, p));
            };
            match self.fs.kind(&path) {
                Kind::File => {
                    if !fs::is_within(&path, &t.dir) {
                        self.file_of(t, p)?;
                    }
                    let mut list = self.read_resources(&path)?;
                    if self.origin {
                        let origin = format!("path: {}\n", fs::join(origin_dir, &p.value));
                        for r in &mut list {
                            r.set_annotation("config.kubernetes.io/origin", &origin);
                        }
                    }
                    size += list.iter().map(|r| r.size).sum::<usize>();
                    pending.extend(list);
                }
                Kind::Dir => {
                    let sub = self
                        .load(&path)
                        .map_err(|e| within(e, self.fs, &t.src.file, format!("resource `{}` of", p.value)))?;
                    if sub.k.is_component {
                        return Err(Error::at(
                            code::INVALID,
                            &t.src,
                            p.pos,
                            format!("expected kind != 'Component' for path '{}'", p.value),
                        )
                        .help("list components under `components`, not `resources`"));
                    }
                    self.set_schema(&sub, false)?;
                    self.enter(&path, t, p)?;
                    let sub_origin = fs::join(origin_dir, &p.value);
                    let sub_ra = self.accumulate_target(&sub, Accumulator::default(), &sub_origin)?;
                    self.stack.pop();
                    size += sub_ra.resources.size();
                    ra.absorb(sub_ra, &mut pending)?;
                    self.check_size(size)?;
                }
                Kind::Missing => {
                    return Err(Error::at(
                        code::NOT_FOUND,
                        &t.src,
                        p.pos,
                        format!("resource `{}` does not exist", p.value),
                    )
                    .help(
                        "list files or directories (with a kustomization) relative to this kustomization",
                    ));
                }
            }
        }
        ra.resources
            .append_all(pending)
            .map_err(|c| conflict_error(self.fs, &c))
    }

    /// The objects in a YAML file (a real path relative to the root).
    pub fn read_resources(&self, path: &str) -> Result<Vec<Resource>> {
        let text = self.fs.read(path)?;
        let src = Source {
            file: path.to_string(),
            text,
        };
        resources_from(&src)
    }
}

fn merge_var(ra: &mut Accumulator, v: VarSpec, t: &Target) -> Result<()> {
    let target = super::resource::ResId {
        gvk: v.gvk.clone(),
        name: v.obj_name.clone(),
        namespace: v.obj_namespace.clone(),
    };
    let exact = !target.namespace.is_empty() || target.is_cluster_scoped();
    let matched: Vec<usize> = ra
        .resources
        .list
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            let id = r.org_id();
            if exact {
                target.equals(&id)
            } else {
                target.gvkn_equals(&id)
            }
        })
        .map(|(i, _)| i)
        .collect();
    if matched.len() > 1 {
        return Err(Error::at(
            code::CONFLICT,
            &t.src,
            v.pos,
            format!(
                "found {} resId matches for var {} (unable to disambiguate)",
                matched.len(),
                v.name
            ),
        )
        .help("add the namespace to the var's objref"));
    }
    if let Some(&i) = matched.first() {
        ra.resources.list[i].ref_var_names.push(v.name.clone());
    }
    ra.add_var(v).map_err(|e| e.in_file_if_none(&t.src.file))
}

/// Parse one of kustomize's own files (one YAML document; a repeated key
/// replaces the earlier one, as kustomize reads them).
pub fn parse_one(src: &Source) -> Result<Node> {
    let docs = super::yaml::parse_documents_lenient(&src.text).map_err(|e| yaml_error(src, &e))?;
    let mut nodes = docs.into_iter().filter_map(|d| d.node);
    let node = nodes.next().unwrap_or_else(Node::null);
    Ok(node)
}

pub fn yaml_error(src: &Source, e: &super::yaml::ParseError) -> Error {
    Error::at(
        code::YAML,
        src,
        Pos {
            line: e.line.max(1),
            col: e.col.max(1),
        },
        format!("invalid YAML: {}", e.message),
    )
}

/// The objects of a YAML text: documents, and the items of `…List` kinds.
pub fn resources_from(src: &Source) -> Result<Vec<Resource>> {
    let docs = parse_documents(&src.text).map_err(|e| yaml_error(src, &e))?;
    let mut out = Vec::new();
    let mut queue: std::collections::VecDeque<(Node, u32)> = docs
        .into_iter()
        .filter_map(|d| d.node.map(|n| (n, d.line)))
        .collect();
    let approx = src.text.len() / queue.len().max(1);
    while let Some((node, line)) = queue.pop_front() {
        let pos = Pos { line, col: 1 };
        if node.as_map().is_none() {
            return Err(Error::at(
                code::INVALID,
                src,
                pos,
                format!("a resource must be a mapping, not {}", node.kind_name()),
            ));
        }
        if node.as_map().is_some_and(Vec::is_empty) {
            continue;
        }
        let kind = node.str_at(&["kind"]).unwrap_or("");
        if kind.ends_with("List") && node.get("items").is_some() {
            match node.get("items").map(|n| &n.value) {
                None => {}
                Some(Value::Seq(items)) => {
                    for item in items {
                        queue.push_back((item.clone(), item.pos.line));
                    }
                }
                Some(Value::Scalar(s)) if s.tag == super::yaml::Tag::Null => {}
                Some(_) => {
                    return Err(Error::at(
                        code::INVALID,
                        src,
                        pos,
                        format!("expected a list in {kind}/items"),
                    ));
                }
            }
            continue;
        }
        if kind.is_empty() {
            return Err(Error::at(code::INVALID, src, pos, "missing kind in object")
                .help("every object needs apiVersion, kind and metadata.name"));
        }
        if node.str_at(&["metadata", "name"]).is_none_or(str::is_empty) {
            return Err(Error::at(
                code::INVALID,
                src,
                pos,
                format!("missing metadata.name in object of kind {kind}"),
            )
            .help("every object needs apiVersion, kind and metadata.name"));
        }
        if let Some(p) = nil_in_list(&node) {
            return Err(Error::at(
                code::INVALID,
                src,
                pos,
                format!("empty item at {p} in object"),
            ));
        }
        let mut node = node;
        if let Some(annos) = node
            .get_mut("metadata")
            .and_then(|m| m.get_mut("annotations"))
            .and_then(Node::as_map_mut)
        {
            // kustomize rewrites annotations as strings when it reads objects.
            for e in annos {
                if let Value::Scalar(s) = &mut e.value.value {
                    s.tag = super::yaml::Tag::Str;
                    s.plain = false;
                }
            }
        }
        out.push(Resource::new(node, &src.file, line, approx));
    }
    Ok(out)
}

/// The path of a null item in a list, if any.
fn nil_in_list(node: &Node) -> Option<String> {
    match &node.value {
        Value::Map(m) => m.iter().find_map(|e| {
            nil_in_list(&e.value).map(|p| format!("{}.{p}", e.key).trim_end_matches('.').to_string())
        }),
        Value::Seq(items) => items.iter().enumerate().find_map(|(i, n)| {
            if n.is_null() {
                Some(format!("[{i}]"))
            } else {
                nil_in_list(n).map(|p| format!("[{i}].{p}"))
            }
        }),
        Value::Scalar(_) => None,
    }
}

/// A remote resource (URL or repository), which mooring does not fetch.
pub fn is_remote(p: &str) -> bool {
    p.contains("://")
        || p.starts_with("git@")
        || p.starts_with("github.com/")
        || p.starts_with("gitlab.com/")
        || p.starts_with("bitbucket.org/")
        || p.contains("?ref=")
        || p.contains(".git//")
}

fn remote_error(src: &Source, p: &Spanned<String>) -> Error {
    Error::at(
        code::REFUSED,
        src,
        p.pos,
        format!("remote resource `{}` is not supported", p.value),
    )
    .help("mooring builds only what is in the source: vendor the remote base into the repository, or declare its repository as a source and an app of its own")
}

fn outside_root(src: &Source, p: &Spanned<String>) -> Error {
    Error::at(
        code::OUTSIDE_ROOT,
        src,
        p.pos,
        format!("`{}` leads outside the source", p.value),
    )
    .help("paths may not climb above the source's root or follow a symlink out of it")
}

pub fn text_source(file: &str, text: &str) -> Source {
    Source {
        file: file.to_string(),
        text: Arc::new(text.to_string()),
    }
}
