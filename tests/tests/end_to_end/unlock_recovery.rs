//! An unlock stopped half-way never strands a card: the real agent, the real virtual card (pulled
//! out at a chosen command) and the real backend. Whatever the backend believes about the card's
//! PUK stays true, so the next unlock finishes the job.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]
#![allow(clippy::await_holding_lock, reason = "the lock serialises tests that share the one virtual reader")]

use protocol::agent::{AgentErrorCode, PukOnCard, UnlockStep};
use tests::{
    agent::{AgentClient, RunningAgent},
    self_service::{held_puks, register, release, release_unreported, unlock_past_the_code, Api},
    smartcard::{exclusive, yubico, CardFile, InsertedCard},
    smtp::SmtpServer,
    system::RunningBackend,
};

const EMAIL: &str = "kit.example@nhs.net";

/// A registered holder whose card (in the reader, started with `fault`) is locked.
struct Scene {
    card: CardFile,
    guid: String,
    backend: RunningBackend,
    smtp: SmtpServer,
    agent: RunningAgent,
    inserted: Option<InsertedCard>,
}

async fn scene(fault: &[&str]) -> (Scene, AgentClient) {
    let card = CardFile::personalised("Kit Example").unwrap();
    let smtp = SmtpServer::start().unwrap();
    let smtp_url = smtp.url();
    let backend = RunningBackend::start_with(|s| s.smtp_url = Some(smtp_url)).await.unwrap();
    let guid = backend.issue_card(&card, "810000000001", "Kit Example", EMAIL).unwrap();
    let inserted = InsertedCard::insert_with(&card, fault).unwrap();
    let agent = RunningAgent::start().await.unwrap();
    let (mut client, _) = AgentClient::connect(&agent).await.unwrap();
    client.wait_for_card().await.unwrap();
    register(&backend, &mut client, &smtp, &guid, "123456", EMAIL).await.unwrap();
    client.block_pin().await.unwrap();
    (Scene { card, guid, backend, smtp, agent, inserted: Some(inserted) }, client)
}

impl Scene {
    /// The card back in the reader, this time without a fault.
    async fn reinsert(&mut self, client: &mut AgentClient) {
        self.inserted = None;
        self.inserted = Some(InsertedCard::insert(&self.card).unwrap());
        client.wait_for_card().await.unwrap();
    }

    /// As if the last unlock code had been sent a few minutes ago (past the resend cooldown).
    async fn later(&self) {
        let db = backend::db::Database::connect(&self.backend.settings()).await.unwrap();
        sqlx::query("UPDATE one_time_codes SET created_at = created_at - 300")
            .execute(db.pool())
            .await
            .unwrap();
    }

    /// The PUK the backend now holds as current, and whether one is pending.
    async fn puks(&self) -> (String, bool) {
        let (current, pending) = held_puks(&self.backend, &self.guid).await.unwrap();
        (current, pending.is_some())
    }

    /// The next unlock, on a healthy card, succeeds and leaves exactly one PUK that the card accepts.
    async fn next_unlock_succeeds(&mut self, client: &mut AgentClient, codes_so_far: usize) {
        self.reinsert(client).await;
        self.later().await;
        let api = Api::new(&self.backend).unwrap();
        let attempt = unlock_past_the_code(&api, client, &self.smtp, &self.guid, EMAIL, codes_so_far + 1)
            .await
            .unwrap();
        let (report, status) = release(&api, client, &attempt, "86207531").await.unwrap();
        assert_eq!(
            (report.puk, &report.failure, status.as_u16()),
            (PukOnCard::Rotated, &None, 204),
            "{report:?}"
        );
        let (puk, pending) = self.puks().await;
        assert!(!pending && puk != "12345678");
        let (ok, out) = yubico(&["-a", "verify-pin", "-P", "86207531"]).unwrap();
        assert!(ok, "the new passcode works: {out}");
        let (ok, _) = yubico(&["-a", "unblock-pin", "-P", "12345678", "-N", "11335577"]).unwrap();
        assert!(!ok, "the old PUK no longer does");
        let (ok, out) = yubico(&["-a", "unblock-pin", "-P", &puk, "-N", "24681357"]).unwrap();
        assert!(ok, "the PUK the backend holds is the card's: {out}");
    }
}

#[tokio::test]
async fn a_card_pulled_out_between_the_reset_and_the_puk_change_is_unlocked_next_time() {
    let _lock = exclusive().unwrap();
    // RESET RETRY COUNTER (2C): the card resets the passcode, then is gone before it answers.
    let (mut scene, mut client) = scene(&["--remove-on-ins", "2c"]).await;
    let api = Api::new(&scene.backend).unwrap();
    let attempt = unlock_past_the_code(&api, &mut client, &scene.smtp, &scene.guid, EMAIL, 1).await.unwrap();
    let (report, status) = release(&api, &mut client, &attempt, "97531864").await.unwrap();
    let failure = report.failure.unwrap();
    assert_eq!(
        (failure.step, failure.error.code),
        (UnlockStep::ResetRetryCounter, AgentErrorCode::CardRemoved)
    );
    assert_eq!(status.as_u16(), 409, "no proof: the backend changes nothing");
    assert_eq!(scene.puks().await, ("12345678".into(), true), "current and pending both kept");
    scene.next_unlock_succeeds(&mut client, 1).await;
    drop(scene.agent);
}

#[tokio::test]
async fn a_card_pulled_out_during_the_puk_change_is_unlocked_next_time() {
    let _lock = exclusive().unwrap();
    // CHANGE REFERENCE DATA (24): the card takes the new PUK, then is gone before it answers.
    let (mut scene, mut client) = scene(&["--remove-on-ins", "24"]).await;
    let api = Api::new(&scene.backend).unwrap();
    let attempt = unlock_past_the_code(&api, &mut client, &scene.smtp, &scene.guid, EMAIL, 1).await.unwrap();
    let (report, status) = release(&api, &mut client, &attempt, "97531864").await.unwrap();
    assert_eq!(report.puk, PukOnCard::Unknown { index: 0 });
    assert_eq!(status.as_u16(), 409);
    assert_eq!(scene.puks().await, ("12345678".into(), true));
    scene.next_unlock_succeeds(&mut client, 1).await;
    drop(scene.agent);
}

#[tokio::test]
async fn a_card_unlocked_but_never_reported_is_unlocked_again_next_time() {
    let _lock = exclusive().unwrap();
    // No fault on the card: the unlock completes, but its report never reaches the backend.
    let (mut scene, mut client) = scene(&[]).await;
    let api = Api::new(&scene.backend).unwrap();
    let attempt = unlock_past_the_code(&api, &mut client, &scene.smtp, &scene.guid, EMAIL, 1).await.unwrap();
    let unreported = release_unreported(&api, &mut client, &attempt, "97531864").await.unwrap();
    assert_eq!(unreported.report.puk, PukOnCard::Rotated, "the card holds the pending PUK now");
    assert_eq!(scene.puks().await, ("12345678".into(), true), "the backend does not know yet");
    client.block_pin().await.unwrap();
    scene.next_unlock_succeeds(&mut client, 1).await;
    drop(scene.agent);
}
