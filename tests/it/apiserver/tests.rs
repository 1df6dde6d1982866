//! The server through its direct entry point (no kubectl): the rules a
//! real API server keeps that kubectl does not show.

use std::time::Duration;

use serde_json::{Value, json};

use super::{ApiServer, Options};

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

    let held = ApiServer::start_with(Options { rollout_delay: None });
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
        get("/api/v1/configmaps?watch=true").expect_err("watch")["code"],
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
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(std::time::Instant::now() < deadline, "still listening");
        std::thread::sleep(Duration::from_millis(10));
    }
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
