//! Windows: settings in `%APPDATA%` (the person's) and `%ProgramData%` (the machine's, which the
//! MSI writes), the log in `%LOCALAPPDATA%`, the tray as a notification-area icon with a menu,
//! the locked-card notification as that icon's balloon (Windows 10 and 11 show it as a toast),
//! and pages opened in the default browser.
//!
//! Win32 through `windows-sys`. Every unsafe block is one documented call (or a few) given
//! buffers this module owns for the call's duration; the window and its icon live on their own
//! thread, which alone touches them, and the rest of the agent talks to it through a channel.

use std::{
    cell::RefCell,
    path::PathBuf,
    ptr::null,
    sync::{mpsc, Arc, OnceLock},
};

use windows_sys::Win32::{
    Foundation::{HWND, LPARAM, LRESULT, POINT, WPARAM},
    System::{
        Com::{CoInitializeEx, COINIT_APARTMENTTHREADED, COINIT_DISABLE_OLE1DDE},
        Console::{AttachConsole, GetStdHandle, ATTACH_PARENT_PROCESS, STD_OUTPUT_HANDLE},
        LibraryLoader::GetModuleHandleW,
        RemoteDesktop::ProcessIdToSessionId,
        Threading::GetCurrentProcessId,
    },
    UI::{
        Shell::{
            ShellExecuteW, Shell_NotifyIconW, NIF_ICON, NIF_INFO, NIF_MESSAGE, NIF_SHOWTIP, NIF_TIP,
            NIIF_WARNING, NIM_ADD, NIM_DELETE, NIM_MODIFY, NIM_SETVERSION, NIN_BALLOONUSERCLICK, NIN_SELECT,
            NOTIFYICONDATAW, NOTIFYICON_VERSION_4, NOTIFY_ICON_MESSAGE,
        },
        WindowsAndMessaging::{
            AppendMenuW, CreatePopupMenu, CreateWindowExW, DefWindowProcW, DestroyMenu, DispatchMessageW,
            GetCursorPos, GetMessageW, LoadIconW, MessageBoxW, PostMessageW, RegisterClassW,
            RegisterWindowMessageW, SetForegroundWindow, TrackPopupMenu, TranslateMessage, HICON,
            IDI_APPLICATION, IDI_ERROR, IDI_INFORMATION, IDI_QUESTION, IDI_SHIELD, IDI_WARNING, IDYES,
            MB_ICONINFORMATION, MB_ICONWARNING, MB_OK, MB_SETFOREGROUND, MB_YESNO, MF_ENABLED, MF_GRAYED,
            MF_STRING, MSG, SW_SHOWNORMAL, TPM_NONOTIFY, TPM_RETURNCMD, TPM_RIGHTBUTTON, WM_APP,
            WM_CONTEXTMENU, WM_NULL, WNDCLASSW, WS_OVERLAPPED,
        },
    },
};

use crate::tray_model::{indicator, menu, MenuAction, TrayState, LOCKED_TEXT, LOCKED_TITLE};

/// The PC/SC service as people and IT support here know it, and how to get it running.
pub const SMART_CARD_SERVICE: &str = "Smart Card, SCardSvr";
pub const SMART_CARD_SERVICE_FIX: &str =
    "start it (services.msc, \"Smart Card\", startup type Automatic) or ask IT support";

const FOLDER: &str = "SmartcardSelfService";

fn folder_in(variable: &str) -> Option<PathBuf> {
    std::env::var_os(variable).map(|dir| PathBuf::from(dir).join(FOLDER))
}

/// The settings file when `--config` is not given: the person's own
/// (`%APPDATA%\SmartcardSelfService\agent.toml`), else the machine's the MSI wrote
/// (`%ProgramData%\…`); the first that exists.
pub fn default_config_file() -> Option<PathBuf> {
    ["APPDATA", "ProgramData"]
        .into_iter()
        .filter_map(folder_in)
        .map(|dir| dir.join("agent.toml"))
        .find(|p| p.is_file())
}

/// The desktop-mode log, `%LOCALAPPDATA%\SmartcardSelfService\card-agent.log`, opened for
/// appending; `None` if it cannot be made.
pub fn desktop_log_file() -> Option<(PathBuf, std::fs::File)> {
    let dir = folder_in("LOCALAPPDATA")?;
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join("card-agent.log");
    let file = std::fs::OpenOptions::new().create(true).append(true).open(&path).ok()?;
    Some((path, file))
}

/// The program is a windowed one (no console opens at sign-in); typed in a console, it prints
/// there. Output already going somewhere (a pipe, a file) is left alone.
pub fn attach_console() {
    // SAFETY: neither call takes a pointer; AttachConsole fails harmlessly without a parent console.
    unsafe {
        let output = GetStdHandle(STD_OUTPUT_HANDLE);
        if output == 0 || output == -1 {
            AttachConsole(ATTACH_PARENT_PROCESS);
        }
    }
}

/// A person's session (not session 0, where services run with nobody to see a tray).
pub fn has_desktop_session() -> bool {
    let mut session = 0u32;
    // SAFETY: `session` outlives the call, which writes one u32 to it.
    let found = unsafe { ProcessIdToSessionId(GetCurrentProcessId(), &mut session) } != 0;
    found && session != 0
}

/// `s` as a NUL-terminated UTF-16 string.
fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// Copies `s` into a fixed Win32 text field, cut to fit, always NUL-terminated.
fn fill(field: &mut [u16], s: &str) {
    let room = field.len() - 1;
    let units: Vec<u16> = s.encode_utf16().take(room).collect();
    field[..units.len()].copy_from_slice(&units);
    field[units.len()] = 0;
}

/// Opens `url` in the person's browser; returns at once.
pub fn open_page(url: String) {
    // Web pages only: ShellExecute would as readily start a program named by a path.
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        tracing::warn!(%url, "not a web address; not opened");
        return;
    }
    std::thread::spawn(move || {
        let (verb, target) = (wide("open"), wide(&url));
        // SAFETY: ShellExecute may pass the URL to a shell extension, which needs COM on the calling
        // thread (as its documentation says); both strings outlive the call.
        let result = unsafe {
            CoInitializeEx(null(), (COINIT_APARTMENTTHREADED | COINIT_DISABLE_OLE1DDE) as u32);
            ShellExecuteW(0, verb.as_ptr(), target.as_ptr(), null(), null(), SW_SHOWNORMAL)
        };
        // Documented: a value above 32 is success.
        if result <= 32 {
            tracing::warn!(code = result, %url, "could not open the page");
        }
    });
}

/// Shows a report (the diagnostics) in a message box.
pub async fn show_report(title: &str, report: &str) {
    let (title, text) = (wide(title), wide(report));
    let shown = tokio::task::spawn_blocking(move || {
        // SAFETY: both strings outlive the call; no owner window.
        unsafe {
            MessageBoxW(0, text.as_ptr(), title.as_ptr(), MB_OK | MB_ICONINFORMATION | MB_SETFOREGROUND)
        };
    });
    if let Err(e) = shown.await {
        tracing::warn!(error = %e, "could not show the report");
    }
}

/// "Your smartcard is locked": the tray icon's balloon, which opens `unlock_url` when selected.
/// Without a tray, a message box asks instead. Returns at once.
pub fn offer_unlock(unlock_url: String) {
    if INBOX.get().is_some_and(|inbox| inbox.send(Command::OfferUnlock(unlock_url.clone()))) {
        return;
    }
    std::thread::spawn(move || {
        let title = wide(LOCKED_TITLE);
        let text = wide(&format!("{LOCKED_TEXT}\n\nUnlock it now?"));
        // SAFETY: both strings outlive the call; no owner window.
        let answer = unsafe {
            MessageBoxW(0, text.as_ptr(), title.as_ptr(), MB_YESNO | MB_ICONWARNING | MB_SETFOREGROUND)
        };
        if answer == IDYES {
            open_page(unlock_url);
        }
    });
}

/// What the person chose in the tray's menu.
pub type OnAction = Arc<dyn Fn(MenuAction) + Send + Sync>;

/// What the rest of the agent asks of the tray's thread.
#[derive(Debug)]
enum Command {
    State(TrayState),
    OfferUnlock(String),
}

/// The keyboard's "select" on the icon (shellapi.h: NIN_SELECT | NINF_KEY), not in windows-sys.
const NIN_KEYSELECT: u32 = NIN_SELECT | 0x1;

/// The icon's callback message, and the one that says commands are waiting.
const WM_TRAY: u32 = WM_APP + 1;
const WM_COMMANDS: u32 = WM_APP + 2;

/// The way to the tray's thread: a command, then a posted message that wakes its loop.
#[derive(Debug, Clone)]
struct Inbox {
    commands: mpsc::Sender<Command>,
    window: HWND,
}

impl Inbox {
    fn send(&self, command: Command) -> bool {
        // SAFETY: posting to a window handle (even a stale one) has no memory effects.
        self.commands.send(command).is_ok() && unsafe { PostMessageW(self.window, WM_COMMANDS, 0, 0) } != 0
    }
}

/// The running tray's inbox, for [`offer_unlock`].
static INBOX: OnceLock<Inbox> = OnceLock::new();

/// The tray icon, kept current with [`Tray::show_state`].
pub struct Tray {
    inbox: Inbox,
}

impl std::fmt::Debug for Tray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tray(notification area)")
    }
}

impl Tray {
    /// Puts the icon in the notification area. `links` says whether the menu's page links can
    /// work (a self-service URL is configured). `None` if its window cannot be made.
    pub async fn show(links: bool, on_action: OnAction) -> Option<Self> {
        // The menu's actions spawn tasks: the tray's thread runs them on the agent's runtime.
        let runtime = tokio::runtime::Handle::current();
        let (ready, started) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new().name("tray".into()).spawn(move || {
            let _runtime = runtime.enter();
            run_tray(links, on_action, ready);
        });
        if let Err(e) = thread {
            tracing::warn!(error = %e, "no tray thread; notifications by message box only");
            return None;
        }
        match started.await {
            Ok(Ok(inbox)) => {
                let _ = INBOX.set(inbox.clone());
                Some(Self { inbox })
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "no tray icon; notifications by message box only");
                None
            }
            Err(_) => None,
        }
    }

    pub async fn show_state(&self, state: TrayState) {
        self.inbox.send(Command::State(state));
    }
}

/// The icon, owned by the tray's thread.
struct Icon {
    window: HWND,
    state: TrayState,
    links: bool,
    on_action: OnAction,
    /// The page the balloon on show leads to.
    unlock_url: Option<String>,
    commands: mpsc::Receiver<Command>,
    /// Sent to every window when Explorer (re)starts: the icon must be added again.
    taskbar_created: u32,
}

thread_local! {
    static ICON: RefCell<Option<Icon>> = const { RefCell::new(None) };
}

fn run_tray(links: bool, on_action: OnAction, ready: tokio::sync::oneshot::Sender<Result<Inbox, String>>) {
    let class = wide("SmartcardSelfServiceTray");
    // SAFETY: the class name outlives the window (it lives until this thread ends, as the window
    // does); WNDCLASSW is a plain C struct whose all-zero value means "nothing set".
    let window = unsafe {
        let instance = GetModuleHandleW(null());
        let class_info = WNDCLASSW {
            lpfnWndProc: Some(window_proc),
            hInstance: instance,
            lpszClassName: class.as_ptr(),
            ..std::mem::zeroed()
        };
        RegisterClassW(&class_info);
        // Never shown: it only receives the icon's messages.
        CreateWindowExW(0, class.as_ptr(), class.as_ptr(), WS_OVERLAPPED, 0, 0, 0, 0, 0, 0, instance, null())
    };
    if window == 0 {
        let _ = ready.send(Err("the tray's window could not be made".into()));
        return;
    }
    let (inbox, commands) = mpsc::channel();
    let name = wide("TaskbarCreated");
    // SAFETY: the name outlives the call.
    let taskbar_created = unsafe { RegisterWindowMessageW(name.as_ptr()) };
    let icon = Icon {
        window,
        state: TrayState::NoReader,
        links,
        on_action,
        unlock_url: None,
        commands,
        taskbar_created,
    };
    // At sign-in the agent may start before Explorer's taskbar: the icon is added when it sends
    // TaskbarCreated, and again whenever Explorer restarts.
    if icon.notify(NIM_ADD) {
        tracing::info!("tray icon shown");
    } else {
        tracing::info!("no taskbar yet; the icon appears when Explorer starts");
    }
    ICON.with(|slot| *slot.borrow_mut() = Some(icon));
    let _ = ready.send(Ok(Inbox { commands: inbox, window }));
    // SAFETY: `message` outlives each call of the loop.
    unsafe {
        let mut message: MSG = std::mem::zeroed();
        while GetMessageW(&mut message, 0, 0, 0) > 0 {
            TranslateMessage(&message);
            DispatchMessageW(&message);
        }
    }
}

unsafe extern "system" fn window_proc(window: HWND, message: u32, wparam: WPARAM, lparam: LPARAM) -> LRESULT {
    let handled = ICON.with(|slot| {
        // The menu runs a message loop of its own that calls back in here: those go to Windows.
        let Ok(mut slot) = slot.try_borrow_mut() else { return false };
        slot.as_mut().is_some_and(|icon| icon.handle(message, lparam))
    });
    if handled {
        0
    } else {
        // SAFETY: the arguments are the ones Windows gave.
        unsafe { DefWindowProcW(window, message, wparam, lparam) }
    }
}

/// The stock Windows icon closest to each freedesktop icon the tray model names.
fn stock_icon(name: &str) -> HICON {
    let id = match name {
        "dialog-error" => IDI_ERROR,
        "dialog-warning" => IDI_WARNING,
        "dialog-question" => IDI_QUESTION,
        "security-high" => IDI_SHIELD,
        "media-removable" => IDI_INFORMATION,
        _ => IDI_APPLICATION,
    };
    // SAFETY: a system icon by its resource id; no instance, no pointer into our memory.
    unsafe { LoadIconW(0, id) }
}

impl Icon {
    fn handle(&mut self, message: u32, lparam: LPARAM) -> bool {
        match message {
            WM_COMMANDS => self.take_commands(),
            // With NOTIFYICON_VERSION_4 the event is the low word of lparam.
            WM_TRAY => match (lparam & 0xffff) as u32 {
                WM_CONTEXTMENU | NIN_SELECT | NIN_KEYSELECT => self.show_menu(),
                NIN_BALLOONUSERCLICK => {
                    if let Some(url) = self.unlock_url.take() {
                        open_page(url);
                    }
                }
                _ => {}
            },
            m if m == self.taskbar_created => {
                self.notify(NIM_ADD);
            }
            _ => return false,
        }
        true
    }

    fn take_commands(&mut self) {
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::State(state) => {
                    self.state = state;
                    self.notify(NIM_MODIFY);
                }
                Command::OfferUnlock(url) => self.show_balloon(url),
            }
        }
    }

    fn data(&self) -> NOTIFYICONDATAW {
        let shown = indicator(&self.state);
        // SAFETY: a plain C struct whose all-zero value means "nothing set".
        let mut data: NOTIFYICONDATAW = unsafe { std::mem::zeroed() };
        data.cbSize = size_of::<NOTIFYICONDATAW>() as u32;
        data.hWnd = self.window;
        data.uID = 1;
        data.uFlags = NIF_MESSAGE | NIF_ICON | NIF_TIP | NIF_SHOWTIP;
        data.uCallbackMessage = WM_TRAY;
        data.hIcon = stock_icon(shown.icon);
        fill(&mut data.szTip, &format!("Smartcard self-service: {}", shown.tooltip));
        data
    }

    fn notify(&self, message: NOTIFY_ICON_MESSAGE) -> bool {
        let mut data = self.data();
        // SAFETY: `data` outlives the calls, which read it.
        unsafe {
            let done = Shell_NotifyIconW(message, &data) != 0;
            if done && message == NIM_ADD {
                data.Anonymous.uVersion = NOTIFYICON_VERSION_4;
                Shell_NotifyIconW(NIM_SETVERSION, &data);
            }
            done
        }
    }

    fn show_balloon(&mut self, unlock_url: String) {
        let mut data = self.data();
        data.uFlags |= NIF_INFO;
        data.dwInfoFlags = NIIF_WARNING;
        fill(&mut data.szInfoTitle, LOCKED_TITLE);
        fill(&mut data.szInfo, &format!("{LOCKED_TEXT} Select this to start."));
        self.unlock_url = Some(unlock_url);
        // SAFETY: `data` outlives the call, which reads it.
        if unsafe { Shell_NotifyIconW(NIM_MODIFY, &data) } == 0 {
            tracing::warn!("could not show the locked-card notification");
        }
    }

    fn show_menu(&mut self) {
        let items = menu(&self.state);
        // SAFETY: each label outlives its AppendMenuW, which copies it; `at` outlives
        // GetCursorPos; the menu is destroyed once, after TrackPopupMenu returns.
        let chosen = unsafe {
            let popup = CreatePopupMenu();
            if popup == 0 {
                return;
            }
            for (index, item) in items.iter().enumerate() {
                let enabled = match item.action {
                    MenuAction::OpenSelfService | MenuAction::UnlockMyCard => self.links,
                    MenuAction::Diagnostics | MenuAction::Quit => true,
                };
                let label = wide(item.label);
                let flags = MF_STRING | if enabled { MF_ENABLED } else { MF_GRAYED };
                AppendMenuW(popup, flags, index + 1, label.as_ptr());
            }
            let mut at = POINT { x: 0, y: 0 };
            GetCursorPos(&mut at);
            // Documented for notification-area menus: without it the menu does not close when
            // the person clicks elsewhere.
            SetForegroundWindow(self.window);
            let chosen = TrackPopupMenu(
                popup,
                TPM_RETURNCMD | TPM_NONOTIFY | TPM_RIGHTBUTTON,
                at.x,
                at.y,
                0,
                self.window,
                null(),
            );
            PostMessageW(self.window, WM_NULL, 0, 0);
            DestroyMenu(popup);
            chosen
        };
        let item = usize::try_from(chosen).ok().and_then(|c| c.checked_sub(1)).and_then(|i| items.get(i));
        if let Some(item) = item {
            if item.action == MenuAction::Quit {
                self.notify(NIM_DELETE);
            }
            (self.on_action)(item.action);
        }
        // Commands that came while the menu was open.
        self.take_commands();
    }
}
