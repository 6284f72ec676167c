//! What every chart shares: its size in pixels, the largest side drawn, and how drawing fails.

/// The largest side accepted; a bigger request is a caller bug, not something to allocate for
/// (4096x4096 already means a 200 MB supersampled canvas).
pub(super) const MAX_SIDE: u32 = 4096;

/// Output size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartSize {
    pub width: u32,
    pub height: u32,
}

impl Default for ChartSize {
    /// 1200x600: full width of a GitHub comment at 2:1, and the size the type scale is designed for.
    fn default() -> Self {
        Self {
            width: 1200,
            height: 600,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error(
        "chart size {width}x{height} is not drawable (each side must be 1 to {} pixels)",
        MAX_SIDE
    )]
    InvalidSize { width: u32, height: u32 },
    #[error("the embedded chart font could not be loaded")]
    Font,
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    #[error("encoding the chart as PNG failed")]
    Encode(#[from] png::EncodingError),
}
