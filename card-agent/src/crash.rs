//! Crash points for the fault-injection tests. Built only with the `crash-points` feature (the
//! test crate turns it on; the packages have none): when `CARD_AGENT_CRASH_AT` names a point,
//! the agent sends itself `SIGKILL` there, between two card commands of one operation.

/// The variable naming the one point to crash at.
#[cfg(feature = "crash-points")]
pub const VARIABLE: &str = "CARD_AGENT_CRASH_AT";

/// Crashes here when this is the point named in [`VARIABLE`].
#[cfg(feature = "crash-points")]
pub fn point(name: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if AT.get_or_init(|| std::env::var(VARIABLE).ok()).as_deref() == Some(name) {
        eprintln!("crash point {name}: killing this process");
        // SIGKILL, as `kill -9` sends it (on Windows, `abort` alone ends the process).
        #[cfg(unix)]
        let _ = std::process::Command::new("kill").args(["-KILL", &std::process::id().to_string()]).status();
        std::process::abort();
    }
}

#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn point(_name: &str) {}
