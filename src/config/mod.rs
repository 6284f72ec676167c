//! Scenario files → a validated `Plan`. Owns the YAML model, `${ENV}` and `{{ generator }}`
//! templating, durations and threshold expressions. Knows nothing of HTTP I/O or SQL.

mod error;
mod feeder;
mod fields;
mod flow;
mod llm;
mod mix;
mod model;
pub mod plan;
pub mod shard;
pub mod template;
pub mod threshold;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use error::parse_yaml;
pub use error::{ConfigError, Source};
#[cfg(test)]
use fields::DEFAULT_MAX_IN_FLIGHT;
pub use fields::{Overrides, parse_target, parse_tolerance};
use fields::{load, parse_thresholds, spanned_duration, spanned_tolerance};
use model::{ScenarioFile, SuiteFile};
pub use plan::*;
use serde_saphyr::Spanned;
pub use shard::{Shard, ShardError, ShardPlan, split_plan};
pub use threshold::{Metric, Op, Threshold, parse_threshold};

pub const SUITE_FILE: &str = "suite.yml";
pub const DEFAULT_TOLERANCE: f64 = 0.05;

/// Read a suite from disk: a directory (its `suite.yml` plus every other `*.yml`/`*.yaml`), or
/// one scenario file (with `suite.yml` beside it as defaults, if present).
pub fn read_suite(path: &Path) -> Result<(Option<Source>, Vec<Source>), ConfigError> {
    let read = |p: &Path| -> Result<Source, ConfigError> {
        std::fs::read_to_string(p)
            .map(|text| Source {
                path: p.to_path_buf(),
                text,
            })
            .map_err(|e| ConfigError::file(p, format!("cannot read: {e}")))
    };
    let meta = std::fs::metadata(path).map_err(|e| {
        ConfigError::flag("--suite", format!("cannot open {}: {e}", path.display()))
            .with_hint("point --suite at a directory of scenario files or at one .yml file")
    })?;
    if meta.is_dir() {
        let suite_path = path.join(SUITE_FILE);
        let suite = suite_path.exists().then(|| read(&suite_path)).transpose()?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| ConfigError::file(path, format!("cannot list: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml"))
                    && p.file_name().and_then(|n| n.to_str()) != Some(SUITE_FILE)
            })
            .collect();
        files.sort();
        let scenarios = files
            .iter()
            .map(|p| read(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((suite, scenarios))
    } else {
        let sibling = path.parent().map(|d| d.join(SUITE_FILE));
        let suite = sibling
            .filter(|s| s.exists() && s.file_name() != path.file_name())
            .map(|s| read(&s))
            .transpose()?;
        Ok((suite, vec![read(path)?]))
    }
}

/// Parse and validate a suite into a `Plan`. `lookup` resolves `${ENV}` (the process
/// environment in production, a map in tests).
pub fn build_plan(
    suite_name: &str,
    suite: Option<&Source>,
    scenarios: &[Source],
    overrides: &Overrides,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, ConfigError> {
    let suite_file: SuiteFile = match suite {
        Some(src) => parse_yaml(src)?,
        None => SuiteFile::default(),
    };
    let suite_path = suite
        .map(|s| s.path.clone())
        .unwrap_or_else(|| PathBuf::from(SUITE_FILE));

    let target = match (&overrides.target, &suite_file.target) {
        (Some(flag), _) => parse_target(flag).map_err(|m| ConfigError::flag("--target", m))?,
        (None, Some(t)) => parse_target(&t.value)
            .map_err(|m| ConfigError::at(&suite_path, Some(t.referenced), "target", m))?,
        // Scenarios may not need one (an `llm:` scenario's `base_url`, an absolute request URL):
        // an empty host stands for "none" until every scenario has said where it goes.
        (None, None) => Target {
            tls: false,
            host: String::new(),
            port: 0,
            base_path: String::new(),
        },
    };

    let suite_thresholds = parse_thresholds(&suite_path, suite_file.thresholds.as_deref())?;
    let suite_tolerance = suite_file
        .tolerance
        .as_ref()
        .map(|t| spanned_tolerance(&suite_path, t))
        .transpose()?
        .unwrap_or(DEFAULT_TOLERANCE);
    let defaults = &suite_file.defaults;
    let default_timeout = defaults
        .timeout
        .as_ref()
        .map(|t| spanned_duration(&suite_path, "defaults.timeout", t))
        .transpose()?;
    let default_expect = defaults
        .expect
        .as_ref()
        .map(|e| flow::expect(&suite_path, "defaults.expect.status", e))
        .transpose()?;

    let mut plans: Vec<ScenarioPlan> = Vec::new();
    for src in scenarios {
        let raw: ScenarioFile = parse_yaml(src)?;
        let file = &src.path;
        let name = raw.name.value.trim().to_string();
        if name.is_empty() {
            return Err(ConfigError::at(
                file,
                Some(raw.name.referenced),
                "name",
                "must not be empty",
            ));
        }
        if let Some(other) = plans
            .iter()
            .find(|p| p.name == name || p.ramp.as_ref().is_some_and(|r| r.group == name))
        {
            return Err(ConfigError::at(
                file,
                Some(raw.name.referenced),
                "name",
                format!("`{name}` is already the name of {}", other.file.display()),
            ));
        }
        if !overrides.only.is_empty() && !overrides.only.contains(&name) {
            continue;
        }
        let mix = (raw.group.clone(), raw.weight.clone());
        let mut plan = scenario_plan(
            file,
            name,
            raw,
            &target,
            &suite_path,
            &suite_file,
            &suite_thresholds,
            default_timeout,
            default_expect.clone(),
            suite_tolerance,
            overrides,
            lookup,
        )?;
        mix::tag(file, &mut plan, mix)?;
        plans.extend(plan);
    }
    mix::split_rates(&mut plans)?;
    for wanted in &overrides.only {
        let named = |p: &ScenarioPlan| {
            &p.name == wanted || p.ramp.as_ref().is_some_and(|r| &r.group == wanted)
        };
        if !plans.iter().any(named) {
            return Err(ConfigError::flag(
                "--scenario",
                format!("no scenario named `{wanted}` in {suite_name}"),
            ));
        }
    }
    if plans.is_empty() {
        return Err(ConfigError::flag("--suite", format!("{suite_name} holds no scenario files"))
            .with_hint("a scenario is a .yml file with `name:` and `request:`; see scenarios/ for examples"));
    }
    let mut baseline = BaselinePolicy::default();
    if let Some(b) = &suite_file.baseline {
        if let Some(branch) = &b.branch {
            if branch.value.trim().is_empty() {
                return Err(ConfigError::at(
                    &suite_path,
                    Some(branch.referenced),
                    "baseline.branch",
                    "must not be empty",
                ));
            }
            baseline.branch = branch.value.trim().to_string();
        }
        if let Some(runs) = &b.runs {
            if !(1..=100).contains(&runs.value) {
                return Err(ConfigError::at(
                    &suite_path,
                    Some(runs.referenced),
                    "baseline.runs",
                    "must be 1 to 100",
                ));
            }
            baseline.runs = runs.value;
        }
    }
    let http2_prior_knowledge = overrides.http2_prior_knowledge || suite_file.http2_prior_knowledge;
    // A protocol forced by flag or suite.yml is part of what a scenario measures; the default
    // (ALPN over TLS, HTTP/1.1 on plain TCP) adds nothing, so existing hashes stay.
    for p in &mut plans {
        let forced = if overrides.http1_only {
            Some("http/1.1")
        } else if http2_prior_knowledge && !p.target.tls {
            Some("h2c")
        } else {
            None
        };
        if let Some(mode) = forced {
            p.hash = definition_hash_of(&serde_json::json!({ "scenario": p.hash, "http": mode }));
        }
    }
    let target = if target.host.is_empty() {
        match plans.iter().find(|p| p.target.host.is_empty()) {
            Some(p) => {
                return Err(ConfigError::flag(
                    "--target",
                    format!("no target to test (scenario `{}` needs one)", p.name),
                )
                .with_hint("pass --target http://HOST:PORT or set `target:` in suite.yml"));
            }
            None => plans[0].target.clone(),
        }
    } else {
        target
    };
    let (tls, resolve) = tls_and_resolve(&suite_path, &suite_file, overrides)?;
    Ok(Plan {
        tls,
        resolve,
        http2_prior_knowledge,
        http1_only: overrides.http1_only,
        baseline,
        suite: suite_file
            .name
            .clone()
            .unwrap_or_else(|| suite_name.to_string()),
        target,
        scenarios: plans,
    })
}

/// `tls:` and `resolve:` of suite.yml, with the flags on top (`--cacert` replaces `tls.ca`,
/// `--insecure` adds to `tls.insecure`, `--resolve` rules come first and so win).
fn tls_and_resolve(
    suite_path: &Path,
    suite: &SuiteFile,
    overrides: &Overrides,
) -> Result<(TlsPlan, Vec<ResolveRule>), ConfigError> {
    let base = suite_path.parent().unwrap_or(Path::new("."));
    let file = |field: &str, v: &Spanned<String>| -> Result<PathBuf, ConfigError> {
        let p = base.join(v.value.trim());
        if p.is_file() {
            Ok(p)
        } else {
            Err(ConfigError::at(
                suite_path,
                Some(v.referenced),
                field,
                format!("cannot read {}: no such file", p.display()),
            ))
        }
    };
    let spec = suite.tls.as_ref();
    let ca = match (&overrides.cacert, spec.and_then(|t| t.ca.as_ref())) {
        (Some(flag), _) if flag.is_file() => Some(flag.clone()),
        (Some(flag), _) => {
            return Err(ConfigError::flag(
                "--cacert",
                format!("cannot read {}: no such file", flag.display()),
            ));
        }
        (None, Some(v)) => Some(file("tls.ca", v)?),
        (None, None) => None,
    };
    let client_cert = match (
        spec.and_then(|t| t.cert.as_ref()),
        spec.and_then(|t| t.key.as_ref()),
    ) {
        (Some(c), Some(k)) => Some((file("tls.cert", c)?, file("tls.key", k)?)),
        (None, None) => None,
        (Some(c), None) => {
            return Err(ConfigError::at(
                suite_path,
                Some(c.referenced),
                "tls.cert",
                "a client certificate needs its private key: add `key: FILE`",
            ));
        }
        (None, Some(k)) => {
            return Err(ConfigError::at(
                suite_path,
                Some(k.referenced),
                "tls.key",
                "a private key needs its certificate: add `cert: FILE`",
            ));
        }
    };
    let tls = TlsPlan {
        ca,
        client_cert,
        insecure: overrides.insecure || spec.is_some_and(|t| t.insecure),
    };
    let mut resolve = Vec::new();
    for r in &overrides.resolve {
        resolve.push(ResolveRule::parse(r).map_err(|m| ConfigError::flag("--resolve", m))?);
    }
    for (i, r) in suite.resolve.iter().flatten().enumerate() {
        resolve.push(ResolveRule::parse(&r.value).map_err(|m| {
            ConfigError::at(suite_path, Some(r.referenced), &format!("resolve[{i}]"), m)
        })?);
    }
    Ok((tls, resolve))
}

#[allow(clippy::too_many_arguments)]
fn scenario_plan(
    file: &Path,
    name: String,
    raw: ScenarioFile,
    suite_target: &Target,
    suite_path: &Path,
    suite: &SuiteFile,
    suite_thresholds: &Option<Vec<Threshold>>,
    default_timeout: Option<Duration>,
    default_expect: Option<Expect>,
    suite_tolerance: f64,
    overrides: &Overrides,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<ScenarioPlan>, ConfigError> {
    if raw.llm.is_some() {
        let suite_scope = llm::SuiteScope {
            target: suite_target,
            path: suite_path,
            file: suite,
            tolerance: suite_tolerance,
        };
        return llm::scenario_plans(file, name, raw, &suite_scope, overrides, lookup);
    }
    if raw.llm.is_none() && raw.request.is_none() && raw.steps.is_none() {
        return Err(ConfigError::file(
            file,
            "a scenario needs `request:` (an HTTP endpoint), `steps:` (a flow) or `llm:` (an LLM API)",
        ));
    }
    let cx = flow::RequestScope {
        file,
        suite_target,
        suite_path,
        suite,
        default_timeout,
        lookup,
    };
    let wants_flow = raw.steps.is_some()
        || raw.data.is_some()
        || raw.setup.is_some()
        || raw.user_setup.is_some()
        || raw.teardown.is_some()
        || flow::has_checks(raw.expect.as_ref());
    if wants_flow {
        return flow_scenario(
            &cx,
            name,
            raw,
            default_expect,
            suite_thresholds,
            suite_tolerance,
            overrides,
        );
    }
    let req = raw.request.clone().expect("checked above");
    let flow::Compiled {
        target,
        request,
        header_sources,
    } = flow::request_plan(&cx, "request", &req, &template::Names::default())?;
    let method = request.method.clone();
    let expect = match &raw.expect {
        Some(e) if e.status.is_some() => flow::expect(file, "expect.status", e)?,
        _ => default_expect.unwrap_or_default(),
    };

    let load_spec = raw.load.clone().or(&suite.defaults.load);
    let (load, ramp_steps) = load(file, &load_spec, overrides)?;

    let thresholds = match parse_thresholds(file, raw.thresholds.as_deref())? {
        Some(t) => t,
        None => suite_thresholds.clone().unwrap_or_default(),
    };

    let tolerance = match &raw.tolerance {
        Some(t) => spanned_tolerance(file, t)?,
        None => suite_tolerance,
    };
    let hash = definition_hash(
        &method,
        &req.url.value,
        &header_sources,
        &req,
        &expect,
        &load,
    );
    Ok(ScenarioPlan {
        name,
        file: file.to_path_buf(),
        hash,
        target,
        request,
        expect,
        load,
        thresholds,
        tolerance,
        ramp: None,
        llm: None,
        flow: None,
        group: None,
    }
    .expand(ramp_steps))
}

/// A flow (`steps:`), or a `request:` scenario run by the flow engine (docs/flows.md).
fn flow_scenario(
    cx: &flow::RequestScope<'_>,
    name: String,
    raw: ScenarioFile,
    default_expect: Option<Expect>,
    suite_thresholds: &Option<Vec<Threshold>>,
    suite_tolerance: f64,
    overrides: &Overrides,
) -> Result<Vec<ScenarioPlan>, ConfigError> {
    let file = cx.file;
    let default_expect = default_expect.unwrap_or_default();
    let (target, flow, identity) = flow::flow_plan(cx, &raw, &default_expect)?;
    let load_spec = raw.load.clone().or(&cx.suite.defaults.load);
    let (load, ramp_steps) = load(file, &load_spec, overrides)?;
    let thresholds = match parse_thresholds(file, raw.thresholds.as_deref())? {
        Some(t) => t,
        None => suite_thresholds.clone().unwrap_or_default(),
    };
    let tolerance = match &raw.tolerance {
        Some(t) => spanned_tolerance(file, t)?,
        None => suite_tolerance,
    };
    let hash = definition_hash_of(&serde_json::json!({
        "flow": identity,
        "load": load.identity(),
    }));
    let first = &flow.steps[0];
    let (request, expect) = if flow.single {
        (first.request.clone(), first.expect.clone())
    } else {
        let mut request = first.request.clone();
        request.url_text = flow
            .steps
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(" → ");
        (request, Expect::default())
    };
    Ok(ScenarioPlan {
        name,
        file: file.to_path_buf(),
        hash,
        target,
        request,
        expect,
        load,
        thresholds,
        tolerance,
        ramp: None,
        llm: None,
        flow: Some(Arc::new(flow)),
        group: None,
    }
    .expand(ramp_steps))
}

/// FNV-1a over a canonical JSON rendering of what shapes the measurement. Stable across
/// formatting and comment changes; changes when the request, expectation or load changes.
fn definition_hash(
    method: &http::Method,
    url: &str,
    headers: &[(String, String)],
    req: &model::RequestSpec,
    expect: &Expect,
    load: &Load,
) -> String {
    let mut sorted_headers = headers.to_vec();
    sorted_headers.sort();
    definition_hash_of(&serde_json::json!({
        "method": method.as_str(),
        "url": url,
        "headers": sorted_headers,
        "json": req.json.as_ref().map(|j| &j.value),
        "body": req.body.as_ref().map(|b| &b.value),
        "expect": expect.statuses,
        "load": load.identity(),
    }))
}

/// A scenario identity from its canonical JSON (keys sorted by `serde_json`'s map): 16 hex digits
/// of FNV-1a over the compact rendering.
pub(crate) fn definition_hash_of(canonical: &serde_json::Value) -> String {
    crate::hash::fnv1a_hex(canonical.to_string().as_bytes())
}

#[cfg(test)]
mod tests;
