//! Entry point of the RA console, a separate bundle from the cardholders' SPA (see `frontend::ra`).

fn main() {
    #[cfg(debug_assertions)]
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(frontend::ra::RaApp);
}
