//! Mail to the organisation's relay over TLS, its certificate checked: a real aiosmtpd with a
//! certificate from a CA the test makes (`openssl`), by `smtps://` and by required STARTTLS.

use std::{path::Path, process::Command, time::Duration};

use crate::{
    helpers::{Engine, TestApp},
    smtp::{SmtpServer, SmtpTls},
};

/// A CA and a certificate it signs for `localhost`: (ca.pem, cert.pem, key.pem) in `dir`.
fn relay_certificate(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=Test relay CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "relay.csr",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n")
        .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "relay.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
}

/// Queues one message straight into the outbox (a plain body, as rows from before sealing hold).
async fn send_one(app: &TestApp) {
    let mut tx = app.db.begin_write().await.unwrap();
    sqlx::query("INSERT INTO mail_outbox (to_addr, subject, body, created_at, attempts, next_attempt_at) VALUES ('fay@nhs.net', 'Test over TLS', 'hello', 0, 0, 0)")
        .execute(&mut **tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn outcome(app: &TestApp) -> (Option<i64>, Option<String>) {
    for _ in 0..100 {
        let row: (Option<i64>, Option<String>, i64) =
            sqlx::query_as("SELECT sent_at, last_error, attempts FROM mail_outbox")
                .fetch_one(app.db.pool())
                .await
                .unwrap();
        if row.0.is_some() || row.1.is_some() {
            return (row.0, row.1);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the outbox never tried the message");
}

async fn app_for(url: String, ca: Option<&Path>) -> TestApp {
    let ca = ca.map(Path::to_path_buf);
    TestApp::spawn_with(Engine::Sqlite, move |s| {
        s.smtp_url = Some(url);
        s.smtp_ca_file = ca;
    })
    .await
}

#[tokio::test]
async fn smtps_to_a_relay_whose_certificate_chains_to_the_configured_ca_delivers() {
    let dir = tempfile::tempdir().unwrap();
    relay_certificate(dir.path());
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let relay = SmtpServer::start_with(Some(SmtpTls::Implicit { cert: &cert, key: &key })).unwrap();
    let app = app_for(format!("smtps://localhost:{}", relay.port), Some(&dir.path().join("ca.pem"))).await;
    send_one(&app).await;
    let (sent, error) = outcome(&app).await;
    assert!(sent.is_some(), "{error:?}");
    assert!(relay.wait_for("fay@nhs.net", "Test over TLS", 1).await.is_ok());
}

#[tokio::test]
async fn a_relay_certificate_from_an_unknown_ca_is_refused_and_the_message_waits() {
    let dir = tempfile::tempdir().unwrap();
    relay_certificate(dir.path());
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let relay = SmtpServer::start_with(Some(SmtpTls::Implicit { cert: &cert, key: &key })).unwrap();
    // No smtp_ca_file: only the public roots, which did not sign the test relay's certificate.
    let app = app_for(format!("smtps://localhost:{}", relay.port), None).await;
    send_one(&app).await;
    let (sent, error) = outcome(&app).await;
    assert_eq!(sent, None);
    assert!(error.as_deref().is_some_and(|e| e.to_lowercase().contains("certificate")), "{error:?}");
    assert!(relay.messages().is_empty());
}

#[tokio::test]
async fn starttls_is_used_when_asked_and_a_plain_client_is_refused_by_a_relay_that_requires_it() {
    let dir = tempfile::tempdir().unwrap();
    relay_certificate(dir.path());
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let relay = SmtpServer::start_with(Some(SmtpTls::StartTls { cert: &cert, key: &key })).unwrap();
    let app =
        app_for(format!("smtp+starttls://localhost:{}", relay.port), Some(&dir.path().join("ca.pem"))).await;
    send_one(&app).await;
    let (sent, error) = outcome(&app).await;
    assert!(sent.is_some(), "{error:?}");

    let plain = app_for(format!("smtp://localhost:{}", relay.port), None).await;
    send_one(&plain).await;
    let (sent, _) = outcome(&plain).await;
    assert_eq!(sent, None, "the relay takes no mail before STARTTLS");
}

#[tokio::test]
async fn a_relay_that_requires_auth_after_starttls_takes_mail_with_the_right_password_only() {
    let dir = tempfile::tempdir().unwrap();
    relay_certificate(dir.path());
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let relay = SmtpServer::start_authenticating(&cert, &key, "selfservice", "s3cret-relay-pass").unwrap();
    let ca = dir.path().join("ca.pem");
    let app =
        app_for(format!("smtp+starttls://selfservice:s3cret-relay-pass@localhost:{}", relay.port), Some(&ca))
            .await;
    send_one(&app).await;
    let (sent, error) = outcome(&app).await;
    assert!(sent.is_some(), "{error:?}");
    assert!(relay.wait_for("fay@nhs.net", "Test over TLS", 1).await.is_ok());

    let wrong =
        app_for(format!("smtp+starttls://selfservice:guess@localhost:{}", relay.port), Some(&ca)).await;
    send_one(&wrong).await;
    let (sent, error) = outcome(&wrong).await;
    assert_eq!(sent, None, "a wrong password is refused");
    assert!(error.is_some());
}
