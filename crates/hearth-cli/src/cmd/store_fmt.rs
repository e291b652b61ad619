//! How the store commands print sizes, counts and times (as `ollama list`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Decimal units, as Ollama prints them: `638 MB`, `4.7 GB`.
pub fn human_size(n: u64) -> String {
    let f = n as f64;
    match n {
        n if n >= 1_000_000_000 => format!("{:.1} GB", f / 1e9),
        n if n >= 1_000_000 => format!("{:.0} MB", f / 1e6),
        n if n >= 1_000 => format!("{:.0} KB", f / 1e3),
        n => format!("{n} B"),
    }
}

/// `135M`, `1.2B`, `7.6K`.
pub fn human_count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.1}B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.0}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1}K", n as f64 / 1e3),
        n => n.to_string(),
    }
}

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `3 minutes ago`, `4 minutes from now`, `About a minute ago`.
pub fn relative(t: i64, now: i64) -> String {
    let d = now - t;
    let (n, future) = (d.unsigned_abs(), d < 0);
    let s = match n {
        0..=1 => {
            return if future {
                "Now".into()
            } else {
                "Just now".into()
            }
        }
        2..=59 => format!("{n} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", n / 60),
        3600..=7199 => "About an hour".into(),
        7200..=86_399 => format!("{} hours", n / 3600),
        86_400..=172_799 => "1 day".into(),
        n if n < 86_400 * 60 => format!("{} days", n / 86_400),
        n if n < 86_400 * 365 * 2 => format!("{} months", n / (86_400 * 30)),
        n if future && n > 86_400 * 365 * 50 => return "Forever".into(),
        n => format!("{} years", n / (86_400 * 365)),
    };
    if future {
        format!("{s} from now")
    } else {
        format!("{s} ago")
    }
}

/// Seconds since the epoch of an RFC 3339 time
/// (`2024-06-04T14:38:31.83753-07:00`, `...Z`).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    hearth_time::parse_rfc3339(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_counts_times() {
        assert_eq!(human_size(638_000_000), "638 MB");
        assert_eq!(human_size(4_700_000_000), "4.7 GB");
        assert_eq!(human_size(12), "12 B");
        assert_eq!(human_count(134_515_008), "135M");
        assert_eq!(relative(0, 180), "3 minutes ago");
        assert_eq!(relative(300, 60), "4 minutes from now");
        assert_eq!(relative(0, 90), "About a minute ago");
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-06-04T14:38:31.83753-07:00"),
            Some(1_717_537_111)
        );
        assert_eq!(
            parse_rfc3339("2000-03-01T00:00:00+01:00"),
            Some(951_865_200)
        );
        assert_eq!(parse_rfc3339("garbage"), None);
        assert_eq!(parse_rfc3339("2024-13-04T14:38:31Z"), None);
        assert_eq!(parse_rfc3339("2024-06-04T14:38:31é0000"), None);
    }
}
