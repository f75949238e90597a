//! Dates and times as people read them, in the reader's own time zone, one way on every page
//! (NHS style: "1 December 2026", "8:02am").

use protocol::calendar::spoken;

/// `js_sys::Date` of Unix seconds, read in local time.
fn local(unix_seconds: i64) -> js_sys::Date {
    js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(unix_seconds as f64 * 1000.0))
}

fn parts(unix_seconds: i64) -> spoken::Parts {
    let date = local(unix_seconds);
    spoken::Parts {
        year: date.get_full_year(),
        month: date.get_month() + 1,
        day: date.get_date(),
        hour: date.get_hours(),
        minute: date.get_minutes(),
    }
}

/// "1 December 2026".
pub fn date(unix_seconds: i64) -> String {
    spoken::date(&parts(unix_seconds))
}

/// "8:02am".
pub fn clock(unix_seconds: i64) -> String {
    spoken::clock(&parts(unix_seconds))
}

/// "1 December 2026 at 8:02am".
pub fn date_time(unix_seconds: i64) -> String {
    let parts = parts(unix_seconds);
    format!("{} at {}", spoken::date(&parts), spoken::clock(&parts))
}

/// "We have sent an unlock code to f***@nhs.net. It works until 8:17am." — or, when the code sent
/// earlier stands (the sending limits), when it was sent and that no new one was. When the email
/// relay is not taking mail (`delayed`), that the code is on its way but late.
pub fn code_sent(
    kind: &str,
    to: &str,
    sent_at: i64,
    expires_at: i64,
    earlier: bool,
    delayed: bool,
) -> String {
    let until = clock(expires_at);
    let sent = if earlier {
        format!("We emailed you a code at {} to {to}; it works until {until}. No new code was sent, so use that one.", clock(sent_at))
    } else {
        format!("We have sent {kind} to {to}. It works once, until {until}.")
    };
    let late = if delayed { format!(" {MAIL_DELAYED}") } else { String::new() };
    format!("{sent}{late} If you cannot see it, check your Junk or Spam folder.")
}

/// "We have sent a new code to …", and that it is late when the relay is not taking mail.
pub fn resent(to: &str, delayed: bool) -> String {
    if delayed {
        format!("We have queued a new code for {to}. {MAIL_DELAYED}")
    } else {
        format!("We have sent a new code to {to}.")
    }
}

/// What a page says while the email relay is down: the code is kept and sent when it is back.
pub const MAIL_DELAYED: &str = "Our email service is slow right now, so the email may take a little longer \
    to arrive. It will come: please wait a few minutes before asking for a new code.";
