//! Paths → route templates: a path segment that is an id becomes a parameter, so
//! `/api/v1/products/42` and `/api/v1/products/7` are one route, `/api/v1/products/{id}`.
//! A segment that looks like a secret (an email, a JWT, an API key, a long random token) becomes
//! a parameter too, of a kind whose values are never kept.

use std::ops::Range;

/// What a parameter segment is. The name is what the template and the feeder column say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Digits only: `42`.
    Id,
    /// `8-4-4-4-12` hex digits.
    Uuid,
    /// 16 or more hex digits: a content hash, a commit, an object id.
    Hash,
    /// Looks like a secret: never sampled, never written.
    Secret(Secret),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Secret {
    Email,
    Jwt,
    /// A known API key or token prefix (`sk-`, `ghp_`, `xoxb-`, `AKIA`, …).
    Key,
    /// 20 or more characters mixing upper case, lower case and digits (base64-ish).
    Token,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Id => "id",
            Kind::Uuid => "uuid",
            Kind::Hash => "hash",
            Kind::Secret(Secret::Email) => "email",
            Kind::Secret(Secret::Jwt) => "jwt",
            Kind::Secret(Secret::Key) => "key",
            Kind::Secret(Secret::Token) => "token",
        }
    }

    pub fn is_secret(self) -> bool {
        matches!(self, Kind::Secret(_))
    }
}

/// Prefixes of well-known API keys and tokens (OpenAI/Stripe `sk-`/`sk_`, GitHub, Slack,
/// GitLab, AWS access key ids, Google API keys, Hugging Face, npm).
const KEY_PREFIXES: &[&str] = &[
    "sk-",
    "sk_",
    "pk_live_",
    "rk_live_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "xoxa-",
    "xoxb-",
    "xoxp-",
    "xoxr-",
    "xoxs-",
    "xapp-",
    "glpat-",
    "AKIA",
    "ASIA",
    "AIza",
    "hf_",
    "npm_",
];

/// Shortest segment a key prefix counts in: `sk-items` is a word, `sk-proj-4f…` a key.
const MIN_KEY_LEN: usize = 12;
/// Shortest mixed-case-and-digits run that counts as a random token.
const MIN_TOKEN_LEN: usize = 20;
/// Shortest run of hex digits that counts as a hash.
const MIN_HASH_LEN: usize = 16;

/// The kind of a path segment if it is a parameter, `None` if it is a literal.
pub fn classify(seg: &str) -> Option<Kind> {
    if seg.is_empty() {
        return None;
    }
    let b = seg.as_bytes();
    if is_email(seg) {
        return Some(Kind::Secret(Secret::Email));
    }
    if b.iter().all(u8::is_ascii_digit) {
        return Some(Kind::Id);
    }
    if is_uuid(b) {
        return Some(Kind::Uuid);
    }
    if b.len() >= MIN_HASH_LEN && b.iter().all(u8::is_ascii_hexdigit) {
        return Some(Kind::Hash);
    }
    if seg.starts_with("eyJ") && b.len() >= 16 {
        return Some(Kind::Secret(Secret::Jwt));
    }
    if b.len() >= MIN_KEY_LEN && KEY_PREFIXES.iter().any(|p| seg.starts_with(p)) {
        return Some(Kind::Secret(Secret::Key));
    }
    if b.len() >= MIN_TOKEN_LEN
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_+=.~%".contains(c))
        && b.iter().any(u8::is_ascii_uppercase)
        && b.iter().any(u8::is_ascii_lowercase)
        && b.iter().any(u8::is_ascii_digit)
    {
        return Some(Kind::Secret(Secret::Token));
    }
    None
}

/// `name@host.tld`, also percent-encoded (`name%40host.tld`).
fn is_email(seg: &str) -> bool {
    let at = seg
        .find('@')
        .map(|i| (i, 1))
        .or_else(|| seg.find("%40").map(|i| (i, 3)));
    match at {
        Some((i, n)) => i > 0 && seg[i + n..].contains('.'),
        None => false,
    }
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// One parameter of a path: its kind, its name in the template, where its value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub kind: Kind,
    pub range: Range<usize>,
}

/// Write `path`'s template into `out` (cleared first) and each parameter into `params`
/// (cleared first). Names are the kind's, numbered from the second of a kind on (`{id}`,
/// `{id_2}`). Buffers are the caller's, so the hot loop does not allocate.
pub fn template(path: &str, out: &mut String, params: &mut Vec<Param>) {
    out.clear();
    params.clear();
    let mut start = 0;
    for seg in path.split('/') {
        if start > 0 {
            out.push('/');
        }
        match classify(seg) {
            Some(kind) => {
                let n = params
                    .iter()
                    .filter(|p| p.kind.name() == kind.name())
                    .count();
                out.push('{');
                out.push_str(kind.name());
                if n > 0 {
                    out.push('_');
                    push_number(out, n + 1);
                }
                out.push('}');
                params.push(Param {
                    kind,
                    range: start..start + seg.len(),
                });
            }
            None => out.push_str(seg),
        }
        start += seg.len() + 1;
    }
}

fn push_number(out: &mut String, n: usize) {
    use std::fmt::Write;
    let _ = write!(out, "{n}");
}

/// The names of a template's parameters in order, as the template writes them.
pub fn param_names(kinds: &[Kind]) -> Vec<String> {
    let mut names = Vec::with_capacity(kinds.len());
    for (i, k) in kinds.iter().enumerate() {
        let n = kinds[..i].iter().filter(|p| p.name() == k.name()).count();
        names.push(if n == 0 {
            k.name().to_string()
        } else {
            format!("{}_{}", k.name(), n + 1)
        });
    }
    names
}

/// Does this text look like a secret anywhere in it? The last check before a file is written:
/// every `/`, `?`, `&`, `=` separated piece is classified.
pub fn holds_secret(text: &str) -> bool {
    text.split(|c: char| "/?&=, \"'\t\n{}:".contains(c))
        .any(|piece| classify(piece).is_some_and(Kind::is_secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(path: &str) -> (String, Vec<(Kind, String)>) {
        let (mut out, mut params) = (String::new(), Vec::new());
        template(path, &mut out, &mut params);
        let values = params
            .iter()
            .map(|p| (p.kind, path[p.range.clone()].to_string()))
            .collect();
        (out, values)
    }

    #[test]
    fn ids_uuids_and_hashes_become_parameters() {
        assert_eq!(t("/api/v1/products/42").0, "/api/v1/products/{id}");
        assert_eq!(
            t("/api/v1/users/7/orders/9"),
            (
                "/api/v1/users/{id}/orders/{id_2}".to_string(),
                vec![(Kind::Id, "7".into()), (Kind::Id, "9".into())]
            )
        );
        assert_eq!(
            t("/o/3f2504e0-4f89-11d3-9a0c-0305e82c3301/x").0,
            "/o/{uuid}/x"
        );
        assert_eq!(
            t("/blob/9fceb02d0ae598e95dc970b74767f19372d61af8").0,
            "/blob/{hash}"
        );
        // v1, short hex words, slugs and file names stay literal.
        for literal in [
            "/api/v1",
            "/cafe/beef",
            "/blog/my-first-post-of-2024",
            "/a/app.3f9a.js",
            "/",
            "",
        ] {
            assert_eq!(t(literal).0, literal, "{literal}");
        }
        assert_eq!(t("/a//b/").0, "/a//b/");
    }

    #[test]
    fn secrets_become_parameters_of_a_secret_kind() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig";
        for (seg, kind) in [
            ("ann@example.com", Secret::Email),
            ("ann%40example.com", Secret::Email),
            (jwt, Secret::Jwt),
            ("sk-proj-abc123def456", Secret::Key),
            ("ghp_16C7e42F292c6912E7710c838347Ae178B4a", Secret::Key),
            ("xoxb-123456789012-abc", Secret::Key),
            ("AKIAIOSFODNN7EXAMPLE", Secret::Key),
            ("dGhpcyBpcyBhIHRva2VuMTIz", Secret::Token),
        ] {
            let (tpl, params) = t(&format!("/u/{seg}/x"));
            assert_eq!(
                tpl,
                format!("/u/{{{}}}/x", Kind::Secret(kind).name()),
                "{seg}"
            );
            assert_eq!(params, vec![(Kind::Secret(kind), seg.to_string())]);
            assert!(holds_secret(&format!("url: /u/{seg}")));
        }
        for word in ["sk-items", "products", "Report2024", "@home"] {
            assert_eq!(classify(word), None, "{word}");
        }
        assert!(!holds_secret("url: \"/api/v1/products/{{ data.id }}\""));
    }

    #[test]
    fn names_number_repeated_kinds() {
        assert_eq!(
            param_names(&[Kind::Id, Kind::Uuid, Kind::Id, Kind::Id]),
            ["id", "uuid", "id_2", "id_3"]
        );
    }
}
