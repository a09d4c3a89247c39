//! `roi-normalise`: each image scaled so the mean of an air (no-sample) region follows the
//! beam, as MantidImaging's ROI Normalisation does (`RoiNormalisationFilter`, mantidimaging
//! 2.x, `core/operations/roi_normalisation/roi_normalisation.py`):
//!
//! ```text
//! air_means[i] = mean(image_i[top:bottom, left:right])
//! stack-average: factor[i] = air_means[i] / mean(air_means)
//! flat-field:    factor[i] = air_means[i] / mean(flat_means)   (each flat's ROI mean)
//! out_i = image_i / factor[i]                                   (float32)
//! ```
//!
//! The ROI is LEFT,TOP,RIGHT,BOTTOM with right and bottom excluded, in the coordinates of the
//! images this step receives. `mean(air_means)` needs every image first: a survey pass reads
//! the stack once before the main pass. Means are summed in float64 here, where numpy sums
//! float32 pairwise in float32: the factors agree to about 1e-7 relative, not bit for bit.
//! With `--mode flat-field`, the flats' ROI means are taken from the per-pixel mean of the
//! flats, which equals the mean of their per-flat ROI means, after the reshaping steps before
//! this one (crop, rotate, …) so the ROI means the same place in both.

use std::path::PathBuf;

use anyhow::{Result, bail};
use serde_json::json;

use super::background::{Average, Reference};
use super::geometry::{Roi, parse_roi};
use super::{Op, OpArgs, Pixels, PixelsMut, Reshaped, reshaped_like};
use crate::pixel::{DType, Pixel};
use crate::stack::{PageFormat, Stack};
use crate::with_pixel_type;

/// What the air regions' means are made equal to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// The mean of every image's air region (MantidImaging's "Stack Average")
    StackAverage,
    /// The air region's mean in the flats given with --flat ("Flat Field")
    FlatField,
}

/// Refuses a region that holds no pixel or does not lie inside an image of `format`.
fn check_inside(roi: &Roi, format: PageFormat) -> Result<()> {
    if roi.left >= roi.right || roi.top >= roi.bottom {
        bail!("the region {roi} holds no pixel (right and bottom are excluded)");
    }
    if roi.right > format.width || roi.bottom > format.height {
        bail!(
            "the region {roi} does not lie inside the {}x{} images",
            format.width,
            format.height
        );
    }
    Ok(())
}

/// The mean of the region `roi` of `image` (width `width`), summed in float64.
fn region_mean<T: Pixel>(roi: &Roi, image: &[T], width: usize) -> f64 {
    let mut sum = 0f64;
    for row in roi.top..roi.bottom {
        let at = row * width;
        sum += image[at + roi.left..at + roi.right]
            .iter()
            .map(|v| v.as_f64())
            .sum::<f64>();
    }
    sum / ((roi.right - roi.left) * (roi.bottom - roi.top)) as f64
}

/// `imfilter roi-normalise`'s arguments.
#[derive(Debug, clap::Args)]
pub struct RoiNormaliseArgs {
    /// The air region: LEFT,TOP,RIGHT,BOTTOM in pixels (right and bottom excluded)
    #[arg(long, value_name = "L,T,R,B", value_parser = parse_roi)]
    pub roi: Roi,

    /// What the air regions' means are made equal to
    #[arg(long, value_enum, default_value_t = Mode::StackAverage)]
    pub mode: Mode,

    /// Flat (open-beam) images for --mode flat-field: files or directories; repeat to pool
    #[arg(long, value_name = "PATH", required_if_eq("mode", "flat-field"))]
    pub flat: Vec<PathBuf>,
}

impl OpArgs for RoiNormaliseArgs {
    fn build(&self) -> Result<Box<dyn Op>> {
        let flat = match self.mode {
            Mode::StackAverage if !self.flat.is_empty() => {
                bail!("--flat is used only with --mode flat-field")
            }
            Mode::StackAverage => None,
            Mode::FlatField => {
                let stack = Stack::open_pooled(&self.flat)?;
                let mean = Reference::combine_images(&stack, Average::Mean, "flats")?;
                Some((stack, mean))
            }
        };
        Ok(Box::new(RoiNormalise {
            roi: self.roi,
            mode: self.mode,
            flat,
            flat_mean: None,
            target: None,
            references: Vec::new(),
        }))
    }
}

/// Prepared ROI normalisation; `target` (the mean the air regions are scaled to) is known
/// after the survey or, in flat-field mode, once the flats follow the chain.
pub struct RoiNormalise {
    roi: Roi,
    mode: Mode,
    /// The flat stack and its per-pixel mean, until `follow` turns it into `flat_mean`.
    flat: Option<(Stack, Reference)>,
    flat_mean: Option<f64>,
    target: Option<f64>,
    references: Vec<Stack>,
}

impl Op for RoiNormalise {
    fn name(&self) -> &'static str {
        "roi-normalise"
    }

    fn parameters(&self) -> serde_json::Value {
        let files: Vec<String> = self
            .references
            .iter()
            .flat_map(|s| s.files().map(|p| p.display().to_string()))
            .collect();
        json!({
            "roi": self.roi.to_string(),
            "mode": match self.mode { Mode::StackAverage => "stack-average", Mode::FlatField => "flat-field" },
            "flat": files,
            "target_mean": self.target,
        })
    }

    fn references(&self) -> &[Stack] {
        &self.references
    }

    fn follow(&mut self, before: &[Box<dyn Op>]) -> Result<()> {
        if let Some((stack, mean)) = self.flat.take() {
            let Reshaped {
                image,
                shape: (width, height),
                ..
            } = reshaped_like(before, mean.pixels, (mean.width, mean.height))?;
            let format = PageFormat {
                width,
                height,
                dtype: DType::F32,
            };
            check_inside(&self.roi, format)
                .map_err(|e| anyhow::anyhow!("{}: the flats: {e:#}", stack.path.display()))?;
            self.flat_mean = Some(region_mean(&self.roi, &image, width));
            self.references.push(stack);
        }
        Ok(())
    }

    fn output_format(&self, input: PageFormat) -> Result<PageFormat> {
        check_inside(&self.roi, input)?;
        Ok(PageFormat {
            dtype: DType::F32,
            ..input
        })
    }

    fn needs_survey(&self) -> bool {
        self.mode == Mode::StackAverage
    }

    fn survey(&self, image: Pixels<'_>) -> Vec<f64> {
        let width = image.format.width;
        with_pixel_type!(image.format.dtype, T => vec![region_mean(&self.roi, image.get::<T>(), width)])
    }

    fn surveyed(&mut self, surveys: Vec<Vec<f64>>) -> Result<()> {
        let means: Vec<f64> = surveys.into_iter().flatten().collect();
        self.target = Some(means.iter().sum::<f64>() / means.len().max(1) as f64);
        Ok(())
    }

    fn apply(&self, _at: usize, src: Pixels<'_>, dst: PixelsMut<'_>) {
        let target = match self.mode {
            Mode::StackAverage => self.target,
            Mode::FlatField => self.flat_mean,
        }
        .expect("invariant: the target mean is known before the run");
        let width = src.format.width;
        with_pixel_type!(src.format.dtype, T => {
            let image = src.get::<T>();
            // As MantidImaging: a float32 factor, the float32 image divided by it.
            let factor = (region_mean(&self.roi, image, width) / target) as f32;
            for (o, &x) in dst.get::<f32>().iter_mut().zip(image) {
                *o = x.to_f32() / factor;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_image_is_scaled_to_the_stack_average_of_its_air_region() {
        let format = PageFormat {
            width: 2,
            height: 1,
            dtype: DType::F32,
        };
        let mut op = RoiNormalise {
            roi: parse_roi("0,0,1,1").expect("roi"),
            mode: Mode::StackAverage,
            flat: None,
            flat_mean: None,
            target: None,
            references: Vec::new(),
        };
        let images = [[2.0f32, 10.0], [4.0, 10.0]];
        let surveys = images
            .iter()
            .map(|i| op.survey(Pixels::new(format, i)))
            .collect();
        op.surveyed(surveys).expect("target");
        let mut out = [0f32; 2];
        op.apply(
            0,
            Pixels::new(format, &images[1]),
            PixelsMut::new(format, &mut out),
        );
        // Air means 2 and 4, average 3: the second image is divided by 4/3.
        assert_eq!(out, [3.0, 7.5]);
    }
}
