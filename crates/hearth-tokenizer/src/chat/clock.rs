//! Dates for templates that print today's (`strftime_now`, `datetime`,
//! `date_string`), in UTC.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch now.
pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A small `strftime` over UTC for the directives chat templates use
/// (`%Y %y %m %d %e %H %M %S %B %b %A %a %j %%`, and `%-d`/`%-m`).
pub(super) fn strftime(fmt: &str, unix_secs: u64) -> String {
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
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    let t = hearth_time::Civil::from_unix(unix_secs as i64);
    let (year, month, day) = (t.year, i64::from(t.month), i64::from(t.day));
    let yday = i64::from(t.day_of_year());
    let month_name = MONTHS[(t.month - 1) as usize];
    let weekday = DAYS[t.weekday() as usize];

    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut d = chars.next().unwrap_or('%');
        let no_pad = d == '-';
        if no_pad {
            d = chars.next().unwrap_or('%');
        }
        let num = |v: i64, w: usize| {
            if no_pad {
                v.to_string()
            } else {
                format!("{v:0w$}")
            }
        };
        match d {
            'Y' => out += &year.to_string(),
            'y' => out += &num(year % 100, 2),
            'm' => out += &num(month, 2),
            'd' => out += &num(day, 2),
            'e' => out += &format!("{day:2}"),
            'H' => out += &num(i64::from(t.hour), 2),
            'M' => out += &num(i64::from(t.minute), 2),
            'S' => out += &num(i64::from(t.second), 2),
            'j' => out += &num(yday, 3),
            'B' => out += month_name,
            'b' => out += &month_name[..3],
            'A' => out += weekday,
            'a' => out += &weekday[..3],
            '%' => out.push('%'),
            other => {
                out.push('%');
                out.push(other);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_formats_utc_dates() {
        // 2024-02-29 13:05:09 UTC, a Thursday.
        let t = 1_709_211_909;
        assert_eq!(strftime("%d %b %Y", t), "29 Feb 2024");
        assert_eq!(
            strftime("%A %B %-d, %H:%M:%S %j %%", t),
            "Thursday February 29, 13:05:09 060 %"
        );
    }
}
