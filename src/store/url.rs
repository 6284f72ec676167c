//! `--db` values: a file path (SQLite) or a `postgres://` URL, and how a URL may be shown.
//!
//! A URL may carry a password (`postgres://user:secret@host/db`, or `?password=secret`); it is
//! never printed, stored or put in an error: every message shows `redact_db`'s form,
//! `postgres://user:***@host:5432/db`.

use std::path::Path;

/// A `postgres://` or `postgresql://` URL (any case in the scheme).
pub fn is_postgres_url(db: &str) -> bool {
    let lower = db.get(..13).unwrap_or(db).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// `db` as it may be shown: a path as it is; a PostgreSQL URL as `scheme://user:***@hosts/dbname`,
/// its password replaced by `***` and its query (which may hold `password=`) left out.
pub fn redact_db(db: &Path) -> String {
    match db.to_str().filter(|s| is_postgres_url(s)) {
        Some(url) => redact_url(url),
        None => db.display().to_string(),
    }
}

pub(super) fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    // The query and fragment go: `password=` may be there.
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    // The userinfo ends at the last `@` of the authority (a password may contain `@`).
    let shown = match authority.rfind('@') {
        Some(i) => {
            let (userinfo, hosts) = (&authority[..i], &authority[i + 1..]);
            match userinfo.split_once(':') {
                Some((user, _password)) => format!("{user}:***@{hosts}"),
                None => format!("{userinfo}@{hosts}"),
            }
        }
        None => authority.to_string(),
    };
    format!("{scheme}://{shown}{path}")
}

/// Remove every occurrence of `secret` from `text` (a driver message that might echo it).
pub(super) fn scrub(text: &str, secret: Option<&str>) -> String {
    match secret.filter(|s| !s.is_empty()) {
        Some(s) => text.replace(s, "***"),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recognised_and_shown_without_their_password() {
        assert!(is_postgres_url("postgres://u@h/db"));
        assert!(is_postgres_url("PostgreSQL://u@h/db"));
        assert!(!is_postgres_url(".gate/history.db"));
        assert!(!is_postgres_url("postgres"));
        for (url, shown) in [
            (
                "postgres://gate:s3cr%40t@db.internal:5433/hist",
                "postgres://gate:***@db.internal:5433/hist",
            ),
            (
                "postgresql://gate:p@ss@127.0.0.1/hist?sslmode=disable&password=s3cret",
                "postgresql://gate:***@127.0.0.1/hist",
            ),
            ("postgres://gate@h/db", "postgres://gate@h/db"),
            (
                "postgres://h1:5432,h2:5433/db?user=u&password=pw",
                "postgres://h1:5432,h2:5433/db",
            ),
        ] {
            assert_eq!(redact_db(Path::new(url)), shown);
        }
        assert_eq!(redact_db(Path::new("a/b.db")), "a/b.db");
        assert_eq!(scrub("fails for pw here", Some("pw")), "fails for *** here");
        assert_eq!(scrub("x", Some("")), "x");
    }
}
