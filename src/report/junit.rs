//! JUnit XML (`gate run --junit FILE`) for CI systems that show test reports: GitLab, Jenkins,
//! Azure Pipelines. One `<testsuite>` per run, one `<testcase>` per endpoint (classname: the
//! suite), a `<failure>` per endpoint whose SLO thresholds broke, the figures in `<system-out>`.
//! The shape is the one GitLab's parser reads: `testsuites > testsuite > testcase` with `name`,
//! `classname`, `time` (seconds), and `failure` elements with a `message`.

use std::fmt::Write as _;

use super::{Format, RunReport};
use crate::verdict::{Call, Verdict};

pub struct Junit;

/// Escapes text for XML content and attributes; drops characters XML 1.0 cannot carry.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn secs(v: f64) -> String {
    if v.is_finite() && v >= 0.0 {
        format!("{v:.3}")
    } else {
        "0".into()
    }
}

struct Case {
    name: String,
    time: f64,
    failures: Vec<(String, String)>,
    out: String,
}

fn document(suite: &str, timestamp: &str, cases: &[Case]) -> Vec<u8> {
    let failed = cases.iter().filter(|c| !c.failures.is_empty()).count();
    let time: f64 = cases.iter().map(|c| c.time).filter(|t| t.is_finite()).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"gate\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" time=\"{}\">",
        cases.len(),
        secs(time)
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"0\" time=\"{}\" timestamp=\"{}\">",
        xml(suite),
        cases.len(),
        secs(time),
        xml(timestamp)
    );
    for c in cases {
        let _ = write!(
            x,
            "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\">",
            xml(&c.name),
            xml(suite),
            secs(c.time)
        );
        x.push('\n');
        for (message, detail) in &c.failures {
            let _ = writeln!(
                x,
                "      <failure message=\"{}\" type=\"threshold\">{}</failure>",
                xml(message),
                xml(detail)
            );
        }
        let _ = writeln!(x, "      <system-out>{}</system-out>", xml(&c.out));
        x.push_str("    </testcase>\n");
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x.into_bytes()
}

impl Format for Junit {
    fn render_run(&self, report: &RunReport<'_>) -> Vec<u8> {
        let run = report.run;
        let cases: Vec<Case> = run
            .endpoints
            .iter()
            .map(|e| {
                let slo = report.slo.endpoints.iter().find(|s| s.endpoint == e.name);
                let failures = slo
                    .map(|s| {
                        s.checks
                            .iter()
                            .filter(|c| !c.pass)
                            .map(|c| {
                                let measured = c.actual.map_or("no data".to_string(), |a| {
                                    format!("measured {a:.3} ({})", c.metric)
                                });
                                (
                                    format!("{}: {measured}", c.threshold),
                                    format!("threshold {} broken: {measured}", c.threshold),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let out = format!(
                    "{} {}\nrequests {} (failures {}), throughput {:.1} req/s, error rate {:.2}%\nlatency ms: p50 {:.3} p95 {:.3} p99 {:.3} max {:.3}",
                    e.method,
                    e.url,
                    e.requests,
                    e.failures,
                    e.throughput_rps,
                    e.error_rate * 100.0,
                    e.latency.p50_ms,
                    e.latency.p95_ms,
                    e.latency.p99_ms,
                    e.latency.max_ms
                );
                Case {
                    name: e.name.clone(),
                    time: e.elapsed_s,
                    failures,
                    out,
                }
            })
            .collect();
        let mut cases = cases;
        if !run.complete {
            cases.push(Case {
                name: "run complete".into(),
                time: 0.0,
                failures: vec![(
                    "the run was interrupted".into(),
                    "an incomplete run never passes".into(),
                )],
                out: String::new(),
            });
        }
        document(
            &format!("gate run {}", run.suite),
            run.started_at.get(..19).unwrap_or(&run.started_at),
            &cases,
        )
    }

    fn render_verdict(&self, verdict: &Verdict) -> Vec<u8> {
        let cases: Vec<Case> = verdict
            .endpoints
            .iter()
            .map(|c| Case {
                name: c.endpoint.clone(),
                time: 0.0,
                failures: if c.call == Call::Regression {
                    vec![("regression".into(), super::cells::reason(c))]
                } else {
                    Vec::new()
                },
                out: super::cells::reason(c),
            })
            .collect();
        document(&format!("gate compare {}", verdict.head), "", &cases)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_control_characters_dropped() {
        assert_eq!(
            xml("<a href=\"x\">&'\u{1}"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos; "
        );
        assert_eq!(secs(f64::NAN), "0");
        assert_eq!(secs(1.23456), "1.235");
    }
}
