//! Structured fuzzing of every route that takes a body, on the in-process app: bodies generated
//! from the route's own schema in the OpenAPI document, then broken the ways a hostile client
//! breaks them (a field of the wrong type, missing or unknown, huge strings and arrays, deep
//! nesting, odd Unicode, numbers at the edges, bytes that are not JSON). Sent by a signed-in
//! holder and by an RA officer, each answer must be one the document names for the route (never
//! a 5xx), and afterwards the audit chain is intact and the holder's journey still works.
//!
//! `HOSTILE_BODIES=N` sets how many bodies each route gets (the test run uses a quick 24;
//! `scripts/fuzz.sh` runs many more).

use protocol::api::UnlockQuestions;
use serde_json::{json, Map, Value};

use crate::{
    helpers::documented,
    on_both_databases, ra,
    unlock::{answers_for, holder, start},
};

/// A small deterministic generator (xorshift64*): a failure names its seed and replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }

    fn chance(&mut self, in_n: usize) -> bool {
        self.below(in_n) == 0
    }
}

const STRINGS: &[&str] = &[
    "",
    "a",
    "12345678",
    "123456",
    "00000000000000000000000000000000",
    "AAAA",
    "not base64 ###",
    "Ünïcødé \u{1D11E} \u{202E}rtl\u{202C} \u{0}",
    "../../../etc/passwd",
    "<script>alert(1)</script>",
    "'; DROP TABLE users; --",
    "%00%ff",
    "\u{FEFF}\u{200B}",
    "9999999999999999999999999999",
];

fn string(rng: &mut Rng) -> Value {
    match rng.below(8) {
        0 => Value::String("x".repeat(rng.below(70_000))),
        1 => Value::String("\u{1F600}".repeat(rng.below(5_000))),
        _ => Value::String(STRINGS[rng.below(STRINGS.len())].to_owned()),
    }
}

fn number(rng: &mut Rng) -> Value {
    [
        json!(0),
        json!(-1),
        json!(1),
        json!(3),
        json!(u32::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1.5e300),
        json!(-0.0),
    ][rng.below(9)]
    .clone()
}

/// Anything at all, up to `depth` deep.
fn anything(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth == 0 { 4 } else { 6 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(2)),
        2 => number(rng),
        3 => string(rng),
        4 => Value::Array((0..rng.below(4)).map(|_| anything(rng, depth - 1)).collect()),
        _ => {
            let mut map = Map::new();
            for _ in 0..rng.below(4) {
                map.insert(STRINGS[rng.below(STRINGS.len())].to_owned(), anything(rng, depth - 1));
            }
            Value::Object(map)
        }
    }
}

/// A value following `schema` (resolving `$ref` in `document`), each part now and then broken.
fn generate(schema: &Value, document: &Value, rng: &mut Rng, depth: usize) -> Value {
    if depth == 0 || rng.chance(12) {
        return anything(rng, 2);
    }
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or_default();
        let target = &document["components"]["schemas"][name];
        return generate(target, document, rng, depth - 1);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(choices) = schema.get(key).and_then(Value::as_array) {
            return generate(&choices[rng.below(choices.len())], document, rng, depth - 1);
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return if rng.chance(4) { string(rng) } else { values[rng.below(values.len())].clone() };
    }
    let kind = match schema.get("type") {
        Some(Value::Array(kinds)) => kinds[rng.below(kinds.len())].as_str().unwrap_or("null").to_owned(),
        Some(Value::String(kind)) => kind.clone(),
        _ => "object".to_owned(),
    };
    match kind.as_str() {
        "object" => {
            let mut map = Map::new();
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (name, property) in properties {
                    if !rng.chance(8) {
                        map.insert(name.clone(), generate(property, document, rng, depth - 1));
                    }
                }
            }
            if rng.chance(6) {
                map.insert("unexpected".into(), anything(rng, 2));
            }
            Value::Object(map)
        }
        "array" => {
            let count = if rng.chance(10) { 5_000 } else { rng.below(6) };
            let items = schema.get("items").cloned().unwrap_or(Value::Null);
            Value::Array((0..count).map(|_| generate(&items, document, rng, depth - 1)).collect())
        }
        "string" => string(rng),
        "integer" | "number" => number(rng),
        "boolean" => Value::Bool(rng.chance(2)),
        _ => Value::Null,
    }
}

/// Bytes that are not a JSON body at all, or one nested far too deep.
fn raw(rng: &mut Rng) -> Vec<u8> {
    match rng.below(5) {
        0 => Vec::new(),
        1 => b"{\"a\":".to_vec(),
        2 => format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
        3 => (0..rng.below(2_000)).map(|_| u8::try_from(rng.below(256)).unwrap_or(0)).collect(),
        _ => b"null".to_vec(),
    }
}

/// The route's path with its parameters filled (another person's id, or junk).
fn path_for(template: &str, rng: &mut Rng, user_id: &str) -> String {
    let junk = ["x", "..%2f..", "5", "00000000000000000000000000000000", &"9".repeat(300)];
    template
        .replace("{user_id}", if rng.chance(2) { user_id } else { junk[rng.below(junk.len())] })
        .replace("{guid}", junk[rng.below(junk.len())])
        .replace("{id}", junk[rng.below(junk.len())])
}

fn bodies_per_route() -> usize {
    std::env::var("HOSTILE_BODIES").ok().and_then(|n| n.parse().ok()).unwrap_or(24)
}

on_both_databases! {
    async fn hostile_bodies_on_every_route_get_a_documented_answer_and_change_nothing_that_matters(engine: Engine) {
        let (app, _smtp, card) = holder(engine, true).await;
        assert_eq!(card.sign_in(&app).await.status(), 200);
        let officer = ra::officer(&app).await;
        // The RA routes' bodies act on someone else (an officer may legitimately withdraw,
        // suspend or issue): the holder's own state must come through untouched.
        let other = crate::cards::TestCard::new();
        other.issue_to(&app, "500000000077", "Oz Other", "oz@nhs.net").await;
        let document = backend::openapi::DOCUMENT.clone();
        let mut rng = Rng(0x5eed_0000_0000_0001 ^ bodies_per_route() as u64);
        let mut sent = 0;
        for operation in backend::openapi::OPERATIONS.iter().filter(|o| o.body.is_some()) {
            let schema = json!({ "$ref": format!("#/components/schemas/{}", operation.body.unwrap_or_default()) });
            for n in 0..bodies_per_route() {
                let path = path_for(operation.path, &mut rng, "500000000077");
                let client = if n % 2 == 0 { &app.client } else { &officer };
                let body = if rng.chance(6) { raw(&mut rng) } else { serde_json::to_vec(&generate(&schema, &document, &mut rng, 6)).unwrap() };
                let request = client
                    .request(operation.method.to_uppercase().parse().unwrap(), format!("{}{path}", app.address))
                    .header("content-type", if rng.chance(10) { "text/plain" } else { "application/json" })
                    .body(body.clone());
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                assert!(status < 500, "{} {path} answered {status} to {}", operation.method, String::from_utf8_lossy(&body[..body.len().min(300)]));
                // Only statuses the route documents, with the documented body.
                drop(documented(&operation.method.to_uppercase(), operation.path, response).await);
                sent += 1;
            }
        }
        assert!(sent > 500, "{sent} bodies sent");

        // Nothing that matters changed: the chain is intact, and the holder can still unlock.
        let verified = app.admin(&["verify-audit"]);
        assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
        let started = start(&app, &card).await;
        let (status, text) = (started.status(), started.text().await.unwrap());
        let questions: UnlockQuestions =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("the holder's unlock: {status} {text}: {e}"));
        assert_eq!(app.post("/api/unlock/answers", &answers_for(&questions, true)).await.status(), 200);
    }
}
