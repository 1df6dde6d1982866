//! The server through its direct entry point (no kubectl): the rules a
//! real API server keeps that kubectl does not show.

use std::io::BufRead as _;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{ApiServer, Identity, Options};
use crate::support::wait_until;

fn cm(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": data})
}

fn rv(obj: &Value) -> String {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .expect("resourceVersion")
        .to_string()
}

fn apply_body(s: &ApiServer, path: &str, body: &str) -> Result<Value, Value> {
    s.call("PATCH", path, "application/apply-patch+yaml", body.as_bytes())
}

#[test]
fn apply_checks_the_manager_and_the_identity() {
    let s = ApiServer::start();
    let path = "/api/v1/namespaces/default/configmaps/a";
    let body = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}"#;
    let e = apply_body(&s, path, body).expect_err("no manager");
    assert_eq!(e["code"], 400);
    assert!(
        e["message"].as_str().expect("message").contains("fieldManager"),
        "{e}"
    );
    let e = apply_body(
        &s,
        &format!("{path}?fieldManager=m"),
        &body.replace("\"a\"", "\"b\""),
    )
    .expect_err("name");
    assert_eq!(e["reason"], "BadRequest");
    let e = apply_body(
        &s,
        &format!("{path}?fieldManager=m"),
        &body.replace("ConfigMap", "Secret"),
    )
    .expect_err("kind");
    assert_eq!(e["reason"], "BadRequest");
    let wrong_ns = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"x"}}"#;
    let e = apply_body(&s, &format!("{path}?fieldManager=m"), wrong_ns).expect_err("namespace");
    assert_eq!(e["reason"], "BadRequest");
    // YAML bodies too.
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n";
    let created = apply_body(&s, &format!("{path}?fieldManager=m"), yaml).expect("yaml apply");
    assert_eq!(created["data"]["k"], "v");
    let e = apply_body(&s, &format!("{path}?fieldManager=m"), "a: [b").expect_err("bad yaml");
    assert_eq!(e["code"], 400);
}

#[test]
fn namespaced_objects_need_their_namespace() {
    let s = ApiServer::start();
    let mut obj = cm("a", json!({}));
    obj["metadata"]["namespace"] = "nowhere".into();
    let e = s.apply("m", false, &obj).expect_err("no namespace");
    assert_eq!(
        e,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "namespaces \"nowhere\" not found", "reason": "NotFound",
               "details": {"name": "nowhere", "kind": "namespaces"}, "code": 404})
    );
    let e = s
        .call("GET", "/api/v1/namespaces/default/configmaps/zz", "", b"")
        .expect_err("absent");
    assert_eq!(e["message"], "configmaps \"zz\" not found");
    assert_eq!(
        e["details"],
        json!({"name": "zz", "group": "", "kind": "configmaps"})
    );
}

#[test]
fn no_op_and_dry_run_writes_keep_the_resource_version() {
    let s = ApiServer::start();
    let first = s.apply("m", false, &cm("a", json!({"k": "1"}))).expect("apply");
    let again = s
        .apply("m", false, &cm("a", json!({"k": "1"})))
        .expect("re-apply");
    assert_eq!(again, first);

    let path = "/api/v1/namespaces/default/configmaps/a?fieldManager=m&dryRun=All";
    let body = serde_json::to_vec(&cm("a", json!({"k": "2"}))).expect("json");
    let dry = s
        .call("PATCH", path, "application/apply-patch+yaml", &body)
        .expect("dry run");
    assert_eq!(dry["data"]["k"], "2");
    assert_eq!(
        rv(&dry),
        rv(&first),
        "a dry run answers with the live resourceVersion"
    );
    assert_eq!(
        s.object("v1", "ConfigMap", Some("default"), "a").expect("a"),
        first
    );

    let body = serde_json::to_vec(&cm("new", json!({}))).expect("json");
    let created = s
        .call(
            "POST",
            "/api/v1/namespaces/default/configmaps?dryRun=All",
            "application/json",
            &body,
        )
        .expect("dry create");
    assert!(created["metadata"].get("resourceVersion").is_none(), "{created}");
    assert!(s.object("v1", "ConfigMap", Some("default"), "new").is_none());
    let e = s
        .call(
            "DELETE",
            "/api/v1/namespaces/default/configmaps/a?dryRun=All",
            "",
            b"",
        )
        .map(|_| ())
        .err();
    assert!(e.is_none());
    assert_eq!(
        s.object("v1", "ConfigMap", Some("default"), "a").expect("kept"),
        first
    );
}

#[test]
fn updates_take_ownership_and_check_the_resource_version() {
    let s = ApiServer::start();
    let first = s
        .apply("mooring", false, &cm("a", json!({"k": "1", "j": "1"})))
        .expect("apply");

    // kubectl edit: a PUT of the whole object by kubectl-edit.
    let mut edited = first.clone();
    edited["data"]["k"] = "2".into();
    let put = s
        .call(
            "PUT",
            "/api/v1/namespaces/default/configmaps/a?fieldManager=kubectl-edit",
            "application/json",
            &serde_json::to_vec(&edited).expect("json"),
        )
        .expect("put");
    let managers: Vec<&str> = put["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .map(|e| e["manager"].as_str().expect("manager"))
        .collect();
    assert_eq!(managers, ["mooring", "kubectl-edit"]);
    assert_eq!(
        put["metadata"]["managedFields"][1]["fieldsV1"],
        json!({"f:data": {"f:k": {}}})
    );

    // The same PUT again names a stale resourceVersion.
    let e = s
        .call(
            "PUT",
            "/api/v1/namespaces/default/configmaps/a",
            "application/json",
            &serde_json::to_vec(&edited).expect("json"),
        )
        .expect_err("stale");
    assert_eq!(e["reason"], "Conflict");
    assert_eq!(e["code"], 409);

    let e = s
        .apply("mooring", false, &cm("a", json!({"k": "1", "j": "1"})))
        .expect_err("conflict");
    assert_eq!(
        e["message"],
        "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.k"
    );
    assert_eq!(e["details"]["causes"][0]["field"], ".data.k");

    // The manager stops applying j: it goes.
    let applied = s
        .apply("mooring", true, &cm("a", json!({"k": "1"})))
        .expect("forced");
    assert_eq!(applied["data"], json!({"k": "1"}));

    // A merge patch without fieldManager is filed under the user agent.
    let patched = s
        .call(
            "PATCH",
            "/api/v1/namespaces/default/configmaps/a",
            "application/merge-patch+json",
            br#"{"data":{"x":"y"}}"#,
        )
        .expect("patch");
    let last = patched["metadata"]["managedFields"]
        .as_array()
        .and_then(|a| a.last())
        .cloned();
    assert_eq!(last.expect("entry")["manager"], "apiserver-test");

    let e = s
        .call(
            "PATCH",
            "/api/v1/namespaces/default/configmaps/a",
            "text/plain",
            b"x",
        )
        .expect_err("media type");
    assert_eq!(e["code"], 415);
    assert_eq!(e["reason"], "UnsupportedMediaType");
}

#[test]
fn generation_counts_spec_changes_of_the_kinds_that_have_one() {
    let s = ApiServer::start();
    let cm1 = s.apply("m", false, &cm("a", json!({"k": "1"}))).expect("cm");
    assert!(cm1["metadata"].get("generation").is_none());
    let d = |labels: Value, replicas: u64| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "default", "labels": labels},
               "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    };
    let one = s.apply("m", false, &d(json!({"a": "1"}), 1)).expect("apply");
    assert_eq!(one["metadata"]["generation"], 1);
    let relabelled = s.apply("m", false, &d(json!({"a": "2"}), 1)).expect("apply");
    assert_eq!(relabelled["metadata"]["generation"], 1);
    assert_ne!(rv(&relabelled), rv(&one));
    let scaled = s.apply("m", false, &d(json!({"a": "2"}), 2)).expect("apply");
    assert_eq!(scaled["metadata"]["generation"], 2);
    // status in a body is ignored.
    let mut with_status = d(json!({"a": "2"}), 2);
    with_status["status"] = json!({"readyReplicas": 99});
    let same = s.apply("m", false, &with_status).expect("apply");
    assert_eq!(same, scaled);
}

#[test]
fn workload_kinds_report_readiness() {
    let s = ApiServer::start();
    let pod = json!({"spec": {"containers": [{"name": "c", "image": "i"}]}});
    let obj = |kind: &str| {
        let (api_version, spec) = match kind {
            "Job" => ("batch/v1", json!({"template": pod})),
            _ => ("apps/v1", json!({"replicas": 2, "template": pod})),
        };
        json!({"apiVersion": api_version, "kind": kind,
               "metadata": {"name": "w", "namespace": "default"}, "spec": spec})
    };
    let sts = s.apply("m", false, &obj("StatefulSet")).expect("sts");
    assert_eq!(sts["status"]["readyReplicas"], 2);
    assert_eq!(sts["status"]["observedGeneration"], 1);
    assert_eq!(sts["status"]["currentRevision"], sts["status"]["updateRevision"]);
    let ds = s.apply("m", false, &obj("DaemonSet")).expect("ds");
    assert_eq!(ds["status"]["numberReady"], 1);
    assert_eq!(ds["status"]["desiredNumberScheduled"], 1);
    let job = s.apply("m", false, &obj("Job")).expect("job");
    assert_eq!(job["status"]["succeeded"], 1);
    let complete = job["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .any(|c| c["type"] == "Complete" && c["status"] == "True");
    assert!(complete, "{job}");

    let held = ApiServer::start_with(Options {
        rollout_delay: None,
        ..Options::default()
    });
    let job = held.apply("m", false, &obj("Job")).expect("job");
    assert_eq!(job["status"]["active"], 1);
    assert!(job["status"].get("succeeded").is_none());
    held.set_ready("batch/v1", "Job", Some("default"), "w");
    let job = held.object("batch/v1", "Job", Some("default"), "w").expect("job");
    assert_eq!(job["status"]["succeeded"], 1);
    assert_ne!(rv(&job), "");
}

#[test]
fn secrets_fold_string_data() {
    let s = ApiServer::start();
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
                        "stringData": {"password": "hunter2", "a": "ab"}});
    let stored = s.apply("m", false, &secret).expect("secret");
    assert_eq!(stored["data"], json!({"password": "aHVudGVyMg==", "a": "YWI="}));
    assert!(stored.get("stringData").is_none());
    let again = s.apply("m", false, &secret).expect("again");
    assert_eq!(again, stored);
}

#[test]
fn crds_add_types_to_discovery_and_take_them_away() {
    let s = ApiServer::start();
    let crd = |scope: &str| {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": "gadgets.example.com"},
               "spec": {"group": "example.com", "scope": scope,
                        "names": {"plural": "gadgets", "kind": "Gadget"},
                        "versions": [{"name": "v1beta1", "served": true, "storage": false},
                                     {"name": "v1", "served": true, "storage": true}]}})
    };
    let get = |path: &str| s.call("GET", path, "", b"");
    assert!(get("/apis/example.com/v1").is_err());
    s.apply("m", false, &crd("Cluster")).expect("crd");

    let groups = get("/apis").expect("groups");
    let group = groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["name"] == "example.com")
        .cloned()
        .expect("example.com listed");
    assert_eq!(group["preferredVersion"]["version"], "v1");
    let resources = get("/apis/example.com/v1").expect("resources");
    assert_eq!(resources["resources"][0]["name"], "gadgets");
    assert_eq!(resources["resources"][0]["namespaced"], false);
    let root = get("/openapi/v3").expect("openapi");
    assert!(
        root["paths"]["apis/example.com/v1"]["serverRelativeURL"].is_string(),
        "{root}"
    );
    let doc = get("/openapi/v3/apis/example.com/v1").expect("doc");
    let patch = &doc["paths"]["/apis/example.com/v1/gadgets/{name}"]["patch"];
    assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Gadget");

    let gadget = json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"x": 1}});
    s.apply("m", false, &gadget).expect("cluster-scoped gadget");
    let old_version = s
        .object("example.com/v1beta1", "Gadget", None, "g")
        .expect("as v1beta1");
    assert_eq!(old_version["apiVersion"], "example.com/v1beta1");

    let bad = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                     "metadata": {"name": "wrong"}, "spec": {"group": "example.com", "scope": "Cluster",
                     "names": {"plural": "things", "kind": "Thing"}, "versions": [{"name": "v1", "served": true, "storage": true}]}});
    let e = s.apply("m", false, &bad).expect_err("invalid");
    assert_eq!(e["reason"], "Invalid");
    assert_eq!(e["code"], 422);

    s.delete(&crd("Cluster")).expect("delete crd");
    assert!(s.object("example.com/v1", "Gadget", None, "g").is_none());
    assert!(get("/apis/example.com/v1").is_err());
    assert!(
        get("/openapi/v3").expect("openapi")["paths"]
            .get("apis/example.com/v1")
            .is_none()
    );
}

#[test]
fn discovery_and_odd_requests() {
    let s = ApiServer::start();
    let get = |path: &str| s.call("GET", path, "", b"");
    assert_eq!(get("/version").expect("version")["gitVersion"], "v1.32.0");
    assert_eq!(get("/api").expect("api")["versions"], json!(["v1"]));
    let core = get("/api/v1").expect("core");
    let cm = core["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["name"] == "configmaps")
        .cloned()
        .expect("configmaps");
    assert_eq!(cm["shortNames"], json!(["cm"]));
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(get("/apis/apps").expect("apps")["kind"], "APIGroup");
    assert_eq!(get("/apis/nope/v1").expect_err("unknown")["code"], 404);
    assert_eq!(get("/openapi/v2").expect_err("v2")["code"], 404);
    assert_eq!(
        s.call("POST", "/api/v1/configmaps?watch=true", "", b"")
            .expect_err("watch")["code"],
        405
    );
    let namespaces = get("/api/v1/namespaces").expect("list");
    assert_eq!(namespaces["kind"], "NamespaceList");
    let names: Vec<&str> = namespaces["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|n| n["metadata"]["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["default", "kube-system"]);
    assert!(namespaces["metadata"]["resourceVersion"].is_string());
    let e = s
        .call("DELETE", "/api/v1/namespaces/default", "", b"")
        .expect_err("forbidden");
    assert_eq!(e["code"], 403);
    let e = get("/api/v1/configmaps?labelSelector=a+in+x").expect_err("bad selector");
    assert_eq!(e["code"], 400);
}

#[test]
fn the_server_stops_on_drop() {
    let s = ApiServer::start();
    let port = s.port();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    drop(s);
    wait_until(Duration::from_secs(5), "the port closed", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    });
}

#[test]
fn merge_patch_helper_makes_drift() {
    let s = ApiServer::start();
    let obj = cm("a", json!({"k": "1"}));
    s.apply("mooring", false, &obj).expect("apply");
    let patched = s
        .merge_patch("kubectl-edit", &obj, &json!({"data": {"k": "2"}}))
        .expect("patch");
    assert_eq!(patched["data"]["k"], "2");
    let e = s.apply("mooring", false, &obj).expect_err("drift conflicts");
    assert_eq!(e["reason"], "Conflict");
}

/// A watch over HTTP: its events as they come.
struct Events(mpsc::Receiver<Value>);

impl Events {
    fn open(s: &ApiServer, path_and_query: &str) -> Events {
        let url = format!("{}{path_and_query}", s.url());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("http client");
            let Ok(resp) = client.get(url).send() else { return };
            for line in std::io::BufReader::new(resp).lines() {
                let Ok(line) = line else { return };
                let Ok(event) = serde_json::from_str(&line) else {
                    return;
                };
                if tx.send(event).is_err() {
                    return;
                }
            }
        });
        Events(rx)
    }

    /// The next event (5 s at most).
    #[track_caller]
    fn next(&self) -> Value {
        self.0
            .recv_timeout(Duration::from_secs(5))
            .expect("a watch event within 5 s")
    }

    /// `TYPE name` of the next event.
    #[track_caller]
    fn next_short(&self) -> String {
        let e = self.next();
        format!(
            "{} {}",
            e["type"].as_str().unwrap_or_default(),
            e["object"]["metadata"]["name"].as_str().unwrap_or_default()
        )
    }
}

#[test]
fn watches_start_from_a_resource_version_send_bookmarks_and_expire() {
    let s = ApiServer::start_with(Options {
        bookmark_interval: Duration::from_millis(50),
        ..Options::default()
    });
    s.apply("m", false, &cm("a", json!({"k": "1"}))).expect("a");
    let list = s
        .call("GET", "/api/v1/namespaces/default/configmaps", "", b"")
        .expect("list");
    let listed = list["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();

    // From the list's resourceVersion: only what happens after it.
    let w = Events::open(
        &s,
        &format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={listed}"),
    );
    s.apply("m", false, &cm("b", json!({}))).expect("b");
    s.apply("m", false, &cm("a", json!({"k": "2"}))).expect("a again");
    s.delete(&cm("b", json!({}))).expect("delete b");
    assert_eq!(w.next_short(), "ADDED b");
    let modified = w.next();
    assert_eq!(modified["type"], "MODIFIED");
    assert_eq!(modified["object"]["data"]["k"], "2");
    let deleted = w.next();
    assert_eq!(deleted["type"], "DELETED");
    assert!(
        rv(&deleted["object"]).parse::<u64>().expect("rv")
            > rv(&modified["object"]).parse::<u64>().expect("rv")
    );

    // Without one: the objects there now as ADDED, then changes; selectors filter.
    let w = Events::open(&s, "/api/v1/configmaps?watch=true&labelSelector=team%3Dx");
    let mut labelled = cm("c", json!({}));
    labelled["metadata"]["labels"] = json!({"team": "x"});
    s.apply("m", false, &cm("d", json!({}))).expect("d");
    s.apply("m", false, &labelled).expect("c");
    assert_eq!(w.next_short(), "ADDED c");

    // Bookmarks carry the current resourceVersion and nothing else.
    let w = Events::open(
        &s,
        &format!(
            "/api/v1/namespaces/default/configmaps?watch=1&allowWatchBookmarks=true&resourceVersion={listed}"
        ),
    );
    let bookmark = loop {
        let e = w.next();
        if e["type"] == "BOOKMARK" {
            break e;
        }
    };
    assert_eq!(bookmark["object"]["kind"], "ConfigMap");
    assert!(
        bookmark["object"]["metadata"]["resourceVersion"].is_string(),
        "{bookmark}"
    );
    assert!(bookmark["object"].get("data").is_none(), "{bookmark}");

    // After a compaction an old resourceVersion is too old: an ERROR event with 410.
    s.compact();
    let w = Events::open(
        &s,
        &format!("/api/v1/configmaps?watch=1&resourceVersion={listed}"),
    );
    let error = w.next();
    assert_eq!(error["type"], "ERROR", "{error}");
    assert_eq!(error["object"]["code"], 410);
    assert_eq!(error["object"]["reason"], "Expired");
    assert!(
        error["object"]["message"]
            .as_str()
            .expect("message")
            .starts_with(&format!("too old resource version: {listed} (")),
        "{error}"
    );
}

#[test]
fn immutable_fields_are_refused_with_field_causes() {
    let s = ApiServer::start_with(Options {
        immutable_fields: true,
        ..Options::default()
    });
    let deploy = |app: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
               "spec": {"selector": {"matchLabels": {"app": app}},
                        "template": {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    };
    s.apply("m", false, &deploy("web")).expect("create");
    let e = s.apply("m", false, &deploy("web2")).expect_err("selector");
    assert_eq!(e["code"], 422);
    assert_eq!(e["reason"], "Invalid");
    assert_eq!(
        e["message"],
        r#"Deployment.apps "web" is invalid: spec.selector: Invalid value: {"matchLabels":{"app":"web2"}}: field is immutable"#
    );
    assert_eq!(
        e["details"],
        json!({"name": "web", "group": "apps", "kind": "Deployment", "causes": [{
            "reason": "FieldValueInvalid",
            "message": r#"Invalid value: {"matchLabels":{"app":"web2"}}: field is immutable"#,
            "field": "spec.selector"}]})
    );

    // A Job's template.
    let job = |image: &str| {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "default"},
               "spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}], "restartPolicy": "Never"}}}})
    };
    s.apply("m", false, &job("i:1")).expect("job");
    let e = s.apply("m", false, &job("i:2")).expect_err("template");
    assert_eq!(e["details"]["causes"][0]["field"], "spec.template");

    // A Service gets a cluster IP that no apply can change; leaving it out keeps it.
    let svc = |extra: Value| {
        let mut spec = json!({"ports": [{"port": 80}]});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
    };
    let created = s.apply("m", false, &svc(json!({}))).expect("service");
    let ip = created["spec"]["clusterIP"]
        .as_str()
        .expect("a cluster IP")
        .to_string();
    assert_eq!(created["spec"]["clusterIPs"], json!([ip]));
    let again = s
        .apply("m", false, &svc(json!({"type": "ClusterIP"})))
        .expect("same IP kept");
    assert_eq!(again["spec"]["clusterIP"], ip.as_str());
    let e = s
        .apply("m", false, &svc(json!({"clusterIP": "None"})))
        .expect_err("headless now");
    assert_eq!(e["details"]["causes"][0]["field"], "spec.clusterIPs[0]");
    assert_eq!(
        e["details"]["causes"][0]["message"],
        r#"Invalid value: ["None"]: may not change once set"#
    );

    // An immutable ConfigMap.
    let mut frozen = cm("frozen", json!({"k": "1"}));
    frozen["immutable"] = true.into();
    s.apply("m", false, &frozen).expect("frozen");
    frozen["data"]["k"] = "2".into();
    let e = s.apply("m", false, &frozen).expect_err("frozen data");
    assert_eq!(e["details"]["causes"][0]["reason"], "FieldValueForbidden");
    assert_eq!(e["details"]["causes"][0]["field"], "data");

    // Without the option, anything goes (the friendly default).
    let friendly = ApiServer::start();
    friendly.apply("m", false, &deploy("web")).expect("create");
    friendly
        .apply("m", false, &deploy("web2"))
        .expect("selector changed");
}

#[test]
fn names_are_checked_by_kind_as_the_real_server_does() {
    let s = ApiServer::start();
    let e = s
        .apply("m", false, &cm("web..v2", json!({})))
        .expect_err("subdomain");
    assert_eq!(e["code"], 422);
    assert_eq!(
        e["details"]["causes"][0],
        json!({"reason": "FieldValueInvalid", "field": "metadata.name",
               "message": "Invalid value: \"web..v2\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"})
    );
    assert!(
        e["message"].as_str().expect("message").starts_with(r#"ConfigMap "web..v2" is invalid: metadata.name: Invalid value: "web..v2": a lowercase RFC 1123 subdomain"#),
        "{e}"
    );
    let ns = |name: &str| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    let e = s.apply("m", false, &ns("a.b")).expect_err("label");
    assert!(
        e["details"]["causes"][0]["message"]
            .as_str()
            .expect("message")
            .contains("RFC 1123 label"),
        "{e}"
    );
    let svc =
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "1web", "namespace": "default"}});
    let e = s.apply("m", false, &svc).expect_err("dns-1035");
    assert!(
        e["details"]["causes"][0]["message"]
            .as_str()
            .expect("message")
            .contains("DNS-1035 label"),
        "{e}"
    );
    // RBAC names are path segments: anything but `.`, `..`, `/` and `%`.
    let role = |name: &str| json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}});
    let odd = "system:x?dryRun=All&fieldManager=evil";
    s.call(
        "PATCH",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:x%3FdryRun=All%26fieldManager=evil?fieldManager=m",
        "application/apply-patch+yaml",
        &serde_json::to_vec(&role(odd)).expect("json"),
    )
    .expect("an odd but valid role name");
    assert!(
        s.object("rbac.authorization.k8s.io/v1", "ClusterRole", None, odd)
            .is_some()
    );
    let e = s
        .call(
            "PATCH",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/..?fieldManager=m",
            "application/apply-patch+yaml",
            &serde_json::to_vec(&role("..")).expect("json"),
        )
        .expect_err("dot-dot");
    assert_eq!(
        e["details"]["causes"][0]["message"],
        r#"Invalid value: "..": may not be '..'"#
    );
}

#[test]
fn conflicts_carry_the_real_servers_causes() {
    let s = ApiServer::start();
    s.apply("a", false, &cm("x", json!({"k": "1", "j": "1"})))
        .expect("a");
    s.merge_patch("kubectl-edit", &cm("x", json!({})), &json!({"data": {"k": "2"}}))
        .expect("edit");
    s.apply("b", true, &cm("x", json!({"j": "2"})))
        .expect("b takes j");
    let e = s
        .apply("a", false, &cm("x", json!({"k": "1", "j": "1"})))
        .expect_err("conflict");
    assert_eq!(e["code"], 409);
    assert_eq!(e["reason"], "Conflict");
    // As apierrors.NewApplyConflict: causes only, no name or kind.
    assert_eq!(
        e["details"],
        json!({"causes": [
            {"reason": "FieldManagerConflict", "message": "conflict with \"b\"", "field": ".data.j"},
            {"reason": "FieldManagerConflict", "message": "conflict with \"kubectl-edit\" using v1", "field": ".data.k"},
        ]})
    );
}

#[test]
fn crds_are_established_after_the_delay() {
    let s = ApiServer::start_with(Options {
        crd_delay: Duration::from_millis(300),
        ..Options::default()
    });
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                     "metadata": {"name": "gadgets.example.com"},
                     "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "gadgets", "kind": "Gadget"},
                              "versions": [{"name": "v1", "served": true, "storage": true}]}});
    let created = s.apply("m", false, &crd).expect("crd");
    let established = |c: &Value| {
        c["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Established")
            .map(|c| c["status"].clone())
    };
    assert_eq!(established(&created), Some(json!("False")));
    let gadget = json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g", "namespace": "default"}});
    let path = "/apis/example.com/v1/namespaces/default/gadgets/g?fieldManager=m";
    let body = serde_json::to_vec(&gadget).expect("json");
    let e = s
        .call("PATCH", path, "application/apply-patch+yaml", &body)
        .expect_err("not served yet");
    assert_eq!(e["code"], 404);
    assert!(
        s.call("GET", "/apis/example.com/v1", "", b"").is_err(),
        "in discovery too soon"
    );
    wait_until(Duration::from_secs(10), "the CRD established", || {
        let crd = s.object(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "gadgets.example.com",
        );
        established(&crd.expect("crd")) == Some(json!("True"))
    });
    s.call("PATCH", path, "application/apply-patch+yaml", &body)
        .expect("served now");
}

#[test]
fn deletes_wait_for_finalizers_and_namespaces_terminate() {
    let s = ApiServer::start_with(Options {
        delete_delay: Some(Duration::from_millis(100)),
        ..Options::default()
    });
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}});
    let created = s.apply("m", false, &ns).expect("namespace");
    assert_eq!(created["spec"]["finalizers"], json!(["kubernetes"]));
    let mut held = cm("held", json!({}));
    held["metadata"]["namespace"] = "demo".into();
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    s.apply("m", false, &held).expect("held");

    let deleting = s.delete(&ns).expect("delete namespace");
    assert_eq!(deleting["status"]["phase"], "Terminating", "{deleting}");
    assert!(deleting["metadata"]["deletionTimestamp"].is_string());
    // Nothing new in a terminating namespace, as the real admission says.
    let mut other = cm("other", json!({}));
    other["metadata"]["namespace"] = "demo".into();
    let e = s.apply("m", false, &other).expect_err("terminating");
    assert_eq!(e["code"], 403);
    assert_eq!(
        e["message"],
        r#"configmaps "other" is forbidden: unable to create new content in namespace demo because it is being terminated"#
    );
    assert_eq!(e["details"]["causes"][0]["reason"], "NamespaceTerminating");

    // The content goes after the delay, but the finalizer holds `held` (and so the namespace).
    let live = |name: &str| s.object("v1", "ConfigMap", Some("demo"), name);
    wait_until(Duration::from_secs(10), "the content deleted", || {
        live("held").is_none_or(|h| h["metadata"].get("deletionTimestamp").is_some())
    });
    std::thread::sleep(Duration::from_millis(150));
    assert!(
        s.object("v1", "Namespace", None, "demo").is_some(),
        "the finalizer did not hold"
    );
    // Removing the finalizer lets both go.
    s.merge_patch("controller", &held, &json!({"metadata": {"finalizers": null}}))
        .expect("release");
    assert!(live("held").is_none());
    wait_until(Duration::from_secs(10), "the namespace gone", || {
        s.object("v1", "Namespace", None, "demo").is_none()
    });

    // Foreground deletes wait too; background ones of unheld objects do not.
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
                   "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    s.apply("m", false, &d).expect("deployment");
    let pending = s
        .call(
            "DELETE",
            "/apis/apps/v1/namespaces/default/deployments/web",
            "application/json",
            br#"{"propagationPolicy":"Foreground"}"#,
        )
        .expect("foreground");
    assert_eq!(pending["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    assert!(
        s.object("apps/v1", "Deployment", Some("default"), "web")
            .is_some()
    );
    let gone = s.delete(&cm("held", json!({}))).map(|_| ());
    assert!(gone.is_err(), "default/held does not exist");
    s.apply("m", false, &cm("plain", json!({}))).expect("plain");
    let answer = s.delete(&cm("plain", json!({}))).expect("background");
    assert_eq!(answer["status"], "Success");
}

#[test]
fn a_namespace_scoped_identity_cannot_reach_outside_its_namespaces() {
    let s = ApiServer::start_with(Options {
        identity: Some(Identity {
            user: "system:serviceaccount:apps:mooring".into(),
            namespaces: vec!["default".into()],
        }),
        ..Options::default()
    });
    let get = |path: &str| -> Result<Value, (u16, Value)> {
        let r = reqwest::blocking::get(format!("{}{path}", s.url())).expect("GET");
        let code = r.status().as_u16();
        let body: Value = r.json().expect("JSON");
        if code == 200 { Ok(body) } else { Err((code, body)) }
    };
    get("/api/v1/namespaces/default/configmaps").expect("its own namespace");
    get("/apis/apps/v1").expect("discovery");
    let (code, e) = get("/apis/apps/v1/deployments").expect_err("cluster-wide");
    assert_eq!(code, 403);
    assert_eq!(
        e["message"],
        r#"deployments.apps is forbidden: User "system:serviceaccount:apps:mooring" cannot list resource "deployments" in API group "apps" at the cluster scope"#
    );
    assert_eq!(e["details"], json!({"group": "apps", "kind": "deployments"}));
    let (_, e) = get("/api/v1/namespaces/kube-system/configmaps/x").expect_err("another namespace");
    assert_eq!(
        e["message"],
        r#"configmaps "x" is forbidden: User "system:serviceaccount:apps:mooring" cannot get resource "configmaps" in API group "" in the namespace "kube-system""#
    );
    let (_, e) = get("/api/v1/namespaces/default").expect_err("a cluster-scoped kind");
    assert_eq!(e["reason"], "Forbidden");
    // The test's own helpers are cluster admin.
    assert!(s.object("v1", "Namespace", None, "default").is_some());
}

#[test]
fn writes_fail_after_the_set_count() {
    let s = ApiServer::start();
    s.fail_writes_after(Some(1));
    let patch = |name: &str| {
        let body = serde_json::to_vec(&cm(name, json!({}))).expect("json");
        reqwest::blocking::Client::new()
            .patch(format!(
                "{}/api/v1/namespaces/default/configmaps/{name}?fieldManager=m",
                s.url()
            ))
            .header("Content-Type", "application/apply-patch+yaml")
            .body(body)
            .send()
            .expect("PATCH")
            .status()
            .as_u16()
    };
    assert_eq!(patch("a"), 201);
    assert_eq!(patch("b"), 500);
    s.fail_writes_after(None);
    assert_eq!(patch("b"), 201);
}

#[test]
fn lists_by_label_follow_relabels_deletes_and_namespaces() {
    let s = ApiServer::start();
    let put = |ns: &str, name: &str, labels: Value| {
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": name, "namespace": ns, "labels": labels}});
        apply_body(
            &s,
            &format!("/api/v1/namespaces/{ns}/configmaps/{name}?fieldManager=t"),
            &body.to_string(),
        )
        .expect("apply");
    };
    let names = |path: &str| -> Vec<String> {
        s.call("GET", path, "", b"").expect("list")["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["metadata"]["namespace"].as_str().unwrap_or(""),
                    o["metadata"]["name"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    s.call(
        "POST",
        "/api/v1/namespaces",
        "application/json",
        br#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"other"}}"#,
    )
    .expect("namespace");
    put("default", "b", json!({"app": "x", "tier": "web"}));
    put("default", "a", json!({"app": "x"}));
    put("other", "c", json!({"app": "x"}));
    put("default", "d", json!({"app": "y"}));
    let all = "/api/v1/configmaps?labelSelector=app%3Dx";
    assert_eq!(names(all), ["default/a", "default/b", "other/c"]);
    assert_eq!(
        names("/api/v1/namespaces/default/configmaps?labelSelector=app%3Dx"),
        ["default/a", "default/b"]
    );
    assert_eq!(
        names("/api/v1/configmaps?labelSelector=app%3Dx,tier%3Dweb"),
        ["default/b"]
    );
    // A relabel moves the object; a delete drops it.
    put("default", "a", json!({"app": "y"}));
    s.call("DELETE", "/api/v1/namespaces/other/configmaps/c", "", b"")
        .expect("delete");
    assert_eq!(names(all), ["default/b"]);
    assert_eq!(
        names("/api/v1/configmaps?labelSelector=app%3Dy"),
        ["default/a", "default/d"]
    );
    assert_eq!(
        names("/api/v1/configmaps?labelSelector=app+notin+(y)"),
        ["default/b"]
    );
}
