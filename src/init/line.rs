//! One access-log line → one request: method, path (query string cut off), status, time and
//! request duration when the line has them. Borrowed from the line buffer: no allocation for
//! the web-server formats, one `serde_json::Value` per JSON line.
//!
//! Recognised layouts (`docs/init.md` says the same for users):
//! - **common** (NCSA, Apache `%h %l %u %t "%r" %>s %b`, nginx without the last two fields);
//! - **combined** (common + `"%{Referer}i" "%{User-agent}i"`, nginx's `combined` and `main`);
//! - either, followed by a request duration: the first field after the last standard one that
//!   is a number (bare or quoted, or `rt=`/`request_time=`/`rt:`-prefixed) within the next four
//!   fields. A number with a decimal point is seconds (nginx `$request_time`, `0.123`); an
//!   integer is microseconds (Apache `%D`). Other fields on the way (`"$http_x_forwarded_for"`)
//!   are skipped.
//! - **JSON lines**: one object a line; see [`JsonFields`] for the keys looked up.

use std::ops::Range;

/// How lines are read: one layout, or each line's own (`auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Combined,
    Common,
    Json,
    Auto,
}

/// The layout a line was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layout {
    Combined,
    Common,
    Json,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Combined => "combined",
            Layout::Common => "common",
            Layout::Json => "JSON lines",
        }
    }
}

/// One request of the log. `path` has no query string or fragment.
#[derive(Debug, Clone, PartialEq)]
pub struct Request<'a> {
    pub layout: Layout,
    pub method: Method<'a>,
    pub path: PathText<'a>,
    pub status: u16,
    /// Seconds since the Unix epoch, when the line has a time that could be read.
    pub time: Option<i64>,
    /// Request duration in microseconds, when the line has one.
    pub duration_us: Option<u64>,
}

/// Text that is either in the line buffer or (JSON with escapes) owned.
pub type Method<'a> = std::borrow::Cow<'a, str>;
pub type PathText<'a> = std::borrow::Cow<'a, str>;

/// Which JSON keys hold what. Each list is tried in order; a key with dots (`http.method`) is
/// looked up in nested objects. A duration key's unit comes with it.
#[derive(Debug, Clone)]
pub struct JsonFields {
    pub method: Vec<String>,
    pub path: Vec<String>,
    /// A whole request line, `"GET /x?y HTTP/1.1"`: method and path from one field.
    pub request: Vec<String>,
    pub status: Vec<String>,
    pub time: Vec<String>,
    pub duration: Vec<(String, Unit)>,
}

/// The unit of a bare number in a JSON duration field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Millis,
    Micros,
    Nanos,
}

impl Unit {
    pub fn parse(s: &str) -> Option<Unit> {
        match s {
            "s" => Some(Unit::Seconds),
            "ms" => Some(Unit::Millis),
            "us" | "µs" => Some(Unit::Micros),
            "ns" => Some(Unit::Nanos),
            _ => None,
        }
    }

    fn to_us(self, x: f64) -> f64 {
        match self {
            Unit::Seconds => x * 1e6,
            Unit::Millis => x * 1e3,
            Unit::Micros => x,
            Unit::Nanos => x / 1e3,
        }
    }
}

fn owned(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Default for JsonFields {
    fn default() -> Self {
        let mut duration = Vec::new();
        for (keys, unit) in [
            (
                &[
                    "request_time",
                    "duration",
                    "latency",
                    "elapsed",
                    "response_time",
                    "upstream_response_time",
                    "duration_s",
                    "latency_s",
                    "http.duration",
                ][..],
                Unit::Seconds,
            ),
            (
                &[
                    "duration_ms",
                    "latency_ms",
                    "elapsed_ms",
                    "response_time_ms",
                    "request_time_ms",
                    "took_ms",
                ][..],
                Unit::Millis,
            ),
            (
                &["duration_us", "latency_us", "elapsed_us", "request_time_us"][..],
                Unit::Micros,
            ),
            (
                &["duration_ns", "latency_ns", "elapsed_ns"][..],
                Unit::Nanos,
            ),
        ] {
            duration.extend(keys.iter().map(|k| (k.to_string(), unit)));
        }
        JsonFields {
            method: owned(&[
                "method",
                "request_method",
                "http_method",
                "verb",
                "http.method",
                "http.request.method",
                "req.method",
                "request.method",
            ]),
            path: owned(&[
                "path",
                "uri",
                "request_uri",
                "url",
                "request_path",
                "http.path",
                "http.url",
                "http.target",
                "url.path",
                "url.original",
                "req.url",
                "request.uri",
                "request.path",
            ]),
            request: owned(&["request", "request_line"]),
            status: owned(&[
                "status",
                "status_code",
                "response_code",
                "code",
                "http.status_code",
                "http.response.status_code",
                "res.statusCode",
                "response.status",
            ]),
            time: owned(&[
                "time",
                "timestamp",
                "@timestamp",
                "ts",
                "time_iso8601",
                "time_local",
                "datetime",
                "date",
            ]),
            duration,
        }
    }
}

impl JsonFields {
    /// `--json-field NAME=KEY[:UNIT]`: KEY is tried before the guesses for NAME.
    pub fn set(&mut self, spec: &str) -> Result<(), String> {
        let (name, key) = spec
            .split_once('=')
            .ok_or_else(|| format!("`{spec}`: write NAME=KEY, e.g. path=req_uri"))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("`{spec}`: the key is empty"));
        }
        let front = |v: &mut Vec<String>, k: &str| v.insert(0, k.to_string());
        match name.trim() {
            "method" => front(&mut self.method, key),
            "path" => front(&mut self.path, key),
            "request" => front(&mut self.request, key),
            "status" => front(&mut self.status, key),
            "time" => front(&mut self.time, key),
            "duration" => {
                let (k, unit) = match key.rsplit_once(':') {
                    Some((k, u)) => (
                        k,
                        Unit::parse(u).ok_or_else(|| {
                            format!("`{spec}`: the unit `{u}` is not one of s, ms, us, ns")
                        })?,
                    ),
                    None => (key, Unit::Seconds),
                };
                self.duration.insert(0, (k.to_string(), unit));
            }
            other => {
                return Err(format!(
                    "`{other}` is not a field; use method, path, request, status, time or duration"
                ));
            }
        }
        Ok(())
    }
}

/// Why a line is not a request. The message is for the first bad line's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine(pub &'static str);

/// Read one line (without its line end) in the given format.
pub fn parse<'a>(
    line: &'a [u8],
    format: Format,
    fields: &JsonFields,
) -> Result<Request<'a>, BadLine> {
    let first = line.iter().position(|b| !b.is_ascii_whitespace());
    let json_like = first.is_some_and(|i| line[i] == b'{');
    match format {
        Format::Json => parse_json(line, fields),
        Format::Auto if json_like => parse_json(line, fields),
        Format::Auto => parse_clf(line, None),
        Format::Combined => parse_clf(line, Some(Layout::Combined)),
        Format::Common => parse_clf(line, Some(Layout::Common)),
    }
}

/// A cursor over a web-server log line.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn at_end(&self) -> bool {
        self.i >= self.b.len()
    }
    /// A field up to the next space.
    fn word(&mut self) -> Option<&'a [u8]> {
        self.spaces();
        let start = self.i;
        while self.i < self.b.len() && self.b[self.i] != b' ' && self.b[self.i] != b'\t' {
            self.i += 1;
        }
        (self.i > start).then(|| &self.b[start..self.i])
    }
    /// `"…"` with `\"` escapes (Apache) or `\x22` (nginx): the inside, still escaped.
    fn quoted(&mut self) -> Option<&'a [u8]> {
        self.spaces();
        if self.peek() != Some(b'"') {
            return None;
        }
        self.i += 1;
        let start = self.i;
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'\\' => self.i += 2,
                b'"' => {
                    let inside = &self.b[start..self.i];
                    self.i += 1;
                    return Some(inside);
                }
                _ => self.i += 1,
            }
        }
        None
    }
    /// `[…]`: the inside.
    fn bracketed(&mut self) -> Option<&'a [u8]> {
        self.spaces();
        if self.peek() != Some(b'[') {
            return None;
        }
        let start = self.i + 1;
        let len = self.b[start..].iter().position(|&c| c == b']')?;
        self.i = start + len + 1;
        Some(&self.b[start..start + len])
    }
}

fn parse_clf(line: &[u8], want: Option<Layout>) -> Result<Request<'_>, BadLine> {
    let mut c = Cursor { b: line, i: 0 };
    // host, ident, user: three fields, then the time in brackets.
    for _ in 0..3 {
        c.word().ok_or(BadLine("too few fields"))?;
    }
    c.spaces();
    let time_text = c
        .bracketed()
        .ok_or(BadLine("no [time] in the fourth field"))?;
    let time = clf_time(time_text);
    let request = c.quoted().ok_or(BadLine("no quoted \"request\" field"))?;
    let (method, path) = request_line(request).ok_or(BadLine("the request is not METHOD PATH"))?;
    let status = c
        .word()
        .and_then(status_code)
        .ok_or(BadLine("no status code after the request"))?;
    let bytes = c.word().ok_or(BadLine("no size field after the status"))?;
    if !(bytes == b"-" || bytes.iter().all(u8::is_ascii_digit)) {
        return Err(BadLine("the size field is not a number or -"));
    }
    // Combined adds two quoted fields: referer and user agent.
    let save = c.i;
    let layout = match (c.quoted(), c.quoted()) {
        (Some(_), Some(_)) => Layout::Combined,
        _ => {
            c.i = save;
            Layout::Common
        }
    };
    if want == Some(Layout::Combined) && layout != Layout::Combined {
        return Err(BadLine(
            "no \"referer\" \"user-agent\" fields (combined format)",
        ));
    }
    let duration_us = trailing_duration(&mut c);
    Ok(Request {
        layout,
        method: std::borrow::Cow::Borrowed(method),
        path: std::borrow::Cow::Borrowed(path),
        status,
        time,
        duration_us,
    })
}

/// The request duration among the next few fields, if one is there (see the module comment).
fn trailing_duration(c: &mut Cursor<'_>) -> Option<u64> {
    for _ in 0..4 {
        c.spaces();
        if c.at_end() {
            return None;
        }
        let field = if c.peek() == Some(b'"') {
            c.quoted()?
        } else {
            c.word()?
        };
        let field = std::str::from_utf8(field).ok()?;
        let value = ["rt=", "request_time=", "rt:", "request_time:"]
            .iter()
            .find_map(|p| field.strip_prefix(p))
            .unwrap_or(field);
        if let Some(us) = number_duration(value) {
            return Some(us);
        }
    }
    None
}

/// `0.123` → seconds; `123456` → microseconds; anything else is not a duration.
fn number_duration(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    if s.contains('.') {
        let secs: f64 = s.parse().ok()?;
        Some((secs * 1e6).round() as u64)
    } else {
        s.parse().ok()
    }
}

fn status_code(w: &[u8]) -> Option<u16> {
    if w.len() != 3 || !w.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let s = std::str::from_utf8(w).ok()?.parse().ok()?;
    (100..600).contains(&s).then_some(s)
}

/// `GET /a/b?c HTTP/1.1` → ("GET", "/a/b"). An absolute URI (a proxy's log) loses its scheme
/// and host; a request that is not a method and a path is refused.
fn request_line(r: &[u8]) -> Option<(&str, &str)> {
    let r = std::str::from_utf8(r).ok()?;
    let mut parts = r.split(' ').filter(|p| !p.is_empty());
    let method = parts.next()?;
    let target = parts.next()?;
    is_method(method).then_some(())?;
    Some((method, path_of(target)?))
}

fn is_method(m: &str) -> bool {
    !m.is_empty() && m.len() <= 16 && m.bytes().all(|b| b.is_ascii_uppercase() || b == b'-')
}

/// The path of a request target: query string and fragment cut off, `http://host` dropped.
pub fn path_of(target: &str) -> Option<&str> {
    let target = match target.find("://") {
        Some(i) if target[..i].bytes().all(|b| b.is_ascii_alphabetic()) => {
            let rest = &target[i + 3..];
            match rest.find('/') {
                Some(j) => &rest[j..],
                None => "/",
            }
        }
        _ => target,
    };
    if !target.starts_with('/') {
        return None;
    }
    let end = target.find(['?', '#']).unwrap_or(target.len());
    Some(&target[..end])
}

fn parse_json<'a>(line: &'a [u8], f: &JsonFields) -> Result<Request<'a>, BadLine> {
    let v: serde_json::Value =
        serde_json::from_slice(line).map_err(|_| BadLine("not a JSON object"))?;
    if !v.is_object() {
        return Err(BadLine("not a JSON object"));
    }
    let get = |keys: &[String]| keys.iter().find_map(|k| lookup(&v, k));
    let (method, path) = match (get(&f.method), get(&f.path)) {
        (Some(m), Some(p)) => (
            m.as_str()
                .ok_or(BadLine("the method is not a string"))?
                .to_string(),
            p.as_str()
                .ok_or(BadLine("the path is not a string"))?
                .to_string(),
        ),
        _ => {
            let r = get(&f.request)
                .and_then(|r| r.as_str())
                .ok_or(BadLine("no method and path (or request) field"))?;
            let (m, p) =
                request_line(r.as_bytes()).ok_or(BadLine("the request is not METHOD PATH"))?;
            (m.to_string(), p.to_string())
        }
    };
    let method = method.to_ascii_uppercase();
    if !is_method(&method) {
        return Err(BadLine("the method is not an HTTP method"));
    }
    let path = path_of(&path)
        .ok_or(BadLine("the path does not start with /"))?
        .to_string();
    let status = match get(&f.status) {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .and_then(|s| u16::try_from(s).ok())
    .filter(|s| (100..600).contains(s))
    .ok_or(BadLine("no status code field"))?;
    let time = get(&f.time).and_then(json_time);
    let duration_us = f
        .duration
        .iter()
        .find_map(|(k, unit)| lookup(&v, k).map(|x| (x, *unit)))
        .and_then(|(x, unit)| json_duration(x, unit));
    Ok(Request {
        layout: Layout::Json,
        method: std::borrow::Cow::Owned(method),
        path: std::borrow::Cow::Owned(path),
        status,
        time,
        duration_us,
    })
}

/// `a.b.c` in nested objects, or a key that itself holds dots (`"http.method": …`).
fn lookup<'v>(v: &'v serde_json::Value, key: &str) -> Option<&'v serde_json::Value> {
    if let Some(x) = v.get(key) {
        return (!x.is_null()).then_some(x);
    }
    let (head, rest) = key.split_once('.')?;
    lookup(v.get(head)?, rest)
}

fn json_duration(v: &serde_json::Value, unit: Unit) -> Option<u64> {
    let us = match v {
        serde_json::Value::Number(n) => unit.to_us(n.as_f64()?),
        serde_json::Value::String(s) => {
            let s = s.trim();
            // Go's and others' `12.3ms`, `1.5s`, `830µs`; a bare number in the field's unit.
            let split = s
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(s.len());
            let x: f64 = s[..split].parse().ok()?;
            match &s[split..] {
                "" => unit.to_us(x),
                u => Unit::parse(u)?.to_us(x),
            }
        }
        _ => return None,
    };
    (us.is_finite() && us >= 0.0).then(|| us.round() as u64)
}

fn json_time(v: &serde_json::Value) -> Option<i64> {
    match v {
        // Epoch seconds, or milliseconds when too large to be seconds (after year 5000).
        serde_json::Value::Number(n) => {
            let x = n.as_f64()?;
            Some(if x > 1e11 { x / 1e3 } else { x } as i64)
        }
        serde_json::Value::String(s) => iso_time(s).or_else(|| clf_time(s.as_bytes())),
        _ => None,
    }
}

/// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u32, |a, &b| {
        a.checked_mul(10)?.checked_add((b - b'0') as u32)
    })
}

fn epoch(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32, offset_s: i64) -> Option<i64> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + (h * 3600 + mi * 60 + s) as i64 - offset_s)
}

/// `10/Oct/2000:13:55:36 -0700` → Unix seconds.
fn clf_time(t: &[u8]) -> Option<i64> {
    if t.len() < 20 || t[2] != b'/' || t[6] != b'/' || t[11] != b':' {
        return None;
    }
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let mo = MONTHS.iter().position(|m| *m == &t[3..6])? as u32 + 1;
    let d = digits(&t[0..2])?;
    let y = digits(&t[7..11])? as i64;
    let h = digits(&t[12..14])?;
    let mi = digits(&t[15..17])?;
    let s = digits(&t[18..20])?;
    let offset = match t.get(20..) {
        Some(rest) if rest.len() >= 6 && rest[0] == b' ' => offset_secs(&rest[1..6])?,
        _ => 0,
    };
    epoch(y, mo, d, h, mi, s, offset)
}

/// `+0200`, `-07:00` → seconds east of UTC.
fn offset_secs(o: &[u8]) -> Option<i64> {
    let sign = match o.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest: Vec<u8> = o[1..].iter().copied().filter(|&b| b != b':').collect();
    if rest.len() != 4 {
        return None;
    }
    Some(sign * (digits(&rest[0..2])? as i64 * 3600 + digits(&rest[2..4])? as i64 * 60))
}

/// RFC 3339 / ISO 8601: `2026-12-02T15:58:31.123Z`, `2026-12-02 15:58:31+01:00`.
fn iso_time(s: &str) -> Option<i64> {
    let t = s.trim().as_bytes();
    if t.len() < 19 || t[4] != b'-' || t[7] != b'-' || !matches!(t[10], b'T' | b' ' | b't') {
        return None;
    }
    let num = |r: Range<usize>| digits(&t[r]);
    let (y, mo, d) = (num(0..4)? as i64, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &t[19..];
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        rest = &rest[1 + n..];
    }
    let offset = match rest {
        [] | [b'Z'] | [b'z'] => 0,
        o => offset_secs(o)?,
    };
    epoch(y, mo, d, h, mi, sec, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clf(line: &str) -> Request<'_> {
        parse(line.as_bytes(), Format::Auto, &JsonFields::default()).unwrap()
    }

    #[test]
    fn combined_with_nginx_request_time() {
        let r = clf(
            r#"203.0.113.9 - - [02/Dec/2026:15:04:05 +0000] "GET /api/v1/products/42?token=eyJx HTTP/1.1" 200 512 "-" "curl/8" 0.043"#,
        );
        assert_eq!(r.layout, Layout::Combined);
        assert_eq!(
            (&*r.method, &*r.path, r.status),
            ("GET", "/api/v1/products/42", 200)
        );
        assert_eq!(r.duration_us, Some(43_000));
        assert_eq!(
            r.time,
            Some(days_from_civil(2026, 12, 2) * 86_400 + 15 * 3600 + 4 * 60 + 5)
        );
    }

    #[test]
    fn nginx_main_format_skips_x_forwarded_for_before_the_time() {
        let r = clf(
            r#"10.0.0.1 - bob [02/Dec/2026:15:04:05 +0100] "POST /orders HTTP/2.0" 201 12 "https://x/" "Mozilla/5.0 (X11; \"quoted\")" "198.51.100.7" rt=0.250"#,
        );
        assert_eq!(r.layout, Layout::Combined);
        assert_eq!(r.duration_us, Some(250_000));
        let utc = clf(r#"10.0.0.1 - bob [02/Dec/2026:14:04:05 +0000] "GET / HTTP/1.1" 200 1"#);
        assert_eq!(r.time, utc.time, "the offset is applied");
    }

    #[test]
    fn common_with_apache_microseconds() {
        let r = clf(r#"::1 - - [02/Dec/2026:15:04:05 -0700] "GET /a HTTP/1.0" 404 - 1534"#);
        assert_eq!(r.layout, Layout::Common);
        assert_eq!((r.status, r.duration_us), (404, Some(1534)));
        let plain = clf(r#"::1 - - [02/Dec/2026:15:04:05 -0700] "GET /a HTTP/1.0" 404 -"#);
        assert_eq!(plain.duration_us, None);
    }

    #[test]
    fn forced_combined_refuses_common_lines() {
        let line = br#"::1 - - [02/Dec/2026:15:04:05 -0700] "GET /a HTTP/1.0" 200 5"#;
        assert!(parse(line, Format::Combined, &JsonFields::default()).is_err());
        assert!(parse(line, Format::Common, &JsonFields::default()).is_ok());
    }

    #[test]
    fn not_access_log_lines_are_refused_not_panicked_on() {
        for line in [
            "",
            "hello world",
            "- - - [x] \"\" 200 1",
            r#"1 - - [02/Dec/2026:15:04:05 +0000] "\x16\x03\x01" 400 0 "-" "-""#,
            r#"1 - - [02/Dec/2026:15:04:05 +0000] "GET /a HTTP/1.1" 2000 0"#,
            r#"1 - - [02/Dec/2026:15:04:05 +0000] "GET /a HTTP/1.1 200 0"#,
            "{\"method\": 3}",
            "{not json",
            "[1,2]",
            "1 - - [",
        ] {
            assert!(
                parse(line.as_bytes(), Format::Auto, &JsonFields::default()).is_err(),
                "{line}"
            );
        }
        assert!(parse(&[0xff, 0xfe, b' '], Format::Auto, &JsonFields::default()).is_err());
    }

    #[test]
    fn json_lines_with_guessed_and_configured_fields() {
        let f = JsonFields::default();
        let r = parse(
            br#"{"time":"2026-12-02T15:04:05.5Z","method":"get","uri":"/x/1?q=2","status":"200","duration_ms":12.5}"#,
            Format::Auto,
            &f,
        )
        .unwrap();
        assert_eq!((&*r.method, &*r.path, r.status), ("GET", "/x/1", 200));
        assert_eq!(r.duration_us, Some(12_500));
        assert_eq!(
            r.time,
            clf(r#"1 - - [02/Dec/2026:15:04:05 +0000] "GET / HTTP/1.1" 200 1"#).time
        );
        let nested = parse(
            br#"{"http":{"method":"PUT","url":"https://h/a"},"request_time":"0.2","code":204}"#,
            Format::Json,
            &f,
        )
        .unwrap();
        assert_eq!(
            (&*nested.method, &*nested.path, nested.duration_us),
            ("PUT", "/a", Some(200_000))
        );
        let line = br#"{"verb2":"GET","where":"/y","st":500,"code":200,"took":"3ms","request":"GET /z HTTP/1.1"}"#;
        let guessed = parse(line, Format::Json, &f).unwrap();
        assert_eq!(
            (&*guessed.path, guessed.status),
            ("/z", 200),
            "the request line when no path field"
        );
        let mut custom = JsonFields::default();
        for s in [
            "method=verb2",
            "path=where",
            "status=st",
            "duration=took:ms",
        ] {
            custom.set(s).unwrap();
        }
        let r = parse(line, Format::Json, &custom).unwrap();
        assert_eq!((&*r.path, r.status, r.duration_us), ("/y", 500, Some(3000)));
        assert!(custom.set("colour=x").is_err());
        assert!(custom.set("duration=x:hours").is_err());
    }

    #[test]
    fn times_in_json() {
        let t = |s: &str| json_time(&serde_json::from_str(s).unwrap());
        assert_eq!(t("1764687845"), Some(1_764_687_845));
        assert_eq!(t("1764687845123"), Some(1_764_687_845));
        assert_eq!(
            t("\"2025-12-02T15:04:05+01:00\""),
            t("\"2025-12-02 14:04:05Z\"")
        );
        assert_eq!(
            t("\"02/Dec/2025:15:04:05 +0000\""),
            t("\"2025-12-02T15:04:05Z\"")
        );
        assert_eq!(t("\"yesterday\""), None);
    }
}
