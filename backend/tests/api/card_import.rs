//! `backend admin import-cards`: cards an organisation already issued, with their holders, from
//! a CSV file — checked whole before anything is written, problems reported by line, a rerun
//! changing nothing; imported cards sign in and show in the RA console like issued ones.

use backend::vault::Vault;
use base64::{engine::general_purpose::STANDARD, Engine as _};
use card_ca::CertificateAuthority;
use der::Encode;
use p256::{ecdsa::SigningKey, pkcs8::EncodePublicKey};
use protocol::ra::UserDetail;

use crate::{
    cards::TestCard,
    helpers::TestApp,
    on_both_databases,
    ra::{get, officer},
};

const HEADER: &str = "user_id,name,email,roles,guid,piv_auth,card_auth,puk";

fn spki(key: &SigningKey) -> String {
    STANDARD.encode(key.verifying_key().to_public_key_der().unwrap().as_bytes())
}

fn write(app: &TestApp, name: &str, lines: &[String]) -> String {
    let path = app.data_dir().join(name);
    std::fs::write(&path, format!("{HEADER}\n{}\n", lines.join("\n"))).unwrap();
    path.to_str().unwrap().to_owned()
}

async fn counts(app: &TestApp) -> (i64, i64, i64) {
    let count =
        |sql| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(app.db.pool()).await.unwrap() };
    (
        count("SELECT COUNT(*) FROM users").await,
        count("SELECT COUNT(*) FROM cards").await,
        count("SELECT COUNT(*) FROM audit_log").await,
    )
}

on_both_databases! {
    async fn cards_are_imported_whole_once_and_sign_in_like_issued_ones(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        let ra = officer(&app).await;
        let (ann_work, ann_spare, raj) = (TestCard::new(), TestCard::new(), TestCard::new());
        // One row with certificates (from a CA of the organisation's), the others with keys.
        let ca = CertificateAuthority::load_or_create(&app.data_dir().join("their-ca")).unwrap();
        let certificate = |key: &SigningKey, what| {
            let point = key.verifying_key().to_encoded_point(false);
            STANDARD.encode(ca.issue(point.as_bytes(), "Ann Import", what).unwrap().to_der().unwrap())
        };
        let rows = [
            format!("730000000001,\"Import, Ann\",ann@nhs.net,,{},{},{},11112222", ann_work.guid,
                certificate(&ann_work.piv_auth, "PIV Authentication"), certificate(&ann_work.card_auth, "Card Authentication")),
            format!("730000000001,\"Import, Ann\",ann@nhs.net,,{},{},{},", ann_spare.guid, spki(&ann_spare.piv_auth), spki(&ann_spare.card_auth)),
            format!("730000000002,Raj Registrar,raj@nhs.net,ra,{},{},{},33334444", raj.guid, spki(&raj.piv_auth), spki(&raj.card_auth)),
        ];
        let file = write(&app, "cards.csv", &rows);
        let before = counts(&app).await;
        let run = app.admin(&["import-cards", &file]);
        let out = String::from_utf8_lossy(&run.stdout).into_owned();
        assert!(run.status.success(), "{out}{}", String::from_utf8_lossy(&run.stderr));
        assert!(out.contains("3 rows: 2 people and 3 cards added, 2 PUKs recorded"), "{out}");
        let after = counts(&app).await;
        assert_eq!((after.0 - before.0, after.1 - before.1), (2, 3));
        assert_eq!(after.2 - before.2, 4, "each card audited, and the import");

        // The cards sign in; the PUK is sealed and opens; the RA console shows them.
        for card in [&ann_work, &ann_spare, &raj] {
            assert_eq!(card.sign_in(&app).await.status(), 200);
        }
        let sealed: Vec<u8> = sqlx::query_scalar("SELECT puk_sealed FROM cards WHERE guid = $1")
            .bind(ann_work.guid.as_str()).fetch_one(app.db.pool()).await.unwrap();
        assert_eq!(Vault::from_settings(&app.settings).unwrap().open(&ann_work.guid, &sealed).unwrap().as_str(), "11112222");
        let detail: UserDetail = get(&app, &ra, "/api/ra/users/730000000001").await.json().await.unwrap();
        assert_eq!((detail.name.as_str(), detail.cards.len()), ("Import, Ann", 2));
        let raj_detail: UserDetail = get(&app, &ra, "/api/ra/users/730000000002").await.json().await.unwrap();
        assert_eq!(raj_detail.roles, ["ra"]);

        // Run again: nothing changes, not even the audit trail.
        let after = counts(&app).await;
        let again = app.admin(&["import-cards", &file]);
        assert!(String::from_utf8_lossy(&again.stdout).contains("3 rows: 0 people and 0 cards added, 0 PUKs recorded"));
        assert_eq!(counts(&app).await, after);

        // A file with problems: each reported with its line, none of its rows written, no PUK echoed.
        let newcomer = TestCard::new();
        let bad = [
            format!("730000000003,Nia New,nia@nhs.net,,{},{},{},55556666", newcomer.guid, spki(&newcomer.piv_auth), spki(&newcomer.card_auth)),
            format!("730000000004,Bad Guid,,,12zz,{},{},", spki(&newcomer.piv_auth), spki(&newcomer.card_auth)),
            format!("730000000005,Dup Card,,,{},{},{},", newcomer.guid, spki(&newcomer.card_auth), spki(&newcomer.piv_auth)),
            format!("730000000006,Odd Role,,admin,{},{},{},", TestCard::new().guid, spki(&newcomer.piv_auth), spki(&newcomer.card_auth)),
            format!("730000000007,Short Puk,,,{},notbase64!,{},12x", TestCard::new().guid, spki(&newcomer.card_auth)),
            format!("730000000001,Ann Renamed,ann@nhs.net,,{},{},{},", TestCard::new().guid, spki(&ann_spare.piv_auth), spki(&ann_spare.card_auth)),
            format!("730000000008,Takes Raj,,,{},{},{},", raj.guid, spki(&raj.piv_auth), spki(&raj.card_auth)),
        ];
        let refused = app.admin(&["import-cards", &write(&app, "bad.csv", &bad)]);
        let err = String::from_utf8_lossy(&refused.stderr).into_owned();
        assert!(!refused.status.success(), "{err}");
        for expected in ["line 3: guid must be 32 hex digits", "line 4: card", "is also on line 2", "line 5: unknown role \"admin\"", "line 6: piv_auth: not base64", "line 7: 730000000001 is already on record with another name", "line 8: card"] {
            assert!(err.contains(expected), "{expected:?} not in:\n{err}");
        }
        assert!(!err.contains("12x") && !err.contains("55556666"), "no PUK in the report: {err}");
        assert_eq!(counts(&app).await, after, "nothing written");
    }
}
