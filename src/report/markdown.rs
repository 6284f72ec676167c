//! Markdown for pull-request comments, job summaries and `gate compare --format markdown`.
//! Everything that came from the target or a scenario file is escaped: an endpoint called
//! `<img src=x>` or `a|b` must not break the table or inject HTML.

use super::cells::{self, escape};
use super::{Format, RunReport};
use crate::verdict::{Call, Verdict};

pub struct Markdown;

impl Format for Markdown {
    fn render_run(&self, report: &RunReport<'_>) -> Vec<u8> {
        let mut out = String::from(
            "| Endpoint | p50 | p95 | p99 | Throughput | Errors | Status |\n|---|--:|--:|--:|--:|--:|---|\n",
        );
        for (e, slo) in report.run.endpoints.iter().zip(&report.slo.endpoints) {
            let c = cells::run_row(e, slo);
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                escape(&e.name),
                c.p50,
                c.p95,
                c.p99,
                c.throughput,
                c.errors,
                escape(&c.status)
            ));
        }
        out.push_str(&super::llm::markdown(report.run));
        out.into_bytes()
    }

    /// The PR comment's form, without the marker and footer that only a comment needs.
    fn render_verdict(&self, v: &Verdict) -> Vec<u8> {
        let text = pr_comment(
            &PrComment {
                verdict: v,
                charts: &[],
                notices: &[],
                footer: String::new(),
                key: None,
                marker: false,
                head: None,
            },
            usize::MAX,
        );
        text.into_bytes()
    }
}

/// The hidden marker that identifies gate's comment on a PR, so the next run edits it. A key
/// (one per environment of a matrix job, say) gives each its own comment.
pub fn comment_marker(key: Option<&str>) -> String {
    match key {
        Some(k) => format!("<!-- gate:verdict:{k} -->"),
        None => "<!-- gate:verdict -->".into(),
    }
}

/// A comment key is a plain name: it goes into an HTML comment and a headline.
pub fn valid_comment_key(key: &str) -> bool {
    (1..=40).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}
/// GitHub refuses comment bodies over 65,536 characters; a small margin stays free.
pub const COMMENT_LIMIT: usize = 65_000;

/// A chart to show in the comment: a link to the image (pinned to a commit) or a local path.
pub struct ChartLink {
    pub file_name: String,
    pub url: String,
}

/// Everything a PR comment (and the job summary) shows.
pub struct PrComment<'a> {
    pub verdict: &'a Verdict,
    pub charts: &'a [ChartLink],
    /// Lines about the publishing itself (why the charts are missing, where to find them).
    pub notices: &'a [String],
    /// The last line: tool version, run id, commit (none when empty).
    pub footer: String,
    /// Which of several gate comments on the PR this is (`--comment-key`); None = the only one.
    pub key: Option<&'a str>,
    /// Start with the hidden marker (comments and summaries; not `gate compare`'s output).
    pub marker: bool,
    /// The head run, for what only it has (the LLM model table: tokens, cost, errors by kind).
    pub head: Option<&'a crate::record::RunRecord>,
}

/// How much of the comment fits: everything, or the compact form with the first `rows`
/// endpoints (most severe first).
#[derive(Clone, Copy)]
struct Layout {
    compact: bool,
    rows: usize,
}

/// The PR comment, trimmed to `limit` characters when the suite is huge: per-endpoint charts
/// and details go first, then table rows from the least severe up, with a note saying so.
pub fn pr_comment(c: &PrComment<'_>, limit: usize) -> String {
    let n = c.verdict.endpoints.len();
    let full = render_comment(
        c,
        Layout {
            compact: false,
            rows: n,
        },
    );
    if full.chars().count() <= limit {
        return full;
    }
    // Largest row count that fits (binary search; the rendering is monotone in rows).
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let text = render_comment(
            c,
            Layout {
                compact: true,
                rows: mid,
            },
        );
        if text.chars().count() <= limit {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let text = render_comment(
        c,
        Layout {
            compact: true,
            rows: lo,
        },
    );
    if text.chars().count() <= limit {
        return text;
    }
    // Even the headline with no rows does not fit (absurdly long notes): cut at a char boundary.
    let mut cut: String = text.chars().take(limit.saturating_sub(80)).collect();
    cut.push_str("\n\n✂️ trimmed to GitHub's comment limit\n");
    cut
}

fn severity(e: &crate::verdict::EndpointComparison, slo_failed: bool) -> u8 {
    match (e.call, slo_failed) {
        (Call::Regression, _) => 0,
        (_, true) => 1,
        (Call::Inconclusive, _) => 2,
        (Call::Improvement, _) => 3,
        (Call::NoChange, _) => 4,
    }
}

fn render_comment(c: &PrComment<'_>, layout: Layout) -> String {
    let v = c.verdict;
    let slo_failed = |name: &str| {
        v.slo
            .as_ref()
            .is_some_and(|s| s.endpoints.iter().any(|e| e.endpoint == name && !e.pass))
    };
    let mut out = String::new();
    if c.marker {
        out.push_str(&comment_marker(c.key));
        out.push('\n');
    }
    match c.key {
        Some(key) => out.push_str(&format!("### {} — {}\n\n", cells::headline(v), escape(key))),
        None => out.push_str(&format!("### {}\n\n", cells::headline(v))),
    }

    let mut rows: Vec<_> = v.endpoints.iter().collect();
    if layout.compact {
        rows.sort_by_key(|e| severity(e, slo_failed(&e.endpoint)));
    }
    let hidden = rows.len().saturating_sub(layout.rows);
    rows.truncate(layout.rows);
    out.push_str(&format!(
        "| Endpoint | base p50 / p95 / p99 | head p50 / p95 / p99 | {} | p | Verdict |\n",
        cells::delta_header(v)
    ));
    out.push_str("|---|--:|--:|--:|--:|---|\n");
    for e in &rows {
        let cells = cells::verdict_row(e);
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            escape(&e.endpoint),
            cells.base,
            cells.head,
            cells.delta,
            cells.p,
            cells::badge(e.call)
        ));
    }
    if hidden > 0 {
        out.push_str(&format!(
            "\n✂️ **{hidden} more endpoint{} not shown**: the comment was trimmed to GitHub's 65,536-character limit (least severe left out). The job summary and `gate compare` show all of them.\n",
            if hidden == 1 { "" } else { "s" }
        ));
    }

    let shown = |name: &str| rows.iter().any(|e| e.endpoint == name);
    // Server-Timing explains latency; an LLM row's TTFT or tok/s has no such breakdown.
    let regressed: Vec<_> = rows
        .iter()
        .filter(|e| e.call == Call::Regression)
        .filter(|e| e.metric == crate::verdict::compare::CompareMetric::Latency)
        .collect();
    if !regressed.is_empty() {
        out.push_str("\n**Where the time went** (Server-Timing, mean per request)\n\n");
        for e in regressed {
            let what = e
                .where_the_time_went()
                .unwrap_or_else(|| "the target sent no Server-Timing".into());
            out.push_str(&format!(
                "- **{}**: {}\n",
                escape(&e.endpoint),
                escape(&what)
            ));
        }
    }

    if let Some(head) = c.head.filter(|_| !layout.compact) {
        let models = super::llm::markdown(head);
        if !models.is_empty() {
            out.push_str("\n**LLM models** (head run)\n");
            out.push_str(&models);
        }
    }

    if let Some(note) = c.head.and_then(transport_note) {
        out.push_str(&note);
    }

    if let Some(slo) = &v.slo {
        let listed: Vec<_> = slo
            .endpoints
            .iter()
            .filter(|e| e.shown().next().is_some() && shown(&e.endpoint))
            .filter(|e| !layout.compact || !e.pass)
            .collect();
        if !listed.is_empty() {
            // Met thresholds are one click away; broken ones are in plain sight.
            if slo.pass {
                out.push_str(
                    "\n<details><summary><b>SLO thresholds</b> (head run): all met</summary>\n\n",
                );
            } else {
                out.push_str("\n**SLO thresholds** (head run): ❌ broken\n\n");
            }
            out.push_str("| Endpoint | Measured vs threshold | Result |\n|---|---|---|\n");
            for e in listed {
                let checks: Vec<String> = e
                    .shown()
                    .map(|check| match check.actual {
                        _ if check.metric == crate::verdict::slo::SUCCESSES && !check.pass => {
                            format!("❌ **{}**", escape(&cells::describe_failure(check)))
                        }
                        Some(a) if check.pass => format!(
                            "{} {} {} {}",
                            escape(&check.metric),
                            cells::slo_value(&check.metric, a),
                            escape(check.op.symbol()),
                            cells::slo_value(&check.metric, check.limit)
                        ),
                        Some(a) => format!(
                            "❌ **{} {} {} {}**{}",
                            escape(&check.metric),
                            cells::slo_value(&check.metric, a),
                            check.op.negated_symbol(),
                            cells::slo_value(&check.metric, check.limit),
                            if check.default { " (default)" } else { "" }
                        ),
                        None => format!("❌ {}: no data", escape(&check.threshold)),
                    })
                    .collect();
                out.push_str(&format!(
                    "| {} | {} | {} |\n",
                    escape(&e.endpoint),
                    checks.join(" · "),
                    if e.pass { "✅ PASS" } else { "❌ FAIL" }
                ));
            }
            if slo.pass {
                out.push_str("\n</details>\n");
            }
        }
    }

    if !c.charts.is_empty() {
        let (overview, rest): (Vec<&ChartLink>, Vec<&ChartLink>) = c
            .charts
            .iter()
            .partition(|ch| ch.file_name == "overview.png");
        out.push_str("\n**Charts**\n\n");
        for ch in &overview {
            out.push_str(&format!("![p95 per endpoint]({})\n", ch.url));
        }
        // Ramps, model comparisons and regressed endpoints' trends show; the rest are one
        // click away.
        let in_view = |file: &str| {
            file.starts_with("ramp-")
                || file.starts_with("models-")
                || v.endpoints.iter().any(|e| {
                    e.call == Call::Regression
                        && file == crate::names::file_name("trend", &e.endpoint)
                })
        };
        let (open, closed): (Vec<&ChartLink>, Vec<&ChartLink>) =
            rest.into_iter().partition(|ch| in_view(&ch.file_name));
        for ch in open {
            out.push_str(&format!(
                "\n![{}]({})\n",
                escape(ch.file_name.trim_end_matches(".png")),
                ch.url
            ));
        }
        if !closed.is_empty() && !layout.compact {
            out.push_str("\n<details><summary>More charts</summary>\n\n");
            for ch in closed {
                out.push_str(&format!(
                    "![{}]({})\n",
                    escape(ch.file_name.trim_end_matches(".png")),
                    ch.url
                ));
            }
            out.push_str("\n</details>\n");
        }
    }

    out.push_str(&format!(
        "\n**Compared** {} · {} · {}\n",
        escape(&v.base),
        escape(&v.head),
        tolerance_text(v)
    ));
    for note in &v.notes {
        out.push_str(&format!("\n> {}\n", escape(note)));
    }
    for notice in c.notices {
        out.push_str(&format!("\n> ⚠️ {}\n", escape(notice)));
    }
    if !layout.compact {
        out.push_str("\n<details><summary>Details per endpoint</summary>\n\n");
        for e in &v.endpoints {
            out.push_str(&format!(
                "- **{}** — {}: {}\n",
                escape(&e.endpoint),
                cells::badge(e.call),
                escape(&cells::reason(e))
            ));
        }
        out.push_str(
            "\nA regression is a one-sided Mann-Whitney U test significant after Holm correction **and** a 95% confidence interval of the p95 change entirely above the threshold (the tolerance, or the baseline's run-to-run noise band if wider).\n\n</details>\n",
        );
    }
    if !c.footer.is_empty() {
        out.push_str(&format!("\n<sub>{}</sub>\n", escape(&c.footer)));
    }
    out
}

/// How the head run reached its endpoints, where that is more than plain HTTP/1.1:
/// `**Protocol** (head run): HTTP/2 over TLSv1.3, 8 streams per connection: a, b`.
fn transport_note(head: &crate::record::RunRecord) -> Option<String> {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for e in &head.endpoints {
        let Some(t) = &e.transport else { continue };
        if t.tls_version.is_none() && t.protocol != "HTTP/2" {
            continue;
        }
        let mut what = match &t.tls_version {
            Some(v) => format!("{} over {v}", t.protocol),
            None => format!("{} (h2c)", t.protocol),
        };
        if let Some(c) = t.shared_connections {
            what.push_str(&format!(
                ", {} streams per connection over {c}",
                t.streams_per_connection
            ));
        }
        if t.insecure {
            what.push_str(", INSECURE (certificate not verified)");
        }
        match groups.iter_mut().find(|(w, _)| *w == what) {
            Some((_, names)) => names.push(&e.name),
            None => groups.push((what, vec![&e.name])),
        }
    }
    if groups.is_empty() {
        return None;
    }
    let mut out = String::from("\n**Protocol** (head run)");
    if let [(what, _)] = groups.as_slice() {
        out.push_str(&format!(": {}\n", escape(what)));
    } else {
        out.push('\n');
        for (what, names) in &groups {
            out.push_str(&format!(
                "- {}: {}\n",
                escape(what),
                escape(&names.join(", "))
            ));
        }
    }
    Some(out)
}

/// "tolerance 5%", or "tolerance 5% (user-orders 10%)" when endpoints differ, plus the
/// noise-widened thresholds worth knowing.
fn tolerance_text(v: &Verdict) -> String {
    let mut tolerances: Vec<f64> = v.endpoints.iter().map(|e| e.tolerance).collect();
    tolerances.sort_by(f64::total_cmp);
    let common = tolerances
        .get(tolerances.len() / 2)
        .copied()
        .unwrap_or(crate::config::DEFAULT_TOLERANCE);
    let pct = |f: f64| format!("{:.1}%", f * 100.0).replace(".0%", "%");
    let mut text = format!("tolerance {}", pct(common));
    let other: Vec<String> = v
        .endpoints
        .iter()
        .filter(|e| (e.tolerance - common).abs() > 1e-9)
        .map(|e| format!("{} {}", e.endpoint, pct(e.tolerance)))
        .collect();
    if !other.is_empty() && other.len() <= 10 {
        text.push_str(&format!(" ({})", other.join(", ")));
    }
    let widened: Vec<String> = v
        .endpoints
        .iter()
        .filter(|e| e.threshold > e.tolerance + 1e-9)
        .map(|e| format!("{} {}", e.endpoint, pct(e.threshold)))
        .collect();
    if !widened.is_empty() && widened.len() <= 10 {
        text.push_str(&format!(
            "; widened by baseline noise: {}",
            widened.join(", ")
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::RelChange;
    use crate::verdict::compare::{Component, Percentiles};
    use crate::verdict::{Check, EndpointComparison, EndpointSlo, SloReport};

    fn endpoint(name: &str, call: Call, base_p95: f64, head_p95: f64) -> EndpointComparison {
        let p = |p95: f64| Percentiles {
            count: 2500,
            p50_ms: p95 * 0.6,
            p95_ms: p95,
            p99_ms: p95 * 1.3,
        };
        let change = head_p95 / base_p95 - 1.0;
        EndpointComparison {
            endpoint: name.into(),
            metric: crate::verdict::compare::CompareMetric::Latency,
            name: name.into(),
            base: Some(p(base_p95)),
            head: Some(p(head_p95)),
            p95_change: Some(RelChange {
                point: change,
                ci_low: change - 0.02,
                ci_high: change + 0.02,
                confidence: 0.95,
                quantile: 0.95,
                base_ms: base_p95,
                head_ms: head_p95,
            }),
            shift: None,
            p_slower: Some(0.0001),
            p_faster: Some(0.9),
            p_slower_adjusted: Some(if call == Call::Regression {
                0.0004
            } else {
                0.6
            }),
            p_faster_adjusted: Some(1.0),
            tolerance: 0.05,
            noise: None,
            threshold: if name == "create-order" { 0.1 } else { 0.05 },
            base_runs: 4,
            outlier_runs: vec![],
            call,
            reason: crate::verdict::Reason::Measured {
                finding: match call {
                    Call::Regression => crate::verdict::Finding::Slower,
                    Call::Improvement => crate::verdict::Finding::Faster,
                    Call::NoChange => crate::verdict::Finding::Within,
                    Call::Inconclusive => crate::verdict::Finding::CannotRuleOut,
                },
                limit: crate::verdict::Limit::Tolerance { fraction: 0.05 },
                outliers_p95_ms: vec![],
            },
            components: if call == Call::Regression {
                vec![Component {
                    name: "db".into(),
                    base_ms: 1.2,
                    head_ms: 14.5,
                }]
            } else {
                vec![]
            },
        }
    }

    fn verdict(endpoints: Vec<EndpointComparison>) -> Verdict {
        let slo = SloReport {
            endpoints: endpoints
                .iter()
                .map(|e| EndpointSlo {
                    endpoint: e.endpoint.clone(),
                    checks: vec![Check {
                        default: false,
                        threshold: "p95 < 20ms".into(),
                        metric: "p95".into(),
                        actual: e.head.map(|h| h.p95_ms),
                        limit: 20.0,
                        op: crate::config::Op::Lt,
                        pass: e.head.is_some_and(|h| h.p95_ms < 20.0),
                    }],
                    pass: e.head.is_some_and(|h| h.p95_ms < 20.0),
                })
                .collect(),
            pass: false,
            complete: true,
        };
        Verdict {
            base: "baseline: 4 runs of main at 3f2a1c9 (#1, #2, #3, #4)".into(),
            head: "head: run #5 (feature @ 9b8c7d6)".into(),
            endpoints,
            slo: Some(slo),
            strict: false,
            notes: vec![],
            paired: None,
        }
    }

    fn links(names: &[&str]) -> Vec<ChartLink> {
        names
            .iter()
            .map(|n| ChartLink {
                file_name: n.to_string(),
                url: format!("https://example.test/acme/shop/raw/abc123/pr-7/{n}"),
            })
            .collect()
    }

    #[test]
    fn the_pr_comment_reads_top_to_bottom() {
        let v = verdict(vec![
            endpoint("products-list", Call::NoChange, 4.0, 4.05),
            endpoint("user-orders", Call::Regression, 5.1, 21.6),
            endpoint("create-order", Call::Inconclusive, 8.0, 8.5),
            endpoint("a|b <img src=x>", Call::Improvement, 10.0, 8.0),
        ]);
        let charts = links(&[
            "overview.png",
            "trend-user-orders.png",
            "distribution-user-orders.png",
            "trend-products-list.png",
        ]);
        let notices = vec!["charts not attached: <because>".to_string()];
        let text = pr_comment(
            &PrComment {
                verdict: &v,
                charts: &charts,
                notices: &notices,
                footer: "gate 0.1.0 · run #5 at 9b8c7d6 · PR #7".into(),
                key: None,
                marker: true,
                head: None,
            },
            COMMENT_LIMIT,
        );
        assert!(text.starts_with(&comment_marker(None)));
        // Names and texts from the target cannot inject markup.
        assert!(!text.contains("<img"), "{text}");
        assert!(text.contains("a\\|b &lt;img src=x&gt;"), "{text}");
        insta::assert_snapshot!(text);
    }

    #[test]
    fn a_dead_endpoint_is_named_in_the_comment_and_met_defaults_are_not() {
        let mut v = verdict(vec![
            endpoint("products-list", Call::NoChange, 4.0, 4.05),
            endpoint("dead", Call::Inconclusive, 4.0, 4.0),
        ]);
        let slo = v.slo.as_mut().unwrap();
        let default = |metric: &str, threshold: &str, actual: f64, limit: f64, pass: bool| Check {
            default: true,
            threshold: threshold.into(),
            metric: metric.into(),
            actual: Some(actual),
            limit,
            op: if metric == "error_rate" {
                crate::config::Op::Lt
            } else {
                crate::config::Op::Gt
            },
            pass,
        };
        slo.endpoints[0].checks.push(default(
            "successes",
            "successful requests > 0",
            2500.0,
            0.0,
            true,
        ));
        slo.endpoints[1].checks = vec![
            default("successes", "successful requests > 0", 0.0, 0.0, false),
            default("error_rate", "error_rate < 10%", 1.0, 0.1, false),
        ];
        slo.endpoints[1].pass = false;
        let text = pr_comment(
            &PrComment {
                verdict: &v,
                charts: &[],
                notices: &[],
                footer: String::new(),
                key: None,
                marker: true,
                head: None,
            },
            COMMENT_LIMIT,
        );
        let row = text
            .lines()
            .find(|l| l.starts_with("| dead |") && l.contains("FAIL"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(row.contains("❌ **no successful request**"), "{row}");
        assert!(
            row.contains("❌ **error\\_rate 100% ≥ 10%** (default)"),
            "{row}"
        );
        assert!(row.ends_with("❌ FAIL |"), "{row}");
        let fine = text
            .lines()
            .find(|l| l.starts_with("| products-list |") && l.contains("PASS"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            !fine.contains("successes"),
            "a met default is noise: {fine}"
        );
    }

    #[test]
    fn comment_keys_give_each_environment_its_own_marker() {
        let plain = comment_marker(None);
        let staging = comment_marker(Some("staging"));
        assert_eq!(plain, "<!-- gate:verdict -->");
        assert!(!staging.contains(&plain) && !plain.contains(&staging));
        assert!(valid_comment_key("staging-eu_2.x"));
        for bad in ["", "a b", "x-->", "<b>", &"k".repeat(41)] {
            assert!(!valid_comment_key(bad), "{bad}");
        }
        let v = verdict(vec![endpoint("a", Call::NoChange, 4.0, 4.0)]);
        let text = pr_comment(
            &PrComment {
                verdict: &v,
                charts: &[],
                notices: &[],
                footer: String::new(),
                key: Some("staging"),
                marker: true,
                head: None,
            },
            COMMENT_LIMIT,
        );
        assert!(text.starts_with(&format!("{staging}\n### ✅ ")), "{text}");
        assert!(
            text.lines().nth(1).unwrap().ends_with(" — staging"),
            "{text}"
        );
        assert!(!text.contains("<sub>"), "no footer when empty");
    }

    #[test]
    fn a_huge_suite_is_trimmed_to_the_limit_keeping_the_regressions() {
        let mut eps: Vec<EndpointComparison> = (0..3000)
            .map(|i| {
                endpoint(
                    &format!("endpoint-with-a-rather-long-name-number-{i:05}"),
                    Call::NoChange,
                    4.0,
                    4.0,
                )
            })
            .collect();
        eps[2500] = endpoint("the-one-that-regressed", Call::Regression, 5.0, 20.0);
        let v = verdict(eps);
        let text = pr_comment(
            &PrComment {
                verdict: &v,
                charts: &[],
                notices: &[],
                footer: "f".into(),
                key: None,
                marker: true,
                head: None,
            },
            COMMENT_LIMIT,
        );
        let n = text.chars().count();
        assert!(n <= COMMENT_LIMIT && n > COMMENT_LIMIT - 2_000, "{n}");
        assert!(text.starts_with(&comment_marker(None)));
        assert!(text.contains("| the-one-that-regressed |"));
        assert!(
            text.contains("more endpoints not shown"),
            "{}",
            &text[text.len() - 800..]
        );
        assert!(text.contains("**Where the time went**"));
        // The summary limit holds everything.
        let full = pr_comment(
            &PrComment {
                verdict: &v,
                charts: &[],
                notices: &[],
                footer: "f".into(),
                key: None,
                marker: true,
                head: None,
            },
            2_000_000,
        );
        assert!(!full.contains("not shown") && full.contains("number-02999"));
    }
}
