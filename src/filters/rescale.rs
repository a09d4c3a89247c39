//! `rescale`: values mapped linearly from `[min, max]` onto the target type's range, clamped
//! at both ends, as MantidImaging's Rescale filter does (`RescaleFilter.filter_array`:
//! `np.interp(image, [min_input, max_input], [0, max_output])`, mantidimaging 2.x,
//! `core/operations/rescale/rescale.py`) and its saver then does for integer files
//! (`.astype(np.uint16)` of that float32 array, which truncates toward zero).
//!
//! Per pixel, in float64 as `np.interp` computes: NaN stays NaN (0 in an integer result, what
//! the cast gives); `x <= min` gives 0; `x >= max` gives `M`; otherwise
//! `(M - 0) / (max - min) * (x - min) + 0`. The result is rounded to float32 (MantidImaging
//! writes it back into its float32 array), and for an integer target truncated toward zero.
//! `M` is 255 for uint8, 65535 for uint16 and 1 for float32 unless `--max-output` says.
//! Without `--min` and `--max` they are the whole stack's smallest and largest value (NaN
//! ignored), found by a first read of the stack (a survey).

use anyhow::{Result, bail};
use serde_json::json;

use super::{Op, OpArgs, Pixels, PixelsMut};
use crate::pixel::{DType, Pixel};
use crate::stack::PageFormat;
use crate::with_pixel_type;

/// The types a result can be rescaled to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    Uint8,
    Uint16,
    Float32,
}

impl Target {
    fn dtype(self) -> DType {
        match self {
            Target::Uint8 => DType::U8,
            Target::Uint16 => DType::U16,
            Target::Float32 => DType::F32,
        }
    }

    fn default_max_output(self) -> f64 {
        match self {
            Target::Uint8 => 255.0,
            Target::Uint16 => 65535.0,
            Target::Float32 => 1.0,
        }
    }
}

/// `imfilter rescale`'s arguments.
#[derive(Debug, clap::Args)]
pub struct RescaleArgs {
    /// The type of the result
    #[arg(long, value_enum)]
    pub to: Target,

    /// The input value mapped to 0; lower values become 0 [default: the stack's smallest]
    #[arg(
        long,
        value_name = "A",
        allow_negative_numbers = true,
        requires = "max"
    )]
    pub min: Option<f64>,

    /// The input value mapped to the top of the range; higher values become it [default:
    /// the stack's largest]
    #[arg(
        long,
        value_name = "B",
        allow_negative_numbers = true,
        requires = "min"
    )]
    pub max: Option<f64>,

    /// The top of the output range [default: 255 for uint8, 65535 for uint16, 1 for float32]
    #[arg(long, value_name = "M")]
    pub max_output: Option<f64>,
}

impl OpArgs for RescaleArgs {
    fn build(&self) -> Result<Box<dyn Op>> {
        let max_output = self
            .max_output
            .unwrap_or_else(|| self.to.default_max_output());
        let top = match self.to {
            Target::Uint8 => f64::from(u8::MAX),
            Target::Uint16 => f64::from(u16::MAX),
            Target::Float32 => f64::from(f32::MAX),
        };
        if !(max_output > 0.0 && max_output <= top) {
            bail!(
                "--max-output {max_output}: must be above 0 and at most {top} for {:?}",
                self.to
            );
        }
        let bounds = match (self.min, self.max) {
            (Some(min), Some(max)) => Some(checked_bounds(min, max)?),
            _ => None,
        };
        Ok(Box::new(Rescale {
            target: self.to,
            max_output,
            bounds,
        }))
    }
}

fn checked_bounds(min: f64, max: f64) -> Result<(f64, f64)> {
    if !(min.is_finite() && max.is_finite() && min < max) {
        bail!("--min {min} and --max {max}: the minimum must be below the maximum, both finite");
    }
    Ok((min, max))
}

/// Prepared rescaling; `bounds` is `None` until the survey found them.
pub struct Rescale {
    target: Target,
    max_output: f64,
    bounds: Option<(f64, f64)>,
}

impl Rescale {
    /// One value mapped as `np.interp(x, [min, max], [0, max_output])` (module doc).
    fn map(&self, x: f64, (min, max): (f64, f64)) -> f32 {
        let v = if x.is_nan() {
            f64::NAN
        } else if x <= min {
            0.0
        } else if x >= max {
            self.max_output
        } else {
            self.max_output / (max - min) * (x - min)
        };
        v as f32
    }
}

impl Op for Rescale {
    fn name(&self) -> &'static str {
        "rescale"
    }

    fn parameters(&self) -> serde_json::Value {
        let (min, max) = self.bounds.unzip();
        json!({
            "to": self.target.dtype().name(),
            "min": min,
            "max": max,
            "max_output": self.max_output,
        })
    }

    fn output_format(&self, input: PageFormat) -> Result<PageFormat> {
        Ok(PageFormat {
            dtype: self.target.dtype(),
            ..input
        })
    }

    fn pointwise(&self) -> bool {
        true
    }

    fn needs_survey(&self) -> bool {
        self.bounds.is_none()
    }

    /// The image's smallest and largest value, NaN ignored (none: an empty survey).
    fn survey(&self, image: Pixels<'_>) -> Vec<f64> {
        with_pixel_type!(image.format.dtype, T => {
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for &v in image.get::<T>() {
                let v = v.as_f64();
                // NaN fails both comparisons, so it never moves the bounds.
                if v < lo {
                    lo = v;
                }
                if v > hi {
                    hi = v;
                }
            }
            if lo <= hi { vec![lo, hi] } else { Vec::new() }
        })
    }

    fn surveyed(&mut self, surveys: Vec<Vec<f64>>) -> Result<()> {
        let found = surveys.iter().filter(|s| s.len() == 2);
        let min = found.clone().map(|s| s[0]).fold(f64::INFINITY, f64::min);
        let max = found.map(|s| s[1]).fold(f64::NEG_INFINITY, f64::max);
        if min > max {
            bail!("every value of the stack is NaN: nothing to rescale");
        }
        if min == max {
            bail!("every value of the stack is {min}: give --min and --max to rescale it");
        }
        self.bounds = Some(checked_bounds(min, max)?);
        Ok(())
    }

    fn apply(&self, _at: usize, src: Pixels<'_>, dst: PixelsMut<'_>) {
        let bounds = self
            .bounds
            .expect("invariant: bounds given or surveyed before the run");
        with_pixel_type!(src.format.dtype, T => {
            let src = src.get::<T>();
            match self.target {
                Target::Float32 => {
                    for (o, &x) in dst.get::<f32>().iter_mut().zip(src) {
                        *o = self.map(x.as_f64(), bounds);
                    }
                }
                // `as` truncates toward zero and turns NaN into 0, as numpy's cast does here.
                Target::Uint16 => {
                    for (o, &x) in dst.get::<u16>().iter_mut().zip(src) {
                        *o = self.map(x.as_f64(), bounds) as u16;
                    }
                }
                Target::Uint8 => {
                    for (o, &x) in dst.get::<u8>().iter_mut().zip(src) {
                        *o = self.map(x.as_f64(), bounds) as u8;
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rescale(target: Target, bounds: (f64, f64)) -> Rescale {
        Rescale {
            target,
            max_output: target.default_max_output(),
            bounds: Some(bounds),
        }
    }

    #[test]
    fn values_map_linearly_and_clamp_at_both_ends() {
        let r = rescale(Target::Uint8, (10.0, 20.0));
        let got: Vec<u8> = [5.0, 10.0, 15.0, 19.99, 20.0, 99.0, f64::NAN]
            .iter()
            .map(|&x| r.map(x, (10.0, 20.0)) as u8)
            .collect();
        // 127.5 and 254.745 truncate, as numpy's astype does.
        assert_eq!(got, [0, 0, 127, 254, 255, 255, 0]);
    }

    #[test]
    fn the_survey_ignores_nan_and_refuses_a_constant_stack() {
        let mut r = rescale(Target::Float32, (0.0, 1.0));
        r.bounds = None;
        let format = PageFormat {
            width: 3,
            height: 1,
            dtype: DType::F32,
        };
        let found = r.survey(Pixels::new(format, &[2.0f32, f32::NAN, -1.0]));
        assert_eq!(found, [-1.0, 2.0]);
        assert!(r.surveyed(vec![vec![3.0, 3.0]]).is_err());
        r.surveyed(vec![found, vec![]]).expect("bounds");
        assert_eq!(r.bounds, Some((-1.0, 2.0)));
    }
}
