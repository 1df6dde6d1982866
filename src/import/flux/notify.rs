//! Flux's notification objects: a `Receiver` becomes a `receiver` (its
//! resources the objects it makes run), an `Alert` with its `Provider` a
//! `notify` node (the provider's type as the format, the alert's severity
//! and event sources as what is posted). Secrets become placeholder files
//! like every other credential; what has no mooring form is noted.

use super::*;

/// Receiver types mooring checks the same way.
const RECEIVER_TYPES: [&str; 6] = ["github", "gitlab", "generic-hmac", "dockerhub", "harbor", "quay"];

/// The mooring objects (`KIND/NAME`) that Flux `kind`/`ns`/`name` stands
/// for among what was written; `name` may be `*`. `Err` says why none.
fn targets(
    out: &Out,
    names: &Names,
    objects: &[Obj],
    by_key: &HashMap<(String, String, String), &Obj>,
    (kind, ns, name): (&str, &str, &str),
) -> Result<Vec<String>, String> {
    let of_kind = |kind: &str| category(kind).ok_or_else(|| format!("{kind} has no mooring form"));
    if kind == "ImageRepository" {
        // mooring's image is a policy and its repository: every policy of that repository.
        let found: Vec<String> = objects
            .iter()
            .filter(|p| {
                p.kind == "ImagePolicy"
                    && (name == "*" || repository_of(p, by_key).is_some_and(|r| r.ns == ns && r.name == name))
            })
            .map(|p| names.get(p))
            .filter(|n| out.declares("image", n))
            .map(|n| format!("image/{n}"))
            .collect();
        return match (name, found.is_empty()) {
            ("*", _) => Ok(vec!["image/*".into()]),
            (_, true) => Err(format!("ImageRepository {ns}/{name} has no imported ImagePolicy")),
            _ => Ok(found),
        };
    }
    let category = of_kind(kind)?;
    if name == "*" {
        return Ok(vec![format!("{category}/*")]);
    }
    match names.of(kind, ns, name) {
        Some(n) if out.declares(category, n) => Ok(vec![format!("{category}/{n}")]),
        _ => Err(format!("{kind} {ns}/{name} is not among the imported objects")),
    }
}

/// The mooring objects of the references in `o`'s list `field` (a
/// Receiver's `resources`, an Alert's `eventSources`), and why any was left out.
fn references(
    out: &Out,
    o: &Obj,
    field: &str,
    names: &Names,
    objects: &[Obj],
    by_key: &HashMap<(String, String, String), &Obj>,
) -> (Vec<String>, Vec<String>) {
    let (mut found, mut skipped) = (Vec::new(), Vec::new());
    for r in get(&o.spec, field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let text = |k: &str| r.get(k).and_then(Value::as_str);
        if r.get("matchLabels").is_some() {
            skipped.push(format!("{field} selected by `matchLabels` (name each object)"));
            continue;
        }
        let key = (
            text("kind").unwrap_or_default(),
            text("namespace").unwrap_or(&o.ns),
            text("name").unwrap_or_default(),
        );
        match targets(out, names, objects, by_key, key) {
            Ok(t) => found.extend(t),
            Err(why) => skipped.push(why),
        }
    }
    found.dedup();
    (found, skipped)
}

/// Unique mooring names for the objects of `kind` in `objects`.
fn own_names(objects: &[Obj], kind: &str) -> HashMap<(String, String, String), String> {
    let of_kind: Vec<&Obj> = objects.iter().filter(|o| o.kind == kind).collect();
    let mut taken = HashSet::new();
    let mut names = HashMap::new();
    for o in &of_kind {
        let plain = sanitize(&o.name);
        let shared = of_kind.iter().filter(|p| sanitize(&p.name) == plain).count() > 1;
        let mut name = if shared {
            sanitize(&format!("{}-{}", o.ns, o.name))
        } else {
            plain
        };
        let base = name.clone();
        let mut n = 2;
        while !taken.insert(name.clone()) {
            name = sanitize(&format!("{base}-{n}"));
            n += 1;
        }
        names.insert(o.key(), name);
    }
    names
}

/// Every `Receiver` as a `receiver` node.
pub(super) fn receivers(
    out: &mut Out,
    objects: &[Obj],
    names: &Names,
    by_key: &HashMap<(String, String, String), &Obj>,
) -> Vec<Note> {
    let mut notes = Vec::new();
    let own = own_names(objects, "Receiver");
    for r in objects.iter().filter(|o| o.kind == "Receiver") {
        header(out, r);
        let kind = r.str("type").unwrap_or_default();
        let (mut reconcile, skipped) = references(out, r, "resources", names, objects, by_key);
        // A receiver names the objects it runs.
        reconcile.retain(|t| !t.ends_with("/*"));
        let why = if !RECEIVER_TYPES.contains(&kind) {
            Some(format!(
                "receiver type `{kind}` is not one mooring checks ({})",
                RECEIVER_TYPES.join(", ")
            ))
        } else if r.str("secretRef.name").is_none() {
            Some("it has no secretRef".to_string())
        } else if reconcile.is_empty() {
            Some("none of its resources is an imported object".to_string())
        } else {
            None
        };
        for s in &skipped {
            out.comment(&format!("resource not imported: {s}"));
            notes.push(r.note(format!("resource not imported: {s}")));
        }
        if let Some(why) = why {
            out.comment(&format!("not imported: {why}"));
            notes.push(r.note(format!("not imported: {why}")));
            continue;
        }
        let name = &own[&r.key()];
        let secret = r.str("secretRef.name").unwrap_or_default();
        out.block(&format!("receiver {}", q(name)), |out| {
            out.line(&format!("type {}", q(kind)));
            out.line(&format!(
                "secret-file {} // placeholder: the key `token` of Secret {}/{secret}",
                q(&placeholder(&r.ns, secret, "token")),
                r.ns
            ));
            let list: Vec<String> = reconcile.iter().map(|t| q(t)).collect();
            out.line(&format!("reconcile {}", list.join(" ")));
            if get(&r.spec, "events").is_some() {
                out.comment("Flux `events` not imported: each type runs on its push events");
            }
        });
        notes.push(r.note(format!(
            "the hook's address is now POST /hooks/{name} on mooring's listener: point the sender's webhook there"
        )));
    }
    notes
}

/// Every `Alert` with its `Provider` as a `notify` node.
pub(super) fn alerts(
    out: &mut Out,
    objects: &[Obj],
    names: &Names,
    by_key: &HashMap<(String, String, String), &Obj>,
) -> Vec<Note> {
    let mut notes = Vec::new();
    let own = own_names(objects, "Alert");
    for a in objects.iter().filter(|o| o.kind == "Alert") {
        header(out, a);
        let provider_name = a.str("providerRef.name").unwrap_or_default();
        let provider = by_key.get(&("Provider".to_string(), a.ns.clone(), provider_name.to_string()));
        let format = provider.and_then(|p| match p.str("type") {
            Some("slack") => Some("slack"),
            Some("generic") => Some("generic"),
            Some("github") => Some("github-status"),
            _ => None,
        });
        let (objects_of, skipped) = references(out, a, "eventSources", names, objects, by_key);
        let why = match (provider, format) {
            _ if a.bool("suspend") => Some("it is suspended".to_string()),
            (None, _) => Some(format!(
                "its Provider {}/{provider_name} is not among the read objects",
                a.ns
            )),
            (Some(p), None) => Some(format!(
                "provider type `{}` has no mooring format (slack, generic, github)",
                p.str("type").unwrap_or_default()
            )),
            _ if objects_of.is_empty() => Some("none of its event sources is an imported object".to_string()),
            _ => None,
        };
        for s in &skipped {
            out.comment(&format!("event source not imported: {s}"));
            notes.push(a.note(format!("event source not imported: {s}")));
        }
        let (Some(p), Some(format), None) = (provider, format, &why) else {
            let why = why.unwrap_or_default();
            out.comment(&format!("not imported: {why}"));
            notes.push(a.note(format!("not imported: {why}")));
            continue;
        };
        let secret = p.str("secretRef.name");
        out.block(&format!("notify {}", q(&own[&a.key()])), |out| {
            match (secret, p.str("address")) {
                // A GitHub provider's address is the repository: no secret.
                (_, Some(address)) if format == "github-status" => out.line(&format!(
                    "url-file {} // placeholder: write {address} to it",
                    q(&placeholder(&p.ns, &format!("provider-{}", p.name), "address"))
                )),
                (Some(secret), _) => out.line(&format!(
                    "url-file {} // placeholder: the key `address` of Secret {}/{secret}",
                    q(&placeholder(&p.ns, secret, "address")),
                    p.ns
                )),
                (None, _) => out.line(&format!(
                    "url-file {} // placeholder: the address of Provider {}/{}",
                    q(&placeholder(&p.ns, &format!("provider-{}", p.name), "address")),
                    p.ns,
                    p.name
                )),
            }
            if format != "generic" {
                out.line(&format!("format {}", q(format)));
            }
            if format == "github-status" {
                let secret = secret.unwrap_or("github-token");
                out.line(&format!(
                    "token-file {} // placeholder: the key `token` of Secret {}/{secret}",
                    q(&placeholder(&p.ns, secret, "token")),
                    p.ns
                ));
            }
            if a.str("eventSeverity") == Some("error") {
                out.line("on \"failure\"");
            }
            if !objects_of.iter().any(|o| o == "*") {
                let list: Vec<String> = objects_of.iter().map(|o| q(o)).collect();
                out.line(&format!("objects {}", list.join(" ")));
            }
            let mut fields_notes = Vec::new();
            unsupported(
                a,
                &mut fields_notes,
                out,
                &[
                    ("inclusionList", "mooring posts every event of the objects"),
                    ("exclusionList", "mooring posts every event of the objects"),
                    ("summary", "messages have no summary line"),
                    ("eventMetadata", "messages carry no extra metadata"),
                ],
            );
            unsupported(
                p,
                &mut fields_notes,
                out,
                &[
                    ("channel", "the webhook address decides the channel"),
                    ("username", "the webhook decides the sender"),
                    ("proxy", "proxies are not supported"),
                    ("certSecretRef", "give the CA with ca-file"),
                ],
            );
            notes.extend(fields_notes);
        });
        notes.push(a.note("the notification's files are placeholders: write the address (and token) there"));
    }
    for p in objects.iter().filter(|o| o.kind == "Provider") {
        let used = objects
            .iter()
            .any(|a| a.kind == "Alert" && a.ns == p.ns && a.str("providerRef.name") == Some(p.name.as_str()));
        if !used {
            out.blank();
            out.comment(&format!(
                "from {}: {} not imported: no Alert uses it",
                p.at,
                p.id()
            ));
            notes.push(p.note("not imported: no Alert uses it"));
        }
    }
    notes
}
