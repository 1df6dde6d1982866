//! Flux's Helm objects: a `HelmRepository` becomes a `helm` source, and so
//! does an `OCIRepository` of a Helm chart (its parent repository, the
//! chart named by the app); a `HelmRelease` becomes an app of its chart —
//! from `spec.chart`, or a `chartRef` to a `HelmChart` or an
//! `OCIRepository` — with its values (`valuesFrom` as `values-from`),
//! release name, namespace and post-renderers (`patch`, `set-image`) as
//! Flux installs them. Anything that has no mooring form is noted.

use super::*;

pub(super) fn helm_source(out: &mut Out, o: &Obj, names: &Names) -> Vec<Note> {
    let mut notes = Vec::new();
    let url = o.str("url").unwrap_or_default().to_string();
    let oci = o.str("type") == Some("oci") || url.starts_with("oci://");
    header(out, o);
    out.block(&format!("source {}", q(&names.get(o))), |out| {
        out.line(&format!("helm {}", q(&url)));
        let creds = if oci {
            Creds::DockerConfig
        } else {
            Creds::Basic("user")
        };
        access(out, o, &mut notes, creds);
        if let Some(p) = o.str("provider").filter(|p| *p != "generic") {
            notes.push(o.note(format!(
                "`provider: {p}` not imported: cloud identity is not supported; give credentials in auth"
            )));
        }
        unsupported(
            o,
            &mut notes,
            out,
            &[
                (
                    "passCredentials",
                    "credentials are sent only to the repository's own host",
                ),
                ("certSecretRef", "custom CAs are not imported"),
                ("accessFrom", "sources are not namespaced objects in mooring"),
            ],
        );
    });
    notes
}

/// Flux's release name: `TARGETNAMESPACE-NAME` with a target namespace,
/// else the HelmRelease's name.
fn release_name(o: &Obj) -> String {
    if let Some(r) = o.str("releaseName") {
        return r.to_string();
    }
    match o.str("targetNamespace") {
        Some(ns) => format!("{ns}-{}", o.name),
        None => o.name.clone(),
    }
}

/// The layer a Helm chart is pushed as (`helm push`).
const HELM_CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// How many imported HelmReleases name `chart` (a HelmChart) in `chartRef`.
pub(super) fn chart_users(chart: &Obj, objects: &[Obj]) -> usize {
    objects
        .iter()
        .filter(|o| {
            o.kind == "HelmRelease"
                && chart_ref(o) == Some((chart.kind.as_str(), chart.ns.as_str(), chart.name.as_str()))
        })
        .count()
}

/// A HelmRelease's `chartRef`: kind, namespace, name.
fn chart_ref(o: &Obj) -> Option<(&str, &str, &str)> {
    Some((
        o.str("chartRef.kind")?,
        o.str("chartRef.namespace").unwrap_or(&o.ns),
        o.str("chartRef.name")?,
    ))
}

/// Whether an OCIRepository holds a Helm chart: its layer selector picks a
/// chart's layer, or a HelmRelease's `chartRef` names it — and no
/// Kustomization reads it as manifests.
pub(super) fn is_chart_repository(o: &Obj, objects: &[Obj]) -> bool {
    !read_by_kustomization(o, objects.iter())
        && (o.str("layerSelector.mediaType") == Some(HELM_CHART_LAYER) || chart_users(o, objects) > 0)
}

/// Whether a Kustomization reads the OCIRepository `o` (as manifests).
fn read_by_kustomization<'o>(o: &Obj, mut objects: impl Iterator<Item = &'o Obj>) -> bool {
    objects.any(|k| {
        k.kind == "Kustomization"
            && k.str("sourceRef.kind") == Some("OCIRepository")
            && k.str("sourceRef.name") == Some(o.name.as_str())
            && k.str("sourceRef.namespace").unwrap_or(&k.ns) == o.ns
    })
}

/// An OCIRepository's URL split into the repository above the chart and
/// the chart's name: `oci://ghcr.io/org/charts/web` → (`oci://ghcr.io/org/charts`, `web`).
fn oci_chart_url(o: &Obj) -> Option<(String, String)> {
    let url = o.str("url")?;
    let rest = url.strip_prefix("oci://").unwrap_or(url).trim_end_matches('/');
    let (parent, chart) = rest.rsplit_once('/')?;
    (!parent.is_empty() && !chart.is_empty()).then(|| (format!("oci://{parent}"), chart.to_string()))
}

/// An OCIRepository of a Helm chart as a `helm "oci://…"` source: its
/// parent repository (mooring's apps name the chart and the version).
pub(super) fn oci_chart_source(out: &mut Out, o: &Obj, names: &Names) -> Vec<Note> {
    let mut notes = Vec::new();
    let Some((parent, _)) = oci_chart_url(o) else {
        out.comment(&format!(
            "{} not imported: its url is not oci://HOST/…/CHART",
            o.id()
        ));
        notes.push(o.note("not imported: its url is not oci://HOST/…/CHART"));
        return notes;
    };
    header(out, o);
    out.block(&format!("source {}", q(&names.get(o))), |out| {
        out.line(&format!("helm {}", q(&parent)));
        access(out, o, &mut notes, Creds::DockerConfig);
        provider(o, out, &mut notes);
        let chart = [
            ("ref.digest", "a chart app picks a version range, not a digest"),
            ("ignore", "a chart from a Helm repository is kept whole"),
        ];
        unsupported(o, &mut notes, out, &[&OCI_UNSUPPORTED[..], &chart].concat());
    });
    notes
}

/// The `version=` of a chart from an OCIRepository's `ref`: its semver
/// range, or its tag (a version); `None` for the highest version.
fn oci_chart_version(repo: &Obj, notes: &mut Vec<Note>, app: &Obj) -> Option<String> {
    if let Some(s) = repo.str("ref.semver") {
        return Some(s.to_string());
    }
    match repo.str("ref.tag") {
        Some(t) if crate::tags::Range::parse(t).is_ok() && t != "latest" => Some(t.to_string()),
        Some(t) => {
            notes.push(app.note(format!(
                "the tag `{t}` of {} is not a version: the app installs the chart's highest version",
                repo.id()
            )));
            None
        }
        None => {
            if repo.str("ref.digest").is_none() {
                notes.push(app.note(format!(
                    "{} follows the tag `latest`: the app installs the chart's highest version",
                    repo.id()
                )));
            }
            None
        }
    }
}

/// Where a HelmRelease's chart comes from.
enum ChartFrom<'o> {
    /// A chart template (`spec.chart.spec`, or a HelmChart's spec), whose
    /// `sourceRef` defaults to the namespace `ns`.
    Spec { spec: &'o Value, ns: &'o str },
    /// An OCIRepository of a chart.
    Oci(&'o Obj),
}

pub(super) fn helm_app(
    out: &mut Out,
    o: &Obj,
    names: &Names,
    by_key: &HashMap<(String, String, String), &Obj>,
) -> Vec<Note> {
    let mut notes = Vec::new();
    header(out, o);
    let lookup = |kind: &str, ns: &str, name: &str| {
        by_key
            .get(&(kind.to_string(), ns.to_string(), name.to_string()))
            .copied()
    };
    let from = match (get(&o.spec, "chart.spec"), chart_ref(o)) {
        (Some(spec), _) => Ok(ChartFrom::Spec { spec, ns: &o.ns }),
        (None, Some(("HelmChart", ns, name))) => match lookup("HelmChart", ns, name) {
            Some(c) => Ok(ChartFrom::Spec {
                spec: &c.spec,
                ns: &c.ns,
            }),
            None => Err(format!(
                "its chartRef HelmChart {ns}/{name} is not among the imported objects; import the files that define it too"
            )),
        },
        (None, Some(("OCIRepository", ns, name))) => match lookup("OCIRepository", ns, name) {
            Some(r) if read_by_kustomization(r, by_key.values().copied()) => Err(format!(
                "its chartRef {} is also a Kustomization's source, so it stays an OCI source of manifests; declare a `helm \"oci://…\"` source for the chart by hand",
                r.id()
            )),
            Some(r) if oci_chart_url(r).is_some() => Ok(ChartFrom::Oci(r)),
            Some(r) => Err(format!(
                "the url of its chartRef {} is not oci://HOST/…/CHART",
                r.id()
            )),
            None => Err(format!(
                "its chartRef OCIRepository {ns}/{name} is not among the imported objects; import the files that define it too"
            )),
        },
        (None, Some((kind, _, _))) => Err(format!("its chartRef is a {kind}, which mooring does not import")),
        (None, None) => Err("it names no chart (`spec.chart` or `spec.chartRef`)".to_string()),
    };
    // The source, and the chart line (`chart` or `path`).
    let resolved = from.and_then(|from| match from {
        ChartFrom::Spec { spec, ns } => {
            let field = |k: &str| get(spec, k).and_then(Value::as_str);
            let kind = field("sourceRef.kind").unwrap_or("HelmRepository");
            let sns = field("sourceRef.namespace").unwrap_or(ns);
            let name = field("sourceRef.name").unwrap_or_default();
            let source = names
                .of(kind, sns, name)
                .filter(|_| lookup(kind, sns, name).is_some())
                .ok_or_else(|| format!("its source {kind} {sns}/{name} is not among the imported objects; import the files that define it too"))?;
            let chart = field("chart").unwrap_or_default();
            let head = if kind == "HelmRepository" {
                match field("version").filter(|v| *v != "*") {
                    Some(v) => Some(format!("chart {} version={}", q(chart), q(v))),
                    None => Some(format!("chart {}", q(chart))),
                }
            } else {
                (normal(chart) != ".").then(|| format!("path {}", q(&normal(chart))))
            };
            let mut files = Vec::new();
            for f in get(spec, "valuesFiles").and_then(Value::as_array).into_iter().flatten() {
                if let Some(f) = f.as_str().filter(|_| kind != "HelmRepository") {
                    files.push(format!("values-file {}", q(&normal(&format!("{chart}/{f}")))));
                } else if let Some(f) = f.as_str() {
                    files.push(format!("// Flux valuesFiles `{f}` (a file inside the chart) not imported"));
                    notes.push(o.note(format!("`valuesFiles: {f}` (inside a repository's chart) not imported: copy its values into `values`")));
                }
            }
            Ok((source.to_string(), head, files))
        }
        ChartFrom::Oci(repo) => {
            let (_, chart) = oci_chart_url(repo).unwrap_or_default();
            let line = match oci_chart_version(repo, &mut notes, o) {
                Some(v) => format!("chart {} version={}", q(&chart), q(&v)),
                None => format!("chart {}", q(&chart)),
            };
            Ok((names.get(repo), Some(line), Vec::new()))
        }
    });
    let (source, head, files) = match resolved {
        Ok(r) => r,
        Err(why) => {
            out.comment(&format!("not imported: {why}"));
            notes.push(o.note(format!("not imported: {why}")));
            return notes;
        }
    };
    let app = names.get(o);
    out.block(&format!("app {}", q(&app)), |out| {
        out.line(&format!("source {}", q(&source)));
        if let Some(head) = &head {
            out.line(head);
        }
        let release = release_name(o);
        if release != app {
            out.line(&format!("release {}", q(&release)));
        }
        out.line(&format!(
            "namespace {}",
            q(o.str("targetNamespace").unwrap_or(&o.ns))
        ));
        if let Some(secret) = o.str("kubeConfig.secretRef.name") {
            out.line(&format!(
                "cluster {}",
                q(&sanitize(&format!("{}-{}", o.ns, secret)))
            ));
        }
        durations(
            out,
            o,
            &mut notes,
            &[("interval", "interval"), ("timeout", "timeout")],
        );
        if o.str("install.crds") == Some("Skip") {
            out.line("crds \"skip\"");
        }
        let mut deps = Vec::new();
        for d in get(&o.spec, "dependsOn")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let dname = d.get("name").and_then(Value::as_str).unwrap_or_default();
            let dns = d.get("namespace").and_then(Value::as_str).unwrap_or(&o.ns);
            match names.of("HelmRelease", dns, dname) {
                Some(n) => deps.push(q(n)),
                None => notes.push(o.note(format!(
                    "dependsOn {dns}/{dname} dropped: no such HelmRelease was imported"
                ))),
            }
        }
        if !deps.is_empty() {
            out.line(&format!("depends-on {}", deps.join(" ")));
        }
        for line in &files {
            match line.strip_prefix("// ") {
                Some(comment) => out.comment(comment),
                None => out.line(line),
            }
        }
        values_from(out, o, &mut notes);
        if let Some(values) = get(&o.spec, "values").filter(|v| v.as_object().is_some_and(|m| !m.is_empty()))
        {
            match serde_saphyr::to_string(values) {
                Ok(text) => out.multiline("values", &text),
                Err(e) => notes.push(o.note(format!("`values` not imported: {e}"))),
            }
        }
        post_renderers(out, o, &mut notes);
        if o.bool("install.createNamespace") {
            out.comment("Flux `install.createNamespace` not imported: create the namespace in another app");
            notes.push(o.note(
                "`install.createNamespace` not imported: create the namespace in an app this one depends on",
            ));
        }
        unsupported(
            o,
            &mut notes,
            out,
            &[
                (
                    "serviceAccountName",
                    "mooring applies with its cluster's credentials",
                ),
                ("storageNamespace", "mooring keeps no Helm release records"),
                ("driftDetection", "mooring corrects drift on every interval"),
                ("test", "Helm tests are not run"),
                (
                    "rollback",
                    "mooring keeps the last good state instead of rolling back",
                ),
                (
                    "upgrade.remediation",
                    "failures are retried with mooring's backoff",
                ),
                (
                    "install.remediation",
                    "failures are retried with mooring's backoff",
                ),
                ("maxHistory", "mooring keeps no Helm release records"),
            ],
        );
    });
    notes
}

/// `valuesFrom` as `values-from` lines: the objects are in the
/// HelmRelease's namespace.
fn values_from(out: &mut Out, o: &Obj, notes: &mut Vec<Note>) {
    for v in get(&o.spec, "valuesFrom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let field = |k: &str| v.get(k).and_then(Value::as_str);
        let name = field("name").unwrap_or_default();
        let kind = match field("kind") {
            Some("ConfigMap") => "configmap",
            Some("Secret") => "secret",
            other => {
                let why = format!(
                    "`valuesFrom` of kind {} not imported: only ConfigMaps and Secrets hold values",
                    other.unwrap_or("(none)")
                );
                out.comment(&format!("Flux {why}"));
                notes.push(o.note(why));
                continue;
            }
        };
        let mut line = format!("values-from {kind}={}", q(&format!("{}/{name}", o.ns)));
        if let Some(key) = field("valuesKey").filter(|k| *k != "values.yaml") {
            line.push_str(&format!(" values-key={}", q(key)));
        }
        if let Some(path) = field("targetPath").filter(|p| !p.is_empty()) {
            line.push_str(&format!(" target-path={}", q(path)));
        }
        if v.get("optional").and_then(Value::as_bool) == Some(true) {
            line.push_str(" optional=#true");
        }
        out.line(&line);
    }
}

/// `postRenderers` as `patch` and `set-image` lines: every renderer's
/// kustomize patches and images, in order, applied as one kustomization.
fn post_renderers(out: &mut Out, o: &Obj, notes: &mut Vec<Note>) {
    let renderers: Vec<&Value> = get(&o.spec, "postRenderers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let with_images = renderers.iter().position(|r| {
        get(r, "kustomize.images").is_some_and(|i| i.as_array().is_some_and(|a| !a.is_empty()))
    });
    let last_patches = renderers.iter().rposition(|r| {
        get(r, "kustomize.patches").is_some_and(|i| i.as_array().is_some_and(|a| !a.is_empty()))
    });
    if let (Some(i), Some(p)) = (with_images, last_patches)
        && i < p
    {
        notes.push(o.note(
            "its post-renderers change images before later patches; mooring applies them as one kustomization (patches, then images): check a patch that sets an image",
        ));
    }
    for (i, r) in renderers.iter().enumerate() {
        let Some(k) = r.get("kustomize") else {
            let why =
                format!("`postRenderers[{i}]` not imported: only kustomize post-renderers exist in mooring");
            out.comment(&format!("Flux {why}"));
            notes.push(o.note(why));
            continue;
        };
        images(out, k.get("images"));
        patches(out, k.get("patches"));
        for old in ["patchesStrategicMerge", "patchesJson6902"] {
            if k.get(old).is_some_and(|v| !v.is_null()) {
                let why =
                    format!("`postRenderers[{i}].kustomize.{old}` not imported: write them as `patches`");
                out.comment(&format!("Flux {why}"));
                notes.push(o.note(why));
            }
        }
    }
}
