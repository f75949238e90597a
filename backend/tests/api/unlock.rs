//! Unlock, first part: the card's 9E proof, the holder's questions, the lockout and the code.

use protocol::api::{
    ApiErrorBody, ChallengeIssued, CodeRequest, ProofRequest, QuestionAnswer, RegistrationRequest,
    UnlockAnswers, UnlockCode, UnlockCodeSent, UnlockQuestions, UnlockStart,
};
use protocol::error_code::ErrorCode;

use crate::{
    cards::{sign, Purpose, TestCard},
    helpers::{error_code, Engine, TestApp},
    on_both_databases,
    smtp::{code_in, SmtpServer},
};

pub const ANSWERS: [(u32, &str); 4] = [(3, "Jaws"), (7, "Leeds"), (11, "Sam"), (19, "Blue moon")];

/// A holder with a card, registered (through the API) when `register` is set.
pub async fn holder(engine: Engine, register: bool) -> (TestApp, SmtpServer, TestCard) {
    holder_with(engine, register, |_| {}).await
}

/// As [`holder`], with the backend's settings adjusted by `configure`.
pub async fn holder_with(
    engine: Engine,
    register: bool,
    configure: impl FnOnce(&mut backend::config::Settings),
) -> (TestApp, SmtpServer, TestCard) {
    let smtp = SmtpServer::start().unwrap();
    let url = smtp.url();
    let app = TestApp::spawn_with(engine, |s| {
        s.smtp_url = Some(url);
        configure(s);
    })
    .await;
    let card = TestCard::new();
    card.issue_to(&app, "500000000001", "Hal Holder", "hal@nhs.net").await;
    if register {
        assert_eq!(card.sign_in(&app).await.status(), 200);
        let issued: ChallengeIssued =
            app.post("/api/registration/challenge", &()).await.json().await.unwrap();
        let proof = ProofRequest {
            challenge_id: issued.challenge_id,
            signature: card.sign_9a(Purpose::RegistrationProof, &issued.challenge),
        };
        assert_eq!(app.post("/api/registration/proof", &proof).await.status(), 204);
        let answers =
            ANSWERS.iter().map(|(q, a)| QuestionAnswer { question_id: *q, answer: (*a).into() }).collect();
        let request = RegistrationRequest { answers, email: "hal@nhs.net".into() };
        assert_eq!(app.post("/api/registration", &request).await.status(), 201);
        let code = code_in(&smtp.wait_for("hal@nhs.net", "registration code", 1).await.unwrap()).unwrap();
        assert_eq!(app.post("/api/registration/confirm", &CodeRequest { code }).await.status(), 200);
        assert_eq!(app.post("/api/sign-out", &()).await.status(), 204);
    }
    (app, smtp, card)
}

/// The holder's unlock tries counted and not given back (`users.unlock_failures`).
pub async fn failures(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT unlock_failures FROM users WHERE user_id = '500000000001'")
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

pub async fn start(app: &TestApp, card: &TestCard) -> reqwest::Response {
    let issued: ChallengeIssued = app.post("/api/unlock/challenge", &()).await.json().await.unwrap();
    let request = UnlockStart {
        challenge_id: issued.challenge_id,
        guid: card.guid.clone(),
        signature: sign(&card.card_auth, Purpose::Presence, &issued.challenge),
    };
    app.post("/api/unlock/start", &request).await
}

pub fn answers_for(questions: &UnlockQuestions, right: bool) -> UnlockAnswers {
    let answers = questions
        .questions
        .iter()
        .map(|q| {
            let answer = ANSWERS.iter().find(|(id, _)| *id == q.id).unwrap().1;
            QuestionAnswer {
                question_id: q.id,
                answer: if right { format!("  {} ", answer.to_uppercase()) } else { "wrong answer".into() },
            }
        })
        .collect();
    UnlockAnswers { attempt_id: questions.attempt_id.clone(), answers }
}

on_both_databases! {
    async fn the_card_proves_presence_and_gets_the_same_questions_until_the_attempt_ends(engine: Engine) {
        let (app, _smtp, card) = holder(engine, true).await;
        assert_eq!(error_code(start(&app, &TestCard::new()).await).await, (403, "card_not_recognised".into()));

        let issued: ChallengeIssued = app.post("/api/unlock/challenge", &()).await.json().await.unwrap();
        let with_9a = UnlockStart { challenge_id: issued.challenge_id, guid: card.guid.clone(), signature: card.sign_9a(Purpose::Presence, &issued.challenge) };
        assert_eq!(error_code(app.post("/api/unlock/start", &with_9a).await).await, (401, "signature_invalid".into()));

        let first: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
        assert_eq!(first.questions.len(), 3, "the default policy asks 3 of the 4");
        assert!(first.questions.iter().all(|q| ANSWERS.iter().any(|(id, _)| *id == q.id)));
        assert_eq!(first.attempts_left, 3);
        let again: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
        assert_eq!(again, first, "a reload does not reshuffle");
    }
}

on_both_databases! {
    async fn an_unregistered_holder_is_told_what_to_do(engine: Engine) {
        let (app, _smtp, card) = holder(engine, false).await;
        assert_eq!(error_code(start(&app, &card).await).await, (409, "not_registered".into()));
    }
}

on_both_databases! {
    async fn right_answers_in_any_case_send_an_unlock_code_that_is_not_the_passcode(engine: Engine) {
        let (app, smtp, card) = holder(engine, true).await;
        let questions: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
        let response = app.post("/api/unlock/answers", &answers_for(&questions, true)).await;
        assert_eq!(response.status(), 200);
        let sent: UnlockCodeSent = response.json().await.unwrap();
        assert_eq!(sent.email_hint, "h***@nhs.net");
        let mail = smtp.wait_for("hal@nhs.net", "unlock code", 1).await.unwrap();
        assert!(mail.contains("NOT your new passcode"), "{mail}");
        let code = code_in(&mail).unwrap();
        let reused = app.post("/api/unlock/answers", &answers_for(&questions, true)).await;
        assert_eq!(error_code(reused).await, (400, "attempt_expired".into()));

        let attempt_id = questions.attempt_id.clone();
        let wrong = if code == "00000000" { "11111111" } else { "00000000" };
        let response = app.post("/api/unlock/code", &UnlockCode { attempt_id: attempt_id.clone(), code: wrong.into() }).await;
        assert_eq!(error_code(response).await, (400, "code_wrong".into()));
        let response = app.post("/api/unlock/code", &UnlockCode { attempt_id: attempt_id.clone(), code: code.clone() }).await;
        assert_eq!(response.status(), 204);
        let status: String = sqlx::query_scalar("SELECT status FROM unlock_attempts WHERE id = $1")
            .bind(&attempt_id)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert_eq!(status, "release", "ready for the PUK release");
        let again = app.post("/api/unlock/code", &UnlockCode { attempt_id, code }).await;
        assert_eq!(error_code(again).await, (400, "attempt_expired".into()));
    }
}

on_both_databases! {
    async fn three_wrong_attempts_lock_the_holder_out_without_saying_which_answer_was_wrong(engine: Engine) {
        let (app, _smtp, card) = holder(engine, true).await;
        let questions: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
        let mut partly = answers_for(&questions, true);
        partly.answers[0].answer = "nope".into();
        for left in [2, 1] {
            let response = app.post("/api/unlock/answers", &partly).await;
            let status = response.status().as_u16();
            let body: ApiErrorBody = response.json().await.unwrap();
            assert_eq!((status, body.code), (400, ErrorCode::AnswersWrong));
            assert!(body.message.contains(&format!("{left} more")), "{}", body.message);
            assert!(!body.message.contains(&questions.questions[0].text), "never which one");
        }
        assert_eq!(error_code(app.post("/api/unlock/answers", &partly).await).await, (403, "locked_out".into()));
        assert_eq!(error_code(start(&app, &card).await).await, (403, "locked_out".into()));
                assert_eq!(failures(&app).await, 3);
    }
}

on_both_databases! {
    async fn fifty_simultaneous_wrong_submissions_count_exactly_to_the_limit(engine: Engine) {
        let (app, _smtp, card) = holder(engine, true).await;
        let questions: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
        let wrong = answers_for(&questions, false);
        let app = std::sync::Arc::new(app);
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (app, wrong) = (app.clone(), wrong.clone());
                tokio::spawn(async move {
                    let response = app.post("/api/unlock/answers", &wrong).await;
                    let status = response.status().as_u16();
                    let body: ApiErrorBody = response.json().await.unwrap();
                    (status, body.code)
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        let wrong_counted = outcomes.iter().filter(|(_, c)| *c == ErrorCode::AnswersWrong).count();
        assert!(wrong_counted <= 2, "at most two are answered 'wrong' before the lock: {outcomes:?}");
        assert!(
            // A submission arriving after the lockout ended the attempt is told it has ended.
            outcomes.iter().all(|o| [(400, ErrorCode::AnswersWrong), (403, ErrorCode::LockedOut), (400, ErrorCode::AttemptExpired)]
                .contains(o)),
            "{outcomes:?}"
        );
                assert_eq!(failures(&app).await, 3, "exactly the limit, never more");
        // Even the right answers are refused now.
        let right = app.post("/api/unlock/answers", &answers_for(&questions, true)).await;
        assert!(matches!(error_code(right).await, (403, _) | (400, _)));
        assert_eq!(error_code(start(&app, &card).await).await, (403, "locked_out".into()));
    }
}

on_both_databases! {
    async fn a_new_unlock_code_can_be_asked_for_after_the_cooldown_and_replaces_the_old(engine: Engine) {
        let (app, smtp, card) = holder(engine, true).await;
        let questions: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
        assert_eq!(app.post("/api/unlock/answers", &answers_for(&questions, true)).await.status(), 200);
        let first = code_in(&smtp.wait_for("hal@nhs.net", "unlock code", 1).await.unwrap()).unwrap();
        let attempt = protocol::api::UnlockAttempt { attempt_id: questions.attempt_id.clone() };
        assert_eq!(error_code(app.post("/api/unlock/resend", &attempt).await).await, (429, "code_recently_sent".into()));
        sqlx::query("UPDATE one_time_codes SET created_at = created_at - 61").execute(app.db.pool()).await.unwrap();
        let response = app.post("/api/unlock/resend", &attempt).await;
        assert_eq!(response.status(), 200);
        let sent: UnlockCodeSent = response.json().await.unwrap();
        assert_eq!(sent.email_hint, "h***@nhs.net");
        let second = code_in(&smtp.wait_for("hal@nhs.net", "unlock code", 2).await.unwrap()).unwrap();
        if first != second {
            let old = UnlockCode { attempt_id: questions.attempt_id.clone(), code: first };
            assert_eq!(error_code(app.post("/api/unlock/code", &old).await).await.0, 400, "the old code no longer works");
        }
        let new = UnlockCode { attempt_id: questions.attempt_id.clone(), code: second };
        assert_eq!(app.post("/api/unlock/code", &new).await.status(), 204);
        assert_eq!(error_code(app.post("/api/unlock/resend", &attempt).await).await, (400, "attempt_expired".into()), "no codes once past that step");
    }
}

/// A holder past their questions, with the first unlock code emailed: (app, smtp, attempt, code).
async fn awaiting_the_code(engine: Engine) -> (TestApp, SmtpServer, String, String) {
    let (app, smtp, card) = holder(engine, true).await;
    let questions: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
    assert_eq!(app.post("/api/unlock/answers", &answers_for(&questions, true)).await.status(), 200);
    let code = code_in(&smtp.wait_for("hal@nhs.net", "unlock code", 1).await.unwrap()).unwrap();
    (app, smtp, questions.attempt_id, code)
}

/// Sends `body` to `path` `count` times at once; the status and error code of each answer.
async fn all_at_once<T: serde::Serialize + Clone + Send + Sync + 'static>(
    app: &std::sync::Arc<TestApp>,
    path: &'static str,
    bodies: Vec<T>,
) -> Vec<(u16, String)> {
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let app = app.clone();
            tokio::spawn(async move {
                let response = app.post(path, &body).await;
                if response.status().is_success() {
                    (response.status().as_u16(), String::new())
                } else {
                    error_code(response).await
                }
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

on_both_databases! {
    async fn fifty_simultaneous_guesses_at_a_code_get_exactly_its_five_tries(engine: Engine) {
        let (app, _smtp, attempt_id, code) = awaiting_the_code(engine).await;
        let app = std::sync::Arc::new(app);
        let wrong = if code == "00000000" { "11111111" } else { "00000000" };
        // 49 wrong guesses and the right code, all at once: at most five of them are compared
        // with the code, so the right one gets through only if it is among those five.
        let mut guesses = vec![UnlockCode { attempt_id: attempt_id.clone(), code: wrong.into() }; 49];
        guesses.insert(25, UnlockCode { attempt_id: attempt_id.clone(), code: code.clone() });
        let answers = all_at_once(&app, "/api/unlock/code", guesses).await;
        let count = |code: &str| answers.iter().filter(|(_, c)| c == code).count();
        let (accepted, wrong_told) = (count(""), count("code_wrong"));
        let tries_left: i64 = sqlx::query_scalar("SELECT tries_left FROM one_time_codes ORDER BY id DESC LIMIT 1")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        let tries_left = usize::try_from(tries_left).unwrap();
        // As if one at a time: each wrong guess compared spends a try (the fifth is answered
        // "locked"); the right code is accepted only while a try is left, and ends the code.
        assert!(accepted <= 1, "{answers:?}");
        if accepted == 1 {
            assert!(wrong_told <= 4 && tries_left == 5 - wrong_told, "accepted after its tries ran out: {tries_left} left, {answers:?}");
        } else {
            assert_eq!((wrong_told, tries_left), (4, 0), "{answers:?}");
        }
        let after = if accepted == 1 { ["attempt_expired", "code_expired"] } else { ["code_locked", "code_locked"] };
        assert!(answers.iter().all(|(_, c)| c.is_empty() || c == "code_wrong" || c == "code_locked" || after.contains(&c.as_str())), "{answers:?}");
    }
}

on_both_databases! {
    async fn fifty_simultaneous_resends_send_exactly_one_code(engine: Engine) {
        let (app, _smtp, attempt_id, _code) = awaiting_the_code(engine).await;
        sqlx::query("UPDATE one_time_codes SET created_at = created_at - 61").execute(app.db.pool()).await.unwrap();
        let app = std::sync::Arc::new(app);
        let resend = protocol::api::UnlockAttempt { attempt_id };
        let answers = all_at_once(&app, "/api/unlock/resend", vec![resend; 50]).await;
        let sent = answers.iter().filter(|(status, _)| *status == 200).count();
        assert_eq!(sent, 1, "{answers:?}");
        assert!(answers.iter().all(|a| a.0 == 200 || *a == (429, "code_recently_sent".into())), "{answers:?}");
        let codes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM one_time_codes WHERE purpose = 'unlock'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert_eq!(codes, 2, "the first code and exactly one more");
    }
}

on_both_databases! {
    async fn a_holder_who_withdraws_their_registration_ends_their_unlock_in_progress(engine: Engine) {
        let (app, smtp, card) = holder(engine, true).await;
        let questions: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
        assert_eq!(app.post("/api/unlock/answers", &answers_for(&questions, true)).await.status(), 200);
        let code = code_in(&smtp.wait_for("hal@nhs.net", "unlock code", 1).await.unwrap()).unwrap();

        assert_eq!(card.sign_in(&app).await.status(), 200);
        let withdrawn = app.client.delete(format!("{}/api/registration", app.address)).send().await.unwrap();
        assert_eq!(withdrawn.status(), 204);
        let open: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM unlock_attempts WHERE status IN ('questions', 'code', 'release')")
                .fetch_one(app.db.pool())
                .await
                .unwrap();
        assert_eq!(open, 0, "no unlock of this holder is left open");
        let late = UnlockCode { attempt_id: questions.attempt_id, code };
        assert_eq!(error_code(app.post("/api/unlock/code", &late).await).await, (400, "attempt_expired".into()));
    }
}

on_both_databases! {
    async fn an_answer_abandoned_while_it_is_checked_still_counts(engine: Engine) {
        let (app, _smtp, card) = holder(engine, true).await;
        let questions: UnlockQuestions = start(&app, &card).await.json().await.unwrap();

        // Someone else keeps the answer hashing busy: twenty registrations of four answers each.
        let busy = TestCard::new();
        busy.issue_to(&app, "500000000002", "Bo Busy", "bo@nhs.net").await;
        let busy_client = TestApp::browser_like_client(&app.address);
        assert_eq!(busy.sign_in_with(&app, &busy_client).await.status(), 200);
        let issued: ChallengeIssued = busy_client
            .post(format!("{}/api/registration/challenge", app.address))
            .json(&())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let proof = ProofRequest {
            challenge_id: issued.challenge_id,
            signature: busy.sign_9a(Purpose::RegistrationProof, &issued.challenge),
        };
        let proven = busy_client.post(format!("{}/api/registration/proof", app.address)).json(&proof).send().await.unwrap();
        assert_eq!(proven.status(), 204);
        let answers: Vec<_> = ANSWERS.iter().map(|(q, a)| QuestionAnswer { question_id: *q, answer: (*a).into() }).collect();
        let load: Vec<_> = (0..20)
            .map(|_| {
                let request = busy_client.post(format!("{}/api/registration", app.address)).json(&RegistrationRequest {
                    answers: answers.clone(),
                    email: "bo@nhs.net".into(),
                });
                tokio::spawn(request.send())
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;

        // The holder's wrong answers, given up on while they wait to be checked.
        let gave_up = app
            .client
            .post(format!("{}/api/unlock/answers", app.address))
            .timeout(std::time::Duration::from_millis(300))
            .json(&answers_for(&questions, false))
            .send()
            .await;
        assert!(gave_up.is_err_and(|e| e.is_timeout()), "still being checked when the page gave up");
        for request in load {
            request.await.unwrap().unwrap();
        }
                assert_eq!(failures(&app).await, 1, "the abandoned try counts");
    }
}

on_both_databases! {
    async fn a_code_waiting_for_the_mail_relay_waits_sealed(engine: Engine) {
        let (app, mut smtp, card) = holder(engine, true).await;
        smtp.stop();
        let questions: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
        assert_eq!(app.post("/api/unlock/answers", &answers_for(&questions, true)).await.status(), 200);
        let waiting: Vec<String> =
            sqlx::query_scalar("SELECT body FROM mail_outbox WHERE sent_at IS NULL AND subject = 'Your smartcard unlock code'")
            .fetch_all(app.db.pool())
            .await
            .unwrap();
        assert_eq!(waiting.len(), 1, "the relay is down: the code waits");
        // Whoever reads the database while the relay is down finds no code in it.
        assert!(waiting[0].starts_with("sealed:v1:") && !waiting[0].contains("unlock code"), "{waiting:?}");
        assert!(!waiting[0].as_bytes().windows(8).any(|w| w.iter().all(u8::is_ascii_digit)), "no 8 digits in clear");
    }
}

on_both_databases! {
    async fn right_answers_within_the_mail_limits_go_on_with_the_code_already_sent(engine: Engine) {
        let (app, smtp, card) = holder(engine, true).await;
        let first: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
        let sent: UnlockCodeSent = app.post("/api/unlock/answers", &answers_for(&first, true)).await.json().await.unwrap();
        assert!(!sent.earlier);
        let code = code_in(&smtp.wait_for("hal@nhs.net", "unlock code", 1).await.unwrap()).unwrap();
        // A second attempt within the minute: no new code may be sent, but the answers are right
        // and the code sent a moment ago still works, so the person goes on with it.
        let second: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
        assert_ne!(first.attempt_id, second.attempt_id);
        let answered = app.post("/api/unlock/answers", &answers_for(&second, true)).await;
        assert_eq!(answered.status(), 200);
        let again: UnlockCodeSent = answered.json().await.unwrap();
        assert!(again.earlier, "{again:?}");
        assert_eq!((again.sent_at, again.code_expires_at), (sent.sent_at, sent.code_expires_at));
        assert!(again.resend_after > again.sent_at);
        let mails: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mail_outbox WHERE subject = 'Your smartcard unlock code'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert_eq!(mails, 1, "no second mail was sent");
                assert_eq!(failures(&app).await, 0, "right answers are not a failed try");
        let entered = app.post("/api/unlock/code", &UnlockCode { attempt_id: second.attempt_id.clone(), code }).await;
        assert_eq!(entered.status(), 204, "the earlier code opens the new attempt");
    }
}

on_both_databases! {
    async fn right_answers_with_no_working_code_are_refused_only_for_sending_and_not_counted(engine: Engine) {
        let (app, smtp, card) = holder(engine, true).await;
        let first: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
        assert_eq!(app.post("/api/unlock/answers", &answers_for(&first, true)).await.status(), 200);
        code_in(&smtp.wait_for("hal@nhs.net", "unlock code", 1).await.unwrap()).unwrap();
        // The code is spent by wrong guesses: nothing works, and the cooldown still holds.
        sqlx::query("UPDATE one_time_codes SET tries_left = 0").execute(app.db.pool()).await.unwrap();
        let second: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
        let refused = app.post("/api/unlock/answers", &answers_for(&second, true)).await;
        assert_eq!(error_code(refused).await, (429, "code_recently_sent".into()));
                assert_eq!(failures(&app).await, 0, "right answers are not a failed try");
    }
}

on_both_databases! {
    /// A double (or triple) click: the same right answers for one attempt, at once. One is
    /// answered with the code, the others that the attempt has moved on; one mail, no try kept.
    async fn the_same_right_answers_sent_three_times_at_once_send_one_code_and_count_nothing(engine: Engine) {
        let (app, smtp, card) = holder(engine, true).await;
        let questions: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
        let body = answers_for(&questions, true);
        let (a, b, c) = tokio::join!(
            app.post("/api/unlock/answers", &body),
            app.post("/api/unlock/answers", &body),
            app.post("/api/unlock/answers", &body)
        );
        let mut statuses = vec![a.status().as_u16(), b.status().as_u16(), c.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 400, 400]);
        smtp.wait_for("hal@nhs.net", "unlock code", 1).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let codes = smtp.messages_to("hal@nhs.net").iter().filter(|m| m.contains("unlock code")).count();
        assert_eq!(codes, 1, "one code mailed");
                assert_eq!(failures(&app).await, 0, "right answers are not a failed try");
    }
}

on_both_databases! {
    async fn wrong_answers_say_how_many_attempts_are_left_as_a_number(engine: Engine) {
        let (app, _smtp, card) = holder(engine, true).await;
        let questions: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
        assert_eq!(questions.attempts_left, 3);
        let wrong = app.post("/api/unlock/answers", &answers_for(&questions, false)).await;
        assert_eq!(wrong.status(), 400);
        let body: ApiErrorBody = wrong.json().await.unwrap();
        assert_eq!((body.code, body.attempts_left), (ErrorCode::AnswersWrong, Some(2)));
        assert!(body.message.contains("2 more attempts"), "{}", body.message);
    }
}
