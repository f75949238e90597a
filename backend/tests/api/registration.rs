//! Registration for self-service: passcode re-proof, questions, email, emailed code, completion,
//! re-registration, withdrawal; the code rules (an SMTP outage: `faults::mail_outage`).

use protocol::api::{
    ChallengeIssued, CodeRequest, Profile, ProofRequest, Question, QuestionAnswer, RegistrationPending,
    RegistrationRequest, SelfService,
};

use crate::{
    cards::{sign, Purpose, TestCard},
    helpers::{error_code, TestApp},
    on_both_databases,
    smtp::{code_in, SmtpServer},
};

fn answers(words: [&str; 4]) -> Vec<QuestionAnswer> {
    [3, 7, 11, 19]
        .into_iter()
        .zip(words)
        .map(|(q, a)| QuestionAnswer { question_id: q, answer: a.into() })
        .collect()
}

/// Spawns the app with mail going to a real SMTP server, and a signed-in holder.
async fn signed_in(engine: crate::helpers::Engine) -> (TestApp, SmtpServer, TestCard) {
    let smtp = SmtpServer::start().unwrap();
    let url = smtp.url();
    let app = TestApp::spawn_with(engine, |s| s.smtp_url = Some(url)).await;
    let card = TestCard::new();
    card.issue_to(&app, "600000000001", "Fay Holder", "fay@nhs.net").await;
    assert_eq!(card.sign_in(&app).await.status(), 200);
    (app, smtp, card)
}

async fn prove_passcode(app: &TestApp, card: &TestCard) -> reqwest::Response {
    let issued: ChallengeIssued = app.post("/api/registration/challenge", &()).await.json().await.unwrap();
    let proof = ProofRequest {
        challenge_id: issued.challenge_id,
        signature: card.sign_9a(Purpose::RegistrationProof, &issued.challenge),
    };
    app.post("/api/registration/proof", &proof).await
}

on_both_databases! {
    async fn a_holder_registers_with_passcode_questions_and_the_emailed_code(engine: Engine) {
        let (app, smtp, card) = signed_in(engine).await;
        let catalogue: Vec<Question> = app.get("/api/questions").await.json().await.unwrap();
        assert_eq!(catalogue.len(), 20);

        let request = RegistrationRequest { answers: answers(["Jaws", "Leeds", "Sam", "Blue moon"]), email: "fay@nhs.net".into() };
        assert_eq!(error_code(app.post("/api/registration", &request).await).await, (403, "passcode_required".into()));
        assert_eq!(prove_passcode(&app, &card).await.status(), 204);

        let short = RegistrationRequest { answers: answers(["Jaws", "Leeds", "Sa", "Blue moon"]), email: "fay@nhs.net".into() };
        assert_eq!(error_code(app.post("/api/registration", &short).await).await, (422, "invalid_answers".into()));
        let same = RegistrationRequest { answers: answers(["Jaws", "JAWS ", "Sam", "Blue moon"]), email: "fay@nhs.net".into() };
        assert_eq!(error_code(app.post("/api/registration", &same).await).await, (422, "invalid_answers".into()));
        let bad_email = RegistrationRequest { email: "fay at nhs".into(), ..request.clone() };
        assert_eq!(error_code(app.post("/api/registration", &bad_email).await).await, (422, "invalid_email".into()));

        let response = app.post("/api/registration", &request).await;
        assert_eq!(response.status(), 201);
        let pending: RegistrationPending = response.json().await.unwrap();
        assert_eq!(pending.email, "fay@nhs.net");
        let me: Profile = app.get("/api/me").await.json().await.unwrap();
        assert_eq!(me.self_service, SelfService::NotRegistered);
        assert_eq!(me.pending_registration.as_ref().map(|p| p.email.as_str()), Some("fay@nhs.net"));

        let stored: Vec<String> = sqlx::query_scalar("SELECT answer_hash FROM registration_answers ORDER BY position")
            .fetch_all(app.db.pool()).await.unwrap();
        assert_eq!(stored.len(), 4);
        assert!(stored.iter().all(|h| h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$") && !h.contains("jaws")));

        let mail = smtp.wait_for("fay@nhs.net", "registration code", 1).await.unwrap();
        let code = code_in(&mail).unwrap();
        let wrong = if code == "00000000" { "11111111" } else { "00000000" };
        let response = app.post("/api/registration/confirm", &CodeRequest { code: wrong.into() }).await;
        assert_eq!(error_code(response).await, (400, "code_wrong".into()));
        let response = app.post("/api/registration/confirm", &CodeRequest { code: code.clone() }).await;
        assert_eq!(response.status(), 200);
        let profile: Profile = response.json().await.unwrap();
        assert!(matches!(profile.self_service, SelfService::Registered { ref email, .. } if email == "fay@nhs.net"));
        assert_eq!(profile.pending_registration, None);
        smtp.wait_for("fay@nhs.net", "You are registered", 1).await.unwrap();
        // Delivered mail does not keep its code in the database.
        let kept: Vec<String> = sqlx::query_scalar("SELECT body FROM mail_outbox WHERE sent_at IS NOT NULL")
            .fetch_all(app.db.pool())
            .await
            .unwrap();
        assert!(!kept.is_empty() && kept.iter().all(|b| !b.contains(&code)), "{kept:?}");
        let reused = app.post("/api/registration/confirm", &CodeRequest { code }).await;
        assert_eq!(error_code(reused).await, (409, "no_pending_registration".into()));

        // Re-registering replaces the registration only once its own code is entered (a minute
        // later: codes are not sent more often than that).
        sqlx::query("UPDATE one_time_codes SET created_at = created_at - 61").execute(app.db.pool()).await.unwrap();
        let again = RegistrationRequest { answers: answers(["Alien", "York", "Joe", "Red sky"]), email: "fay.h@nhs.net".into() };
        assert_eq!(app.post("/api/registration", &again).await.status(), 201);
        let me: Profile = app.get("/api/me").await.json().await.unwrap();
        assert!(matches!(me.self_service, SelfService::Registered { ref email, .. } if email == "fay@nhs.net"));
        let code = code_in(&smtp.wait_for("fay.h@nhs.net", "registration code", 1).await.unwrap()).unwrap();
        let profile: Profile = app.post("/api/registration/confirm", &CodeRequest { code }).await.json().await.unwrap();
        assert!(matches!(profile.self_service, SelfService::Registered { ref email, .. } if email == "fay.h@nhs.net"));
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM registration_answers").fetch_one(app.db.pool()).await.unwrap();
        assert_eq!(count, 4, "the old answers are gone");

        let withdraw = app.client.delete(format!("{}/api/registration", app.address)).send().await.unwrap();
        assert_eq!(withdraw.status(), 204);
        let me: Profile = app.get("/api/me").await.json().await.unwrap();
        assert_eq!(me.self_service, SelfService::NotRegistered);
        assert_eq!(backend::audit::first_broken_row(&app.db).await.unwrap(), None);
    }
}

on_both_databases! {
    async fn codes_expire_lock_after_five_wrong_tries_and_resend_only_after_a_minute(engine: Engine) {
        let (app, smtp, card) = signed_in(engine).await;
        assert_eq!(prove_passcode(&app, &card).await.status(), 204);
        let request = RegistrationRequest { answers: answers(["Jaws", "Leeds", "Sam", "Blue moon"]), email: "fay@nhs.net".into() };
        assert_eq!(app.post("/api/registration", &request).await.status(), 201);
        assert_eq!(error_code(app.post("/api/registration/resend", &()).await).await, (429, "code_recently_sent".into()));

        let code = code_in(&smtp.wait_for("fay@nhs.net", "registration code", 1).await.unwrap()).unwrap();
        let wrong = if code == "00000000" { "11111111" } else { "00000000" };
        for _ in 0..4 {
            let r = app.post("/api/registration/confirm", &CodeRequest { code: wrong.into() }).await;
            assert_eq!(error_code(r).await, (400, "code_wrong".into()));
        }
        let r = app.post("/api/registration/confirm", &CodeRequest { code: wrong.into() }).await;
        assert_eq!(error_code(r).await, (400, "code_locked".into()), "the fifth wrong try uses it up");
        let r = app.post("/api/registration/confirm", &CodeRequest { code: code.clone() }).await;
        assert_eq!(error_code(r).await, (400, "code_locked".into()), "even the right code is refused now");

        // After the cooldown a new code replaces the old one; an expired code is refused.
        sqlx::query("UPDATE one_time_codes SET created_at = created_at - 61").execute(app.db.pool()).await.unwrap();
        assert_eq!(app.post("/api/registration/resend", &()).await.status(), 200);
        let fresh = code_in(&smtp.wait_for("fay@nhs.net", "registration code", 2).await.unwrap()).unwrap();
        sqlx::query("UPDATE one_time_codes SET expires_at = 0 WHERE used_at IS NULL").execute(app.db.pool()).await.unwrap();
        let r = app.post("/api/registration/confirm", &CodeRequest { code: fresh }).await;
        assert_eq!(error_code(r).await, (400, "code_expired".into()));
        let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT code_hash FROM one_time_codes").fetch_all(app.db.pool()).await.unwrap();
        assert!(stored.iter().all(|h| h.len() == 32 && h != code.as_bytes()), "only HMACs are stored");
    }
}

on_both_databases! {
    async fn the_passcode_proof_needs_this_sessions_card_and_challenge(engine: Engine) {
        let (app, _smtp, card) = signed_in(engine).await;
        let issued: ChallengeIssued = app.post("/api/registration/challenge", &()).await.json().await.unwrap();
        let with_9e = ProofRequest { challenge_id: issued.challenge_id, signature: sign(&card.card_auth, Purpose::RegistrationProof, &issued.challenge) };
        assert_eq!(error_code(app.post("/api/registration/proof", &with_9e).await).await, (401, "signature_invalid".into()));

        // A sign-in challenge cannot stand in for a re-proof.
        let sign_in: ChallengeIssued = app.post("/api/sign-in/challenge", &()).await.json().await.unwrap();
        let wrong_purpose = ProofRequest { challenge_id: sign_in.challenge_id, signature: card.sign_9a(Purpose::RegistrationProof, &sign_in.challenge) };
        assert_eq!(error_code(app.post("/api/registration/proof", &wrong_purpose).await).await, (400, "challenge_expired".into()));

        // Nor can another session's challenge.
        let other = TestApp::browser_like_client(&app.address);
        let theirs: ChallengeIssued = app.post("/api/registration/challenge", &()).await.json().await.unwrap();
        let proof = ProofRequest { challenge_id: theirs.challenge_id, signature: card.sign_9a(Purpose::RegistrationProof, &theirs.challenge) };
        let response = other.post(format!("{}/api/registration/proof", app.address)).json(&proof).send().await.unwrap();
        assert_eq!(response.status(), 401, "no session at all");
    }
}

on_both_databases! {
    async fn registering_again_within_the_mail_limits_goes_on_with_the_code_sent_to_that_address(engine: Engine) {
        let (app, smtp, card) = signed_in(engine).await;
        assert_eq!(prove_passcode(&app, &card).await.status(), 204);
        let request = RegistrationRequest { answers: answers(["Jaws", "Leeds", "Sam", "Blue moon"]), email: "fay@nhs.net".into() };
        let first: RegistrationPending = app.post("/api/registration", &request).await.json().await.unwrap();
        assert!(!first.earlier);
        let code = code_in(&smtp.wait_for("fay@nhs.net", "registration code", 1).await.unwrap()).unwrap();
        // Back a step and on again, answers changed, within the minute: no new code may be sent,
        // and the one just sent to the same address completes the new registration.
        let changed = RegistrationRequest { answers: answers(["Alien", "York", "Max", "Red sky"]), email: "fay@nhs.net".into() };
        let again = app.post("/api/registration", &changed).await;
        assert_eq!(again.status(), 201);
        let again: RegistrationPending = again.json().await.unwrap();
        assert!(again.earlier && again.sent_at == first.sent_at, "{again:?}");
        // To another address, the earlier code proves nothing: refused, for sending only.
        let elsewhere = RegistrationRequest { email: "fay.other@nhs.net".into(), ..changed.clone() };
        assert_eq!(error_code(app.post("/api/registration", &elsewhere).await).await, (429, "code_recently_sent".into()));
        // That refusal changed nothing: the registration waiting is still the one for fay@.
        let pending: String = sqlx::query_scalar("SELECT email FROM registrations WHERE status = 'pending'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert_eq!(pending, "fay@nhs.net");
        let profile: Profile = app.post("/api/registration/confirm", &CodeRequest { code }).await.json().await.unwrap();
        assert!(matches!(profile.self_service, SelfService::Registered { ref email, .. } if email == "fay@nhs.net"));
    }
}

on_both_databases! {
    async fn the_same_registration_sent_many_times_at_once_is_taken_one_at_a_time(engine: Engine) {
        // A double click, or a page retrying: each submission replaces the one before it.
        let (app, smtp, card) = signed_in(engine).await;
        assert_eq!(prove_passcode(&app, &card).await.status(), 204);
        let request = RegistrationRequest { answers: answers(["Jaws", "Leeds", "Sam", "Blue moon"]), email: "fay@nhs.net".into() };
        let app = std::sync::Arc::new(app);
        let sent: Vec<_> = (0..16)
            .map(|_| {
                let (app, request) = (app.clone(), request.clone());
                tokio::spawn(async move { app.post("/api/registration", &request).await.status().as_u16() })
            })
            .collect();
        let mut statuses = Vec::new();
        for task in sent {
            statuses.push(task.await.unwrap());
        }
        assert!(statuses.iter().all(|s| *s == 201), "every one answered as a registration: {statuses:?}");
        let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM registrations WHERE status = 'pending'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert_eq!(pending, 1, "one registration waits for its code");
        // The one code sent completes it.
        let code = code_in(&smtp.wait_for("fay@nhs.net", "registration code", 1).await.unwrap()).unwrap();
        let profile: Profile = app.post("/api/registration/confirm", &CodeRequest { code }).await.json().await.unwrap();
        assert!(matches!(profile.self_service, SelfService::Registered { ref email, .. } if email == "fay@nhs.net"));
    }
}
