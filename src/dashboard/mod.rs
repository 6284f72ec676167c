//! The trend dashboard: a static site (HTML, inline SVG charts, one stylesheet with the embedded
//! font) built from history rows. No server and no script: it works from `file://` and from
//! GitHub Pages alike, every link is relative, and nothing is fetched from the network.
//!
//! This room takes runs and returns files as bytes (`Site`); where they are written is the
//! caller's business. Everything that comes from the target or the suite (endpoint names,
//! labels, URLs, models) is HTML-escaped here, and file names are sanitised slugs.

mod html;
mod model;
mod pages;
mod site;

pub use model::{RunCall, RunView};
pub use site::{DashboardError, Input, Site};

/// Build every page of the site.
pub fn build(input: &Input<'_>) -> Result<Site, DashboardError> {
    let model = model::Model::new(input);
    pages::render(&model)
}
