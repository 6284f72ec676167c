//! `llm:` scenarios → one `ScenarioPlan` per model (or one per fallback chain), each with its
//! request bodies rendered once, its provider headers and its prices. This file owns the YAML
//! (`llm:` fields, prompts, price tables) and its validation; the wire format (body shape,
//! fixed headers, how the key is sent, the endpoint path) is the provider room's.
//!
//! LLM scenarios do not inherit the suite's `defaults.load`, `defaults.headers` or
//! `thresholds`: those describe the HTTP endpoints, and an LLM request costs money and seconds.
//! Their own defaults are one request at a time, 10 requests per model, no warmup.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use serde_json::{Value, json};
use serde_saphyr::Spanned;

use super::error::{ConfigError, Source, parse_yaml};
use super::fields::{
    Overrides, load, parse_target, parse_thresholds, spanned_duration, spanned_tolerance,
};
use super::model::{LlmSpec, PriceSpec, ScenarioFile, SuiteFile};
use super::plan::{
    Body, Expect, LlmHop, LlmPlan, LlmTimeouts, Load, LoadModel, Price, RequestPlan, ScenarioPlan,
    Target,
};
use super::template::{Template, expand_env};
use crate::provider::{Chat, Provider};

const DEFAULT_MAX_TOKENS: u32 = 256;
const DEFAULT_REQUESTS: u64 = 10;
/// With a request budget and no duration, the budget ends the run; this only bounds it.
const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(300);
const DEFAULT_CONNECT: Duration = Duration::from_secs(10);
const DEFAULT_FIRST_TOKEN: Duration = Duration::from_secs(60);
const DEFAULT_BETWEEN_TOKENS: Duration = Duration::from_secs(30);
const DEFAULT_TOTAL: Duration = Duration::from_secs(300);

/// What an LLM scenario may take from the suite.
pub(super) struct SuiteScope<'a> {
    pub target: &'a Target,
    pub path: &'a Path,
    pub file: &'a SuiteFile,
    pub tolerance: f64,
}

pub(super) fn scenario_plans(
    file: &Path,
    name: String,
    raw: ScenarioFile,
    suite: &SuiteScope<'_>,
    overrides: &Overrides,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<ScenarioPlan>, ConfigError> {
    let spec = raw.llm.expect("called for llm scenarios only");
    if raw.request.is_some() {
        return Err(ConfigError::file(
            file,
            "a scenario has either `request:` or `llm:`, not both",
        ));
    }
    if let Some(e) = &raw.expect {
        return Err(ConfigError::at(
            file,
            e.status.as_ref().map(|s| s.referenced),
            "expect",
            "`llm:` scenarios expect a complete 200 stream; `expect:` does not apply",
        ));
    }
    let at = |s: &Spanned<String>, field: &str, m: String| {
        ConfigError::at(file, Some(s.referenced), field, m)
    };

    let routes = routes(file, &spec, suite.target, lookup)?;
    let (models, fallback) = match (&spec.models, &spec.fallback) {
        (Some(_), Some(f)) => {
            return Err(ConfigError::at(
                file,
                f.first().map(|m| m.referenced),
                "llm.fallback",
                "use `models:` (each model measured alone) or `fallback:` (one chain), not both",
            ));
        }
        (Some(m), None) => (m, false),
        (None, Some(f)) => (f, true),
        (None, None) => {
            return Err(ConfigError::at(
                file,
                spec.provider.as_ref().map(|p| p.referenced),
                "llm.models",
                "name the model(s) to benchmark: `models: [model-a, model-b]` or `fallback: [model-a, model-b]`",
            ));
        }
    };
    let field = if fallback {
        "llm.fallback"
    } else {
        "llm.models"
    };
    if models.is_empty() {
        return Err(ConfigError::file(file, format!("{field}: lists no model")));
    }
    if fallback && models.len() < 2 {
        return Err(at(
            &models[0],
            field,
            "a fallback chain needs at least two models".into(),
        ));
    }
    let mut names: Vec<String> = Vec::new();
    // Per model: its route (index into `routes`) and the model id sent to the provider.
    let mut routed: Vec<(usize, String)> = Vec::new();
    for (i, m) in models.iter().enumerate() {
        let n = m.value.trim();
        let f = format!("{field}[{i}]");
        if n.is_empty() || n.contains(char::is_whitespace) {
            return Err(at(m, &f, format!("`{}` is not a model name", m.value)));
        }
        if names.iter().any(|x| x == n) {
            return Err(at(m, &f, format!("`{n}` is listed twice")));
        }
        let named = n.split_once('/').and_then(|(pre, rest)| {
            routes
                .iter()
                .position(|r| r.name.as_deref() == Some(pre))
                .map(|r| (r, rest))
        });
        let (route, id) = match named {
            Some((_, "")) => {
                return Err(at(
                    m,
                    &f,
                    format!("`{n}` names no model after the provider"),
                ));
            }
            Some((r, rest)) => (r, rest),
            None => match routes.iter().position(|r| r.name.is_none()) {
                Some(r) => (r, n),
                None => {
                    let known: Vec<String> = routes
                        .iter()
                        .filter_map(|r| r.name.as_ref().map(|x| format!("`{x}/`")))
                        .collect();
                    return Err(at(
                        m,
                        &f,
                        format!(
                            "`{n}` names no provider: prefix it with one of {}, or set `llm.provider` for unprefixed models",
                            known.join(", ")
                        ),
                    ));
                }
            },
        };
        names.push(n.to_string());
        routed.push((route, id.to_string()));
    }

    let prompts = prompts(file, &spec)?;
    let max_tokens = match &spec.max_tokens {
        Some(m) if m.value == 0 || m.value > 1_000_000 => {
            return Err(ConfigError::at(
                file,
                Some(m.referenced),
                "llm.max_tokens",
                "must be 1 to 1000000",
            ));
        }
        Some(m) => m.value,
        None => DEFAULT_MAX_TOKENS,
    };
    let stream = spec.stream.unwrap_or(true);
    let system = spec.system.as_ref().map(|s| s.value.as_str());
    let bodies: Vec<Vec<Bytes>> = routed
        .iter()
        .map(|(route, model)| {
            let protocol = routes[*route].provider.protocol();
            prompts
                .iter()
                .map(|messages| {
                    protocol.body(&Chat {
                        model,
                        system,
                        messages,
                        max_tokens,
                        stream,
                    })
                })
                .collect()
        })
        .collect();

    let timeouts = timeouts(file, &spec)?;
    let total = match &spec.timeouts.total {
        Some(t) => spanned_duration(file, "llm.timeouts.total", t)?,
        None => DEFAULT_TOTAL,
    };

    let table = match (&spec.prices, &suite.file.prices) {
        (Some(p), _) => Some(price_table(file, p)?),
        (None, Some(p)) => Some(price_table(suite.path, p)?),
        (None, None) => None,
    };
    // The name as written (`claude/claude-sonnet-4-5`), else the model id.
    let prices: Vec<Option<Price>> = names
        .iter()
        .zip(&routed)
        .map(|(n, (_, id))| {
            let t = table.as_ref()?;
            lookup_price(t, n).or_else(|| lookup_price(t, id))
        })
        .collect();
    let daily_requests = match &spec.daily_requests {
        Some(d) if d.value == 0 => {
            return Err(ConfigError::at(
                file,
                Some(d.referenced),
                "llm.daily_requests",
                "must be above zero",
            ));
        }
        d => d.as_ref().map(|d| d.value),
    };

    let (load, steps) = llm_load(file, &raw.load, overrides)?;
    let thresholds = parse_thresholds(file, raw.thresholds.as_deref())?.unwrap_or_default();
    let tolerance = match &raw.tolerance {
        Some(t) => spanned_tolerance(file, t)?,
        None => suite.tolerance,
    };

    let plan_for = |endpoint: String, tier_models: Vec<String>, idx: Vec<usize>| {
        let route = &routes[routed[idx[0]].0];
        let (provider, target) = (route.provider, &route.target);
        let protocol = provider.protocol();
        let path = format!("{}{}", target.base_path, protocol.path());
        let bodies: Vec<Vec<Bytes>> = idx.iter().map(|i| bodies[*i].clone()).collect();
        let prices: Vec<Option<Price>> = idx.iter().map(|i| prices[*i]).collect();
        // A chain's models of other providers go where their entries say, with their keys.
        let others: Vec<Option<&Route>> = idx
            .iter()
            .map(|i| (routed[*i].0 != routed[idx[0]].0).then(|| &routes[routed[*i].0]))
            .collect();
        let hops: Vec<Option<LlmHop>> = others
            .iter()
            .map(|r| {
                r.map(|r| {
                    let path = format!("{}{}", r.target.base_path, r.provider.protocol().path());
                    LlmHop {
                        provider: r.provider,
                        target: r.target.clone(),
                        path: path.parse().unwrap_or_else(|_| {
                            http::Uri::from_static(r.provider.protocol().path())
                        }),
                        headers: r.headers.clone(),
                    }
                })
            })
            .collect();
        let hop_texts: Vec<Value> = others
            .iter()
            .flatten()
            .map(|r| {
                json!({
                    "llm": r.provider.name(),
                    "path": r.target.base_path,
                    "headers": r.header_texts,
                })
            })
            .collect();
        let hash = definition_hash(route, &tier_models, fallback, &bodies, &hop_texts, &load);
        ScenarioPlan {
            name: endpoint,
            file: file.to_path_buf(),
            hash,
            target: target.clone(),
            request: RequestPlan {
                method: http::Method::POST,
                url_text: protocol.path().to_string(),
                path: Template::parse(&path).unwrap_or_else(|_| Template::literal(&path)),
                headers: Vec::new(),
                body: None::<Body>,
                timeout: total,
            },
            expect: Expect {
                statuses: vec![200],
            },
            load,
            thresholds: thresholds.clone(),
            tolerance,
            ramp: None,
            flow: None,
            group: None,
            llm: Some(LlmPlan {
                provider,
                models: tier_models,
                fallback,
                bodies,
                headers: route.headers.clone(),
                stream,
                max_tokens,
                timeouts,
                prices,
                daily_requests,
                hops,
            }),
        }
    };
    let plans: Vec<ScenarioPlan> = if fallback {
        vec![plan_for(name, names.clone(), (0..names.len()).collect())]
    } else {
        names
            .iter()
            .enumerate()
            .map(|(i, m)| plan_for(format!("{name}/{m}"), vec![m.clone()], vec![i]))
            .collect()
    };
    Ok(plans
        .into_iter()
        .flat_map(|p| p.expand(steps.clone()))
        .collect())
}

/// Every prompt as a `messages` array: `prompt:`, `messages:` or one user message per line of
/// `prompts_file:`.
fn prompts(file: &Path, spec: &LlmSpec) -> Result<Vec<Value>, ConfigError> {
    let given = [
        spec.prompt.is_some(),
        spec.messages.is_some(),
        spec.prompts_file.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(ConfigError::at(
            file,
            spec.provider.as_ref().map(|p| p.referenced),
            "llm.prompt",
            "give exactly one of `prompt:` (text), `messages:` (a list of {role, content}) or `prompts_file:` (one prompt per line)",
        ));
    }
    let user = |text: &str| json!([{ "role": "user", "content": text }]);
    if let Some(p) = &spec.prompt {
        if p.value.trim().is_empty() {
            return Err(ConfigError::at(
                file,
                Some(p.referenced),
                "llm.prompt",
                "must not be empty",
            ));
        }
        return Ok(vec![user(&p.value)]);
    }
    if let Some(m) = &spec.messages {
        let err = |msg: &str| ConfigError::at(file, Some(m.referenced), "llm.messages", msg);
        let items = m
            .value
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| err("must be a list of messages: [{ role: user, content: \"…\" }]"))?;
        for item in items {
            let role = item.get("role").and_then(Value::as_str);
            if !matches!(role, Some("user" | "assistant" | "system" | "developer"))
                || item.get("content").is_none()
            {
                return Err(err(
                    "each message needs `role:` (user, assistant, system) and `content:`",
                ));
            }
        }
        return Ok(vec![m.value.clone()]);
    }
    let pf = spec.prompts_file.as_ref().expect("one of the three is set");
    let path = relative_to(file, &pf.value);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        ConfigError::at(
            file,
            Some(pf.referenced),
            "llm.prompts_file",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let prompts: Vec<Value> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(user)
        .collect();
    if prompts.is_empty() {
        return Err(ConfigError::at(
            file,
            Some(pf.referenced),
            "llm.prompts_file",
            format!("{} holds no prompt (one per line)", path.display()),
        ));
    }
    Ok(prompts)
}

fn relative_to(file: &Path, name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        file.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// Where one provider's requests go.
struct Route {
    /// The `providers:` key, or None for the scenario's own `provider:`.
    name: Option<String>,
    provider: Provider,
    target: Target,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The headers as written (not `${ENV}` values), for the scenario hash.
    header_texts: Vec<(String, String)>,
}

/// The scenario's own provider (`llm.provider`, `base_url`, `api_key`, `headers`) if it names
/// one, and each entry of `llm.providers`.
fn routes(
    file: &Path,
    spec: &LlmSpec,
    suite_target: &Target,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Route>, ConfigError> {
    let stream = spec.stream.unwrap_or(true);
    let mut out = Vec::new();
    match &spec.provider {
        Some(p) => out.push(route(
            file,
            "llm",
            None,
            p,
            spec.base_url.as_ref(),
            spec.api_key.as_ref(),
            &[&spec.headers],
            stream,
            suite_target,
            lookup,
        )?),
        None => {
            let stray = spec.base_url.as_ref().map(|u| ("llm.base_url", u));
            let stray = stray.or(spec.api_key.as_ref().map(|k| ("llm.api_key", k)));
            if let Some((field, v)) = stray {
                return Err(ConfigError::at(
                    file,
                    Some(v.referenced),
                    field,
                    "belongs to `llm.provider`, which is not set: name it, or move this into a `providers:` entry",
                ));
            }
            if spec.providers.is_empty() {
                return Err(ConfigError::at(
                    file,
                    None,
                    "llm.provider",
                    "name the provider: `provider: anthropic` (Messages API) or `provider: openai` (chat completions), or declare `providers:`",
                ));
            }
        }
    }
    for (name, p) in &spec.providers {
        let prefix = format!("llm.providers.{name}");
        if name.is_empty() || name.contains('/') || name.contains(char::is_whitespace) {
            return Err(ConfigError::at(
                file,
                Some(p.provider.referenced),
                &prefix,
                format!("`{name}` cannot name a provider: no `/` or spaces"),
            ));
        }
        out.push(route(
            file,
            &prefix,
            Some(name.clone()),
            &p.provider,
            p.base_url.as_ref(),
            p.api_key.as_ref(),
            &[&spec.headers, &p.headers],
            stream,
            suite_target,
            lookup,
        )?);
    }
    Ok(out)
}

/// One route: `prefix` is the YAML path of its fields (`llm`, `llm.providers.claude`); later
/// header maps override earlier ones.
#[expect(
    clippy::too_many_arguments,
    reason = "the fields of one YAML entry, each checked"
)]
fn route(
    file: &Path,
    prefix: &str,
    name: Option<String>,
    provider: &Spanned<String>,
    base_url: Option<&Spanned<String>>,
    api_key: Option<&Spanned<String>>,
    header_maps: &[&BTreeMap<String, Spanned<String>>],
    stream: bool,
    suite_target: &Target,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Route, ConfigError> {
    let at = |s: &Spanned<String>, field: &str, m: String| {
        ConfigError::at(file, Some(s.referenced), &format!("{prefix}.{field}"), m)
    };
    let Some(kind) = Provider::from_name(provider.value.trim()) else {
        let other = provider.value.trim();
        return Err(at(
            provider,
            "provider",
            format!(
                "`{other}` is not a provider gate speaks; use `anthropic` (Messages API) or `openai` (chat completions)"
            ),
        ));
    };
    let target = match base_url {
        Some(u) => {
            let (expanded, _) = expand_env(&u.value, lookup).map_err(|m| at(u, "base_url", m))?;
            parse_target(&expanded).map_err(|m| at(u, "base_url", m))?
        }
        None => suite_target.clone(),
    };
    let protocol = kind.protocol();
    let mut headers = protocol.headers(stream);
    let mut header_texts: Vec<(String, String)> = Vec::new();
    for map in header_maps {
        for (hname, value) in *map {
            let field = format!("headers.{hname}");
            let header = HeaderName::from_bytes(hname.as_bytes()).map_err(|_| {
                at(
                    value,
                    &field,
                    format!("`{hname}` is not a valid header name"),
                )
            })?;
            let (expanded, secret) =
                expand_env(&value.value, lookup).map_err(|m| at(value, &field, m))?;
            let mut v = HeaderValue::from_str(&expanded).map_err(|_| {
                at(
                    value,
                    &field,
                    "the value holds characters a header cannot carry".into(),
                )
            })?;
            v.set_sensitive(secret);
            headers.retain(|(n, _)| n != header);
            headers.push((header, v));
            let lower = hname.to_ascii_lowercase();
            header_texts.retain(|(n, _)| *n != lower);
            header_texts.push((lower, value.value.clone()));
        }
    }
    if let Some(k) = api_key {
        let (key, from_env) = expand_env(&k.value, lookup).map_err(|m| at(k, "api_key", m))?;
        if !from_env {
            return Err(at(
                k,
                "api_key",
                "write the key as `${ENV_VAR}`: a key written into a scenario file ends up in git"
                    .into(),
            ));
        }
        let (hname, value) = protocol.api_key(&key);
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            at(
                k,
                "api_key",
                "the key holds characters a header cannot carry".into(),
            )
        })?;
        // hyper keeps sensitive values out of HPACK tables and its Debug output.
        value.set_sensitive(true);
        headers.push((hname, value));
    }
    Ok(Route {
        name,
        provider: kind,
        target,
        headers,
        header_texts,
    })
}

fn timeouts(file: &Path, spec: &LlmSpec) -> Result<LlmTimeouts, ConfigError> {
    let t = &spec.timeouts;
    let one = |v: &Option<Spanned<String>>, field: &str, default: Duration| match v {
        Some(s) => {
            let d = spanned_duration(file, field, s)?;
            if d.is_zero() {
                return Err(ConfigError::at(
                    file,
                    Some(s.referenced),
                    field,
                    "must be above zero",
                ));
            }
            Ok(d)
        }
        None => Ok(default),
    };
    Ok(LlmTimeouts {
        connect: one(&t.connect, "llm.timeouts.connect", DEFAULT_CONNECT)?,
        first_token: one(
            &t.first_token,
            "llm.timeouts.first_token",
            DEFAULT_FIRST_TOKEN,
        )?,
        between_tokens: one(
            &t.between_tokens,
            "llm.timeouts.between_tokens",
            DEFAULT_BETWEEN_TOKENS,
        )?,
    })
}

/// The load with LLM defaults: 1 concurrent request, 10 requests per model, no warmup, and a
/// duration that only bounds a request budget.
fn llm_load(
    file: &Path,
    spec: &super::model::LoadSpec,
    overrides: &Overrides,
) -> Result<(Load, Option<Vec<u32>>), ConfigError> {
    let (mut load, steps) = load(file, spec, overrides)?;
    let picked = spec.users.is_some() || spec.concurrency.is_some() || spec.rate.is_some();
    if !picked {
        load.model = LoadModel::Closed { users: 1 };
    }
    if spec.warmup.is_none() && overrides.warmup.is_none() {
        load.warmup = Duration::ZERO;
    }
    let timed = spec.duration.is_some() || spec.step.is_some() || overrides.duration.is_some();
    if !timed {
        load.duration = DEFAULT_MAX_DURATION;
        if load.max_requests.is_none() {
            load.max_requests = Some(DEFAULT_REQUESTS);
        }
    }
    Ok((load, steps))
}

/// A price table: a path to a YAML file (`model: { input, output, cache_read, cache_write }`,
/// USD per million tokens) or to LiteLLM's JSON (`input_cost_per_token`, …, USD per token), or
/// the YAML map inline.
fn price_table(file: &Path, v: &Spanned<Value>) -> Result<BTreeMap<String, Price>, ConfigError> {
    let err = |m: String| ConfigError::at(file, Some(v.referenced), "prices", m);
    match &v.value {
        Value::String(name) => {
            let path = relative_to(file, name);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
            if path.extension().and_then(|e| e.to_str()) == Some("json") {
                litellm_prices(&path, &text)
            } else {
                yaml_prices(&Source { path, text })
            }
        }
        Value::Object(map) => {
            let mut out = BTreeMap::new();
            for (model, entry) in map {
                let num = |k: &str, required: bool| -> Result<f64, ConfigError> {
                    match entry.get(k) {
                        Some(x) => x
                            .as_f64()
                            .filter(|p| p.is_finite() && *p >= 0.0)
                            .ok_or_else(|| err(format!("{model}.{k}: must be a price ≥ 0 (USD per million tokens)"))),
                        None if required => Err(err(format!("{model}: needs `{k}:` (USD per million tokens)"))),
                        None => Ok(0.0),
                    }
                };
                if let Some(extra) = entry
                    .as_object()
                    .and_then(|o| o.keys().find(|k| !PRICE_KEYS.contains(&k.as_str())))
                {
                    return Err(err(format!(
                        "{model}: unknown field `{extra}`, expected one of {}",
                        PRICE_KEYS.join(", ")
                    )));
                }
                out.insert(
                    model.clone(),
                    Price {
                        input: num("input", true)?,
                        output: num("output", true)?,
                        cache_read: num("cache_read", false)?,
                        cache_write: num("cache_write", false)?,
                    },
                );
            }
            Ok(out)
        }
        _ => Err(err(
            "write a file name (prices.yml, or LiteLLM's model_prices.json) or a map of model: { input, output }".into(),
        )),
    }
}

const PRICE_KEYS: [&str; 4] = ["input", "output", "cache_read", "cache_write"];

fn yaml_prices(src: &Source) -> Result<BTreeMap<String, Price>, ConfigError> {
    let raw: BTreeMap<String, PriceSpec> = parse_yaml(src)?;
    let mut out = BTreeMap::new();
    for (model, p) in raw {
        let check = |v: &Spanned<f64>, k: &str| {
            if v.value.is_finite() && v.value >= 0.0 {
                Ok(v.value)
            } else {
                Err(ConfigError::at(
                    &src.path,
                    Some(v.referenced),
                    &format!("{model}.{k}"),
                    "must be a price ≥ 0 (USD per million tokens)",
                ))
            }
        };
        let opt = |v: &Option<Spanned<f64>>, k: &str| v.as_ref().map_or(Ok(0.0), |v| check(v, k));
        out.insert(
            model.clone(),
            Price {
                input: check(&p.input, "input")?,
                output: check(&p.output, "output")?,
                cache_read: opt(&p.cache_read, "cache_read")?,
                cache_write: opt(&p.cache_write, "cache_write")?,
            },
        );
    }
    Ok(out)
}

/// LiteLLM's `model_prices_and_context_window.json`: per model, USD *per token*. Entries
/// without both token prices (images, embeddings' `sample_spec`) are skipped.
fn litellm_prices(path: &Path, text: &str) -> Result<BTreeMap<String, Price>, ConfigError> {
    let v: Value = serde_json::from_str(text).map_err(|e| ConfigError {
        origin: format!("{}:{}:{}", path.display(), e.line(), e.column()),
        field: None,
        message: format!("not valid JSON: {e}"),
        hint: None,
    })?;
    let Some(map) = v.as_object() else {
        return Err(ConfigError::file(
            path,
            "a LiteLLM price file is a JSON object keyed by model",
        ));
    };
    let per_m = |e: &Value, k: &str| e.get(k).and_then(Value::as_f64).map(|p| p * 1e6);
    Ok(map
        .iter()
        .filter_map(|(model, e)| {
            Some((
                model.clone(),
                Price {
                    input: per_m(e, "input_cost_per_token")?,
                    output: per_m(e, "output_cost_per_token")?,
                    cache_read: per_m(e, "cache_read_input_token_cost").unwrap_or(0.0),
                    cache_write: per_m(e, "cache_creation_input_token_cost").unwrap_or(0.0),
                },
            ))
        })
        .collect())
}

/// The exact name, else a LiteLLM-style `provider/model` key.
fn lookup_price(table: &BTreeMap<String, Price>, model: &str) -> Option<Price> {
    table.get(model).copied().or_else(|| {
        table
            .iter()
            .find(|(k, _)| k.rsplit('/').next() == Some(model))
            .map(|(_, p)| *p)
    })
}

fn definition_hash(
    route: &Route,
    models: &[String],
    fallback: bool,
    bodies: &[Vec<Bytes>],
    hops: &[Value],
    load: &Load,
) -> String {
    let (provider, target, headers) = (route.provider, &route.target, &route.header_texts);
    let model = load.identity();
    let bodies: Vec<Vec<String>> = bodies
        .iter()
        .map(|b| {
            b.iter()
                .map(|x| String::from_utf8_lossy(x).into_owned())
                .collect()
        })
        .collect();
    let mut canonical = json!({
        "llm": provider.name(),
        "path": target.base_path,
        "models": models,
        "fallback": fallback,
        "bodies": bodies,
        "headers": headers,
        "load": model,
    });
    // Only chains across providers have hops: every other scenario keeps its hash.
    if !hops.is_empty() {
        canonical["hops"] = Value::Array(hops.to_vec());
    }
    format!(
        "{:016x}",
        crate::hash::fnv1a(canonical.to_string().as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Plan, build_plan};
    use crate::provider::Usage;

    fn plan(scenario: &str, env: &[(&str, &str)]) -> Result<Plan, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        build_plan(
            "s",
            Some(&Source {
                path: "s/suite.yml".into(),
                text: "target: http://127.0.0.1:8080\ndefaults:\n  load: { rate: 100/s, duration: 25s }\nthresholds: [ \"p95 < 300ms\" ]\n".into(),
            }),
            &[Source {
                path: "s/chat.yml".into(),
                text: scenario.into(),
            }],
            &Overrides::default(),
            &lookup,
        )
    }

    #[test]
    fn one_endpoint_per_model_with_provider_bodies_and_headers() {
        let p = plan(
            "name: chat\nllm:\n  provider: anthropic\n  api_key: ${KEY}\n  models: [m-a, m-b]\n  system: terse\n  prompt: Hi\n  max_tokens: 64\n  prices: { m-a: { input: 3, output: 15 } }\n  daily_requests: 1000\nload: { concurrency: 4, requests: 20 }\n",
            &[("KEY", "sk-secret")],
        )
        .unwrap();
        let names: Vec<&str> = p.scenarios.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["chat/m-a", "chat/m-b"]);
        let a = &p.scenarios[0];
        assert_eq!(a.load.model, LoadModel::Closed { users: 4 });
        assert_eq!(a.load.max_requests, Some(20));
        assert_eq!(a.load.warmup, Duration::ZERO);
        assert!(
            a.thresholds.is_empty(),
            "suite thresholds are for HTTP endpoints"
        );
        let llm = a.llm.as_ref().unwrap();
        let body: Value = serde_json::from_slice(&llm.bodies[0][0]).unwrap();
        assert_eq!(
            body,
            json!({"model": "m-a", "max_tokens": 64, "stream": true, "system": "terse",
                   "messages": [{"role": "user", "content": "Hi"}]})
        );
        let h = |n: &str| {
            llm.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.to_str().unwrap().to_string())
        };
        assert_eq!(h("x-api-key").as_deref(), Some("sk-secret"));
        assert_eq!(h("anthropic-version").as_deref(), Some("2023-06-01"));
        assert!(
            llm.prices[0].is_some() && p.scenarios[1].llm.as_ref().unwrap().prices[0].is_none()
        );
        assert_ne!(a.hash, p.scenarios[1].hash);
        assert_eq!(a.request.url_text, "/v1/messages");
    }

    /// `providers:`: models of different providers side by side, each request with its own
    /// provider's base URL, key, headers, path and body shape.
    #[test]
    fn providers_side_by_side_each_with_its_own_url_key_and_shape() {
        let text = "name: chat\nllm:\n  provider: openai\n  api_key: ${KG}\n  base_url: http://127.0.0.1:9003/gw\n  headers: { x-team: perf }\n  providers:\n    claude: { provider: anthropic, base_url: http://127.0.0.1:9001, api_key: \"${KA}\", headers: { anthropic-beta: b1 } }\n    gpt: { provider: openai, base_url: http://127.0.0.1:9002/v0, api_key: \"${KB}\" }\n  models: [claude/c-1, gpt/g-1, meta-llama/l-3]\n  prompt: Hi\n  prices: { c-1: { input: 3, output: 15 }, gpt/g-1: { input: 1, output: 2 } }\nload: { concurrency: 1, requests: 2 }\n";
        let p = plan(
            text,
            &[
                ("KA", "ka-secret"),
                ("KB", "kb-secret"),
                ("KG", "kg-secret"),
            ],
        )
        .unwrap();
        let names: Vec<&str> = p.scenarios.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["chat/claude/c-1", "chat/gpt/g-1", "chat/meta-llama/l-3"]
        );
        let header = |i: usize, n: &str| {
            p.scenarios[i]
                .llm
                .as_ref()
                .unwrap()
                .headers
                .iter()
                .filter(|(k, _)| k == n)
                .map(|(_, v)| v.to_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        let model = |i: usize| -> Value {
            serde_json::from_slice::<Value>(&p.scenarios[i].llm.as_ref().unwrap().bodies[0][0])
                .unwrap()["model"]
                .clone()
        };
        // Claude: Anthropic's shape, key header and path, on its own port.
        let c = &p.scenarios[0];
        assert_eq!(c.llm.as_ref().unwrap().provider, Provider::Anthropic);
        assert_eq!(c.target.port, 9001);
        assert_eq!(c.request.url_text, "/v1/messages");
        assert_eq!(header(0, "x-api-key"), ["ka-secret"]);
        assert!(header(0, "authorization").is_empty());
        assert_eq!(header(0, "anthropic-beta"), ["b1"]);
        assert_eq!(
            header(0, "x-team"),
            ["perf"],
            "scenario headers apply to every provider"
        );
        assert_eq!(model(0), "c-1", "the prefix is gate's, not the provider's");
        // GPT: OpenAI's bearer key, its base path kept.
        let g = &p.scenarios[1];
        assert_eq!(g.llm.as_ref().unwrap().provider, Provider::OpenAi);
        assert_eq!(g.target.port, 9002);
        assert_eq!(
            g.request
                .path
                .render(&mut rand::SeedableRng::seed_from_u64(0)),
            "/v0/v1/chat/completions"
        );
        assert_eq!(header(1, "authorization"), ["Bearer kb-secret"]);
        assert!(header(1, "x-api-key").is_empty());
        assert_eq!(model(1), "g-1");
        // An unknown prefix is part of the model id, served by the scenario's own provider.
        let l = &p.scenarios[2];
        assert_eq!(l.target.port, 9003);
        assert_eq!(header(2, "authorization"), ["Bearer kg-secret"]);
        assert_eq!(model(2), "meta-llama/l-3");
        // Prices by model id, or by the name as written.
        assert!(c.llm.as_ref().unwrap().prices[0].is_some());
        assert!(g.llm.as_ref().unwrap().prices[0].is_some());
        assert!(l.llm.as_ref().unwrap().prices[0].is_none());
        assert_ne!(c.hash, g.hash);
    }

    #[test]
    fn provider_entries_are_checked_and_chains_may_cross_providers() {
        let err = |t: &str| {
            plan(t, &[("KA", "a"), ("KB", "b")])
                .unwrap_err()
                .to_string()
        };
        let two = "  providers:\n    claude: { provider: anthropic, api_key: \"${KA}\" }\n    gpt: { provider: openai, api_key: \"${KB}\" }\n";
        let e = err(&format!(
            "name: c\nllm:\n{two}  models: [claude/x, mistral-7b]\n  prompt: hi\n"
        ));
        assert!(
            e.contains("llm.models[1]")
                && e.contains("`mistral-7b` names no provider")
                && e.contains("`claude/`, `gpt/`"),
            "{e}"
        );
        // A chain across providers: one endpoint, the second model sent to its own provider
        // with its own key and API; the chain's hash is not the single provider's.
        let chain = |models: &str| {
            let p = plan(
                &format!("name: c\nllm:\n{two}  fallback: [{models}]\n  prompt: hi\n"),
                &[("KA", "a"), ("KB", "b")],
            )
            .unwrap();
            assert_eq!(p.scenarios.len(), 1);
            p.scenarios[0].clone()
        };
        let crossing = chain("claude/x, gpt/y");
        let llm = crossing.llm.as_ref().unwrap();
        assert_eq!(llm.provider.name(), "anthropic");
        assert!(llm.hops[0].is_none());
        let hop = llm.hops[1]
            .as_ref()
            .expect("gpt/y goes to its own provider");
        assert_eq!(hop.provider.name(), "openai");
        assert!(
            hop.path.path().ends_with("/chat/completions"),
            "{}",
            hop.path
        );
        assert!(
            hop.headers
                .iter()
                .any(|(n, v)| n == "authorization" && v.as_bytes() == b"Bearer b"),
            "{:?}",
            hop.headers
        );
        assert!(String::from_utf8_lossy(&llm.bodies[1][0]).contains("\"model\":\"y\""));
        let within = chain("claude/x, claude/y");
        assert!(
            within
                .llm
                .as_ref()
                .unwrap()
                .hops
                .iter()
                .all(Option::is_none)
        );
        assert_ne!(crossing.hash, chain("claude/x, claude/z").hash);
        assert_ne!(crossing.hash, within.hash);
        let e = err(
            "name: c\nllm:\n  providers:\n    g: { provider: gemini }\n  models: [g/x]\n  prompt: hi\n",
        );
        assert!(
            e.contains("s/chat.yml:4:")
                && e.contains("llm.providers.g.provider: `gemini` is not a provider"),
            "{e}"
        );
        let e = err(
            "name: c\nllm:\n  providers:\n    g: { provider: openai, api_key: sk-literal }\n  models: [g/x]\n  prompt: hi\n",
        );
        assert!(
            e.contains("llm.providers.g.api_key: write the key as `${ENV_VAR}`"),
            "{e}"
        );
        let e = err(
            "name: c\nllm:\n  api_key: ${KA}\n  providers:\n    g: { provider: openai }\n  models: [g/x]\n  prompt: hi\n",
        );
        assert!(e.contains("llm.api_key: belongs to `llm.provider`"), "{e}");
        let e = err("name: c\nllm:\n  models: [x]\n  prompt: hi\n");
        assert!(e.contains("llm.provider: name the provider"), "{e}");
        let e = err(&format!(
            "name: c\nllm:\n{two}  models: [claude/]\n  prompt: hi\n"
        ));
        assert!(e.contains("names no model after the provider"), "{e}");
        // A chain within one named provider is fine.
        assert!(
            plan(
                &format!("name: c\nllm:\n{two}  fallback: [gpt/a, gpt/b]\n  prompt: hi\n"),
                &[("KA", "a"), ("KB", "b")]
            )
            .is_ok()
        );
    }

    #[test]
    fn openai_bodies_ask_for_usage_and_fallback_is_one_endpoint() {
        let p = plan(
            "name: chat\nllm:\n  provider: openai\n  api_key: ${KEY}\n  fallback: [small, big]\n  system: terse\n  prompt: Hi\nload: { concurrency: [1, 5], requests: 3 }\n",
            &[("KEY", "sk-x")],
        )
        .unwrap();
        let names: Vec<&str> = p.scenarios.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["chat@1", "chat@5"]);
        let llm = p.scenarios[0].llm.as_ref().unwrap();
        assert!(llm.fallback);
        assert_eq!(llm.models, ["small", "big"]);
        let body: Value = serde_json::from_slice(&llm.bodies[1][0]).unwrap();
        assert_eq!(body["model"], "big");
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["messages"][0]["role"], "system");
        let auth = llm
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap();
        assert_eq!(auth.1.to_str().unwrap(), "Bearer sk-x");
        assert!(auth.1.is_sensitive());
    }

    #[test]
    fn prompts_from_a_file_or_a_message_list() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("prompts.txt"),
            "first prompt\n\n  second  \n",
        )
        .unwrap();
        let scenario = Source {
            path: dir.path().join("chat.yml"),
            text: "name: c\nllm:\n  provider: openai\n  models: [m]\n  prompts_file: prompts.txt\n"
                .into(),
        };
        let p = build_plan(
            "s",
            None,
            &[scenario],
            &Overrides {
                target: Some("http://127.0.0.1:1".into()),
                ..Overrides::default()
            },
            &|_| None,
        )
        .unwrap();
        let bodies = &p.scenarios[0].llm.as_ref().unwrap().bodies[0];
        let texts: Vec<Value> = bodies
            .iter()
            .map(|b| serde_json::from_slice::<Value>(b).unwrap()["messages"][0]["content"].clone())
            .collect();
        assert_eq!(texts, [json!("first prompt"), json!("second")]);
        let p = plan(
            "name: c\nllm:\n  provider: anthropic\n  models: [m]\n  messages:\n    - { role: user, content: hi }\n    - { role: assistant, content: hello }\n    - { role: user, content: again }\n",
            &[],
        )
        .unwrap();
        let body: Value =
            serde_json::from_slice(&p.scenarios[0].llm.as_ref().unwrap().bodies[0][0]).unwrap();
        assert_eq!(body["messages"].as_array().unwrap().len(), 3);
        let e = plan(
            "name: c\nllm:\n  provider: anthropic\n  models: [m]\n  messages: [ { content: hi } ]\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("llm.messages: each message needs `role:`"),
            "{e}"
        );
    }

    #[test]
    fn bad_llm_scenarios_name_the_field() {
        let err = |s: &str| plan(s, &[("KEY", "k")]).unwrap_err().to_string();
        assert_eq!(
            err("name: c\nllm:\n  provider: gemini\n  models: [x]\n  prompt: hi\n"),
            "s/chat.yml:3:13: llm.provider: `gemini` is not a provider gate speaks; use `anthropic` (Messages API) or `openai` (chat completions)"
        );
        assert!(
            err("name: c\nllm:\n  provider: openai\n  api_key: sk-literal\n  models: [x]\n  prompt: hi\n")
                .starts_with("s/chat.yml:4:12: llm.api_key: write the key as `${ENV_VAR}`")
        );
        assert!(
            err("name: c\nllm:\n  provider: openai\n  models: [x]\n")
                .contains("llm.prompt: give exactly one of")
        );
        assert!(
            err("name: c\nllm:\n  provider: openai\n  models: [x]\n  prompt: hi\n  modles: [y]\n")
                .contains("unknown field `modles`")
        );
        assert!(
            err("name: c\nllm:\n  provider: openai\n  fallback: [x]\n  prompt: hi\n")
                .contains("at least two models")
        );
        assert!(err("name: c\nllm:\n  provider: openai\n  models: [x]\n  prompt: hi\n  prices: { x: { input: 1 } }\n").contains("x: needs `output:`"));
        assert!(err("name: c\nllm:\n  provider: openai\n  models: [x]\n  prompt: hi\nload: { users: 2, concurrency: 3 }\n").contains("load.concurrency: `concurrency:` is another name"));
        assert!(err("name: c\nllm:\n  provider: openai\n  models: [x]\n  prompt: hi\n  api_key: ${MISSING}\n").contains("`MISSING` is not set"));
    }

    #[test]
    fn price_files_in_yaml_and_litellm_json() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("prices.yml");
        std::fs::write(
            &yaml,
            "m-a: { input: 3.0, output: 15.0, cache_read: 0.3, cache_write: 3.75 }\n",
        )
        .unwrap();
        let t = price_table(
            &dir.path().join("x.yml"),
            &Spanned::new(
                Value::String("prices.yml".into()),
                serde_saphyr::Location::UNKNOWN,
                serde_saphyr::Location::UNKNOWN,
            ),
        )
        .unwrap();
        let p = t["m-a"];
        assert_eq!(
            (p.input, p.output, p.cache_read, p.cache_write),
            (3.0, 15.0, 0.3, 3.75)
        );
        // 1000 input, 500 output, 2000 cache reads: 0.003 + 0.0075 + 0.0006.
        let usage = Usage {
            input: 1000,
            output: 500,
            cache_read: 2000,
            cache_write: 0,
        };
        assert!((p.cost(&usage) - 0.0111).abs() < 1e-12);
        let json_path = dir.path().join("model_prices.json");
        std::fs::write(
            &json_path,
            r#"{"sample_spec": {"max_tokens": "x"}, "anthropic/m-b": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05, "cache_read_input_token_cost": 3e-07, "litellm_provider": "anthropic", "mode": "chat"}}"#,
        )
        .unwrap();
        let t = litellm_prices(&json_path, &std::fs::read_to_string(&json_path).unwrap()).unwrap();
        let p = lookup_price(&t, "m-b").unwrap();
        assert!((p.input - 3.0).abs() < 1e-9 && (p.output - 15.0).abs() < 1e-9);
        assert!((p.cache_read - 0.3).abs() < 1e-9);
        std::fs::write(&yaml, "m-a: { input: -1, output: 1 }\n").unwrap();
        let e = yaml_prices(&Source {
            path: yaml.clone(),
            text: std::fs::read_to_string(&yaml).unwrap(),
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.ends_with("m-a.input: must be a price ≥ 0 (USD per million tokens)"),
            "{e}"
        );
    }
}
