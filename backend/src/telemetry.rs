//! Logging set-up. No handler logs a request or response body (bodies carry passcodes, answers
//! and codes): the HTTP trace layer records method, path, status and latency only, inside the
//! request's span and its id (`request_id`).

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber once; later calls (e.g. from tests) are ignored. JSON puts one
/// object a line, with the current span's fields (the request id) on each.
pub fn init(default_filter: &str) {
    init_as(default_filter, LogFormat::Text);
}

pub fn init_as(default_filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
    };
}
