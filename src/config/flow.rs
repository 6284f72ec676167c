//! Requests as YAML → `RequestPlan`, shared by `request:` scenarios and the steps of flows, and
//! flows themselves (`steps:`, `setup:`, `user_setup:`, `teardown:`, `capture:`, checks in
//! `expect:`, `data:`). See docs/flows.md.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::error::ConfigError;
use super::fields::parse_target;
use super::fields::spanned_duration;
use super::model::{ExpectSpec, RequestSpec, ScenarioFile, StepSpec, SuiteFile};
use super::plan::*;
use super::template::{JsonTemplate, Names, Template, expand_env};

pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What compiling a request needs from around it.
pub(super) struct RequestScope<'a> {
    pub file: &'a Path,
    pub suite_target: &'a Target,
    pub suite_path: &'a Path,
    pub suite: &'a SuiteFile,
    pub default_timeout: Option<Duration>,
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
}

/// A compiled request, where it goes, and its headers as written (for the definition hash).
pub(super) struct Compiled {
    pub target: Target,
    pub request: RequestPlan,
    pub header_sources: Vec<(String, String)>,
}

/// Compile one request. `prefix` names it in errors (`request`, `steps[1]`); `names` are the
/// captured values and data columns in scope.
pub(super) fn request_plan(
    cx: &RequestScope<'_>,
    prefix: &str,
    req: &RequestSpec,
    names: &Names,
) -> Result<Compiled, ConfigError> {
    let file = cx.file;
    let method_text = req
        .method
        .as_ref()
        .map(|m| m.value.as_str())
        .unwrap_or("GET");
    let method: http::Method = method_text.to_ascii_uppercase().parse().map_err(|_| {
        ConfigError::at(
            file,
            req.method.as_ref().map(|m| m.referenced),
            &format!("{prefix}.method"),
            format!("`{method_text}` is not an HTTP method"),
        )
    })?;

    // URL: a path relative to the target, or an absolute http URL of its own.
    let url_loc = Some(req.url.referenced);
    let url_field = format!("{prefix}.url");
    let url_err = |m: String| ConfigError::at(file, url_loc, &url_field, m);
    let (expanded, _) = expand_env(&req.url.value, cx.lookup).map_err(url_err)?;
    let (target, path_text) = if expanded.starts_with('/') {
        (
            cx.suite_target.clone(),
            format!("{}{}", cx.suite_target.base_path, expanded),
        )
    } else if expanded.starts_with("http://") || expanded.starts_with("https://") {
        let after_scheme = expanded.find("://").map(|i| i + 3).unwrap_or(0);
        let path_start = expanded[after_scheme..]
            .find('/')
            .map(|i| i + after_scheme)
            .unwrap_or(expanded.len());
        let t = parse_target(&expanded[..path_start]).map_err(url_err)?;
        let path = if path_start == expanded.len() {
            "/".to_string()
        } else {
            expanded[path_start..].to_string()
        };
        (t, path)
    } else {
        return Err(url_err(format!(
            "`{}` must be a path starting with `/` (the host comes from the target) or an http:// or https:// URL",
            req.url.value
        )));
    };
    let path = Template::parse_with(&path_text, names).map_err(url_err)?;
    // Validate the shape once with generators filled in (names as `1`): a URL that cannot
    // parse would fail every request at run time.
    let ones: Vec<String> = names.vars.iter().map(|_| "1".to_string()).collect();
    let row: Vec<Box<str>> = names.columns.iter().map(|_| "1".into()).collect();
    let scope = super::template::Scope {
        vars: &ones,
        row: &row,
        feeder: None,
    };
    let mut sample = String::new();
    path.render_in(
        &mut <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(1),
        &scope,
        &mut sample,
    );
    sample
        .parse::<http::Uri>()
        .ok()
        .filter(|u| u.scheme().is_none() && u.path().starts_with('/'))
        .ok_or_else(|| {
            url_err(format!(
                "`{}` does not make a valid URL path (got `{sample}`)",
                req.url.value
            ))
        })?;

    // Headers: suite defaults, then the request's.
    let mut headers: Vec<HeaderPlan> = Vec::new();
    let mut header_sources: Vec<(String, String)> = Vec::new();
    let request_headers = format!("{prefix}.headers");
    let header_sets = [
        (
            cx.suite_path,
            &cx.suite.defaults.headers,
            "defaults.headers",
        ),
        (file, &req.headers, request_headers.as_str()),
    ];
    for (hfile, set, hprefix) in header_sets {
        for (name, value) in set {
            let field = format!("{hprefix}.{name}");
            let err = |m: String| ConfigError::at(hfile, Some(value.referenced), &field, m);
            let header_name = http::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| err(format!("`{name}` is not a valid header name")))?;
            let (expanded, secret) = expand_env(&value.value, cx.lookup).map_err(err)?;
            let template = Template::parse_with(&expanded, names).map_err(err)?;
            if expanded.contains(['\r', '\n']) {
                return Err(err("header values cannot contain line breaks".into()));
            }
            headers.retain(|h| h.name != header_name);
            header_sources.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            header_sources.push((name.to_ascii_lowercase(), value.value.clone()));
            headers.push(HeaderPlan {
                name: header_name,
                value: template,
                secret,
            });
        }
    }

    let body = match (&req.json, &req.body) {
        (Some(_), Some(b)) => {
            return Err(ConfigError::at(
                file,
                Some(b.referenced),
                &format!("{prefix}.body"),
                "use either `json:` or `body:`, not both",
            ));
        }
        (Some(j), None) => {
            let field = format!("{prefix}.json");
            let mut used = false;
            let t = JsonTemplate::compile_with(&j.value, cx.lookup, &field, &mut used, names)
                .map_err(|m| ConfigError::at(file, Some(j.referenced), &field, m))?;
            Some(Body::Json(t))
        }
        (None, Some(b)) => {
            let field = format!("{prefix}.body");
            let (expanded, _) = expand_env(&b.value, cx.lookup)
                .map_err(|m| ConfigError::at(file, Some(b.referenced), &field, m))?;
            let t = Template::parse_with(&expanded, names)
                .map_err(|m| ConfigError::at(file, Some(b.referenced), &field, m))?;
            Some(Body::Text(t))
        }
        (None, None) => None,
    };

    let timeout = match &req.timeout {
        Some(t) => spanned_duration(file, &format!("{prefix}.timeout"), t)?,
        None => cx.default_timeout.unwrap_or(DEFAULT_TIMEOUT),
    };
    if timeout.is_zero() {
        return Err(ConfigError::at(
            file,
            req.timeout.as_ref().map(|t| t.referenced),
            &format!("{prefix}.timeout"),
            "must be above zero",
        ));
    }
    Ok(Compiled {
        target,
        request: RequestPlan {
            method,
            url_text: req.url.value.clone(),
            path,
            headers,
            body,
            timeout,
        },
        header_sources,
    })
}

/// The accepted statuses of an `expect:` (any 2xx/3xx when it names none).
pub(super) fn expect(file: &Path, field: &str, spec: &ExpectSpec) -> Result<Expect, ConfigError> {
    let Some(status) = &spec.status else {
        return Ok(Expect::default());
    };
    let bad = |what: &serde_json::Value| {
        ConfigError::at(
            file,
            Some(status.referenced),
            field,
            format!(
                "{what} is not an HTTP status (100-599); write e.g. `status: 201` or `status: [200, 204]`"
            ),
        )
    };
    let as_status = |v: &serde_json::Value| {
        v.as_u64()
            .filter(|s| (100..=599).contains(s))
            .map(|s| s as u16)
            .ok_or_else(|| bad(v))
    };
    let statuses = match &status.value {
        serde_json::Value::Array(items) => {
            items.iter().map(as_status).collect::<Result<Vec<_>, _>>()?
        }
        one => vec![as_status(one)?],
    };
    Ok(Expect { statuses })
}

/// Does this `expect:` check more than the status?
pub(super) fn has_checks(spec: Option<&ExpectSpec>) -> bool {
    spec.is_some_and(|e| e.json.is_some() || e.body_contains.is_some() || e.header.is_some())
}

/// The checks of an `expect:` beyond its status.
pub(super) fn checks(
    file: &Path,
    prefix: &str,
    spec: Option<&ExpectSpec>,
) -> Result<Vec<Check>, ConfigError> {
    let Some(spec) = spec else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (path, cond) in spec.json.iter().flatten() {
        let field = format!("{prefix}.json.{path}");
        let err = |m: String| ConfigError::at(file, Some(cond.referenced), &field, m);
        let jp = json_path(path).map_err(err)?;
        let condition = parse_condition(&cond.value).map_err(err)?;
        out.push(Check {
            name: format!("{path} {}", cond.value.trim()),
            kind: CheckKind::Json(jp, condition),
        });
    }
    if let Some(text) = &spec.body_contains {
        if text.value.is_empty() {
            return Err(ConfigError::at(
                file,
                Some(text.referenced),
                &format!("{prefix}.body_contains"),
                "must not be empty",
            ));
        }
        out.push(Check {
            name: format!("body contains {:?}", text.value),
            kind: CheckKind::BodyContains(text.value.clone()),
        });
    }
    for (name, text) in spec.header.iter().flatten() {
        let header = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ConfigError::at(
                file,
                Some(text.referenced),
                &format!("{prefix}.header.{name}"),
                format!("`{name}` is not a valid header name"),
            )
        })?;
        out.push(Check {
            name: format!("header {name} contains {:?}", text.value),
            kind: CheckKind::Header(header, text.value.to_ascii_lowercase()),
        });
    }
    Ok(out)
}

fn json_path(text: &str) -> Result<serde_json_path::JsonPath, String> {
    serde_json_path::JsonPath::parse(text.trim())
        .map_err(|e| format!("`{text}` is not a JSONPath (e.g. `$.items[0].id`): {e}"))
}

/// `exists`, `absent`, `length OP N`, `OP VALUE` (a JSON literal: `3`, `"paid"`, `true`).
pub(super) fn parse_condition(text: &str) -> Result<Condition, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "`{t}` is not a condition; write `exists`, `absent`, `length >= 3`, `== \"paid\"` or `> 0`"
        )
    };
    match t {
        "exists" => return Ok(Condition::Exists),
        "absent" | "not exists" => return Ok(Condition::Absent),
        _ => {}
    }
    let (is_length, rest) = match t.strip_prefix("length") {
        Some(r) => (true, r.trim_start()),
        None => (false, t),
    };
    let ops = [
        ("==", CmpOp::Eq),
        ("!=", CmpOp::Ne),
        ("<=", CmpOp::Le),
        (">=", CmpOp::Ge),
        ("<", CmpOp::Lt),
        (">", CmpOp::Gt),
    ];
    let (op, value) = ops
        .iter()
        .find_map(|(s, op)| rest.strip_prefix(s).map(|v| (*op, v.trim())))
        .ok_or_else(bad)?;
    let value: serde_json::Value = serde_json::from_str(value).map_err(|_| bad())?;
    if is_length {
        let n = value.as_f64().ok_or_else(bad)?;
        Ok(Condition::Length(op, n))
    } else {
        if !matches!(op, CmpOp::Eq | CmpOp::Ne) && !value.is_number() {
            return Err(bad());
        }
        Ok(Condition::Compare(op, value))
    }
}

fn capture(
    file: &Path,
    field: &str,
    name: &str,
    spec: &Spanned<serde_json::Value>,
    slot: usize,
) -> Result<Capture, ConfigError> {
    let err = |m: String| ConfigError::at(file, Some(spec.referenced), field, m);
    let how = "write a JSONPath (`$.id`) or one of `{ json: $.id }`, `{ header: etag }`, `{ regex: 'id=(\\d+)' }`, `{ cookie: session }`";
    let (kind, text) = match &spec.value {
        serde_json::Value::String(s) if s.trim_start().starts_with('$') => ("json", s.as_str()),
        serde_json::Value::Object(m) if m.len() == 1 => {
            let (k, v) = m.iter().next().expect("one entry");
            let v = v
                .as_str()
                .ok_or_else(|| err(format!("`{k}:` takes a text; {how}")))?;
            (k.as_str(), v)
        }
        _ => return Err(err(format!("cannot tell where `{name}` comes from; {how}"))),
    };
    let source = match kind {
        "json" => CaptureSource::Json(json_path(text).map_err(err)?),
        "header" => CaptureSource::Header(
            http::HeaderName::from_bytes(text.trim().as_bytes())
                .map_err(|_| err(format!("`{text}` is not a header name")))?,
        ),
        "regex" => {
            let re = regex::Regex::new(text)
                .map_err(|e| err(format!("`{text}` is not a regex: {e}")))?;
            if re.captures_len() < 2 {
                return Err(err(format!(
                    "`{text}` has no capture group: put the value in parentheses, e.g. `id=(\\d+)`"
                )));
            }
            CaptureSource::Regex(re)
        }
        "cookie" if !text.trim().is_empty() => CaptureSource::Cookie(text.trim().to_string()),
        _ => return Err(err(format!("unknown capture `{kind}:`; {how}"))),
    };
    Ok(Capture {
        name: name.to_string(),
        slot,
        source,
    })
}

fn valid_capture_name(name: &str) -> bool {
    !name.is_empty()
        && name != "data"
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Steps of one list (`steps`, `setup`, ...): compiled in order, each seeing the names captured
/// before it; its own captures are added to `names` for the steps after it.
#[allow(clippy::too_many_arguments)]
fn step_list(
    cx: &RequestScope<'_>,
    list: &str,
    specs: &[StepSpec],
    names: &mut Names,
    default_expect: &Expect,
    target: &mut Option<Target>,
    seen: &mut Vec<String>,
) -> Result<Vec<StepPlan>, ConfigError> {
    let file = cx.file;
    let mut out = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let prefix = format!("{list}[{i}]");
        let name = spec.name.value.trim().to_string();
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !name_ok {
            return Err(ConfigError::at(
                file,
                Some(spec.name.referenced),
                &format!("{prefix}.name"),
                "a step name is letters, digits, `-`, `_` or `.` (it names an endpoint: `flow/step`)",
            ));
        }
        if seen.contains(&name) {
            return Err(ConfigError::at(
                file,
                Some(spec.name.referenced),
                &format!("{prefix}.name"),
                format!("`{name}` names another step of this scenario already"),
            ));
        }
        seen.push(name.clone());
        let compiled = request_plan(cx, &prefix, &spec.request(), names)?;
        match target {
            Some(t) if *t != compiled.target => {
                return Err(ConfigError::at(
                    file,
                    Some(spec.url.referenced),
                    &format!("{prefix}.url"),
                    format!(
                        "every step of a flow goes to one target ({}); this one goes to {}",
                        t.url(),
                        compiled.target.url()
                    ),
                ));
            }
            Some(_) => {}
            None => *target = Some(compiled.target.clone()),
        }
        let expect = match spec.expect.as_ref().and_then(|e| e.status.as_ref()) {
            Some(_) => expect(
                file,
                &format!("{prefix}.expect.status"),
                spec.expect.as_ref().expect("checked"),
            )?,
            None => default_expect.clone(),
        };
        let checks = checks(file, &format!("{prefix}.expect"), spec.expect.as_ref())?;
        let mut captures = Vec::new();
        for (cname, cspec) in &spec.capture {
            let field = format!("{prefix}.capture.{cname}");
            if !valid_capture_name(cname) {
                return Err(ConfigError::at(
                    file,
                    Some(cspec.referenced),
                    &field,
                    format!(
                        "`{cname}` cannot name a value (letters, digits, `_`, `-`; not `data`)"
                    ),
                ));
            }
            let slot = match names.vars.iter().position(|v| v == cname) {
                Some(s) => s,
                None => {
                    names.vars.push(cname.clone());
                    names.vars.len() - 1
                }
            };
            captures.push(capture(file, &field, cname, cspec, slot)?);
        }
        let needs_body = captures
            .iter()
            .any(|c| matches!(c.source, CaptureSource::Json(_) | CaptureSource::Regex(_)))
            || checks
                .iter()
                .any(|c| matches!(c.kind, CheckKind::Json(..) | CheckKind::BodyContains(_)));
        let hash = crate::hash::fnv1a_hex(
            serde_json::json!({
                "method": compiled.request.method.as_str(),
                "url": spec.url.value,
                "headers": compiled.header_sources,
                "json": spec.json.as_ref().map(|j| &j.value),
                "body": spec.body.as_ref().map(|b| &b.value),
                "expect": expect.statuses,
                "checks": checks.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
            })
            .to_string()
            .as_bytes(),
        );
        out.push(StepPlan {
            name,
            request: compiled.request,
            expect,
            checks,
            captures,
            needs_body,
            hash,
        });
    }
    Ok(out)
}

/// The data file of a scenario, if it has one, and the names of its columns.
fn feeder(file: &Path, raw: &ScenarioFile) -> Result<Option<Arc<Feeder>>, ConfigError> {
    let Some(spec) = &raw.data else {
        return Ok(None);
    };
    let order = match spec.order.as_ref().map(|o| o.value.trim()) {
        None | Some("sequential") => Order::Sequential,
        Some("random") => Order::Random,
        Some("unique") => Order::Unique,
        Some(other) => {
            return Err(ConfigError::at(
                file,
                spec.order.as_ref().map(|o| o.referenced),
                "data.order",
                format!("`{other}` is not an order: sequential, random or unique"),
            ));
        }
    };
    let on_exhausted = match spec.on_exhausted.as_ref().map(|o| o.value.trim()) {
        None if order == Order::Unique => Exhausted::Stop,
        None | Some("wrap") => Exhausted::Wrap,
        Some("stop") => Exhausted::Stop,
        Some(other) => {
            return Err(ConfigError::at(
                file,
                spec.on_exhausted.as_ref().map(|o| o.referenced),
                "data.on_exhausted",
                format!("`{other}` is not `stop` or `wrap`"),
            ));
        }
    };
    let rel = spec.file.value.trim();
    let path = file.parent().unwrap_or(Path::new(".")).join(rel);
    Feeder::load(&path, rel, order, on_exhausted)
        .map(|f| Some(Arc::new(f)))
        .map_err(|m| ConfigError::at(file, Some(spec.file.referenced), "data.file", m))
}

/// A flow scenario (`steps:`), or a `request:` scenario that needs the flow engine (a data
/// file, checks on the body): its target, the plan, and the definition's hash material.
pub(super) fn flow_plan(
    cx: &RequestScope<'_>,
    raw: &ScenarioFile,
    default_expect: &Expect,
) -> Result<(Target, FlowPlan, serde_json::Value), ConfigError> {
    let file = cx.file;
    let feeder = feeder(file, raw)?;
    let mut names = Names {
        vars: Vec::new(),
        columns: feeder
            .as_ref()
            .map(|f| f.columns.clone())
            .unwrap_or_default(),
        data_file: feeder.as_ref().map(|f| f.file.clone()).unwrap_or_default(),
        flow: true,
    };
    let mut target = None;
    let mut seen = Vec::new();
    let empty = Vec::new();
    let (setup, user_setup) = {
        // Setup runs before any row is taken: no `data.` there.
        let mut setup_names = Names {
            flow: true,
            ..Names::default()
        };
        let setup = step_list(
            cx,
            "setup",
            raw.setup.as_ref().unwrap_or(&empty),
            &mut setup_names,
            default_expect,
            &mut target,
            &mut seen,
        )?;
        names.vars = setup_names.vars;
        let user_setup = step_list(
            cx,
            "user_setup",
            raw.user_setup.as_ref().unwrap_or(&empty),
            &mut names,
            default_expect,
            &mut target,
            &mut seen,
        )?;
        (setup, user_setup)
    };
    let (steps, single) = match (&raw.steps, &raw.request) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::file(
                file,
                "a scenario has either `request:` or `steps:`, not both",
            ));
        }
        (Some(list), None) => {
            if list.is_empty() {
                return Err(ConfigError::file(file, "`steps:` is empty: add a step"));
            }
            (
                step_list(
                    cx,
                    "steps",
                    list,
                    &mut names,
                    default_expect,
                    &mut target,
                    &mut seen,
                )?,
                false,
            )
        }
        (None, Some(req)) => {
            let compiled = request_plan(cx, "request", req, &names)?;
            if target.as_ref().is_some_and(|t| *t != compiled.target) {
                return Err(ConfigError::at(
                    file,
                    Some(req.url.referenced),
                    "request.url",
                    "setup and the request go to different targets",
                ));
            }
            target = Some(compiled.target.clone());
            let expect = match raw.expect.as_ref().and_then(|e| e.status.as_ref()) {
                Some(_) => expect(file, "expect.status", raw.expect.as_ref().expect("checked"))?,
                None => default_expect.clone(),
            };
            let checks = checks(file, "expect", raw.expect.as_ref())?;
            let needs_body = checks
                .iter()
                .any(|c| matches!(c.kind, CheckKind::Json(..) | CheckKind::BodyContains(_)));
            (
                vec![StepPlan {
                    name: raw.name.value.trim().to_string(),
                    request: compiled.request,
                    expect,
                    checks,
                    captures: Vec::new(),
                    needs_body,
                    hash: String::new(),
                }],
                true,
            )
        }
        (None, None) => {
            return Err(ConfigError::file(
                file,
                "a scenario needs `request:` (an HTTP endpoint), `steps:` (a flow) or `llm:` (an LLM API)",
            ));
        }
    };
    let teardown = step_list(
        cx,
        "teardown",
        raw.teardown.as_ref().unwrap_or(&empty),
        &mut names,
        default_expect,
        &mut target,
        &mut seen,
    )?;
    let identity = serde_json::json!({
        "steps": steps.iter().map(|s| (&s.name, &s.hash)).collect::<Vec<_>>(),
        "request": raw.request.as_ref().map(|r| serde_json::json!({
            "method": r.method.as_ref().map(|m| &m.value),
            "url": r.url.value,
            "json": r.json.as_ref().map(|j| &j.value),
            "body": r.body.as_ref().map(|b| &b.value),
        })),
        "checks": steps.iter().flat_map(|s| s.checks.iter().map(|c| c.name.clone())).collect::<Vec<_>>(),
        "data": raw.data.as_ref().map(|d| (
            &d.file.value,
            d.order.as_ref().map(|o| &o.value),
            d.on_exhausted.as_ref().map(|o| &o.value),
        )),
    });
    let target = target.unwrap_or_else(|| cx.suite_target.clone());
    Ok((
        target,
        FlowPlan {
            steps,
            setup,
            user_setup,
            teardown,
            vars: names.vars,
            feeder,
            single,
        },
        identity,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse() {
        assert_eq!(parse_condition("exists").unwrap(), Condition::Exists);
        assert_eq!(parse_condition(" absent ").unwrap(), Condition::Absent);
        assert_eq!(
            parse_condition("length >= 3").unwrap(),
            Condition::Length(CmpOp::Ge, 3.0)
        );
        assert_eq!(
            parse_condition("== \"paid\"").unwrap(),
            Condition::Compare(CmpOp::Eq, serde_json::json!("paid"))
        );
        assert_eq!(
            parse_condition("> 0").unwrap(),
            Condition::Compare(CmpOp::Gt, serde_json::json!(0))
        );
        for bad in ["is big", "length big", "> \"a\"", "=< 3", ""] {
            assert!(parse_condition(bad).is_err(), "{bad}");
        }
    }
}
