//! What the sample service is started with and what it reports back: its options (the
//! switchable regression among them), its seeding figures and its errors.

use std::net::SocketAddr;
use std::time::Duration;

/// Names accepted by [`Regression::from_str`](std::str::FromStr), in display order.
pub const REGRESSIONS: &[&str] = &["n-plus-one"];

/// Options for [`DemoServer::start`].
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub regress: Option<Regression>,
    /// simulated upstream delay added to every API request (median of the distribution)
    pub latency: Option<Duration>,
    /// log-normal sigma for the simulated delay; None = fixed delay
    pub jitter: Option<f64>,
    /// seed for the data generator (same seed = same data)
    pub seed: u64,
    /// simulated network round trip to the database, paid by every SQL statement
    pub db_latency: Option<Duration>,
    /// stall the whole service once: (after this long from start-up, for this long)
    pub stall: Option<(Duration, Duration)>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            regress: None,
            latency: None,
            jitter: None,
            seed: 42,
            db_latency: None,
            stall: None,
        }
    }
}

/// A deliberate performance regression the demo can be started with, so that gate
/// has something real to catch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regression {
    /// `GET /api/v1/users/{id}/orders` loads line items with one query per order
    /// instead of one query for all orders.
    NPlusOne,
}

impl Regression {
    /// The name used on the command line and in [`REGRESSIONS`].
    pub fn name(self) -> &'static str {
        match self {
            Regression::NPlusOne => "n-plus-one",
        }
    }
}

impl std::fmt::Display for Regression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Returned when parsing an unknown regression name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown regression `{name}` (valid: {})", REGRESSIONS.join(", "))]
pub struct ParseRegressionError {
    name: String,
}

impl std::str::FromStr for Regression {
    type Err = ParseRegressionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "n-plus-one" => Ok(Regression::NPlusOne),
            _ => Err(ParseRegressionError { name: s.to_owned() }),
        }
    }
}

/// Why the demo server could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot bind the demo server to {addr}: {reason}")]
    Bind {
        addr: SocketAddr,
        reason: std::io::Error,
    },
    #[error("demo database: {0}")]
    Database(#[from] rusqlite::Error),
    /// Anything else the server needs from the OS: the temp directory, its thread,
    /// its runtime.
    #[error("demo server: cannot {what}: {reason}")]
    Io {
        what: &'static str,
        reason: std::io::Error,
    },
}

/// What the start-up seeding produced and how long it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedStats {
    pub products: u64,
    pub users: u64,
    pub orders: u64,
    pub line_items: u64,
    pub seed_time: Duration,
}
