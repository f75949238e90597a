//! Types of the backend's JSON API under `/api`.

use serde::{Deserialize, Serialize};

/// `GET /api/health`: what an operator or load balancer needs to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok` when every dependency answers, `degraded` otherwise (then HTTP 503).
    pub status: HealthStatus,
    /// The backend's version (its Cargo package version).
    pub version: String,
    pub database: DatabaseHealth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
    Degraded,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseHealth {
    /// `sqlite` or `postgres`.
    pub kind: String,
    /// Whether a trivial query succeeded just now.
    pub reachable: bool,
    /// The number of the newest migration applied, if any.
    pub schema_version: Option<i64>,
}

/// The one error envelope of the API: every 4xx and 5xx body has this shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// A stable, machine-readable code, e.g. `not_found`, `invalid_json`.
    pub code: String,
    /// A sentence a person can act on. Never contains secrets.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_serialises_with_snake_case_status() {
        let health = Health {
            status: HealthStatus::Degraded,
            version: "1.2.3".into(),
            database: DatabaseHealth { kind: "sqlite".into(), reachable: false, schema_version: None },
        };
        let json = serde_json::to_value(&health).unwrap();
        assert_eq!(json["status"], "degraded");
        assert_eq!(json["database"]["kind"], "sqlite");
        let back: Health = serde_json::from_value(json).unwrap();
        assert_eq!(back, health);
    }
}
