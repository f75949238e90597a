//! Unlock, second part: the PUK released to the agent's one-time key, the card's report, and
//! recovery when a release stops half-way. The test plays the agent (its one-time key, the card's
//! 9E offer signature and 9A proof); the real agent and card do the same in the journey tests.

use backend::vault::Vault;
use envelope::{OneTimeKey, UnlockSecrets};
use protocol::{
    agent::{PukOnCard, UnlockReport},
    api::{
        ChallengeIssued, UnlockAttempt, UnlockCode, UnlockQuestions, UnlockRelease, UnlockReleased,
        UnlockReported,
    },
};
use sqlx::Row;

use crate::{
    cards::{sign, Purpose, TestCard},
    helpers::{error_code, TestApp},
    on_both_databases,
    smtp::{code_in, SmtpServer},
    unlock::{answers_for, holder, start},
};

/// Questions answered and the emailed code entered: the attempt is ready for the release.
pub(crate) async fn past_the_code(
    app: &TestApp,
    smtp: &SmtpServer,
    card: &TestCard,
    codes_so_far: usize,
) -> String {
    // As if the last code were sent a few minutes ago, past the resend cooldown.
    sqlx::query("UPDATE one_time_codes SET created_at = created_at - 300")
        .execute(app.db.pool())
        .await
        .unwrap();
    let questions: UnlockQuestions = start(app, card).await.json().await.unwrap();
    assert_eq!(app.post("/api/unlock/answers", &answers_for(&questions, true)).await.status(), 200);
    let mail = smtp.wait_for("hal@nhs.net", "unlock code", codes_so_far + 1).await.unwrap();
    let code = code_in(&mail).unwrap();
    let request = UnlockCode { attempt_id: questions.attempt_id.clone(), code };
    assert_eq!(app.post("/api/unlock/code", &request).await.status(), 204);
    questions.attempt_id
}

/// The agent's half: a one-time key offered with the card's 9E signature; the backend's envelope.
pub(crate) async fn release(
    app: &TestApp,
    card: &TestCard,
    attempt_id: &str,
) -> (reqwest::Response, OneTimeKey) {
    let attempt = UnlockAttempt { attempt_id: attempt_id.into() };
    let issued: ChallengeIssued =
        app.post("/api/unlock/offer-challenge", &attempt).await.json().await.unwrap();
    let key = OneTimeKey::generate();
    let request = UnlockRelease {
        attempt_id: attempt_id.into(),
        challenge_id: issued.challenge_id,
        public_key: key.public_key(),
        signature: card.sign_offer(&issued.challenge, &key.public_key_bytes()),
    };
    (app.post("/api/unlock/release", &request).await, key)
}

pub(crate) async fn release_opened(
    app: &TestApp,
    card: &TestCard,
    attempt_id: &str,
) -> (UnlockReleased, UnlockSecrets) {
    let (response, key) = release(app, card, attempt_id).await;
    assert_eq!(response.status(), 200);
    let released: UnlockReleased = response.json().await.unwrap();
    let secrets = key.open(&released.envelope, &app.trusted()).unwrap();
    (released, secrets)
}

fn report(
    attempt_id: &str,
    released: &UnlockReleased,
    puk: PukOnCard,
    proof: Option<String>,
) -> UnlockReported {
    UnlockReported {
        attempt_id: attempt_id.into(),
        proof_challenge_id: released.proof_challenge.challenge_id.clone(),
        report: UnlockReport {
            guid: protocol::card_guid::CardGuid::from_bytes([0; 16]),
            pin_reset: proof.is_some(),
            puk,
            proof,
            failure: None,
        },
    }
}

pub(crate) fn proved(
    card: &TestCard,
    attempt_id: &str,
    released: &UnlockReleased,
    puk: PukOnCard,
) -> UnlockReported {
    let mut reported = report(
        attempt_id,
        released,
        puk,
        Some(card.sign_9a(Purpose::UnlockProof, &released.proof_challenge.challenge)),
    );
    reported.report.guid = card.guid.clone();
    reported
}

/// What the backend believes the card holds: (current, pending, version).
pub(crate) async fn puks(app: &TestApp, card: &TestCard) -> (String, Option<String>, i64) {
    let vault = Vault::from_settings(&app.settings).unwrap();
    let row = sqlx::query("SELECT puk_sealed, puk_pending_sealed, puk_version FROM cards WHERE guid = $1")
        .bind(card.guid.as_str())
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    let open = |sealed: Vec<u8>| vault.open(&card.guid, &sealed).unwrap().to_string();
    (
        open(row.try_get("puk_sealed").unwrap()),
        row.try_get::<Option<Vec<u8>>, _>("puk_pending_sealed").unwrap().map(open),
        row.try_get("puk_version").unwrap(),
    )
}

on_both_databases! {
    async fn the_puk_is_released_to_the_cards_offer_and_rotated_on_a_verified_proof(engine: Engine) {
        let (app, smtp, card) = holder(engine, true).await;
        let questions: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
        let early = app.post("/api/unlock/offer-challenge", &UnlockAttempt { attempt_id: questions.attempt_id.clone() }).await;
        assert_eq!(error_code(early).await, (400, "attempt_expired".into()), "not before the code");
        let attempt_id = {
            assert_eq!(app.post("/api/unlock/answers", &answers_for(&questions, true)).await.status(), 200);
            let code = code_in(&smtp.wait_for("hal@nhs.net", "unlock code", 1).await.unwrap()).unwrap();
            let request = UnlockCode { attempt_id: questions.attempt_id.clone(), code };
            assert_eq!(app.post("/api/unlock/code", &request).await.status(), 204);
            questions.attempt_id
        };

        // An offer signed by another card, or with the 9A key, or for another key: refused.
        let attempt = UnlockAttempt { attempt_id: attempt_id.clone() };
        let issued: ChallengeIssued = app.post("/api/unlock/offer-challenge", &attempt).await.json().await.unwrap();
        let key = OneTimeKey::generate();
        let other = TestCard::new();
        let forged = UnlockRelease {
            attempt_id: attempt_id.clone(),
            challenge_id: issued.challenge_id,
            public_key: key.public_key(),
            signature: other.sign_offer(&issued.challenge, &key.public_key_bytes()),
        };
        assert_eq!(error_code(app.post("/api/unlock/release", &forged).await).await, (401, "signature_invalid".into()));
        assert_eq!(puks(&app, &card).await, (card.puk.clone(), None, 1), "a refused offer records nothing");

        // A page past the code has the agent's `prove_presence` sign the offer digest of a key of
        // its own, to receive the PUKs itself: the card signs presence's digest of those bytes,
        // which is no offer.
        let issued: ChallengeIssued = app.post("/api/unlock/offer-challenge", &attempt).await.json().await.unwrap();
        let pages_key = OneTimeKey::generate();
        let challenge = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &issued.challenge).unwrap();
        let digest = envelope::offer_digest(&challenge, &pages_key.public_key_bytes(), &card.guid);
        let presence = UnlockRelease {
            attempt_id: attempt_id.clone(),
            challenge_id: issued.challenge_id,
            public_key: pages_key.public_key(),
            signature: sign(&card.card_auth, Purpose::Presence, &base64::Engine::encode(&base64::engine::general_purpose::STANDARD, digest)),
        };
        assert_eq!(error_code(app.post("/api/unlock/release", &presence).await).await, (401, "signature_invalid".into()));
        assert_eq!(puks(&app, &card).await, (card.puk.clone(), None, 1), "nothing released, nothing recorded");

        let (released, secrets) = release_opened(&app, &card, &attempt_id).await;
        assert!(!released.envelope.contains(&card.puk));
        assert_eq!(secrets.guid, card.guid.as_str());
        // The card's proof signs the challenge sealed with this release, never one from the page.
        assert_eq!(secrets.proof_challenge, released.proof_challenge.challenge);
        assert_eq!(secrets.current_puks.iter().map(|p| p.as_str()).collect::<Vec<_>>(), [card.puk.as_str()]);
        let new_puk = secrets.new_puk.to_string();
        assert!(new_puk.len() == 8 && new_puk.bytes().all(|b| b.is_ascii_digit()) && new_puk != card.puk);
        assert_eq!(puks(&app, &card).await, (card.puk.clone(), Some(new_puk.clone()), 1), "pending before release");

        let mut wrong_card = proved(&card, &attempt_id, &released, PukOnCard::Rotated);
        wrong_card.report.guid = other.guid.clone();
        assert_eq!(error_code(app.post("/api/unlock/report", &wrong_card).await).await, (400, "wrong_card".into()));
        let response = app.post("/api/unlock/report", &proved(&card, &attempt_id, &released, PukOnCard::Rotated)).await;
        assert_eq!(response.status(), 204);
        assert_eq!(puks(&app, &card).await, (new_puk, None, 2), "promoted");

        let notice = smtp.wait_for("hal@nhs.net", "was unlocked", 1).await.unwrap();
        assert!(notice.contains("If this wasn't you"), "{notice}");
        let again = app.post("/api/unlock/report", &proved(&card, &attempt_id, &released, PukOnCard::Rotated)).await;
        assert_eq!(error_code(again).await, (400, "attempt_expired".into()), "an attempt unlocks once");
        let events: Vec<String> = sqlx::query_scalar("SELECT event FROM audit_log ORDER BY id").fetch_all(app.db.pool()).await.unwrap();
        for event in ["unlock_offer_refused", "unlock_puk_released", "card_unlocked"] {
            assert!(events.iter().any(|e| e == event), "{event} in {events:?}");
        }
    }
}

on_both_databases! {
    async fn a_release_whose_report_never_arrives_is_finished_by_the_next_unlock(engine: Engine) {
        // The card rotated to the pending PUK, then the browser closed (or the backend crashed)
        // before the report: the backend must still be able to unlock the card next time.
        let (app, smtp, card) = holder(engine, true).await;
        let first = past_the_code(&app, &smtp, &card, 0).await;
        let (_, lost) = release_opened(&app, &card, &first).await;
        let pending = lost.new_puk.to_string();

        let second = past_the_code(&app, &smtp, &card, 1).await;
        let (released, secrets) = release_opened(&app, &card, &second).await;
        assert_eq!(
            secrets.current_puks.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            [pending.clone(), card.puk.clone()],
            "both PUKs the card may hold, the pending one first"
        );
        assert_eq!(secrets.new_puk.as_str(), pending, "the rotation target is reused, so two values always suffice");
        assert_eq!(app.post("/api/unlock/report", &proved(&card, &second, &released, PukOnCard::Candidate { index: 0 })).await.status(), 204);
        assert_eq!(puks(&app, &card).await, (card.puk.clone(), Some(pending.clone()), 1), "not rotated: both kept");

        let third = past_the_code(&app, &smtp, &card, 2).await;
        let (released, _) = release_opened(&app, &card, &third).await;
        assert_eq!(app.post("/api/unlock/report", &proved(&card, &third, &released, PukOnCard::Rotated)).await.status(), 204);
        assert_eq!(puks(&app, &card).await, (pending, None, 2));
    }
}

on_both_databases! {
    async fn a_report_held_back_from_an_earlier_release_promotes_nothing(engine: Engine) {
        // Attempt A's release: the card rotates to the pending PUK, and the page keeps the report.
        let (app, smtp, card) = holder(engine, true).await;
        let first = past_the_code(&app, &smtp, &card, 0).await;
        let (released_a, secrets_a) = release_opened(&app, &card, &first).await;
        let held_back = proved(&card, &first, &released_a, PukOnCard::Rotated);
        let on_card = secrets_a.new_puk.to_string();
        // Attempt B finishes the card on that PUK.
        let second = past_the_code(&app, &smtp, &card, 1).await;
        let (released_b, _) = release_opened(&app, &card, &second).await;
        assert_eq!(app.post("/api/unlock/report", &proved(&card, &second, &released_b, PukOnCard::Rotated)).await.status(), 204);
        assert_eq!(puks(&app, &card).await, (on_card.clone(), None, 2));
        // A releases again: a new pending PUK, which the card is never given.
        let (_, secrets_a2) = release_opened(&app, &card, &first).await;
        let never_on_card = secrets_a2.new_puk.to_string();
        let before = puks(&app, &card).await;
        assert_eq!(before, (on_card.clone(), Some(never_on_card), 2));
        // The held-back report of A's first release would promote it: refused, nothing changes.
        assert_eq!(error_code(app.post("/api/unlock/report", &held_back).await).await, (400, "challenge_expired".into()));
        assert_eq!(puks(&app, &card).await, before, "the card still holds a PUK the backend holds");
        let status: String = sqlx::query_scalar("SELECT status FROM unlock_attempts WHERE id = $1").bind(&first).fetch_one(app.db.pool()).await.unwrap();
        assert_eq!(status, "release");
    }
}

on_both_databases! {
    async fn a_report_without_a_verified_proof_changes_nothing(engine: Engine) {
        let (app, smtp, card) = holder(engine, true).await;
        let attempt_id = past_the_code(&app, &smtp, &card, 0).await;
        let (released_once, secrets) = release_opened(&app, &card, &attempt_id).await;
        let pending = secrets.new_puk.to_string();
        let mut unproved = report(&attempt_id, &released_once, PukOnCard::Rotated, None);
        unproved.report.guid = card.guid.clone();
        assert_eq!(error_code(app.post("/api/unlock/report", &unproved).await).await, (409, "unlock_incomplete".into()));

        // The same attempt may release again (card pulled out, say); a proof by the wrong key is refused.
        let (released_twice, _) = release_opened(&app, &card, &attempt_id).await;
        let mut forged = proved(&card, &attempt_id, &released_twice, PukOnCard::Rotated);
        forged.report.proof = Some(sign(&card.card_auth, Purpose::UnlockProof, &released_twice.proof_challenge.challenge));
        assert_eq!(error_code(app.post("/api/unlock/report", &forged).await).await, (401, "signature_invalid".into()));
        assert_eq!(puks(&app, &card).await, (card.puk.clone(), Some(pending), 1));
        let status: String = sqlx::query_scalar("SELECT status FROM unlock_attempts WHERE id = $1").bind(&attempt_id).fetch_one(app.db.pool()).await.unwrap();
        assert_eq!(status, "release", "still open for another try");
    }
}

on_both_databases! {
    async fn one_attempt_releases_a_bounded_number_of_times(engine: Engine) {
        let (app, smtp, card) = holder(engine, true).await;
        let attempt_id = past_the_code(&app, &smtp, &card, 0).await;
        for _ in 0..5 {
            assert_eq!(release(&app, &card, &attempt_id).await.0.status(), 200);
        }
        assert_eq!(error_code(release(&app, &card, &attempt_id).await.0).await, (400, "attempt_expired".into()));
    }
}

on_both_databases! {
    async fn a_card_whose_puk_the_service_does_not_hold_is_turned_away_before_the_questions(engine: Engine) {
        let (app, _smtp, card) = holder(engine, true).await;
        sqlx::query("UPDATE cards SET puk_sealed = NULL").execute(app.db.pool()).await.unwrap();
        assert_eq!(error_code(start(&app, &card).await).await, (409, "puk_unknown".into()));
    }
}

on_both_databases! {
    async fn with_the_registration_free_policy_the_code_goes_to_the_contact_email(engine: Engine) {
        let smtp = SmtpServer::start().unwrap();
        let url = smtp.url();
        let app = TestApp::spawn_with(engine, |s| {
            s.smtp_url = Some(url);
            s.unlock_without_registration = true;
        })
        .await;
        let card = TestCard::new();
        card.issue_to(&app, "500000000001", "Hal Holder", "hal@nhs.net").await;
        let questions: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
        assert!(questions.questions.is_empty(), "no questions were ever chosen");
        assert_eq!(questions.code_sent.as_ref().unwrap().email_hint, "h***@nhs.net");
        let code = code_in(&smtp.wait_for("hal@nhs.net", "unlock code", 1).await.unwrap()).unwrap();
        let request = UnlockCode { attempt_id: questions.attempt_id.clone(), code };
        assert_eq!(app.post("/api/unlock/code", &request).await.status(), 204);
        let (released, _) = release_opened(&app, &card, &questions.attempt_id).await;
        let reported = proved(&card, &questions.attempt_id, &released, PukOnCard::Rotated);
        assert_eq!(app.post("/api/unlock/report", &reported).await.status(), 204);
        smtp.wait_for("hal@nhs.net", "was unlocked", 1).await.unwrap();
        let route: String = sqlx::query_scalar("SELECT details FROM audit_log WHERE event = 'unlock_started'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert!(route.contains("contact_email"), "{route}");
    }
}

/// The value of one series in a scrape (0 if absent).
fn series(scrape: &str, name: &str) -> f64 {
    scrape.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0.0)
}

async fn scrape(app: &TestApp) -> String {
    reqwest::get(app.metrics_url.as_deref().unwrap()).await.unwrap().text().await.unwrap()
}

on_both_databases! {
    async fn the_metrics_follow_an_unlock_journey_on_their_own_listener(engine: Engine) {
        let (app, smtp, card) = holder(engine, true).await;
        let before = scrape(&app).await;
        let attempt_id = past_the_code(&app, &smtp, &card, 0).await;
        let (released, _) = release_opened(&app, &card, &attempt_id).await;
        let reported = proved(&card, &attempt_id, &released, PukOnCard::Rotated);
        assert_eq!(app.post("/api/unlock/report", &reported).await.status(), 204);
        let after = scrape(&app).await;
        let moved = [
            r#"selfservice_audit_events_total{event="unlock_started"}"#,
            r#"selfservice_audit_events_total{event="unlock_questions_passed"}"#,
            r#"selfservice_audit_events_total{event="unlock_code_accepted"}"#,
            r#"selfservice_audit_events_total{event="unlock_puk_released"}"#,
            r#"selfservice_audit_events_total{event="card_unlocked"}"#,
            r#"selfservice_http_requests_seconds_count{method="POST",route="/api/unlock/answers",status="200"}"#,
            r#"selfservice_http_requests_seconds_count{method="POST",route="/api/unlock/report",status="204"}"#,
            "selfservice_argon2_wait_seconds_count",
            "selfservice_mail_sent_total",
        ];
        for name in moved {
            assert!(series(&after, name) > series(&before, name), "{name} did not move:\n{after}");
        }
        for gauge in ["selfservice_mail_backlog", "selfservice_mail_oldest_unsent_seconds", "selfservice_db_pool_connections", "selfservice_argon2_waiting"] {
            assert!(after.lines().any(|l| l.starts_with(&format!("{gauge} "))), "{gauge} missing");
        }
        assert!(after.contains(r#"route="/api/unlock/start""#) && !after.contains(card.guid.as_str()), "routes by template, no ids");
        // The public port does not serve them.
        let public = app.get("/metrics").await.text().await.unwrap();
        assert!(!public.contains("selfservice_"), "metrics on the public port");
        if std::env::var_os("METRICS_SAMPLE").is_some() {
            std::fs::write(std::env::var_os("METRICS_SAMPLE").unwrap(), &after).unwrap();
        }
    }
}
