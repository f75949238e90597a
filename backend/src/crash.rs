//! Crash points for the fault-injection tests. Built only with the `crash-points` feature (the
//! test crate turns it on; a release build of the backend has none): when
//! `BACKEND_CRASH_AT` names a point, the process sends itself `SIGKILL` there, so a test can
//! stop the backend between two exact lines, such as a transaction's last write and its commit.

/// The variable naming the one point to crash at (not `SELFSERVICE_…`: those are settings,
/// and an unknown setting is refused).
#[cfg(feature = "crash-points")]
pub const VARIABLE: &str = "BACKEND_CRASH_AT";

/// Crashes here when this is the point named in [`VARIABLE`].
#[cfg(feature = "crash-points")]
pub fn point(name: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if AT.get_or_init(|| std::env::var(VARIABLE).ok()).as_deref() == Some(name) {
        eprintln!("crash point {name}: killing this process");
        // SIGKILL, as `kill -9` sends it: no destructor, flush or rollback runs in this process.
        let _ = std::process::Command::new("kill").args(["-KILL", &std::process::id().to_string()]).status();
        std::process::abort();
    }
}

#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn point(_name: &str) {}
