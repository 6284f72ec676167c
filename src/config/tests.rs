use std::path::PathBuf;
use std::time::Duration;

use super::*;

fn src(path: &str, text: &str) -> Source {
    Source {
        path: PathBuf::from(path),
        text: text.to_string(),
    }
}

fn env(name: &str) -> Option<String> {
    (name == "API_TOKEN").then(|| "tok-123".to_string())
}

fn plan(suite: Option<&str>, scenarios: &[(&str, &str)]) -> Result<Plan, ConfigError> {
    let suite = suite.map(|t| src("s/suite.yml", t));
    let scenarios: Vec<Source> = scenarios.iter().map(|(p, t)| src(p, t)).collect();
    build_plan("s", suite.as_ref(), &scenarios, &Overrides::default(), &env)
}

const SUITE: &str = r#"
target: http://127.0.0.1:8080/base
defaults:
  load: { users: 7, duration: 3s, warmup: 1s }
  headers: { Authorization: "Bearer ${API_TOKEN}", Accept: application/json }
thresholds: [ "p95 < 300ms", "error_rate < 1%" ]
"#;

#[test]
fn scenarios_inherit_suite_defaults_and_override_them() {
    let p = plan(
        Some(SUITE),
        &[
            ("s/a.yml", "name: a\nrequest: { url: /x }\n"),
            (
                "s/b.yml",
                "name: b\nrequest:\n  method: post\n  url: /y\n  headers: { Accept: text/plain }\n  json: { id: \"{{ random_int(1, 3) }}\" }\nexpect: { status: [201, 202] }\nload: { rate: 50/s, duration: 2s }\nthresholds: [ \"p99 < 1s\" ]\n",
            ),
        ],
    )
    .unwrap();
    assert_eq!(p.target.url(), "http://127.0.0.1:8080/base");
    let a = &p.scenarios[0];
    assert_eq!(a.load.model, LoadModel::Closed { users: 7 });
    assert_eq!(a.load.duration, Duration::from_secs(3));
    assert_eq!(a.thresholds.len(), 2);
    assert!(a.expect.accepts(204) && !a.expect.accepts(404));
    let auth = a
        .request
        .headers
        .iter()
        .find(|h| h.name == "authorization")
        .unwrap();
    assert!(auth.secret, "a header from ${{ENV}} is secret");
    let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(0);
    assert_eq!(a.request.path.render(&mut rng), "/base/x");

    let b = &p.scenarios[1];
    assert_eq!(b.request.method, http::Method::POST);
    assert_eq!(
        b.load.model,
        LoadModel::Open {
            rate: 50.0,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT
        }
    );
    assert_eq!(b.load.duration, Duration::from_secs(2));
    assert_eq!(
        b.load.warmup,
        Duration::from_secs(1),
        "warmup still inherited"
    );
    assert_eq!(b.thresholds.len(), 1);
    assert_eq!(b.expect.statuses, vec![201, 202]);
    let accept = b
        .request
        .headers
        .iter()
        .find(|h| h.name == "accept")
        .unwrap();
    assert_eq!(accept.value.render(&mut rng), "text/plain");
    assert!(!accept.secret);
    assert_eq!(
        b.request.headers.len(),
        2,
        "Accept overridden, not duplicated"
    );
}

#[test]
fn scenario_hash_tracks_the_definition_not_the_formatting() {
    let hash = |text: &str| {
        let overrides = Overrides {
            target: Some("http://127.0.0.1:1".into()),
            ..Overrides::default()
        };
        build_plan("s", None, &[src("a.yml", text)], &overrides, &env)
            .unwrap()
            .scenarios[0]
            .hash
            .clone()
    };
    let base = hash("name: a\nrequest: { url: /x }\nload: { users: 3 }\n");
    let reformatted = hash(
        "# comment\nname: a\nrequest:\n  url: /x\nload:\n  users: 3\nthresholds: [\"p50 < 1s\"]\n",
    );
    let more_users = hash("name: a\nrequest: { url: /x }\nload: { users: 4 }\n");
    let other_url = hash("name: a\nrequest: { url: /y }\nload: { users: 3 }\n");
    assert_eq!(
        base, reformatted,
        "comments, layout and thresholds do not change the definition"
    );
    assert_ne!(base, more_users);
    assert_ne!(base, other_url);
}

/// Hashes are stored in histories and baselines are matched on them: these values were
/// produced by the code that wrote existing histories, and must not change. HTTP scenarios sort
/// their headers; LLM scenarios keep the order of the file's map (names as written, so `X-B`
/// before `a-c`), then lowercase them.
#[test]
fn scenario_hashes_match_the_ones_in_existing_histories() {
    let overrides = Overrides {
        target: Some("http://127.0.0.1:1".into()),
        ..Overrides::default()
    };
    let hashes = |text: &str| -> Vec<String> {
        build_plan("s", None, &[src("a.yml", text)], &overrides, &|_| None)
            .unwrap()
            .scenarios
            .iter()
            .map(|s| s.hash.clone())
            .collect()
    };
    assert_eq!(
        hashes(
            "name: a\nrequest:\n  url: /x\n  headers: { X-B: one, a-c: two }\nload: { users: 3 }\n"
        ),
        ["55bd468a2c2ee898"]
    );
    assert_eq!(
        hashes(
            "name: a\nrequest:\n  url: /x\n  headers: { a-c: two, X-B: one }\nload: { users: 3 }\n"
        ),
        ["55bd468a2c2ee898"],
        "header order as written is not part of an HTTP definition"
    );
    assert_eq!(
        hashes(
            "name: m\nllm:\n  provider: openai\n  api_key: ${K:-k}\n  models: [m1]\n  prompt: hi\n  headers: { X-B: one, a-c: two }\nload: { concurrency: 1, requests: 2 }\n"
        ),
        ["bf377f5378ff7750"]
    );
}

fn error_of(scenario: &str) -> String {
    plan(
        Some("target: http://127.0.0.1:1\n"),
        &[("s/x.yml", scenario)],
    )
    .unwrap_err()
    .to_string()
}

#[test]
fn bad_input_names_file_line_column_and_field() {
    let cases = [
        (
            "name: x\nrequest:\n  url: /a\n  methd: GET\n",
            "s/x.yml:4:3: unknown field `methd`",
        ),
        (
            "name: x\nrequest: { url: /a }\nload:\n  duration: 60 seconds\n",
            "s/x.yml:4:13: load.duration: `60 seconds` is not a duration",
        ),
        (
            "name: x\nrequest: { url: /a }\nthresholds:\n  - p95 << 3\n",
            "s/x.yml:4:5: thresholds[0]: `p95 << 3`: unknown comparison `<<`",
        ),
        (
            "name: x\nrequest: { url: \"/a b\" }\n",
            "s/x.yml:2:17: request.url:",
        ),
        (
            "name: x\nrequest: { url: \"a/b\" }\n",
            "must be a path starting with `/`",
        ),
        (
            "name: x\nrequest:\n  url: /a\n  headers: { X-Key: \"${NOT_SET_ANYWHERE}\" }\n",
            "s/x.yml:4:21: request.headers.X-Key: environment variable `NOT_SET_ANYWHERE` is not set",
        ),
        (
            "name: x\nrequest: { url: /a, method: \"G T\" }\n",
            "request.method: `G T` is not an HTTP method",
        ),
        (
            "name: x\nrequest: { url: /a }\nload: { users: 2, rate: 5/s }\n",
            "load.rate: use either",
        ),
        (
            "name: x\nrequest: { url: /a }\nload: { rate: fast }\n",
            "load.rate: `fast` is not a rate",
        ),
        (
            "name: x\nrequest: { url: /a }\nload: { users: 0 }\n",
            "load.users: must be 1 to 10000",
        ),
        (
            "name: x\nrequest: { url: \"/a/{{ nope(1) }}\" }\n",
            "unknown generator `nope`",
        ),
        (
            "name: x\nrequest: { url: /a }\nexpect: { status: 999 }\n",
            "expect.status: 999 is not an HTTP status",
        ),
        ("name: x\nrequest: [ url ]\n", "s/x.yml:2:"),
        (
            "name: \"\"\nrequest: { url: /a }\n",
            "name: must not be empty",
        ),
        ("request: { url: /a }\n", "missing field `name`"),
        (
            "name: x\nrequest: { url: /a }\n  bad indent: 1\n",
            "s/x.yml:",
        ),
    ];
    for (yaml, want) in cases {
        let err = error_of(yaml);
        assert!(
            err.contains(want),
            "for\n{yaml}\nwant `{want}`\ngot  `{err}`"
        );
        assert!(!err.contains('\n'), "one line: {err}");
    }
}

#[test]
fn suite_level_errors_and_flags() {
    let err = plan(
        Some("target: ftp://x\n"),
        &[("a.yml", "name: a\nrequest: { url: /a }\n")],
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with("s/suite.yml:1:9: target: "),
        "{err}"
    );
    let err = plan(Some("tragets: 1\n"), &[]).unwrap_err();
    assert!(err.to_string().contains("unknown field `tragets`"), "{err}");
    let err = plan(None, &[("a.yml", "name: a\nrequest: { url: /a }\n")]).unwrap_err();
    assert!(err.to_string().starts_with("--target: no target"), "{err}");
    let err = build_plan(
        "s",
        None,
        &[src("a.yml", "name: a\nrequest: { url: /a }\n")],
        &Overrides {
            target: Some("http://exa mple".into()),
            ..Overrides::default()
        },
        &env,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("--target: `http://exa mple` is not a URL"),
        "{err}"
    );
    let err = plan(
        Some("target: http://127.0.0.1:1\n"),
        &[
            ("a.yml", "name: a\nrequest: { url: /a }\n"),
            ("b.yml", "name: a\nrequest: { url: /b }\n"),
        ],
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("`a` is already the name of a.yml"),
        "{err}"
    );
    let err = build_plan(
        "s",
        Some(&src("suite.yml", "target: http://127.0.0.1:1\n")),
        &[src("a.yml", "name: a\nrequest: { url: /a }\n")],
        &Overrides {
            only: vec!["zzz".into()],
            ..Overrides::default()
        },
        &env,
    )
    .unwrap_err();
    assert!(err.to_string().contains("no scenario named `zzz`"), "{err}");
}

#[test]
fn targets_parse_strictly() {
    let t = parse_target("http://127.0.0.1:8080").unwrap();
    assert_eq!(
        (t.host.as_str(), t.port, t.base_path.as_str()),
        ("127.0.0.1", 8080, "")
    );
    assert_eq!(t.authority(), "127.0.0.1:8080");
    let t = parse_target("http://[::1]:9000/api/").unwrap();
    assert_eq!((t.host.as_str(), t.base_path.as_str()), ("::1", "/api"));
    assert_eq!(t.url(), "http://[::1]:9000/api");
    assert_eq!(parse_target("http://localhost").unwrap().port, 80);
    let t = parse_target("https://api.example.com/v1/").unwrap();
    assert!(t.tls);
    assert_eq!(t.port, 443);
    assert_eq!(t.authority(), "api.example.com");
    assert_eq!(t.url(), "https://api.example.com:443/v1");
    assert_eq!(
        parse_target("https://x:8443").unwrap().authority(),
        "x:8443"
    );
    assert!(
        parse_target("ftp://x")
            .unwrap_err()
            .contains("not http or https")
    );
    assert!(parse_target("localhost:8080").is_err());
    assert!(parse_target("http://x/?q=1").unwrap_err().contains("query"));
}

#[test]
fn the_shipped_scenarios_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let (suite, scenarios) = read_suite(&dir).unwrap();
    let p = build_plan(
        "scenarios",
        suite.as_ref(),
        &scenarios,
        &Overrides::default(),
        &env,
    )
    .unwrap();
    let names: Vec<&str> = p.scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "create-order",
            "product-detail",
            "products-list",
            "user-orders"
        ]
    );
    for s in &p.scenarios {
        assert!(
            s.thresholds.iter().any(|t| t.text.starts_with("p95")),
            "{}",
            s.name
        );
    }
}

#[test]
fn a_ramp_expands_into_one_closed_step_per_concurrency() {
    let p = plan(
        Some("target: http://127.0.0.1:1\nthresholds: [\"p95 < 1s\"]\n"),
        &[("s/r.yml", "name: orders\nrequest: { url: /o }\nload: { users: [1, 5, 25], step: 2s, warmup: 0s }\n")],
    )
    .unwrap();
    let names: Vec<&str> = p.scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["orders@1", "orders@5", "orders@25"]);
    for (s, users) in p.scenarios.iter().zip([1, 5, 25]) {
        assert_eq!(s.load.model, LoadModel::Closed { users });
        assert_eq!(s.load.duration, Duration::from_secs(2));
        assert!(
            s.thresholds.is_empty(),
            "a ramp goes past the knee on purpose"
        );
        assert_eq!(s.ramp.as_ref().unwrap().group, "orders");
    }
    assert_ne!(p.scenarios[0].hash, p.scenarios[1].hash);
    let only = build_plan(
        "s",
        Some(&src("s/suite.yml", "target: http://127.0.0.1:1\n")),
        &[src(
            "s/r.yml",
            "name: orders\nrequest: { url: /o }\nload: { users: [1, 5] }\n",
        )],
        &Overrides {
            only: vec!["orders".into()],
            ..Overrides::default()
        },
        &env,
    )
    .unwrap();
    assert_eq!(only.scenarios.len(), 2, "--scenario names the ramp");
    for (yaml, want) in [
        ("load: { users: [5, 1] }", "ramp steps must rise"),
        ("load: { users: [] }", "a ramp takes 1 to 20 steps"),
        ("load: { users: [1, 0] }", "must be 1 to 10000"),
        ("load: { users: 3, step: 1s }", "`step:` needs ramp steps"),
        ("load: { users: many }", "must be 1 to 10000"),
    ] {
        let err = error_of(&format!("name: x\nrequest: {{ url: /a }}\n{yaml}\n"));
        assert!(err.contains(want), "{yaml}: {err}");
    }
}

#[test]
fn resolve_rules_parse_like_curl() {
    let r = ResolveRule::parse("API.example.com:443:127.0.0.1").unwrap();
    assert_eq!(r.host, "api.example.com");
    assert_eq!(r.port, 443);
    assert_eq!(r.addr, std::net::IpAddr::from([127, 0, 0, 1]));
    let r = ResolveRule::parse("h:8443:[::1]").unwrap();
    assert_eq!(r.addr, "::1".parse::<std::net::IpAddr>().unwrap());
    for bad in [
        "h:443",
        "h:x:127.0.0.1",
        ":443:127.0.0.1",
        "h:443:not-an-ip",
        "h:0:127.0.0.1",
    ] {
        assert!(ResolveRule::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_mix_splits_one_rate_by_weight() {
    let suite = "target: http://127.0.0.1:1\ndefaults:\n  load: { rate: 100/s, duration: 1s }\n";
    let p = plan(
        Some(suite),
        &[
            (
                "s/a.yml",
                "name: browse\ngroup: shop\nweight: 70\nrequest: { url: /a }\n",
            ),
            (
                "s/b.yml",
                "name: search\ngroup: shop\nweight: 20\nrequest: { url: /b }\n",
            ),
            (
                "s/c.yml",
                "name: checkout\ngroup: shop\nweight: 10\nrequest: { url: /c }\n",
            ),
            ("s/d.yml", "name: alone\nrequest: { url: /d }\n"),
        ],
    )
    .unwrap();
    let rates: Vec<f64> = p
        .scenarios
        .iter()
        .map(|s| match s.load.model {
            LoadModel::Open { rate, .. } => rate,
            _ => panic!("open"),
        })
        .collect();
    assert_eq!(rates.len(), 4);
    for (got, want) in rates.iter().zip([70.0, 20.0, 10.0, 100.0]) {
        assert!((got - want).abs() < 1e-9, "{rates:?}");
    }
    assert!(p.scenarios[3].group.is_none());
    // A weight without a group, a closed-model member, rates that disagree: errors with a place.
    let err = plan(
        Some(suite),
        &[("s/a.yml", "name: a\nweight: 2\nrequest: { url: /a }\n")],
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("s/a.yml:2:"), "{err}");
    let err = plan(
        Some(suite),
        &[(
            "s/a.yml",
            "name: a\ngroup: g\nrequest: { url: /a }\nload: { users: 2 }\n",
        )],
    )
    .unwrap_err();
    assert!(err.to_string().contains("open model"), "{err}");
    let err = plan(
        Some(suite),
        &[
            ("s/a.yml", "name: a\ngroup: g\nrequest: { url: /a }\n"),
            (
                "s/b.yml",
                "name: b\ngroup: g\nrequest: { url: /b }\nload: { rate: 5/s }\n",
            ),
        ],
    )
    .unwrap_err();
    assert!(err.to_string().contains("share one `load.rate`"), "{err}");
}

#[test]
fn flows_resolve_names_in_order_and_refuse_unknown_ones() {
    let suite = "target: http://127.0.0.1:1\n";
    let flow = r#"name: checkout
setup:
  - name: admin
    method: POST
    url: /login
    capture: { admin_token: "$.token" }
steps:
  - name: login
    method: POST
    url: /login
    headers: { X-Admin: "{{ admin_token }}" }
    capture: { token: "$.token", sid: { cookie: sid }, etag: { header: etag }, n: { regex: 'n=(\d+)' } }
  - name: order
    method: POST
    url: "/orders?n={{ n }}"
    headers: { Authorization: "Bearer {{ token }}" }
    json: { items: { $repeat: { min: 2, max: 2, item: { id: "{{ random_int(1, 9) }}" } } }, n: "{{ n }}" }
    expect: { status: 201, json: { "$.id": exists }, body_contains: ok, header: { content-type: json } }
"#;
    let p = plan(Some(suite), &[("s/f.yml", flow)]).unwrap();
    let f = p.scenarios[0].flow.as_ref().unwrap();
    assert!(!f.single);
    assert_eq!(f.vars, ["admin_token", "etag", "n", "sid", "token"]);
    assert_eq!(f.steps.len(), 2);
    assert_eq!(f.steps[1].checks.len(), 3);
    assert!(f.steps[0].needs_body && f.steps[1].needs_body);
    let vars: Vec<String> = f.vars.iter().map(|v| format!("<{v}>")).collect();
    let scope = template::Scope {
        vars: &vars,
        row: &[],
        feeder: None,
    };
    let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(0);
    let mut out = String::new();
    f.steps[1]
        .request
        .path
        .render_in(&mut rng, &scope, &mut out);
    assert_eq!(out, "/orders?n=<n>");
    let Some(Body::Json(body)) = &f.steps[1].request.body else {
        panic!("json body")
    };
    let mut out = String::new();
    body.render_in(&mut rng, &scope, &mut out);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    assert_eq!(v["n"], "<n>");

    // A name used before the step that captures it: an error at its line.
    let early = "name: f\nsteps:\n  - name: a\n    url: \"/x/{{ id }}\"\n  - name: b\n    url: /y\n    capture: { id: \"$.id\" }\n";
    let err = plan(Some(suite), &[("s/f.yml", early)]).unwrap_err();
    assert!(err.to_string().starts_with("s/f.yml:4:"), "{err}");
    assert!(err.to_string().contains("nothing is captured"), "{err}");
    for (bad, want) in [
        (
            "name: f\nsteps:\n  - name: a\n    url: /x\n    capture: { id: { regex: 'no group' } }\n",
            "capture group",
        ),
        (
            "name: f\nsteps:\n  - name: a\n    url: /x\n    capture: { id: { xpath: '//a' } }\n",
            "unknown capture",
        ),
        (
            "name: f\nsteps:\n  - name: a\n    url: /x\n  - name: a\n    url: /y\n",
            "names another step",
        ),
        ("name: f\nsteps: []\n", "empty"),
        (
            "name: f\nrequest: { url: /x }\nsteps:\n  - name: a\n    url: /x\n",
            "not both",
        ),
    ] {
        let err = plan(Some(suite), &[("s/f.yml", bad)]).unwrap_err();
        assert!(err.to_string().contains(want), "{bad}: {err}");
    }
}
