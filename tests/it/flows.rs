//! Flows (docs/flows.md) against the sample service: steps with captures, a login token carried
//! to writes, per-step endpoints, data files in each order, setup failures, captures that do not
//! match and checks beyond the status. The service's own request log proves that what was
//! captured is what was sent.

use std::path::Path;
use std::process::Command;

use crate::common::{shop_service, text};

/// `gate run` of the suite in `dir` against `target`; returns (exit code, stdout+stderr, the
/// JSON document).
fn run(dir: &Path, target: &str) -> (i32, String, serde_json::Value) {
    let json = dir.join("run.json");
    let out = Command::new(env!("CARGO_BIN_EXE_gate"))
        .args(["run", "--no-progress", "--suite"])
        .arg(dir)
        .args(["--target", target, "--json"])
        .arg(&json)
        .arg("--db")
        .arg(dir.join("history.db"))
        .current_dir(dir)
        .env("CI", "true")
        .env_remove("GATE_TARGET")
        .env_remove("API_TOKEN")
        .env_remove("GATE_INJECT_FAULT")
        .output()
        .expect("gate runs");
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let doc = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), said, doc)
}

fn endpoint<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["run"]["endpoints"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["name"] == name))
        .unwrap_or_else(|| panic!("no endpoint `{name}` in {doc}"))
}

fn suite(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    dir
}

const CHECKOUT: &str = r#"
name: checkout
data: { file: users.csv, order: random }
steps:
  - name: login
    method: POST
    url: /api/v1/login
    json: { user_id: "{{ data.user_id }}", password: "{{ data.password }}" }
    expect: { status: 200, json: { "$.token": exists } }
    capture: { token: "$.token", user_id: "$.user_id" }
  - name: create-order
    method: POST
    url: /api/v1/orders
    headers: { Authorization: "Bearer {{ token }}" }
    json:
      user_id: "{{ user_id }}"
      items: { $repeat: { min: 1, max: 3, item: { product_id: "{{ random_int(1, 2000) }}", qty: 1 } } }
    expect: { status: 201, json: { "$.items": "length >= 1" } }
    capture: { order_id: "$.id" }
  - name: read-order
    url: "/api/v1/orders/{{ order_id }}"
    expect: { status: 200, json: { "$.user_id": "exists" }, header: { content-type: application/json } }
  - name: my-orders
    url: "/api/v1/users/{{ user_id }}/orders"
    expect: { status: 200, json: { "$.orders": "length >= 1" } }
load: { users: 2, duration: 1s, warmup: 0s }
"#;

fn users_csv(ids: &[i64]) -> String {
    let mut s = "user_id,password\n".to_string();
    for id in ids {
        s.push_str(&format!("{id},{}\n", gate::demo::demo_password(*id)));
    }
    s
}

#[test]
fn a_flow_carries_captured_tokens_and_ids_and_counts_each_step() {
    let server = shop_service();
    let dir = suite(&[
        ("checkout.yml", CHECKOUT),
        ("users.csv", &users_csv(&[3, 5, 8])),
    ]);
    let (code, said, doc) = run(dir.path(), &server.url());
    assert_eq!(code, 0, "{said}");
    let steps = ["login", "create-order", "read-order", "my-orders"];
    for s in steps {
        let e = endpoint(&doc, &format!("checkout/{s}"));
        assert!(e["successes"].as_u64().unwrap() > 0, "{s}: {e}");
        assert_eq!(e["failures"], 0, "{s}: {e}");
    }
    let flow = endpoint(&doc, "checkout");
    let walks = flow["successes"].as_u64().unwrap();
    assert!(walks > 0, "{flow}");
    // Each walk is one of each step; the flow's latency covers them all.
    assert_eq!(
        endpoint(&doc, "checkout/my-orders")["successes"]
            .as_u64()
            .unwrap(),
        walks
    );
    assert!(
        flow["latency"]["p50_ms"].as_f64().unwrap()
            >= endpoint(&doc, "checkout/login")["latency"]["p50_ms"]
                .as_f64()
                .unwrap()
    );

    // The server's log: every order was written with a token the server issued at a login
    // for that same user, and every order read back is one the flow created.
    let log = server.request_log();
    let logins: Vec<(String, String)> = log
        .iter()
        .filter_map(|l| l.strip_prefix("login "))
        .filter_map(|l| {
            let (user, token) = l.split_once(" token=")?;
            Some((
                user.trim_start_matches("user=").to_string(),
                token.to_string(),
            ))
        })
        .collect();
    let created: Vec<(String, String, String)> = log
        .iter()
        .filter_map(|l| l.strip_prefix("create-order id="))
        .filter_map(|l| {
            let (id, rest) = l.split_once(" user=")?;
            let (user, token) = rest.split_once(" token=")?;
            Some((id.to_string(), user.to_string(), token.to_string()))
        })
        .collect();
    let read: Vec<&str> = log
        .iter()
        .filter_map(|l| l.strip_prefix("read-order id="))
        .collect();
    assert!(!created.is_empty() && !read.is_empty(), "{log:?}");
    for (_, user, token) in &created {
        assert!(
            logins.contains(&(user.clone(), token.clone())),
            "order written with a token not issued to user {user}: {token}"
        );
        assert!(["3", "5", "8"].contains(&user.as_str()), "{user}");
    }
    for id in &read {
        assert!(
            created.iter().any(|(c, _, _)| c == id),
            "read {id}, never created"
        );
    }
}

#[test]
fn a_capture_that_does_not_match_is_an_error_of_its_kind_not_a_panic() {
    let server = shop_service();
    let scenario = r#"
name: broken
steps:
  - name: product
    url: /api/v1/products/7
    capture: { missing: "$.no_such_field", tag: { regex: 'zzz(\d+)qqq' } }
  - name: never
    url: "/api/v1/products/{{ missing }}"
load: { users: 1, duration: 500ms, warmup: 0s }
"#;
    let dir = suite(&[("broken.yml", scenario)]);
    let (code, said, doc) = run(dir.path(), &server.url());
    assert!(!said.contains("panicked"), "{said}");
    assert!(code == 0 || code == 1, "{code}: {said}");
    let step = endpoint(&doc, "broken/product");
    let errors = step["errors"].as_object().unwrap();
    assert!(
        errors
            .get("capture:missing")
            .and_then(|n| n.as_u64())
            .unwrap_or(0)
            > 0,
        "{step}"
    );
    // The walk stops there: the next step is never sent.
    assert_eq!(endpoint(&doc, "broken/never")["requests"], 0);
    assert_eq!(endpoint(&doc, "broken")["successes"], 0);
}

#[test]
fn failed_checks_are_counted_by_name_and_never_abort() {
    let server = shop_service();
    let scenario = r#"
name: checked
request:
  url: "/api/v1/products?page=1&per_page=5"
expect:
  status: 200
  json: { "$.items": "length >= 50" }
load: { users: 1, duration: 500ms, warmup: 0s }
"#;
    let dir = suite(&[("checked.yml", scenario)]);
    let (code, said, doc) = run(dir.path(), &server.url());
    assert!(!said.contains("panicked"), "{said}");
    assert_ne!(code, 2, "{said}");
    let e = endpoint(&doc, "checked");
    let n = e["errors"]["check:$.items length >= 50"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        n > 1,
        "every request fails its check, and the run goes on: {e}"
    );
    assert_eq!(e["failures"].as_u64().unwrap(), n);
    assert_eq!(e["status_counts"]["200"].as_u64().unwrap(), n);
}

#[test]
fn setup_failure_stops_the_run_with_exit_3_naming_the_step() {
    let server = shop_service();
    let scenario = r#"
name: guarded
setup:
  - name: admin-login
    method: POST
    url: /api/v1/login
    json: { user_id: 1, password: wrong }
    capture: { token: "$.token" }
steps:
  - name: list
    url: /api/v1/products
load: { users: 1, duration: 1s, warmup: 0s }
"#;
    let dir = suite(&[("guarded.yml", scenario)]);
    let (code, said, _) = run(dir.path(), &server.url());
    assert_eq!(code, 3, "{said}");
    assert!(said.contains("admin-login"), "{said}");
    assert!(!said.contains("panicked"), "{said}");
}

#[test]
fn setup_captures_reach_every_user() {
    let server = shop_service();
    let scenario = format!(
        r#"
name: shared-login
setup:
  - name: login
    method: POST
    url: /api/v1/login
    json: {{ user_id: 4, password: "{}" }}
    capture: {{ token: "$.token" }}
steps:
  - name: order
    method: POST
    url: /api/v1/orders
    headers: {{ Authorization: "Bearer {{{{ token }}}}" }}
    json: {{ user_id: 4, items: [ {{ product_id: 2, qty: 1 }} ] }}
    expect: {{ status: 201 }}
load: {{ users: 2, duration: 500ms, warmup: 0s }}
"#,
        gate::demo::demo_password(4)
    );
    let dir = suite(&[("shared.yml", &scenario)]);
    let (code, said, doc) = run(dir.path(), &server.url());
    assert_eq!(code, 0, "{said}");
    assert_eq!(endpoint(&doc, "shared-login/order")["failures"], 0);
    let log = server.request_log();
    let logins = log.iter().filter(|l| l.starts_with("login ")).count();
    assert_eq!(logins, 1, "setup runs once: {log:?}");
    let token = log[0].split(" token=").nth(1).unwrap().to_string();
    let orders: Vec<_> = log
        .iter()
        .filter(|l| l.starts_with("create-order"))
        .collect();
    assert!(!orders.is_empty());
    assert!(
        orders
            .iter()
            .all(|l| l.ends_with(&format!("token={token}"))),
        "{log:?}"
    );
}

/// A flow whose one step writes an order for `data.user_id`, with the demo token.
fn feeder_scenario(order: &str, on_exhausted: &str, users: u32) -> String {
    format!(
        r#"
name: fed
data: {{ file: users.csv, order: {order}{on_exhausted} }}
request:
  method: POST
  url: /api/v1/orders
  headers: {{ Authorization: "Bearer demo-token" }}
  json: {{ user_id: "{{{{ data.user_id }}}}", items: [ {{ product_id: 1, qty: 1 }} ] }}
expect: {{ status: 201 }}
load: {{ users: {users}, duration: 2s, warmup: 0s }}
"#
    )
}

fn ordered_users(log: &[String]) -> Vec<String> {
    log.iter()
        .filter_map(|l| l.strip_prefix("create-order id="))
        .filter_map(|l| l.split(" user=").nth(1))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn unique_rows_are_used_once_and_stop_ends_the_scenario() {
    let server = shop_service();
    let ids: Vec<i64> = (10..30).collect();
    let dir = suite(&[
        ("fed.yml", &feeder_scenario("unique", "", 4)),
        ("users.csv", &users_csv(&ids)),
    ]);
    let (code, said, doc) = run(dir.path(), &server.url());
    assert_eq!(code, 0, "{said}");
    let mut users = ordered_users(&server.request_log());
    assert_eq!(users.len(), ids.len(), "each row once: {users:?}");
    users.sort();
    users.dedup();
    assert_eq!(users.len(), ids.len(), "no row twice");
    assert_eq!(endpoint(&doc, "fed")["successes"], ids.len() as u64);
}

#[test]
fn sequential_wraps_and_random_stays_in_the_file() {
    let server = shop_service();
    let ids: Vec<i64> = vec![40, 41, 42];
    let dir = suite(&[
        ("fed.yml", &feeder_scenario("sequential", "", 1)),
        ("users.csv", &users_csv(&ids)),
    ]);
    let (code, said, _) = run(dir.path(), &server.url());
    assert_eq!(code, 0, "{said}");
    let users = ordered_users(&server.request_log());
    assert!(users.len() > ids.len(), "it wraps: {users:?}");
    // One user, one cursor: rows come in file order, round and round.
    for (i, u) in users.iter().enumerate() {
        assert_eq!(u, &ids[i % ids.len()].to_string(), "{users:?}");
    }

    let server = shop_service();
    let dir = suite(&[
        ("fed.yml", &feeder_scenario("random", "", 2)),
        ("users.csv", &users_csv(&ids)),
    ]);
    let (code, said, _) = run(dir.path(), &server.url());
    assert_eq!(code, 0, "{said}");
    let users = ordered_users(&server.request_log());
    assert!(users.len() > ids.len());
    assert!(
        users
            .iter()
            .all(|u| ["40", "41", "42"].contains(&u.as_str()))
    );

    let server = shop_service();
    let dir = suite(&[
        (
            "fed.yml",
            &feeder_scenario("sequential", ", on_exhausted: stop", 1),
        ),
        ("users.csv", &users_csv(&ids)),
    ]);
    let (code, said, _) = run(dir.path(), &server.url());
    assert_eq!(code, 0, "{said}");
    assert_eq!(ordered_users(&server.request_log()), ["40", "41", "42"]);
}

#[test]
fn bad_flows_are_exit_2_with_file_and_line() {
    let server = shop_service();
    for (yml, csv, want) in [
        (
            "name: f\ndata: { file: nope.csv }\nrequest: { url: \"/x/{{ data.id }}\" }\n",
            None,
            "f.yml:2:",
        ),
        (
            "name: f\ndata: { file: users.csv }\nrequest: { url: \"/x/{{ data.nope }}\" }\n",
            Some("user_id,password\n1,a\n"),
            "no column `nope`",
        ),
        (
            "name: f\nsteps:\n  - name: a\n    url: \"/x/{{ later }}\"\n  - name: b\n    url: /y\n    capture: { later: \"$.id\" }\n",
            None,
            "f.yml:4:",
        ),
        (
            "name: f\nsteps:\n  - name: a\n    url: /x\n    capture: { id: \"$[\" }\n",
            None,
            "f.yml:5:",
        ),
        (
            "name: f\nrequest: { url: /x }\nexpect: { json: { \"$.a\": \"is big\" } }\n",
            None,
            "f.yml:3:",
        ),
    ] {
        let mut files = vec![("f.yml", yml)];
        if let Some(c) = csv {
            files.push(("users.csv", c));
        }
        let dir = suite(&files);
        let (code, said, _) = run(dir.path(), &server.url());
        assert_eq!(code, 2, "{yml}: {said}");
        assert!(said.contains(want), "{yml}: want {want} in {said}");
        assert!(!said.contains("panicked"), "{said}");
    }
}

#[test]
fn a_traffic_mix_splits_one_rate_by_weight() {
    let server = shop_service();
    let dir = suite(&[
        (
            "suite.yml",
            "defaults:\n  load: { rate: 100/s, duration: 1500ms, warmup: 0s, max_in_flight: 16 }\n",
        ),
        (
            "browse.yml",
            "name: browse\ngroup: shop\nweight: 70\nrequest: { url: \"/api/v1/products/{{ random_int(1, 2000) }}\" }\n",
        ),
        (
            "search.yml",
            "name: search\ngroup: shop\nweight: 20\nrequest: { url: \"/api/v1/products?page={{ random_int(1, 50) }}\" }\n",
        ),
        (
            "checkout.yml",
            "name: checkout\ngroup: shop\nweight: 10\nrequest:\n  method: POST\n  url: /api/v1/orders\n  headers: { Authorization: \"Bearer demo-token\" }\n  json: { user_id: 1, items: [ { product_id: 1, qty: 1 } ] }\nexpect: { status: 201 }\n",
        ),
    ]);
    let (code, said, doc) = run(dir.path(), &server.url());
    assert_eq!(code, 0, "{said}");
    let rate = |n: &str| endpoint(&doc, n)["load"]["rate_per_s"].as_f64().unwrap();
    let requests = |n: &str| endpoint(&doc, n)["requests"].as_u64().unwrap();
    assert_eq!(
        (rate("browse"), rate("search"), rate("checkout")),
        (70.0, 20.0, 10.0)
    );
    let (b, s, c) = (requests("browse"), requests("search"), requests("checkout"));
    assert!(c > 0 && s > c && b > 2 * s, "{b} {s} {c}");
}
