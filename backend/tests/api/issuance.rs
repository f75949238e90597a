//! Card issuance through the RA console's API, with the test playing the card agent: its one-time
//! key opens the envelope, P-256 keys stand in for the card's, and the proofs are its signatures.
//! (`tests/tests/end_to_end/journey_ra.rs` does the same with the real agent and virtual card.)

use backend::vault::Vault;
use base64::{engine::general_purpose::STANDARD, Engine as _};
use card_ca::{attestation::AttestationKey, CertificateAuthority};
use der::{Decode, Encode};
use envelope::{IssueNewSecrets, IssueSecrets, OneTimeKey};
use p256::ecdsa::SigningKey;
use protocol::{
    agent::{
        AgentError, AgentErrorCode, IssueFailure, IssueReadiness, IssueReport, IssueStep, KeyAttestation,
        PukOnCard,
    },
    ra::{
        CardIssued, IssueCertificates, IssueComplete, IssueKeys, IssueStart, IssueStarted, NewPerson,
        UserSummary,
    },
};
use sqlx::Row;

use crate::{
    cards::{sign, sign_digest, Purpose, TestCard},
    helpers::{error_code, TestApp},
    on_both_databases,
    ra::{officer, post},
};

const HOLDER: &str = "700000000001";

/// The agent's side of one issuance: its two one-time keys, and the card's keys once "generated".
struct FakeAgent {
    key: Option<OneTimeKey>,
    offer: Option<OneTimeKey>,
    piv_auth: SigningKey,
    card_auth: SigningKey,
    /// The "card's" attestation key, if it has one (as a YubiKey has).
    attestation_key: Option<AttestationKey>,
    /// What the agent says it found on the card: by default a blank card's credentials.
    readiness: IssueReadiness,
}

impl FakeAgent {
    fn new() -> Self {
        Self {
            key: Some(OneTimeKey::generate()),
            offer: Some(OneTimeKey::generate()),
            piv_auth: SigningKey::random(&mut rand_core::OsRng),
            card_auth: SigningKey::random(&mut rand_core::OsRng),
            attestation_key: None,
            readiness: IssueReadiness {
                factory_key: Some(0x03),
                factory_puk: None,
                attests: false,
                certificates: false,
            },
        }
    }

    /// An agent whose card has an attestation key certified by `maker`.
    fn attested_by(maker: &CertificateAuthority) -> Self {
        let blank = Self::new();
        let readiness = IssueReadiness { attests: true, ..blank.readiness };
        Self { attestation_key: Some(maker.provision_attestation_key(4242).unwrap()), readiness, ..blank }
    }

    fn attestation(&self, piv_auth: &SigningKey, card_auth: &SigningKey) -> Option<KeyAttestation> {
        let key = self.attestation_key.as_ref()?;
        let attest = |slot, k: &SigningKey| {
            let point = k.verifying_key().to_encoded_point(false);
            STANDARD.encode(key.attest(slot, point.as_bytes(), 4242, 2).unwrap().to_der().unwrap())
        };
        Some(KeyAttestation {
            piv_auth: attest(0x9a, piv_auth),
            card_auth: attest(0x9e, card_auth),
            device_certificate: STANDARD.encode(key.certificate().to_der().unwrap()),
        })
    }

    /// The offer; for a card with a GUID (half-issued), signed for by the card's 9E key.
    fn start(&self, card_guid: Option<&str>) -> IssueStart {
        let key = self.key.as_ref().unwrap();
        IssueStart {
            reason: "New starter, identity checked".into(),
            agent_key: key.public_key(),
            card_guid: card_guid.map(|guid| guid.parse().unwrap()),
            resume_signature: card_guid.map(|guid| {
                sign_digest(&self.card_auth, &envelope::resume_offer_digest(&key.public_key_bytes(), guid))
            }),
            readiness: self.readiness,
        }
    }

    /// The agent at the next issuance of the same card: new one-time keys, the card's keys.
    fn same_card(&self) -> Self {
        Self { piv_auth: self.piv_auth.clone(), card_auth: self.card_auth.clone(), ..Self::new() }
    }

    fn open(&mut self, app: &TestApp, started: &IssueStarted) -> IssueSecrets {
        self.key.take().unwrap().open(&started.envelope, &app.trusted()).unwrap()
    }

    /// The public points, and the second one-time key signed for by the "card's" 9E key.
    fn keys(&self, secrets: &IssueSecrets) -> IssueKeys {
        let point = |k: &SigningKey| STANDARD.encode(k.verifying_key().to_encoded_point(false).as_bytes());
        let offer = self.offer.as_ref().unwrap().public_key_bytes();
        let digest = envelope::issue_offer_digest(&secrets.issuance_id, &offer, &secrets.new_guid);
        IssueKeys {
            piv_auth_key: point(&self.piv_auth),
            card_auth_key: point(&self.card_auth),
            offer_key: STANDARD.encode(offer),
            offer_signature: sign_digest(&self.card_auth, &digest),
            attestation: self.attestation(&self.piv_auth, &self.card_auth),
        }
    }

    fn open_new(&mut self, app: &TestApp, certified: &IssueCertificates) -> IssueNewSecrets {
        self.offer.take().unwrap().open(&certified.envelope, &app.trusted()).unwrap()
    }

    fn report(&self, guid: &str, certified: &IssueCertificates) -> IssueReport {
        IssueReport {
            guid: guid.parse().unwrap(),
            puk: PukOnCard::Rotated,
            pin_set: true,
            management_key_rotated: true,
            // The card took the new key as AES-192, like its factory key (a YubiKey 5.7, say).
            management_key_algorithm: Some(0x0A),
            piv_auth_proof: Some(sign(
                &self.piv_auth,
                Purpose::IssueProofPivAuth,
                &proof_challenge(certified, 0x0A),
            )),
            card_auth_proof: Some(sign(
                &self.card_auth,
                Purpose::IssueProofCardAuth,
                &proof_challenge(certified, 0x0A),
            )),
            failure: None,
        }
    }

    /// What the issued card is to the rest of the API.
    fn card(&self, guid: &str, puk: &str) -> TestCard {
        TestCard {
            guid: guid.parse().unwrap(),
            piv_auth: self.piv_auth.clone(),
            card_auth: self.card_auth.clone(),
            puk: puk.into(),
        }
    }
}

/// What the card's final proofs sign: the challenge and the management key algorithm it took.
fn proof_challenge(certified: &IssueCertificates, algorithm: u8) -> String {
    let challenge = STANDARD.decode(&certified.challenge).unwrap();
    STANDARD.encode(envelope::issue_proof_challenge(&challenge, algorithm))
}

async fn add_holder(app: &TestApp, ra: &reqwest::Client) {
    let new = NewPerson {
        user_id: HOLDER.into(),
        name: "Nia Newstarter".into(),
        contact_email: Some("nia@nhs.net".into()),
        reason: "New starter, identity checked".into(),
    };
    let response = post(app, ra, "/api/ra/users", &new).await;
    assert_eq!(response.status(), 201);
    let added: UserSummary = response.json().await.unwrap();
    assert_eq!((added.user_id.as_str(), added.registered), (HOLDER, false));
    assert_eq!(error_code(post(app, ra, "/api/ra/users", &new).await).await, (409, "user_exists".into()));
}

async fn start(
    app: &TestApp,
    ra: &reqwest::Client,
    agent: &FakeAgent,
    guid: Option<&str>,
) -> reqwest::Response {
    post(app, ra, &format!("/api/ra/users/{HOLDER}/issue"), &agent.start(guid)).await
}

async fn certify(
    app: &TestApp,
    ra: &reqwest::Client,
    agent: &FakeAgent,
    secrets: &IssueSecrets,
) -> IssueCertificates {
    let path = format!("/api/ra/issuances/{}/keys", secrets.issuance_id);
    let response = post(app, ra, &path, &agent.keys(secrets)).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn complete(app: &TestApp, ra: &reqwest::Client, id: &str, report: IssueReport) -> reqwest::Response {
    post(app, ra, &format!("/api/ra/issuances/{id}/complete"), &IssueComplete { report }).await
}

async fn cards_of_holder(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM cards c JOIN users u ON u.id = c.user_ref WHERE u.user_id = $1")
        .bind(HOLDER)
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

on_both_databases! {
    async fn an_ra_adds_a_person_and_issues_a_card_that_signs_in_with_its_secrets_sealed(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        let ra = officer(&app).await;
        add_holder(&app, &ra).await;
        let mut agent = FakeAgent::new();
        let started: IssueStarted = start(&app, &ra, &agent, None).await.json().await.unwrap();
        let secrets = agent.open(&app, &started);
        assert_eq!(secrets.issuance_id, started.issuance_id);
        assert_eq!((secrets.offered_guid.as_deref(), secrets.new_guid.len()), (None, 32));
        assert_eq!(secrets.current_puks.iter().map(|p| p.as_str()).collect::<Vec<_>>(), ["12345678"]);
        // The factory key under each algorithm, and attestation not required here.
        let factory: Vec<(u8, &str)> =
            secrets.current_management_keys.iter().map(|k| (k.algorithm, k.key_hex.as_str())).collect();
        let key = "010203040506070801020304050607080102030405060708";
        assert_eq!(factory, [(0x03, key), (0x0A, key), (0x08, &key[..32]), (0x0C, &format!("{key}0102030405060708")[..])]);
        assert!(!secrets.attestation_required);

        let certified = certify(&app, &ra, &agent, &secrets).await;
        // The new secrets come only now, sealed to the key the card vouched for.
        let new = agent.open_new(&app, &certified);
        assert_eq!((new.issuance_id.as_str(), new.guid.as_str()), (secrets.issuance_id.as_str(), secrets.new_guid.as_str()));
        assert_eq!((new.new_puk.len(), new.new_management_key.key_hex.len()), (8, 64), "enough for any algorithm");
        assert_ne!(new.new_puk.as_str(), "12345678");
        let der = STANDARD.decode(&certified.piv_auth_certificate).unwrap();
        let certificate = x509_cert::Certificate::from_der(&der).unwrap();
        let tbs = &certificate.tbs_certificate;
        assert!(tbs.subject.to_string().contains("Nia Newstarter"), "{}", tbs.subject);
        assert_eq!(
            tbs.subject_public_key_info.subject_public_key.raw_bytes(),
            agent.piv_auth.verifying_key().to_encoded_point(false).as_bytes()
        );
        let ca = CertificateAuthority::load_or_create(&app.settings.data_dir.join("ca")).unwrap();
        assert_eq!(tbs.issuer, ca.certificate().tbs_certificate.subject);

        let response = complete(&app, &ra, &started.issuance_id, agent.report(&secrets.new_guid, &certified)).await;
        assert_eq!(response.status(), 200);
        let issued: CardIssued = response.json().await.unwrap();
        assert_eq!((issued.guid.as_str(), issued.user_id.as_str()), (secrets.new_guid.as_str(), HOLDER));

        // The card signs in as its holder, and the backend holds its new PUK and management key.
        let card = agent.card(&secrets.new_guid, &new.new_puk);
        assert_eq!(card.sign_in(&app).await.status(), 200);
        let row = sqlx::query("SELECT puk_sealed, mgmt_key_sealed, piv_auth_certificate FROM cards WHERE guid = $1")
            .bind(&secrets.new_guid)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        let vault = Vault::from_settings(&app.settings).unwrap();
        let puk = vault.open(&secrets.new_guid, &row.get::<Vec<u8>, _>("puk_sealed")).unwrap();
        assert_eq!(puk.as_str(), new.new_puk.as_str());
        let key = vault.open_management_key(&secrets.new_guid, &row.get::<Vec<u8>, _>("mgmt_key_sealed")).unwrap();
        assert_eq!(key.as_str(), format!("10:{}", &new.new_management_key.key_hex[..48]), "as the card took it");
        assert_eq!(row.get::<Vec<u8>, _>("piv_auth_certificate"), certificate.to_der().unwrap());

        // Audited with the officer as the actor; the chain holds.
        let actor: String = sqlx::query_scalar("SELECT actor FROM audit_log WHERE event = 'card_issued'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert_eq!(actor, "600000000009");
        let certified_row: String = sqlx::query_scalar("SELECT details FROM audit_log WHERE event = 'card_keys_certified'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert!(certified_row.contains("not attested"), "{certified_row}");
        assert!(backend::audit::first_broken_row(&app.db).await.unwrap().is_none());

        // The same issuance cannot complete twice, and an issued card cannot be issued again.
        let again = complete(&app, &ra, &started.issuance_id, agent.report(&secrets.new_guid, &certified)).await;
        assert_eq!(error_code(again).await, (409, "issuance_ended".into()));
        let second = FakeAgent::new();
        let reissue = start(&app, &ra, &second, Some(&secrets.new_guid)).await;
        assert_eq!(error_code(reissue).await, (409, "card_already_issued".into()));
        assert_eq!(cards_of_holder(&app).await, 1);
    }
}

on_both_databases! {
    async fn an_incomplete_or_unproven_issuance_binds_nothing_and_the_next_one_finishes_the_card(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        let ra = officer(&app).await;
        add_holder(&app, &ra).await;
        let mut agent = FakeAgent::new();
        let started: IssueStarted = start(&app, &ra, &agent, None).await.json().await.unwrap();
        let first = agent.open(&app, &started);
        let certified = certify(&app, &ra, &agent, &first).await;
        let first_new = agent.open_new(&app, &certified);

        // The card was pulled out while taking its new management key.
        let mut report = agent.report(&first.new_guid, &certified);
        report.management_key_rotated = false;
        report.piv_auth_proof = None;
        report.card_auth_proof = None;
        report.failure = Some(IssueFailure {
            step: IssueStep::ChangeManagementKey,
            error: AgentError { code: AgentErrorCode::CardRemoved, message: "The card was removed.".into() },
        });
        let refused = complete(&app, &ra, &started.issuance_id, report).await;
        assert_eq!(error_code(refused).await, (409, "issuance_incomplete".into()));
        assert_eq!(cards_of_holder(&app).await, 0);

        // A page's own key, not vouched for by the card's 9E key, gets no recorded secrets.
        let page = FakeAgent::new();
        let refused = start(&app, &ra, &page, Some(&first.new_guid)).await;
        assert_eq!(error_code(refused).await, (401, "offer_invalid".into()));

        // The card now carries the GUID: the next issuance offers both sets of credentials and
        // reuses the recorded ones as its targets.
        let mut agent = agent.same_card();
        let started: IssueStarted = start(&app, &ra, &agent, Some(&first.new_guid)).await.json().await.unwrap();
        let second = agent.open(&app, &started);
        assert_eq!(second.new_guid, first.new_guid);
        let puks: Vec<&str> = second.current_puks.iter().map(|p| p.as_str()).collect();
        assert_eq!(puks, ["12345678", first_new.new_puk.as_str()]);
        assert_eq!(second.current_management_keys.len(), 8, "factory and recorded keys, under each algorithm");
        let recorded = &second.current_management_keys[4..];
        assert_eq!(recorded[0].key_hex.as_str(), &first_new.new_management_key.key_hex[..48], "as 3DES");
        assert_eq!(recorded[3].key_hex.as_str(), first_new.new_management_key.key_hex.as_str(), "as AES-256");

        // A proof by another key is refused and binds nothing; the issuance stays open for a good one.
        let certified = certify(&app, &ra, &agent, &second).await;
        let second_new = agent.open_new(&app, &certified);
        assert_eq!(second_new.new_puk.as_str(), first_new.new_puk.as_str(), "the recorded targets are reused");
        assert_eq!(second_new.new_management_key.key_hex.as_str(), first_new.new_management_key.key_hex.as_str());
        let mut forged = agent.report(&second.new_guid, &certified);
        forged.piv_auth_proof = Some(sign(&SigningKey::random(&mut rand_core::OsRng), Purpose::IssueProofPivAuth, &certified.challenge));
        assert_eq!(error_code(complete(&app, &ra, &started.issuance_id, forged).await).await, (401, "proof_invalid".into()));
        // The card's genuine signatures, but made for sign-in (a page's `sign_with_pin`): refused.
        let mut forged = agent.report(&second.new_guid, &certified);
        forged.piv_auth_proof = Some(sign(&agent.piv_auth, Purpose::SignIn, &certified.challenge));
        assert_eq!(error_code(complete(&app, &ra, &started.issuance_id, forged).await).await, (401, "proof_invalid".into()));
        // A page naming another management key algorithm than the card took: its proofs say otherwise.
        let mut lying = agent.report(&second.new_guid, &certified);
        lying.management_key_algorithm = Some(0x08);
        assert_eq!(error_code(complete(&app, &ra, &started.issuance_id, lying).await).await, (401, "proof_invalid".into()));
        assert_eq!(cards_of_holder(&app).await, 0);
        let done = complete(&app, &ra, &started.issuance_id, agent.report(&second.new_guid, &certified)).await;
        assert_eq!(done.status(), 200);
        assert_eq!(agent.card(&second.new_guid, &second_new.new_puk).sign_in(&app).await.status(), 200);
    }
}

/// Rows an issuance start may write: issuances and audit entries.
async fn issuance_rows(app: &TestApp) -> (i64, i64) {
    let count =
        |sql| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(app.db.pool()).await.unwrap() };
    (count("SELECT COUNT(*) FROM issuances").await, count("SELECT COUNT(*) FROM audit_log").await)
}

on_both_databases! {
    async fn a_card_with_a_makers_chuid_is_blank_and_one_with_someone_elses_credentials_is_refused_with_nothing_written(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        let ra = officer(&app).await;
        add_holder(&app, &ra).await;
        // A brand-new card whose applet wrote its own CHUID: blank by its credentials.
        let maker_guid = "00112233445566778899aabbccddeeff";
        let mut agent = FakeAgent::new();
        let started: IssueStarted = start(&app, &ra, &agent, Some(maker_guid)).await.json().await.unwrap();
        let secrets = agent.open(&app, &started);
        assert_eq!(secrets.offered_guid.as_deref(), Some(maker_guid), "the agent checks the card still says it");
        assert_ne!(secrets.new_guid, maker_guid, "our GUID is written over the maker's");
        assert_eq!(secrets.current_puks.len(), 1, "only the factory PUK: nothing is recorded for a maker's GUID");
        let audit: String = sqlx::query_scalar("SELECT details FROM audit_log WHERE event = 'card_issue_started'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert!(audit.contains(maker_guid), "the maker's GUID is in the audit trail: {audit}");
        let certified = certify(&app, &ra, &agent, &secrets).await;
        let done = complete(&app, &ra, &started.issuance_id, agent.report(&secrets.new_guid, &certified)).await;
        assert_eq!(done.status(), 200);

        // Cards whose management key or PUK is not a factory one, with or without a CHUID: the
        // service does not hold their credentials. Refused before anything is recorded.
        let before = issuance_rows(&app).await;
        let other_system = "ffeeddccbbaa99887766554433221100";
        for (guid, factory_key, factory_puk, certificates) in [
            (None, None, None, false),
            (Some(other_system), None, None, false),
            (None, Some(0x03), Some(false), false),
            (Some(other_system), Some(0x03), None, true),
        ] {
            let mut foreign = FakeAgent::new();
            foreign.readiness = IssueReadiness { factory_key, factory_puk, attests: false, certificates };
            let refused = start(&app, &ra, &foreign, guid).await;
            let status = refused.status().as_u16();
            let body: serde_json::Value = refused.json().await.unwrap();
            assert_eq!((status, body["code"].as_str()), (409, Some("card_not_blank")), "{body}");
            let message = body["message"].as_str().unwrap();
            let why = ["not the factory one", "not a factory default", "another system issued it"];
            assert!(why.iter().any(|w| message.contains(w)), "{message}");
            assert!(message.contains("Nothing was written"), "{message}");
        }
        assert_eq!(issuance_rows(&app).await, before, "nothing written");
    }
}

on_both_databases! {
    async fn bad_keys_and_foreign_issuances_are_refused(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        let ra = officer(&app).await;
        add_holder(&app, &ra).await;
        let mut agent = FakeAgent::new();
        let mut bad = agent.start(None);
        bad.agent_key = STANDARD.encode([0u8; 32]);
        let refused = post(&app, &ra, &format!("/api/ra/users/{HOLDER}/issue"), &bad).await;
        assert_eq!(error_code(refused).await, (400, "invalid_request".into()));
        let mut no_reason = agent.start(None);
        no_reason.reason = " ".into();
        let refused = post(&app, &ra, &format!("/api/ra/users/{HOLDER}/issue"), &no_reason).await;
        assert_eq!(error_code(refused).await, (400, "reason_required".into()));

        let started: IssueStarted = start(&app, &ra, &agent, None).await.json().await.unwrap();
        let secrets = agent.open(&app, &started);
        let path = format!("/api/ra/issuances/{}/keys", started.issuance_id);
        let good = agent.keys(&secrets);
        let not_a_point = IssueKeys { piv_auth_key: STANDARD.encode([4u8; 65]), ..good.clone() };
        assert_eq!(error_code(post(&app, &ra, &path, &not_a_point).await).await, (400, "invalid_request".into()));
        let same = IssueKeys { piv_auth_key: good.card_auth_key.clone(), ..good.clone() };
        assert_eq!(error_code(post(&app, &ra, &path, &same).await).await, (400, "invalid_request".into()));
        // A key the card did not sign for gets no secrets (the page swapped in its own key).
        let swapped = IssueKeys { offer_key: OneTimeKey::generate().public_key(), ..good.clone() };
        assert_eq!(error_code(post(&app, &ra, &path, &swapped).await).await, (401, "offer_invalid".into()));
        // Another officer cannot drive this officer's issuance.
        let other = TestCard::new();
        other.issue_with_roles(&app, "600000000010", "Ola Other", "ola@nhs.net", &["ra".into()]).await;
        let other_client = TestApp::browser_like_client(&app.address);
        assert_eq!(other.sign_in_with(&app, &other_client).await.status(), 200);
        assert_eq!(error_code(post(&app, &other_client, &path, &good).await).await, (409, "issuance_ended".into()));
        assert_eq!(error_code(post(&app, &ra, "/api/ra/issuances/nope/keys", &good).await).await, (409, "issuance_ended".into()));
        assert_eq!(post(&app, &ra, &path, &good).await.status(), 200, "still open for its own officer");
    }
}

/// (status, certificates written) of an issuance.
async fn issuance_state(app: &TestApp, id: &str) -> (String, bool) {
    let row = sqlx::query("SELECT status, piv_auth_certificate FROM issuances WHERE id = $1")
        .bind(id)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    (row.get("status"), row.get::<Option<Vec<u8>>, _>("piv_auth_certificate").is_some())
}

on_both_databases! {
    async fn with_attestation_roots_only_keys_a_trusted_card_made_are_certified(engine: Engine) {
        use der::EncodePem;
        let makers = tempfile::tempdir().unwrap();
        let maker = CertificateAuthority::load_or_create_maker(&makers.path().join("maker")).unwrap();
        let roots = makers.path().join("roots.pem");
        std::fs::write(&roots, maker.certificate().to_pem(der::pem::LineEnding::LF).unwrap()).unwrap();
        let app = TestApp::spawn_with(engine, |s| s.attestation_roots = vec![roots.clone()]).await;
        let ra = officer(&app).await;
        add_holder(&app, &ra).await;
        let keys_path = |id: &str| format!("/api/ra/issuances/{id}/keys");

        // A card that cannot attest is refused at the start, before anything is recorded.
        let before = issuance_rows(&app).await;
        let plain = FakeAgent::new();
        assert_eq!(error_code(start(&app, &ra, &plain, None).await).await, (422, "attestation_required".into()));
        assert_eq!(issuance_rows(&app).await, before, "nothing written");
        // An RA session (or a script in it) that claims a card with attestation, with software
        // keys and no card: nothing certified.
        let mut software = FakeAgent::new();
        software.readiness.attests = true;
        let started: IssueStarted = start(&app, &ra, &software, None).await.json().await.unwrap();
        let secrets = software.open(&app, &started);
        assert!(secrets.attestation_required, "the agent is told, so a real card without it is not touched");
        let refused = post(&app, &ra, &keys_path(&started.issuance_id), &software.keys(&secrets)).await;
        assert_eq!(error_code(refused).await, (422, "attestation_required".into()));
        assert_eq!(issuance_state(&app, &started.issuance_id).await, ("started".into(), false));
        // …with a "maker" of its own under the same name: refused.
        let forger = CertificateAuthority::load_or_create_maker(&makers.path().join("forger")).unwrap();
        let mut forged = FakeAgent::attested_by(&forger);
        let started: IssueStarted = start(&app, &ra, &forged, None).await.json().await.unwrap();
        let secrets = forged.open(&app, &started);
        let refused = post(&app, &ra, &keys_path(&started.issuance_id), &forged.keys(&secrets)).await;
        assert_eq!(error_code(refused).await, (422, "attestation_invalid".into()));
        // …with a genuine card's attestation, but of the card's own keys, not the software ones.
        let mut genuine = FakeAgent::attested_by(&maker);
        let started: IssueStarted = start(&app, &ra, &genuine, None).await.json().await.unwrap();
        let secrets = genuine.open(&app, &started);
        let mut swapped = genuine.keys(&secrets);
        swapped.attestation = genuine.attestation(&SigningKey::random(&mut rand_core::OsRng), &genuine.card_auth);
        let refused = post(&app, &ra, &keys_path(&started.issuance_id), &swapped).await;
        assert_eq!(error_code(refused).await, (422, "attestation_invalid".into()));
        assert_eq!(issuance_state(&app, &started.issuance_id).await, ("started".into(), false));
        assert_eq!(cards_of_holder(&app).await, 0);

        // The card's own attestation of its keys: certified, and the audit trail says by whom.
        let certified = certify(&app, &ra, &genuine, &secrets).await;
        let new = genuine.open_new(&app, &certified);
        let done = complete(&app, &ra, &started.issuance_id, genuine.report(&secrets.new_guid, &certified)).await;
        assert_eq!(done.status(), 200);
        assert_eq!(genuine.card(&secrets.new_guid, &new.new_puk).sign_in(&app).await.status(), 200);
        let details: String = sqlx::query_scalar("SELECT details FROM audit_log WHERE event = 'card_keys_certified'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert!(details.contains("Card Maker") && details.contains("4242"), "{details}");
    }
}

on_both_databases! {
    async fn a_half_issued_card_is_resumed_only_by_its_officer_for_its_person_before_it_expires(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        let ra = officer(&app).await;
        add_holder(&app, &ra).await;
        let mut agent = FakeAgent::new();
        let started: IssueStarted = start(&app, &ra, &agent, None).await.json().await.unwrap();
        let guid = agent.open(&app, &started).new_guid;
        let issuances = || async {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM issuances").fetch_one(app.db.pool()).await.unwrap()
        };
        let before = issuances().await;

        // Another officer, who read the GUID in the audit trail, asks for its recorded secrets.
        let other = TestCard::new();
        other.issue_with_roles(&app, "600000000010", "Ola Other", "ola@nhs.net", &["ra".into()]).await;
        let other_client = TestApp::browser_like_client(&app.address);
        assert_eq!(other.sign_in_with(&app, &other_client).await.status(), 200);
        let thief = FakeAgent::new();
        let refused = post(&app, &other_client, &format!("/api/ra/users/{HOLDER}/issue"), &thief.start(Some(&guid))).await;
        assert_eq!(error_code(refused).await, (409, "issuance_not_resumable".into()));
        // The same officer, for another person.
        let someone = NewPerson {
            user_id: "700000000002".into(),
            name: "Sam Someone".into(),
            contact_email: None,
            reason: "New starter, identity checked".into(),
        };
        assert_eq!(post(&app, &ra, "/api/ra/users", &someone).await.status(), 201);
        let refused = post(&app, &ra, "/api/ra/users/700000000002/issue", &thief.start(Some(&guid))).await;
        assert_eq!(error_code(refused).await, (409, "issuance_not_resumable".into()));
        // The same officer and person, after it expired.
        sqlx::query("UPDATE issuances SET expires_at = 0").execute(app.db.pool()).await.unwrap();
        let refused = start(&app, &ra, &thief, Some(&guid)).await;
        assert_eq!(error_code(refused).await, (409, "issuance_not_resumable".into()));
        assert_eq!(issuances().await, before, "nothing recorded, nothing sealed");
        let status: String = sqlx::query_scalar("SELECT status FROM issuances WHERE id = $1")
            .bind(&started.issuance_id)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert_eq!(status, "started", "the half-issued card's record is untouched");
    }
}
