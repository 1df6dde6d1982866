//! The kustomization loader and build on any text: the bytes are the
//! `kustomization.yaml` of an overlay beside a small base (a Deployment, a
//! Service, an env file for generators), and are also parsed as YAML
//! documents and written back. A build returns objects or an error, never
//! panics, and never reads outside the root; whatever parses is written
//! back without error.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use mooring::kustomize;

static ROOT: LazyLock<(tempfile::TempDir, PathBuf)> = LazyLock::new(|| {
    let outer = tempfile::tempdir().expect("temp dir");
    // The root is one level down, so a build that escaped it would find
    // `secret.txt` (and the build's output would show its content).
    let root = outer.path().join("root");
    let files = [
        ("../secret.txt", "outside-the-root\n"),
        (
            "base/kustomization.yaml",
            "resources:\n- deploy.yaml\n- svc.yaml\nconfigMapGenerator:\n- name: env\n  envs: [vars.env]\n",
        ),
        (
            "base/deploy.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: ghcr.io/acme/app:1.0.0\n        envFrom:\n        - configMapRef: {name: env}\n",
        ),
        (
            "base/svc.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: app\nspec:\n  selector: {app: app}\n  ports:\n  - port: 80\n",
        ),
        ("base/vars.env", "A=1\nB=two\n"),
        (
            "overlay/patch.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 3\n",
        ),
    ];
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    (outer, root)
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let root = &ROOT.1;
    if std::fs::write(root.join("overlay/kustomization.yaml"), text).is_err() {
        return;
    }
    match kustomize::build(root, "overlay") {
        Ok(build) => {
            let out = kustomize::to_yaml(&build.objects);
            assert!(!out.contains("outside-the-root"), "a build read outside its root");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Ok(docs) = kustomize::yaml::parse_documents(text) {
        for node in docs.iter().filter_map(|d| d.node.as_ref()) {
            let mut out = String::new();
            let _ = kustomize::yaml::emit::emit_document(node, &mut out);
        }
    }
});
