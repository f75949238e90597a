//! The audit trail in plain words for the console (the codes stay in the API and the CSV).

/// Every event the backend records, with what it means to an RA. A code not listed (from a newer
/// backend) is shown as its code.
pub const EVENTS: &[(&str, &str)] = &[
    ("sign_in", "Signed in"),
    ("sign_in_refused", "Sign-in refused"),
    ("sign_out", "Signed out"),
    ("registration_started", "Started registering for self-service"),
    ("registration_code_resent", "Asked for a new registration code"),
    ("registration_code_refused", "Registration code refused"),
    ("registration_completed", "Registered for self-service"),
    ("registration_withdrawn", "Withdrew from self-service"),
    ("unlock_started", "Started unlocking their card"),
    ("unlock_refused", "Unlock refused"),
    ("unlock_answers_wrong", "Security answers wrong"),
    ("unlock_questions_passed", "Security answers right"),
    ("selfservice_locked_out", "Self-service locked after failed attempts"),
    ("unlock_code_resent", "Asked for a new unlock code"),
    ("unlock_code_refused", "Unlock code refused"),
    ("unlock_code_accepted", "Unlock code accepted"),
    ("unlock_offer_refused", "Unlock refused: the card's answer did not verify"),
    ("unlock_puk_released", "Unlock key sent, sealed, to the card agent"),
    ("puk_recorded", "The card's new unlock key recorded"),
    ("unlock_incomplete", "Unlock did not finish"),
    ("card_unlocked", "Card unlocked"),
    ("desk_unlock_started", "RA started unlocking the card at the desk"),
    ("desk_unlock_refused", "RA desk unlock refused"),
    ("card_unlocked_at_desk", "RA unlocked the card at the desk"),
    ("user_added", "Person added"),
    ("ra_user_added", "Person added by an RA"),
    ("ra_viewed_user", "RA looked at this person"),
    ("ra_lockout_cleared", "RA cleared the self-service lockout"),
    ("ra_registration_withdrawn", "RA withdrew the self-service registration"),
    ("ra_card_status_changed", "RA changed a card's status"),
    ("ra_audit_verified", "RA verified the audit trail"),
    ("audit_lanes_opened", "Audit trail opened in parallel lanes"),
    ("ra_report_viewed", "RA viewed the report"),
    ("ra_report_downloaded", "RA downloaded the report"),
    ("card_issue_started", "Card issuance started"),
    ("card_issue_resume_refused", "Card issuance could not be resumed"),
    ("card_keys_certified", "Card keys certified"),
    ("card_issue_proof_refused", "Card issuance refused: the card's proof did not verify"),
    ("card_issue_incomplete", "Card issuance did not finish"),
    ("card_bound", "Card bound to the person"),
    ("card_issued", "Card issued"),
];

pub fn event(code: &str) -> String {
    EVENTS.iter().find(|(c, _)| *c == code).map_or_else(|| code.to_owned(), |(_, words)| (*words).to_owned())
}

/// `{"reason":"photo ID seen","failures":3}` → "Reason: photo ID seen. Failed attempts: 3."
pub fn details(json: &str) -> String {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_str::<serde_json::Value>(json) else {
        return json.to_owned();
    };
    fields
        .iter()
        .map(|(key, value)| format!("{}: {}.", label(key), value_words(value)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn label(key: &str) -> String {
    let known = match key {
        "reason" => "Reason",
        "why" => "Why",
        "failures" => "Failed attempts",
        "guid" => "Card",
        "step" => "Step",
        "questions" => "Questions",
        "roles" => "Roles",
        "user_id" => "User id",
        "status" => "Status",
        "from" => "From",
        "to" => "To",
        "route" => "Code sent to",
        "identity_check" => "Identity checked",
        "pin_reset" => "Passcode reset",
        "puk" => "Unlock key",
        "lanes" => "Lanes",
        "failed_step" => "Failed step",
        "proof" => "Card's proof",
        "root" => "Attested by",
        "serial" | "card_serial" => "Card serial",
        "attestation" => "Attestation",
        "resumed" => "Resumed",
        _ => "",
    };
    if known.is_empty() {
        let mut words = key.replace('_', " ");
        if let Some(first) = words.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        words
    } else {
        known.to_owned()
    }
}

fn value_words(value: &serde_json::Value) -> String {
    match value {
        // Codes such as `bad_signature` read as words; free text (a reason) is left as typed.
        serde_json::Value::String(text) if !text.contains(' ') => text.replace('_', " "),
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Array(items) => items.iter().map(value_words).collect::<Vec<_>>().join(", "),
        serde_json::Value::Object(fields) => fields
            .iter()
            .map(|(key, value)| format!("{} {}", label(key).to_lowercase(), value_words(value)))
            .collect::<Vec<_>>()
            .join(", "),
        serde_json::Value::Bool(true) => "yes".to_owned(),
        serde_json::Value::Bool(false) => "no".to_owned(),
        serde_json::Value::Null => "none".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_words_and_unknown_codes_as_themselves() {
        assert_eq!(event("ra_lockout_cleared"), "RA cleared the self-service lockout");
        assert_eq!(event("from_a_newer_backend"), "from_a_newer_backend");
    }

    #[test]
    fn details_read_as_labelled_sentences() {
        assert_eq!(details(r#"{"reason":"Photo ID seen"}"#), "Reason: Photo ID seen.");
        assert_eq!(details(r#"{"failures":3}"#), "Failed attempts: 3.");
        assert_eq!(details(r#"{"reason":"bad_signature"}"#), "Reason: bad signature.");
        assert_eq!(
            details(r#"{"attestation":{"root":"Maker","card_serial":7},"resumed":false}"#),
            "Attestation: card serial 7, attested by Maker. Resumed: no."
        );
        assert_eq!(details(r#"{"questions":[3,7]}"#), "Questions: 3, 7.");
        assert_eq!(details("not json"), "not json");
    }
}
