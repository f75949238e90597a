//! Wall-clock time as the database stores it: Unix seconds; calendar days come from the shared crate.

pub use protocol::calendar::{civil_from_days, days_from_civil, parse_day};

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
