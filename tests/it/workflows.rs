//! The GitHub Actions workflows a user copies must be valid YAML that runs the commands gate
//! really has: parse each one and check the steps that matter.

use serde_json::Value;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{MANIFEST}/{path}")).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn runs(job: &Value) -> Vec<String> {
    job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str().map(str::to_string))
        .collect()
}

/// The gate subcommand and flags of a `run:` line, checked against the real CLI's parser.
fn parses_as_gate(line: &str) {
    let line = line.replace("${{ github.event.workflow_run.head_sha }}", "abc123");
    let words: Vec<&str> = line.split('#').next().unwrap().split_whitespace().collect();
    let start = words
        .iter()
        .position(|w| w.ends_with("/gate"))
        .unwrap_or_else(|| panic!("no gate command in {line}"));
    let args: Vec<String> = words[start..].iter().map(|w| w.to_string()).collect();
    use clap::Parser;
    gate::cli::Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{line}: {e}"));
}

#[test]
fn the_example_pr_gate_workflow_runs_gate_ci_on_prs_and_saves_main() {
    let _machine = crate::common::shared();
    let wf = load(".github/workflows/perf-gate.yml");
    // `pull_request:` with nothing under it: every pull request, whatever its branch or paths.
    assert_eq!(
        wf["on"].get("pull_request"),
        Some(&Value::Null),
        "gate ci runs on every pull request"
    );
    assert_eq!(wf["on"]["push"]["branches"][0], "main");
    assert_eq!(wf["permissions"]["pull-requests"], "write");
    assert_eq!(wf["permissions"]["contents"], "write");
    let job = &wf["jobs"]["perf"];
    let steps = job["steps"].as_array().unwrap();
    let ci = steps
        .iter()
        .find(|s| s["run"].as_str().is_some_and(|r| r.contains("gate ci")))
        .expect("a gate ci step");
    assert_eq!(ci["if"], "github.event_name == 'pull_request'");
    assert_eq!(ci["env"]["GITHUB_TOKEN"], "${{ secrets.GITHUB_TOKEN }}");
    let save = steps
        .iter()
        .find(|s| s["uses"] == "actions/cache/save@v4")
        .unwrap();
    assert!(
        save["if"].as_str().unwrap().contains("!cancelled()"),
        "main's history is saved even when its run broke an SLO"
    );
    let uses: Vec<&str> = steps.iter().filter_map(|s| s["uses"].as_str()).collect();
    assert!(uses.contains(&"actions/cache/restore@v4") && uses.contains(&"actions/cache/save@v4"));
    let mut checked = Vec::new();
    for line in runs(job)
        .iter()
        .flat_map(|r| r.lines().map(str::to_string).collect::<Vec<_>>())
    {
        for command in ["ci", "run"] {
            if line
                .trim_start()
                .starts_with(&format!("./target/release/gate {command}"))
            {
                parses_as_gate(&line);
                checked.push(command);
            }
        }
    }
    assert!(
        checked.contains(&"ci") && checked.contains(&"run"),
        "the PR step runs `gate ci`, the push step `gate run`: checked {checked:?}"
    );
}

#[test]
fn the_fork_safe_pair_measures_without_secrets_and_publishes_from_trusted_code() {
    let _machine = crate::common::shared();
    let measure = load(".github/examples/perf-gate-fork-measure.yml");
    assert_eq!(measure["name"], "perf-gate-measure");
    assert_eq!(measure["permissions"]["contents"], "read");
    let job = &measure["jobs"]["measure"];
    let ci = runs(job)
        .into_iter()
        .find(|r| r.contains("gate ci"))
        .unwrap();
    assert!(ci.contains("--bundle gate-bundle"));
    parses_as_gate(&ci);
    let text = serde_json::to_string(&measure).unwrap();
    assert!(
        !text.contains("secrets."),
        "the measuring half uses no secrets"
    );

    let comment = load(".github/examples/perf-gate-fork-comment.yml");
    assert_eq!(
        comment["on"]["workflow_run"]["workflows"][0], measure["name"],
        "triggered by the measuring workflow"
    );
    let job = &comment["jobs"]["comment"];
    let steps = job["steps"].as_array().unwrap();
    let checkout = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/checkout"))
        })
        .unwrap();
    assert!(
        checkout.get("with").is_none(),
        "checks out the default branch, never the PR"
    );
    let publish = runs(job)
        .into_iter()
        .find(|r| r.contains("gate publish"))
        .unwrap();
    assert!(publish.contains("--expect-head-sha ${{ github.event.workflow_run.head_sha }}"));
    parses_as_gate(&publish);
}
