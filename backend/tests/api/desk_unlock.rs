//! An RA unlocks a card at the desk: the holder's card proves it is theirs (9E), the officer says
//! how they checked who the holder is and why, and self-service's release and report run for
//! that officer alone. The refusals change nothing, on the card's records or anywhere else. The
//! test plays the agent, as in `unlock_release`; the journey test uses the real agent and card.

use backend::vault::Vault;
use envelope::{OneTimeKey, UnlockSecrets};
use protocol::{
    agent::{PukOnCard, UnlockReport},
    api::{ChallengeIssued, UnlockAttempt, UnlockRelease, UnlockReleased, UnlockReported},
    ra::{CardStatusChange, DeskUnlockStart, DeskUnlockStarted, Report},
};
use sqlx::Row;

use crate::{
    cards::{sign, Purpose, TestCard},
    helpers::{error_code, TestApp},
    on_both_databases,
    ra::{get, locked_out_holder, post},
    unlock::holder,
};

const HOLDER: &str = "500000000001";

/// An RA officer signed in with their own card, on their own client.
async fn officer(app: &TestApp, user_id: &str, name: &str) -> (reqwest::Client, TestCard) {
    let card = TestCard::new();
    card.issue_with_roles(app, user_id, name, &format!("{user_id}@nhs.net"), &["ra".into()]).await;
    let client = TestApp::browser_like_client(&app.address);
    assert_eq!(card.sign_in_with(app, &client).await.status(), 200);
    (client, card)
}

/// The card in the reader proves presence for the desk challenge of `user_id`.
fn start_request(
    issued: &ChallengeIssued,
    card: &TestCard,
    identity_check: &str,
    reason: &str,
) -> DeskUnlockStart {
    DeskUnlockStart {
        challenge_id: issued.challenge_id.clone(),
        guid: card.guid.clone(),
        signature: sign(&card.card_auth, Purpose::Presence, &issued.challenge),
        identity_check: identity_check.into(),
        reason: reason.into(),
    }
}

async fn desk_challenge(app: &TestApp, client: &reqwest::Client, user_id: &str) -> ChallengeIssued {
    let path = format!("/api/ra/users/{user_id}/desk-unlock/challenge");
    post(app, client, &path, &()).await.json().await.unwrap()
}

async fn desk_start(
    app: &TestApp,
    client: &reqwest::Client,
    user_id: &str,
    card: &TestCard,
) -> reqwest::Response {
    let issued = desk_challenge(app, client, user_id).await;
    let request = start_request(&issued, card, "Photo ID seen (passport)", "Locked out, forgot answers");
    post(app, client, &format!("/api/ra/users/{user_id}/desk-unlock"), &request).await
}

/// The agent's half of the release, through `prefix` (`/api/ra/desk-unlock` or `/api/unlock`).
async fn release(
    app: &TestApp,
    client: &reqwest::Client,
    prefix: &str,
    card: &TestCard,
    attempt_id: &str,
) -> Result<(UnlockReleased, UnlockSecrets), (u16, String)> {
    let attempt = UnlockAttempt { attempt_id: attempt_id.into() };
    let offered = post(app, client, &format!("{prefix}/offer-challenge"), &attempt).await;
    if offered.status() != 200 {
        return Err(error_code(offered).await);
    }
    let issued: ChallengeIssued = offered.json().await.unwrap();
    let key = OneTimeKey::generate();
    let request = UnlockRelease {
        attempt_id: attempt_id.into(),
        challenge_id: issued.challenge_id,
        public_key: key.public_key(),
        signature: card.sign_offer(&issued.challenge, &key.public_key_bytes()),
    };
    let response = post(app, client, &format!("{prefix}/release"), &request).await;
    if response.status() != 200 {
        return Err(error_code(response).await);
    }
    let released: UnlockReleased = response.json().await.unwrap();
    let secrets = key.open(&released.envelope, &app.trusted()).unwrap();
    Ok((released, secrets))
}

fn proved(card: &TestCard, attempt_id: &str, released: &UnlockReleased) -> UnlockReported {
    UnlockReported {
        attempt_id: attempt_id.into(),
        proof_challenge_id: released.proof_challenge.challenge_id.clone(),
        report: UnlockReport {
            guid: card.guid.clone(),
            pin_reset: true,
            puk: PukOnCard::Rotated,
            proof: Some(card.sign_9a(Purpose::UnlockProof, &released.proof_challenge.challenge)),
            failure: None,
        },
    }
}

/// The PUK the backend holds for the card, and whether a pending one is staged.
async fn puk_on_record(app: &TestApp, card: &TestCard) -> (String, bool) {
    let vault = Vault::from_settings(&app.settings).unwrap();
    let row = sqlx::query("SELECT puk_sealed, puk_pending_sealed FROM cards WHERE guid = $1")
        .bind(card.guid.as_str())
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    let current: Vec<u8> = row.try_get("puk_sealed").unwrap();
    let pending: Option<Vec<u8>> = row.try_get("puk_pending_sealed").unwrap();
    (vault.open(&card.guid, &current).unwrap().to_string(), pending.is_some())
}

async fn lockout(app: &TestApp) -> (i64, Option<i64>) {
    let row = sqlx::query("SELECT unlock_failures, unlock_locked_at FROM users WHERE user_id = $1")
        .bind(HOLDER)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    (row.try_get("unlock_failures").unwrap(), row.try_get("unlock_locked_at").unwrap())
}

async fn desk_attempts(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM unlock_attempts WHERE route = 'desk'")
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

on_both_databases! {
    async fn an_ra_unlocks_a_locked_out_holders_card_at_the_desk_in_one_action(engine: Engine) {
        let (app, smtp, card) = locked_out_holder(engine).await;
        let (ra, _) = officer(&app, "600000000009", "Rae Officer").await;
        let (other_ra, _) = officer(&app, "600000000008", "Ola Officer").await;
        let started = desk_start(&app, &ra, HOLDER, &card).await;
        assert_eq!(started.status(), 201);
        let DeskUnlockStarted { attempt_id } = started.json().await.unwrap();

        // Only this officer's console drives it: not the public self-service routes (which would
        // skip the questions and the code), not another officer.
        let public = TestApp::browser_like_client(&app.address);
        assert_eq!(release(&app, &public, "/api/unlock", &card, &attempt_id).await.err(), Some((400, "attempt_expired".into())));
        assert_eq!(release(&app, &other_ra, "/api/ra/desk-unlock", &card, &attempt_id).await.err(), Some((400, "attempt_expired".into())));
        assert_eq!(puk_on_record(&app, &card).await, (card.puk.clone(), false), "nothing released to them");

        let (released, secrets) = release(&app, &ra, "/api/ra/desk-unlock", &card, &attempt_id).await.unwrap();
        assert_eq!(secrets.current_puks.iter().map(|p| p.as_str()).collect::<Vec<_>>(), [card.puk.as_str()]);
        let reported = post(&app, &ra, "/api/ra/desk-unlock/report", &proved(&card, &attempt_id, &released)).await;
        assert_eq!(reported.status(), 204);
        assert_eq!(puk_on_record(&app, &card).await, (secrets.new_puk.to_string(), false), "the PUK rotated");
        assert_eq!(lockout(&app).await, (0, None), "self-service works again too");

        let started = smtp.wait_for("hal@nhs.net", "being unlocked at the RA desk", 1).await.unwrap();
        assert!(started.contains("by Rae Officer"), "told at the start too: {started}");
        let notice = smtp.wait_for("hal@nhs.net", "was unlocked", 1).await.unwrap();
        assert!(notice.contains("at the Registration Authority (RA) desk by Rae Officer"), "{notice}");
        let row = sqlx::query("SELECT actor, subject, details FROM audit_log WHERE event = 'card_unlocked_at_desk'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        let (actor, subject, details): (String, String, String) =
            (row.try_get("actor").unwrap(), row.try_get("subject").unwrap(), row.try_get("details").unwrap());
        assert_eq!((actor.as_str(), subject.as_str()), ("600000000009", HOLDER));
        assert!(details.contains("Photo ID seen (passport)") && details.contains("Locked out, forgot answers"), "{details}");
        let today = protocol::calendar::civil_from_days(backend::time::now_unix() / 86_400);
        let report: Report = get(&app, &ra, &format!("/api/ra/report?from={today}&to={today}")).await.json().await.unwrap();
        assert_eq!((report.totals.desk_unlocks, report.totals.unlocks), (1, 0), "counted apart from self-service");
        assert_eq!(backend::audit::first_broken_row(&app.db).await.unwrap(), None);
    }
}

on_both_databases! {
    async fn a_holder_who_never_registered_is_unlocked_at_the_desk(engine: Engine) {
        let (app, smtp, card) = holder(engine, false).await;
        let (ra, _) = officer(&app, "600000000009", "Rae Officer").await;
        let started = desk_start(&app, &ra, HOLDER, &card).await;
        assert_eq!(started.status(), 201);
        let DeskUnlockStarted { attempt_id } = started.json().await.unwrap();
        let (released, _) = release(&app, &ra, "/api/ra/desk-unlock", &card, &attempt_id).await.unwrap();
        let reported = post(&app, &ra, "/api/ra/desk-unlock/report", &proved(&card, &attempt_id, &released)).await;
        assert_eq!(reported.status(), 204);
        // The notice goes to the contact email the RA recorded.
        smtp.wait_for("hal@nhs.net", "was unlocked", 1).await.unwrap();
    }
}

on_both_databases! {
    async fn desk_unlocks_that_must_not_happen_are_refused_and_change_nothing(engine: Engine) {
        let (app, _smtp, card) = locked_out_holder(engine).await;
        let (ra, ra_card) = officer(&app, "600000000009", "Rae Officer").await;
        let before = (puk_on_record(&app, &card).await, lockout(&app).await);

        // Their own card: another officer must.
        assert_eq!(error_code(desk_start(&app, &ra, "600000000009", &ra_card).await).await, (403, "own_card".into()));
        // A card that is not this person's (the RA chose the wrong reader, or the wrong person).
        let stranger = TestCard::new();
        stranger.issue_to(&app, "500000000002", "Sam Stranger", "sam@nhs.net").await;
        assert_eq!(error_code(desk_start(&app, &ra, HOLDER, &stranger).await).await, (409, "card_not_theirs".into()));
        // A presence proof made by another key, or for another person's challenge.
        let issued = desk_challenge(&app, &ra, HOLDER).await;
        let mut forged = start_request(&issued, &card, "Photo ID seen", "Forgot passcode");
        forged.signature = sign(&stranger.card_auth, Purpose::Presence, &issued.challenge);
        let refused = post(&app, &ra, &format!("/api/ra/users/{HOLDER}/desk-unlock"), &forged).await;
        assert_eq!(error_code(refused).await, (401, "signature_invalid".into()));
        let elsewhere = desk_challenge(&app, &ra, "500000000002").await;
        let misbound = start_request(&elsewhere, &card, "Photo ID seen", "Forgot passcode");
        let refused = post(&app, &ra, &format!("/api/ra/users/{HOLDER}/desk-unlock"), &misbound).await;
        assert_eq!(error_code(refused).await, (400, "challenge_expired".into()));
        // No identity check, no reason.
        for (identity_check, reason, code) in [("", "Forgot passcode", "identity_check_required"), ("Photo ID seen", " ", "reason_required")] {
            let issued = desk_challenge(&app, &ra, HOLDER).await;
            let request = start_request(&issued, &card, identity_check, reason);
            let refused = post(&app, &ra, &format!("/api/ra/users/{HOLDER}/desk-unlock"), &request).await;
            assert_eq!(error_code(refused).await, (400, code.into()));
        }
        // A suspended or revoked card.
        for status in ["suspended", "revoked"] {
            let change = CardStatusChange { status: status.into(), reason: "Reported lost".into() };
            let changed = post(&app, &ra, &format!("/api/ra/cards/{}/status", card.guid), &change).await;
            assert_eq!(changed.status(), 204);
            assert_eq!(error_code(desk_start(&app, &ra, HOLDER, &card).await).await, (403, "card_not_active".into()));
        }
        // Not an RA: the holder themselves.
        let cardholder = TestCard::new();
        cardholder.issue_to(&app, "500000000003", "Cy Holder", "cy@nhs.net").await;
        let client = TestApp::browser_like_client(&app.address);
        assert_eq!(cardholder.sign_in_with(&app, &client).await.status(), 200);
        let refused = post(&app, &client, &format!("/api/ra/users/{HOLDER}/desk-unlock/challenge"), &()).await;
        assert_eq!(error_code(refused).await, (403, "not_ra".into()));

        assert_eq!(desk_attempts(&app).await, 0, "no desk attempt was opened");
        assert_eq!((puk_on_record(&app, &card).await, lockout(&app).await), before, "nothing changed");
        let refusals: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE event = 'desk_unlock_refused'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert_eq!(refusals, 5, "each refusal of a proved request is in the audit trail");
    }
}

on_both_databases! {
    async fn a_card_suspended_during_a_desk_unlock_is_not_unlocked(engine: Engine) {
        let (app, _smtp, card) = locked_out_holder(engine).await;
        let (ra, _) = officer(&app, "600000000009", "Rae Officer").await;
        let started = desk_start(&app, &ra, HOLDER, &card).await;
        let DeskUnlockStarted { attempt_id } = started.json().await.unwrap();
        let (released, _) = release(&app, &ra, "/api/ra/desk-unlock", &card, &attempt_id).await.unwrap();
        // Suspended between the release and the report: the report completes nothing.
        let change = CardStatusChange { status: "suspended".into(), reason: "Reported stolen".into() };
        assert_eq!(post(&app, &ra, &format!("/api/ra/cards/{}/status", card.guid), &change).await.status(), 204);
        let reported = post(&app, &ra, "/api/ra/desk-unlock/report", &proved(&card, &attempt_id, &released)).await;
        assert_eq!(error_code(reported).await, (400, "attempt_expired".into()), "the suspension ended the attempt");
        assert_eq!(lockout(&app).await.0, 3, "the lockout stays");
        let unlocked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE event = 'card_unlocked_at_desk'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert_eq!(unlocked, 0);
    }
}

on_both_databases! {
    async fn the_desk_routes_do_not_drive_a_self_service_attempt(engine: Engine) {
        let (app, smtp, card) = holder(engine, true).await;
        let (ra, _) = officer(&app, "600000000009", "Rae Officer").await;
        let questions: protocol::api::UnlockQuestions = crate::unlock::start(&app, &card).await.json().await.unwrap();
        assert_eq!(app.post("/api/unlock/answers", &crate::unlock::answers_for(&questions, true)).await.status(), 200);
        let code = crate::smtp::code_in(&smtp.wait_for("hal@nhs.net", "unlock code", 1).await.unwrap()).unwrap();
        let entered = app.post("/api/unlock/code", &protocol::api::UnlockCode { attempt_id: questions.attempt_id.clone(), code }).await;
        assert_eq!(entered.status(), 204);
        assert_eq!(
            release(&app, &ra, "/api/ra/desk-unlock", &card, &questions.attempt_id).await.err(),
            Some((400, "attempt_expired".into()))
        );
        assert_eq!(puk_on_record(&app, &card).await, (card.puk.clone(), false), "nothing released to the desk");
    }
}
