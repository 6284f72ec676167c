//! `gate init`'s own room: reading access logs into route templates, rates, observed ids and
//! latencies (a survey), and the text of the suite written from them or of a starter suite.
//! It knows nothing of how a suite is run, stored or published.

pub mod line;
pub mod route;
pub mod survey;
pub mod write;

pub use line::{Format, JsonFields, Layout};
pub use survey::{Options, RouteStats, Survey, survey};
pub use write::{Choice, Decision, File, WriteOptions};
