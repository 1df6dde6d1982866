//! Running mooring as a service: systemd/mooring.service passes
//! `systemd-analyze verify` and keeps its sandbox; the manifests of
//! examples/kubernetes/ fit together and carry a valid config; the configs
//! quoted in docs/operations.md are valid.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::support::{TestEnv, repo_root};

const UNIT: &str = "systemd/mooring.service";
const EXEC_START: &str = "ExecStart=/usr/local/bin/mooring run -c /etc/mooring/mooring.kdl";
const KUBERNETES: &str = "examples/kubernetes";
const OPERATIONS_MD: &str = "docs/operations.md";

// ---- systemd -----------------------------------------------------------------------

/// `systemd-analyze`, which the test suite needs: not finding it is a
/// failure, not a reason to skip.
fn systemd_analyze() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|dir| dir.join("systemd-analyze"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "systemd-analyze is not installed, and the tests of {UNIT} need it: run scripts/test, \
                 which installs the Debian package `systemd` (or `apt-get install systemd`)"
            )
        })
}

fn unit_text() -> String {
    let path = repo_root().join(UNIT);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The unit's `Key=value` lines, in file order, without comments and
/// section headers.
fn settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', ';', '[']))
        .map(|l| {
            assert!(!l.ends_with('\\'), "{UNIT}: keep settings on one line: {l}");
            let (key, value) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("{UNIT}: not a `Key=value` line: {l}"));
            (key.trim().to_string(), value.trim().to_string())
        })
        .collect()
}

/// The value of a setting that must appear exactly once.
#[track_caller]
fn one<'a>(settings: &'a [(String, String)], key: &str) -> &'a str {
    let values: Vec<&str> = settings
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(values.len(), 1, "{UNIT}: `{key}=` should be set once: {values:?}");
    values[0]
}

/// The unit as shipped, except that `ExecStart=` runs the binary under
/// test: `systemd-analyze verify` checks that the program exists.
fn installable_copy(env: &TestEnv) -> PathBuf {
    let text = unit_text();
    let exec_starts = text.lines().filter(|l| l.starts_with("ExecStart=")).count();
    assert_eq!(exec_starts, 1, "{UNIT}: one ExecStart= line");
    assert!(
        text.lines().any(|l| l == EXEC_START),
        "{UNIT}: the binary is installed as /usr/local/bin/mooring and the config read from \
         /etc/mooring/mooring.kdl; expected the line\n{EXEC_START}"
    );
    let bin = crate::support::mooring_bin();
    let bin = bin.to_str().expect("a UTF-8 binary path");
    assert!(
        !bin.contains(char::is_whitespace),
        "binary path with spaces: {bin}"
    );
    let mut copy = text.replace(
        EXEC_START,
        &format!("ExecStart={bin} run -c /etc/mooring/mooring.kdl"),
    );
    // /bin/kill comes with procps, which a minimal container may lack;
    // verify only checks that ExecReload's program exists.
    if !Path::new("/bin/kill").exists() {
        let stub = env.write("bin/kill", "#!/bin/sh\nexit 0\n");
        make_executable(&stub);
        copy = copy.replace(
            "ExecReload=/bin/kill ",
            &format!("ExecReload={} ", stub.display()),
        );
    }
    env.write("mooring.service", &copy)
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn show(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Run `systemd-analyze verify` on `unit` (and the drop-ins beside it) and
/// fail on any complaint about it.
#[track_caller]
fn verify(unit: &Path, what: &str) {
    let analyze = systemd_analyze();
    // --recursive-errors=no: judge this unit, not the host's units it
    // names (network-online.target); --man=no: no man pages needed.
    let out = Command::new(&analyze)
        .args(["verify", "--man=no", "--recursive-errors=no"])
        .arg(unit)
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .expect("run systemd-analyze verify");
    // Without systemd as PID 1 it may still talk about the host; only
    // lines about this unit (or its drop-ins, mooring.service.d/) count.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let about_unit: Vec<&str> = stderr.lines().filter(|l| l.contains("mooring.service")).collect();
    assert!(
        out.status.success() && about_unit.is_empty(),
        "`systemd-analyze verify` does not accept {what}:\n{}\n{}",
        about_unit.join("\n"),
        show(&out)
    );
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let env = TestEnv::new();
    verify(&installable_copy(&env), UNIT);
}

/// The drop-in that systemd/README.md shows (its ```ini block) is valid
/// on top of the unit.
#[test]
fn readme_drop_in_passes_systemd_analyze_verify() {
    let readme = repo_root().join("systemd/README.md");
    let text = std::fs::read_to_string(&readme).expect("read systemd/README.md");
    let start = text
        .find("```ini\n")
        .expect("systemd/README.md has an ```ini block")
        + "```ini\n".len();
    let end = start + text[start..].find("```").expect("the ```ini block ends");
    let drop_in = &text[start..end];
    assert!(
        drop_in.starts_with("[Service]"),
        "the drop-in starts with [Service]"
    );
    let env = TestEnv::new();
    let unit = installable_copy(&env);
    env.write("mooring.service.d/override.conf", drop_in);
    verify(&unit, "systemd/README.md's drop-in");
}

#[test]
fn unit_is_sandboxed() {
    let analyze = systemd_analyze();
    let env = TestEnv::new();
    let unit = installable_copy(&env);
    // The exposure score (0-100 here, 0.0-10.0 as printed): 1.5 when this
    // was written. A change that weakens the sandbox past 2.0 fails.
    let out = Command::new(&analyze)
        .args(["security", "--offline=yes", "--threshold=20", "--no-pager"])
        .arg(&unit)
        .env("SYSTEMD_COLORS", "0")
        .output()
        .expect("run systemd-analyze security");
    // On failure, show what is not protected and the overall score.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let exposed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with('✗') || l.contains("Overall exposure"))
        .map(str::trim_end)
        .collect();
    assert!(
        out.status.success(),
        "{UNIT}'s sandbox is weaker than before (exposure above 2.0):\n{}\n{}\n--- stderr\n{}",
        exposed.join("\n"),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn unit_matches_what_the_agent_does() {
    let s = settings(&unit_text());
    for (key, value) in [
        // READY=1 and friends come from the main process only.
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        // SIGTERM to the agent only, so its git/ssh children can finish.
        ("KillMode", "mixed"),
        ("Restart", "on-failure"),
        // /var/lib/mooring, the default state-dir; /etc/mooring, the default config dir.
        ("StateDirectory", "mooring"),
        ("ConfigurationDirectory", "mooring"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("UMask", "0077"),
    ] {
        assert_eq!(one(&s, key), value, "{UNIT}: {key}=");
    }
    assert_eq!(
        mooring::config::Settings::default().state_dir,
        Path::new("/var/lib").join(one(&s, "StateDirectory")),
        "StateDirectory= is the default state-dir"
    );
    let duration = |key: &str| -> Duration {
        humantime::parse_duration(one(&s, key)).unwrap_or_else(|e| panic!("{UNIT}: {key}=: {e}"))
    };
    let bound = mooring::agent::run::SHUTDOWN_BOUND;
    assert!(
        duration("TimeoutStopSec") > bound + Duration::from_secs(5),
        "{UNIT}: TimeoutStopSec= must leave room above the agent's {}s bound on in-flight work",
        bound.as_secs()
    );
    assert!(
        duration("WatchdogSec") >= Duration::from_secs(10),
        "{UNIT}: WatchdogSec="
    );
    // setrlimit is filtered (@resources): the unit must give the descriptors.
    let nofile: u64 = one(&s, "LimitNOFILE").parse().expect("LimitNOFILE= is a number");
    assert!(nofile >= 8192, "{UNIT}: LimitNOFILE=");
}

// ---- Kubernetes ------------------------------------------------------------------

/// Every YAML document of `examples/kubernetes/NAME`.
fn manifests(name: &str) -> Vec<Value> {
    let path = repo_root().join(KUBERNETES).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// The one document of `examples/kubernetes/NAME`, of kind `kind`.
#[track_caller]
fn manifest(name: &str, kind: &str) -> Value {
    let mut docs: Vec<Value> = manifests(name)
        .into_iter()
        .filter(|d| d["kind"] == kind)
        .collect();
    assert_eq!(docs.len(), 1, "{KUBERNETES}/{name}: one {kind}");
    docs.remove(0)
}

/// The config in the ConfigMap, checked by the real binary, and loaded.
fn configmap_config(env: &TestEnv) -> mooring::config::Config {
    let configmap = manifest("configmap.yaml", "ConfigMap");
    let text = configmap["data"]["mooring.kdl"]
        .as_str()
        .unwrap_or_else(|| panic!("{KUBERNETES}/configmap.yaml: no data.mooring.kdl"));
    let path = env.write("mooring.kdl", text);
    let run = env.run(&["validate", "--format", "json", "-c", "mooring.kdl"]);
    run.expect_code(0);
    assert_eq!(
        run.stdout.trim(),
        "[]",
        "{KUBERNETES}/configmap.yaml: mooring.kdl has diagnostics; `mooring validate` says:\n{}",
        env.run(&["validate", "-c", "mooring.kdl"]).stdout
    );
    mooring::config::from_str(&path, text.to_string(), jiff::Timestamp::now())
        .expect("load the ConfigMap's config")
        .config
}

#[test]
fn kubernetes_configmap_holds_a_valid_config() {
    let env = TestEnv::new();
    let config = configmap_config(&env);
    assert!(
        config.clusters.is_empty(),
        "in a pod, apps use the in-cluster config"
    );
    assert!(!config.sources.is_empty() && !config.apps.is_empty());
    let listen = config.agent.listen;
    assert!(
        listen.ip().is_unspecified(),
        "listen on all interfaces, for the probes: {listen}"
    );
    assert!(config.agent.api_token_file.is_some());
}

#[test]
fn kubernetes_manifests_fit_together() {
    let env = TestEnv::new();
    let config = configmap_config(&env);

    // kustomization.yaml lists every other file.
    let kustomization = &manifests("kustomization.yaml")[0];
    let mut listed: Vec<&str> = kustomization["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().expect("a file name"))
        .collect();
    listed.sort_unstable();
    let mut files: Vec<String> = std::fs::read_dir(repo_root().join(KUBERNETES))
        .expect("read examples/kubernetes")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    files.sort_unstable();
    assert_eq!(listed, files, "{KUBERNETES}/kustomization.yaml: resources");

    let namespace = manifest("namespace.yaml", "Namespace")["metadata"]["name"].clone();
    let account = manifest("serviceaccount.yaml", "ServiceAccount");
    let configmap = manifest("configmap.yaml", "ConfigMap");
    let secret = manifest("secret.yaml", "Secret");
    let deployment = manifest("deployment.yaml", "Deployment");
    let service = manifest("service.yaml", "Service");
    let binding = manifest("rbac.yaml", "ClusterRoleBinding");
    for (what, object) in [
        ("ServiceAccount", &account),
        ("ConfigMap", &configmap),
        ("Secret", &secret),
        ("Deployment", &deployment),
        ("Service", &service),
    ] {
        assert_eq!(object["metadata"]["namespace"], namespace, "{what}'s namespace");
    }
    assert_eq!(binding["subjects"][0]["name"], account["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["namespace"], namespace);

    let spec = &deployment["spec"];
    // Several replicas only with leader election, and then a rolling
    // update (a standby is ready and takes over).
    let replicas = spec["replicas"].as_u64().expect("replicas");
    if replicas > 1 {
        let le = config
            .agent
            .leader_election
            .as_ref()
            .expect("several replicas need `agent { leader-election }`");
        assert!(le.namespace.is_none(), "the Lease lives in the pod's namespace");
        assert_eq!(spec["strategy"]["type"], "RollingUpdate");
        let role = manifests("rbac.yaml")
            .into_iter()
            .find(|m| m["kind"] == "Role" && m["metadata"]["name"] == "mooring-leader-election")
            .expect("a Role for the Lease");
        assert_eq!(role["metadata"]["namespace"], namespace);
        assert_eq!(
            role["rules"][0],
            serde_json::json!({"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]})
        );
    } else {
        assert_eq!(spec["strategy"]["type"], "Recreate");
    }
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], account["metadata"]["name"]);
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    assert!(
        Duration::from_secs(grace) > mooring::agent::run::SHUTDOWN_BOUND,
        "the grace period must leave the agent time to finish in-flight work"
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let container = &pod["containers"][0];
    assert_eq!(
        container["args"],
        serde_json::json!(["run", "-c", "/etc/mooring/mooring.kdl"])
    );
    let hardening = &container["securityContext"];
    assert_eq!(hardening["readOnlyRootFilesystem"], true);
    assert_eq!(hardening["allowPrivilegeEscalation"], false);
    assert_eq!(hardening["capabilities"]["drop"], serde_json::json!(["ALL"]));

    // Volumes: name → (mount, volume).
    let mount = |path: &str| -> (Value, Value) {
        let mount = container["volumeMounts"]
            .as_array()
            .expect("volumeMounts")
            .iter()
            .find(|m| m["mountPath"] == path)
            .unwrap_or_else(|| panic!("nothing is mounted at {path}"))
            .clone();
        let volume = pod["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap_or_else(|| panic!("no volume {}", mount["name"]))
            .clone();
        (mount, volume)
    };
    // The config: the ConfigMap as a directory; a subPath mount never updates.
    let (config_mount, config_volume) = mount("/etc/mooring");
    assert!(
        config_mount.get("subPath").is_none(),
        "a subPath mount is never updated: mount the ConfigMap as a directory"
    );
    assert_eq!(config_volume["configMap"]["name"], configmap["metadata"]["name"]);
    // The API token: the Secret, where the config looks for it.
    let token = config.agent.api_token_file.as_deref().expect("api-token-file");
    let (_, token_volume) = mount(token.parent().and_then(Path::to_str).expect("token dir"));
    assert_eq!(token_volume["secret"]["secretName"], secret["metadata"]["name"]);
    let key = token
        .file_name()
        .and_then(|n| n.to_str())
        .expect("token file name");
    assert!(
        secret["stringData"].get(key).is_some() || secret["data"].get(key).is_some(),
        "the Secret has no key {key}"
    );
    // The state: a volume, at the config's state-dir.
    mount(config.agent.state_dir.to_str().expect("state-dir"));

    // The port the agent listens on, for the probes and the Service.
    let port = &container["ports"][0];
    assert_eq!(port["containerPort"], config.agent.listen.port());
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(
            container[probe]["httpGet"]["port"], port["name"],
            "{probe}'s port"
        );
    }
    assert_eq!(service["spec"]["ports"][0]["targetPort"], port["name"]);
    assert_eq!(
        service["spec"]["selector"], spec["template"]["metadata"]["labels"],
        "the Service selects the pod"
    );
}

// ---- docs/operations.md ------------------------------------------------------------

/// docs/operations.md is not among the files tests/it/docs.rs reads; its
/// ```kdl blocks follow the same rule: complete and valid, unless the line
/// before says `<!-- fragment -->`.
#[test]
fn operations_doc_configs_validate() {
    let path = repo_root().join(OPERATIONS_MD);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    let mut checked = 0;
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() != "```kdl" {
            i += 1;
            continue;
        }
        let close = (i + 1..lines.len())
            .find(|&j| lines[j].trim() == "```")
            .unwrap_or_else(|| panic!("{OPERATIONS_MD}:{}: unclosed block", i + 1));
        let marker = lines[..i].iter().rev().find(|l| !l.trim().is_empty());
        if marker.is_none_or(|m| m.trim() != "<!-- fragment -->") {
            checked += 1;
            let env = TestEnv::new();
            env.write("mooring.kdl", &(lines[i + 1..close].join("\n") + "\n"));
            let run = env.run(&["validate", "--format", "json", "-c", "mooring.kdl"]);
            assert!(
                run.code == 0 && run.stdout.trim() == "[]",
                "{OPERATIONS_MD}:{}: this config is not valid without diagnostics (mark lines from \
                 inside a config `<!-- fragment -->`):\n{}",
                i + 1,
                env.run(&["validate", "-c", "mooring.kdl"]).stdout
            );
        }
        i = close + 1;
    }
    assert!(checked >= 1, "{OPERATIONS_MD}: no ```kdl block checked");
}
