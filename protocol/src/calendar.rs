//! Calendar days (UTC, proleptic Gregorian) for reports and dates on pages: the backend and
//! the SPA must agree on what `YYYY-MM-DD` a time falls on.

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `YYYY-MM-DD` of a day number (the inverse of [`days_from_civil`]).
pub fn civil_from_days(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// `YYYY-MM-DD HH:MM` (UTC) of Unix seconds.
pub fn date_time(unix_seconds: i64) -> String {
    let (days, seconds) = (unix_seconds.div_euclid(86_400), unix_seconds.rem_euclid(86_400));
    format!("{} {:02}:{:02}", civil_from_days(days), seconds / 3600, seconds % 3600 / 60)
}

/// The day number of a strict `YYYY-MM-DD` that names a real date.
pub fn parse_day(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year: i64 = text.get(0..4)?.parse().ok()?;
    let month: u32 = text.get(5..7)?.parse().ok()?;
    let day: u32 = text.get(8..10)?.parse().ok()?;
    if !(1..=12).contains(&month) || day == 0 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    // Rejects 2026-02-30 and the like: a real date survives the round trip.
    (civil_from_days(days) == text).then_some(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_across_leap_years_and_centuries() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), "1970-01-01");
        assert_eq!(parse_day("2026-11-28"), Some(20_785));
        assert_eq!(civil_from_days(20_785), "2026-11-28");
        for day in [-1, 59, 60, 10_956, 11_016, 47_541] {
            assert_eq!(parse_day(&civil_from_days(day)), Some(day), "{}", civil_from_days(day));
        }
        assert_eq!(parse_day("2024-02-29"), Some(days_from_civil(2024, 2, 29)));
    }

    #[test]
    fn times_show_as_utc_date_and_minutes() {
        assert_eq!(date_time(0), "1970-01-01 00:00");
        assert_eq!(date_time(20_785 * 86_400 + 14 * 3600 + 3 * 60 + 59), "2026-11-28 14:03");
    }

    #[test]
    fn only_real_dates_in_the_strict_form_parse() {
        for bad in
            ["2026-02-30", "2025-02-29", "2026-13-01", "2026-1-1", "26-11-28", "2026/11/28", "", "2026-11-00"]
        {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }
}

/// Dates and times in words, NHS style ("1 December 2026", "8:02am"), from parts the caller has
/// already put in the reader's time zone (the SPA, from the browser's clock).
pub mod spoken {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Parts {
        pub year: u32,
        /// 1–12.
        pub month: u32,
        pub day: u32,
        pub hour: u32,
        pub minute: u32,
    }

    pub fn date(parts: &Parts) -> String {
        let month = MONTHS.get(parts.month.saturating_sub(1) as usize).copied().unwrap_or("");
        format!("{} {month} {}", parts.day, parts.year)
    }

    /// 12-hour clock, "am"/"pm"; midday is "12pm" and midnight "12am", as the NHS style guide has it.
    pub fn clock(parts: &Parts) -> String {
        let (hour, half) = match parts.hour {
            0 => (12, "am"),
            h @ 1..=11 => (h, "am"),
            12 => (12, "pm"),
            h => (h - 12, "pm"),
        };
        match parts.minute {
            0 => format!("{hour}{half}"),
            m => format!("{hour}:{m:02}{half}"),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn at(hour: u32, minute: u32) -> Parts {
            Parts { year: 2026, month: 12, day: 1, hour, minute }
        }

        #[test]
        fn dates_read_day_month_year() {
            assert_eq!(date(&at(8, 2)), "1 December 2026");
            assert_eq!(date(&Parts { month: 1, ..at(0, 0) }), "1 January 2026");
        }

        #[test]
        fn times_read_on_a_twelve_hour_clock() {
            assert_eq!(clock(&at(8, 2)), "8:02am");
            assert_eq!(clock(&at(8, 17)), "8:17am");
            assert_eq!(clock(&at(0, 5)), "12:05am");
            assert_eq!(clock(&at(12, 0)), "12pm");
            assert_eq!(clock(&at(15, 30)), "3:30pm");
            assert_eq!(clock(&at(23, 59)), "11:59pm");
        }
    }
}
