//! Entry point: mounts the app. Everything else lives in the library.

fn main() {
    // The release build aborts on panic (`-Cpanic=immediate-abort`), so a hook would never run
    // there; in debug builds it puts the panic message in the console.
    #[cfg(debug_assertions)]
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(frontend::App);
}
