use std::{path::Path, process::Command, time::Duration};

use semsearch::config::{ServeArgs, Settings};

use crate::helpers::{seed_corpus, spawn_app_with, TestRedis};

/// A CA and a server certificate for 127.0.0.1, made with the openssl CLI.
fn make_certs(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is installed");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=semsearch test CA"],
    ]
    .concat());
    run(&[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]].concat());
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write extensions");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
}

/// Settings reaching `redis` over TLS on `port`, trusting `ca` if given.
fn tls_settings(port: u16, ca: Option<&Path>) -> Settings {
    let mut args = ServeArgs::defaults();
    args.redis.url = Some(format!("rediss://127.0.0.1:{port}/").parse().expect("infallible"));
    args.redis.tls_ca_file = ca.map(Path::to_path_buf);
    args.bind = ([127, 0, 0, 1], 0).into();
    let mut settings = Settings::from_args(&args).expect("valid TLS settings");
    settings.retry_max = Duration::from_millis(200);
    settings
}

#[tokio::test]
async fn rediss_loads_through_tls_and_refuses_an_untrusted_certificate() {
    // Arrange: plain unix socket for seeding, TLS on a TCP port for semsearch.
    let certs = tempfile::tempdir().expect("temp dir");
    make_certs(certs.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let mut redis = TestRedis::start();
    let file = |name: &str| certs.path().join(name).to_string_lossy().into_owned();
    let port_s = port.to_string();
    let (cert, key, ca) = (file("server.crt"), file("server.key"), file("ca.crt"));
    redis.restart_with(&[
        "--tls-port",
        &port_s,
        "--bind",
        "127.0.0.1",
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
    ]);
    let docs = seed_corpus(&mut redis.conn().await).await;

    // Act
    let trusted = spawn_app_with(tls_settings(port, Some(&certs.path().join("ca.crt")))).await;
    trusted.wait_ready().await;
    let untrusted = spawn_app_with(tls_settings(port, None)).await;
    let mut refused = serde_json::Value::Null;
    // Bounded wait until the first connection attempt has failed and says why.
    for _ in 0..500 {
        let res = untrusted.get("/readyz").await;
        assert_eq!(res.status(), 503, "a certificate from an unknown CA must never load");
        refused = res.json().await.expect("problem JSON");
        if !refused["detail"].as_str().is_some_and(|d| d.ends_with("loading embeddings from Redis")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Assert
    assert_eq!(trusted.stats().await["documents"], docs);
    let detail = refused["detail"].as_str().unwrap_or_default().to_ascii_lowercase();
    assert!(detail.contains("certificate") || detail.contains("issuer"), "refused for the certificate: {refused}");
}
