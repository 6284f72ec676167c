//! The fields HTTP and LLM scenarios share, parsed with their location: the target URL,
//! `load:` (users or rate, ramp steps, duration, warmup, request budget), thresholds, tolerance
//! and durations; and the command-line settings that override them.

use std::path::Path;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::error::ConfigError;
use super::model::LoadSpec;
use super::plan::{Load, LoadModel, Target};
use super::threshold::{self, Threshold, parse_threshold};

const DEFAULT_USERS: u32 = 10;
const DEFAULT_DURATION: Duration = Duration::from_secs(10);
const DEFAULT_WARMUP: Duration = Duration::from_secs(1);
pub(super) const DEFAULT_MAX_IN_FLIGHT: u32 = 256;

/// Settings from the command line that override the suite.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub target: Option<String>,
    pub duration: Option<Duration>,
    pub warmup: Option<Duration>,
    /// Run only these scenarios (by name).
    pub only: Vec<String>,
    /// `--cacert FILE`: extra trusted roots, as `tls: { ca: FILE }`.
    pub cacert: Option<std::path::PathBuf>,
    /// `--insecure`: accept any certificate.
    pub insecure: bool,
    /// `--resolve HOST:PORT:ADDR`, repeatable; added to (and before) `resolve:` of suite.yml.
    pub resolve: Vec<String>,
    /// `--http2-prior-knowledge`: h2c on plain http targets.
    pub http2_prior_knowledge: bool,
    /// `--http1.1`: never HTTP/2.
    pub http1_only: bool,
}

pub(super) fn parse_thresholds(
    file: &Path,
    list: Option<&[Spanned<String>]>,
) -> Result<Option<Vec<Threshold>>, ConfigError> {
    list.map(|items| {
        items
            .iter()
            .enumerate()
            .map(|(i, t)| {
                parse_threshold(&t.value).map_err(|m| {
                    ConfigError::at(file, Some(t.referenced), &format!("thresholds[{i}]"), m)
                        .with_hint(threshold::THRESHOLD_HELP)
                })
            })
            .collect()
    })
    .transpose()
}

pub(super) fn spanned_duration(
    file: &Path,
    field: &str,
    v: &Spanned<String>,
) -> Result<Duration, ConfigError> {
    crate::units::parse_duration(&v.value)
        .map_err(|m| ConfigError::at(file, Some(v.referenced), field, m))
}

/// Accepts `http[s]://host[:port][/base]`.
pub fn parse_target(text: &str) -> Result<Target, String> {
    let uri: http::Uri = text
        .trim()
        .parse()
        .map_err(|e| format!("`{text}` is not a URL ({e}); write e.g. http://127.0.0.1:8080"))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        Some(other) => return Err(format!("`{text}`: scheme `{other}` is not http or https")),
        None => {
            return Err(format!(
                "`{text}` is not an absolute URL; write e.g. http://127.0.0.1:8080"
            ));
        }
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("`{text}` has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if uri.query().is_some() {
        return Err(format!("`{text}`: a target cannot carry a query string"));
    }
    Ok(Target {
        tls,
        host,
        port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
        base_path: uri.path().trim_end_matches('/').to_string(),
    })
}

pub(super) fn spanned_tolerance(file: &Path, t: &Spanned<String>) -> Result<f64, ConfigError> {
    parse_tolerance(&t.value).map_err(|m| ConfigError::at(file, Some(t.referenced), "tolerance", m))
}

/// `5%` or `0.05`: the smallest relative change of p95 that the comparison may call a regression.
pub fn parse_tolerance(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (num, scale) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), 0.01),
        None => (t, 1.0),
    };
    let v = num
        .parse::<f64>()
        .map_err(|_| format!("`{text}` is not a tolerance; write e.g. 5%"))?
        * scale;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("tolerance `{text}` must be between 0% and 100%"))
    }
}

/// Ramp steps are limited so a mistyped list cannot run for hours.
const MAX_RAMP_STEPS: usize = 20;

/// `users:` (or `concurrency:`) as a number, or as a list of ramp steps.
fn users(
    file: &Path,
    field: &str,
    u: &Spanned<serde_json::Value>,
) -> Result<(u32, Option<Vec<u32>>), ConfigError> {
    let err = |m: &str| ConfigError::at(file, Some(u.referenced), field, m);
    let one = |v: &serde_json::Value| {
        v.as_u64()
            .filter(|n| (1..=10_000).contains(n))
            .map(|n| n as u32)
            .ok_or_else(|| {
                err("must be 1 to 10000 users, or a list of such steps like [1, 5, 10, 25]")
            })
    };
    match &u.value {
        serde_json::Value::Array(items) => {
            if items.is_empty() || items.len() > MAX_RAMP_STEPS {
                return Err(err(&format!("a ramp takes 1 to {MAX_RAMP_STEPS} steps")));
            }
            let steps = items.iter().map(one).collect::<Result<Vec<_>, _>>()?;
            if steps.windows(2).any(|w| w[0] >= w[1]) {
                return Err(err("ramp steps must rise: [1, 5, 10, 25]"));
            }
            Ok((steps[0], Some(steps)))
        }
        v => Ok((one(v)?, None)),
    }
}

pub(super) fn load(
    file: &Path,
    spec: &LoadSpec,
    overrides: &Overrides,
) -> Result<(Load, Option<Vec<u32>>), ConfigError> {
    let mut steps = None;
    let (users_field, users_spec) = match (&spec.users, &spec.concurrency) {
        (Some(_), Some(c)) => {
            return Err(ConfigError::at(
                file,
                Some(c.referenced),
                "load.concurrency",
                "`concurrency:` is another name for `users:`; give one of them",
            ));
        }
        (None, Some(c)) => ("load.concurrency", Some(c)),
        (u, None) => ("load.users", u.as_ref()),
    };
    let model = match (users_spec, &spec.rate) {
        (Some(u), Some(r)) => {
            let _ = u;
            return Err(ConfigError::at(
                file,
                Some(r.referenced),
                "load.rate",
                "use either `users:` (closed model) or `rate:` (open model), not both",
            ));
        }
        (Some(u), None) => {
            let (first, ramp) = users(file, users_field, u)?;
            steps = ramp;
            LoadModel::Closed { users: first }
        }
        (None, Some(r)) => {
            let rate = parse_rate(&r.value)
                .map_err(|m| ConfigError::at(file, Some(r.referenced), "load.rate", m))?;
            let max_in_flight = match &spec.max_in_flight {
                Some(m) if m.value == 0 || m.value > 10_000 => {
                    return Err(ConfigError::at(
                        file,
                        Some(m.referenced),
                        "load.max_in_flight",
                        "must be 1 to 10000",
                    ));
                }
                Some(m) => m.value,
                None => DEFAULT_MAX_IN_FLIGHT,
            };
            LoadModel::Open {
                rate,
                max_in_flight,
            }
        }
        (None, None) => LoadModel::Closed {
            users: DEFAULT_USERS,
        },
    };
    if let (Some(st), None) = (&spec.step, &steps) {
        return Err(ConfigError::at(
            file,
            Some(st.referenced),
            "load.step",
            "`step:` needs ramp steps: `users: [1, 5, 10]` (or `concurrency: [1, 5, 10]`)",
        ));
    }
    let duration = match (overrides.duration, &spec.step, &spec.duration) {
        (Some(d), _, _) => d,
        (None, Some(st), _) if steps.is_some() => spanned_duration(file, "load.step", st)?,
        (None, _, Some(d)) => spanned_duration(file, "load.duration", d)?,
        (None, _, None) => DEFAULT_DURATION,
    };
    if duration.is_zero() {
        let loc = spec.duration.as_ref().map(|d| d.referenced);
        return Err(ConfigError::at(
            file,
            loc,
            "load.duration",
            "must be above zero",
        ));
    }
    let warmup = match (overrides.warmup, &spec.warmup) {
        (Some(w), _) => w,
        (None, Some(w)) => spanned_duration(file, "load.warmup", w)?,
        (None, None) => DEFAULT_WARMUP,
    };
    let max_requests = match &spec.requests {
        Some(r) if r.value == 0 => {
            return Err(ConfigError::at(
                file,
                Some(r.referenced),
                "load.requests",
                "must be above zero",
            ));
        }
        r => r.as_ref().map(|r| r.value),
    };
    let connections = match &spec.connections {
        Some(c) if c.value == 0 => {
            return Err(ConfigError::at(
                file,
                Some(c.referenced),
                "load.connections",
                "must be above zero",
            ));
        }
        c => c.as_ref().map(|c| c.value),
    };
    Ok((
        Load {
            model,
            duration,
            warmup,
            max_requests,
            new_connection_per_request: spec.new_connection_per_request.unwrap_or(false),
            connections,
        },
        steps,
    ))
}

/// `200/s`, `12000/m`, `5/ms` is refused as silly; a bare number means per second.
fn parse_rate(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (num, per_second) = if let Some(n) = t.strip_suffix("/s") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix("/m") {
        (n, 1.0 / 60.0)
    } else if let Some(n) = t.strip_suffix("/h") {
        (n, 1.0 / 3600.0)
    } else {
        (t, 1.0)
    };
    let x: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a rate; write e.g. 200/s or 600/m"))?;
    let rate = x * per_second;
    if !(rate.is_finite() && rate > 0.0 && rate <= 1_000_000.0) {
        return Err(format!(
            "`{text}`: the rate must be above 0 and at most 1000000/s"
        ));
    }
    Ok(rate)
}
