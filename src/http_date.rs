//! `Retry-After` values (RFC 9110 §10.2.3): delta-seconds, or an HTTP-date in any of the three
//! formats of §5.6.7 (parsed by the `httpdate` crate, which hyper already uses). Shared by the
//! LLM engine (429s from providers) and the GitHub client.
//!
//! The value comes from a server gate does not control: it is parsed without panicking, and a
//! huge wait is capped at [`MAX_RETRY_AFTER`] rather than trusted.

use std::time::{Duration, SystemTime};

/// The longest wait a `Retry-After` value is taken to ask for. A day is longer than any retry
/// gate would make; anything beyond it is a server's mistake or hostility, not advice.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How long a `Retry-After` value asks to wait, seen at `now`, at most [`MAX_RETRY_AFTER`]. A
/// date in the past is zero; anything unreadable (a fraction, a sign, a bad date) is None.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // delta-seconds = 1*DIGIT; a number too long for u64 is still "very long".
        let secs = v.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn the_three_date_formats_name_the_same_instant() {
        // RFC 9110's own example: 784111777 seconds after the epoch.
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770);
        for text in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                retry_after(text, now),
                Some(Duration::from_secs(7)),
                "{text}"
            );
        }
        for bad in [
            "",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:00:00 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770);
        assert_eq!(retry_after(" 12 ", now), Some(Duration::from_secs(12)));
        assert_eq!(retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        // delta-seconds is digits only (RFC 9110 §10.2.3).
        for bad in ["-3", "1.5", "+7", "1e3", "later", "NaN", "inf", "12 s"] {
            assert_eq!(retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn a_huge_wait_is_capped_not_trusted() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770);
        for huge in [
            "86401",
            "99999999999999999999999999999999",
            "18446744073709551615",
            "18446744073709551616",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            assert_eq!(retry_after(huge, now), Some(MAX_RETRY_AFTER), "{huge}");
        }
        // 1e20 is not delta-seconds at all (the panic of issue 12 came from reading it as f64).
        assert_eq!(retry_after("1e20", now), None);
    }

    #[test]
    fn no_input_panics() {
        // A cheap sweep of odd shapes; the property tests fuzz this further.
        let now = SystemTime::now();
        let mut shapes: Vec<String> = vec![
            "\u{0}".into(),
            "٣".into(),
            "Sun, 06 Nov 1994 08:49:37 GMT\u{feff}".into(),
            "9".repeat(10_000),
            " ".repeat(100),
            "Sun, 29 Feb 2023 00:00:00 GMT".into(),
            "Thu, 01 Jan 1970 00:00:00 GMT".into(),
            "Mon, 01 Jan 1900 00:00:00 GMT".into(),
        ];
        shapes.push(String::from_utf8_lossy(&[0xff, 0xfe, b'1']).into_owned());
        for s in &shapes {
            let _ = retry_after(s, now);
        }
    }
}
