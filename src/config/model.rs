//! The YAML shapes, as written by users. Unknown keys are errors everywhere.
//! Values whose meaning is checked later carry their location (`Spanned`) so that the error can
//! name the line and column.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    pub name: Option<String>,
    pub target: Option<Spanned<String>>,
    #[serde(default)]
    pub defaults: DefaultsSpec,
    pub thresholds: Option<Vec<Spanned<String>>>,
    pub baseline: Option<BaselineSpec>,
    /// Smallest p95 change that counts as a regression (`5%`).
    pub tolerance: Option<Spanned<String>>,
    /// Price table for `llm:` scenarios: a file (YAML, or LiteLLM's JSON) or an inline map.
    pub prices: Option<Spanned<serde_json::Value>>,
    /// How https targets are trusted.
    pub tls: Option<TlsSpec>,
    /// `HOST:PORT:ADDR` entries (curl's `--resolve`).
    pub resolve: Option<Vec<Spanned<String>>>,
    /// Plain `http://` targets speak HTTP/2 from the first byte (h2c), as curl's flag.
    #[serde(default)]
    pub http2_prior_knowledge: bool,
}

/// `tls:` in suite.yml. Paths are relative to suite.yml.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// A PEM file of extra trusted roots (a private CA).
    pub ca: Option<Spanned<String>>,
    /// A client certificate chain (PEM), with `key:`.
    pub cert: Option<Spanned<String>>,
    /// The client certificate's private key (PEM), with `cert:`.
    pub key: Option<Spanned<String>>,
    /// Accept any certificate (loudly marked in the output and the record).
    #[serde(default)]
    pub insecure: bool,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BaselineSpec {
    pub branch: Option<Spanned<String>>,
    pub runs: Option<Spanned<usize>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DefaultsSpec {
    #[serde(default)]
    pub load: LoadSpec,
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    pub expect: Option<ExpectSpec>,
    pub timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: Spanned<String>,
    #[expect(
        dead_code,
        reason = "free text for people reading the file; accepted, not used"
    )]
    pub description: Option<String>,
    /// An HTTP request; a scenario has this, `steps:` or `llm:`.
    pub request: Option<RequestSpec>,
    /// A flow: named requests each virtual user walks in order (docs/flows.md).
    pub steps: Option<Vec<StepSpec>>,
    /// Steps run once before the load; their captures are shared with every user.
    pub setup: Option<Vec<StepSpec>>,
    /// Steps each virtual user runs once before its first walk (a per-user login).
    pub user_setup: Option<Vec<StepSpec>>,
    /// Steps run once after the load.
    pub teardown: Option<Vec<StepSpec>>,
    /// A data file whose rows the walks use as `{{ data.COLUMN }}`.
    pub data: Option<DataSpec>,
    /// Scenarios of one group share one arrival rate, split by `weight:` (a traffic mix).
    pub group: Option<Spanned<String>>,
    pub weight: Option<Spanned<f64>>,
    /// An LLM API benchmark (see `config::llm`).
    pub llm: Option<LlmSpec>,
    pub expect: Option<ExpectSpec>,
    #[serde(default)]
    pub load: LoadSpec,
    pub thresholds: Option<Vec<Spanned<String>>>,
    pub tolerance: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    pub method: Option<Spanned<String>>,
    pub url: Spanned<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    pub json: Option<Spanned<serde_json::Value>>,
    pub body: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// One status or a list; checked in `config` so the error can say what is expected.
    pub status: Option<Spanned<serde_json::Value>>,
    /// JSONPath → condition (`exists`, `absent`, `length >= 3`, `== "paid"`, `> 0`).
    pub json: Option<BTreeMap<String, Spanned<String>>>,
    /// The body must contain this text.
    pub body_contains: Option<Spanned<String>>,
    /// Header name → text its value must contain (case-insensitive).
    pub header: Option<BTreeMap<String, Spanned<String>>>,
}

/// One step of a flow (and of `setup:`, `user_setup:`, `teardown:`): a named request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    pub name: Spanned<String>,
    pub method: Option<Spanned<String>>,
    pub url: Spanned<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    pub json: Option<Spanned<serde_json::Value>>,
    pub body: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub expect: Option<ExpectSpec>,
    /// Name → where the value comes from: a JSONPath (`$.id`), or `{ json | header | regex |
    /// cookie: ... }`.
    #[serde(default)]
    pub capture: BTreeMap<String, Spanned<serde_json::Value>>,
}

impl StepSpec {
    /// The request part, in the shape `request:` has.
    pub fn request(&self) -> RequestSpec {
        RequestSpec {
            method: self.method.clone(),
            url: self.url.clone(),
            headers: self.headers.clone(),
            json: self.json.clone(),
            body: self.body.clone(),
            timeout: self.timeout.clone(),
        }
    }
}

/// `data:` in a scenario.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// CSV with a header row, or JSON lines (`.jsonl`); relative to the scenario file.
    pub file: Spanned<String>,
    /// `sequential` (default), `random` or `unique`.
    pub order: Option<Spanned<String>>,
    /// `stop` or `wrap`: what a sequential or unique cursor does after the last row.
    pub on_exhausted: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// A number (closed model), or a list of steps (`[1, 5, 10, 25]`, a ramp).
    pub users: Option<Spanned<serde_json::Value>>,
    /// The same as `users`, in the words of LLM benchmarks.
    pub concurrency: Option<Spanned<serde_json::Value>>,
    /// Measured time of each ramp step.
    pub step: Option<Spanned<String>>,
    pub rate: Option<Spanned<String>>,
    pub duration: Option<Spanned<String>>,
    pub warmup: Option<Spanned<String>>,
    pub requests: Option<Spanned<u64>>,
    pub max_in_flight: Option<Spanned<u32>>,
    /// A new connection for every request: measures cold connections (connect, handshake).
    pub new_connection_per_request: Option<bool>,
    /// HTTP/2: the connections the users' streams share (users = concurrent streams).
    /// HTTP/1.1 ignores it: one connection per user.
    pub connections: Option<Spanned<u32>>,
}

impl LoadSpec {
    /// Field-by-field: the scenario's value where it has one, else the suite default.
    pub fn or(self, defaults: &LoadSpec) -> LoadSpec {
        // A scenario that picks one model must not inherit the other model's key.
        let scenario_picks_model =
            self.users.is_some() || self.concurrency.is_some() || self.rate.is_some();
        LoadSpec {
            users: if scenario_picks_model {
                self.users
            } else {
                self.users.or(defaults.users.clone())
            },
            concurrency: if scenario_picks_model {
                self.concurrency
            } else {
                self.concurrency.or(defaults.concurrency.clone())
            },
            rate: if scenario_picks_model {
                self.rate
            } else {
                self.rate.or(defaults.rate.clone())
            },
            duration: self.duration.or(defaults.duration.clone()),
            warmup: self.warmup.or(defaults.warmup.clone()),
            requests: self.requests.or(defaults.requests.clone()),
            max_in_flight: self.max_in_flight.or(defaults.max_in_flight.clone()),
            step: self.step.or(defaults.step.clone()),
            new_connection_per_request: self
                .new_connection_per_request
                .or(defaults.new_connection_per_request),
            connections: self.connections.or(defaults.connections.clone()),
        }
    }
}

/// `llm:` in a scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSpec {
    /// `anthropic` or `openai`: the provider of models without a `NAME/` prefix.
    pub provider: Option<Spanned<String>>,
    /// Named providers, each with its own base URL, key and headers: a model written
    /// `NAME/model` goes to provider NAME (`providers: { claude: { provider: anthropic, … } }`).
    #[serde(default)]
    pub providers: BTreeMap<String, LlmProviderSpec>,
    /// `http://host:port[/base]`; default: the suite's target.
    pub base_url: Option<Spanned<String>>,
    /// Must come from the environment: `${ANTHROPIC_API_KEY}`.
    pub api_key: Option<Spanned<String>>,
    /// Extra request headers (`anthropic-beta`, an organisation id, …); `${ENV}` allowed.
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    pub models: Option<Vec<Spanned<String>>>,
    pub fallback: Option<Vec<Spanned<String>>>,
    pub system: Option<Spanned<String>>,
    pub prompt: Option<Spanned<String>>,
    pub messages: Option<Spanned<serde_json::Value>>,
    /// One prompt per non-empty line; each request picks one.
    pub prompts_file: Option<Spanned<String>>,
    pub max_tokens: Option<Spanned<u32>>,
    pub stream: Option<bool>,
    pub prices: Option<Spanned<serde_json::Value>>,
    pub daily_requests: Option<Spanned<u64>>,
    #[serde(default)]
    pub timeouts: LlmTimeoutsSpec,
}

/// One entry of `llm.providers:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmProviderSpec {
    /// `anthropic` or `openai` (any OpenAI-compatible gateway).
    pub provider: Spanned<String>,
    /// Default: the suite's target.
    pub base_url: Option<Spanned<String>>,
    pub api_key: Option<Spanned<String>>,
    /// Added to (and overriding) the scenario's `llm.headers` for this provider's requests.
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LlmTimeoutsSpec {
    pub connect: Option<Spanned<String>>,
    pub first_token: Option<Spanned<String>>,
    pub between_tokens: Option<Spanned<String>>,
    /// The whole request, fallbacks included (like `request.timeout`).
    pub total: Option<Spanned<String>>,
}

/// One model's entry in a YAML price table: USD per million tokens.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSpec {
    pub input: Spanned<f64>,
    pub output: Spanned<f64>,
    pub cache_read: Option<Spanned<f64>>,
    pub cache_write: Option<Spanned<f64>>,
}
