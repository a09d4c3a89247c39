//! `imfilter gaussian`: a Gaussian blur of each image, scipy's documented algorithm for
//! `scipy.ndimage.gaussian_filter(img.astype(np.float64), sigma, mode=MODE, cval=V,
//! truncate=T)`, the result rounded once to the output type.
//!
//! What scipy does, and what is done here in the same order and precision
//! (`scipy/ndimage/_filters.py`: `gaussian_filter`, `gaussian_filter1d`, `_gaussian_kernel1d`;
//! `scipy/ndimage/src/ni_filters.c`: `NI_Correlate1D`; `ni_support.c`: `NI_ExtendLine`):
//!
//! * The kernel has radius `r = int(truncate * sigma + 0.5)` and weights
//!   `exp(-0.5 / sigma² · x²)` for x = −r ..= r, divided by their sum (numpy's pairwise sum,
//!   reproduced by [`pairwise_sum`]). It is symmetric, so it is kept as its half `w[0..=r]`.
//! * The image is filtered along axis 0 (down the columns) and then along axis 1 (along the
//!   rows), each pass in float64: `out = in[0]·w[0]`, then for j = r down to 1,
//!   `out += (in[−j] + in[+j])·w[j]` — `NI_Correlate1D`'s loop for a symmetric kernel, with no
//!   fused multiply-add.
//! * Outside the image each pass reads what scipy's `mode` says ([`BorderMode`], the median's
//!   border rule: reflect, nearest, mirror, constant with `cval` as a float64, wrap), periodic
//!   when the kernel is wider than the image, as `NI_ExtendLine` extends a line.
//! * An axis whose sigma is at most 1e-15 is not filtered (scipy skips it).
//!
//! Both passes run row by row: each output row is the vertical pass over the 2r + 1 input rows
//! around it (whole rows, a vectorised loop per kernel weight), then the horizontal pass over
//! that one row padded at its ends. No intermediate image is kept, only two rows of float64.
//!
//! Output type: float32 for float32 and every integer type, float64 for float64. A float64
//! result is computed in float64, as above. A float32 result is computed in float32, the same
//! passes and taps with float32 weights, compiled for AVX2 and AVX-512 and chosen when it runs
//! ([`Separable::image_f32`]): within 1e-6 relative of the float64 filter on data of one sign,
//! the issue's 1e-5 with room, and by an estimate about as fast per core as OpenCV's
//! `GaussianBlur` (docs/operations.md). The float64 filter is also the anti-aliasing prefilter of
//! `rebin --scale` ([`Separable`]), where agreeing with scikit-image bit for bit matters more.

use anyhow::{Result, bail};
use serde_json::json;

use super::median::BorderMode;
use super::median::Isa;
use super::median::Sample;
use super::median::per_isa;
use super::{Op, OpArgs, Pixels, PixelsMut};
use crate::pixel::{DType, Pixel};
use crate::stack::PageFormat;
use crate::with_pixel_type;

/// The largest kernel radius accepted (`int(truncate * sigma + 0.5)`): past it a typing slip
/// such as `--sigma 1e9` would ask for gigabytes of weights and days of work.
pub const MAX_RADIUS: usize = 1 << 20;

/// A float type a filtered value (float64) is written as, rounded to nearest.
pub(crate) trait FloatOut: Pixel {
    fn from_f64(v: f64) -> Self;
}

impl FloatOut for f32 {
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl FloatOut for f64 {
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// The float type an image of `dtype` is filtered into: float64 stays float64, everything else
/// becomes float32.
pub(crate) fn float_type(dtype: DType) -> DType {
    match dtype {
        DType::F64 => DType::F64,
        _ => DType::F32,
    }
}

/// numpy's `np.add.reduce` of a contiguous float64 array (`pairwise_sum_DOUBLE` in
/// `numpy/_core/src/umath/loops_utils.h.src`): a plain loop under 8 values, eight running sums
/// up to 128, halves (at a multiple of 8) above.
pub(crate) fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |s, &v| s + v)
    } else if n <= 128 {
        let mut r = [0f64; 8];
        r.copy_from_slice(&a[..8]);
        let whole = n - n % 8;
        for block in a[8..whole].chunks_exact(8) {
            for (r, &v) in r.iter_mut().zip(block) {
                *r += v;
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[whole..] {
            res += v;
        }
        res
    } else {
        let half = n / 2;
        let half = half - half % 8;
        pairwise_sum(&a[..half]) + pairwise_sum(&a[half..])
    }
}

/// `int(truncate * sigma + 0.5)`, scipy's kernel radius, or why it is refused.
pub(crate) fn radius(sigma: f64, truncate: f64) -> Result<usize> {
    let r = truncate * sigma + 0.5;
    if !r.is_finite() || r >= (MAX_RADIUS + 1) as f64 {
        bail!(
            "--sigma {sigma} with --truncate {truncate} gives a kernel radius of \
             int(truncate * sigma + 0.5) = {r:.0} pixels: at most {MAX_RADIUS} is accepted"
        );
    }
    Ok(r as usize)
}

/// scipy's `_gaussian_kernel1d(sigma, 0, radius)`, as its half: the weights of offsets
/// 0 ..= radius (the kernel is symmetric).
pub(crate) fn half_kernel(sigma: f64, radius: usize) -> Vec<f64> {
    let coefficient = -0.5 / (sigma * sigma);
    let r = radius as i64;
    let phi: Vec<f64> = (-r..=r)
        .map(|x| (coefficient * (x * x) as f64).exp())
        .collect();
    let sum = pairwise_sum(&phi);
    phi[radius..].iter().map(|p| p / sum).collect()
}

/// A Gaussian filter along axis 0 then axis 1, each optional (scipy skips an axis whose sigma
/// is at most 1e-15).
pub(crate) struct Separable {
    /// Half kernel down the columns (axis 0, applied first).
    vertical: Option<Vec<f64>>,
    /// Half kernel along the rows (axis 1).
    horizontal: Option<Vec<f64>>,
    mode: BorderMode,
    cval: f64,
}

/// Reusable rows for [`Separable::row`].
pub(crate) struct RowScratch<A> {
    padded: Vec<A>,
}

impl<A> Default for RowScratch<A> {
    fn default() -> Self {
        RowScratch { padded: Vec::new() }
    }
}

/// The precision a row is filtered in: float64 (scipy's, and `rebin --scale`'s) or float32
/// (float32 results of `gaussian`). The arithmetic is the same, in the same order, in both.
pub(crate) trait Accumulator:
    Copy + Default + std::ops::Add<Output = Self> + std::ops::Mul<Output = Self> + std::ops::AddAssign
{
    fn of<T: Pixel>(v: T) -> Self;
    fn weight(w: f64) -> Self;
}

impl Accumulator for f64 {
    #[inline(always)]
    fn of<T: Pixel>(v: T) -> Self {
        v.as_f64()
    }
    #[inline(always)]
    fn weight(w: f64) -> Self {
        w
    }
}

impl Accumulator for f32 {
    #[inline(always)]
    fn of<T: Pixel>(v: T) -> Self {
        v.to_f32()
    }
    #[inline(always)]
    fn weight(w: f64) -> Self {
        w as f32
    }
}

impl Separable {
    /// Sigmas (down the columns, along the rows) with scipy's truncation; an axis with a sigma
    /// of at most 1e-15 is left alone.
    pub(crate) fn new(
        (sigma_y, sigma_x): (f64, f64),
        truncate: f64,
        mode: BorderMode,
        cval: f64,
    ) -> Result<Separable> {
        let axis = |sigma: f64| -> Result<Option<Vec<f64>>> {
            if sigma > 1e-15 {
                Ok(Some(half_kernel(sigma, radius(sigma, truncate)?)))
            } else {
                Ok(None)
            }
        };
        Ok(Separable {
            vertical: axis(sigma_y)?,
            horizontal: axis(sigma_x)?,
            mode,
            cval,
        })
    }

    /// Whether the filter changes nothing (no axis filtered).
    pub(crate) fn is_identity(&self) -> bool {
        self.vertical.is_none() && self.horizontal.is_none()
    }

    /// Row `y` of the filtered `width`-wide image `src`, in the precision `A`, into `out`
    /// (`width` long).
    #[inline(always)]
    pub(crate) fn row<T: Pixel, A: Accumulator>(
        &self,
        src: &[T],
        width: usize,
        y: usize,
        scratch: &mut RowScratch<A>,
        out: &mut [A],
    ) {
        let height = src.len() / width;
        let input = |s: usize| &src[s * width..(s + 1) * width];
        let cval = A::weight(self.cval);
        match &self.vertical {
            None => {
                for (o, &v) in out.iter_mut().zip(input(y)) {
                    *o = A::of(v);
                }
            }
            Some(w) => {
                let w0 = A::weight(w[0]);
                for (o, &v) in out.iter_mut().zip(input(y)) {
                    *o = A::of(v) * w0;
                }
                for j in (1..w.len()).rev() {
                    let wj = A::weight(w[j]);
                    let at = |d: isize| self.mode.source_index(y as isize + d, height);
                    match (at(-(j as isize)), at(j as isize)) {
                        (Some(a), Some(b)) => {
                            for ((o, &p), &q) in out.iter_mut().zip(input(a)).zip(input(b)) {
                                *o += (A::of(p) + A::of(q)) * wj;
                            }
                        }
                        (Some(s), None) | (None, Some(s)) => {
                            for (o, &p) in out.iter_mut().zip(input(s)) {
                                *o += (A::of(p) + cval) * wj;
                            }
                        }
                        (None, None) => {
                            let both = (cval + cval) * wj;
                            for o in out.iter_mut() {
                                *o += both;
                            }
                        }
                    }
                }
            }
        }
        if let Some(w) = &self.horizontal {
            let r = w.len() - 1;
            let padded = &mut scratch.padded;
            padded.clear();
            let outside =
                |c: isize, row: &[A]| self.mode.source_index(c, width).map_or(cval, |s| row[s]);
            padded.extend((-(r as isize)..0).map(|c| outside(c, out)));
            padded.extend_from_slice(out);
            padded.extend((width as isize..(width + r) as isize).map(|c| outside(c, out)));
            let w0 = A::weight(w[0]);
            for (o, &v) in out.iter_mut().zip(&padded[r..r + width]) {
                *o = v * w0;
            }
            for j in (1..=r).rev() {
                let wj = A::weight(w[j]);
                let (before, after) =
                    (&padded[r - j..r - j + width], &padded[r + j..r + j + width]);
                for ((o, &p), &q) in out.iter_mut().zip(before).zip(after) {
                    *o += (p + q) * wj;
                }
            }
        }
    }

    /// The whole `width`-wide image `src` filtered into float32 `dst`, computed in float32:
    /// the same passes, taps and border rule as [`Separable::row`], with float32 weights and
    /// sums. Eight lanes a vector instead of four, and no conversion per tap, make it about
    /// three times as fast; the result stays within 1e-6 relative of the float64 filter for
    /// data of one sign (every weight is positive, so each sum has at most 2r + 1 roundings
    /// of half an ulp), inside the issue's 1e-5.
    fn image_f32<T: Sample>(&self, src: &[T], width: usize, dst: &mut [f32]) {
        // Compiled for each vector width the CPU may have, chosen when it runs (the median's
        // dispatch): the baseline x86-64 build has only 4 float32 lanes.
        gaussian_f32(Isa::best(), self, src, width, dst);
    }

    /// The whole `width`-wide image `src` filtered into `dst` (see [`Separable::image_f32`]).
    fn image<T: Pixel, O: FloatOut>(&self, src: &[T], width: usize, dst: &mut [O]) {
        let mut scratch = RowScratch::default();
        let mut row = vec![0f64; width];
        for (y, out) in dst.chunks_exact_mut(width).enumerate() {
            self.row(src, width, y, &mut scratch, &mut row);
            for (o, &v) in out.iter_mut().zip(&row) {
                *o = O::from_f64(v);
            }
        }
    }
}

per_isa!(fn gaussian_f32 = gaussian_f32_body(
    filter: &Separable,
    src: &[T],
    width: usize,
    dst: &mut [f32],
));

/// [`Separable::image_f32`]'s work, for each instruction set.
#[inline(always)]
fn gaussian_f32_body<T: Sample>(filter: &Separable, src: &[T], width: usize, dst: &mut [f32]) {
    let mut scratch = RowScratch::default();
    for (y, out) in dst.chunks_exact_mut(width).enumerate() {
        filter.row(src, width, y, &mut scratch, out);
    }
}

/// A positive, finite sigma.
fn parse_sigma(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!(
            "{v}: sigma must be a number of pixels greater than 0"
        )),
        Err(_) => Err(format!("'{s}' is not a number of pixels")),
    }
}

/// A finite truncation of at least 0 (scipy: 0 leaves a kernel of one weight).
fn parse_truncate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!(
            "{v}: truncate must be a finite number of at least 0"
        )),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

fn parse_mode(s: &str) -> Result<BorderMode, String> {
    BorderMode::parse(s)
        .ok_or_else(|| format!("'{s}': expected one of reflect, nearest, mirror, constant, wrap"))
}

fn parse_cval(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| "not a number (nan, inf and -inf are accepted here)".into())
}

/// `imfilter gaussian`'s arguments.
#[derive(Debug, clap::Args)]
pub struct GaussianArgs {
    /// Standard deviation of the Gaussian in pixels (the same along both axes), greater than 0
    #[arg(long, value_name = "S", allow_negative_numbers = true, value_parser = parse_sigma)]
    pub sigma: f64,

    /// Border rule, as scipy.ndimage: reflect (d c b a | a b c d | d c b a), mirror
    /// (d c b | a b c d | c b a), nearest (a a a | a b c d | d d d), constant (cval), wrap
    #[arg(long, default_value = "reflect", value_parser = parse_mode)]
    pub mode: BorderMode,

    /// Value outside the image for --mode constant
    #[arg(long, default_value_t = 0.0, value_name = "V", allow_negative_numbers = true, value_parser = parse_cval)]
    pub cval: f64,

    /// Kernel radius in sigmas: the kernel reaches int(truncate * sigma + 0.5) pixels each way
    #[arg(long, default_value_t = 4.0, value_name = "T", allow_negative_numbers = true, value_parser = parse_truncate)]
    pub truncate: f64,
}

impl OpArgs for GaussianArgs {
    fn build(&self) -> Result<Box<dyn Op>> {
        let filter = Separable::new(
            (self.sigma, self.sigma),
            self.truncate,
            self.mode,
            self.cval,
        )?;
        Ok(Box::new(Gaussian {
            sigma: self.sigma,
            truncate: self.truncate,
            filter,
        }))
    }
}

/// `imfilter gaussian`: `scipy.ndimage.gaussian_filter(img.astype(np.float64), sigma,
/// mode=MODE, cval=V, truncate=T)`, rounded once to float32 (float64 for a float64 image). See
/// the module documentation for the algorithm.
pub struct Gaussian {
    sigma: f64,
    truncate: f64,
    filter: Separable,
}

impl Op for Gaussian {
    fn name(&self) -> &'static str {
        "gaussian"
    }

    fn parameters(&self) -> serde_json::Value {
        let radius = self.filter.vertical.as_ref().map_or(0, |w| w.len() - 1);
        let cval = if self.filter.cval.is_finite() {
            json!(self.filter.cval)
        } else {
            json!(self.filter.cval.to_string())
        };
        json!({
            "sigma": self.sigma,
            "mode": self.filter.mode.name(),
            "cval": cval,
            "truncate": self.truncate,
            "radius": radius,
        })
    }

    fn output_format(&self, input: PageFormat) -> Result<PageFormat> {
        Ok(PageFormat {
            dtype: float_type(input.dtype),
            ..input
        })
    }

    fn apply(&self, _at: usize, src: Pixels<'_>, dst: PixelsMut<'_>) {
        let width = src.format.width;
        with_pixel_type!(src.format.dtype, T => {
            let src = src.get::<T>();
            match dst.format.dtype {
                DType::F64 => self.filter.image(src, width, dst.get::<f64>()),
                _ => self.filter.image_f32(src, width, dst.get::<f32>()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 2-D Gaussian by its definition: every output pixel the double sum over the
    /// (2r+1)² window of the full kernel, outside pixels read by the border rule.
    fn direct(src: &[f64], width: usize, sigma: f64, mode: BorderMode, cval: f64) -> Vec<f64> {
        let height = src.len() / width;
        let r = radius(sigma, 4.0).expect("radius");
        let half = half_kernel(sigma, r);
        let w = |d: isize| half[d.unsigned_abs()];
        let mut out = vec![0.0; src.len()];
        for y in 0..height {
            for x in 0..width {
                let mut acc = 0.0;
                for dy in -(r as isize)..=r as isize {
                    for dx in -(r as isize)..=r as isize {
                        let sy = mode.source_index(y as isize + dy, height);
                        let sx = mode.source_index(x as isize + dx, width);
                        let v = match (sy, sx) {
                            (Some(sy), Some(sx)) => src[sy * width + sx],
                            _ => cval,
                        };
                        acc += v * w(dy) * w(dx);
                    }
                }
                out[y * width + x] = acc;
            }
        }
        out
    }

    #[test]
    fn the_kernel_is_normalised_symmetric_and_scipys_size() {
        assert_eq!(radius(1.0, 4.0).expect("r"), 4);
        assert_eq!(radius(2.5, 4.0).expect("r"), 10);
        assert_eq!(radius(0.1, 4.0).expect("r"), 0);
        assert_eq!(radius(1.0, 0.0).expect("r"), 0);
        assert!(radius(1e9, 4.0).is_err());
        for sigma in [0.3, 1.0, 2.5, 40.0] {
            let half = half_kernel(sigma, radius(sigma, 4.0).expect("r"));
            let total = half[0] + 2.0 * half[1..].iter().sum::<f64>();
            assert!((total - 1.0).abs() < 1e-14, "{sigma}: {total}");
            assert!(half.windows(2).all(|p| p[0] > p[1]));
        }
        assert_eq!(half_kernel(0.1, 0), vec![1.0]);
    }

    #[test]
    fn pairwise_sum_adds_in_numpys_order() {
        // Each branch: a plain loop, eight running sums, and halves.
        for n in [0, 3, 7, 8, 9, 17, 128, 129, 300] {
            let a: Vec<f64> = (0..n).map(|i| 1.0 / (i as f64 + 1.0)).collect();
            let plain: f64 = a.iter().sum();
            assert!((pairwise_sum(&a) - plain).abs() < 1e-13, "{n}");
        }
        // What numpy's np.add.reduce gives for these (a left-to-right sum gives 2 and 131).
        let mut a = vec![1e16, 1.0, -1e16, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0];
        assert_eq!(pairwise_sum(&a), 1.0);
        a.extend([1.0; 129]);
        assert_eq!(a.len(), 138);
        assert_eq!(pairwise_sum(&a), 118.0);
    }

    #[test]
    fn separable_rows_equal_the_direct_double_sum_in_every_mode() {
        // Sides smaller than the kernel too: the border rule repeats periodically.
        for (width, height) in [(9, 7), (3, 2), (1, 5), (12, 1)] {
            let src: Vec<f64> = (0..width * height)
                .map(|i| ((i * 7919) % 97) as f64 - 20.5)
                .collect();
            for mode in BorderMode::ALL {
                for sigma in [0.7, 1.5] {
                    let filter = Separable::new((sigma, sigma), 4.0, mode, 3.25).expect("filter");
                    let mut out = vec![0f64; src.len()];
                    filter.image(&src, width, &mut out);
                    let expected = direct(&src, width, sigma, mode, 3.25);
                    for (i, (a, e)) in out.iter().zip(&expected).enumerate() {
                        assert!(
                            (a - e).abs() <= 1e-12 * e.abs().max(1.0),
                            "{width}x{height} {mode} {sigma}: {i}: {a} vs {e}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn an_axis_with_a_negligible_sigma_is_left_alone() {
        let filter = Separable::new((1e-16, 1.0), 4.0, BorderMode::Reflect, 0.0).expect("f");
        assert!(filter.vertical.is_none() && filter.horizontal.is_some());
        // A constant image stays constant however it is filtered.
        let src = vec![5u16; 4 * 3];
        let mut out = vec![0f32; 12];
        filter.image(&src, 4, &mut out);
        assert!(out.iter().all(|&v| v == 5.0));
        assert!(
            Separable::new((0.0, 0.0), 4.0, BorderMode::Reflect, 0.0)
                .expect("f")
                .is_identity()
        );
    }
}
