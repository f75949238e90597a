//! The audit trail's lanes (migration 0016): on PostgreSQL a commit chains onto a lane no one
//! else holds, so writers do not queue on one row lock; and an intruder with write access to the
//! database, but not the key, cannot hide rows by emptying, moving or cutting lanes.

use std::time::Duration;

use backend::{audit, db::Database};
use sqlx::{Any, Transaction};

use crate::{
    helpers::{Engine, TestApp},
    on_both_databases,
};

/// Holds the heads `which` picks (a `WHERE` on `audit_head`) until the transaction is dropped, as
/// another writer in the middle of its commit does.
async fn hold_heads(db: &Database, which: &str) -> Transaction<'static, Any> {
    let mut tx = db.pool().begin().await.unwrap();
    sqlx::query(&format!("SELECT id FROM audit_head WHERE {which} FOR UPDATE"))
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}

async fn record(db: &Database, i: i64) {
    audit::record(db, audit::Entry::new(audit::SYSTEM, "test_event").details(serde_json::json!({ "i": i })))
        .await
        .unwrap();
}

/// Writes `n` rows onto lane 2: lane 1 held meanwhile. Each must not wait for the holder.
async fn record_on_lane_two(db: &Database, n: i64) {
    let held = hold_heads(db, "id = 1").await;
    for i in 0..n {
        tokio::time::timeout(Duration::from_secs(10), record(db, i))
            .await
            .expect("a free lane is taken at once");
    }
    drop(held);
}

/// What an intruder does to make lane 2 look never written: its rows cut, its head back at its
/// start, its seal cleared.
async fn empty_lane_two(conn: &mut sqlx::AnyConnection) {
    sqlx::query("DELETE FROM audit_log WHERE lane = 2").execute(&mut *conn).await.unwrap();
    sqlx::query("UPDATE audit_head SET hash = $1, seal = NULL WHERE id = 2")
        .bind(audit::genesis(2))
        .execute(&mut *conn)
        .await
        .unwrap();
}

async fn lane_rows(db: &Database, lane: i64) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE lane = $1")
        .bind(lane)
        .fetch_one(db.pool())
        .await
        .unwrap()
}

async fn broken(db: &Database) -> bool {
    audit::first_broken_row(db).await.unwrap().is_some()
}

#[tokio::test]
async fn a_commit_takes_a_lane_no_one_else_holds_and_reports_add_the_lanes_up() {
    let app = TestApp::spawn(Engine::Postgres).await;
    record_on_lane_two(&app.db, 3).await;
    assert_eq!(lane_rows(&app.db, 2).await, 3);
    record(&app.db, 3).await;
    let first_lane: i64 = sqlx::query_scalar("SELECT lane FROM audit_log ORDER BY id DESC LIMIT 1")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(first_lane, 1, "with no one holding it, the first lane");
    assert!(!broken(&app.db).await);

    // The day's count is kept per lane (so commits do not queue on one counter row) and read
    // as one.
    let today = backend::time::now_unix() / 86_400;
    let per_lane: Vec<i64> =
        sqlx::query_scalar("SELECT n FROM audit_daily WHERE event = 'test_event' ORDER BY lane")
            .fetch_all(app.db.pool())
            .await
            .unwrap();
    assert_eq!(per_lane, [1, 3]);
    let mut conn = app.db.pool().acquire().await.unwrap();
    let counted = audit::daily_counts(&mut conn, today, today, &["test_event"]).await.unwrap();
    assert_eq!(counted, [(today, "test_event".to_owned(), 4)]);
}

#[tokio::test]
async fn with_every_lane_held_a_commit_waits_for_one() {
    let app = TestApp::spawn(Engine::Postgres).await;
    let held = hold_heads(&app.db, "TRUE").await;
    let db = app.db.clone();
    let writer = tokio::spawn(async move { record(&db, 1).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!writer.is_finished(), "it waits for a lane");
    drop(held);
    tokio::time::timeout(Duration::from_secs(10), writer).await.unwrap().unwrap();
    assert!(!broken(&app.db).await);
}

#[tokio::test]
async fn the_lanes_are_opened_once_and_recorded_on_lane_one() {
    let app = TestApp::spawn(Engine::Postgres).await;
    let sealed = || async {
        sqlx::query_scalar::<_, i64>("SELECT id FROM audit_head WHERE seal IS NOT NULL ORDER BY id")
            .fetch_all(app.db.pool())
            .await
            .unwrap()
    };
    assert_eq!(sealed().await, (1..=audit::lanes(app.db.kind())).collect::<Vec<_>>());
    let opened = || async {
        sqlx::query_as::<_, (i64, String)>("SELECT lane, details FROM audit_log WHERE event = $1")
            .bind(audit::LANES_OPENED)
            .fetch_all(app.db.pool())
            .await
            .unwrap()
    };
    assert_eq!(opened().await, [(1, r#"{"lanes":16}"#.to_owned())]);
    assert!(!broken(&app.db).await);
    // A later start finds the entry and seals nothing, not even a lane whose seal was cleared.
    sqlx::query("UPDATE audit_head SET seal = NULL WHERE id = 5").execute(app.db.pool()).await.unwrap();
    app.db.migrate().await.unwrap();
    assert!(!sealed().await.contains(&5));
    assert_eq!(opened().await.len(), 1);
    assert!(broken(&app.db).await);
}

#[tokio::test]
async fn a_lane_emptied_and_unsealed_is_found_and_a_restart_does_not_seal_it_again() {
    let app = TestApp::spawn(Engine::Postgres).await;
    record_on_lane_two(&app.db, 3).await;
    // The intruder deletes lane 2's rows and makes its head look like one never used.
    empty_lane_two(&mut app.db.pool().acquire().await.unwrap()).await;
    assert!(broken(&app.db).await);
    app.db.migrate().await.unwrap();
    assert!(broken(&app.db).await, "the next start does not bless it");
    let seal: Option<Vec<u8>> = sqlx::query_scalar("SELECT seal FROM audit_head WHERE id = 2")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(seal, None);
}

#[tokio::test]
async fn a_lane_never_written_with_its_seal_cleared_is_found() {
    let app = TestApp::spawn(Engine::Postgres).await;
    record(&app.db, 1).await;
    sqlx::query("UPDATE audit_head SET seal = NULL WHERE id = 5").execute(app.db.pool()).await.unwrap();
    assert!(broken(&app.db).await);
}

#[tokio::test]
async fn a_row_moved_to_another_lane_is_found() {
    let app = TestApp::spawn(Engine::Postgres).await;
    record_on_lane_two(&app.db, 3).await;
    let middle: i64 =
        sqlx::query_scalar("SELECT id FROM audit_log WHERE lane = 2 ORDER BY id LIMIT 1 OFFSET 1")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    sqlx::query("UPDATE audit_log SET lane = 3 WHERE id = $1")
        .bind(middle)
        .execute(app.db.pool())
        .await
        .unwrap();
    assert_eq!(audit::first_broken_row(&app.db).await.unwrap(), Some(middle));
}

#[tokio::test]
async fn a_lane_cut_with_its_head_is_found_and_not_made_again() {
    let app = TestApp::spawn(Engine::Postgres).await;
    record_on_lane_two(&app.db, 2).await;
    sqlx::query("DELETE FROM audit_log WHERE lane = 2").execute(app.db.pool()).await.unwrap();
    sqlx::query("DELETE FROM audit_head WHERE id = 2").execute(app.db.pool()).await.unwrap();
    assert!(broken(&app.db).await);
    app.db.migrate().await.unwrap();
    assert!(broken(&app.db).await);
    let heads: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_head").fetch_one(app.db.pool()).await.unwrap();
    assert_eq!(heads, 15);
}

#[tokio::test]
async fn cutting_the_entry_that_opened_the_lanes_is_found_and_a_restart_does_not_bless_it() {
    let app = TestApp::spawn(Engine::Postgres).await;
    record_on_lane_two(&app.db, 2).await;
    record(&app.db, 9).await;
    // Without the entry, empty unsealed lanes would pass for lanes never opened: the intruder
    // cuts it, empties lane 2 and clears the seals, then restarts the backend so that it opens
    // the lanes afresh.
    sqlx::query("DELETE FROM audit_log WHERE event = $1")
        .bind(audit::LANES_OPENED)
        .execute(app.db.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_log WHERE lane = 2").execute(app.db.pool()).await.unwrap();
    sqlx::query(
        "UPDATE audit_head SET hash = decode(lpad(to_hex(id), 64, '0'), 'hex'), seal = NULL WHERE id > 1",
    )
    .execute(app.db.pool())
    .await
    .unwrap();
    assert!(broken(&app.db).await, "lane 1's chain no longer holds together");
    app.db.migrate().await.unwrap();
    assert!(broken(&app.db).await);
}

#[tokio::test]
async fn the_entry_hidden_for_a_restart_and_put_back_does_not_get_emptied_lanes_sealed() {
    let app = TestApp::spawn(Engine::Postgres).await;
    record_on_lane_two(&app.db, 2).await;
    record(&app.db, 9).await;
    // The intruder keeps a copy of the entry, cuts it, empties lane 2 back to never written and
    // restarts the backend, hoping it opens the lanes afresh; then puts the entry back.
    let mut intruder = app.db.pool().acquire().await.unwrap();
    sqlx::query("CREATE TEMPORARY TABLE kept AS SELECT * FROM audit_log WHERE event = $1")
        .bind(audit::LANES_OPENED)
        .execute(&mut *intruder)
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_log WHERE event = $1")
        .bind(audit::LANES_OPENED)
        .execute(&mut *intruder)
        .await
        .unwrap();
    empty_lane_two(&mut intruder).await;
    app.db.migrate().await.unwrap();
    sqlx::query("INSERT INTO audit_log SELECT * FROM kept").execute(&mut *intruder).await.unwrap();
    let seal: Option<Vec<u8>> = sqlx::query_scalar("SELECT seal FROM audit_head WHERE id = 2")
        .fetch_one(&mut *intruder)
        .await
        .unwrap();
    assert_eq!(seal, None, "the restart sealed nothing over a trail that did not verify");
    assert!(broken(&app.db).await);
}

#[tokio::test]
async fn heads_swapped_between_lanes_are_found() {
    let app = TestApp::spawn(Engine::Postgres).await;
    record_on_lane_two(&app.db, 2).await;
    // Lane 2's rows and head become lane 3's, and lane 3's empty head lane 2's: each chain
    // still ends at its head, but a lane's rows start from that lane's own value and each seal
    // names the lane it was made for.
    sqlx::query("UPDATE audit_log SET lane = 3 WHERE lane = 2").execute(app.db.pool()).await.unwrap();
    sqlx::query(
        "UPDATE audit_head SET hash = swapped.hash, seal = swapped.seal FROM audit_head AS swapped \
         WHERE (audit_head.id, swapped.id) IN ((2, 3), (3, 2))",
    )
    .execute(app.db.pool())
    .await
    .unwrap();
    assert!(broken(&app.db).await);
}

on_both_databases! {
    async fn a_cleared_seal_is_found_and_not_sealed_again_at_the_next_start(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        record(&app.db, 1).await;
        sqlx::query("UPDATE audit_head SET seal = NULL WHERE id = 1").execute(app.db.pool()).await.unwrap();
        assert!(broken(&app.db).await);
        app.db.migrate().await.unwrap();
        assert!(broken(&app.db).await, "a restart does not seal a head over keyed rows");
    }
}

on_both_databases! {
    async fn a_head_pointed_back_is_not_sealed_again_by_the_commits_after_it(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        for i in 0..3 {
            record(&app.db, i).await;
        }
        // The intruder cuts the newest row and points the head at the one before, leaving the
        // seal; the next commits must not seal over it.
        let newest: i64 = sqlx::query_scalar("SELECT MAX(id) FROM audit_log").fetch_one(app.db.pool()).await.unwrap();
        sqlx::query("DELETE FROM audit_log WHERE id = $1").bind(newest).execute(app.db.pool()).await.unwrap();
        sqlx::query("UPDATE audit_head SET hash = (SELECT hash FROM audit_log WHERE id = $1) WHERE id = 1")
            .bind(newest - 1)
            .execute(app.db.pool())
            .await
            .unwrap();
        for i in 3..6 {
            record(&app.db, i).await;
        }
        let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE event = 'test_event'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert_eq!(recorded, 5, "the service goes on recording");
        assert!(broken(&app.db).await, "and the damage stays found");
    }
}

on_both_databases! {
    async fn a_row_given_the_least_id_there_is_is_found(engine: Engine) {
        let app = TestApp::spawn(engine).await;
        record(&app.db, 1).await;
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, event, details, prev_hash, hash, keyed, lane) \
             VALUES ($1, 0, 'system', 'card_unlocked', '{}', $2, $3, 1, 1)",
        )
        .bind(i64::MIN)
        .bind(vec![0u8; 32])
        .bind(vec![7u8; 32])
        .execute(app.db.pool())
        .await
        .unwrap();
        assert_eq!(audit::first_broken_row(&app.db).await.unwrap(), Some(i64::MIN));
    }
}
