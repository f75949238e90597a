//! The embedded default's disk fills up (its data folder on a small tmpfs, filled by a file):
//! writes get a clear 503, nothing is corrupted, and the service comes back when space does.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use protocol::{agent::PukOnCard, api::UnlockQuestions};

use crate::{
    helpers::{Engine, TestApp},
    unlock::{answers_for, holder_with, start},
    unlock_release::{past_the_code, proved, release_opened},
};

/// A small tmpfs mounted for one test, unmounted when dropped (mounting needs root, which the
/// test command runs as: it installs packages).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs needs root (the test command runs as root)");
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        // The last partial block: fill to the last byte.
        while file.write_all(&[0]).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

async fn status_and_code(app: &TestApp, path: &str) -> (u16, Option<String>) {
    let response = app.post(path, &()).await;
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    (status, body["code"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn a_full_disk_is_a_clear_503_loses_nothing_and_passes_when_space_returns() {
    let disk = SmallDisk::mount("8m");
    let data = disk.path().join("data");
    let (app, smtp, card) = holder_with(Engine::Sqlite, true, |s| s.data_dir = data).await;
    // An unlock in progress: its attempt written before the disk fills.
    let attempt_id = past_the_code(&app, &smtp, &card, 0).await;

    let filler = disk.fill();
    let mut refused = 0;
    for _ in 0..50 {
        match status_and_code(&app, "/api/unlock/challenge").await {
            (200, _) => {}
            (503, Some(code)) if code == "unavailable" => refused += 1,
            other => panic!("a full disk is a 503 `unavailable`, never {other:?}"),
        }
    }
    assert!(refused > 0, "the writes met the full disk");

    std::fs::remove_file(filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while status_and_code(&app, "/api/unlock/challenge").await.0 != 200 {
        assert!(Instant::now() < deadline, "the service did not recover when space returned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Nothing corrupted: SQLite's own check, and the audit trail's chain.
    let integrity: String =
        sqlx::query_scalar("PRAGMA integrity_check").fetch_one(app.db.pool()).await.unwrap();
    assert_eq!(integrity, "ok");
    let verified = app.admin(&["verify-audit"]);
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));

    // The unlock written before goes on to the end, and a new one can start.
    let (released, _) = release_opened(&app, &card, &attempt_id).await;
    let reported = proved(&card, &attempt_id, &released, PukOnCard::Rotated);
    assert_eq!(app.post("/api/unlock/report", &reported).await.status(), 204);
    sqlx::query("UPDATE one_time_codes SET created_at = created_at - 300")
        .execute(app.db.pool())
        .await
        .unwrap();
    let again: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
    assert_eq!(app.post("/api/unlock/answers", &answers_for(&again, true)).await.status(), 200);
}
