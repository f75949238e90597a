//! The workstation card agent: PC/SC and PIV behind a guarded localhost WebSocket.
