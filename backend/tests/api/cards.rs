//! An in-process stand-in for a personalised card (its 9A and 9E keys) and its holder, for API
//! tests. The browser journeys use the real virtual card through the real agent instead.

use backend::{
    store::people::{self, NewUser, User},
    vault::Vault,
};
use base64::{engine::general_purpose::STANDARD, Engine};
pub use envelope::Purpose;
use p256::{
    ecdsa::{signature::hazmat::PrehashSigner, Signature, SigningKey},
    pkcs8::EncodePublicKey,
};
use protocol::api::{ChallengeIssued, SignInRequest};

use crate::helpers::TestApp;

pub struct TestCard {
    pub guid: protocol::card_guid::CardGuid,
    pub piv_auth: SigningKey,
    pub card_auth: SigningKey,
    /// The PUK recorded (sealed) when the card is issued.
    pub puk: String,
}

impl TestCard {
    pub fn new() -> Self {
        let guid = protocol::card_guid::CardGuid::from_bytes(std::array::from_fn(|_| rand_byte()));
        Self {
            guid,
            piv_auth: SigningKey::random(&mut rand_core::OsRng),
            card_auth: SigningKey::random(&mut rand_core::OsRng),
            puk: "12345678".into(),
        }
    }

    /// The 9A signature of a base64 challenge for `purpose`, base64 DER (what the agent returns).
    pub fn sign_9a(&self, purpose: Purpose, challenge_b64: &str) -> String {
        sign(&self.piv_auth, purpose, challenge_b64)
    }

    /// The 9E signature over an agent's unlock offer (what `begin_unlock` returns).
    pub fn sign_offer(&self, challenge_b64: &str, agent_public_key: &[u8; 32]) -> String {
        let challenge = STANDARD.decode(challenge_b64).unwrap();
        sign_digest(&self.card_auth, &envelope::offer_digest(&challenge, agent_public_key, &self.guid))
    }

    /// Creates a user and issues this card to them, with its PUK recorded.
    pub async fn issue_to(&self, app: &TestApp, user_id: &str, name: &str, email: &str) -> User {
        self.issue_with_roles(app, user_id, name, email, &[]).await
    }

    /// As [`TestCard::issue_to`], for a person with `roles` (e.g. `ra`).
    pub async fn issue_with_roles(
        &self,
        app: &TestApp,
        user_id: &str,
        name: &str,
        email: &str,
        roles: &[String],
    ) -> User {
        let user = people::add_user(&app.db, &NewUser { user_id, name, contact_email: Some(email), roles })
            .await
            .unwrap();
        let spki = |key: &SigningKey| key.verifying_key().to_public_key_der().unwrap().into_vec();
        people::bind_card(&app.db, &user, &self.guid, &spki(&self.piv_auth), &spki(&self.card_auth))
            .await
            .unwrap();
        let vault = Vault::from_settings(&app.settings).unwrap();
        let sealed = vault.seal(&self.guid, &self.puk).unwrap();
        assert!(people::record_initial_puk(&app.db, &self.guid, &sealed).await.unwrap());
        user
    }

    /// The whole sign-in: challenge, 9A signature, `POST /api/sign-in`.
    pub async fn sign_in(&self, app: &TestApp) -> reqwest::Response {
        self.sign_in_with(app, &app.client).await
    }

    /// [`TestCard::sign_in`] on another client (another browser, with its own cookies).
    pub async fn sign_in_with(&self, app: &TestApp, client: &reqwest::Client) -> reqwest::Response {
        let url = |path: &str| format!("{}{path}", app.address);
        let issued: ChallengeIssued =
            client.post(url("/api/sign-in/challenge")).json(&()).send().await.unwrap().json().await.unwrap();
        let request = SignInRequest {
            challenge_id: issued.challenge_id,
            guid: self.guid.clone(),
            signature: self.sign_9a(Purpose::SignIn, &issued.challenge),
        };
        client.post(url("/api/sign-in")).json(&request).send().await.unwrap()
    }
}

/// A card's signature of a base64 challenge for `purpose`, as the agent has it made.
pub fn sign(key: &SigningKey, purpose: Purpose, challenge_b64: &str) -> String {
    let challenge = STANDARD.decode(challenge_b64).unwrap();
    sign_digest(key, &envelope::signed_digest(purpose, &challenge))
}

/// A card's signature of a 32-byte digest (an offer digest the agent built).
pub fn sign_digest(key: &SigningKey, digest: &[u8; 32]) -> String {
    let signature: Signature = key.sign_prehash(digest).unwrap();
    STANDARD.encode(signature.to_der().as_bytes())
}

fn rand_byte() -> u8 {
    let mut byte = [0u8; 1];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut byte);
    byte[0]
}
