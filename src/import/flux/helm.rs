//! Flux's Helm objects: a `HelmRepository` becomes a `helm` source, a
//! `HelmRelease` an app of its chart, with its values, release name and
//! namespace as Flux installs them.

use super::*;

pub(super) fn helm_source(out: &mut Out, o: &Obj, names: &Names) -> Vec<Note> {
    let mut notes = Vec::new();
    let url = o.str("url").unwrap_or_default().to_string();
    let oci = o.str("type") == Some("oci") || url.starts_with("oci://");
    header(out, o);
    out.block(&format!("source {}", q(&names.get(o))), |out| {
        out.line(&format!("helm {}", q(&url)));
        durations(
            out,
            o,
            &mut notes,
            &[("interval", "interval"), ("timeout", "timeout")],
        );
        if let Some(secret) = o.str("secretRef.name") {
            notes.push(auth(
                out,
                o,
                secret,
                if oci {
                    Creds::DockerConfig
                } else {
                    Creds::Basic("user")
                },
            ));
        }
        if o.bool("insecure") {
            out.line("insecure #true");
        }
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

pub(super) fn helm_app(
    out: &mut Out,
    o: &Obj,
    names: &Names,
    by_key: &HashMap<(String, String, String), &Obj>,
) -> Vec<Note> {
    let mut notes = Vec::new();
    header(out, o);
    let spec = |k: &str| o.str(&format!("chart.spec.{k}"));
    let kind = spec("sourceRef.kind").unwrap_or("HelmRepository");
    let ns = spec("sourceRef.namespace").unwrap_or(&o.ns);
    let name = spec("sourceRef.name").unwrap_or_default();
    let source = names
        .of(kind, ns, name)
        .filter(|_| by_key.contains_key(&(kind.to_string(), ns.to_string(), name.to_string())));
    let why = if get(&o.spec, "chartRef").is_some() {
        Some("its chart comes from a chartRef (an OCIRepository or HelmChart); write it as a `helm \"oci://…\"` source and `chart` by hand".to_string())
    } else if source.is_none() {
        Some(format!(
            "its source {kind} {ns}/{name} is not among the imported objects; import the files that define it too"
        ))
    } else {
        None
    };
    let (Some(source), None) = (source, why.as_ref()) else {
        let why = why.unwrap_or_default();
        out.comment(&format!("not imported: {why}"));
        notes.push(o.note(format!("not imported: {why}")));
        return notes;
    };
    let app = names.get(o);
    out.block(&format!("app {}", q(&app)), |out| {
        out.line(&format!("source {}", q(source)));
        let chart = spec("chart").unwrap_or_default();
        if kind == "HelmRepository" {
            match spec("version").filter(|v| *v != "*") {
                Some(v) => out.line(&format!("chart {} version={}", q(chart), q(v))),
                None => out.line(&format!("chart {}", q(chart))),
            }
        } else {
            let path = normal(chart);
            if path != "." {
                out.line(&format!("path {}", q(&path)));
            }
        }
        let release = release_name(o);
        if release != app {
            out.line(&format!("release {}", q(&release)));
        }
        out.line(&format!("namespace {}", q(o.str("targetNamespace").unwrap_or(&o.ns))));
        if let Some(secret) = o.str("kubeConfig.secretRef.name") {
            out.line(&format!("cluster {}", q(&sanitize(&format!("{}-{}", o.ns, secret)))));
        }
        durations(out, o, &mut notes, &[("interval", "interval"), ("timeout", "timeout")]);
        if o.str("install.crds") == Some("Skip") {
            out.line("crds \"skip\"");
        }
        let mut deps = Vec::new();
        for d in get(&o.spec, "dependsOn").and_then(Value::as_array).into_iter().flatten() {
            let dname = d.get("name").and_then(Value::as_str).unwrap_or_default();
            let dns = d.get("namespace").and_then(Value::as_str).unwrap_or(&o.ns);
            match names.of("HelmRelease", dns, dname) {
                Some(n) => deps.push(q(n)),
                None => notes.push(o.note(format!("dependsOn {dns}/{dname} dropped: no such HelmRelease was imported"))),
            }
        }
        if !deps.is_empty() {
            out.line(&format!("depends-on {}", deps.join(" ")));
        }
        for f in get(&o.spec, "chart.spec.valuesFiles").and_then(Value::as_array).into_iter().flatten() {
            if let Some(f) = f.as_str().filter(|_| kind != "HelmRepository") {
                out.line(&format!("values-file {}", q(&normal(&format!("{chart}/{f}")))));
            } else if let Some(f) = f.as_str() {
                out.comment(&format!("Flux valuesFiles `{f}` (a file inside the chart) not imported"));
                notes.push(o.note(format!("`valuesFiles: {f}` (inside a repository's chart) not imported: copy its values into `values`")));
            }
        }
        if let Some(values) = get(&o.spec, "values").filter(|v| v.as_object().is_some_and(|m| !m.is_empty())) {
            match serde_saphyr::to_string(values) {
                Ok(text) => out.multiline("values", &text),
                Err(e) => notes.push(o.note(format!("`values` not imported: {e}"))),
            }
        }
        if o.bool("install.createNamespace") {
            out.comment("Flux `install.createNamespace` not imported: create the namespace in another app");
            notes.push(o.note("`install.createNamespace` not imported: create the namespace in an app this one depends on"));
        }
        unsupported(
            o,
            &mut notes,
            out,
            &[
                ("valuesFrom", "values come from the config (`values`, `values-file`), not from ConfigMaps or Secrets"),
                ("postRenderers", "post-renderers are not supported"),
                ("serviceAccountName", "mooring applies with its cluster's credentials"),
                ("storageNamespace", "mooring keeps no Helm release records"),
                ("driftDetection", "mooring corrects drift on every interval"),
                ("test", "Helm tests are not run"),
                ("rollback", "mooring keeps the last good state instead of rolling back"),
                ("upgrade.remediation", "failures are retried with mooring's backoff"),
                ("install.remediation", "failures are retried with mooring's backoff"),
                ("maxHistory", "mooring keeps no Helm release records"),
            ],
        );
    });
    notes
}
