//! Leader election end to end: two `mooring run` replicas with the same
//! `leader-election` against the test API server (its Leases), each
//! through its own proxy so that one can lose the API while the other
//! keeps it. Only the leader reconciles; a standby takes over when the
//! leader dies, loses the API, or gives the lease up on SIGTERM. With
//! `shards=4`, three replicas share the shards, each app runs on one of
//! them, a killed replica's shards move to the others, and one stopped by
//! SIGTERM hands its shards over as it goes.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::agent::{Fixture, Running, runs, state};
use crate::apiserver::ApiServer;
use crate::faultproxy::{Behaviour, FaultProxy};

const LONG: Duration = Duration::from_secs(30);

struct Replica {
    name: &'static str,
    port: u16,
    proxy: FaultProxy,
}

impl Replica {
    fn new(f: &Fixture, server: &ApiServer, name: &'static str) -> Replica {
        let proxy = FaultProxy::start(server.port());
        server.kubeconfig_at(
            &f.path().join(format!("kube-{name}")),
            &format!("http://127.0.0.1:{}", proxy.port),
            false,
        );
        let port = crate::support::free_port();
        let config = format!(
            "agent {{\n    state-dir \"state-{name}\"\n    listen \"127.0.0.1:{port}\"\n    \
             leader-election lease=\"mooring\" namespace=\"default\" duration=\"2s\" cluster=\"test\"\n}}\n\
             cluster \"test\" {{ kubeconfig \"kube-{name}\"; }}\n\
             source \"repo\" {{\n    git \"{}\"\n    interval \"1h\"\n}}\n\
             app \"web\" {{\n    source \"repo\"\n    path \"web\"\n    target dir=\"out-{name}/web\"\n}}\n\
             receiver \"ci\" {{\n    type \"generic-hmac\"\n    secret-file \"hook-secret\"\n    reconcile \"source/repo\"\n}}\n",
            f.repo.file_url()
        );
        f.env.write(&format!("{name}.kdl"), &config);
        Replica { name, port, proxy }
    }

    fn run(&self, f: &Fixture) -> Running {
        let mut cmd = f.env.cmd();
        cmd.args(["run", "-c", &format!("{}.kdl", self.name)])
            .env("MOORING_LOG", "debug")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        Running::start(cmd, self.port)
    }
}

const SECRET: &str = "ci-hook-secret";

/// POST a generic-hmac hook to the agent on `port`.
fn post_hook(port: u16, body: &[u8]) -> (u16, Value) {
    use hmac::{Hmac, KeyInit as _, Mac as _};
    let mut mac = <Hmac<sha2::Sha256>>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(body);
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let res = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .post(format!("http://127.0.0.1:{port}/hooks/ci"))
        .header("x-signature", format!("sha256={sig}"))
        .body(body.to_vec())
        .send()
        .expect("POST the hook");
    (res.status().as_u16(), res.json().unwrap_or_default())
}

fn role(s: &Value) -> &str {
    s["leader_election"]["role"].as_str().unwrap_or("none")
}

fn identity(s: &Value) -> String {
    s["leader_election"]["identity"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn lease(server: &ApiServer) -> Value {
    server
        .object("coordination.k8s.io/v1", "Lease", Some("default"), "mooring")
        .expect("the Lease")
}

#[test]
fn only_the_leader_reconciles_and_a_standby_takes_over() {
    let server = ApiServer::start();
    let f = Fixture::new();
    f.env.write("hook-secret", SECRET);
    let a = Replica::new(&f, &server, "a");
    let b = Replica::new(&f, &server, "b");

    // A first: it takes the lease and reconciles.
    let run_a = a.run(&f);
    let s = run_a.wait(LONG, "a leads and applies", |s| {
        role(s) == "leader" && state(s, "app", "web") == "ready"
    });
    let id_a = identity(&s);
    assert_eq!(lease(&server)["spec"]["holderIdentity"], id_a.as_str());
    assert_eq!(lease(&server)["spec"]["leaseDurationSeconds"], 2);
    assert_eq!(run_a.get("/readyz"), (200, "ready: leader\n".to_string()));

    // B waits as a standby and touches nothing.
    let run_b = b.run(&f);
    let s = run_b.wait(LONG, "b is a standby", |s| {
        role(s) == "standby" && s["leader_election"]["holder"] == id_a.as_str()
    });
    // The source waits as a standby, and the app for the source.
    let source = crate::faults::object(&s, "source", "repo");
    assert_eq!(
        (source["state"].as_str(), source["reason"].as_str()),
        (Some("waiting"), Some("Standby"))
    );
    assert_eq!(state(&s, "app", "web"), "waiting");
    assert_eq!(runs(&s, "source", "repo"), 0);
    assert!(!f.path().join("out-b").exists());
    assert_eq!(run_b.get("/readyz"), (200, "ready: standby\n".to_string()));
    let table = f.env.run(&["status", "--addr", &format!("127.0.0.1:{}", b.port)]);
    table.expect_code(0);
    assert!(
        table.stdout.contains("standby of lease default/mooring for") && table.stdout.contains(&id_a),
        "{}",
        table.stdout
    );

    // A hook that reaches the standby runs on the leader, through the Lease.
    let body = br#"{"push":1}"#;
    let (code, answer) = post_hook(b.port, body);
    assert_eq!(
        (code, &answer["accepted"]),
        (202, &serde_json::json!(["source/repo"])),
        "{answer}"
    );
    let s = run_a.wait(LONG, "the leader ran the standby's hook", |s| {
        runs(s, "source", "repo") == 2 && crate::faults::object(s, "source", "repo")["trigger"] == "webhook"
    });
    assert!(
        lease(&server)["metadata"]["annotations"]
            .get("mooring.dev/reconcile-requests")
            .is_none(),
        "{s}"
    );
    assert_eq!(runs(&run_b.status(), "source", "repo"), 0);

    // A dies (SIGKILL: no goodbye). B takes over once the lease ages out.
    drop(run_a);
    let killed = Instant::now();
    let s = run_b.wait(LONG, "b leads and applies", |s| {
        role(s) == "leader" && state(s, "app", "web") == "ready"
    });
    eprintln!(
        "standby took over {:?} after the leader was killed (lease 2s)",
        killed.elapsed()
    );
    let id_b = identity(&s);
    let l = lease(&server);
    assert_eq!(l["spec"]["holderIdentity"], id_b.as_str());
    assert_eq!(l["spec"]["leaseTransitions"], 1, "{l}");
    assert!(f.path().join("out-b/web").is_dir());
    assert_eq!(s["objects"][0]["trigger"], "config");

    // A comes back as a standby; then B loses the API: it stops leading
    // before its lease runs out, and A takes over.
    let mut run_a = a.run(&f);
    run_a.wait(LONG, "a is a standby", |s| role(s) == "standby");
    b.proxy.set(Behaviour::Refuse);
    let s = run_b.wait(LONG, "b without the API steps down", |s| role(s) == "standby");
    assert!(s["leader_election"]["last_error"].is_string(), "{s}");
    let s = run_a.wait(LONG, "a leads again and applies", |s| {
        role(s) == "leader" && runs(s, "app", "web") >= 1
    });
    assert_eq!(lease(&server)["spec"]["holderIdentity"], identity(&s).as_str());
    assert_eq!(lease(&server)["spec"]["leaseTransitions"], 2);

    // SIGTERM: A gives the lease up, and B (whose API is back) takes it
    // at its next look rather than after the lease's duration.
    b.proxy.set(Behaviour::Pass);
    let (code, log) = run_a.signal("TERM");
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("gave up the lease"), "{log}");
    run_b.wait(LONG, "b leads again", |s| role(s) == "leader");
}

#[test]
fn a_lease_write_from_an_old_read_conflicts() {
    let server = ApiServer::start();
    let lease = serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "l", "namespace": "default"},
        "spec": {"holderIdentity": "one", "leaseDurationSeconds": 15},
    });
    let created = server
        .call(
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/default/leases",
            "application/json",
            lease.to_string().as_bytes(),
        )
        .expect("create");
    let mut first = created.clone();
    first["spec"]["holderIdentity"] = "two".into();
    let path = "/apis/coordination.k8s.io/v1/namespaces/default/leases/l";
    server
        .call("PUT", path, "application/json", first.to_string().as_bytes())
        .expect("the first write from that read");
    let mut second = created;
    second["spec"]["holderIdentity"] = "three".into();
    let err = server
        .call("PUT", path, "application/json", second.to_string().as_bytes())
        .expect_err("a second write from the same read");
    assert_eq!(
        (err["code"].as_u64(), err["reason"].as_str()),
        (Some(409), Some("Conflict"))
    );
}

/// A replica of the sharded config: `leader-election shards=4` and
/// [`APPS`] apps, straight to the API server (no proxy: it only dies).
struct Sharded {
    name: &'static str,
    port: u16,
}

const SHARDS: usize = 4;
const APPS: usize = 8;
const CONFIGMAP_B: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: demo\n";

impl Sharded {
    fn new(f: &Fixture, server: &ApiServer, name: &'static str) -> Sharded {
        server.kubeconfig(&f.path().join(format!("kube-{name}")));
        let port = crate::support::free_port();
        let mut config = format!(
            "agent {{\n    state-dir \"state-{name}\"\n    listen \"127.0.0.1:{port}\"\n    \
             leader-election lease=\"mooring\" namespace=\"default\" duration=\"2s\" cluster=\"test\" shards={SHARDS}\n}}\n\
             cluster \"test\" {{ kubeconfig \"kube-{name}\"; }}\n\
             source \"repo\" {{\n    git \"{}\"\n    interval \"1h\"\n}}\n\
             receiver \"ci\" {{\n    type \"generic-hmac\"\n    secret-file \"hook-secret\"\n    reconcile \"source/repo\"\n}}\n",
            f.repo.file_url()
        );
        for i in 0..APPS {
            config.push_str(&format!(
                "app \"app-{i}\" {{\n    source \"repo\"\n    path \"web\"\n    target dir=\"out-{name}/app-{i}\"\n}}\n"
            ));
        }
        f.env.write(&format!("{name}.kdl"), &config);
        Sharded { name, port }
    }

    /// Start it, logging to `NAME.log` (a pipe nobody reads while the
    /// test runs would fill up and stop the agent).
    fn run(&self, f: &Fixture) -> Running {
        let log = std::fs::File::create(f.path().join(format!("{}.log", self.name))).expect("log file");
        let mut cmd = f.env.cmd();
        cmd.args(["run", "-c", &format!("{}.kdl", self.name)])
            .env("MOORING_LOG", "debug")
            .stdout(std::process::Stdio::null())
            .stderr(log);
        Running::start(cmd, self.port)
    }
}

/// Shard `i`'s Lease.
fn shard_lease(server: &ApiServer, i: usize) -> Value {
    server
        .object(
            "coordination.k8s.io/v1",
            "Lease",
            Some("default"),
            &format!("mooring-{i}"),
        )
        .expect("a shard's Lease")
}

/// The holder of each shard, as a replica's status shows it.
fn holders(s: &Value) -> Vec<Option<String>> {
    s["leader_election"]["shards"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|sh| sh["holder"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn mine(s: &Value) -> usize {
    s["leader_election"]["shards"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|sh| sh["mine"] == true).count())
}

/// The replicas' statuses once they agree on a balanced spread: every
/// shard held by one of them, each holding one to ⌈N/M⌉, and every app
/// ready on exactly one replica and shown owned by it (`owner`) on the
/// others. With `revision`, every app has applied it there.
fn settled(replicas: &[&Running], what: &str, revision: Option<&str>) -> Vec<Value> {
    let deadline = Instant::now() + LONG;
    loop {
        let all: Vec<Value> = replicas.iter().map(|r| r.status()).collect();
        let ids: Vec<String> = all.iter().map(identity).collect();
        let ceiling = SHARDS.div_ceil(replicas.len());
        let spread = all
            .iter()
            .all(|s| holders(s) == holders(&all[0]) && (1..=ceiling).contains(&mine(s)))
            && holders(&all[0])
                .iter()
                .all(|h| h.as_ref().is_some_and(|h| ids.contains(h)));
        let apps_once = (0..APPS).all(|i| {
            let app = format!("app-{i}");
            let here: Vec<usize> = (0..all.len())
                .filter(|&r| crate::faults::object(&all[r], "app", &app)["owner"].is_null())
                .collect();
            let [r] = here[..] else { return false };
            let o = crate::faults::object(&all[r], "app", &app);
            o["state"] == "ready"
                && revision.is_none_or(|rev| o["revision"].as_str().is_some_and(|v| v.contains(rev)))
                && (0..all.len())
                    .filter(|&x| x != r)
                    .all(|x| crate::faults::object(&all[x], "app", &app)["owner"] == ids[r].as_str())
        });
        if spread && apps_once {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "waited {LONG:?} for {what}; last statuses:\n{}",
            serde_json::to_string_pretty(&all).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn shards_spread_over_replicas_and_move_when_one_dies() {
    let server = ApiServer::start();
    let f = Fixture::new();
    f.env.write("hook-secret", SECRET);
    let (a, b, c) = (
        Sharded::new(&f, &server, "a"),
        Sharded::new(&f, &server, "b"),
        Sharded::new(&f, &server, "c"),
    );
    let run_a = a.run(&f);
    let run_b = b.run(&f);
    let run_c = c.run(&f);
    let all = settled(
        &[&run_a, &run_b, &run_c],
        "three replicas to share 4 shards",
        None,
    );
    let ids: Vec<String> = all.iter().map(identity).collect();
    // The Leases say the same as the statuses.
    for (i, holder) in holders(&all[0]).iter().enumerate() {
        let l = shard_lease(&server, i);
        assert_eq!(l["spec"]["holderIdentity"].as_str(), holder.as_deref());
    }
    assert!(
        server
            .object("coordination.k8s.io/v1", "Lease", Some("default"), "mooring")
            .is_none(),
        "with shards there is no unsharded Lease"
    );
    let table = f.env.run(&["status", "--addr", &format!("127.0.0.1:{}", a.port)]);
    table.expect_code(0);
    assert!(
        table
            .stdout
            .contains(&format!("shards: {} of 4 here", mine(&all[0])))
            && table.stdout.contains("3 live replicas"),
        "{}",
        table.stdout
    );

    // A push, told to one replica: every holder fetches (the source runs
    // wherever a shard is held), and each app applies it exactly once.
    f.repo.write(&[("web/extra.yaml", CONFIGMAP_B)]);
    let second = f.repo.commit("second");
    f.repo.publish();
    let before = all;
    let (code, answer) = post_hook(c.port, br#"{"push":2}"#);
    assert_eq!(
        (code, &answer["accepted"]),
        (202, &serde_json::json!(["source/repo"])),
        "{answer}"
    );
    let all = settled(
        &[&run_a, &run_b, &run_c],
        "every app at the second commit",
        Some(&second[..12]),
    );
    assert_eq!(
        holders(&all[0]),
        holders(&before[0]),
        "nothing moves while the replicas are stable"
    );
    for (s, was) in all.iter().zip(&before) {
        assert!(runs(s, "source", "repo") > runs(was, "source", "repo"), "{s}");
        // Only the owner of an app ran it again.
        for i in 0..APPS {
            let app = format!("app-{i}");
            let again = runs(s, "app", &app) > runs(was, "app", &app);
            assert_eq!(
                again,
                crate::faults::object(s, "app", &app)["owner"].is_null(),
                "{app}: {s}"
            );
        }
    }

    // `mooring reconcile` of an app A does not hold runs on its holder,
    // through the shard's Lease, as a manual run.
    let runners = [&run_a, &run_b, &run_c];
    let app = (0..APPS)
        .map(|i| format!("app-{i}"))
        .find(|app| !crate::faults::object(&all[0], "app", app)["owner"].is_null())
        .expect("an app A does not hold");
    let holder = (1..3)
        .find(|&r| crate::faults::object(&all[r], "app", &app)["owner"].is_null())
        .expect("its holder");
    let (code, answer) = run_a.post(&format!("/api/reconcile/app/{app}"), None);
    assert_eq!(code, 202, "{answer}");
    let was = runs(&all[holder], "app", &app);
    runners[holder].wait(LONG, "the holder to run A's manual reconcile", |s| {
        let o = crate::faults::object(s, "app", &app);
        runs(s, "app", &app) > was && o["trigger"] == "manual"
    });
    assert_eq!(runs(&run_a.status(), "app", &app), runs(&all[0], "app", &app));
    let all: Vec<Value> = runners.iter().map(|r| r.status()).collect();

    // C dies without a word: its shards go to A and B, which apply its apps.
    let c_apps: Vec<String> = (0..APPS)
        .map(|i| format!("app-{i}"))
        .filter(|app| crate::faults::object(&all[2], "app", app)["owner"].is_null())
        .collect();
    assert!(!c_apps.is_empty(), "{}", all[2]);
    drop(run_c);
    let killed = Instant::now();
    let all = settled(
        &[&run_a, &run_b],
        "A and B to take C's shards",
        Some(&second[..12]),
    );
    eprintln!(
        "C's shards moved {:?} after it was killed (lease 2s)",
        killed.elapsed()
    );
    assert!(
        holders(&all[0])
            .iter()
            .all(|h| h.as_deref() != Some(ids[2].as_str()))
    );
    for app in &c_apps {
        let ran = all
            .iter()
            .find(|s| crate::faults::object(s, "app", app)["owner"].is_null())
            .expect("a holder");
        assert!(
            f.path()
                .join(format!(
                    "out-{}/{app}",
                    if identity(ran) == ids[0] { "a" } else { "b" }
                ))
                .is_dir()
        );
    }

    // A replica started later takes a share from them.
    let d = Sharded::new(&f, &server, "d");
    let mut run_d = d.run(&f);
    let all = settled(&[&run_a, &run_b, &run_d], "D to take a share", None);
    assert!(mine(&all[2]) >= 1);

    // D stops on SIGTERM: it hands its Leases over and leaves the members
    // as it goes, rather than leaving them to expire.
    let d_id = identity(&all[2]);
    let d_held: Vec<usize> = (0..SHARDS)
        .filter(|&i| holders(&all[2])[i].as_deref() == Some(d_id.as_str()))
        .collect();
    let (code, _) = run_d.signal("TERM");
    assert_eq!(code, 0);
    let log = std::fs::read_to_string(f.path().join("d.log")).expect("D's log");
    assert!(log.contains("gave up the lease"), "{log}");
    for &i in &d_held {
        let l = shard_lease(&server, i);
        assert_ne!(l["spec"]["holderIdentity"].as_str(), Some(d_id.as_str()), "{l}");
    }
    let members = server
        .object(
            "coordination.k8s.io/v1",
            "Lease",
            Some("default"),
            "mooring-members",
        )
        .expect("the members' Lease");
    assert!(
        !members["metadata"]["annotations"].to_string().contains(&d_id),
        "{members}"
    );
    settled(&[&run_a, &run_b], "A and B to take D's shards back", None);
}
