//! Routes, handlers and the two middlewares every response goes through:
//! `Server-Timing` (with the simulated upstream delay) and JSON error bodies.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::db::{Db, DbCost, Session};
use super::latency::Upstream;
use super::{DemoOptions, Regression};

const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");
const DEFAULT_PER_PAGE: u64 = 20;
const MAX_PER_PAGE: u64 = 100;
const MAX_ORDER_ITEMS: usize = 20;
const MAX_QTY: i64 = 100;
const RECENT_REVIEWS: i64 = 5;
/// Error bodies produced by axum itself are one-line messages; anything larger is
/// not worth echoing back.
const MAX_ERROR_BODY: usize = 16 * 1024;

pub(super) struct AppState {
    pub db: Db,
    /// Switchable at run time (`DemoServer::set_regression`), so a demo or a calibration can
    /// compare before and after on one process: 0 = none, 1 = n-plus-one.
    regress: AtomicU8,
    upstream: Option<Upstream>,
    /// Multiplier of the simulated upstream delay, in thousandths (1000 = as configured).
    latency_factor_milli: AtomicU64,
    /// One stall of the whole service: (start, end), measured from start-up.
    stall: Option<(Instant, Instant)>,
    /// Tokens issued by `POST /api/v1/login`: token → user id.
    sessions: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    /// What logins, order writes and order reads carried (`DemoServer::request_log`), so tests
    /// can prove that a flow sent the token and ids it captured. Bounded.
    log: std::sync::Mutex<Vec<String>>,
}

/// The token every write accepts besides those `POST /api/v1/login` issues (what the sample
/// suite sends as `Bearer ${API_TOKEN:-demo-token}`).
pub const DEMO_TOKEN: &str = "demo-token";
/// The request log keeps at most this many lines.
const MAX_LOG: usize = 100_000;

/// The password of seeded user `id` (the sample service's made-up credentials).
pub fn demo_password(id: i64) -> String {
    format!("pw-{id}")
}

impl AppState {
    pub fn new(db: Db, opts: &DemoOptions) -> AppState {
        AppState {
            db,
            regress: AtomicU8::new(encode_regression(opts.regress)),
            upstream: Upstream::new(opts.latency, opts.jitter),
            latency_factor_milli: AtomicU64::new(1000),
            stall: opts.stall.map(|(at, len)| {
                let t0 = Instant::now();
                (t0 + at, t0 + at + len)
            }),
            sessions: Default::default(),
            log: Default::default(),
        }
    }
}

fn encode_regression(r: Option<Regression>) -> u8 {
    match r {
        None => 0,
        Some(Regression::NPlusOne) => 1,
    }
}

impl AppState {
    pub fn set_regression(&self, r: Option<Regression>) {
        self.regress.store(encode_regression(r), Ordering::Relaxed);
    }

    pub fn regression(&self) -> Option<Regression> {
        match self.regress.load(Ordering::Relaxed) {
            1 => Some(Regression::NPlusOne),
            _ => None,
        }
    }

    pub(super) fn note(&self, line: String) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() < MAX_LOG {
            log.push(line);
        }
    }

    pub fn request_log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Who a write's `Authorization: Bearer TOKEN` is: `Some(None)` for the demo token (any
    /// user), `Some(Some(id))` for a login's token, None when missing or unknown.
    fn authorised(&self, headers: &HeaderMap) -> Option<Option<i64>> {
        let token = headers
            .get(axum::http::header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")?
            .trim();
        if token == DEMO_TOKEN {
            return Some(None);
        }
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.get(token).map(|id| Some(*id))
    }

    pub fn set_latency_factor(&self, factor: f64) {
        let milli = (factor.clamp(0.0, 1000.0) * 1000.0).round() as u64;
        self.latency_factor_milli.store(milli, Ordering::Relaxed);
    }
}

pub(super) fn router(state: Arc<AppState>) -> Router {
    let log = Arc::clone(&state);
    let llm = super::llm::router(Some(Arc::new(move |line| log.note(line))));
    Router::new()
        .route("/api/v1/products", get(list_products))
        .route("/api/v1/products/{id}", get(get_product))
        .route("/api/v1/orders", post(create_order))
        .route("/api/v1/orders/{id}", get(get_order))
        .route("/api/v1/login", post(login))
        .route("/api/v1/users/{id}/orders", get(user_orders))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            server_timing,
        ))
        // Added after the timing layer so it gets neither Server-Timing nor the
        // simulated delay: a health probe should measure the process, not the API.
        .route("/health", get(health))
        .layer(middleware::from_fn(json_errors))
        .with_state(state)
        // The mock LLM provider keeps its own state and timing: no Server-Timing, no simulated
        // upstream delay (its profiles are its latency), no JSON error rewriting (it answers
        // errors in each provider's own shape).
        .merge(llm)
}

// ---------------------------------------------------------------------------
// Timing

/// Per-request accumulator for time spent in SQLite, shared between the timing
/// middleware and the handler.
#[derive(Clone, Default)]
struct Timing(Arc<AtomicU64>);

impl Timing {
    fn add(&self, cost: DbCost) {
        let nanos = u64::try_from(cost.time.as_nanos()).unwrap_or(u64::MAX);
        self.0.fetch_add(nanos, Ordering::Relaxed);
    }

    fn db_time(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Timing {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Always present behind the timing layer; a detached accumulator keeps a
        // routing mistake from turning into a 500.
        Ok(parts
            .extensions
            .get::<Timing>()
            .cloned()
            .unwrap_or_default())
    }
}

async fn server_timing(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    // A frozen service (a GC pause, a lock convoy): every request that arrives during the
    // stall waits for its end.
    if let Some((from, to)) = state.stall
        && started >= from
        && started < to
    {
        tokio::time::sleep_until(to.into()).await;
    }
    let timing = Timing::default();
    req.extensions_mut().insert(timing.clone());

    let upstream = match state.upstream {
        Some(up) => {
            let slept = Instant::now();
            let factor = state.latency_factor_milli.load(Ordering::Relaxed) as f64 / 1000.0;
            tokio::time::sleep(up.sample().mul_f64(factor)).await;
            Some(slept.elapsed())
        }
        None => None,
    };

    let mut response = next.run(req).await;

    let mut value = String::with_capacity(64);
    if let Some(up) = upstream {
        value.push_str(&format!("upstream;dur={:.3}, ", millis(up)));
    }
    // Components that add up to `total`, so a breakdown can say which one grew: `app` is the
    // handler's own time, without the database and the simulated upstream call.
    let total = started.elapsed();
    let db = timing.db_time();
    let app = total
        .saturating_sub(db)
        .saturating_sub(upstream.unwrap_or_default());
    value.push_str(&format!(
        "db;dur={:.3}, app;dur={:.3}, total;dur={:.3}",
        millis(db),
        millis(app),
        millis(total)
    ));
    let value = HeaderValue::from_str(&value).expect("server-timing value is ASCII");
    response.headers_mut().insert(SERVER_TIMING, value);
    response
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------------------
// Errors

#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// Well-formed JSON whose content cannot be accepted; the same status axum's
    /// `Json` extractor uses for a body of the wrong shape.
    fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(err: rusqlite::Error) -> ApiError {
        // The client gets no SQL details; the operator needs them.
        eprintln!("gate demo: database error: {err}");
        ApiError::internal("database error")
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: &self.message,
            }),
        )
            .into_response()
    }
}

/// axum's own rejections (bad JSON, wrong content type, unparsable path or query,
/// 405) come back as plain text or empty bodies. Rewrite every error that is not
/// already JSON into `{"error": "..."}` so clients can rely on one error shape,
/// keeping the status and the other headers (`Allow`, `Server-Timing`).
async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(response.headers()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_ERROR_BODY).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase()
    } else {
        text
    };
    let body = serde_json::to_vec(&ErrorBody { error: &message })
        .expect("serialising a string map cannot fail");
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(body))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
}

async fn health() -> &'static str {
    "ok"
}

// ---------------------------------------------------------------------------
// Database access from handlers

/// Run read-only work on the blocking pool, adding its cost to the request's timing.
async fn read<T: Send + 'static>(
    state: &Arc<AppState>,
    timing: &Timing,
    work: impl FnOnce(&mut Session<'_>) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let state = Arc::clone(state);
    blocking(timing, move || state.db.read(work)).await
}

/// Like [`read`], inside a write transaction.
async fn write<T: Send + 'static>(
    state: &Arc<AppState>,
    timing: &Timing,
    work: impl FnOnce(&mut Session<'_>) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let state = Arc::clone(state);
    blocking(timing, move || state.db.write(work)).await
}

async fn blocking<T: Send + 'static>(
    timing: &Timing,
    job: impl FnOnce() -> (rusqlite::Result<T>, DbCost) + Send + 'static,
) -> Result<T, ApiError> {
    // SQLite calls block; on the async workers they would stall unrelated requests.
    let (result, cost) = tokio::task::spawn_blocking(job)
        .await
        .map_err(|_| ApiError::internal("database task failed"))?;
    timing.add(cost);
    Ok(result?)
}

// ---------------------------------------------------------------------------
// GET /api/v1/products

#[derive(Deserialize)]
struct PageParams {
    page: Option<u64>,
    per_page: Option<u64>,
}

#[derive(Serialize)]
struct ProductPage {
    page: u64,
    per_page: u64,
    total: u64,
    items: Vec<ProductSummary>,
}

#[derive(Serialize)]
struct ProductSummary {
    id: i64,
    name: String,
    price_cents: i64,
    stock: i64,
    category_id: i64,
}

async fn list_products(
    State(state): State<Arc<AppState>>,
    timing: Timing,
    Query(params): Query<PageParams>,
) -> Result<Json<ProductPage>, ApiError> {
    let page = params.page.unwrap_or(1);
    if page == 0 {
        return Err(ApiError::bad_request("page must be at least 1"));
    }
    let per_page = params.per_page.unwrap_or(DEFAULT_PER_PAGE);
    if per_page == 0 {
        return Err(ApiError::bad_request("per_page must be at least 1"));
    }
    // Clamped rather than rejected, as most public APIs do.
    let per_page = per_page.min(MAX_PER_PAGE);
    // A page far past the end is just empty; saturate instead of overflowing.
    let offset = i64::try_from((page - 1).saturating_mul(per_page)).unwrap_or(i64::MAX);
    let limit = per_page as i64;

    let (total, items) = read(&state, &timing, move |s| {
        let total: i64 = s.query_one("SELECT COUNT(*) FROM products", [], |r| r.get(0))?;
        let items = s.query_all(
            "SELECT id, name, price_cents, stock, category_id FROM products
             ORDER BY id LIMIT ?1 OFFSET ?2",
            [limit, offset],
            |r| {
                Ok(ProductSummary {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    price_cents: r.get(2)?,
                    stock: r.get(3)?,
                    category_id: r.get(4)?,
                })
            },
        )?;
        Ok((total, items))
    })
    .await?;

    Ok(Json(ProductPage {
        page,
        per_page,
        total: total.max(0) as u64,
        items,
    }))
}

// ---------------------------------------------------------------------------
// GET /api/v1/products/{id}

#[derive(Serialize)]
struct ProductDetail {
    id: i64,
    name: String,
    description: String,
    price_cents: i64,
    stock: i64,
    category: Category,
    rating: RatingSummary,
    recent_reviews: Vec<Review>,
}

#[derive(Serialize)]
struct Category {
    id: i64,
    name: String,
}

#[derive(Serialize)]
struct RatingSummary {
    count: i64,
    /// Rounded to two decimals; null when there are no reviews.
    average: Option<f64>,
}

#[derive(Serialize)]
struct Review {
    id: i64,
    user_id: i64,
    user_name: String,
    rating: i64,
    body: String,
    created_at: i64,
}

async fn get_product(
    State(state): State<Arc<AppState>>,
    timing: Timing,
    Path(id): Path<i64>,
) -> Result<Json<ProductDetail>, ApiError> {
    let product = read(&state, &timing, move |s| {
        let Some(mut product) = s.query_opt(
            "SELECT p.id, p.name, p.description, p.price_cents, p.stock, c.id, c.name
             FROM products p JOIN categories c ON c.id = p.category_id
             WHERE p.id = ?1",
            [id],
            |r| {
                Ok(ProductDetail {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    description: r.get(2)?,
                    price_cents: r.get(3)?,
                    stock: r.get(4)?,
                    category: Category {
                        id: r.get(5)?,
                        name: r.get(6)?,
                    },
                    rating: RatingSummary {
                        count: 0,
                        average: None,
                    },
                    recent_reviews: Vec::new(),
                })
            },
        )?
        else {
            return Ok(None);
        };
        product.rating = s.query_one(
            "SELECT COUNT(*), AVG(rating) FROM reviews WHERE product_id = ?1",
            [id],
            |r| {
                Ok(RatingSummary {
                    count: r.get(0)?,
                    average: r
                        .get::<_, Option<f64>>(1)?
                        .map(|a| (a * 100.0).round() / 100.0),
                })
            },
        )?;
        product.recent_reviews = s.query_all(
            "SELECT r.id, r.user_id, u.name, r.rating, r.body, r.created_at
             FROM reviews r JOIN users u ON u.id = r.user_id
             WHERE r.product_id = ?1
             ORDER BY r.created_at DESC, r.id DESC
             LIMIT ?2",
            [id, RECENT_REVIEWS],
            |r| {
                Ok(Review {
                    id: r.get(0)?,
                    user_id: r.get(1)?,
                    user_name: r.get(2)?,
                    rating: r.get(3)?,
                    body: r.get(4)?,
                    created_at: r.get(5)?,
                })
            },
        )?;
        Ok(Some(product))
    })
    .await?;

    product
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("product {id} not found")))
}

// ---------------------------------------------------------------------------
// Orders: shared shape of POST /api/v1/orders and GET /api/v1/users/{id}/orders

#[derive(Serialize, Debug, PartialEq)]
struct Order {
    id: i64,
    user_id: i64,
    status: String,
    /// Unix seconds.
    created_at: i64,
    total_cents: i64,
    items: Vec<LineItem>,
}

#[derive(Serialize, Debug, PartialEq)]
struct LineItem {
    id: i64,
    product_id: i64,
    product_name: String,
    qty: i64,
    unit_price_cents: i64,
}

impl Order {
    fn new(id: i64, user_id: i64, status: String, created_at: i64) -> Order {
        Order {
            id,
            user_id,
            status,
            created_at,
            total_cents: 0,
            items: Vec::new(),
        }
    }

    fn push(&mut self, item: LineItem) {
        self.total_cents += item.qty * item.unit_price_cents;
        self.items.push(item);
    }
}

// ---------------------------------------------------------------------------
// POST /api/v1/orders

#[derive(Deserialize)]
struct NewOrder {
    user_id: i64,
    items: Vec<NewItem>,
}

#[derive(Deserialize)]
struct NewItem {
    product_id: i64,
    qty: i64,
}

async fn create_order(
    State(state): State<Arc<AppState>>,
    timing: Timing,
    headers: HeaderMap,
    Json(new): Json<NewOrder>,
) -> Result<(StatusCode, Json<Order>), ApiError> {
    let token_user = state.authorised(&headers).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "writes need `Authorization: Bearer TOKEN` (POST /api/v1/login, or the demo token)",
        )
    })?;
    if let Some(id) = token_user
        && id != new.user_id
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("this token is user {id}'s, not user {}'s", new.user_id),
        ));
    }
    let token_text = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string();
    if new.items.is_empty() || new.items.len() > MAX_ORDER_ITEMS {
        return Err(ApiError::unprocessable(format!(
            "an order needs 1 to {MAX_ORDER_ITEMS} items, got {}",
            new.items.len()
        )));
    }
    if let Some(item) = new.items.iter().find(|i| !(1..=MAX_QTY).contains(&i.qty)) {
        return Err(ApiError::unprocessable(format!(
            "qty must be between 1 and {MAX_QTY}, got {} for product {}",
            item.qty, item.product_id
        )));
    }
    // Never earlier than the seeded history, so a new order always sorts first.
    let created_at = unix_now().max(super::seed::EPOCH + 1);

    let order = write(&state, &timing, move |s| {
        // Validation reads happen before any insert, so a rejected order leaves
        // nothing behind even though the (empty) transaction is committed.
        if s.query_opt("SELECT 1 FROM users WHERE id = ?1", [new.user_id], |_| {
            Ok(())
        })?
        .is_none()
        {
            return Ok(Err(ApiError::unprocessable(format!(
                "user {} does not exist",
                new.user_id
            ))));
        }
        let mut priced = Vec::with_capacity(new.items.len());
        for item in &new.items {
            let Some((name, price)) = s.query_opt(
                "SELECT name, price_cents FROM products WHERE id = ?1",
                [item.product_id],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
            )?
            else {
                return Ok(Err(ApiError::unprocessable(format!(
                    "product {} does not exist",
                    item.product_id
                ))));
            };
            priced.push((item, name, price));
        }

        let status = "pending";
        s.execute(
            "INSERT INTO orders (user_id, status, created_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![new.user_id, status, created_at],
        )?;
        let mut order = Order::new(
            s.last_insert_rowid(),
            new.user_id,
            status.into(),
            created_at,
        );
        for (item, name, price) in priced {
            s.execute(
                "INSERT INTO line_items (order_id, product_id, qty, unit_price_cents)
                 VALUES (?1, ?2, ?3, ?4)",
                [order.id, item.product_id, item.qty, price],
            )?;
            order.push(LineItem {
                id: s.last_insert_rowid(),
                product_id: item.product_id,
                product_name: name,
                qty: item.qty,
                unit_price_cents: price,
            });
        }
        Ok(Ok(order))
    })
    .await??;

    state.note(format!(
        "create-order id={} user={} token={token_text}",
        order.id, order.user_id
    ));
    Ok((StatusCode::CREATED, Json(order)))
}

// ---------------------------------------------------------------------------
// POST /api/v1/login

#[derive(Deserialize)]
struct Credentials {
    /// A seeded user's email, or `user_id`.
    email: Option<String>,
    user_id: Option<i64>,
    password: String,
}

#[derive(Serialize)]
struct LoginReply {
    token: String,
    user_id: i64,
}

async fn login(
    State(state): State<Arc<AppState>>,
    timing: Timing,
    Json(creds): Json<Credentials>,
) -> Result<Json<LoginReply>, ApiError> {
    let (email, id) = (creds.email.clone().unwrap_or_default(), creds.user_id);
    let user = read(&state, &timing, move |s| {
        s.query_opt(
            "SELECT id FROM users WHERE email = ?1 OR id = ?2",
            rusqlite::params![email, id.unwrap_or(-1)],
            |r| r.get::<_, i64>(0),
        )
    })
    .await?;
    let Some(user_id) = user.filter(|id| creds.password == demo_password(*id)) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unknown email or wrong password",
        ));
    };
    let token = {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::from_os_rng();
        format!("tok-{user_id}-{:016x}", rng.random::<u64>())
    };
    state
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(token.clone(), user_id);
    state.note(format!("login user={user_id} token={token}"));
    Ok(Json(LoginReply { token, user_id }))
}

// ---------------------------------------------------------------------------
// GET /api/v1/orders/{id}

async fn get_order(
    State(state): State<Arc<AppState>>,
    timing: Timing,
    Path(order_id): Path<i64>,
) -> Result<Json<Order>, ApiError> {
    let order = read(&state, &timing, move |s| {
        let Some(mut order) = s.query_opt(
            "SELECT id, user_id, status, created_at FROM orders WHERE id = ?1",
            [order_id],
            |r| Ok(Order::new(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?
        else {
            return Ok(None);
        };
        let items = s.query_all(
            "SELECT li.id, li.product_id, p.name, li.qty, li.unit_price_cents
             FROM line_items li JOIN products p ON p.id = li.product_id
             WHERE li.order_id = ?1 ORDER BY li.id",
            [order_id],
            |r| line_item(r, 0),
        )?;
        for item in items {
            order.push(item);
        }
        Ok(Some(order))
    })
    .await?;
    state.note(format!("read-order id={order_id}"));
    order
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("order {order_id} not found")))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

// ---------------------------------------------------------------------------
// GET /api/v1/users/{id}/orders

#[derive(Serialize)]
struct UserOrders {
    user_id: i64,
    orders: Vec<Order>,
}

async fn user_orders(
    State(state): State<Arc<AppState>>,
    timing: Timing,
    Path(user_id): Path<i64>,
) -> Result<Json<UserOrders>, ApiError> {
    let n_plus_one = state.regression() == Some(Regression::NPlusOne);
    let orders = read(&state, &timing, move |s| {
        if s.query_opt("SELECT 1 FROM users WHERE id = ?1", [user_id], |_| Ok(()))?
            .is_none()
        {
            return Ok(None);
        }
        let orders = if n_plus_one {
            orders_one_query_per_order(s, user_id)?
        } else {
            orders_joined(s, user_id)?
        };
        Ok(Some(orders))
    })
    .await?;

    match orders {
        Some(orders) => Ok(Json(UserOrders { user_id, orders })),
        None => Err(ApiError::not_found(format!("user {user_id} not found"))),
    }
}

/// The intended implementation: orders and their line items in one query.
fn orders_joined(s: &mut Session<'_>, user_id: i64) -> rusqlite::Result<Vec<Order>> {
    // An inner join is enough because every order has at least one line item
    // (seeding creates 3-5, the API refuses empty orders).
    let rows = s.query_all(
        "SELECT o.id, o.status, o.created_at,
                li.id, li.product_id, p.name, li.qty, li.unit_price_cents
         FROM orders o
         JOIN line_items li ON li.order_id = o.id
         JOIN products p ON p.id = li.product_id
         WHERE o.user_id = ?1
         ORDER BY o.created_at DESC, o.id DESC, li.id",
        [user_id],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                line_item(r, 3)?,
            ))
        },
    )?;
    let mut orders: Vec<Order> = Vec::new();
    for (order_id, status, created_at, item) in rows {
        match orders.last_mut() {
            // Rows arrive grouped by order thanks to the ORDER BY.
            Some(order) if order.id == order_id => order.push(item),
            _ => {
                let mut order = Order::new(order_id, user_id, status, created_at);
                order.push(item);
                orders.push(order);
            }
        }
    }
    Ok(orders)
}

/// The `n-plus-one` regression: the orders, then a separate query for each
/// order's line items, the way a lazy-loading ORM would do it.
fn orders_one_query_per_order(s: &mut Session<'_>, user_id: i64) -> rusqlite::Result<Vec<Order>> {
    let mut orders = s.query_all(
        "SELECT id, status, created_at FROM orders
         WHERE user_id = ?1
         ORDER BY created_at DESC, id DESC",
        [user_id],
        |r| Ok(Order::new(r.get(0)?, user_id, r.get(1)?, r.get(2)?)),
    )?;
    for order in &mut orders {
        let items = s.query_all_uncached(
            "SELECT li.id, li.product_id, p.name, li.qty, li.unit_price_cents
             FROM line_items li JOIN products p ON p.id = li.product_id
             WHERE li.order_id = ?1
             ORDER BY li.id",
            [order.id],
            |r| line_item(r, 0),
        )?;
        for item in items {
            order.push(item);
        }
    }
    Ok(orders)
}

fn line_item(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<LineItem> {
    Ok(LineItem {
        id: r.get(first)?,
        product_id: r.get(first + 1)?,
        product_name: r.get(first + 2)?,
        qty: r.get(first + 3)?,
        unit_price_cents: r.get(first + 4)?,
    })
}
