//! End-to-end tests: a real server on an ephemeral port, real HTTP over TCP.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::{DemoError, DemoOptions, DemoServer, REGRESSIONS, Regression};

fn start(opts: DemoOptions) -> DemoServer {
    DemoServer::start(local(), opts).expect("demo server starts")
}

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Server-Timing entries as (name, dur in ms).
    fn timings(&self) -> Vec<(String, f64)> {
        let header = self
            .headers
            .get("server-timing")
            .expect("Server-Timing header present")
            .to_str()
            .expect("Server-Timing is ASCII");
        header
            .split(',')
            .map(|metric| {
                let mut parts = metric.trim().split(';');
                let name = parts.next().expect("metric name").to_owned();
                let dur = parts
                    .find_map(|p| p.trim().strip_prefix("dur="))
                    .unwrap_or_else(|| panic!("metric without dur: {metric}"));
                // Exactly three decimals, as promised.
                assert_eq!(dur.split('.').nth(1).map(str::len), Some(3), "{header}");
                (name, dur.parse().expect("dur is a number"))
            })
            .collect()
    }

    fn timing(&self, name: &str) -> Option<f64> {
        self.timings()
            .into_iter()
            .find_map(|(n, d)| (n == name).then_some(d))
    }
}

/// One request on a fresh connection, so tests cannot interfere through keep-alive.
async fn call(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> Reply {
    call_with(addr, method, path, body, body.map(|_| "application/json")).await
}

async fn call_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    content_type: Option<&str>,
) -> Reply {
    let auth = format!("Bearer {}", super::DEMO_TOKEN);
    call_as(addr, method, path, body, content_type, Some(&auth)).await
}

async fn call_as(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    content_type: Option<&str>,
    authorization: Option<&str>,
) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to demo server");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP handshake");
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, addr.to_string());
    if let Some(ct) = content_type {
        req = req.header(CONTENT_TYPE, ct);
    }
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or("").to_owned())))
        .expect("valid request");
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("response body")
        .to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("test runtime")
}

// Deliberately a plain #[test]: start() must work without a caller runtime.
#[test]
fn seeds_expected_volumes_and_cleans_up() {
    let server = start(DemoOptions::default());
    let stats = server.seed_stats();
    assert_eq!(stats.products, 2000);
    assert_eq!(stats.users, 500);
    assert!((20_000..=30_000).contains(&stats.orders), "{stats:?}");
    assert!(
        (3 * stats.orders..=5 * stats.orders).contains(&stats.line_items),
        "{stats:?}"
    );
    assert!(server.url().starts_with("http://127.0.0.1:"));
    assert_ne!(server.addr().port(), 0);

    let addr = server.addr();
    let health = runtime().block_on(call(addr, "GET", "/health", None));
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(&health.body[..], b"ok");
    assert!(health.headers.get("server-timing").is_none());

    let dir = server.db_dir();
    assert!(dir.exists());
    server.shutdown();
    assert!(!dir.exists(), "temp database removed on shutdown");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "listener closed"
    );
}

#[test]
fn same_seed_same_data() {
    let (a, b) = (start(DemoOptions::default()), start(DemoOptions::default()));
    let c = start(DemoOptions {
        seed: 7,
        ..DemoOptions::default()
    });
    let rt = runtime();
    let get = |s: &DemoServer| rt.block_on(call(s.addr(), "GET", "/api/v1/users/3/orders", None));
    assert_eq!(get(&a).json(), get(&b).json());
    assert_ne!(get(&a).json(), get(&c).json());
}

#[test]
fn bind_failure_names_the_address() {
    let taken = std::net::TcpListener::bind(local()).expect("bind");
    let addr = taken.local_addr().expect("addr");
    let err = DemoServer::start(addr, DemoOptions::default()).expect_err("port is taken");
    assert!(matches!(err, DemoError::Bind { .. }), "{err:?}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[test]
fn regression_names() {
    for name in REGRESSIONS {
        let r: Regression = name.parse().expect("listed names parse");
        assert_eq!(r.to_string(), *name);
    }
    assert_eq!("n-plus-one".parse(), Ok(Regression::NPlusOne));
    let err = "n+1".parse::<Regression>().expect_err("unknown name");
    assert!(err.to_string().contains("n-plus-one"), "{err}");
}

#[tokio::test]
async fn endpoints_return_documented_shapes() {
    let server = start(DemoOptions::default());
    let addr = server.addr();

    // Products, default page.
    let r = call(addr, "GET", "/api/v1/products", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(
        (v["page"].as_u64(), v["per_page"].as_u64()),
        (Some(1), Some(20))
    );
    assert_eq!(v["total"], 2000);
    let items = v["items"].as_array().expect("items");
    assert_eq!(items.len(), 20);
    for key in ["id", "name", "price_cents", "stock", "category_id"] {
        assert!(!items[0][key].is_null(), "missing {key}: {}", items[0]);
    }

    // Explicit page, clamped per_page, page past the end.
    let v = call(addr, "GET", "/api/v1/products?page=3&per_page=5", None)
        .await
        .json();
    let ids: Vec<u64> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["id"].as_u64())
        .collect();
    assert_eq!(ids, [11, 12, 13, 14, 15]);
    let v = call(addr, "GET", "/api/v1/products?per_page=1000", None)
        .await
        .json();
    assert_eq!(v["per_page"], 100);
    assert_eq!(v["items"].as_array().map(Vec::len), Some(100));
    let v = call(addr, "GET", "/api/v1/products?page=1000000", None)
        .await
        .json();
    assert_eq!(v["items"], json!([]));

    // Product detail with relations.
    let r = call(addr, "GET", "/api/v1/products/17", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["id"], 17);
    assert!(v["description"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(v["category"]["name"].is_string());
    assert!(v["rating"]["count"].is_u64());
    let reviews = v["recent_reviews"].as_array().expect("reviews");
    assert!(reviews.len() <= 5);
    assert_eq!(
        v["rating"]["average"].is_null(),
        v["rating"]["count"] == 0,
        "{v}"
    );

    let r = call(addr, "GET", "/api/v1/products/999999", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["error"].is_string());

    // A user's orders, newest first, each with items.
    let r = call(addr, "GET", "/api/v1/users/1/orders", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["user_id"], 1);
    let orders = v["orders"].as_array().expect("orders");
    assert!((30..=70).contains(&orders.len()), "{}", orders.len());
    let created: Vec<i64> = orders
        .iter()
        .filter_map(|o| o["created_at"].as_i64())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first");
    for order in orders {
        let items = order["items"].as_array().expect("items");
        assert!((3..=5).contains(&items.len()));
        let total: i64 = items
            .iter()
            .map(|i| i["qty"].as_i64().unwrap_or(0) * i["unit_price_cents"].as_i64().unwrap_or(0))
            .sum();
        assert_eq!(order["total_cents"], total);
    }

    let r = call(addr, "GET", "/api/v1/users/100000/orders", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["error"].is_string());
}

#[tokio::test]
async fn created_order_appears_in_user_orders() {
    let server = start(DemoOptions::default());
    let addr = server.addr();
    let body =
        r#"{"user_id": 7, "items": [{"product_id": 3, "qty": 2}, {"product_id": 1999, "qty": 1}]}"#;
    let r = call(addr, "POST", "/api/v1/orders", Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let created = r.json();
    assert_eq!(created["user_id"], 7);
    assert_eq!(created["status"], "pending");
    let items = created["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(
        (items[0]["product_id"].as_i64(), items[0]["qty"].as_i64()),
        (Some(3), Some(2))
    );

    // The unit price is the product's current price.
    let p3 = call(addr, "GET", "/api/v1/products/3", None).await.json();
    assert_eq!(items[0]["unit_price_cents"], p3["price_cents"]);
    let p1999 = call(addr, "GET", "/api/v1/products/1999", None)
        .await
        .json();
    let expected_total = 2 * p3["price_cents"].as_i64().expect("price")
        + p1999["price_cents"].as_i64().expect("price");
    assert_eq!(created["total_cents"], expected_total);

    let listed = call(addr, "GET", "/api/v1/users/7/orders", None)
        .await
        .json();
    assert_eq!(listed["orders"][0], created, "new order listed first");

    // A second order comes before the first (same second: higher id wins).
    let r = call(
        addr,
        "POST",
        "/api/v1/orders",
        Some(r#"{"user_id":7,"items":[{"product_id":5,"qty":100}]}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let second = r.json();
    let listed = call(addr, "GET", "/api/v1/users/7/orders", None)
        .await
        .json();
    assert_eq!(listed["orders"][0], second);
    assert_eq!(listed["orders"][1], created);
}

#[tokio::test]
async fn malformed_requests_get_json_4xx() {
    let server = start(DemoOptions::default());
    let addr = server.addr();
    let item = r#"{"product_id": 1, "qty": 1}"#;
    let many = vec![item; 21].join(",");
    let too_many = format!(r#"{{"user_id": 1, "items": [{many}]}}"#);
    let cases: Vec<(&str, &str, Option<&str>, u16)> = vec![
        ("GET", "/api/v1/products/abc", None, 400),
        ("GET", "/api/v1/products/99999999999999999999999", None, 400),
        ("GET", "/api/v1/products/-1", None, 404),
        ("GET", "/api/v1/users/x/orders", None, 400),
        ("GET", "/api/v1/products?page=abc", None, 400),
        ("GET", "/api/v1/products?page=0", None, 400),
        ("GET", "/api/v1/products?per_page=0", None, 400),
        ("GET", "/api/v1/products?per_page=-3", None, 400),
        ("GET", "/nope", None, 404),
        ("GET", "/api/v1/products/", None, 404),
        ("DELETE", "/api/v1/products/1", None, 405),
        ("GET", "/api/v1/orders", None, 405),
        ("POST", "/health", None, 405),
        ("POST", "/api/v1/orders", Some("{not json"), 400),
        ("POST", "/api/v1/orders", Some(""), 400),
        ("POST", "/api/v1/orders", Some(r#"{"user_id": 1}"#), 422),
        (
            "POST",
            "/api/v1/orders",
            Some(r#"{"user_id": "1", "items": []}"#),
            422,
        ),
        (
            "POST",
            "/api/v1/orders",
            Some(r#"{"user_id": 1, "items": [{"product_id": 1, "qty": 1.5}]}"#),
            422,
        ),
        ("POST", "/api/v1/orders", Some(r#"[1, 2]"#), 422),
        (
            "POST",
            "/api/v1/orders",
            Some(r#"{"user_id": 1, "items": []}"#),
            422,
        ),
        ("POST", "/api/v1/orders", Some(&too_many), 422),
        (
            "POST",
            "/api/v1/orders",
            Some(r#"{"user_id": 1, "items": [{"product_id": 1, "qty": 0}]}"#),
            422,
        ),
        (
            "POST",
            "/api/v1/orders",
            Some(r#"{"user_id": 1, "items": [{"product_id": 1, "qty": 101}]}"#),
            422,
        ),
        (
            "POST",
            "/api/v1/orders",
            Some(r#"{"user_id": 999999, "items": [{"product_id": 1, "qty": 1}]}"#),
            422,
        ),
        (
            "POST",
            "/api/v1/orders",
            Some(r#"{"user_id": 1, "items": [{"product_id": 0, "qty": 1}]}"#),
            422,
        ),
    ];
    for (method, path, body, expected) in cases {
        let r = call(addr, method, path, body).await;
        let what = format!("{method} {path} {body:?} -> {} {:?}", r.status, r.body);
        assert_eq!(r.status.as_u16(), expected, "{what}");
        assert!(
            r.headers
                .get(CONTENT_TYPE)
                .is_some_and(|ct| ct.as_bytes().starts_with(b"application/json")),
            "{what}"
        );
        let error = r.json()["error"].as_str().map(str::to_owned);
        assert!(error.is_some_and(|e| !e.is_empty()), "{what}");
    }

    // A JSON body sent as text/plain is refused by media type.
    let r = call_with(
        addr,
        "POST",
        "/api/v1/orders",
        Some(item),
        Some("text/plain"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(r.json()["error"].is_string());

    // Nothing above left a partial order behind.
    let before = call(addr, "GET", "/api/v1/users/1/orders", None)
        .await
        .json();
    assert!(before["orders"][0]["status"] != "pending");
}

#[tokio::test]
async fn server_timing_reports_db_and_app() {
    let server = start(DemoOptions::default());
    let addr = server.addr();
    for path in [
        "/api/v1/products",
        "/api/v1/products/5",
        "/api/v1/users/5/orders",
        "/api/v1/products/abc",
        "/missing",
    ] {
        let r = call(addr, "GET", path, None).await;
        let db = r.timing("db").expect("db metric");
        let app = r.timing("app").expect("app metric");
        let total = r.timing("total").expect("total metric");
        assert!(db >= 0.0 && app >= 0.0, "{path}: db {db} app {app}");
        assert!(
            total + 0.002 >= db + app,
            "{path}: components add up to at most total {total}"
        );
        assert!(
            r.timing("upstream").is_none(),
            "no simulated latency configured"
        );
    }
    // Real query work is never reported as zero.
    let r = call(addr, "GET", "/api/v1/users/5/orders", None).await;
    assert!(r.timing("db").expect("db metric") > 0.0);
}

#[tokio::test]
async fn n_plus_one_returns_same_data_with_more_queries() {
    let normal = start(DemoOptions::default());
    let slow = start(DemoOptions {
        regress: Some(Regression::NPlusOne),
        ..DemoOptions::default()
    });
    for user in [1, 250, 500] {
        let path = format!("/api/v1/users/{user}/orders");
        let q0 = (normal.db_queries(), slow.db_queries());
        let a = call(normal.addr(), "GET", &path, None).await;
        let b = call(slow.addr(), "GET", &path, None).await;
        let q1 = (normal.db_queries(), slow.db_queries());
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.json(), b.json(), "user {user}");

        let orders = a.json()["orders"].as_array().map_or(0, Vec::len) as u64;
        // Normal: user check + one joined query. N+1: user check + orders + one per order.
        assert_eq!(q1.0 - q0.0, 2, "user {user}");
        assert_eq!(q1.1 - q0.1, 2 + orders, "user {user}");
    }
    // Unknown users are still 404 in regressed mode.
    let r = call(slow.addr(), "GET", "/api/v1/users/0/orders", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn fixed_latency_delays_api_requests() {
    let server = start(DemoOptions {
        latency: Some(Duration::from_millis(20)),
        ..DemoOptions::default()
    });
    let addr = server.addr();
    for path in ["/api/v1/products/1", "/nope"] {
        let started = Instant::now();
        let r = call(addr, "GET", path, None).await;
        assert!(started.elapsed() >= Duration::from_millis(20), "{path}");
        let upstream = r.timing("upstream").expect("upstream metric");
        assert!(upstream >= 20.0, "{path}: {upstream}");
        assert!(r.timing("total").expect("total metric") >= upstream);
    }
    let r = call(addr, "GET", "/health", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.get("server-timing").is_none());
}

#[tokio::test]
async fn jittered_latency_stays_within_the_cap() {
    // A spread this wide puts about a third of the draws past the cap (10x the median, see
    // `latency.rs`); uncapped, most of those would sleep from 15x to thousands of times the
    // median.
    let median = 2.0;
    let cap = 10.0 * median;
    // A sleep ends after its deadline, by tens of milliseconds on a busy test machine.
    let late = 60.0;
    let server = start(DemoOptions {
        latency: Some(Duration::from_millis(2)),
        jitter: Some(6.0),
        ..DemoOptions::default()
    });
    // One request at a time: concurrent handlers share the server's runtime with its timers.
    let mut draws = Vec::new();
    for _ in 0..30 {
        let r = tokio::time::timeout(
            Duration::from_secs(2),
            call(server.addr(), "GET", "/api/v1/products/1", None),
        )
        .await
        .expect("a draw far past the cap");
        draws.push(r.timing("upstream").expect("upstream metric"));
    }
    let highest = draws.iter().copied().fold(0.0, f64::max);
    assert!(highest <= cap + late, "past the cap of {cap} ms: {draws:?}");
    // The spread is really on (draws reach the cap), so the bound above is tested.
    assert!(highest >= cap, "no draw reached the cap: {draws:?}");
    assert!(draws.iter().any(|d| *d < median), "{draws:?}");
}

#[test]
fn stops_on_drop_inside_a_runtime() {
    // Dropping the server from async code must not panic (its runtime lives and
    // dies on its own thread).
    runtime().block_on(async {
        let server = start(DemoOptions::default());
        let r = call(server.addr(), "GET", "/health", None).await;
        assert_eq!(r.status, StatusCode::OK);
        drop(server);
    });
}

#[tokio::test]
async fn login_token_is_required_for_writes_and_bound_to_its_user() {
    let server = start(DemoOptions::default());
    let addr = server.addr();
    let json = Some("application/json");
    let order = r#"{"user_id": 7, "items": [{"product_id": 3, "qty": 1}]}"#;
    // No token, or one the server never issued: 401.
    let r = call_as(addr, "POST", "/api/v1/orders", Some(order), json, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    let r = call_as(
        addr,
        "POST",
        "/api/v1/orders",
        Some(order),
        json,
        Some("Bearer made-up"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // A wrong password is refused; the right one gives a token for that user.
    let who = server.state.db.read(|s| {
        s.query_opt("SELECT email FROM users WHERE id = 7", [], |r| {
            r.get::<_, String>(0)
        })
    });
    let email = who.0.expect("query").expect("user 7 exists");
    let bad = format!(r#"{{"email": "{email}", "password": "nope"}}"#);
    let r = call(addr, "POST", "/api/v1/login", Some(&bad)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let good = format!(
        r#"{{"email": "{email}", "password": "{}"}}"#,
        super::demo_password(7)
    );
    let r = call(addr, "POST", "/api/v1/login", Some(&good)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let token = r.json()["token"].as_str().expect("token").to_string();
    assert_eq!(r.json()["user_id"], 7);
    let auth = format!("Bearer {token}");
    let r = call_as(
        addr,
        "POST",
        "/api/v1/orders",
        Some(order),
        json,
        Some(&auth),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.json()["id"].as_i64().expect("id");
    // The token is user 7's: not valid for user 8's order.
    let other = r#"{"user_id": 8, "items": [{"product_id": 3, "qty": 1}]}"#;
    let r = call_as(
        addr,
        "POST",
        "/api/v1/orders",
        Some(other),
        json,
        Some(&auth),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The order reads back by id, and the log shows the token that wrote it.
    let r = call(addr, "GET", &format!("/api/v1/orders/{id}"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["user_id"], 7);
    let log = server.request_log();
    assert!(
        log.contains(&format!("create-order id={id} user=7 token={token}")),
        "{log:?}"
    );
    assert!(log.contains(&format!("read-order id={id}")), "{log:?}");
}
