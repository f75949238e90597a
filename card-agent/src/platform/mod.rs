//! What differs between workstation platforms, behind one set of names: where the settings and
//! the log live, whether a desktop session is there to show things in, the tray icon, the
//! notifications and opening a page in the browser. Everything else in the agent (the WebSocket
//! service, the card operations, what the tray shows and when to notify) is shared.
//!
//! Linux and the other freedesktop.org desktops: `freedesktop`; Windows: `windows`. A new
//! platform is one more module here with the same functions and a [`Tray`] with the same methods.

#[cfg(not(windows))]
mod freedesktop;
#[cfg(not(windows))]
pub use freedesktop::*;

// The one module that calls the operating system through unsafe code (Win32).
#[cfg(windows)]
#[allow(unsafe_code)]
mod windows;
#[cfg(windows)]
pub use windows::*;
