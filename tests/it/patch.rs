//! `mooring patch DIR --set NAME=IMAGE:TAG…`: the real binary on a
//! Flux-style repository; every file is compared byte for byte.

use crate::support::{Run, TestEnv};

const SET: &str = "podinfo=ghcr.io/stefanprodan/podinfo:6.5.1";

/// A deployment with odd formatting: a tab before the marker, an initContainer
/// with a quoted image and trailing blanks, a marker-like text inside a
/// string, and a block scalar that holds a marker as content.
const DEPLOYMENT: &str = "# Podinfo — the demo app ✓\n\
apiVersion: apps/v1\n\
kind: Deployment\n\
metadata:\n\
\x20 name: podinfo\n\
\x20 namespace: podinfo   # trailing comment\n\
\x20 annotations:\n\
\x20   description: \"pin with # {\\\"$imagepolicy\\\": \\\"podinfo\\\"}\"\n\
spec:\n\
\x20 replicas: 2\n\
\x20 template:\n\
\x20   spec:\n\
\x20     containers:\n\
\x20     - name: podinfod\n\
\x20       image:   ghcr.io/stefanprodan/podinfo:6.5.0\t# {\"$imagepolicy\":\"flux-system:podinfo\"}\n\
\x20       command: [\"./podinfo\", \"--port=9898\"]\n\
\x20     initContainers:\n\
\x20       - name: init\n\
\x20         image: \"ghcr.io/stefanprodan/podinfo:6.4.0\" # {\"$imagepolicy\": \"podinfo\"}   \n\
\x20         args:\n\
\x20           - |\n\
\x20             image: ghcr.io/stefanprodan/podinfo:6.0.0 # {\"$imagepolicy\": \"podinfo\"}\n\
\x20           - --verbose\n";

/// A kustomization: `newName` is already right; `redis` has no pick.
const KUSTOMIZATION: &str = "apiVersion: kustomize.config.k8s.io/v1beta1\n\
kind: Kustomization\n\
resources:\n\
\x20 - deployment.yaml\n\
\x20 - helmrelease.yaml\n\
images:\n\
\x20 - name: podinfo\n\
\x20   newName: ghcr.io/stefanprodan/podinfo # {\"$imagepolicy\": \"flux-system:podinfo:name\"}\n\
\x20   newTag: 6.5.0 # {\"$imagepolicy\": \"flux-system:podinfo:tag\"}\n\
\x20 - name: redis\n\
\x20   newTag: \"7.2\" # {\"$imagepolicy\": \"flux-system:redis:tag\"}\n";

/// A HelmRelease with CRLF line endings and a single-quoted tag.
const HELMRELEASE: &str = "apiVersion: helm.toolkit.fluxcd.io/v2\r\n\
kind: HelmRelease\r\n\
metadata:\r\n\
\x20 name: podinfo\r\n\
spec:\r\n\
\x20 values:\r\n\
\x20   image:\r\n\
\x20     repository: docker.io/stefanprodan/podinfo # {\"$imagepolicy\": \"podinfo:name\"}\r\n\
\x20     tag: '6.5.0'  # {\"$imagepolicy\": \"podinfo:tag\"}\r\n";

const SERVICE: &str =
    "apiVersion: v1\nkind: Service\nmetadata:\n  name: podinfo\nspec:\n  ports:\n    - port: 9898\n";
const SYNC: &str = "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\nspec:\n  url: https://github.com/acme/platform\n";
const MARKED_ELSEWHERE: &str =
    "image: ghcr.io/stefanprodan/podinfo:6.5.0 # {\"$imagepolicy\": \"podinfo\"}\n";

/// The repository under `repo/` in a fresh env.
fn flux_repo() -> TestEnv {
    let env = TestEnv::new();
    env.write("repo/apps/podinfo/deployment.yaml", DEPLOYMENT);
    env.write("repo/apps/podinfo/kustomization.yaml", KUSTOMIZATION);
    env.write("repo/apps/podinfo/helmrelease.yaml", HELMRELEASE);
    env.write("repo/apps/podinfo/service.yaml", SERVICE);
    env.write("repo/clusters/prod/flux-system/gotk-sync.yaml", SYNC);
    // Neither YAML nor visible: never touched.
    env.write("repo/README.md", MARKED_ELSEWHERE);
    env.write("repo/.github/workflows/x.yaml", MARKED_ELSEWHERE);
    env
}

fn deployment_after() -> String {
    DEPLOYMENT
        .replace(
            "image:   ghcr.io/stefanprodan/podinfo:6.5.0\t#",
            "image:   ghcr.io/stefanprodan/podinfo:6.5.1\t#",
        )
        .replace(
            "image: \"ghcr.io/stefanprodan/podinfo:6.4.0\" #",
            "image: \"ghcr.io/stefanprodan/podinfo:6.5.1\" #",
        )
}

fn kustomization_after() -> String {
    KUSTOMIZATION.replace("newTag: 6.5.0 #", "newTag: 6.5.1 #")
}

fn helmrelease_after() -> String {
    HELMRELEASE
        .replace(
            "repository: docker.io/stefanprodan/podinfo #",
            "repository: ghcr.io/stefanprodan/podinfo #",
        )
        .replace("tag: '6.5.0'  #", "tag: '6.5.1'  #")
}

const CHANGES: &str = "\
repo/apps/podinfo/deployment.yaml:15  flux-system:podinfo  ghcr.io/stefanprodan/podinfo:6.5.0 -> ghcr.io/stefanprodan/podinfo:6.5.1
repo/apps/podinfo/deployment.yaml:19  podinfo  ghcr.io/stefanprodan/podinfo:6.4.0 -> ghcr.io/stefanprodan/podinfo:6.5.1
repo/apps/podinfo/helmrelease.yaml:8  podinfo:name  docker.io/stefanprodan/podinfo -> ghcr.io/stefanprodan/podinfo
repo/apps/podinfo/helmrelease.yaml:9  podinfo:tag  6.5.0 -> 6.5.1
repo/apps/podinfo/kustomization.yaml:9  flux-system:podinfo:tag  6.5.0 -> 6.5.1
";

const REDIS_WARNING: &str = "warning: repo/apps/podinfo/kustomization.yaml: line 11: marker \"flux-system:redis:tag\" \
names no image policy (flux-system/redis); not set\n";

#[track_caller]
fn assert_files(env: &TestEnv, deployment: &str, kustomization: &str, helmrelease: &str) {
    assert_eq!(env.read("repo/apps/podinfo/deployment.yaml"), deployment);
    assert_eq!(env.read("repo/apps/podinfo/kustomization.yaml"), kustomization);
    assert_eq!(env.read("repo/apps/podinfo/helmrelease.yaml"), helmrelease);
    assert_eq!(env.read("repo/apps/podinfo/service.yaml"), SERVICE);
    assert_eq!(env.read("repo/clusters/prod/flux-system/gotk-sync.yaml"), SYNC);
    assert_eq!(env.read("repo/README.md"), MARKED_ELSEWHERE);
    assert_eq!(env.read("repo/.github/workflows/x.yaml"), MARKED_ELSEWHERE);
}

/// [`assert_files`] after `--set SET`: the marked values set.
#[track_caller]
fn assert_patched(env: &TestEnv) {
    assert_files(
        env,
        &deployment_after(),
        &kustomization_after(),
        &helmrelease_after(),
    );
}

fn patch(env: &TestEnv, args: &[&str]) -> Run {
    let mut all = vec!["patch"];
    all.extend_from_slice(args);
    env.run(&all)
}

#[test]
fn sets_only_the_marked_values() {
    let env = flux_repo();
    let run = patch(&env, &["repo", "--set", SET]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        format!("{CHANGES}5 changes in 3 files; 1 marker already up to date\n")
    );
    assert_eq!(run.stderr, REDIS_WARNING);
    assert_patched(&env);

    // Again: everything is up to date, nothing is written.
    let service = env.path().join("repo/apps/podinfo/deployment.yaml");
    let mtime = || {
        std::fs::metadata(&service)
            .and_then(|m| m.modified())
            .expect("mtime")
    };
    let before = mtime();
    let run = patch(&env, &["repo", "--set", SET]);
    run.expect_code(0);
    assert_eq!(run.stdout, "no changes; 6 markers already up to date\n");
    assert_eq!(run.stderr, REDIS_WARNING);
    assert_eq!(before, mtime());
    assert_patched(&env);
}

#[test]
fn dry_run_writes_nothing() {
    let env = flux_repo();
    let run = patch(&env, &["repo", "--set", SET, "--dry-run"]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        format!("{CHANGES}dry run: 5 changes in 3 files; 1 marker already up to date; nothing written\n")
    );
    assert_eq!(run.stderr, REDIS_WARNING);
    assert_files(&env, DEPLOYMENT, KUSTOMIZATION, HELMRELEASE);
}

#[test]
fn digest_and_several_sets() {
    let env = TestEnv::new();
    let digest = "sha256:4d1bd4b2c7a3f0e5e4b8d1c0a9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6";
    let text = "image: ghcr.io/stefanprodan/podinfo:6.5.0 # {\"$imagepolicy\": \"podinfo\"}\n\
                digest: none # {\"$imagepolicy\": \"podinfo:digest\"}\n\
                redis: redis:7.0 # {\"$imagepolicy\": \"redis\"}\n\
                registry: localhost:5000/app # {\"$imagepolicy\": \"app:name\"}\n\
                tag: 0.1 # {\"$imagepolicy\": \"app:tag\"}\n";
    env.write("repo/values.yml", text);
    let podinfo = format!("podinfo=ghcr.io/stefanprodan/podinfo:6.5.1@{digest}");
    let run = patch(
        &env,
        &[
            "repo",
            "--set",
            &podinfo,
            "--set",
            "redis=redis:7.2",
            "--set",
            "app=registry.local:5000/team/app:1.10",
        ],
    );
    run.expect_code(0);
    assert_eq!(run.stderr, "");
    assert_eq!(
        env.read("repo/values.yml"),
        format!(
            "image: ghcr.io/stefanprodan/podinfo:6.5.1@{digest} # {{\"$imagepolicy\": \"podinfo\"}}\n\
             digest: {digest} # {{\"$imagepolicy\": \"podinfo:digest\"}}\n\
             redis: redis:7.2 # {{\"$imagepolicy\": \"redis\"}}\n\
             registry: registry.local:5000/team/app # {{\"$imagepolicy\": \"app:name\"}}\n\
             tag: \"1.10\" # {{\"$imagepolicy\": \"app:tag\"}}\n"
        )
    );
    assert!(run.stdout.ends_with("5 changes in 1 file\n"), "{}", run.stdout);
    run.stdout_has("repo/values.yml:5  app:tag  0.1 -> 1.10\n");
}

#[test]
fn a_file_that_would_not_parse_is_left_untouched() {
    let env = flux_repo();
    let broken = format!("{MARKED_ELSEWHERE}other: [unclosed\n");
    env.write("repo/apps/broken.yaml", &broken);
    let run = patch(&env, &["repo", "--set", SET]);
    run.expect_code(1);
    assert_eq!(
        run.stderr,
        format!(
            "warning: repo/apps/broken.yaml: not valid YAML (unclosed bracket '[' at line 2, column 8); left untouched\n\
             {REDIS_WARNING}"
        )
    );
    assert!(
        run.stdout
            .ends_with("5 changes in 3 files; 1 marker already up to date; 1 file left untouched\n"),
        "{}",
        run.stdout
    );
    assert_eq!(env.read("repo/apps/broken.yaml"), broken);
    // The other files were patched all the same.
    assert_patched(&env);
}

#[test]
fn nothing_to_do_is_success() {
    let env = TestEnv::new();
    env.write("repo/a.yaml", SERVICE);
    let run = patch(&env, &["repo", "--set", SET]);
    run.expect_code(0);
    assert_eq!(run.stdout, "no changes\n");
    assert_eq!(run.stderr, "");
    assert_eq!(env.read("repo/a.yaml"), SERVICE);
}

#[test]
fn current_dir_paths_are_relative() {
    let env = TestEnv::new();
    env.write("a.yaml", MARKED_ELSEWHERE);
    let run = patch(&env, &[".", "--set", SET]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "a.yaml:1  podinfo  ghcr.io/stefanprodan/podinfo:6.5.0 -> ghcr.io/stefanprodan/podinfo:6.5.1\n\
         1 change in 1 file\n"
    );
}

/// Flux sets a marker `NS:NAME` only for the policy NAME of namespace NS
/// (image-automation-controller TestUpdateWithSetters); a `patch` run
/// works in one namespace: `--namespace`, or the one the markers name most.
#[test]
fn namespaced_markers() {
    let env = TestEnv::new();
    let marked = |ns: &str| {
        format!(
            "image: app:1.0.0 # {{\"$imagepolicy\": \"{ns}:app\"}}\ntag: 1.0.0 # {{\"$imagepolicy\": \"{ns}:web:tag\"}}\n"
        )
    };
    env.write("repo/prod.yaml", &marked("prod"));
    env.write(
        "repo/staging.yaml",
        "image: app:1.0.0 # {\"$imagepolicy\": \"staging:app\"}\nown: app:1.0.0 # {\"$imagepolicy\": \"app\"}\n",
    );
    let sets = ["--set", "app=app:2.0.0", "--set", "web=web:2.0.0"];

    // prod names both policies, staging one: prod it is.
    let run = patch(&env, &[&["repo"][..], &sets[..], &["--dry-run"]].concat());
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "repo/prod.yaml:1  prod:app  app:1.0.0 -> app:2.0.0\n\
         repo/prod.yaml:2  prod:web:tag  1.0.0 -> 2.0.0\n\
         repo/staging.yaml:2  app  app:1.0.0 -> app:2.0.0\n\
         dry run: 3 changes in 2 files; nothing written\n"
    );
    assert_eq!(
        run.stderr,
        "warning: repo/staging.yaml: line 1: marker \"staging:app\" names no image policy: \"app\" is in namespace \
         \"prod\", not \"staging\"; not set\n"
    );

    // --namespace decides.
    let run = patch(&env, &[&["repo"][..], &sets[..], &["-n", "staging"]].concat());
    run.expect_code(0);
    assert_eq!(env.read("repo/prod.yaml"), marked("prod"));
    assert_eq!(
        env.read("repo/staging.yaml"),
        "image: app:2.0.0 # {\"$imagepolicy\": \"staging:app\"}\nown: app:2.0.0 # {\"$imagepolicy\": \"app\"}\n"
    );
    assert_eq!(run.stderr.lines().count(), 2, "{}", run.stderr);

    // A tie cannot be decided.
    let run = patch(&env, &["repo", "--set", "app=app:3.0.0"]);
    run.expect_code(2);
    assert_eq!(
        run.stderr,
        "error: the markers name these policies in more than one namespace (prod, staging), equally often\n  \
         help: say which with --namespace NS, as a Flux automation works in one namespace\n"
    );
}

#[test]
fn usage_errors() {
    let env = flux_repo();
    for (args, message) in [
        (
            vec!["repo", "--set", "podinfo=ghcr.io/stefanprodan/podinfo"],
            "error: --set podinfo=ghcr.io/stefanprodan/podinfo: \"ghcr.io/stefanprodan/podinfo\" has no tag\n  \
             help: write --set NAME=IMAGE:TAG[@DIGEST], such as podinfo=ghcr.io/stefanprodan/podinfo:6.5.1\n",
        ),
        (
            vec!["repo", "--set", "localhost:5000/app"],
            "error: --set localhost:5000/app: expected NAME=IMAGE:TAG[@DIGEST]\n  help: write --set \
             NAME=IMAGE:TAG[@DIGEST], such as podinfo=ghcr.io/stefanprodan/podinfo:6.5.1\n",
        ),
        (
            vec!["repo", "--set", "app=localhost:5000/app"],
            "error: --set app=localhost:5000/app: \"localhost:5000/app\" has no tag\n  help: write --set \
             NAME=IMAGE:TAG[@DIGEST], such as podinfo=ghcr.io/stefanprodan/podinfo:6.5.1\n",
        ),
        (
            vec!["repo", "--set", "app=localhost:5000/app@sha256:abcd"],
            "error: --set app=localhost:5000/app@sha256:abcd: \"localhost:5000/app@sha256:abcd\" has no tag; \
             the tag is required even with a digest\n  help: write --set NAME=IMAGE:TAG[@DIGEST], such as \
             podinfo=ghcr.io/stefanprodan/podinfo:6.5.1\n",
        ),
        (
            vec!["repo", "--set", SET, "--set", "podinfo=nginx:1"],
            "error: --set podinfo=… is given more than once\n",
        ),
        (
            vec!["missing", "--set", SET],
            "error: missing is not a directory\n",
        ),
        (
            vec!["repo/apps/podinfo/service.yaml", "--set", SET],
            "error: repo/apps/podinfo/service.yaml is not a directory\n",
        ),
    ] {
        let run = patch(&env, &args);
        run.expect_code(2);
        assert_eq!(run.stderr, message, "{args:?}");
        assert_eq!(run.stdout, "", "{args:?}");
    }
    // Without any --set, clap refuses.
    let run = patch(&env, &["repo"]);
    run.expect_code(2);
    run.stderr_has("--set");
    // Nothing was written by any of these.
    assert_files(&env, DEPLOYMENT, KUSTOMIZATION, HELMRELEASE);
}
