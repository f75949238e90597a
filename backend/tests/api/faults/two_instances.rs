//! Two backend instances on one PostgreSQL (this test's app, and the real `backend serve` as a
//! child process on the same database and keys) racing on the same person: two releases and two
//! reports of one attempt at once, and fifty wrong answers split across both. Each limit and
//! invariant holds exactly, as with one instance.

use protocol::{agent::PukOnCard, api::UnlockQuestions, error_code::ErrorCode};

use crate::{
    helpers::{error_code, Engine, TestApp},
    logs::serve_as_child,
    unlock::{answers_for, holder, start},
    unlock_release::{past_the_code, proved, puks, release_opened},
};

async fn audited(app: &TestApp, event: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE event = $1")
        .bind(event)
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn two_instances_racing_on_one_attempt_release_one_puk_and_complete_it_once() {
    let (app, smtp, card) = holder(Engine::Postgres, true).await;
    let (url, mut child, _log) = serve_as_child(&app, &smtp.url());
    let other = app.through(&url);
    smtp.wait_for("hal@nhs.net", "You are registered", 1).await.unwrap();

    for round in 0..3usize {
        let attempt_id = past_the_code(&app, &smtp, &card, round).await;
        // Two releases at once, one through each instance (two tabs, or a retry that raced).
        let ((released_a, secrets_a), (released_b, secrets_b)) = tokio::join!(
            release_opened(&app, &card, &attempt_id),
            release_opened(&other, &card, &attempt_id)
        );
        let (current, pending, _) = puks(&app, &card).await;
        let pending = pending.expect("one PUK pending");
        assert_eq!(
            (secrets_a.new_puk.as_str(), secrets_b.new_puk.as_str()),
            (pending.as_str(), pending.as_str()),
            "round {round}: both envelopes rotate to the one pending PUK"
        );
        // The later may name the pending PUK as a candidate too (the other release may have
        // reached the card first), but each names the card's, and never a PUK the backend does
        // not hold.
        for secrets in [&secrets_a, &secrets_b] {
            assert!(secrets.current_puks.iter().any(|p| p.as_str() == current), "round {round}");
            assert!(secrets.current_puks.iter().all(|p| p.as_str() == current || p.as_str() == pending));
        }

        // The card rotated once; both reports of it arrive at once, one at each instance.
        let report_a = proved(&card, &attempt_id, &released_a, PukOnCard::Rotated);
        let report_b = proved(&card, &attempt_id, &released_b, PukOnCard::Rotated);
        let (a, b) = tokio::join!(
            app.post("/api/unlock/report", &report_a),
            other.post("/api/unlock/report", &report_b)
        );
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort_unstable();
        let loser = if a.status() == 204 { b } else { a };
        assert_eq!(statuses[0], 204, "round {round}: one report completes the unlock");
        // The other is told the attempt (or its proof's challenge, bound to the PUK that was
        // pending) has ended: a clear 400, and nothing changed by it.
        let refused = error_code(loser).await;
        assert!(
            [(400, "attempt_expired".to_owned()), (400, "challenge_expired".to_owned())].contains(&refused),
            "round {round}: {refused:?}"
        );
        let (current, pending, _) = puks(&app, &card).await;
        assert_eq!((current.as_str(), pending), (secrets_a.new_puk.as_str(), None), "round {round}");
        assert_eq!(
            audited(&app, "card_unlocked").await,
            i64::try_from(round).unwrap() + 1,
            "round {round}: completed once"
        );
        // Its notice is written once and sent once, by whichever instance's sender claims it.
        smtp.wait_for("hal@nhs.net", "Your smartcard was unlocked", round + 1).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let notices =
        smtp.messages_to("hal@nhs.net").iter().filter(|m| m.contains("Your smartcard was unlocked")).count();
    assert_eq!(notices, 3, "each unlock's notice exactly once");
    child.kill().unwrap();
}

#[tokio::test]
async fn fifty_wrong_answers_split_across_two_instances_count_exactly_to_the_limit() {
    let (app, smtp, card) = holder(Engine::Postgres, true).await;
    let (url, mut child, _log) = serve_as_child(&app, &smtp.url());
    let other = std::sync::Arc::new(app.through(&url));
    let questions: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
    let wrong = answers_for(&questions, false);
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let (instance, wrong) = (if n % 2 == 0 { app.clone() } else { other.clone() }, wrong.clone());
            tokio::spawn(async move { error_code(instance.post("/api/unlock/answers", &wrong).await).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let code = |c: ErrorCode| serde_json::to_value(c).unwrap().as_str().unwrap().to_owned();
    let allowed = [
        (400, code(ErrorCode::AnswersWrong)),
        (403, code(ErrorCode::LockedOut)),
        (400, code(ErrorCode::AttemptExpired)),
    ];
    assert!(outcomes.iter().all(|o| allowed.contains(o)), "{outcomes:?}");
    assert_eq!(
        (audited(&app, "unlock_answers_wrong").await, audited(&app, "selfservice_locked_out").await),
        (2, 1),
        "exactly three wrong submissions counted, the third locking: {outcomes:?}"
    );
    assert_eq!(error_code(start(&app, &card).await).await.0, 403, "locked out on both instances");
    assert_eq!(error_code(start(&other, &card).await).await.0, 403);
    child.kill().unwrap();
}
