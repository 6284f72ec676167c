//! The example suite, compiled in so `gate demo` and `gate calibrate` work from any directory.

use std::path::PathBuf;

use crate::config::Source;

/// The example suite, compiled in so `gate demo` works from any directory. The first entry is
/// the suite file; scenarios run in file-name order, as `gate run` reads a directory.
pub const DEMO_SUITE: &[(&str, &str)] = &[
    (
        "scenarios/suite.yml",
        include_str!("../../../scenarios/suite.yml"),
    ),
    (
        "scenarios/products-list.yml",
        include_str!("../../../scenarios/products-list.yml"),
    ),
    (
        "scenarios/product-detail.yml",
        include_str!("../../../scenarios/product-detail.yml"),
    ),
    (
        "scenarios/create-order.yml",
        include_str!("../../../scenarios/create-order.yml"),
    ),
    (
        "scenarios/user-orders.yml",
        include_str!("../../../scenarios/user-orders.yml"),
    ),
];

/// The bundled suite as sources: `suite.yml` first, then the scenarios in file-name order.
pub(crate) fn demo_sources() -> Vec<Source> {
    let mut sources: Vec<Source> = DEMO_SUITE
        .iter()
        .map(|(path, text)| Source {
            path: PathBuf::from(path),
            text: (*text).to_string(),
        })
        .collect();
    sources[1..].sort_by(|a, b| a.path.cmp(&b.path));
    sources
}
