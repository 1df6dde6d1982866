//! TLS end to end, each server with a CA made for the test: git over
//! HTTPS (`git http-backend` behind a rustls front), an OCI registry
//! serving HTTPS itself (docker-registry's own TLS), the test Kubernetes
//! API server in its TLS mode, and a notification endpoint. With the CA
//! (`ca-file`, or the kubeconfig's `certificate-authority-data`) each
//! works; without it each fails with the TLS error, and nothing falls
//! back to plain HTTP or skips verification.

use std::time::Duration;

use crate::apiserver::ApiServer;
use crate::gitserver::{HttpGit, Repo};
use crate::registry::{Entry, Registry, tarball};
use crate::support::{SourceFixture, TestEnv};
use crate::tls::{Certs, TlsFront};

const CM: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: over-tls\n  namespace: default\ndata:\n  a: \"1\"\n";

#[test]
fn git_over_https_trusts_the_ca_file_and_nothing_else() {
    let certs = Certs::new();
    let f = SourceFixture::new();
    let repo = Repo::new(f.path());
    repo.write(&[("cm.yaml", CM)]);
    repo.commit("first");
    repo.publish();
    let http = HttpGit::start(f.path(), &repo.root, Some(("bot", "t0ken-over-tls")));
    let front = TlsFront::start(&certs, http.port);
    let url = format!("https://127.0.0.1:{}/repo.git", front.port);
    f.env.write("token", "t0ken-over-tls\n");
    let auth = format!(
        "auth {{ username \"bot\"; password-file \"{}\"; }}",
        f.path().join("token").display()
    );

    // Without the CA: refused, with the reason.
    f.configure(&format!("git \"{url}\"\ntimeout \"10s\"\n{auth}"));
    let (run, error) = f.fails();
    assert!(
        error.to_ascii_lowercase().contains("certificate"),
        "{error}\n{}",
        run.stderr
    );
    assert!(!run.stdout.contains("t0ken-over-tls") && !run.stderr.contains("t0ken-over-tls"));

    // With it: fetched (credentials and all).
    f.configure(&format!(
        "git \"{url}\"\ntimeout \"10s\"\n{auth}\nca-file \"{}\"",
        certs.ca.display()
    ));
    let fetched = f.ok();
    assert!(fetched.revision.starts_with("main@sha1:"), "{}", fetched.revision);
    assert_eq!(
        std::fs::read_to_string(fetched.dir.join("cm.yaml")).expect("read"),
        CM
    );

    // A CA file that holds no certificate is a clear error.
    f.env.write("not-a-ca.pem", "hello\n");
    f.configure(&format!(
        "git \"{url}\"\ntimeout \"10s\"\n{auth}\nca-file \"{}\"",
        f.path().join("not-a-ca.pem").display()
    ));
    let (_, error) = f.fails();
    assert!(
        error.contains("not-a-ca.pem holds no `-----BEGIN CERTIFICATE-----` block"),
        "{error}"
    );
}

#[test]
fn oci_sources_and_images_over_https_with_the_ca_file() {
    let certs = Certs::new();
    let registry = Registry::with_tls(&certs);
    registry.push("app", "1.2.0", &tarball(&[Entry::File("cm.yaml", CM)]));
    let f = SourceFixture::new();
    f.configure(&format!(
        "oci \"{}\"\ntag \"1.2.0\"\nca-file \"{}\"",
        registry.repo("app"),
        certs.ca.display()
    ));
    let fetched = f.ok();
    assert!(
        fetched.revision.starts_with("1.2.0@sha256:"),
        "{}",
        fetched.revision
    );

    f.configure(&format!("oci \"{}\"\ntag \"1.2.0\"", registry.repo("app")));
    let (_, error) = f.fails();
    assert!(error.to_ascii_lowercase().contains("certificate"), "{error}");

    // An image policy on the same registry.
    let env = TestEnv::new();
    let image = |ca: &str| {
        format!(
            "agent {{ state-dir \"state\"; }}\nimage \"app\" {{\n    repository \"{}\"\n    semver \"*\"\n    {ca}\n}}\n",
            registry.repo("app")
        )
    };
    env.write(
        "mooring.kdl",
        &image(&format!("ca-file \"{}\"", certs.ca.display())),
    );
    let run = env.run(&["images", "-c", "mooring.kdl", "--format", "json"]);
    run.expect_code(0);
    assert!(run.stdout.contains("1.2.0"), "{}", run.stdout);
    env.write("mooring.kdl", &image(""));
    let run = env.run(&["images", "-c", "mooring.kdl", "--format", "json"]);
    run.expect_code(1);
    assert!(
        run.stdout.to_ascii_lowercase().contains("certificate"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_kubernetes_api_over_tls_with_the_kubeconfig_ca_or_a_cluster_ca_file() {
    let certs = Certs::new();
    let mut server = ApiServer::start();
    server.serve_tls(&certs);
    let env = TestEnv::new();
    let repo = Repo::new(&env.path().join("git"));
    repo.write(&[("app/cm.yaml", CM)]);
    repo.commit("first");
    repo.publish();
    let config = |cluster: &str| {
        format!(
            "agent {{ state-dir \"state\"; }}\ncluster \"test\" {{ {cluster} }}\n\
             source \"repo\" {{ git \"{}\"; }}\napp \"tls\" {{ source \"repo\"; path \"app\"; cluster \"test\"; }}\n",
            repo.file_url()
        )
    };
    let once = |env: &TestEnv| env.run(&["once", "-v", "app/tls", "-c", "mooring.kdl", "--format", "json"]);

    // The kubeconfig carries the CA (certificate-authority-data).
    server.kubeconfig(&env.path().join("with-ca"));
    env.write("mooring.kdl", &config("kubeconfig \"with-ca\";"));
    once(&env).expect_code(0);
    let cm = server.object("v1", "ConfigMap", Some("default"), "over-tls");
    assert_eq!(cm.expect("applied over TLS")["data"]["a"], "1");

    // A kubeconfig without it: refused…
    server.kubeconfig_at(&env.path().join("no-ca"), &server.url(), false);
    env.write("mooring.kdl", &config("kubeconfig \"no-ca\";"));
    let run = once(&env);
    run.expect_code(1);
    assert!(
        run.stdout.to_ascii_lowercase().contains("certificate"),
        "{}",
        run.stdout
    );
    // …unless the cluster's ca-file names it.
    env.write(
        "mooring.kdl",
        &config(&format!(
            "kubeconfig \"no-ca\"; ca-file \"{}\";",
            certs.ca.display()
        )),
    );
    once(&env).expect_code(0);
}

#[test]
fn notifications_to_https_trust_the_ca_file() {
    use crate::recorder::{HttpRecorder, Reply};
    let certs = Certs::new();
    let endpoint = HttpRecorder::start(|_, _| Reply::status(200));
    let front = TlsFront::start(&certs, endpoint.port);
    let f = crate::agent::Fixture::new();
    f.env
        .write("url", &format!("https://127.0.0.1:{}/events\n", front.port));
    let notify = format!(
        "notify \"tls\" {{\n    url-file \"url\"\n    on \"apply\"\n    ca-file \"{}\"\n}}\n\
         notify \"no-ca\" {{\n    url-file \"url\"\n    on \"apply\"\n    timeout \"2s\"\n}}\n",
        certs.ca.display()
    );
    let agent = f.start(&format!("{}{notify}", crate::agent::app("web", "web")));
    let posted = endpoint.wait(Duration::from_secs(20), "the apply posted over TLS", |all| {
        !all.is_empty()
    });
    assert_eq!(posted[0].json()["metadata"]["event"], "apply");
    // The other notification does not trust the CA: its post fails for good
    // (a TLS error is not retried into success), and nothing else arrives.
    let s = agent.wait(Duration::from_secs(30), "the untrusted post given up", |s| {
        s["notifications"]
            .as_array()
            .is_some_and(|n| n.iter().any(|n| n["name"] == "no-ca" && n["failed"] == 1))
    });
    assert!(s.to_string().to_ascii_lowercase().contains("certificate"), "{s}");
    assert_eq!(endpoint.requests().len(), 1);
}
