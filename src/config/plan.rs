//! The validated, executable form of a suite: what the engine runs. Built only by `config`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use super::feeder::{Exhausted, Feeder, Order};

use super::template::{JsonTemplate, Template};
use super::threshold::Threshold;
use crate::provider::{Provider, Usage};

#[derive(Clone, Debug)]
pub struct Plan {
    /// Where the suite came from, as given (`scenarios/`, or `<embedded demo suite>`).
    pub suite: String,
    pub target: Target,
    pub scenarios: Vec<ScenarioPlan>,
    /// Which branch's runs are the baseline, and how many of them.
    pub baseline: BaselinePolicy,
    /// How https targets are trusted (`tls:` in suite.yml, `--cacert`, `--insecure`).
    pub tls: TlsPlan,
    /// Host names pinned to addresses (`resolve:` in suite.yml, `--resolve`), curl's model.
    pub resolve: Vec<ResolveRule>,
    /// `http://` targets speak HTTP/2 from the first byte (h2c with prior knowledge), not
    /// HTTP/1.1. https targets negotiate by ALPN either way.
    pub http2_prior_knowledge: bool,
    /// HTTP/1.1 only, even where the server offers HTTP/2 (curl's `--http1.1`).
    pub http1_only: bool,
}

/// TLS settings of a run. Paths are resolved (relative to suite.yml, or to the working
/// directory for flags) and known to exist; their contents are read by the engine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsPlan {
    /// Extra trusted roots (PEM), added to the system's and the bundled web roots.
    pub ca: Option<PathBuf>,
    /// A client certificate chain and its private key (PEM), for mTLS gateways.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Accept any certificate. Marked in the output and in every endpoint of the record.
    pub insecure: bool,
}

/// `HOST:PORT:ADDR`: connections to HOST:PORT go to ADDR; the URL, `Host` and SNI keep HOST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolveRule {
    pub host: String,
    pub port: u16,
    pub addr: std::net::IpAddr,
}

impl ResolveRule {
    /// Parses curl's `HOST:PORT:ADDR` (an IPv6 ADDR may be bracketed).
    pub fn parse(text: &str) -> Result<ResolveRule, String> {
        let bad = || format!("`{text}` is not HOST:PORT:ADDR (e.g. api.example.com:443:127.0.0.1)");
        let mut parts = text.trim().splitn(3, ':');
        let host = parts.next().filter(|h| !h.is_empty()).ok_or_else(bad)?;
        let port = parts
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p > 0)
            .ok_or_else(bad)?;
        let addr = parts
            .next()
            .map(|a| a.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|a| a.parse().ok())
            .ok_or_else(bad)?;
        Ok(ResolveRule {
            host: host.to_ascii_lowercase(),
            port,
            addr,
        })
    }
}

/// Which branch's runs are the baseline, and how many: the suite's `baseline:` setting, which
/// the history applies when it selects runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaselinePolicy {
    pub branch: String,
    /// K: how many runs make a baseline.
    pub runs: usize,
}

impl Default for BaselinePolicy {
    fn default() -> Self {
        BaselinePolicy {
            branch: "main".into(),
            runs: 5,
        }
    }
}

impl Plan {
    /// The SLO thresholds of the scenario named `name` (none for an unknown name).
    pub fn thresholds_for(&self, name: &str) -> Vec<Threshold> {
        self.scenarios
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.thresholds.clone())
            .unwrap_or_default()
    }
}

/// An HTTP origin plus an optional base path (`http://127.0.0.1:8080/staging`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `https://`: TLS (rustls), HTTP/2 where the server offers it by ALPN.
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Without a trailing slash; empty for the root.
    pub base_path: String,
}

impl Target {
    /// `http://host:port/base`, the form shown to users and stored in records.
    pub fn url(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{host}:{}{}", self.port, self.base_path)
    }

    /// The scheme's port: 443 for https, 80 for http.
    pub fn default_port(&self) -> u16 {
        if self.tls { 443 } else { 80 }
    }

    /// The `Host` header value.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

#[derive(Clone, Debug)]
pub struct ScenarioPlan {
    pub name: String,
    pub file: PathBuf,
    /// Hash of the measurement-relevant definition (request, expect, load), so runs are only
    /// compared with runs of the same scenario definition. Thresholds are not part of it.
    pub hash: String,
    pub target: Target,
    pub request: RequestPlan,
    pub expect: Expect,
    pub load: Load,
    pub thresholds: Vec<Threshold>,
    /// Smallest relative p95 change that counts as a regression or an improvement (0.05 = 5%).
    pub tolerance: f64,
    /// Set on the steps a ramp scenario expands into.
    pub ramp: Option<RampStep>,
    /// Set on `llm:` scenarios: the provider, model(s) and bodies the engine streams.
    pub llm: Option<LlmPlan>,
    /// Set on flows (`steps:`), and on `request:` scenarios that need what flows have (a data
    /// file, checks on the body): the steps each virtual user walks.
    pub flow: Option<Arc<FlowPlan>>,
    /// A member of a traffic mix (`group:` + `weight:`): its rate is its share of the group's,
    /// and the engine runs the group's members at the same time.
    pub group: Option<MixMember>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MixMember {
    pub group: String,
    pub weight: f64,
    /// The group's whole arrival rate, per second.
    pub group_rate: f64,
}

/// A flow: steps walked in order by each virtual user (closed model) or each arrival (open
/// model), with values captured from responses and used by later steps.
#[derive(Clone, Debug)]
pub struct FlowPlan {
    /// The measured walk.
    pub steps: Vec<StepPlan>,
    /// Run once before the load, not measured; their captures are every user's starting values.
    pub setup: Vec<StepPlan>,
    /// Run once by each virtual user before its first walk, not measured.
    pub user_setup: Vec<StepPlan>,
    /// Run once after the load, not measured.
    pub teardown: Vec<StepPlan>,
    /// Slot names of captured values (setup's first, then user_setup's, then the steps').
    pub vars: Vec<String>,
    pub feeder: Option<Arc<Feeder>>,
    /// A `request:` scenario run as a one-step flow: one endpoint named as the scenario, no
    /// separate flow row.
    pub single: bool,
}

#[derive(Clone, Debug)]
pub struct StepPlan {
    pub name: String,
    pub request: RequestPlan,
    pub expect: Expect,
    pub checks: Vec<Check>,
    pub captures: Vec<Capture>,
    /// The body is kept (a capture or check reads it); otherwise it is only counted.
    pub needs_body: bool,
    /// The definition's hash, so each step's history is compared only with the same step.
    pub hash: String,
}

#[derive(Clone, Debug)]
pub struct Capture {
    pub name: String,
    /// Where the value goes (`FlowPlan::vars`).
    pub slot: usize,
    pub source: CaptureSource,
}

#[derive(Clone, Debug)]
pub enum CaptureSource {
    /// The first node a JSONPath selects: a string as is, anything else as its JSON text.
    Json(serde_json_path::JsonPath),
    Header(http::HeaderName),
    /// The first capture group of the first match in the body.
    Regex(regex::Regex),
    /// A cookie the response sets (`Set-Cookie`), or one already in the user's jar.
    Cookie(String),
}

#[derive(Clone, Debug)]
pub struct Check {
    /// As written (`$.items length >= 3`), the name errors are counted under.
    pub name: String,
    pub kind: CheckKind,
}

#[derive(Clone, Debug)]
pub enum CheckKind {
    Json(serde_json_path::JsonPath, Condition),
    BodyContains(String),
    /// The header is present and its value contains the text (case-insensitive).
    Header(http::HeaderName, String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    Exists,
    Absent,
    /// The length of an array, a string or an object.
    Length(CmpOp, f64),
    /// A comparison with a JSON literal: numbers compare as numbers, others for equality.
    Compare(CmpOp, serde_json::Value),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => ord == Equal,
            CmpOp::Ne => ord != Equal,
            CmpOp::Lt => ord == Less,
            CmpOp::Le => ord != Greater,
            CmpOp::Gt => ord == Greater,
            CmpOp::Ge => ord != Less,
        }
    }
}

/// One step of a ramp scenario: the scenario it belongs to and its concurrency. The engine
/// copies it into the run record (`record::RampStepInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RampStep {
    /// The scenario's name; each step's endpoint is named `<group>@<users>`.
    pub group: String,
    pub users: u32,
}

/// USD per million tokens of each kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
}

impl Price {
    /// Dollars for one request's tokens (`input` excludes cache reads and writes).
    pub fn cost(&self, usage: &Usage) -> f64 {
        (usage.input as f64 * self.input
            + usage.output as f64 * self.output
            + usage.cache_read as f64 * self.cache_read
            + usage.cache_write as f64 * self.cache_write)
            / 1e6
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LlmTimeouts {
    /// TCP connect.
    pub connect: Duration,
    /// From the request's start to the first content-bearing delta.
    pub first_token: Duration,
    /// Longest silence between two content-bearing deltas (pings do not count).
    pub between_tokens: Duration,
}

#[derive(Clone, Debug)]
pub struct LlmPlan {
    pub provider: Provider,
    /// The models tried for each request, in order: one model, or a fallback chain.
    pub models: Vec<String>,
    /// A fallback chain: on 429, 529 or a timeout the request moves to the next model.
    pub fallback: bool,
    /// Request bodies rendered once, `[model][prompt]`; each request picks a prompt at random.
    pub bodies: Vec<Vec<bytes::Bytes>>,
    /// The provider's headers (auth, version). Values from `${ENV}` are marked sensitive and
    /// never leave the engine.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub stream: bool,
    pub max_tokens: u32,
    pub timeouts: LlmTimeouts,
    /// Per model, in the order of `models`; None when the price table has no entry for it.
    pub prices: Vec<Option<Price>>,
    /// For the projected monthly cost: requests a day in production.
    pub daily_requests: Option<u64>,
    /// Per model, in the order of `models`: where a fallback chain sends that model when it is
    /// another provider's (`llm.providers`); None for the scenario's own target, provider and
    /// headers.
    pub hops: Vec<Option<LlmHop>>,
}

/// Another provider in a fallback chain: its own target, API, path and headers (its key).
#[derive(Clone, Debug)]
pub struct LlmHop {
    pub provider: Provider,
    pub target: Target,
    /// The request path: the base_url's path and the API's.
    pub path: http::Uri,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl ScenarioPlan {
    /// A ramp scenario becomes one closed-model scenario per step, named `<name>@<users>`, each
    /// its own endpoint in the results. SLO thresholds do not apply to ramp steps: a ramp is
    /// meant to go past the knee.
    pub(crate) fn expand(self, steps: Option<Vec<u32>>) -> Vec<ScenarioPlan> {
        let Some(steps) = steps else {
            return vec![self];
        };
        steps
            .into_iter()
            .map(|users| {
                let mut step = self.clone();
                step.name = format!("{}@{users}", self.name);
                step.hash = format!(
                    "{:016x}",
                    crate::hash::fnv1a(format!("{}@{users}", self.hash).as_bytes())
                );
                step.load.model = LoadModel::Closed { users };
                step.thresholds.clear();
                step.ramp = Some(RampStep {
                    group: self.name.clone(),
                    users,
                });
                step
            })
            .collect()
    }
}

#[derive(Clone, Debug)]
pub struct RequestPlan {
    pub method: http::Method,
    /// The URL as written in the scenario (templates and `${ENV}` unexpanded): safe to show/store.
    pub url_text: String,
    /// Path and query, base path included, with generators.
    pub path: Template,
    pub headers: Vec<HeaderPlan>,
    pub body: Option<Body>,
    pub timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct HeaderPlan {
    pub name: http::header::HeaderName,
    pub value: Template,
    /// The value came from the environment: it may reach the wire, never a record or a log.
    pub secret: bool,
}

#[derive(Clone, Debug)]
pub enum Body {
    Json(JsonTemplate),
    Text(Template),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expect {
    /// Accepted status codes; empty means any 2xx or 3xx.
    pub statuses: Vec<u16>,
}

impl Expect {
    pub fn accepts(&self, status: u16) -> bool {
        if self.statuses.is_empty() {
            (200..400).contains(&status)
        } else {
            self.statuses.contains(&status)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LoadModel {
    /// N users, each sending its next request when the previous one completes.
    Closed { users: u32 },
    /// Arrivals at a fixed rate (per second), independent of the target's speed; at most
    /// `max_in_flight` requests outstanding.
    Open { rate: f64, max_in_flight: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Load {
    pub model: LoadModel,
    /// Measured time, after the warmup.
    pub duration: Duration,
    /// Requests sent but not recorded, to fill connection pools and caches.
    pub warmup: Duration,
    /// Stop after this many measured requests, even if time remains.
    pub max_requests: Option<u64>,
    /// Open a new connection for every request (cold connections: DNS, connect, handshake).
    pub new_connection_per_request: bool,
    /// HTTP/2: the connections the users' streams share (None: one connection per user).
    pub connections: Option<u32>,
}

impl Load {
    /// The part of a load that shapes the measurement, for scenario hashes (not its duration:
    /// a longer run of the same definition is comparable). Connection settings count only
    /// where they differ from the default, so the hashes of scenarios that do not set them
    /// (every history made before they existed) stay the same.
    pub fn identity(&self) -> serde_json::Value {
        let mut id = match self.model {
            LoadModel::Closed { users } => serde_json::json!({ "users": users }),
            LoadModel::Open {
                rate,
                max_in_flight,
            } => serde_json::json!({ "rate": rate, "max_in_flight": max_in_flight }),
        };
        if let Some(c) = self.connections {
            id["connections"] = c.into();
        }
        if self.new_connection_per_request {
            id["new_connection_per_request"] = true.into();
        }
        id
    }
}
