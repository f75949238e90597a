//! `backend admin rotate-kek`: every sealed secret moves to the new key-encryption key, and a
//! rotation killed half-way leaves every secret opening and is finished by running it again.

use backend::vault::Vault;
use base64::{engine::general_purpose::STANDARD, Engine as _};
use sqlx::Row;

use crate::{cards::TestCard, helpers::TestApp, on_both_databases};

/// Every sealed value with what it is bound to, as the rotation sees them.
async fn sealed_values(app: &TestApp) -> Vec<(&'static str, String, Vec<u8>)> {
    let mut values = Vec::new();
    for row in sqlx::query("SELECT guid, puk_sealed, mgmt_key_sealed FROM cards")
        .fetch_all(app.db.pool())
        .await
        .unwrap()
    {
        let guid: String = row.get(0);
        values.push(("puk", guid.clone(), row.get::<Vec<u8>, _>(1)));
        if let Some(key) = row.get::<Option<Vec<u8>>, _>(2) {
            values.push(("management key", guid, key));
        }
    }
    for row in sqlx::query("SELECT to_addr, body FROM mail_outbox").fetch_all(app.db.pool()).await.unwrap() {
        let body: String = row.get(1);
        let sealed = STANDARD.decode(body.strip_prefix("sealed:v1:").unwrap()).unwrap();
        values.push(("mail", row.get(0), sealed));
    }
    values
}

fn opens(vault: &Vault, (kind, bound, sealed): &(&str, String, Vec<u8>)) -> String {
    match *kind {
        "puk" => vault.open(bound, sealed),
        "management key" => vault.open_management_key(bound, sealed),
        _ => vault.open_mail(bound, sealed),
    }
    .unwrap_or_else(|_| panic!("a {kind} of {bound} does not open"))
    .to_string()
}

fn key_file(dir: &std::path::Path, name: &str) -> [u8; 32] {
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    STANDARD.decode(text.trim()).unwrap().try_into().unwrap()
}

on_both_databases! {
    async fn a_rotation_killed_half_way_leaves_every_secret_opening_and_a_rerun_finishes_it(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        let old = Vault::from_settings(&app.settings).unwrap();
        for n in 0..4 {
            let card = TestCard::new();
            card.issue_to(&app, &format!("71000000000{n}"), "Kim Keyholder", &format!("kim{n}@nhs.net")).await;
            let key = old.seal_management_key(card.guid.as_str(), "3:0102030405060708").unwrap();
            sqlx::query("UPDATE cards SET mgmt_key_sealed = $1 WHERE guid = $2")
                .bind(key).bind(card.guid.as_str()).execute(app.db.pool()).await.unwrap();
        }
        let mail = format!("sealed:v1:{}", STANDARD.encode(old.seal_mail("kim0@nhs.net", "Your code is 123456").unwrap()));
        sqlx::query("INSERT INTO mail_outbox (to_addr, subject, body, created_at, attempts, next_attempt_at) VALUES ($1, 'Code', $2, 0, 0, 0)")
            .bind("kim0@nhs.net").bind(mail).execute(app.db.pool()).await.unwrap();
        let before = sealed_values(&app).await;
        assert_eq!(before.len(), 9);
        let secrets: Vec<String> = before.iter().map(|v| opens(&old, v)).collect();

        let old_key = key_file(app.data_dir(), "puk.kek");
        let new_key = [0x42u8; 32];
        let file = app.data_dir().join("new.kek");
        std::fs::write(&file, STANDARD.encode(new_key)).unwrap();
        let file = file.to_str().unwrap();

        // Killed after 3 values: some under the new key, the rest under the old; all open.
        let stopped = app.admin(&["rotate-kek", "--new-kek-file", file, "--stop-after", "3"]);
        assert!(!stopped.status.success(), "the rotation was stopped");
        let both = Vault::with_others(&new_key, &[old_key]);
        let halfway = sealed_values(&app).await;
        let moved = halfway.iter().filter(|(_, _, s)| Vault::sealed_by(s) == Some(both.kek_id())).count();
        assert_eq!(moved, 3);
        assert_eq!(halfway.iter().map(|v| opens(&both, v)).collect::<Vec<_>>(), secrets);
        assert_eq!(key_file(app.data_dir(), "puk.kek"), old_key, "the key file is swapped only at the end");

        // Run again: the rest moves, and the new key alone opens everything.
        let rerun = app.admin(&["rotate-kek", "--new-kek-file", file]);
        let out = String::from_utf8_lossy(&rerun.stdout);
        assert!(rerun.status.success(), "{out}{}", String::from_utf8_lossy(&rerun.stderr));
        assert!(out.contains("6 secrets sealed again under the new key (3 were already)"), "{out}");
        let after = sealed_values(&app).await;
        let new_only = Vault::new(&new_key);
        assert_eq!(after.iter().map(|v| opens(&new_only, v)).collect::<Vec<_>>(), secrets);
        assert!(after.iter().all(|(_, _, s)| Vault::sealed_by(s) == Some(new_only.kek_id())));
        // The embedded default's key file now holds the new key; the old one opens stragglers.
        assert_eq!(key_file(app.data_dir(), "puk.kek"), new_key);
        assert_eq!(key_file(app.data_dir(), backend::vault::PREVIOUS_KEK_FILE), old_key);
        assert_eq!(Vault::from_settings(&app.settings).unwrap().kek_id(), new_only.kek_id());
        assert_eq!(opens(&Vault::from_settings(&app.settings).unwrap(), &before[0]), secrets[0]);
        // Audited, and a third run finds nothing to do.
        let audited: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE event = 'kek_rotated'")
            .fetch_one(app.db.pool()).await.unwrap();
        assert_eq!(audited, 1);
        let again = app.admin(&["rotate-kek", "--new-kek-file", file]);
        assert!(String::from_utf8_lossy(&again.stdout).contains("0 secrets sealed again under the new key (9 were already)"));
        assert!(backend::audit::first_broken_row(&app.db).await.unwrap().is_none());
    }
}
