//! The API described as OpenAPI 3.1, served at `GET /api/openapi.json`. The schemas are derived
//! from the `protocol` wire types themselves (`protocol/openapi`, a feature the SPA bundles leave
//! off); the operations come from [`OPERATIONS`], one line per route, which a test holds to the
//! router both ways (no route undescribed, no description without a route) and against whose
//! schemas the API tests' real responses are validated.

use std::sync::LazyLock;

use axum::{routing::get, Json, Router};
use serde_json::{json, Map, Value};
use utoipa::OpenApi;

use protocol::{agent, api, error_code::ErrorCode, ra};

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (the card's own proofs authorise what matters).
    Public,
    /// A signed-in session (the `selfservice_session` cookie).
    Session,
    /// A signed-in session with the RA role.
    Ra,
}

/// What an operation answers when it succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// This status with a JSON body of this schema (`[X]` for an array of X).
    Json(u16, &'static str),
    /// This status and no body.
    Empty(u16),
    /// A CSV download.
    Csv,
}

/// One route: its method and path (as the router spells it, with `/api`), what it is for, its
/// body's schema, its answer, who may call it, and the statuses its refusals (an
/// [`api::ApiErrorBody`]) come with.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub body: Option<&'static str>,
    pub answer: Answer,
    pub access: Access,
    pub refusals: &'static [u16],
}

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    answer: Answer,
    access: Access,
    refusals: &'static [u16],
) -> Operation {
    Operation { method, path, summary, body, answer, access, refusals }
}

use Access::{Public, Ra, Session};
use Answer::{Csv, Empty, Json as J};

/// Every route of the API.
#[rustfmt::skip] // One line a route: the table reads as the API's index.
pub const OPERATIONS: &[Operation] = &[
    op("get", "/api/health", "Liveness and the database's state (503 when degraded)", None, J(200, "Health"), Public, &[]),
    op("get", "/api/client-config", "What the SPA needs to know at start", None, J(200, "ClientConfig"), Public, &[]),
    op("post", "/api/sign-in/challenge", "A challenge for the card to sign", None, J(200, "ChallengeIssued"), Public, &[]),
    op("post", "/api/sign-in", "Sign in with the card's 9A signature; sets the session cookie", Some("SignInRequest"), J(200, "Profile"), Public, &[400, 401, 403]),
    op("post", "/api/sign-out", "End the session", None, Empty(204), Session, &[401]),
    op("get", "/api/me", "The signed-in person", None, J(200, "Profile"), Session, &[401]),
    op("get", "/api/questions", "The catalogue of security questions", None, J(200, "[Question]"), Public, &[]),
    op("post", "/api/registration/challenge", "A challenge for the passcode proof", None, J(200, "ChallengeIssued"), Session, &[401]),
    op("post", "/api/registration/proof", "Prove the passcode (9A signature after VERIFY)", Some("ProofRequest"), Empty(204), Session, &[400, 401]),
    op("post", "/api/registration", "Register four answers and an email; a code is emailed", Some("RegistrationRequest"), J(201, "RegistrationPending"), Session, &[400, 401, 403, 409, 422, 429]),
    op("delete", "/api/registration", "Withdraw from self-service", None, Empty(204), Session, &[401]),
    op("post", "/api/registration/resend", "Email the registration code again", None, J(200, "RegistrationPending"), Session, &[400, 401, 429]),
    op("post", "/api/registration/confirm", "Confirm the emailed code", Some("CodeRequest"), J(200, "Profile"), Session, &[400, 401, 409, 429]),
    op("post", "/api/unlock/challenge", "A challenge for the card's presence proof", None, J(200, "ChallengeIssued"), Public, &[]),
    op("post", "/api/unlock/start", "Start an unlock with the card's 9E proof: the questions", Some("UnlockStart"), J(200, "UnlockQuestions"), Public, &[400, 401, 403, 404, 409, 429]),
    op("post", "/api/unlock/answers", "Answer the questions; an unlock code is emailed", Some("UnlockAnswers"), J(200, "UnlockCodeSent"), Public, &[400, 403, 429]),
    op("post", "/api/unlock/resend", "Email the unlock code again", Some("UnlockAttempt"), J(200, "UnlockCodeSent"), Public, &[400, 429]),
    op("post", "/api/unlock/code", "Enter the emailed code", Some("UnlockCode"), Empty(204), Public, &[400, 403, 429]),
    op("post", "/api/unlock/offer-challenge", "A challenge for the agent's offer", Some("UnlockAttempt"), J(200, "ChallengeIssued"), Public, &[400]),
    op("post", "/api/unlock/release", "The PUK, sealed to the key the card vouched for", Some("UnlockRelease"), J(200, "UnlockReleased"), Public, &[400, 401, 409]),
    op("post", "/api/unlock/report", "The card's report and proof", Some("UnlockReported"), Empty(204), Public, &[400, 401, 409]),
    op("get", "/api/ra/users", "Find people by name, user id or card GUID", None, J(200, "[UserSummary]"), Ra, &[400, 401, 403]),
    op("post", "/api/ra/users", "Add a person whose identity was checked", Some("NewPerson"), J(201, "UserSummary"), Ra, &[400, 401, 403, 409, 422]),
    op("get", "/api/ra/users/{user_id}", "A person, their cards and self-service state", None, J(200, "UserDetail"), Ra, &[401, 403, 404]),
    op("post", "/api/ra/users/{user_id}/clear-lockout", "Clear a self-service lockout", Some("Reason"), Empty(204), Ra, &[400, 401, 403, 404, 409]),
    op("post", "/api/ra/users/{user_id}/withdraw-registration", "Withdraw a person's registration", Some("Reason"), Empty(204), Ra, &[400, 401, 403, 404, 409]),
    op("post", "/api/ra/cards/{guid}/status", "Suspend, reinstate or revoke a card", Some("CardStatusChange"), Empty(204), Ra, &[400, 401, 403, 404, 409]),
    op("get", "/api/ra/audit", "The audit trail, newest first, 100 a page", None, J(200, "[AuditRow]"), Ra, &[400, 401, 403]),
    op("post", "/api/ra/audit/verify", "Walk the audit trail's hash chain", None, J(200, "AuditVerification"), Ra, &[401, 403]),
    op("get", "/api/ra/report", "Registrations, unlocks and lockouts per day", None, J(200, "Report"), Ra, &[400, 401, 403]),
    op("get", "/api/ra/report.csv", "The report as CSV", None, Csv, Ra, &[400, 401, 403]),
    op("post", "/api/ra/users/{user_id}/issue", "Start issuing the blank card in the reader", Some("IssueStart"), J(200, "IssueStarted"), Ra, &[400, 401, 403, 404, 409, 422]),
    op("post", "/api/ra/issuances/{id}/keys", "Certify the keys the card generated", Some("IssueKeys"), J(200, "IssueCertificates"), Ra, &[400, 401, 403, 409, 422]),
    op("post", "/api/ra/issuances/{id}/complete", "Bind the card once its report and proofs verify", Some("IssueComplete"), J(200, "CardIssued"), Ra, &[400, 401, 403, 409]),
    op("post", "/api/ra/users/{user_id}/desk-unlock/challenge", "A challenge for the holder's card at the desk", None, J(200, "ChallengeIssued"), Ra, &[401, 403, 404]),
    op("post", "/api/ra/users/{user_id}/desk-unlock", "Start unlocking a card at the desk", Some("DeskUnlockStart"), J(201, "DeskUnlockStarted"), Ra, &[400, 401, 403, 404, 409]),
    op("post", "/api/ra/desk-unlock/offer-challenge", "A challenge for the agent's offer (desk)", Some("UnlockAttempt"), J(200, "ChallengeIssued"), Ra, &[400, 401, 403]),
    op("post", "/api/ra/desk-unlock/release", "The PUK for the desk unlock, sealed to the card's offer", Some("UnlockRelease"), J(200, "UnlockReleased"), Ra, &[400, 401, 403, 409]),
    op("post", "/api/ra/desk-unlock/report", "The card's report after the desk unlock", Some("UnlockReported"), Empty(204), Ra, &[400, 401, 403, 409]),
    op("get", "/api/openapi.json", "This document", None, J(200, "OpenApiDocument"), Public, &[]),
];

/// The query parameters of the routes that take any.
fn query_of(path: &str) -> &'static [&'static str] {
    match path {
        "/api/ra/users" => &["q"],
        "/api/ra/audit" => &["user_id", "event", "from", "to", "before"],
        "/api/ra/report" | "/api/ra/report.csv" => &["from", "to"],
        _ => &[],
    }
}

#[derive(OpenApi)]
#[openapi(components(schemas(
    api::Health,
    api::HealthStatus,
    api::DatabaseHealth,
    api::ApiErrorBody,
    api::ChallengeIssued,
    api::SignInRequest,
    api::Profile,
    api::CardSummary,
    api::SelfService,
    api::Question,
    api::ProofRequest,
    api::QuestionAnswer,
    api::RegistrationRequest,
    api::RegistrationPending,
    api::CodeRequest,
    api::ClientConfig,
    api::UnlockStart,
    api::UnlockQuestions,
    api::UnlockAnswers,
    api::UnlockCodeSent,
    api::UnlockCode,
    api::UnlockAttempt,
    api::UnlockRelease,
    api::UnlockReleased,
    api::UnlockReported,
    ra::UserSummary,
    ra::UserDetail,
    ra::Reason,
    ra::NewPerson,
    ra::IssueStart,
    ra::IssueStarted,
    ra::IssueKeys,
    ra::IssueCertificates,
    ra::IssueComplete,
    ra::CardIssued,
    ra::CardStatusChange,
    ra::AuditRow,
    ra::AuditVerification,
    ra::Report,
    ra::ReportDay,
    ra::ReportCounts,
    ra::DeskUnlockStart,
    ra::DeskUnlockStarted,
    agent::IssueReadiness,
    agent::KeyAttestation,
    agent::IssueReport,
    agent::IssueStep,
    agent::IssueFailure,
    agent::PukOnCard,
    agent::UnlockReport,
    agent::UnlockStep,
    agent::StepFailure,
    agent::AgentError,
    agent::AgentErrorCode,
    ErrorCode,
    protocol::card_guid::CardGuid,
)))]
struct Schemas;

/// The document, built once.
pub static DOCUMENT: LazyLock<Value> = LazyLock::new(document);

fn schema_ref(name: &str) -> Value {
    match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(item) => json!({ "type": "array", "items": schema_ref(item) }),
        None => json!({ "$ref": format!("#/components/schemas/{name}") }),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "Done; no body",
        400 => "The request is malformed or breaks a rule (`code` says which)",
        401 => "Not signed in, or a signature or proof did not verify",
        403 => "Not allowed (no RA role, locked out, a card not active, …)",
        404 => "No such person, card or attempt",
        409 => "The state does not allow it now (`code` says why)",
        422 => "A card's attestation is required or did not verify",
        429 => "Too many requests or codes; `Retry-After` says when to try again",
        _ => "See `code`",
    }
}

fn operation(op: &Operation) -> Value {
    let mut responses = Map::new();
    let (status, content) = match op.answer {
        J(status, schema) => (status, Some(json!({ "application/json": { "schema": schema_ref(schema) } }))),
        Empty(status) => (status, None),
        Csv => (200, Some(json!({ "text/csv": { "schema": { "type": "string" } } }))),
    };
    let mut ok = json!({ "description": reason(status) });
    if let Some(content) = content {
        ok["content"] = content;
    }
    responses.insert(status.to_string(), ok);
    // Health answers 503 with its own body: degraded, not refused.
    if op.path == "/api/health" {
        let degraded = json!({ "application/json": { "schema": schema_ref("Health") } });
        responses.insert(
            "503".into(),
            json!({ "description": "Degraded: the database does not answer", "content": degraded }),
        );
    }
    // Every route may be refused by the abuse limits and answered 503 when the database is away.
    for status in op.refusals.iter().chain(&[429, 503]) {
        responses.entry(status.to_string()).or_insert_with(|| {
            json!({
                "description": reason(*status),
                "content": { "application/json": { "schema": schema_ref("ApiErrorBody") } },
            })
        });
    }
    let mut parameters: Vec<Value> = op
        .path
        .split('/')
        .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    for name in query_of(op.path) {
        let required = op.path.starts_with("/api/ra/report") || *name == "q";
        parameters.push(
            json!({ "name": name, "in": "query", "required": required, "schema": { "type": "string" } }),
        );
    }
    let mut value = json!({
        "summary": op.summary,
        "operationId": format!("{}{}", op.method, op.path.replace(['/', '{', '}', '.', '-'], "_")),
        "responses": responses,
    });
    if !parameters.is_empty() {
        value["parameters"] = Value::Array(parameters);
    }
    if let Some(body) = op.body {
        value["requestBody"] =
            json!({ "required": true, "content": { "application/json": { "schema": schema_ref(body) } } });
    }
    match op.access {
        Public => value["security"] = json!([]),
        Session => value["security"] = json!([{ "session": [] }]),
        Ra => value["security"] = json!([{ "session": ["ra"] }]),
    }
    value
}

fn document() -> Value {
    let components = Schemas::openapi().components.unwrap_or_default();
    let mut schemas = serde_json::to_value(&components.schemas).unwrap_or_else(|_| json!({}));
    let mut paths = Map::new();
    for op in OPERATIONS {
        let item = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        item[op.method] = operation(op);
    }
    if let Value::Object(map) = &mut schemas {
        // The document itself, described only as an object (it is this very schema language).
        map.insert("OpenApiDocument".into(), json!({ "type": "object" }));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Smartcard Self-Service API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The JSON API of the smartcard self-service backend. Every state-changing request must come from the site itself (`Origin` equal to the host, or `Sec-Fetch-Site: same-origin`), else 403 `cross_site`. Refusals are an `ApiErrorBody` with a stable `code` (`ErrorCode`); every answer carries its `x-request-id`.",
        },
        "servers": [{ "url": "/" }],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": crate::session::COOKIE,
                    "description": "Set by POST /api/sign-in. Scopes name the role an operation needs (`ra`).",
                },
            },
        },
    })
}

/// `GET /api/openapi.json`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/openapi.json", get(|| async { Json(DOCUMENT.clone()) }))
}

/// Checks a real answer against the document: the operation exists for this method and concrete
/// path, documents this status, and the body matches the status's schema. The API tests run every
/// response they get through it.
pub fn check_response(method: &str, path: &str, status: u16, body: &[u8]) -> Result<(), String> {
    let path = path.split('?').next().unwrap_or(path);
    let method = method.to_ascii_lowercase();
    let found = DOCUMENT["paths"]
        .as_object()
        .and_then(|paths| paths.iter().find(|(template, _)| matches_template(template, path)));
    let Some((template, item)) = found else {
        // No such route: the API's own 404, which must still be its error body.
        let value: Value =
            serde_json::from_slice(body).map_err(|e| format!("{method} {path}: not JSON: {e}"))?;
        return match status {
            404 => {
                check(&value, &schema_ref("ApiErrorBody")).map_err(|p| format!("{method} {path} 404: {p}"))
            }
            _ => Err(format!("{method} {path}: no such path in the document")),
        };
    };
    let operation = item.get(&method).ok_or_else(|| format!("{method} {template}: not in the document"))?;
    let response = operation["responses"]
        .get(status.to_string())
        .ok_or_else(|| format!("{method} {template}: status {status} is not documented"))?;
    let Some(schema) = response["content"].get("application/json").map(|c| &c["schema"]) else {
        return Ok(());
    };
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("{method} {template} {status}: not JSON: {e}"))?;
    check(&value, schema).map_err(|problem| format!("{method} {template} {status}: {problem}"))
}

fn matches_template(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p)
}

/// The part of JSON Schema the derived schemas use: `$ref`, `type` (one or several, `null`
/// among them), `enum`, `oneOf`, `properties`, `required`, `items`, `minimum`, and the one
/// `pattern` there is (a card GUID).
pub fn check(value: &Value, schema: &Value) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        let target = &DOCUMENT["components"]["schemas"][name];
        if target.is_null() {
            return Err(format!("{reference} does not resolve"));
        }
        return check(value, target).map_err(|p| format!("{name}: {p}"));
    }
    if let Some(options) = schema["oneOf"].as_array() {
        let matching = options.iter().filter(|option| check(value, option).is_ok()).count();
        return match matching {
            1 => Ok(()),
            0 => Err(format!("{value} matches none of oneOf")),
            n => Err(format!("{value} matches {n} of oneOf")),
        };
    }
    if let Some(types) = types_of(schema) {
        if !types.iter().any(|t| is_type(value, t)) {
            return Err(format!("{value} is not {}", types.join(" or ")));
        }
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            return Err(format!("{value} is not one of {}", Value::Array(allowed.clone())));
        }
    }
    if let (Some(minimum), Some(n)) = (schema["minimum"].as_f64(), value.as_f64()) {
        if n < minimum {
            return Err(format!("{n} is below {minimum}"));
        }
    }
    if schema["pattern"].as_str() == Some("^[0-9a-fA-F]{32}$") {
        let text = value.as_str().unwrap_or_default();
        if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{value} is not a card GUID"));
        }
    }
    if let Value::Object(fields) = value {
        for name in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !fields.contains_key(name) {
                return Err(format!("{name} is missing"));
            }
        }
        if let Some(properties) = schema["properties"].as_object() {
            for (name, field) in fields {
                if let Some(property) = properties.get(name) {
                    check(field, property).map_err(|p| format!("{name}: {p}"))?;
                }
            }
        }
    }
    if let (Value::Array(items), Some(item)) = (value, schema.get("items")) {
        for (i, element) in items.iter().enumerate() {
            check(element, item).map_err(|p| format!("[{i}]: {p}"))?;
        }
    }
    Ok(())
}

fn types_of(schema: &Value) -> Option<Vec<&str>> {
    match &schema["type"] {
        Value::String(t) => Some(vec![t.as_str()]),
        Value::Array(ts) => Some(ts.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

fn is_type(value: &Value, name: &str) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The routes as the router declares them (each `route` call with a path and method
    /// handlers in `routes/*.rs`), read from the source, since axum does not list its routes.
    fn declared_routes() -> std::collections::BTreeSet<(String, String)> {
        let sources = [
            include_str!("routes/client_config.rs"),
            include_str!("routes/desk_unlock.rs"),
            include_str!("routes/health.rs"),
            include_str!("routes/issuance.rs"),
            include_str!("routes/profile.rs"),
            include_str!("routes/ra.rs"),
            include_str!("routes/registration.rs"),
            include_str!("routes/sign_in.rs"),
            include_str!("routes/unlock.rs"),
            include_str!("openapi.rs"),
        ];
        let mut routes = std::collections::BTreeSet::new();
        for source in sources {
            for declaration in source.split(".route(\"").skip(1) {
                let Some((path, rest)) = declaration.split_once('"') else { continue };
                let handlers =
                    rest.split(')').take_while(|s| !s.trim().is_empty()).collect::<Vec<_>>().join(")");
                for method in ["get", "post", "delete", "put", "patch"] {
                    if handlers.contains(&format!("{method}(")) {
                        routes.insert((method.to_owned(), format!("/api{path}")));
                    }
                }
            }
        }
        routes
    }

    #[test]
    fn every_route_is_described_and_every_description_is_a_route() {
        let declared = declared_routes();
        assert!(declared.len() > 30, "{declared:?}");
        let described: std::collections::BTreeSet<(String, String)> =
            OPERATIONS.iter().map(|op| (op.method.to_owned(), op.path.to_owned())).collect();
        let undescribed: Vec<_> = declared.difference(&described).collect();
        let unrouted: Vec<_> = described.difference(&declared).collect();
        assert!(undescribed.is_empty(), "routes the document does not describe: {undescribed:?}");
        assert!(unrouted.is_empty(), "operations with no route: {unrouted:?}");
    }

    #[test]
    fn every_schema_reference_resolves_and_the_document_is_openapi_3_1() {
        assert_eq!(DOCUMENT["openapi"], "3.1.0");
        fn walk(value: &Value, found: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    if let Some(r) = map.get("$ref").and_then(Value::as_str) {
                        found.push(r.to_owned());
                    }
                    map.values().for_each(|v| walk(v, found));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
                _ => {}
            }
        }
        let mut references = Vec::new();
        walk(&DOCUMENT, &mut references);
        assert!(references.len() > 50);
        for reference in references {
            let name = reference.trim_start_matches("#/components/schemas/");
            assert!(!DOCUMENT["components"]["schemas"][name].is_null(), "{reference} does not resolve");
        }
        let ra = &DOCUMENT["paths"]["/api/ra/users/{user_id}"]["get"];
        assert_eq!(ra["security"], json!([{ "session": ["ra"] }]));
        assert_eq!(ra["parameters"][0]["name"], "user_id");
    }

    #[test]
    fn answers_are_checked_against_their_schemas() {
        let questions = br#"{"attempt_id":"a","questions":[{"id":3,"text":"Q"}],"attempts_left":2}"#;
        assert_eq!(check_response("POST", "/api/unlock/start", 200, questions), Ok(()));
        let wrong = br#"{"attempt_id":7,"questions":[],"attempts_left":2}"#;
        assert!(check_response("POST", "/api/unlock/start", 200, wrong).unwrap_err().contains("attempt_id"));
        let refusal = br#"{"code":"locked_out","message":"Locked."}"#;
        assert_eq!(check_response("POST", "/api/unlock/start", 403, refusal), Ok(()));
        assert!(check_response("POST", "/api/unlock/start", 418, refusal)
            .unwrap_err()
            .contains("not documented"));
        assert!(check_response("GET", "/api/ra/users/7000/nope", 200, b"{}")
            .unwrap_err()
            .contains("no such path"));
        let detail = check_response("GET", "/api/ra/users/700000000001", 404, refusal);
        assert_eq!(detail, Ok(()), "a concrete path matches its template");
        let guid = json!("0123456789abcdef0123456789abcdeX");
        assert!(check(&guid, &json!({ "$ref": "#/components/schemas/CardGuid" })).is_err());
    }
}
