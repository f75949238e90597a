//! The RA console's API: only RA staff get in, every action works and is audited, the audit
//! chain verifies and a row altered in the database is found.

use protocol::{
    api::{ApiErrorBody, Profile, SelfService, UnlockQuestions},
    ra::{AuditRow, AuditVerification, CardStatusChange, Reason, Report, UserDetail, UserSummary},
};

use crate::{
    cards::TestCard,
    helpers::{documented, error_code, Engine, TestApp},
    on_both_databases,
    smtp::SmtpServer,
    unlock::{answers_for, holder, start},
};

/// An RA officer signed in with their own card, on their own client (cookies apart from the holder's).
pub async fn officer(app: &TestApp) -> reqwest::Client {
    let card = TestCard::new();
    card.issue_with_roles(app, "600000000009", "Rae Officer", "rae@nhs.net", &["ra".into()]).await;
    let client = TestApp::browser_like_client(&app.address);
    assert_eq!(card.sign_in_with(app, &client).await.status(), 200);
    client
}

pub async fn get(app: &TestApp, client: &reqwest::Client, path: &str) -> reqwest::Response {
    documented("GET", path, client.get(format!("{}{path}", app.address)).send().await.unwrap()).await
}

pub async fn post<T: serde::Serialize>(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    body: &T,
) -> reqwest::Response {
    documented("POST", path, client.post(format!("{}{path}", app.address)).json(body).send().await.unwrap())
        .await
}

pub fn reason(text: &str) -> Reason {
    Reason { reason: text.into() }
}

/// A registered holder (signed out), locked out of self-service by three wrong unlock attempts.
pub async fn locked_out_holder(engine: Engine) -> (TestApp, SmtpServer, TestCard) {
    let (app, smtp, card) = holder(engine, true).await;
    let questions: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
    for _ in 0..3 {
        app.post("/api/unlock/answers", &answers_for(&questions, false)).await;
    }
    assert_eq!(error_code(start(&app, &card).await).await, (403, "locked_out".into()));
    (app, smtp, card)
}

on_both_databases! {
    async fn a_cardholder_gets_403_and_a_stranger_401_on_every_ra_route(engine: Engine) {
        let (app, _smtp, card) = holder(engine, true).await;
        let stranger = TestApp::browser_like_client(&app.address);
        assert_eq!(card.sign_in(&app).await.status(), 200);
        let gets = ["/api/ra/users?q=hal", "/api/ra/users/500000000001", "/api/ra/audit", "/api/ra/report?from=2026-11-01&to=2026-11-28", "/api/ra/report.csv?from=2026-11-01&to=2026-11-28"];
        for path in gets {
            assert_eq!(error_code(app.get(path).await).await, (403, "not_ra".into()), "{path}");
            assert_eq!(get(&app, &stranger, path).await.status(), 401, "{path}");
        }
        let change = CardStatusChange { status: "suspended".into(), reason: "lost".into() };
        let posts: Vec<(String, serde_json::Value)> = vec![
            ("/api/ra/users/500000000001/clear-lockout".into(), serde_json::to_value(reason("because")).unwrap()),
            ("/api/ra/users/500000000001/withdraw-registration".into(), serde_json::to_value(reason("because")).unwrap()),
            (format!("/api/ra/cards/{}/status", card.guid), serde_json::to_value(&change).unwrap()),
            ("/api/ra/audit/verify".into(), serde_json::json!({})),
            ("/api/ra/users".into(), serde_json::json!({"user_id": "x1", "name": "X", "contact_email": null, "reason": "new"})),
            ("/api/ra/users/500000000001/issue".into(), serde_json::json!({"reason": "new card", "agent_key": "AAAA", "card_guid": null})),
            ("/api/ra/issuances/someid/keys".into(), serde_json::json!({"piv_auth_key": "AA==", "card_auth_key": "AA=="})),
        ];
        for (path, body) in &posts {
            assert_eq!(error_code(app.post(path, body).await).await, (403, "not_ra".into()), "{path}");
            assert_eq!(post(&app, &stranger, path, body).await.status(), 401, "{path}");
        }
        let profile: Profile = app.get("/api/me").await.json().await.unwrap();
        assert!(matches!(profile.self_service, SelfService::Registered { .. }), "nothing was done");
    }
}

on_both_databases! {
    async fn an_officer_finds_a_person_by_name_email_user_id_or_card(engine: Engine) {
        let (app, _smtp, card) = holder(engine, true).await;
        let ra = officer(&app).await;
        for q in ["hal", "HOLDER", "hal@nhs", "500000000001", card.guid.as_str()] {
            let found: Vec<UserSummary> = get(&app, &ra, &format!("/api/ra/users?q={q}")).await.json().await.unwrap();
            assert_eq!(found.iter().map(|u| u.user_id.as_str()).collect::<Vec<_>>(), ["500000000001"], "{q}");
            assert!(found[0].registered && !found[0].locked_out);
        }
        let none: Vec<UserSummary> = get(&app, &ra, "/api/ra/users?q=%25%25").await.json().await.unwrap();
        assert!(none.is_empty(), "a typed % is not a wildcard");
        assert_eq!(error_code(get(&app, &ra, "/api/ra/users?q=h").await).await, (400, "query_too_short".into()));

        let detail: UserDetail = get(&app, &ra, "/api/ra/users/500000000001").await.json().await.unwrap();
        assert_eq!((detail.name.as_str(), detail.cards.len(), detail.unlock_failures), ("Hal Holder", 1, 0));
        assert_eq!(detail.cards[0].guid, card.guid);
        assert!(matches!(detail.self_service, SelfService::Registered { ref email, .. } if email == "hal@nhs.net"));
        assert_eq!(error_code(get(&app, &ra, "/api/ra/users/999").await).await, (404, "no_such_user".into()));
        let trail: Vec<AuditRow> = get(&app, &ra, "/api/ra/audit?event=ra_viewed_user").await.json().await.unwrap();
        assert_eq!((trail[0].actor.as_str(), trail[0].subject.as_deref()), ("600000000009", Some("500000000001")));
    }
}

on_both_databases! {
    async fn clearing_a_lockout_needs_a_reason_and_lets_the_holder_unlock_again(engine: Engine) {
        let (app, _smtp, card) = locked_out_holder(engine).await;
        let ra = officer(&app).await;
        let detail: UserDetail = get(&app, &ra, "/api/ra/users/500000000001").await.json().await.unwrap();
        assert!(detail.locked_out_at.is_some());
        assert_eq!(detail.unlock_failures, 3);
        let path = "/api/ra/users/500000000001/clear-lockout";
        assert_eq!(error_code(post(&app, &ra, path, &reason(" ")).await).await, (400, "reason_required".into()));
        assert_eq!(post(&app, &ra, path, &reason("Identity checked at the desk")).await.status(), 204);
        assert_eq!(error_code(post(&app, &ra, path, &reason("again")).await).await, (409, "not_locked_out".into()));
        let questions: UnlockQuestions = start(&app, &card).await.json().await.unwrap();
        assert_eq!(questions.attempts_left, 3, "a fresh start");
        let trail: Vec<AuditRow> =
            get(&app, &ra, "/api/ra/audit?user_id=500000000001&event=ra_lockout_cleared").await.json().await.unwrap();
        assert_eq!(trail.len(), 1);
        assert!(trail[0].details.contains("Identity checked at the desk"));
    }
}

on_both_databases! {
    async fn withdrawing_and_suspending_take_effect_at_once(engine: Engine) {
        let (app, smtp, card) = holder(engine, true).await;
        assert_eq!(card.sign_in(&app).await.status(), 200);
        let ra = officer(&app).await;
        let withdraw = "/api/ra/users/500000000001/withdraw-registration";
        assert_eq!(post(&app, &ra, withdraw, &reason("Holder asked to start again")).await.status(), 204);
        let profile: Profile = app.get("/api/me").await.json().await.unwrap();
        assert_eq!(profile.self_service, SelfService::NotRegistered);
        smtp.wait_for("hal@nhs.net", "was withdrawn", 1).await.unwrap();
        assert_eq!(error_code(post(&app, &ra, withdraw, &reason("twice")).await).await, (409, "not_registered".into()));

        let status_path = format!("/api/ra/cards/{}/status", card.guid);
        let change = |status: &str| CardStatusChange { status: status.into(), reason: "Reported lost".into() };
        assert_eq!(post(&app, &ra, &status_path, &change("suspended")).await.status(), 204);
        assert_eq!(app.get("/api/me").await.status(), 401, "the card's session ended");
        assert_eq!(error_code(card.sign_in(&app).await).await, (403, "card_not_active".into()));
        assert_eq!(post(&app, &ra, &status_path, &change("active")).await.status(), 204);
        assert_eq!(card.sign_in(&app).await.status(), 200);
        assert_eq!(post(&app, &ra, &status_path, &change("revoked")).await.status(), 204);
        assert_eq!(error_code(post(&app, &ra, &status_path, &change("active")).await).await, (409, "card_revoked".into()));
        assert_eq!(error_code(post(&app, &ra, &status_path, &change("lost")).await).await, (400, "invalid_status".into()));
        let trail: Vec<AuditRow> = get(&app, &ra, "/api/ra/audit?user_id=500000000001").await.json().await.unwrap();
        let events: Vec<&str> = trail.iter().map(|r| r.event.as_str()).collect();
        assert_eq!(events.iter().filter(|e| **e == "ra_card_status_changed").count(), 3, "{events:?}");
        assert!(events.contains(&"ra_registration_withdrawn") && events.contains(&"registration_completed"), "{events:?}");
    }
}

on_both_databases! {
    async fn the_audit_trail_filters_pages_and_verifies_and_an_altered_row_is_found(engine: Engine) {
        let (app, _smtp, _card) = locked_out_holder(engine).await;
        let ra = officer(&app).await;
        let all: Vec<AuditRow> = get(&app, &ra, "/api/ra/audit").await.json().await.unwrap();
        assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        let older: Vec<AuditRow> = get(&app, &ra, &format!("/api/ra/audit?before={}", all[1].id)).await.json().await.unwrap();
        assert_eq!(older[0].id, all[2].id, "the next page starts below `before`");
        let lockouts: Vec<AuditRow> = get(&app, &ra, "/api/ra/audit?event=selfservice_locked_out").await.json().await.unwrap();
        assert_eq!(lockouts.len(), 1);
        let future: Vec<AuditRow> = get(&app, &ra, "/api/ra/audit?from=2999-01-01").await.json().await.unwrap();
        assert!(future.is_empty());
        assert_eq!(error_code(get(&app, &ra, "/api/ra/audit?from=28/11/2026").await).await, (400, "invalid_date".into()));

        let verified: AuditVerification = post(&app, &ra, "/api/ra/audit/verify", &()).await.json().await.unwrap();
        assert_eq!(verified.first_broken_row, None);
        assert!(verified.rows > 5);
        let target = lockouts[0].id;
        sqlx::query("UPDATE audit_log SET details = '{\"failures\":1}' WHERE id = $1").bind(target).execute(app.db.pool()).await.unwrap();
        let verified: AuditVerification = post(&app, &ra, "/api/ra/audit/verify", &()).await.json().await.unwrap();
        assert_eq!(verified.first_broken_row, Some(target));
    }
}

on_both_databases! {
    async fn a_search_shows_up_to_fifty_people_by_name_and_asks_to_narrow_more(engine: Engine) {
        let (app, _smtp, _card) = holder(engine, true).await;
        let ra = officer(&app).await;
        let add = |user_id: String, name: String, email: Option<String>| {
            let pool = app.db.pool().clone();
            async move {
                sqlx::query("INSERT INTO users (user_id, name, contact_email, roles, created_at) VALUES ($1, $2, $3, '', 0)")
                    .bind(user_id)
                    .bind(name)
                    .bind(email)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        };
        // Half match by name, half only by email; the email half sorts first by name.
        for i in 0..50 {
            let (name, email) = if i % 2 == 0 {
                (format!("Zed Match {i:02}"), None)
            } else {
                (format!("Amy Other {i:02}"), Some(format!("amy.match{i:02}@nhs.net")))
            };
            add(format!("7000000000{i:02}"), name, email).await;
        }
        let found: Vec<UserSummary> = get(&app, &ra, "/api/ra/users?q=MATCH").await.json().await.unwrap();
        let names: Vec<&str> = found.iter().map(|u| u.name.as_str()).collect();
        let mut expected: Vec<String> = (1..50).step_by(2).map(|i| format!("Amy Other {i:02}")).collect();
        expected.extend((0..50).step_by(2).map(|i| format!("Zed Match {i:02}")));
        assert_eq!(names, expected, "everyone, by name");

        add("700000000050".into(), "Bea Match".into(), Some("bea.match@nhs.net".into())).await;
        let broad = get(&app, &ra, "/api/ra/users?q=match").await;
        assert_eq!(error_code(broad).await, (400, "too_many_matches".into()));
        // A user id that is also a too-common fragment still finds its person.
        add("match".into(), "Cy Match".into(), None).await;
        let found: Vec<UserSummary> = get(&app, &ra, "/api/ra/users?q=match").await.json().await.unwrap();
        assert_eq!(found.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["Cy Match"]);
    }
}

on_both_databases! {
    async fn the_report_counts_each_day_and_downloads_as_csv(engine: Engine) {
        let (app, _smtp, _card) = locked_out_holder(engine).await;
        let ra = officer(&app).await;
        assert_eq!(post(&app, &ra, "/api/ra/users/500000000001/clear-lockout", &reason("Checked ID")).await.status(), 204);
        let today = backend::time::civil_from_days(backend::time::now_unix().div_euclid(86_400));
        let yesterday = backend::time::civil_from_days(backend::time::now_unix().div_euclid(86_400) - 1);
        let report: Report = get(&app, &ra, &format!("/api/ra/report?from={yesterday}&to={today}")).await.json().await.unwrap();
        assert_eq!(report.days.len(), 2);
        assert_eq!(report.days[0].counts, Default::default());
        let counts = report.days[1].counts;
        assert_eq!((counts.registrations, counts.unlocks, counts.lockouts, counts.lockouts_cleared), (1, 0, 1, 1));
        assert_eq!(report.totals, counts);

        let response = get(&app, &ra, &format!("/api/ra/report.csv?from={yesterday}&to={today}")).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-disposition"].to_str().unwrap().contains("attachment"));
        let csv = response.text().await.unwrap();
        assert!(csv.starts_with("day,registrations,unlocks,lockouts,lockouts_cleared,desk_unlocks\r\n"), "{csv}");
        assert!(csv.contains(&format!("{today},1,0,1,1,0\r\n")) && csv.ends_with("total,1,0,1,1,0\r\n"), "{csv}");
        let backwards = get(&app, &ra, &format!("/api/ra/report?from={today}&to={yesterday}")).await;
        let body: ApiErrorBody = backwards.json().await.unwrap();
        assert_eq!(body.code, protocol::error_code::ErrorCode::InvalidPeriod);
    }
}
