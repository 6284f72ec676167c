//! Flows in the load engine (a child of `worker`, so it shares a virtual user's `Ctx`): each
//! virtual user walks the steps in order, keeps the values its steps capture and a cookie jar,
//! and counts each step as its own endpoint plus one end-to-end row for the walk. See
//! docs/flows.md.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, COOKIE, HOST, HeaderValue, SET_COOKIE};

use super::{Answer, Ctx, Head, Shared, classify, drain_body};
use crate::config::template::Scope;
use crate::config::{Body, CaptureSource, CheckKind, Condition, FlowPlan, StepPlan};
use crate::engine::tally::{ErrorClass, Stats, Tallies};
use crate::record::micros;

/// One virtual user's state across walks: captured values, the data row of the current walk,
/// and cookies.
#[derive(Default)]
pub(super) struct UserState {
    pub vars: Vec<String>,
    pub row: Option<usize>,
    pub jar: CookieJar,
    /// `user_setup` ran (or failed: then the user stays idle).
    pub ready: Option<bool>,
}

/// Cookies of one virtual user. Every step of a flow goes to the one target, so the jar is
/// that host's: names and values, `Max-Age=0` or an empty value removing one.
#[derive(Default, Debug)]
pub(super) struct CookieJar {
    cookies: Vec<(String, String)>,
}

impl CookieJar {
    pub fn store(&mut self, set_cookie: &str) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim(), value.trim().trim_matches('"'));
        if name.is_empty() {
            return;
        }
        let expired = parts.any(|p| {
            let p = p.trim();
            p.len() >= 8
                && p[..8].eq_ignore_ascii_case("max-age=")
                && p[8..].trim().starts_with(['0', '-'])
        });
        self.cookies.retain(|(n, _)| n != name);
        if !expired && !value.is_empty() {
            self.cookies.push((name.to_string(), value.to_string()));
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `Cookie` header, if there is anything to send.
    pub fn header(&self) -> Option<String> {
        if self.cookies.is_empty() {
            return None;
        }
        Some(
            self.cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }
}

/// How a step failed.
#[derive(Debug)]
pub(super) enum StepError {
    Class(ErrorClass),
    Check(String),
    Capture(String),
}

impl StepError {
    fn count(&self, stats: &mut Stats) {
        match self {
            StepError::Class(c) => stats.record_error(*c),
            StepError::Check(name) => stats.record_named_error(&format!("check:{name}")),
            StepError::Capture(name) => stats.record_named_error(&format!("capture:{name}")),
        }
    }

    /// In words, for a setup step that failed.
    pub fn describe(&self, status: Option<u16>) -> String {
        let status = status.map(|s| format!(" (status {s})")).unwrap_or_default();
        match self {
            StepError::Class(c) => format!("{}{status}", c.name()),
            StepError::Check(name) => format!("check `{name}` failed{status}"),
            StepError::Capture(name) => format!("capture `{name}` found nothing{status}"),
        }
    }
}

pub(super) struct StepDone {
    pub status: Option<u16>,
    pub bytes: u64,
    pub headers_at: Option<Instant>,
    pub done: Instant,
    pub server_timing: Option<String>,
    pub result: Result<(), StepError>,
}

impl Ctx {
    /// One walk (or, for a one-step flow, one request), from `from`.
    pub(super) async fn flow_exchange(&mut self, mut from: Instant, measured: bool) {
        let shared = self.shared.clone();
        let flow = shared
            .scenario
            .flow
            .as_ref()
            .expect("a flow scenario")
            .clone();
        if self.user.as_ref().is_some_and(|u| u.ready == Some(false)) {
            // Its user_setup failed: this user sends nothing more.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            return;
        }
        // This walk's data row; a new user's `user_setup` sees it too.
        let row = match &flow.feeder {
            Some(feeder) => match feeder.next(&mut self.rng) {
                Some(r) => Some(r),
                None => return,
            },
            None => None,
        };
        if self.user.is_none() {
            let mut user = UserState {
                vars: shared.base_vars.clone(),
                row,
                ..UserState::default()
            };
            user.vars.resize(flow.vars.len(), String::new());
            let ok = self
                .run_steps(&flow, &flow.user_setup, &mut user)
                .await
                .is_ok();
            user.ready = Some(ok);
            self.user = Some(Box::new(user));
            if !flow.user_setup.is_empty() {
                // Setup is not measured: the walk starts now.
                from = from.max(Instant::now());
            }
        }
        let mut user = self.user.take().expect("set above");
        if user.ready == Some(false) {
            self.user = Some(user);
            return;
        }
        user.row = row;
        let mut step_from = from;
        let mut first_headers = None;
        let mut last_done = from;
        let mut failed = None;
        for (i, step) in flow.steps.iter().enumerate() {
            let r = self.step_exchange(&flow, step, &mut user, step_from).await;
            last_done = r.done;
            if i == 0 {
                first_headers = r.headers_at;
            }
            if measured {
                // A walk counts in the slice of its start, its steps with it.
                let mut stats = if flow.single {
                    self.tallies.at(from)
                } else {
                    self.tallies.step_at(i, from)
                };
                count_step(&mut stats, &self.progress, step_from, &r);
            }
            if let Err(e) = r.result {
                failed = Some(e);
                break;
            }
            step_from = r.done;
        }
        self.user = Some(user);
        if !measured || flow.single {
            return;
        }
        let mut stats = self.tallies.at(from);
        stats.sent_measured += 1;
        stats.last_done = Some(last_done);
        match failed {
            None => stats.record_success(
                micros(last_done - from),
                micros(first_headers.unwrap_or(last_done) - from),
            ),
            Some(e) => e.count(&mut stats),
        }
    }

    /// Steps run outside the measurement (setup, user_setup, teardown): the first failure,
    /// with the step's name, ends them.
    pub(super) async fn run_steps(
        &mut self,
        flow: &FlowPlan,
        steps: &[StepPlan],
        user: &mut UserState,
    ) -> Result<(), (String, String)> {
        for step in steps {
            let r = self.step_exchange(flow, step, user, Instant::now()).await;
            if let Err(e) = r.result {
                return Err((step.name.clone(), e.describe(r.status)));
            }
        }
        Ok(())
    }

    fn step_request(
        &mut self,
        flow: &FlowPlan,
        step: &StepPlan,
        user: &UserState,
    ) -> Result<hyper::Request<Full<Bytes>>, ErrorClass> {
        let req = &step.request;
        let row = match (&flow.feeder, user.row) {
            (Some(f), Some(r)) => f.row(r),
            _ => &[],
        };
        let scope = Scope {
            vars: &user.vars,
            row,
            feeder: flow.feeder.as_deref(),
        };
        self.buf.clear();
        req.path.render_in(&mut self.rng, &scope, &mut self.buf);
        let uri = self
            .buf
            .parse::<hyper::Uri>()
            .map_err(|_| ErrorClass::Other)?;
        let body = match &req.body {
            Some(Body::Json(t)) => {
                let mut s = String::with_capacity(128);
                t.render_in(&mut self.rng, &scope, &mut s);
                Bytes::from(s)
            }
            Some(Body::Text(t)) => {
                let mut s = String::new();
                t.render_in(&mut self.rng, &scope, &mut s);
                Bytes::from(s)
            }
            None => Bytes::new(),
        };
        let mut builder = hyper::Request::builder()
            .method(req.method.clone())
            .uri(uri)
            .header(HOST, self.shared.authority.clone());
        if matches!(req.body, Some(Body::Json(_)))
            && !req.headers.iter().any(|h| h.name == CONTENT_TYPE)
        {
            builder = builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let mut value = String::new();
        for h in &req.headers {
            value.clear();
            h.value.render_in(&mut self.rng, &scope, &mut value);
            let value = HeaderValue::from_str(&value).map_err(|_| ErrorClass::Other)?;
            builder = builder.header(h.name.clone(), value);
        }
        if let Some(cookies) = user.jar.header()
            && !req.headers.iter().any(|h| h.name == COOKIE)
        {
            let value = HeaderValue::from_str(&cookies).map_err(|_| ErrorClass::Other)?;
            builder = builder.header(COOKIE, value);
        }
        builder.body(Full::new(body)).map_err(|_| ErrorClass::Other)
    }

    /// One step: send, read, then status, checks and captures (in that order; the first
    /// failure is the step's).
    pub(super) async fn step_exchange(
        &mut self,
        flow: &FlowPlan,
        step: &StepPlan,
        user: &mut UserState,
        from: Instant,
    ) -> StepDone {
        let deadline = tokio::time::Instant::from_std(from + step.request.timeout);
        let got = tokio::time::timeout_at(deadline, self.step_send(flow, step, user)).await;
        let done = Instant::now();
        let got = match got {
            Ok(r) => r,
            Err(_) => {
                self.conn = None;
                Err(ErrorClass::Timeout)
            }
        };
        let got = match got {
            Ok(g) => g,
            Err(class) => {
                return StepDone {
                    status: None,
                    bytes: 0,
                    headers_at: None,
                    done,
                    server_timing: None,
                    result: Err(StepError::Class(class)),
                };
            }
        };
        let result = judge(step, &got, user);
        StepDone {
            status: Some(got.status),
            bytes: got.bytes,
            headers_at: Some(got.headers_at),
            done,
            server_timing: got.server_timing,
            result,
        }
    }

    async fn step_send(
        &mut self,
        flow: &FlowPlan,
        step: &StepPlan,
        user: &mut UserState,
    ) -> Result<Got, ErrorClass> {
        let request = self.step_request(flow, step, user)?;
        self.ensure_connected().await?;
        let sender = self.conn.as_mut().ok_or(ErrorClass::Connect)?;
        let Some(sent) = sender.send_request(request) else {
            return Err(ErrorClass::Other);
        };
        let response = match sent.await {
            Ok(r) => r,
            Err(e) => {
                self.conn = None;
                return Err(classify(&e));
            }
        };
        let head = Head::of(&response);
        for c in response.headers().get_all(SET_COOKIE) {
            if let Ok(c) = c.to_str() {
                user.jar.store(c);
            }
        }
        let (parts, mut body) = response.into_parts();
        let mut kept = Vec::new();
        let bytes = match drain_body(&mut body, step.needs_body.then_some(&mut kept)).await {
            Ok(n) => n,
            Err(class) => {
                self.conn = None;
                return Err(class);
            }
        };
        if head.closes {
            self.conn = None;
        }
        let Head {
            status,
            headers_at,
            server_timing,
            ..
        } = head;
        Ok(Got {
            status,
            headers_at,
            headers: parts.headers,
            body: kept,
            bytes,
            server_timing,
        })
    }
}

/// A response, read whole.
struct Got {
    status: u16,
    headers_at: Instant,
    headers: hyper::HeaderMap,
    body: Vec<u8>,
    bytes: u64,
    server_timing: Option<String>,
}

/// Status, checks, then captures (which write the user's values).
fn judge(step: &StepPlan, got: &Got, user: &mut UserState) -> Result<(), StepError> {
    if !step.expect.accepts(got.status) {
        return Err(StepError::Class(match got.status {
            400..=499 => ErrorClass::Http4xx,
            500..=599 => ErrorClass::Http5xx,
            _ => ErrorClass::Expectation,
        }));
    }
    let mut json: Option<Option<serde_json::Value>> = None;
    let mut parsed = |body: &[u8]| -> Option<serde_json::Value> {
        json.get_or_insert_with(|| serde_json::from_slice(body).ok())
            .clone()
    };
    for check in &step.checks {
        let ok = match &check.kind {
            CheckKind::Json(path, cond) => match parsed(&got.body) {
                Some(doc) => holds(cond, path.query(&doc).first()),
                None => false,
            },
            CheckKind::BodyContains(text) => memmem(&got.body, text.as_bytes()),
            CheckKind::Header(name, text) => got.headers.get_all(name).iter().any(|v| {
                v.to_str()
                    .is_ok_and(|v| v.to_ascii_lowercase().contains(text.as_str()))
            }),
        };
        if !ok {
            return Err(StepError::Check(check.name.clone()));
        }
    }
    for c in &step.captures {
        let value = match &c.source {
            CaptureSource::Json(path) => parsed(&got.body).and_then(|doc| {
                path.query(&doc).first().map(|v| match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            }),
            CaptureSource::Header(name) => got
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            CaptureSource::Regex(re) => std::str::from_utf8(&got.body)
                .ok()
                .and_then(|b| re.captures(b))
                .and_then(|m| m.get(1))
                .map(|m| m.as_str().to_string()),
            CaptureSource::Cookie(name) => user.jar.get(name).map(str::to_string),
        };
        match value {
            Some(v) => {
                if let Some(slot) = user.vars.get_mut(c.slot) {
                    *slot = v;
                }
            }
            None => return Err(StepError::Capture(c.name.clone())),
        }
    }
    Ok(())
}

fn memmem(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn holds(cond: &Condition, node: Option<&serde_json::Value>) -> bool {
    use serde_json::Value;
    match (cond, node) {
        (Condition::Exists, n) => n.is_some(),
        (Condition::Absent, n) => n.is_none(),
        (_, None) => false,
        (Condition::Length(op, n), Some(v)) => {
            let len = match v {
                Value::Array(a) => a.len(),
                Value::Object(o) => o.len(),
                Value::String(s) => s.chars().count(),
                _ => return false,
            };
            (len as f64).partial_cmp(n).is_some_and(|o| op.holds(o))
        }
        (Condition::Compare(op, want), Some(v)) => match (v.as_f64(), want.as_f64()) {
            (Some(a), Some(b)) => a.partial_cmp(&b).is_some_and(|o| op.holds(o)),
            _ => {
                let eq = v == want;
                match op {
                    crate::config::CmpOp::Eq => eq,
                    crate::config::CmpOp::Ne => !eq,
                    _ => false,
                }
            }
        },
    }
}

/// Count one measured step into its endpoint's tally.
fn count_step(stats: &mut Stats, progress: &super::Progress, from: Instant, r: &StepDone) {
    let answer = Answer {
        status: r.status,
        bytes: r.bytes,
        result: match (&r.result, r.headers_at) {
            (Ok(()), Some(h)) => Ok(h),
            (Ok(()), None) => Err(ErrorClass::Other),
            (Err(StepError::Class(c)), _) => Err(*c),
            // Named failures are counted below, by name.
            (Err(_), _) => Err(ErrorClass::Other),
        },
    };
    match &r.result {
        Err(e @ (StepError::Check(_) | StepError::Capture(_))) => {
            progress
                .done
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            progress
                .failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            stats.sent_measured += 1;
            stats.last_done = Some(r.done);
            if let Some(s) = r.status {
                stats.record_status(s);
            }
            stats.bytes += r.bytes;
            e.count(stats);
        }
        _ => super::tally_into(stats, progress, from, r.done, answer),
    }
    if r.result.is_ok()
        && let Some(st) = &r.server_timing
    {
        stats.add_server_timing(st);
    }
}

/// Setup or teardown: `steps` run once on a thread of their own, outside the measurement.
/// Returns the values they captured (every user's starting values, after setup), or the
/// failed step's name and what went wrong.
pub fn run_once(shared: Arc<Shared>, steps: &'static str) -> Result<Vec<String>, (String, String)> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| (steps.to_string(), e.to_string()))?;
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, async {
                    let flow = shared.scenario.flow.clone().expect("a flow scenario");
                    let list = match steps {
                        "setup" => &flow.setup,
                        _ => &flow.teardown,
                    };
                    let tallies = Rc::new(Tallies::new(shared.measure_start, None, 1, 0));
                    let progress = Arc::new(super::Progress::default());
                    let mut ctx = Ctx::new(&shared, &tallies, &progress, u64::MAX);
                    let mut user = UserState {
                        vars: shared.base_vars.clone(),
                        ..UserState::default()
                    };
                    user.vars.resize(flow.vars.len(), String::new());
                    ctx.run_steps(&flow, list, &mut user).await?;
                    Ok(user.vars)
                })
            })
            .join()
            .unwrap_or_else(|_| Err((steps.to_string(), "panicked".to_string())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_jar_keeps_replaces_and_expires() {
        let mut jar = CookieJar::default();
        assert_eq!(jar.header(), None);
        jar.store("session=abc; Path=/; HttpOnly");
        jar.store("theme=dark");
        assert_eq!(jar.header().unwrap(), "session=abc; theme=dark");
        jar.store("session=xyz; Max-Age=3600");
        assert_eq!(jar.get("session"), Some("xyz"));
        jar.store("theme=; Max-Age=0");
        assert_eq!(jar.header().unwrap(), "session=xyz");
        jar.store("garbage");
        assert_eq!(jar.header().unwrap(), "session=xyz");
    }

    #[test]
    fn conditions_hold_on_json() {
        use crate::config::CmpOp;
        let v = serde_json::json!([1, 2, 3]);
        assert!(holds(&Condition::Length(CmpOp::Ge, 3.0), Some(&v)));
        assert!(!holds(&Condition::Length(CmpOp::Gt, 3.0), Some(&v)));
        assert!(holds(&Condition::Exists, Some(&v)));
        assert!(!holds(&Condition::Exists, None));
        assert!(holds(&Condition::Absent, None));
        let s = serde_json::json!("paid");
        assert!(holds(
            &Condition::Compare(CmpOp::Eq, serde_json::json!("paid")),
            Some(&s)
        ));
        assert!(holds(
            &Condition::Compare(CmpOp::Ne, serde_json::json!("x")),
            Some(&s)
        ));
        let n = serde_json::json!(7);
        assert!(holds(
            &Condition::Compare(CmpOp::Gt, serde_json::json!(0)),
            Some(&n)
        ));
        assert!(!holds(
            &Condition::Compare(CmpOp::Lt, serde_json::json!(0)),
            Some(&n)
        ));
    }
}
