//! The real `backend serve` logging as JSON at debug level through a holder's whole
//! registration and unlock: every line is a JSON object, a request's lines carry its id (the one
//! in its `x-request-id` header, or a trusted proxy's), and no answer, code or session token
//! appears anywhere in the log.

use std::{
    io::{BufRead, BufReader, Read},
    process::Stdio,
};

use protocol::api::{
    ChallengeIssued, CodeRequest, ProofRequest, QuestionAnswer, RegistrationRequest, UnlockQuestions,
};

use crate::{
    cards::Purpose,
    helpers::TestApp,
    on_both_databases,
    smtp::code_in,
    unlock::{answers_for, holder, start, ANSWERS},
};

/// `backend serve` on the app's database and data folder; its URL, the process, and its log
/// (read all along, so that a full pipe never stalls it).
pub(crate) fn serve_as_child(
    app: &TestApp,
    smtp_url: &str,
) -> (String, std::process::Child, std::thread::JoinHandle<String>) {
    let mut command = app.backend_command();
    command.arg("serve");
    let mut child = command
        .env("SELFSERVICE_DIST_DIR", app.settings.data_dir.join("no-dist"))
        .env("SELFSERVICE_LISTEN", "127.0.0.1:0")
        .env("SELFSERVICE_SMTP_URL", smtp_url)
        .env("SELFSERVICE_LOG_FORMAT", "json")
        .env("SELFSERVICE_REQUEST_ID_HEADER", "x-request-id")
        .env("SELFSERVICE_RATE_LIMIT_BURST", "10000")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut log = String::new();
        let _ = stderr.read_to_string(&mut log);
        log
    });
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_owned();
    (url, child, log)
}

on_both_databases! {
    async fn json_logs_carry_request_ids_and_no_secret(engine: Engine) {
        let (app, smtp, card) = holder(engine, false).await;
        let (url, mut child, log) = serve_as_child(&app, &smtp.url());
        let served = app.through(&url);

        // Sign in, register with four answers and the emailed code, then unlock up to the code.
        let signed_in = card.sign_in(&served).await;
        assert_eq!(signed_in.status(), 200);
        let session = signed_in.cookies().map(|c| c.value().to_owned()).next().unwrap();
        let issued: ChallengeIssued = served.post("/api/registration/challenge", &()).await.json().await.unwrap();
        let proof = ProofRequest { challenge_id: issued.challenge_id, signature: card.sign_9a(Purpose::RegistrationProof, &issued.challenge) };
        assert_eq!(served.post("/api/registration/proof", &proof).await.status(), 204);
        let answers = ANSWERS.iter().map(|(q, a)| QuestionAnswer { question_id: *q, answer: (*a).into() }).collect();
        let registered = served.post("/api/registration", &RegistrationRequest { answers, email: "hal@nhs.net".into() }).await;
        assert_eq!(registered.status(), 201);
        let registration_code = code_in(&smtp.wait_for("hal@nhs.net", "registration code", 1).await.unwrap()).unwrap();
        assert_eq!(served.post("/api/registration/confirm", &CodeRequest { code: registration_code.clone() }).await.status(), 200);
        let questions: UnlockQuestions = start(&served, &card).await.json().await.unwrap();
        assert_eq!(served.post("/api/unlock/answers", &answers_for(&questions, true)).await.status(), 200);
        let unlock_code = code_in(&smtp.wait_for("hal@nhs.net", "unlock code", 1).await.unwrap()).unwrap();

        // An id of the response, and one a trusted proxy gave.
        let health = served.get("/api/health").await;
        let generated = health.headers()["x-request-id"].to_str().unwrap().to_owned();
        let proxied = served.client.get(format!("{url}/api/health")).header("x-request-id", "edge-7f3a.1").send().await.unwrap();
        assert_eq!(proxied.headers()["x-request-id"], "edge-7f3a.1");

        child.kill().unwrap();
        child.wait().unwrap();
        let log = log.join().unwrap();
        let lines: Vec<serde_json::Value> = log
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
            .collect();
        assert!(lines.len() > 20, "debug logging of a whole journey: {}", lines.len());
        let ids: Vec<&str> = lines.iter().filter_map(|l| l["span"]["request_id"].as_str()).collect();
        assert!(ids.contains(&generated.as_str()) && ids.contains(&"edge-7f3a.1"), "{ids:?}");
        let requests = lines.iter().filter(|l| l["fields"]["message"].as_str().is_some_and(|m| m.contains("finished processing request")));
        assert!(requests.clone().count() >= 8 && requests.clone().all(|l| l["span"]["request_id"].is_string()), "every request's trace has its id");
        for secret in ANSWERS.iter().map(|(_, a)| *a).chain([registration_code.as_str(), unlock_code.as_str(), session.as_str()]) {
            assert!(!log.contains(secret), "{secret:?} is in the log");
        }
    }
}
