//! `gate demo`: the whole story on the bundled sample service, in-process, no network.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::run::{RunSettings, execute_and_report};
use crate::cli::DemoArgs;
use crate::config::{self, ConfigError, Overrides, Source, duration::parse_duration};
use crate::demo::{DemoOptions, DemoServer};
use crate::engine::{EngineOptions, ProgressMode};
use crate::{Error, Outcome};

/// The example suite, compiled in so `gate demo` works from any directory. The first entry is
/// the suite file; scenarios run in file-name order, as `gate run` reads a directory.
pub const DEMO_SUITE: &[(&str, &str)] = &[
    (
        "scenarios/suite.yml",
        include_str!("../../scenarios/suite.yml"),
    ),
    (
        "scenarios/products-list.yml",
        include_str!("../../scenarios/products-list.yml"),
    ),
    (
        "scenarios/product-detail.yml",
        include_str!("../../scenarios/product-detail.yml"),
    ),
    (
        "scenarios/create-order.yml",
        include_str!("../../scenarios/create-order.yml"),
    ),
    (
        "scenarios/user-orders.yml",
        include_str!("../../scenarios/user-orders.yml"),
    ),
];

pub fn demo(args: DemoArgs) -> Result<Outcome, Error> {
    let duration =
        parse_duration(&args.duration).map_err(|m| ConfigError::flag("--duration", m))?;
    if duration.is_zero() {
        return Err(Error::usage("--duration", "must be above zero"));
    }
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("constant address");
    let server = DemoServer::start(addr, DemoOptions::default())?;
    let seeded = server.seed_stats();
    eprintln!(
        "gate demo: sample service on {} ({} products, {} users, {} orders, seeded in {} ms)",
        server.url(),
        seeded.products,
        seeded.users,
        seeded.orders,
        seeded.seed_time.as_millis()
    );
    let mut sources: Vec<Source> = DEMO_SUITE
        .iter()
        .map(|(path, text)| Source {
            path: PathBuf::from(path),
            text: (*text).to_string(),
        })
        .collect();
    sources[1..].sort_by(|a, b| a.path.cmp(&b.path));
    let overrides = Overrides {
        target: Some(server.url()),
        duration: Some(duration),
        warmup: Some(std::time::Duration::from_millis(300)),
        only: Vec::new(),
    };
    let plan = config::build_plan(
        "<demo suite>",
        Some(&sources[0]),
        &sources[1..],
        &overrides,
        &|name| std::env::var(name).ok(),
    )?;
    let settings = RunSettings {
        suite: PathBuf::from("<demo suite>"),
        overrides,
        json: None,
        threads: EngineOptions::default_threads(),
        label: Some("demo".into()),
        progress: ProgressMode::detect(false),
        db: None,
        env_tag: None,
    };
    let outcome = execute_and_report(&plan, &settings);
    server.shutdown();
    outcome.map(|(o, _)| o)
}
