//! The median-based filters as commands: `median` and `remove-outliers` over a stack. The
//! kernels themselves are in `median` and `outliers`; this is how the job runner drives them.

use anyhow::Result;
use serde_json::json;

use super::Filter;
use super::median::{MedianParams, median_filter};
use super::outliers::{OutlierParams, remove_outliers};
use crate::engine;
use crate::output::PendingOutput;
use crate::pixel::DType;
use crate::progress::Progress;
use crate::stack::Stack;
use crate::with_pixel_type;

/// `imfilter median`: each image through a K×K median, same type out as in.
pub struct Median(pub MedianParams);

impl Filter for Median {
    fn name(&self) -> &'static str {
        "median"
    }

    fn output_dtype(&self, input: DType) -> DType {
        input
    }

    fn parameters(&self) -> serde_json::Value {
        json!({ "size": self.0.size, "mode": self.0.mode.name(), "cval": self.0.cval })
    }

    fn run(&self, input: &Stack, output: &mut PendingOutput, progress: &Progress) -> Result<()> {
        let (w, h) = (input.format.width, input.format.height);
        with_pixel_type!(input.format.dtype, T => {
            let pages = output.pages_mut::<T>(w * h);
            engine::run_pages::<T, T, _>(input, pages, |i, o| median_filter(i, o, w, h, &self.0), progress)
        })
    }
}

/// `imfilter remove-outliers`: pixels far from their local median replaced by it.
pub struct RemoveOutliers(pub OutlierParams);

impl Filter for RemoveOutliers {
    fn name(&self) -> &'static str {
        "remove-outliers"
    }

    fn output_dtype(&self, input: DType) -> DType {
        input
    }

    fn parameters(&self) -> serde_json::Value {
        json!({ "size": self.0.size, "threshold": self.0.threshold, "kind": self.0.kind.name() })
    }

    fn run(&self, input: &Stack, output: &mut PendingOutput, progress: &Progress) -> Result<()> {
        let (w, h) = (input.format.width, input.format.height);
        with_pixel_type!(input.format.dtype, T => {
            let pages = output.pages_mut::<T>(w * h);
            engine::run_pages::<T, T, _>(input, pages, |i, o| remove_outliers(i, o, w, h, &self.0), progress)
        })
    }
}
