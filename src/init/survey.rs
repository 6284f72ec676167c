//! One pass over an access log, line by line in one reused buffer: per route (method +
//! template) a count, the share that succeeded, a small latency histogram and a reservoir of
//! the parameter values seen. Memory grows with the number of distinct routes (capped), never
//! with the number of lines.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead};

use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::line::{self, Format, JsonFields, Layout};
use super::route::{self, Kind, Param};

/// Longest line read; a longer one is counted as a bad line and skipped to its end.
pub const MAX_LINE: usize = 64 * 1024;
/// Latency histogram range: 1 µs to one hour, two significant digits (1%).
const MAX_LATENCY_US: u64 = 3_600_000_000;
/// Durations a route keeps exactly before it gets a histogram (~13 KB): the long tail of rare
/// routes (one per blog post, say) then costs 4 bytes a request, not a histogram each.
const EXACT_DURATIONS: usize = 32;

#[derive(Debug, Clone)]
pub struct Options {
    pub format: Format,
    pub fields: JsonFields,
    /// Distinct routes tracked; requests of routes first seen past this are counted as "other".
    pub max_routes: usize,
    /// Rows of parameter values kept per route (a uniform sample of its successful requests).
    pub sample_rows: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            format: Format::Auto,
            fields: JsonFields::default(),
            max_routes: 100_000,
            sample_rows: 1000,
        }
    }
}

/// What one pass found.
#[derive(Debug)]
pub struct Survey {
    /// Lines read (empty lines not counted).
    pub lines: u64,
    /// Lines that were requests.
    pub requests: u64,
    /// Lines that were not, with the first one's number (1-based) and why.
    pub bad: u64,
    pub first_bad: Option<(u64, &'static str)>,
    /// Requests per layout read.
    pub layouts: BTreeMap<Layout, u64>,
    /// Requests of routes past `max_routes`.
    pub other: u64,
    /// Earliest and latest request times (Unix seconds), when lines had times.
    pub span: Option<(i64, i64)>,
    /// Every route, most requests first (ties by method and template).
    pub routes: Vec<RouteStats>,
}

impl Survey {
    /// Seconds the log covers (the last second counted whole), if it says.
    pub fn seconds(&self) -> Option<f64> {
        self.span.map(|(a, b)| (b - a + 1) as f64)
    }

    /// Observed requests per second of `count` requests over the log's span.
    pub fn rate(&self, count: u64) -> Option<f64> {
        self.seconds().map(|s| count as f64 / s)
    }
}

#[derive(Debug)]
pub struct RouteStats {
    pub method: String,
    pub template: String,
    pub params: Vec<Kind>,
    pub count: u64,
    /// Responses below 400.
    pub ok: u64,
    /// Request durations in µs, when lines had them.
    pub latency: Latency,
    /// Parameter values of sampled successful requests, one row per request, in `params`
    /// order; never filled for routes with a secret parameter.
    pub samples: Vec<Vec<String>>,
}

impl RouteStats {
    pub fn has_secret(&self) -> bool {
        self.params.iter().any(|k| k.is_secret())
    }

    /// A percentile of the route's request durations (µs), when the log had them.
    pub fn percentile_us(&self, q: f64) -> Option<u64> {
        self.latency.percentile_us(q)
    }
}

/// A route's request durations (µs): exact while few, then a histogram.
#[derive(Debug, Default)]
pub enum Latency {
    #[default]
    None,
    Few(Vec<u32>),
    Many(Box<Histogram<u32>>),
}

impl Latency {
    fn record(&mut self, us: u64) {
        let us = us.clamp(1, MAX_LATENCY_US);
        match self {
            Latency::None => *self = Latency::Few(vec![us as u32]),
            Latency::Few(v) if v.len() < EXACT_DURATIONS => v.push(us as u32),
            Latency::Few(v) => {
                let mut h = Box::new(
                    Histogram::new_with_bounds(1, MAX_LATENCY_US, 2)
                        .expect("constant histogram bounds are valid"),
                );
                for &x in v.iter() {
                    h.saturating_record(u64::from(x));
                }
                h.saturating_record(us);
                *self = Latency::Many(h);
            }
            Latency::Many(h) => h.saturating_record(us),
        }
    }

    /// The q-quantile (nearest rank, as the histogram's `value_at_quantile`), if any.
    pub fn percentile_us(&self, q: f64) -> Option<u64> {
        match self {
            Latency::None => None,
            Latency::Few(v) => {
                let mut v = v.clone();
                v.sort_unstable();
                let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
                Some(u64::from(v[rank - 1]))
            }
            Latency::Many(h) => Some(h.value_at_quantile(q)),
        }
    }
}

/// A route while reading.
struct Acc {
    params: Box<[Kind]>,
    count: u64,
    ok: u64,
    latency: Latency,
    /// Rows joined by `\x1f` (one allocation a row).
    rows: Vec<Box<str>>,
}

const SEP: char = '\x1f';

/// Read the log to its end. Only a failing reader is an error; bad lines are counted.
pub fn survey<R: BufRead>(mut reader: R, opts: &Options) -> io::Result<Survey> {
    let mut routes: HashMap<Box<str>, Acc> = HashMap::new();
    let mut rng = SmallRng::seed_from_u64(0x6a7e_1517);
    let mut buf = Vec::with_capacity(1024);
    let (mut key, mut tpl, mut row) = (String::new(), String::new(), String::new());
    let mut params = Vec::<Param>::new();
    let mut s = Survey {
        lines: 0,
        requests: 0,
        bad: 0,
        first_bad: None,
        layouts: BTreeMap::new(),
        other: 0,
        span: None,
        routes: Vec::new(),
    };
    let mut number = 0u64;
    while let Some(too_long) = next_line(&mut reader, &mut buf, MAX_LINE)? {
        number += 1;
        let mut line = &buf[..];
        while let [rest @ .., b'\r' | b' ' | b'\t'] = line {
            line = rest;
        }
        if line.is_empty() && !too_long {
            continue;
        }
        s.lines += 1;
        let parsed = if too_long {
            Err(line::BadLine("the line is longer than 64 KiB"))
        } else {
            line::parse(line, opts.format, &opts.fields)
        };
        let req = match parsed {
            Ok(r) => r,
            Err(e) => {
                s.bad += 1;
                s.first_bad.get_or_insert((number, e.0));
                continue;
            }
        };
        s.requests += 1;
        *s.layouts.entry(req.layout).or_default() += 1;
        if let Some(t) = req.time {
            s.span = Some(match s.span {
                Some((a, b)) => (a.min(t), b.max(t)),
                None => (t, t),
            });
        }
        key.clear();
        key.push_str(&req.method);
        key.push(' ');
        route::template(&req.path, &mut tpl, &mut params);
        key.push_str(&tpl);
        if !routes.contains_key(key.as_str()) {
            if routes.len() >= opts.max_routes {
                s.other += 1;
                continue;
            }
            routes.insert(
                key.as_str().into(),
                Acc {
                    params: params.iter().map(|p| p.kind).collect(),
                    count: 0,
                    ok: 0,
                    latency: Latency::None,
                    rows: Vec::new(),
                },
            );
        }
        let Some(acc) = routes.get_mut(key.as_str()) else {
            continue;
        };
        acc.count += 1;
        if let Some(us) = req.duration_us {
            acc.latency.record(us);
        }
        if req.status >= 400 {
            continue;
        }
        acc.ok += 1;
        if params.is_empty() || acc.params.iter().any(|k| k.is_secret()) {
            continue;
        }
        // Reservoir sampling (Algorithm R) over the route's successful requests.
        let slot = if acc.rows.len() < opts.sample_rows {
            None
        } else {
            let j = rng.random_range(0..acc.ok);
            match usize::try_from(j) {
                Ok(j) if j < opts.sample_rows => Some(j),
                _ => continue,
            }
        };
        row.clear();
        for (i, p) in params.iter().enumerate() {
            if i > 0 {
                row.push(SEP);
            }
            row.push_str(&req.path[p.range.clone()]);
        }
        let value: Box<str> = row.as_str().into();
        match slot {
            None => acc.rows.push(value),
            Some(j) => acc.rows[j] = value,
        }
    }
    let mut out: Vec<RouteStats> = routes
        .into_iter()
        .map(|(k, a)| {
            let (method, template) = k.split_once(' ').unwrap_or((&k, ""));
            RouteStats {
                method: method.to_string(),
                template: template.to_string(),
                params: a.params.into_vec(),
                count: a.count,
                ok: a.ok,
                latency: a.latency,
                samples: a
                    .rows
                    .iter()
                    .map(|r| r.split(SEP).map(str::to_string).collect())
                    .collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.template.cmp(&b.template))
            .then_with(|| a.method.cmp(&b.method))
    });
    s.routes = out;
    Ok(s)
}

/// The next line into `buf` (cleared first), without its `\n`. `None` at the end of input;
/// `Some(true)` when the line was longer than `max` (then `buf` holds only its start and the
/// rest was skipped), so one endless line cannot take the memory.
fn next_line<R: BufRead>(r: &mut R, buf: &mut Vec<u8>, max: usize) -> io::Result<Option<bool>> {
    buf.clear();
    let (mut any, mut too_long) = (false, false);
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(any.then_some(too_long));
        }
        any = true;
        let (chunk, used, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (&avail[..i], i + 1, true),
            None => (avail, avail.len(), false),
        };
        if !too_long {
            if buf.len() + chunk.len() > max {
                too_long = true;
                buf.truncate(0);
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        r.consume(used);
        if done {
            return Ok(Some(too_long));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clf(method: &str, path: &str, status: u16, secs: u32, rt: &str) -> String {
        format!(
            "127.0.0.1 - - [02/Dec/2026:10:{:02}:{:02} +0000] \"{method} {path} HTTP/1.1\" {status} 10 \"-\" \"t\" {rt}\n",
            secs / 60,
            secs % 60
        )
    }

    #[test]
    fn counts_routes_rates_latency_and_samples() {
        let mut log = String::new();
        for i in 0..300u32 {
            log.push_str(&clf(
                "GET",
                &format!("/p/{}?x=1", i % 50),
                200,
                i % 120,
                "0.010",
            ));
        }
        for i in 0..100u32 {
            log.push_str(&clf(
                "GET",
                "/list",
                if i < 10 { 500 } else { 200 },
                119,
                "0.100",
            ));
        }
        log.push_str("garbage\n\n");
        log.push_str(&clf("POST", "/p/1", 201, 0, "-"));
        let s = survey(
            log.as_bytes(),
            &Options {
                sample_rows: 20,
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!((s.lines, s.requests, s.bad), (402, 401, 1));
        assert_eq!(s.first_bad, Some((401, "too few fields")));
        assert_eq!(s.seconds(), Some(120.0));
        let names: Vec<_> = s
            .routes
            .iter()
            .map(|r| format!("{} {}", r.method, r.template))
            .collect();
        assert_eq!(names, ["GET /p/{id}", "GET /list", "POST /p/{id}"]);
        let p = &s.routes[0];
        assert_eq!((p.count, p.ok, p.samples.len()), (300, 300, 20));
        assert!(
            p.samples
                .iter()
                .all(|r| r.len() == 1 && r[0].parse::<u32>().unwrap() < 50)
        );
        let list = &s.routes[1];
        assert_eq!((list.count, list.ok), (100, 90));
        assert!(list.samples.is_empty(), "no parameters, no samples");
        let p95 = list.percentile_us(0.95).unwrap();
        assert!((99_000..=101_000).contains(&p95), "{p95}");
        assert_eq!(s.routes[2].percentile_us(0.95), None);
        assert_eq!(s.rate(120), Some(1.0));
    }

    #[test]
    fn routes_past_the_cap_are_other_and_secrets_are_not_sampled() {
        let mut log = String::new();
        for i in 0..10 {
            log.push_str(&clf("GET", &format!("/r{i}/1"), 200, 0, ""));
        }
        log.push_str(&clf("GET", "/u/ann@example.com/x", 200, 0, ""));
        let s = survey(
            log.as_bytes(),
            &Options {
                max_routes: 4,
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!((s.routes.len(), s.other), (4, 7));
        let s = survey(log.as_bytes(), &Options::default()).unwrap();
        let email = s.routes.iter().find(|r| r.has_secret()).unwrap();
        assert_eq!(email.template, "/u/{email}/x");
        assert!(email.samples.is_empty());
    }

    #[test]
    fn few_durations_are_exact_and_many_go_to_a_histogram() {
        let mut l = Latency::default();
        assert_eq!(l.percentile_us(0.95), None);
        for ms in 1..=20u64 {
            l.record(ms * 1000);
        }
        assert!(matches!(l, Latency::Few(_)));
        assert_eq!(l.percentile_us(0.95), Some(19_000));
        assert_eq!(l.percentile_us(1.0), Some(20_000));
        for ms in 21..=200u64 {
            l.record(ms * 1000);
        }
        assert!(matches!(l, Latency::Many(_)));
        let p95 = l.percentile_us(0.95).unwrap();
        assert!((189_000..=192_000).contains(&p95), "{p95}");
        l.record(u64::MAX);
        l.record(0);
    }

    #[test]
    fn an_endless_line_is_one_bad_line() {
        let mut log = vec![b'x'; MAX_LINE * 3];
        log.push(b'\n');
        log.extend_from_slice(clf("GET", "/a", 200, 0, "").as_bytes());
        let s = survey(&log[..], &Options::default()).unwrap();
        assert_eq!((s.lines, s.bad, s.requests), (2, 1, 1));
    }
}
