//! The workstation card agent: PC/SC and PIV behind a guarded localhost WebSocket.
//!
//! - [`guard`]: which WebSocket handshakes are accepted (Origin allow-list, loopback Host).
//! - [`ops`]: the high-level card operations, over any [`piv::host::Transport`].
//! - [`pcsc_worker`]: the blocking PC/SC side: a monitor thread pushing reader/card events and
//!   a worker thread running operations inside PC/SC transactions.
//! - [`server`]: the WebSocket service tying them together.
//! - [`tray_model`]: what the tray shows and offers for each state (no GUI in it).
//! - [`desktop`]: desktop mode — the tray icon and the locked-card notification, kept current.
//! - [`platform`]: what differs between workstation platforms (paths, tray, notifications).
//! - [`diagnostics`]: the report `card-agent --diagnostics` prints (and the tray will show).
//! - [`locked_card`]: when to offer "your card is locked — unlock it?".

pub mod config;
pub mod crash;
pub mod desktop;
pub mod diagnostics;
pub mod guard;
pub mod issue;
pub mod locked_card;
pub mod ops;
pub mod pcsc_worker;
pub mod platform;
pub mod server;
#[cfg(test)]
mod test_support;
pub mod tray_model;
