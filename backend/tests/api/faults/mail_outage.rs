//! The SMTP relay down for a minute (the real server process stopped, then started) while people
//! register and unlock: nothing fails, the pages say the email will be late, and once the relay
//! is back every code and notice arrives, each person's in the order it was written.

use std::time::{Duration, Instant};

use protocol::{
    agent::PukOnCard,
    api::{
        CodeRequest, QuestionAnswer, RegistrationPending, RegistrationRequest, UnlockAttempt, UnlockCode,
        UnlockCodeSent, UnlockQuestions,
    },
};

use crate::{
    cards::{Purpose, TestCard},
    helpers::{error_code, TestApp},
    on_both_databases,
    smtp::code_in,
    unlock::{answers_for, holder, start},
    unlock_release::{past_the_code, proved, release_opened},
};

/// How long the relay is down: long enough for the sender to back off several times.
const OUTAGE: Duration = Duration::from_secs(60);
/// The sender's backoff after a minute of failures is 40 s; this covers it with room.
const AFTER_RETURN: Duration = Duration::from_secs(90);

const IVY: &str = "ivy@nhs.net";
const HAL: &str = "hal@nhs.net";

/// As if the last code were sent minutes ago (past the resend cooldown).
async fn later(app: &TestApp) {
    sqlx::query("UPDATE one_time_codes SET created_at = created_at - 300")
        .execute(app.db.pool())
        .await
        .unwrap();
}

/// Waits until the sender has tried a message and failed: from then on, pages are told.
async fn sender_failed(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let failed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL AND last_error IS NOT NULL",
        )
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        if failed > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the sender never tried");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ivy, signed in on her own client, proves her passcode and asks to register.
async fn ivy_registers(app: &TestApp) -> (TestApp, TestCard, RegistrationPending) {
    let card = TestCard::new();
    card.issue_to(app, "500000000002", "Ivy Holder", IVY).await;
    let ivy = app.through(&app.address);
    assert_eq!(card.sign_in(&ivy).await.status(), 200);
    let issued: protocol::api::ChallengeIssued =
        ivy.post("/api/registration/challenge", &()).await.json().await.unwrap();
    let proof = protocol::api::ProofRequest {
        challenge_id: issued.challenge_id,
        signature: card.sign_9a(Purpose::RegistrationProof, &issued.challenge),
    };
    assert_eq!(ivy.post("/api/registration/proof", &proof).await.status(), 204);
    let answers = ["Alien", "York", "Max", "Red sky"]
        .iter()
        .zip([3, 7, 11, 19])
        .map(|(a, q)| QuestionAnswer { question_id: q, answer: (*a).into() })
        .collect();
    let response = ivy.post("/api/registration", &RegistrationRequest { answers, email: IVY.into() }).await;
    assert_eq!(response.status(), 201, "the outage does not fail the request");
    let pending = response.json().await.unwrap();
    (ivy, card, pending)
}

on_both_databases! {
    async fn mail_written_while_the_relay_is_down_arrives_in_order_when_it_returns(engine: Engine) {
        let (app, mut smtp, card) = holder(engine, true).await;
        smtp.wait_for(HAL, "You are registered", 1).await.unwrap();
        let hal_before = smtp.messages_to(HAL).len();
        // Hal has his unlock code (the relay is up), then the relay goes down.
        let attempt_id = past_the_code(&app, &smtp, &card, 0).await;
        smtp.stop();
        let stopped = Instant::now();

        // Hal finishes his unlock: the "your card was unlocked" notice is written, not sent.
        let (released, _) = release_opened(&app, &card, &attempt_id).await;
        let reported = proved(&card, &attempt_id, &released, PukOnCard::Rotated);
        assert_eq!(app.post("/api/unlock/report", &reported).await.status(), 204);
        sender_failed(&app).await;

        // Ivy registers: her page is told that the email will be late.
        let (ivy, _ivy_card, pending) = ivy_registers(&app).await;
        assert!(pending.mail_delayed, "{pending:?}");
        // She asks for another code; it is queued behind the first.
        later(&app).await;
        let resent: RegistrationPending = ivy.post("/api/registration/resend", &()).await.json().await.unwrap();
        assert!(resent.mail_delayed && !resent.earlier, "{resent:?}");

        // Hal's card locks again and he starts another unlock: his code is queued after the notice.
        later(&app).await;
        let questions: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
        let response = app.post("/api/unlock/answers", &answers_for(&questions, true)).await;
        assert_eq!(response.status(), 200);
        let sent: UnlockCodeSent = response.json().await.unwrap();
        assert!(sent.mail_delayed, "{sent:?}");
        later(&app).await;
        let resend = app.post("/api/unlock/resend", &UnlockAttempt { attempt_id: questions.attempt_id.clone() }).await;
        let resent: UnlockCodeSent = resend.json().await.unwrap();
        assert!(resent.mail_delayed, "{resent:?}");
        assert_eq!(smtp.messages_to(HAL).len(), hal_before + 1, "only the code sent before the outage");

        tokio::time::sleep(OUTAGE.saturating_sub(stopped.elapsed())).await;
        smtp.restart().unwrap();

        // Everything arrives: Hal's notice, then his two codes; Ivy's two codes.
        smtp.wait_for_within(HAL, "unlock code", 3, AFTER_RETURN).await.unwrap();
        smtp.wait_for_within(IVY, "registration code", 2, AFTER_RETURN).await.unwrap();
        let hal: Vec<String> = smtp.messages_to(HAL).split_off(hal_before + 1);
        assert_eq!(hal.len(), 3, "each once: {hal:?}");
        assert!(hal[0].contains("Your smartcard was unlocked"), "{}", hal[0]);
        assert!(hal[1].contains("unlock code") && hal[2].contains("unlock code"));
        let ivy_mail = smtp.messages_to(IVY);
        assert_eq!(ivy_mail.len(), 2, "each once: {ivy_mail:?}");

        // In order: the last to arrive is the newest code, the one that works; the first does not.
        let (old, new) = (code_in(&ivy_mail[0]).unwrap(), code_in(&ivy_mail[1]).unwrap());
        assert_eq!(error_code(ivy.post("/api/registration/confirm", &CodeRequest { code: old }).await).await.0, 400);
        assert_eq!(ivy.post("/api/registration/confirm", &CodeRequest { code: new }).await.status(), 200);
        let newest = code_in(&hal[2]).unwrap();
        let entered = UnlockCode { attempt_id: questions.attempt_id.clone(), code: newest };
        assert_eq!(app.post("/api/unlock/code", &entered).await.status(), 204);
        smtp.wait_for(IVY, "You are registered", 1).await.unwrap();
        let unsent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert_eq!(unsent, 0, "nothing left behind");
    }
}

on_both_databases! {
    async fn a_message_that_can_never_go_is_given_up_and_holds_no_later_mail(engine: Engine) {
        let (app, smtp, card) = holder(engine, true).await;
        smtp.wait_for(HAL, "You are registered", 1).await.unwrap();
        // Waiting for Hal: a message whose sealed body no longer opens (as after a key was
        // lost), so it can never be sent.
        let now = backend::time::now_unix();
        sqlx::query(
            "INSERT INTO mail_outbox (to_addr, subject, body, created_at, attempts, next_attempt_at) \
             VALUES ($1, 'Lost', 'sealed:v1:!!!', $2, 0, $2)",
        )
        .bind(HAL)
        .bind(now)
        .execute(app.db.pool())
        .await
        .unwrap();
        // His next code comes all the same, and the lost one is recorded as given up.
        past_the_code(&app, &smtp, &card, 0).await;
        let (failed_at, body): (Option<i64>, String) =
            sqlx::query_as("SELECT failed_at, body FROM mail_outbox WHERE subject = 'Lost'")
                .fetch_one(app.db.pool())
                .await
                .unwrap();
        assert!(failed_at.is_some() && body.is_empty(), "{failed_at:?} {body:?}");
        let mut conn = app.db.pool().acquire().await.unwrap();
        assert!(!backend::mail::delayed(&mut conn).await.unwrap(), "a message given up is not mail running late");
    }
}
