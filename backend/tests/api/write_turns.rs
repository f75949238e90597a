//! SQLite's writers wait their turn in the process, holding no connection while they wait
//! (issue 16): readers go on beside a queue of writers, and a writer not given its turn in time
//! is told to try again rather than kept waiting.

use std::time::Duration;

use crate::helpers::{Engine, TestApp};

#[tokio::test]
async fn waiting_sqlite_writers_leave_the_connections_to_readers() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let writing = app.db.begin_write().await.unwrap();
    // More waiting writers than the pool has connections: left to SQLite's busy handler, each
    // would sleep holding one, and the reads below would time out.
    let waiting: Vec<_> = (0..8)
        .map(|_| {
            let db = app.db.clone();
            tokio::spawn(async move { db.begin_write().await.map(drop) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..8 {
        let one: i64 = sqlx::query_scalar("SELECT 1").fetch_one(app.db.pool()).await.unwrap();
        assert_eq!(one, 1);
    }
    // The turn is still taken: every waiting writer is turned away, as with no free connection.
    for writer in waiting {
        assert!(matches!(writer.await.unwrap(), Err(sqlx::Error::PoolTimedOut)));
    }
    writing.commit().await.unwrap();
    // Given back at commit: the next writer writes.
    let next = app.db.begin_write().await.unwrap();
    next.commit().await.unwrap();
}
