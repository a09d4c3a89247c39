//! `nan-removal`: MantidImaging's "NaN Removal" filter (`NaNRemovalFilter` in
//! `mantidimaging/core/operations/nan_removal/nan_removal.py`), in its two modes.
//!
//! * **constant** (`compute_constant_function`): `a[np.isnan(a)] = value`. Only NaN is
//!   replaced; ±Inf are kept, as in MantidImaging. Pointwise.
//! * **median**: each NaN pixel becomes the median of the *finite* values of its 3×3 window,
//!   the window read from the input (replacements never feed each other, so the result does
//!   not depend on any order), outside the image as scipy's `mode='reflect'` (which for a 3×3
//!   window repeats the edge pixel). With an even count of finite values the lower of the two
//!   middle ones is taken, so the result is always one of the window's values: the NaN rule of
//!   imfilter's `median` (see `filters::median`), except that ±Inf are not candidates either,
//!   so a replacement is always finite. A NaN whose window holds no finite value (the centre
//!   of a 3×3 block of NaN) stays NaN; running the step again fills it from the values the
//!   first pass put around it. Pixels that are not NaN (±Inf included) are kept.
//!
//! MantidImaging's median mode (`_nan_to_median`) turns NaN into −∞, runs
//! `scipy.ndimage.median_filter(size=3, mode='reflect')` and keeps the result only at NaN
//! pixels, putting NaN back where it is −∞. That counts each NaN of the window as a value below
//! every other: with one NaN in the window (an isolated dead pixel away from the border) both
//! rules give the same value (rank 4 of 9 with the NaN lowest is rank 3 of the 8 others, the
//! lower middle), but with more NaN nearby MantidImaging's result slides towards the window's
//! smallest values, and with five or more it leaves NaN. The finite values' median is what the
//! filter means to compute, unbiased by how many neighbours are missing.
//!
//! Only float images hold NaN: integer images pass through unchanged, in their own type. The
//! output type is always the input's; in constant mode the value is rounded to float32 for a
//! float32 image, as numpy's assignment into a float32 array rounds it.

use std::cmp::Ordering;

use anyhow::{Result, bail};
use serde_json::json;

use super::{Op, OpArgs, Pixels, PixelsMut};
use crate::pixel::{DType, Pixel};
use crate::stack::PageFormat;
use crate::with_pixel_type;

/// What replaces NaN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NanMode {
    /// The --value given (MantidImaging's "Constant")
    Constant,
    /// The median of the finite values of the pixel's 3×3 window (MantidImaging's "Median")
    Median,
}

/// A finite number: the replacement of a NaN.
fn parse_finite(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err("give a finite number (NaN is replaced by it)".into()),
        Err(_) => Err("not a number".into()),
    }
}

/// `imfilter nan-removal`'s arguments.
#[derive(Debug, clap::Args)]
pub struct NanRemovalArgs {
    /// constant: NaN becomes --value; median: NaN becomes the median of the finite values of
    /// its 3x3 window
    #[arg(long, value_enum)]
    pub mode: NanMode,

    /// What NaN becomes with --mode constant (a finite number)
    #[arg(
        long,
        value_name = "V",
        allow_negative_numbers = true,
        value_parser = parse_finite,
        required_if_eq("mode", "constant")
    )]
    pub value: Option<f64>,
}

impl OpArgs for NanRemovalArgs {
    fn build(&self) -> Result<Box<dyn Op>> {
        let rule = match (self.mode, self.value) {
            (NanMode::Constant, Some(v)) => Rule::Constant(v),
            (NanMode::Constant, None) => bail!("--mode constant needs --value"),
            (NanMode::Median, None) => Rule::Median,
            (NanMode::Median, Some(v)) => bail!(
                "--value {v} is only for --mode constant: --mode median takes the value from \
                 each NaN's neighbours"
            ),
        };
        Ok(Box::new(NanRemoval(rule)))
    }
}

/// What a [`NanRemoval`] puts in place of NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// This value (finite).
    Constant(f64),
    /// The median of the finite values of the 3×3 window (module doc).
    Median,
}

/// `imfilter nan-removal`: NaN replaced by a constant or by the median of its finite
/// neighbours (module doc).
pub struct NanRemoval(pub Rule);

/// The float types, which can hold NaN.
trait Float: Pixel {
    const NAN: Self;
    fn from_f64(v: f64) -> Self;
    fn finite(self) -> bool;
    /// IEEE total order (−0 before +0); only ever called on finite values.
    fn order(&self, other: &Self) -> Ordering;
}

impl Float for f32 {
    const NAN: Self = f32::NAN;
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn finite(self) -> bool {
        self.is_finite()
    }
    fn order(&self, other: &Self) -> Ordering {
        self.total_cmp(other)
    }
}

impl Float for f64 {
    const NAN: Self = f64::NAN;
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn finite(self) -> bool {
        self.is_finite()
    }
    fn order(&self, other: &Self) -> Ordering {
        self.total_cmp(other)
    }
}

/// `a[np.isnan(a)] = value`, `value` already in the image's type.
fn replace_constant<T: Float>(src: &[T], dst: &mut [T], value: T) {
    for (o, &x) in dst.iter_mut().zip(src) {
        *o = if x.is_nan() { value } else { x };
    }
}

/// The median of the finite values of the 3×3 window of each NaN pixel of the `width`-wide
/// image `src` (module doc); every other pixel copied.
fn replace_by_median<T: Float>(src: &[T], dst: &mut [T], width: usize) {
    dst.copy_from_slice(src);
    let height = src.len() / width;
    for r in 0..height {
        let row = &src[r * width..(r + 1) * width];
        if !row.iter().any(|x| x.is_nan()) {
            continue;
        }
        // scipy's 'reflect' for a 3×3 window: the row or column past an edge is the edge's.
        let rows = [r.saturating_sub(1), r, (r + 1).min(height - 1)];
        for (c, _) in row.iter().enumerate().filter(|(_, x)| x.is_nan()) {
            let cols = [c.saturating_sub(1), c, (c + 1).min(width - 1)];
            let mut window = [T::NAN; 9];
            let mut n = 0;
            for &wr in &rows {
                for &wc in &cols {
                    let v = src[wr * width + wc];
                    if v.finite() {
                        window[n] = v;
                        n += 1;
                    }
                }
            }
            if n > 0 {
                let finite = &mut window[..n];
                finite.sort_unstable_by(T::order);
                dst[r * width + c] = finite[(n - 1) / 2];
            }
        }
    }
}

impl Op for NanRemoval {
    fn name(&self) -> &'static str {
        "nan-removal"
    }

    fn parameters(&self) -> serde_json::Value {
        match self.0 {
            Rule::Constant(v) => json!({ "mode": "constant", "value": v }),
            Rule::Median => json!({ "mode": "median", "size": 3, "border": "reflect" }),
        }
    }

    fn output_format(&self, input: PageFormat) -> Result<PageFormat> {
        if let (Rule::Constant(v), DType::F32) = (self.0, input.dtype)
            && !(v as f32).is_finite()
        {
            bail!("--value {v:e} is beyond float32, the type of the images");
        }
        Ok(input)
    }

    fn pointwise(&self) -> bool {
        matches!(self.0, Rule::Constant(_))
    }

    fn apply(&self, _at: usize, src: Pixels<'_>, dst: PixelsMut<'_>) {
        let width = src.format.width;
        match (src.format.dtype, self.0) {
            (DType::F32, Rule::Constant(v)) => {
                replace_constant(src.get::<f32>(), dst.get::<f32>(), f32::from_f64(v))
            }
            (DType::F64, Rule::Constant(v)) => {
                replace_constant(src.get::<f64>(), dst.get::<f64>(), v)
            }
            (DType::F32, Rule::Median) => {
                replace_by_median(src.get::<f32>(), dst.get::<f32>(), width)
            }
            (DType::F64, Rule::Median) => {
                replace_by_median(src.get::<f64>(), dst.get::<f64>(), width)
            }
            // Integers hold no NaN.
            (dtype, _) => with_pixel_type!(dtype, T => {
                dst.get::<T>().copy_from_slice(src.get::<T>())
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: f32 = f32::NAN;
    const INF: f32 = f32::INFINITY;

    fn median(src: &[f32], width: usize) -> Vec<f32> {
        let mut dst = vec![0f32; src.len()];
        replace_by_median(src, &mut dst, width);
        dst
    }

    /// Equal as bit patterns (NaN equal to NaN).
    fn assert_bits(actual: &[f32], expected: &[f32]) {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(actual), bits(expected), "{actual:?} != {expected:?}");
    }

    #[test]
    fn an_isolated_nan_becomes_the_lower_middle_of_its_eight_neighbours() {
        #[rustfmt::skip]
        let src = [
            1.0, 2.0, 3.0,
            4.0, N,   5.0,
            6.0, 7.0, 8.0,
        ];
        let out = median(&src, 3);
        // Sorted neighbours 1..8: the lower middle is 4.
        assert_eq!(out[4], 4.0);
        assert_bits(&out[..4], &src[..4]);
        assert_bits(&out[5..], &src[5..]);
    }

    #[test]
    fn infinities_are_kept_and_never_chosen() {
        #[rustfmt::skip]
        let src = [
            INF, INF, INF,
            -INF, N,  1.0,
            2.0, 3.0, 9.0,
        ];
        let out = median(&src, 3);
        // Finite values 1, 2, 3, 9: the lower middle is 2.
        assert_eq!(out[4], 2.0);
        assert_bits(&out[..4], &src[..4]);
    }

    #[test]
    fn replacements_do_not_feed_each_other_and_a_window_of_nan_stays_nan() {
        // A 3×3 block of NaN in a 5×5 image of 1..25: the centre's window is all NaN.
        let mut src: Vec<f32> = (1..=25).map(|v| v as f32).collect();
        for r in 1..4 {
            for c in 1..4 {
                src[r * 5 + c] = N;
            }
        }
        let out = median(&src, 5);
        assert!(out[12].is_nan());
        // (1,1): finite neighbours 1, 2, 3, 6, 11 -> 3, whatever its neighbours become.
        assert_eq!(out[6], 3.0);
        // (2,1): finite neighbours 6, 11, 16 -> 11.
        assert_eq!(out[11], 11.0);
        assert!(
            out.iter()
                .enumerate()
                .all(|(i, v)| i == 12 || v.is_finite())
        );
    }

    #[test]
    fn borders_reflect_the_edge_pixel() {
        // Corner (0,0) of [[N, 5], [1, 9]]: reflect reads 5 twice, 1 twice, 9 once -> 5.
        let out = median(&[N, 5.0, 1.0, 9.0], 2);
        assert_eq!(out[0], 5.0);
        // A 1-pixel-high image: the row is read three times. [N, 2, 7]: (0,0) reads 2 x3
        // and N x6 -> 2; (nothing else is NaN).
        let out = median(&[N, 2.0, 7.0], 3);
        assert_eq!(out[0], 2.0);
        // Edge (0,1) of [[0, N, 0], [10, 10, 10]]: reflect reads 0 four times and 10 three
        // times -> 0 (the window without reflection, 0 0 10 10 10, would give 10).
        let out = median(&[0.0, N, 0.0, 10.0, 10.0, 10.0], 3);
        assert_eq!(out[1], 0.0);
        // A single NaN pixel has no finite value around it.
        assert!(median(&[N], 1)[0].is_nan());
    }

    #[test]
    fn constant_replaces_only_nan() {
        let mut out = [0f32; 5];
        replace_constant(&[N, INF, -INF, 1.5, -0.0], &mut out, 7.0);
        assert_bits(&out, &[7.0, INF, -INF, 1.5, -0.0]);
    }

    #[test]
    fn value_rounds_to_float32_and_must_fit_it() {
        let f32_format = PageFormat {
            width: 1,
            height: 1,
            dtype: DType::F32,
        };
        assert!(
            NanRemoval(Rule::Constant(1e39))
                .output_format(f32_format)
                .is_err()
        );
        let f64_format = PageFormat {
            dtype: DType::F64,
            ..f32_format
        };
        assert!(
            NanRemoval(Rule::Constant(1e39))
                .output_format(f64_format)
                .is_ok()
        );
    }
}
