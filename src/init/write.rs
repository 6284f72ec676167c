//! What `gate init` writes: from a survey, one scenario per chosen route (with a feeder CSV of
//! the ids seen) and a `suite.yml`; without one, a starter suite and the PR workflow. Text
//! only: the command decides where it goes and whether it may replace anything.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::route::{self, Kind};
use super::survey::{RouteStats, Survey};

/// Thresholds are the observed percentile times this, rounded up to two significant digits.
pub const THRESHOLD_MARGIN: f64 = 1.5;
/// Suite target when `--target` is not given.
pub const PLACEHOLDER_TARGET: &str = "http://127.0.0.1:8080";
/// A route is written only when at least this share of its responses succeeded (< 400).
const MIN_OK_SHARE: f64 = 0.5;

#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub top: usize,
    pub scale: f64,
    pub include_writes: bool,
    pub target: Option<String>,
    /// The log's file name, for the comments in the files.
    pub source: String,
}

/// What happens to one route of the ranking.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Written as `<name>.yml` (and `<name>.ids.csv` when it has parameters).
    Write { name: String },
    /// Not written, and why (for the summary and a warning).
    Skip(String),
}

/// A route of the ranking and what happens to it.
#[derive(Debug)]
pub struct Choice<'s> {
    pub route: &'s RouteStats,
    pub decision: Decision,
}

/// One file to write, its path relative to the output directory (or, for the workflow, to the
/// repository root).
#[derive(Debug, Clone)]
pub struct File {
    pub path: PathBuf,
    pub text: String,
}

fn is_read(method: &str) -> bool {
    matches!(method, "GET" | "HEAD")
}

/// Walk the ranking, most requests first, until `top` routes are to be written; routes ranked
/// above the last written one that cannot be written are kept with the reason.
pub fn choose<'s>(survey: &'s Survey, opts: &WriteOptions) -> Vec<Choice<'s>> {
    let mut out = Vec::new();
    let mut taken: Vec<String> = Vec::new();
    for r in &survey.routes {
        if taken.len() >= opts.top {
            break;
        }
        let secrets: Vec<&str> = r
            .params
            .iter()
            .filter(|k| k.is_secret())
            .map(|k| k.name())
            .collect();
        let ok_share = r.ok as f64 / r.count.max(1) as f64;
        let decision = if !secrets.is_empty() {
            Decision::Skip(format!(
                "its path carries values that look like secrets ({}); they are never written: \
                 write this scenario by hand with test data",
                secrets.join(", ")
            ))
        } else if !is_read(&r.method) && !opts.include_writes {
            Decision::Skip(format!(
                "a {} (a write): request bodies are not in access logs; --include-writes writes it with a placeholder body",
                r.method
            ))
        } else if ok_share < MIN_OK_SHARE {
            Decision::Skip(format!(
                "{:.0}% of its responses were errors (4xx/5xx)",
                (1.0 - ok_share) * 100.0
            ))
        } else {
            let name = unique(scenario_name(&r.method, &r.template), &taken);
            taken.push(name.clone());
            Decision::Write { name }
        };
        out.push(Choice { route: r, decision });
    }
    out
}

/// `GET /api/v1/products/{id}` → `get-products-id`: the method and the path's words, without
/// `api` and version segments.
pub fn scenario_name(method: &str, template: &str) -> String {
    let words: Vec<&str> = template
        .split('/')
        .map(|s| s.trim_start_matches('{').trim_end_matches('}'))
        .filter(|s| !s.is_empty() && *s != "api" && !is_version(s))
        .collect();
    let words = if words.is_empty() {
        "root".to_string()
    } else {
        words.join("-")
    };
    crate::names::safe_name(&format!("{} {words}", method.to_ascii_lowercase()))
}

fn is_version(s: &str) -> bool {
    s.strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn unique(name: String, taken: &[String]) -> String {
    if !taken.contains(&name) {
        return name;
    }
    (2..)
        .map(|i| format!("{name}-{i}"))
        .find(|n| !taken.contains(n))
        .expect("an unused suffix exists")
}

/// A YAML double-quoted scalar.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for a `#` comment: one line, no control characters.
fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `66ms`: the smallest whole number of milliseconds with two significant digits at or above
/// `ms` (at least 1 ms).
pub fn round_up_ms(ms: f64) -> u64 {
    if ms.is_nan() || ms <= 1.0 {
        return 1;
    }
    let step = 10f64.powi((ms.log10().floor() as i32 - 1).max(0));
    ((ms / step).ceil() * step) as u64
}

/// A rate as a scenario writes it: three significant digits, per second.
pub fn rate_text(per_s: f64) -> String {
    let per_s = per_s.max(0.01);
    let decimals = (2 - per_s.log10().floor() as i32).clamp(0, 3) as usize;
    let s = format!("{per_s:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}/s")
}

/// The files for the chosen routes, and `suite.yml` unless `suite_exists`.
pub fn scenario_files(
    survey: &Survey,
    choices: &[Choice<'_>],
    opts: &WriteOptions,
    suite_exists: bool,
) -> Vec<File> {
    let mut files = Vec::new();
    for c in choices {
        let Decision::Write { name } = &c.decision else {
            continue;
        };
        files.extend(route_files(survey, c.route, name, opts));
    }
    if !suite_exists {
        files.push(File {
            path: "suite.yml".into(),
            text: log_suite(opts),
        });
    }
    files
}

fn route_files(survey: &Survey, r: &RouteStats, name: &str, opts: &WriteOptions) -> Vec<File> {
    let names = route::param_names(&r.params);
    let source = comment_text(&opts.source);
    let share = 100.0 * r.count as f64 / survey.requests.max(1) as f64;
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Written by `gate init --from-access-log {source}`: {} {} had {} of the log's {} requests ({share:.1}%).",
        r.method, r.template, r.count, survey.requests
    );
    let url = url_template(&r.template, &r.params, &names);
    let _ = writeln!(y, "name: {name}");
    let _ = writeln!(
        y,
        "description: {}",
        quoted(&format!(
            "{} {} ({share:.1}% of {source})",
            r.method, r.template
        ))
    );
    let _ = writeln!(y, "request:");
    let _ = writeln!(y, "  method: {}", r.method);
    let _ = writeln!(y, "  url: {}", quoted(&url));
    if !is_read(&r.method) {
        let _ = writeln!(
            y,
            "  # body unknown from logs: access logs do not record request bodies; replace it with a real one"
        );
        if matches!(r.method.as_str(), "POST" | "PUT" | "PATCH") {
            let _ = writeln!(y, "  json: {{}}");
        }
    }
    let mut files = Vec::new();
    if !r.params.is_empty() {
        let csv = format!("{name}.ids.csv");
        let _ = writeln!(
            y,
            "# {} of the values seen in successful requests (a uniform sample), in random order.",
            r.samples.len()
        );
        let _ = writeln!(y, "data: {{ file: {csv}, order: random }}");
        let mut t = names.join(",");
        t.push('\n');
        for row in &r.samples {
            t.push_str(&row.join(","));
            t.push('\n');
        }
        files.push(File {
            path: csv.into(),
            text: t,
        });
    }
    match survey.rate(r.count) {
        Some(rate) => {
            let scaled = rate * opts.scale;
            let how = if opts.scale == 1.0 {
                "observed".to_string()
            } else {
                format!("{} observed × --scale {}", rate_text(rate), opts.scale)
            };
            let _ = writeln!(y, "load: {{ rate: {} }}   # {how}", rate_text(scaled));
        }
        None => {
            let _ = writeln!(
                y,
                "# The log has no request times: no rate could be observed. Set one, e.g. load: {{ rate: 10/s }}."
            );
        }
    }
    let _ = writeln!(y, "thresholds:");
    match (r.percentile_us(0.95), r.percentile_us(0.99)) {
        (Some(p95), Some(p99)) => {
            let _ = writeln!(
                y,
                "  # observed p95 {:.1}ms, p99 {:.1}ms; limits are {THRESHOLD_MARGIN}× those, rounded up",
                p95 as f64 / 1e3,
                p99 as f64 / 1e3
            );
            let _ = writeln!(
                y,
                "  - p95 < {}ms",
                round_up_ms(p95 as f64 / 1e3 * THRESHOLD_MARGIN)
            );
            let _ = writeln!(
                y,
                "  - p99 < {}ms",
                round_up_ms(p99 as f64 / 1e3 * THRESHOLD_MARGIN)
            );
        }
        _ => {
            let _ = writeln!(
                y,
                "  # the log has no request durations: set latency limits, e.g. p95 < 300ms"
            );
        }
    }
    let _ = writeln!(y, "  - error_rate < 1%");
    files.insert(
        0,
        File {
            path: format!("{name}.yml").into(),
            text: y,
        },
    );
    files
}

/// `/api/v1/products/{id}` → `/api/v1/products/{{ data.id }}`.
fn url_template(template: &str, kinds: &[Kind], names: &[String]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut i = 0;
    for (n, seg) in template.split('/').enumerate() {
        if n > 0 {
            out.push('/');
        }
        if i < kinds.len()
            && seg.starts_with('{')
            && seg.ends_with('}')
            && seg[1..seg.len() - 1] == names[i]
        {
            let _ = write!(out, "{{{{ data.{} }}}}", names[i]);
            i += 1;
        } else {
            out.push_str(seg);
        }
    }
    out
}

fn target_line(target: Option<&str>) -> String {
    match target {
        Some(t) => format!("target: {}", quoted(t)),
        None => format!(
            "target: {PLACEHOLDER_TARGET}   # CHANGE: your service's URL (or pass `gate run --target URL`)"
        ),
    }
}

fn log_suite(opts: &WriteOptions) -> String {
    format!(
        "# Suite defaults for the scenarios `gate init --from-access-log {}` wrote beside this file.
name: from-access-log
{}
defaults:
  # Each scenario sets the rate its route had in the log; this is how long each one runs.
  load: {{ duration: 30s, warmup: 3s, max_in_flight: 64 }}
  timeout: 10s
  headers:
    Accept: application/json
tolerance: 5%          # smallest p95 change `gate compare` may call a regression
baseline:
  branch: main         # runs of this branch are what a PR is compared with
  runs: 5
",
        comment_text(&opts.source),
        target_line(opts.target.as_deref())
    )
}

/// `gate init` without a log: a suite and one example scenario (paths relative to the output
/// directory).
pub fn starter_suite(target: Option<&str>) -> Vec<File> {
    let suite = format!(
        "# Suite defaults: every scenario in this directory inherits these unless it sets its own.
name: my-service
{}
defaults:
  # Open model at a steady rate below saturation: latency then measures the service, not a
  # queue in front of it.
  load: {{ rate: 20/s, duration: 30s, warmup: 3s, max_in_flight: 64 }}
  timeout: 10s
  headers:
    Accept: application/json
    # Values from the environment are sent to the target, never stored or printed:
    # Authorization: \"Bearer ${{API_TOKEN}}\"
tolerance: 5%          # smallest p95 change `gate compare` may call a regression
thresholds:
  - p95 < 500ms
  - error_rate < 1%
baseline:
  branch: main         # runs of this branch are what a PR is compared with
  runs: 5              # at the merge-base if there are any, else the latest 5
",
        target_line(target)
    );
    let example = "# One request, repeated at the suite's rate. Copy this file for each endpoint that matters;
# `gate init --from-access-log FILE` writes them from real traffic instead.
name: home
description: The front page.
request:
  method: GET
  url: /                # CHANGE: a path of your service, e.g. /api/v1/products/{{ random_int(1, 100) }}
expect: { status: 200 }
thresholds:
  - p95 < 300ms
  - error_rate < 1%
"
    .to_string();
    vec![
        File {
            path: "suite.yml".into(),
            text: suite,
        },
        File {
            path: "home.yml".into(),
            text: example,
        },
    ]
}

/// Where the workflow goes, relative to the repository root.
pub const WORKFLOW_PATH: &str = ".github/workflows/perf-gate.yml";

/// The pull-request workflow for a new repository: the shape of gate's own
/// `.github/workflows/perf-gate.yml`, installing the released binary instead of building it.
pub fn workflow(suite_dir: &str, target: Option<&str>) -> File {
    let target = target.unwrap_or(PLACEHOLDER_TARGET);
    let text = format!(
        r#"# gate as a pull-request check (written by `gate init`). Change the lines marked CHANGE: how
# your service is built and started, and its URL.
#
# - push to main: measure and save the run into the history, cached per run.
# - pull_request: restore main's newest history, measure the PR, compare, and post one sticky
#   verdict comment (edited on every push) with the charts; the job fails on a regression.
name: perf-gate

on:
  pull_request:
  push:
    branches: [main]

permissions:
  contents: write        # commit the chart images to the gate-assets branch
  pull-requests: write   # create and edit the verdict comment

concurrency:
  group: perf-gate-${{{{ github.ref }}}}
  cancel-in-progress: true

jobs:
  perf:
    runs-on: ubuntu-latest
    timeout-minutes: 30
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0   # the merge-base with main picks the right baseline runs

      # Installs the released gate binary (checksum-verified) and puts it on PATH.
      - uses: OWNER/gate@v1   # CHANGE: where your gate action comes from
        with:
          install-only: true

      # CHANGE: build and start the service under test, then wait until it answers.
      - name: Start the service under test
        run: |
          echo "edit {WORKFLOW_PATH}: start the service under test in this step" >&2
          exit 1

      # The history of main's runs. Caches are immutable, so every main run saves a new one and
      # every job restores the newest by prefix.
      - name: Restore the run history
        uses: actions/cache/restore@v4
        with:
          path: .gate/history.db
          key: gate-history-main-${{{{ github.run_id }}}}
          restore-keys: gate-history-main-

      - name: gate ci (pull request)
        if: github.event_name == 'pull_request'
        env:
          GITHUB_TOKEN: ${{{{ secrets.GITHUB_TOKEN }}}}
        run: gate ci --suite {suite_dir} --target {target}   # CHANGE: your URL

      - name: gate run (main)
        if: github.event_name == 'push'
        run: gate run --suite {suite_dir} --target {target}   # CHANGE: your URL

      # Saved even when the gate failed (a broken SLO on main is still history); not when the
      # job was cancelled half-way.
      - name: Save the run history
        if: ${{{{ !cancelled() && github.event_name == 'push' }}}}
        uses: actions/cache/save@v4
        with:
          path: .gate/history.db
          key: gate-history-main-${{{{ github.run_id }}}}

      - name: Keep the charts
        if: always() && github.event_name == 'pull_request'
        uses: actions/upload-artifact@v4
        with:
          name: gate-charts
          path: .gate/ci-charts
          if-no-files-found: ignore
"#
    );
    File {
        path: WORKFLOW_PATH.into(),
        text,
    }
}

/// Does any file hold text that looks like a secret? The last check before writing.
pub fn secret_in(files: &[File]) -> Option<&File> {
    files.iter().find(|f| route::holds_secret(&f.text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_urls_rates_and_limits() {
        assert_eq!(
            scenario_name("GET", "/api/v1/products/{id}"),
            "get-products-id"
        );
        assert_eq!(
            scenario_name("GET", "/api/v2/users/{id}/orders"),
            "get-users-id-orders"
        );
        assert_eq!(scenario_name("HEAD", "/"), "head-root");
        assert_eq!(unique("a".into(), &["a".into(), "a-2".into()]), "a-3");
        assert_eq!(
            url_template(
                "/u/{id}/o/{id_2}",
                &[Kind::Id, Kind::Id],
                &["id".into(), "id_2".into()]
            ),
            "/u/{{ data.id }}/o/{{ data.id_2 }}"
        );
        assert_eq!(
            url_template("/literal/{braces}", &[], &[]),
            "/literal/{braces}"
        );
        assert_eq!(round_up_ms(65.55), 66);
        assert_eq!(round_up_ms(1234.5), 1300);
        assert_eq!(round_up_ms(0.3), 1);
        assert_eq!(round_up_ms(7.01), 8);
        assert_eq!(rate_text(11.456), "11.5/s");
        assert_eq!(rate_text(250.4), "250/s");
        assert_eq!(rate_text(0.5), "0.5/s");
        assert_eq!(rate_text(0.0), "0.01/s");
        assert_eq!(quoted("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
