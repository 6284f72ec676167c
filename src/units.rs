//! Units, in one place: durations as people write them (scenario files, flags), durations and
//! rates as tables show them, and the one conversion the rooms share.
//!
//! Convention: histograms count whole microseconds (HdrHistogram, 3 significant digits);
//! records, thresholds and reports speak milliseconds as `f64`. `ms_from_us` and
//! `ms_from_duration` are the only places that scale between them.
//!
//! Parsing: `500ms`, `60s`, `2m`, `1h`, `1m30s`, `1.5s`, `250us`. A bare number is refused: `60`
//! could mean seconds or milliseconds.

use std::time::Duration;

pub const DURATION_HELP: &str = "use a number with a unit, e.g. 500ms, 60s, 2m, 1m30s";

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err(format!("empty duration; {DURATION_HELP}"));
    }
    let bad = || format!("`{text}` is not a duration; {DURATION_HELP}");
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += number * seconds_per_unit;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > 7.0 * 24.0 * 3600.0 {
        return Err(format!("`{text}` is longer than a week"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Microseconds (a histogram value) as milliseconds.
pub fn ms_from_us(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Microseconds as a float (a histogram mean or a shift estimate) as milliseconds.
pub fn ms_from_us_f64(us: f64) -> f64 {
    us / 1000.0
}

/// A `Duration` as milliseconds.
pub fn ms_from_duration(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Milliseconds that print themselves in the short table form (see `format_ms`).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Millis(pub f64);

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_ms(self.0))
    }
}

/// A rate per second as tables show it: `100.1/s`.
pub fn format_rate(per_s: f64) -> String {
    format!("{per_s:.1}/s")
}

/// Short human form used in tables: `850µs`, `12.3ms`, `1.20s`.
pub fn format_ms(ms: f64) -> String {
    if !ms.is_finite() {
        "—".to_string()
    } else if ms < 1.0 {
        format!("{:.0}µs", ms * 1000.0)
    } else if ms < 100.0 {
        format!("{ms:.1}ms")
    } else if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{:.2}s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn refuses_what_a_person_might_mistype() {
        for bad in ["60", "60 seconds", "s", "1x", "", "ms5", "1..2s", "-5s"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("duration"), "{bad}: {err}");
        }
        assert!(parse_duration("900h").unwrap_err().contains("week"));
    }

    #[test]
    fn formats_ms_for_tables() {
        assert_eq!(format_ms(0.85), "850µs");
        assert_eq!(format_ms(12.34), "12.3ms");
        assert_eq!(format_ms(312.4), "312ms");
        assert_eq!(format_ms(1200.0), "1.20s");
        assert_eq!(format_ms(f64::NAN), "—");
        assert_eq!(Millis(12.34).to_string(), "12.3ms");
        assert_eq!(format_rate(100.06), "100.1/s");
    }

    #[test]
    fn one_scale_between_histograms_and_tables() {
        assert_eq!(ms_from_us(1500), 1.5);
        assert_eq!(ms_from_us_f64(250.0), 0.25);
        assert_eq!(ms_from_duration(Duration::from_micros(2500)), 2.5);
    }
}
