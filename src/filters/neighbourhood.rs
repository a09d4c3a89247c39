//! The median-based operations as steps: `median` and `remove-outliers`. The kernels
//! themselves are in `median` and `outliers`; this is their command-line form and how a chain
//! drives them.

use anyhow::Result;
use serde_json::json;

use super::median::{BorderMode, MedianParams, median_filter};
use super::outliers::{OutlierKind, OutlierParams, remove_outliers};
use super::{Op, OpArgs, Pixels, PixelsMut};
use crate::stack::PageFormat;
use crate::with_pixel_type;

/// `imfilter median`'s arguments.
#[derive(Debug, clap::Args)]
pub struct MedianArgs {
    /// Window width and height in pixels: odd, at least 3 (scipy's and MantidImaging's
    /// --kernel-size)
    #[arg(long, visible_alias = "kernel-size", value_name = "K", allow_negative_numbers = true, value_parser = parse_window_size)]
    pub size: usize,

    /// Border rule, as scipy.ndimage: reflect (d c b a | a b c d | d c b a), mirror
    /// (d c b | a b c d | c b a), nearest (a a a | a b c d | d d d), constant (cval), wrap
    #[arg(long, default_value = "reflect", value_parser = parse_border_mode)]
    pub mode: BorderMode,

    /// Value outside the image for --mode constant
    #[arg(long, default_value_t = 0.0, value_name = "V")]
    pub cval: f64,
}

impl OpArgs for MedianArgs {
    fn build(&self) -> Result<Box<dyn Op>> {
        Ok(Box::new(Median(MedianParams {
            size: self.size,
            mode: self.mode,
            cval: self.cval,
        })))
    }
}

/// `imfilter remove-outliers`'s arguments.
#[derive(Debug, clap::Args)]
pub struct OutlierArgs {
    /// Median window width and height in pixels: odd, at least 3 (MantidImaging's
    /// --kernel-size)
    #[arg(long, visible_alias = "kernel-size", value_name = "K", allow_negative_numbers = true, value_parser = parse_window_size)]
    pub size: usize,

    /// A pixel further than this from its local median is replaced by the median (greater
    /// than 0)
    #[arg(long, value_name = "T", allow_negative_numbers = true, value_parser = parse_threshold)]
    pub threshold: f64,

    /// Replace pixels brighter than the median by more than the threshold (default)
    #[arg(long, group = "kind")]
    pub bright: bool,

    /// Replace pixels darker than the median by more than the threshold
    #[arg(long, group = "kind")]
    pub dark: bool,

    /// Replace both (instead of --bright --dark)
    #[arg(long, group = "kind")]
    pub both: bool,
}

impl OpArgs for OutlierArgs {
    fn build(&self) -> Result<Box<dyn Op>> {
        let kind = match (self.dark, self.both) {
            (_, true) => OutlierKind::Both,
            (true, false) => OutlierKind::Dark,
            (false, false) => OutlierKind::Bright,
        };
        Ok(Box::new(RemoveOutliers(OutlierParams {
            size: self.size,
            threshold: self.threshold,
            kind,
        })))
    }
}

fn parse_window_size(s: &str) -> Result<usize, String> {
    let allowed = "the window size must be an odd whole number of at least 3 (3, 5, 7, …)";
    match s.parse::<i64>() {
        Ok(k) if k >= 3 && k % 2 == 1 => Ok(k as usize),
        Ok(k) => Err(format!("{k}: {allowed}")),
        Err(_) => Err(format!("'{s}' is not a number: {allowed}")),
    }
}

/// A distance from the median: positive (a negative one reads as "darker", which is --dark).
fn parse_threshold(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(t) if t.is_finite() && t > 0.0 => Ok(t),
        Ok(t) if t.is_finite() => Err(format!(
            "{t}: the threshold is a distance from the median and must be positive (for pixels \
             darker than the median, use --dark)"
        )),
        _ => Err(format!(
            "'{s}' is not a number: the threshold must be a positive number"
        )),
    }
}

fn parse_border_mode(s: &str) -> Result<BorderMode, String> {
    BorderMode::parse(s)
        .ok_or_else(|| format!("'{s}': expected one of reflect, nearest, mirror, constant, wrap"))
}

/// `imfilter median`: each image through a K×K median, same type out as in.
pub struct Median(pub MedianParams);

impl Op for Median {
    fn name(&self) -> &'static str {
        "median"
    }

    fn parameters(&self) -> serde_json::Value {
        json!({ "size": self.0.size, "mode": self.0.mode.name(), "cval": self.0.cval })
    }

    fn output_format(&self, input: PageFormat) -> Result<PageFormat> {
        Ok(input)
    }

    fn apply(&self, _at: usize, src: Pixels<'_>, dst: PixelsMut<'_>) {
        let PageFormat { width, height, .. } = src.format;
        with_pixel_type!(src.format.dtype, T => {
            median_filter(src.get::<T>(), dst.get::<T>(), width, height, &self.0)
        })
    }
}

/// `imfilter remove-outliers`: pixels far from their local median replaced by it.
pub struct RemoveOutliers(pub OutlierParams);

impl Op for RemoveOutliers {
    fn name(&self) -> &'static str {
        "remove-outliers"
    }

    fn parameters(&self) -> serde_json::Value {
        json!({ "size": self.0.size, "threshold": self.0.threshold, "kind": self.0.kind.name() })
    }

    fn output_format(&self, input: PageFormat) -> Result<PageFormat> {
        Ok(input)
    }

    fn apply(&self, _at: usize, src: Pixels<'_>, dst: PixelsMut<'_>) {
        let PageFormat { width, height, .. } = src.format;
        with_pixel_type!(src.format.dtype, T => {
            remove_outliers(src.get::<T>(), dst.get::<T>(), width, height, &self.0)
        })
    }
}
