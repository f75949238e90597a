//! Sign-in with the card, the session cookie, `GET /api/me`, sign-out, and the refusals.

use protocol::api::{ChallengeIssued, Profile, SelfService, SignInRequest};

use crate::{
    cards::{sign, Purpose, TestCard},
    helpers::{error_code, TestApp},
    on_both_databases,
};

on_both_databases! {
    async fn the_cards_signature_opens_a_session_that_shows_the_profile_until_sign_out(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        let card = TestCard::new();
        card.issue_to(&app, "555000111222", "Ada Holder", "ada@nhs.net").await;
        assert_eq!(app.get("/api/me").await.status(), 401, "no session yet");

        let response = card.sign_in(&app).await;
        assert_eq!(response.status(), 200);
        let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
        assert!(!cookie.contains("Secure"), "plain http in tests: {cookie}");
        let profile: Profile = response.json().await.unwrap();
        assert_eq!((profile.name.as_str(), profile.user_id.as_str()), ("Ada Holder", "555000111222"));
        assert_eq!(profile.signed_in_with, card.guid);
        assert_eq!(profile.cards.len(), 1);
        assert_eq!(profile.self_service, SelfService::NotRegistered);

        let me: Profile = app.get("/api/me").await.json().await.unwrap();
        assert_eq!(me, profile);
        // Only a hash of the token is stored.
        let token = cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned();
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE token_hash = $1")
            .bind(token.as_bytes().to_vec())
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert_eq!(stored, 0);

        assert_eq!(app.post("/api/sign-out", &()).await.status(), 204);
        assert_eq!(app.get("/api/me").await.status(), 401);
    }
}

on_both_databases! {
    async fn a_challenge_works_once_and_not_after_it_expires(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        let card = TestCard::new();
        card.issue_to(&app, "u1", "Ben Holder", "ben@nhs.net").await;
        let issued: ChallengeIssued = app.post("/api/sign-in/challenge", &()).await.json().await.unwrap();
        let request = SignInRequest {
            challenge_id: issued.challenge_id.clone(),
            guid: card.guid.clone(),
            signature: card.sign_9a(Purpose::SignIn, &issued.challenge),
        };
        assert_eq!(app.post("/api/sign-in", &request).await.status(), 200);
        assert_eq!(error_code(app.post("/api/sign-in", &request).await).await, (400, "challenge_expired".into()));

        let issued: ChallengeIssued = app.post("/api/sign-in/challenge", &()).await.json().await.unwrap();
        sqlx::query("UPDATE challenges SET expires_at = 0").execute(app.db.pool()).await.unwrap();
        let late = SignInRequest {
            challenge_id: issued.challenge_id,
            guid: card.guid.clone(),
            signature: card.sign_9a(Purpose::SignIn, &issued.challenge),
        };
        assert_eq!(error_code(app.post("/api/sign-in", &late).await).await, (400, "challenge_expired".into()));
    }
}

on_both_databases! {
    async fn unknown_cards_wrong_keys_and_suspended_cards_are_refused(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        let card = TestCard::new();
        card.issue_to(&app, "u2", "Cat Holder", "cat@nhs.net").await;

        let stranger = TestCard::new();
        assert_eq!(error_code(stranger.sign_in(&app).await).await, (403, "card_not_recognised".into()));

        let issued: ChallengeIssued = app.post("/api/sign-in/challenge", &()).await.json().await.unwrap();
        let forged = SignInRequest {
            challenge_id: issued.challenge_id,
            guid: card.guid.clone(),
            signature: sign(&card.card_auth, Purpose::SignIn, &issued.challenge), // 9E, not 9A
        };
        assert_eq!(error_code(app.post("/api/sign-in", &forged).await).await, (401, "signature_invalid".into()));

        let garbage = serde_json::json!({"challenge_id": "x", "guid": card.guid, "signature": "%%%"});
        assert_eq!(error_code(app.post("/api/sign-in", &garbage).await).await, (400, "invalid_request".into()));
        let missing = serde_json::json!({"guid": card.guid});
        assert_eq!(error_code(app.post("/api/sign-in", &missing).await).await, (400, "invalid_json".into()));

        sqlx::query("UPDATE cards SET status = 'suspended'").execute(app.db.pool()).await.unwrap();
        assert_eq!(error_code(card.sign_in(&app).await).await, (403, "card_not_active".into()));
        assert_eq!(app.get("/api/me").await.status(), 401);
    }
}

on_both_databases! {
    async fn idle_and_old_sessions_end(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        let card = TestCard::new();
        card.issue_to(&app, "u3", "Dee Holder", "dee@nhs.net").await;
        assert_eq!(card.sign_in(&app).await.status(), 200);
        assert_eq!(app.get("/api/me").await.status(), 200);
        let idle = backend::time::now_unix() - backend::session::IDLE_SECONDS - 1;
        sqlx::query("UPDATE sessions SET last_seen_at = $1").bind(idle).execute(app.db.pool()).await.unwrap();
        assert_eq!(app.get("/api/me").await.status(), 401);

        assert_eq!(card.sign_in(&app).await.status(), 200);
        sqlx::query("UPDATE sessions SET expires_at = 1").execute(app.db.pool()).await.unwrap();
        assert_eq!(app.get("/api/me").await.status(), 401);
    }
}

on_both_databases! {
    async fn state_changes_from_another_site_are_refused(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        let plain = reqwest::Client::new();
        let url = format!("{}/api/sign-in/challenge", app.address);
        let no_origin = plain.post(&url).json(&()).send().await.unwrap();
        assert_eq!(error_code(no_origin).await, (403, "cross_site".into()));
        let foreign = plain.post(&url).header("Origin", "https://evil.example").json(&()).send().await.unwrap();
        assert_eq!(error_code(foreign).await, (403, "cross_site".into()));
        let fetch_metadata = plain.post(&url).header("Sec-Fetch-Site", "same-origin").json(&()).send().await.unwrap();
        assert_eq!(fetch_metadata.status(), 200);
    }
}

on_both_databases! {
    async fn many_simultaneous_sign_ins_all_succeed(engine: Engine) {
        let app = std::sync::Arc::new(TestApp::spawn(engine).await);
        let card = std::sync::Arc::new(TestCard::new());
        card.issue_to(&app, "u4", "Gil Holder", "gil@nhs.net").await;
        // More than either pool has connections: no request may hold one while waiting for another.
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let (app, card) = (app.clone(), card.clone());
                tokio::spawn(async move { card.sign_in(&app).await.status().as_u16() })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), 200);
        }
        let sessions: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(app.db.pool()).await.unwrap();
        assert_eq!(sessions, 40);
        assert_eq!(backend::audit::first_broken_row(&app.db).await.unwrap(), None);
    }
}

on_both_databases! {
    async fn a_guid_that_is_not_32_hex_digits_is_refused_before_anything_is_written(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        let audit_rows = || async {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM audit_log").fetch_one(app.db.pool()).await.unwrap()
        };
        let before = audit_rows().await;
        for guid in ["a".repeat(4096), "not-a-guid".into(), "0011223344556677889900aabbccddeeff".into()] {
            for path in ["/api/sign-in", "/api/unlock/start"] {
                let issued: ChallengeIssued = app.post(&format!("{path}/challenge").replace("/start/", "/"), &()).await.json().await.unwrap();
                let body = serde_json::json!({"challenge_id": issued.challenge_id, "guid": guid, "signature": "MEUCIQ=="});
                let (status, code) = error_code(app.post(path, &body).await).await;
                assert_eq!((status, code.as_str()), (400, "invalid_json"), "{path} {}", &guid[..guid.len().min(40)]);
            }
        }
        assert_eq!(audit_rows().await, before, "an unparsed GUID never reaches the audit trail");
    }
}
