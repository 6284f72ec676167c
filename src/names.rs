//! Stable, safe names derived from user text (endpoint names come from scenario files and may
//! hold anything): the chart file names that the chart room writes, `gate ci` uploads, and the
//! PR comment links to. A leaf room, so all three can agree without knowing each other.

/// Longest slug kept from an endpoint name; the rest is replaced by a hash so names stay unique.
const MAX_SLUG: usize = 60;

/// A safe, stable file name for a chart: lowercase ASCII, digits and dashes only, so it works as a
/// path on every OS and as a URL segment on the assets branch without escaping. When the name had
/// to be shortened or had nothing ASCII in it, a hash of the original is appended so two endpoints
/// never share a file.
pub fn file_name(kind: &str, endpoint: &str) -> String {
    let kind = match slug(kind) {
        s if s.is_empty() => "chart".to_string(),
        s => s,
    };
    format!("{kind}-{}.png", safe_name(endpoint))
}

/// The endpoint part of [`file_name`] (also the dashboard's page names): lowercase ASCII, digits
/// and dashes, at most 69 characters, never empty.
pub fn safe_name(endpoint: &str) -> String {
    let full = slug(endpoint);
    if full.is_empty() {
        format!(
            "endpoint-{:08x}",
            crate::hash::fnv1a(endpoint.as_bytes()) as u32
        )
    } else if full.len() > MAX_SLUG {
        let cut = full[..MAX_SLUG].trim_end_matches('-');
        format!(
            "{cut}-{:08x}",
            crate::hash::fnv1a(endpoint.as_bytes()) as u32
        )
    } else {
        full
    }
}

fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_stable() {
        assert_eq!(
            file_name("trend", "User Orders/v2"),
            "trend-user-orders-v2.png"
        );
        assert_eq!(
            file_name("distribution", "GET /api/v1/products/:id"),
            "distribution-get-api-v1-products-id.png"
        );
        assert_eq!(
            file_name("ramp", "  --weird__name--  "),
            "ramp-weird-name.png"
        );
        assert_eq!(file_name("", "x"), "chart-x.png");
        assert_eq!(
            file_name("Trend", "../../etc/passwd"),
            "trend-etc-passwd.png"
        );
    }

    #[test]
    fn file_names_never_collapse_to_the_same_empty_slug() {
        let a = file_name("trend", "用户");
        let b = file_name("trend", "注文");
        assert!(a.starts_with("trend-endpoint-") && a.ends_with(".png"));
        assert_ne!(a, b);
        assert_eq!(a, file_name("trend", "用户"));
    }

    #[test]
    fn long_file_names_are_cut_and_stay_unique() {
        let long_a = format!("{}a", "segment/".repeat(20));
        let long_b = format!("{}b", "segment/".repeat(20));
        let a = file_name("trend", &long_a);
        assert!(a.len() <= "trend-".len() + MAX_SLUG + 9 + ".png".len());
        assert_ne!(a, file_name("trend", &long_b));
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        );
    }
}
