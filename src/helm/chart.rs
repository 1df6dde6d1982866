//! Loading a chart: from a directory (honouring `.helmignore`) or a `.tgz`
//! archive, with its subcharts in `charts/` (directories or archives), as
//! Helm's `pkg/chart/loader` does: `Chart.yaml` (and a v1 chart's
//! `requirements.yaml`), `values.yaml`, `values.schema.json`, `templates/`,
//! and every other file for `.Files`.
//!
//! Charts are hostile input. Helm's own limits apply (a file at most
//! [`MAX_FILE_BYTES`], a chart at most [`MAX_CHART_BYTES`] unpacked), plus
//! mooring's: at most [`MAX_FILES`] files, subcharts nested at most
//! [`MAX_NESTING`] deep, no path outside the chart (`..`, absolute paths),
//! and a symbolic link is followed only when it stays inside the chart.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ignore::Rules;
use super::yaml::{self, Raw};

/// The largest file of a chart (Helm's `MaxDecompressedFileSize`).
pub const MAX_FILE_BYTES: u64 = 5 << 20;
/// The most bytes of one chart with its subcharts, unpacked (Helm's
/// `MaxDecompressedChartSize`).
pub const MAX_CHART_BYTES: u64 = 100 << 20;
/// The most files of one chart with its subcharts.
pub const MAX_FILES: usize = 20_000;
/// The deepest nesting of subcharts.
pub const MAX_NESTING: usize = 16;

/// A file of a chart: its path inside the chart and its bytes.
#[derive(Debug, Clone)]
pub struct File {
    pub name: String,
    pub data: Arc<[u8]>,
}

/// `Chart.yaml`.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    pub name: String,
    pub home: String,
    pub sources: Vec<String>,
    pub version: String,
    pub description: String,
    pub keywords: Vec<String>,
    pub maintainers: Vec<Maintainer>,
    pub icon: String,
    pub api_version: String,
    pub condition: String,
    pub tags: String,
    pub app_version: String,
    pub deprecated: bool,
    pub annotations: BTreeMap<String, String>,
    pub kube_version: String,
    pub dependencies: Vec<Dependency>,
    pub chart_type: String,
}

#[derive(Debug, Clone, Default)]
pub struct Maintainer {
    pub name: String,
    pub email: String,
    pub url: String,
}

/// An entry of `dependencies:`.
#[derive(Debug, Clone, Default)]
pub struct Dependency {
    pub name: String,
    pub version: String,
    pub repository: String,
    pub condition: String,
    pub tags: Vec<String>,
    pub enabled: bool,
    /// `import-values`: strings, or `{child, parent}` maps.
    pub import_values: Vec<ImportValue>,
    pub alias: String,
}

#[derive(Debug, Clone)]
pub enum ImportValue {
    /// `exports.NAME` of the child into the parent's root.
    Export(String),
    Map {
        child: String,
        parent: String,
    },
}

/// A loaded chart.
#[derive(Debug, Clone)]
pub struct Chart {
    pub metadata: Metadata,
    /// `values.yaml`, as read (`None`: no file, or an empty one).
    pub values: Option<Raw>,
    pub schema: Option<Arc<[u8]>>,
    pub templates: Vec<File>,
    /// Every other file: what `.Files` holds.
    pub files: Vec<File>,
    /// The charts in `charts/`, in path order.
    pub dependencies: Vec<Chart>,
}

impl Chart {
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// Load a chart from a directory or a `.tgz` archive.
    pub fn load(path: &Path) -> Result<Chart, String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.is_dir() {
            return Chart::load_dir(path);
        }
        if meta.len() > MAX_CHART_BYTES {
            return Err(format!(
                "{}: the chart archive is larger than {MAX_CHART_BYTES} bytes",
                path.display()
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Chart::load_archive(&bytes)
    }

    /// Load a chart from a directory, with its `.helmignore`.
    pub fn load_dir(dir: &Path) -> Result<Chart, String> {
        let root = dir
            .canonicalize()
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut rules = match std::fs::read_to_string(root.join(".helmignore")) {
            Ok(text) => Rules::parse(&text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Rules::default(),
            Err(e) => return Err(format!("{}: {e}", root.join(".helmignore").display())),
        };
        rules.add_defaults();
        let mut files = Vec::new();
        let mut walk = Walk {
            root: &root,
            rules: &rules,
            total: 0,
            files: &mut files,
        };
        walk.dir(&root, "", 0)?;
        from_files(files, 0)
    }

    /// Load a chart from the bytes of a `.tgz` archive.
    pub fn load_archive(bytes: &[u8]) -> Result<Chart, String> {
        from_files(archive_files(bytes)?, 0)
    }
}

struct Walk<'a> {
    root: &'a Path,
    rules: &'a Rules,
    total: u64,
    files: &'a mut Vec<File>,
}

impl Walk<'_> {
    fn dir(&mut self, dir: &Path, rel: &str, depth: usize) -> Result<(), String> {
        if depth > 64 {
            return Err(format!("{rel}: directories nested too deeply"));
        }
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let mut path = entry.path();
            let mut ft = entry.file_type().map_err(|e| format!("{rel}: {e}"))?;
            if ft.is_symlink() {
                let target = path.canonicalize().map_err(|e| format!("{rel}: {e}"))?;
                if !target.starts_with(self.root) {
                    return Err(format!(
                        "{rel}: a symbolic link to {}, outside the chart; charts may only link inside themselves",
                        target.display()
                    ));
                }
                ft = std::fs::metadata(&target)
                    .map_err(|e| format!("{rel}: {e}"))?
                    .file_type();
                path = target;
            }
            if ft.is_dir() {
                if self.rules.ignore(&rel, true) {
                    continue;
                }
                self.dir(&path, &rel, depth + 1)?;
                continue;
            }
            if self.rules.ignore(&rel, false) {
                continue;
            }
            if !ft.is_file() {
                return Err(format!(
                    "cannot load irregular file {rel} as it has file mode type bits set"
                ));
            }
            let len = std::fs::metadata(&path).map_err(|e| format!("{rel}: {e}"))?.len();
            if len > MAX_FILE_BYTES {
                return Err(format!(
                    "chart file {name:?} is larger than the maximum file size {MAX_FILE_BYTES}"
                ));
            }
            self.total += len;
            if self.total > MAX_CHART_BYTES {
                return Err(format!(
                    "the chart is larger than the maximum size {MAX_CHART_BYTES}"
                ));
            }
            if self.files.len() >= MAX_FILES {
                return Err(format!("the chart has more than {MAX_FILES} files"));
            }
            let mut data = Vec::with_capacity(len as usize);
            std::fs::File::open(&path)
                .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut data))
                .map_err(|e| format!("error reading {rel}: {e}"))?;
            self.files.push(File {
                name: rel,
                data: Arc::from(strip_bom(data)),
            });
        }
        Ok(())
    }
}

fn strip_bom(mut data: Vec<u8>) -> Vec<u8> {
    if data.starts_with(&[0xEF, 0xBB, 0xBF]) {
        data.drain(..3);
    }
    data
}

/// The files of a chart archive, without their top directory.
pub fn archive_files(bytes: &[u8]) -> Result<Vec<File>, String> {
    let gz = flate2::read::GzDecoder::new(bytes);
    let mut tar = tar::Archive::new(gz);
    let mut files = Vec::new();
    let mut remaining = MAX_CHART_BYTES;
    let entries = tar.entries().map_err(|e| e.to_string())?;
    for entry in entries {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let kind = entry.header().entry_type();
        if kind.is_dir()
            || kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
        {
            continue;
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let delim = if raw.contains('\\') { '\\' } else { '/' };
        let parts: Vec<&str> = raw.split(delim).collect();
        let joined = parts[1..].join("/");
        if joined.starts_with('/') {
            return Err("chart illegally contains absolute paths".into());
        }
        let name = super::funcs::clean_path(&joined);
        if name == "." {
            return Err(format!(
                "chart illegally contains content outside the base directory: {raw:?}"
            ));
        }
        if name.starts_with("..") {
            return Err("chart illegally references parent directory".into());
        }
        let b = name.as_bytes();
        if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
            return Err("chart contains illegally named files".into());
        }
        if parts[0] == "Chart.yaml" {
            return Err("chart yaml not in base directory".into());
        }
        let size = entry.header().size().unwrap_or(0);
        if size > remaining {
            return Err(format!(
                "decompressed chart is larger than the maximum size {MAX_CHART_BYTES}"
            ));
        }
        if size > MAX_FILE_BYTES {
            return Err(format!(
                "decompressed chart file {raw:?} is larger than the maximum file size {MAX_FILE_BYTES}"
            ));
        }
        if files.len() >= MAX_FILES {
            return Err(format!("the chart archive has more than {MAX_FILES} files"));
        }
        let mut data = Vec::new();
        // Links and other special entries carry no data: Helm reads them as empty files.
        (&mut entry)
            .take(remaining.min(MAX_FILE_BYTES + 1))
            .read_to_end(&mut data)
            .map_err(|e| e.to_string())?;
        let written = data.len() as u64;
        remaining = remaining.saturating_sub(written);
        if written < size && kind.is_file() || remaining == 0 {
            return Err(format!(
                "decompressed chart is larger than the maximum size {MAX_CHART_BYTES}"
            ));
        }
        files.push(File {
            name,
            data: Arc::from(strip_bom(data)),
        });
    }
    if files.is_empty() {
        return Err("no files in chart archive".into());
    }
    Ok(files)
}

/// Helm's `LoadFiles`: a chart from its files (names relative to it).
fn from_files(files: Vec<File>, nesting: usize) -> Result<Chart, String> {
    if nesting > MAX_NESTING {
        return Err(format!("subcharts nested more than {MAX_NESTING} deep"));
    }
    let mut metadata: Option<Metadata> = None;
    let mut values = None;
    let mut schema = None;
    let mut templates = Vec::new();
    let mut other = Vec::new();
    let mut requirements: Option<Raw> = None;
    let mut requirements_file: Option<File> = None;
    let mut subcharts: BTreeMap<String, Vec<File>> = BTreeMap::new();
    for f in files {
        match f.name.as_str() {
            "Chart.yaml" => {
                let text = String::from_utf8_lossy(&f.data);
                let raw = yaml::parse_first(&text)
                    .map_err(|e| format!("cannot load Chart.yaml: error converting YAML to JSON: {e}"))?;
                let mut md =
                    metadata_from(raw.as_ref()).map_err(|e| format!("cannot load Chart.yaml: {e}"))?;
                if md.api_version.is_empty() {
                    md.api_version = "v1".into();
                }
                if let Some(m) = &metadata {
                    md.dependencies.extend(m.dependencies.iter().cloned());
                }
                metadata = Some(md);
            }
            "Chart.lock" | "requirements.lock" => {}
            "values.yaml" => {
                let text = String::from_utf8_lossy(&f.data);
                let raw = yaml::parse_first(&text)
                    .map_err(|e| format!("cannot load values.yaml: error converting YAML to JSON: {e}"))?;
                match &raw {
                    None | Some(Raw::Map(_)) | Some(Raw::Null) => {}
                    Some(_) => {
                        return Err(
                            "cannot load values.yaml: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal into Go value of type map[string]interface {}"
                                .into(),
                        );
                    }
                }
                values = raw;
            }
            "values.schema.json" => schema = Some(f.data.clone()),
            "requirements.yaml" => {
                let text = String::from_utf8_lossy(&f.data);
                requirements = Some(
                    yaml::parse_first(&text)
                        .map_err(|e| {
                            format!("cannot load requirements.yaml: error converting YAML to JSON: {e}")
                        })?
                        .unwrap_or(Raw::Null),
                );
                requirements_file = Some(f);
            }
            n if n.starts_with("templates/") => templates.push(f),
            n if n.starts_with("charts/") => {
                if n.ends_with(".prov") {
                    other.push(f);
                    continue;
                }
                let rest = &n["charts/".len()..];
                let cname = rest.split('/').next().unwrap_or(rest).to_string();
                subcharts.entry(cname).or_default().push(File {
                    name: rest.to_string(),
                    data: f.data,
                });
            }
            _ => other.push(f),
        }
    }
    let Some(mut metadata) = metadata else {
        return Err("Chart.yaml file is missing".into());
    };
    if let Some(req) = requirements {
        // Read into the same metadata, as Helm does: its `dependencies` replace Chart.yaml's.
        if field(Some(&req), "dependencies").is_some() {
            let deps =
                metadata_from(Some(&req)).map_err(|e| format!("cannot load requirements.yaml: {e}"))?;
            metadata.dependencies = deps.dependencies;
        }
        if metadata.api_version == "v1"
            && let Some(f) = requirements_file
        {
            other.push(f);
        }
    }
    validate(&mut metadata)?;
    let mut dependencies = Vec::new();
    for (name, files) in subcharts {
        if name.starts_with('_') || name.starts_with('.') {
            continue;
        }
        let sub = if name.ends_with(".tgz") {
            let Some(file) = files.first() else { continue };
            if file.name != name {
                return Err(format!(
                    "error unpacking subchart tar in {}: expected {name}, got {}",
                    metadata.name, file.name
                ));
            }
            archive_files(&file.data).and_then(|f| from_files(f, nesting + 1))
        } else {
            let inner: Vec<File> = files
                .into_iter()
                .filter_map(|f| {
                    let (_, rest) = f.name.split_once('/')?;
                    Some(File {
                        name: rest.to_string(),
                        data: f.data,
                    })
                })
                .collect();
            from_files(inner, nesting + 1)
        };
        let sub = sub.map_err(|e| format!("error unpacking subchart {name} in {}: {e}", metadata.name))?;
        dependencies.push(sub);
    }
    Ok(Chart {
        metadata,
        values,
        schema,
        templates,
        files: other,
        dependencies,
    })
}

fn sanitize(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            if c.is_whitespace() {
                Some(' ')
            } else if super::gofmt::is_print(c) {
                Some(c)
            } else {
                None
            }
        })
        .collect()
}

/// `Metadata.Validate`.
fn validate(md: &mut Metadata) -> Result<(), String> {
    for s in [
        &mut md.name,
        &mut md.description,
        &mut md.home,
        &mut md.icon,
        &mut md.condition,
        &mut md.tags,
        &mut md.app_version,
        &mut md.kube_version,
    ] {
        *s = sanitize(s);
    }
    for s in md.sources.iter_mut().chain(md.keywords.iter_mut()) {
        *s = sanitize(s);
    }
    if md.api_version.is_empty() {
        return Err("validation: chart.metadata.apiVersion is required".into());
    }
    if md.name.is_empty() {
        return Err("validation: chart.metadata.name is required".into());
    }
    if md.name.contains('/') || md.name == "." || md.name == ".." {
        return Err(format!(
            "validation: chart.metadata.name {:?} is invalid",
            md.name
        ));
    }
    if md.version.is_empty() {
        return Err("validation: chart.metadata.version is required".into());
    }
    if super::semver::Version::parse(&md.version).is_err() {
        return Err(format!(
            "validation: chart.metadata.version {:?} is invalid",
            md.version
        ));
    }
    if !matches!(md.chart_type.as_str(), "" | "application" | "library") {
        return Err("validation: chart.metadata.type must be application or library".into());
    }
    let mut seen = std::collections::HashSet::new();
    for d in &mut md.dependencies {
        for s in [
            &mut d.name,
            &mut d.version,
            &mut d.repository,
            &mut d.condition,
            &mut d.alias,
        ] {
            *s = sanitize(s);
        }
        if !d.alias.is_empty()
            && !d
                .alias
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "validation: dependency {:?} has disallowed characters in the alias",
                d.name
            ));
        }
        let key = if d.alias.is_empty() {
            d.name.clone()
        } else {
            d.alias.clone()
        };
        if !seen.insert(key.clone()) {
            return Err(format!(
                "validation: more than one dependency with name or alias {key:?}"
            ));
        }
    }
    Ok(())
}

// ---- Chart.yaml as Go's yaml → JSON → struct reads it ------------------------

fn field<'a>(raw: Option<&'a Raw>, key: &str) -> Option<&'a Raw> {
    let Some(Raw::Map(pairs)) = raw else { return None };
    pairs
        .iter()
        .rev()
        .find(|(k, _)| yaml::key_string(k).ok().as_deref() == Some(key))
        .map(|(_, v)| v)
}

/// A string field: YAML scalars are coerced as `sigs.k8s.io/yaml` does.
fn string(raw: Option<&Raw>, key: &str) -> Result<String, String> {
    match field(raw, key) {
        None | Some(Raw::Null) => Ok(String::new()),
        Some(Raw::Str(s)) => Ok(s.clone()),
        Some(Raw::Int(i)) => Ok(i.to_string()),
        Some(Raw::Uint(u)) => Ok(u.to_string()),
        Some(Raw::Float(f)) => Ok(yaml::format_float32(*f)),
        Some(Raw::Bool(b)) => Ok(b.to_string()),
        Some(Raw::Binary(b)) => Ok(String::from_utf8_lossy(b).into_owned()),
        Some(other) => Err(unmarshal_error(other, key, "string")),
    }
}

fn unmarshal_error(raw: &Raw, key: &str, ty: &str) -> String {
    let what = match raw {
        Raw::Seq(_) => "array",
        Raw::Map(_) => "object",
        Raw::Str(_) | Raw::Binary(_) => "string",
        Raw::Bool(_) => "bool",
        _ => "number",
    };
    format!(
        "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {what} into Go struct field .{key} of type {ty}"
    )
}

fn strings(raw: Option<&Raw>, key: &str) -> Result<Vec<String>, String> {
    match field(raw, key) {
        None | Some(Raw::Null) => Ok(Vec::new()),
        Some(Raw::Seq(items)) => items
            .iter()
            .map(|item| {
                let wrapper = Raw::Map(vec![(Raw::Str("x".into()), item.clone())]);
                string(Some(&wrapper), "x")
            })
            .collect(),
        Some(other) => Err(unmarshal_error(other, key, "[]string")),
    }
}

fn boolean(raw: Option<&Raw>, key: &str) -> Result<bool, String> {
    match field(raw, key) {
        None | Some(Raw::Null) => Ok(false),
        Some(Raw::Bool(b)) => Ok(*b),
        Some(other) => Err(unmarshal_error(other, key, "bool")),
    }
}

fn metadata_from(raw: Option<&Raw>) -> Result<Metadata, String> {
    if let Some(r) = raw
        && !matches!(r, Raw::Map(_) | Raw::Null)
    {
        return Err(format!(
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type chart.Metadata",
            match r {
                Raw::Seq(_) => "array",
                Raw::Str(_) => "string",
                Raw::Bool(_) => "bool",
                _ => "number",
            }
        ));
    }
    let mut annotations = BTreeMap::new();
    match field(raw, "annotations") {
        None | Some(Raw::Null) => {}
        Some(a @ Raw::Map(pairs)) => {
            for (k, _) in pairs {
                let key = yaml::key_string(k)?;
                annotations.insert(key.clone(), string(Some(a), &key)?);
            }
        }
        Some(other) => return Err(unmarshal_error(other, "annotations", "map[string]string")),
    }
    let mut maintainers = Vec::new();
    if let Some(Raw::Seq(items)) = field(raw, "maintainers") {
        for m in items {
            maintainers.push(Maintainer {
                name: string(Some(m), "name")?,
                email: string(Some(m), "email")?,
                url: string(Some(m), "url")?,
            });
        }
    }
    let mut dependencies = Vec::new();
    match field(raw, "dependencies") {
        None | Some(Raw::Null) => {}
        Some(Raw::Seq(items)) => {
            for d in items {
                let mut import_values = Vec::new();
                if let Some(Raw::Seq(ivs)) = field(Some(d), "import-values") {
                    for iv in ivs {
                        match iv {
                            Raw::Map(_) => import_values.push(ImportValue::Map {
                                child: string(Some(iv), "child")?,
                                parent: string(Some(iv), "parent")?,
                            }),
                            Raw::Str(s) => import_values.push(ImportValue::Export(s.clone())),
                            _ => {}
                        }
                    }
                }
                dependencies.push(Dependency {
                    name: string(Some(d), "name")?,
                    version: string(Some(d), "version")?,
                    repository: string(Some(d), "repository")?,
                    condition: string(Some(d), "condition")?,
                    tags: strings(Some(d), "tags")?,
                    enabled: boolean(Some(d), "enabled")?,
                    import_values,
                    alias: string(Some(d), "alias")?,
                });
            }
        }
        Some(other) => return Err(unmarshal_error(other, "dependencies", "[]*chart.Dependency")),
    }
    Ok(Metadata {
        name: string(raw, "name")?,
        home: string(raw, "home")?,
        sources: strings(raw, "sources")?,
        version: string(raw, "version")?,
        description: string(raw, "description")?,
        keywords: strings(raw, "keywords")?,
        maintainers,
        icon: string(raw, "icon")?,
        api_version: string(raw, "apiVersion")?,
        condition: string(raw, "condition")?,
        tags: string(raw, "tags")?,
        app_version: string(raw, "appVersion")?,
        deprecated: boolean(raw, "deprecated")?,
        annotations,
        kube_version: string(raw, "kubeVersion")?,
        dependencies,
        chart_type: string(raw, "type")?,
    })
}

/// Where a chart came from, for messages.
pub fn display(path: &Path) -> PathBuf {
    path.to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> File {
        File {
            name: name.into(),
            data: Arc::from(text.as_bytes()),
        }
    }

    #[test]
    fn loads_files_and_subcharts() {
        let c = from_files(
            vec![
                file(
                    "Chart.yaml",
                    "apiVersion: v2\nname: top\nversion: 1.0.0\nappVersion: 1.10\n",
                ),
                file("values.yaml", "a: 1\n"),
                file("templates/x.yaml", "x"),
                file("README.md", "hi"),
                file(
                    "charts/sub/Chart.yaml",
                    "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
                ),
                file("charts/sub/templates/y.yaml", "y"),
                file("charts/_skip/Chart.yaml", "x"),
            ],
            0,
        )
        .unwrap();
        assert_eq!(c.metadata.app_version, "1.1");
        assert_eq!(c.templates.len(), 1);
        assert_eq!(c.files.len(), 1);
        assert_eq!(c.dependencies.len(), 1);
        assert_eq!(c.dependencies[0].templates[0].name, "templates/y.yaml");
    }

    #[test]
    fn validates_metadata() {
        let e = from_files(vec![file("Chart.yaml", "apiVersion: v2\nversion: 1.0.0\n")], 0).unwrap_err();
        assert_eq!(e, "validation: chart.metadata.name is required");
        let e = from_files(vec![file("values.yaml", "")], 0).unwrap_err();
        assert_eq!(e, "Chart.yaml file is missing");
        let e = from_files(
            vec![file("Chart.yaml", "apiVersion: v2\nname: x\nversion: one\n")],
            0,
        )
        .unwrap_err();
        assert_eq!(e, "validation: chart.metadata.version \"one\" is invalid");
    }
}
