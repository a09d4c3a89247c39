//! `imfilter rebin`: smaller (or larger) images, in one of two ways.
//!
//! * `--factor N`: integer binning. Each N×N block of pixels becomes one, its mean or its sum:
//!   numpy's `img[:h//N*N, :w//N*N].reshape(h//N, N, w//N, N).mean(axis=(1, 3))` (or `.sum`).
//!   The rows and columns past the last whole block (`h % N` at the bottom, `w % N` at the right)
//!   are dropped, as that slice drops them; the step's parameters in the history sidecar record
//!   how many. Each block is summed in float64 in numpy's order for that expression on the
//!   float64 image (each block row's N values pairwise, then the rows one after the other),
//!   divided by N² for the mean, and rounded once to the output type: bit for bit numpy's
//!   float64 result, rounded.
//! * `--scale F`: MantidImaging's "Rebin" filter (`RebinFilter` in
//!   `mantidimaging/core/operations/rebin/rebin.py`), which calls
//!   `skimage.transform.resize(img, (int(h * F), int(w * F)), mode=MODE, preserve_range=True)`
//!   with scikit-image's defaults: order 1 (bilinear), anti-aliasing when shrinking, clipping to
//!   the input's range. What that does (scikit-image 0.26 `skimage/transform/_warps.py`,
//!   `resize` and `_clip_warp_output`; SciPy's `ndimage.zoom` and `NI_ZoomShift` in
//!   `scipy/ndimage/src/ni_interpolation.c`) is reproduced here in float64 for every input type
//!   (scikit-image keeps a float32 image float32, so its prefilter rounds each of its two passes
//!   to float32: its float32 results differ from these by a float32 ulp or two; computing the
//!   same way for every type is what lets a chain rebin float32 flats exactly as the user
//!   rebins uint16 ones):
//!   1. When either side shrinks, a Gaussian prefilter with sigma `max(0, (h / h_out − 1) / 2)`
//!      down the columns and `max(0, (w / w_out − 1) / 2)` along the rows, truncated at 4
//!      sigmas, with the border rule of `MODE` ([`Separable`], as `scipy.ndimage.gaussian_filter`;
//!      cval 0).
//!   2. Bilinear interpolation at input coordinate `(k + 0.5) · (n / n_out) − 0.5` for output
//!      index k along each axis (`ndimage.zoom(…, order=1, grid_mode=True)`), the coordinate
//!      mapped by SciPy's `map_coordinate` and the two taps read by the border rule ([`Taps`]),
//!      the four products summed in SciPy's order.
//!   3. Clipped to `[min, max]` of the input image (NaN ignored if it holds NaN), widened to
//!      include cval 0 in constant mode when the result straddles 0 and the input does not.
//!
//!   `MODE` takes numpy.pad's names, as MantidImaging and scikit-image do: constant (0, the
//!   default in MantidImaging's dialog), edge, symmetric, reflect, wrap; these are
//!   `scipy.ndimage`'s constant, nearest, reflect, mirror and wrap.
//!
//! Output type: float32 for float32 and every integer type, float64 for float64. Both forms
//! reshape ([`Op::reshapes`]): a background correction later in a chain rebins its flat and dark
//! the same way.

use std::sync::OnceLock;

use anyhow::{Result, bail};
use serde_json::json;

use super::gaussian::{
    FloatOut, MAX_RADIUS, RowScratch, Separable, float_type, pairwise_sum, radius,
};
use super::median::BorderMode;
use super::{Op, OpArgs, Pixels, PixelsMut};
use crate::pixel::{DType, Pixel};
use crate::stack::PageFormat;
use crate::with_pixel_type;

/// How the pixels of a block combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Reduce {
    /// The block's mean (numpy's .mean(axis=(1, 3)))
    Mean,
    /// The block's sum (numpy's .sum(axis=(1, 3)))
    Sum,
}

impl Reduce {
    fn name(self) -> &'static str {
        match self {
            Reduce::Mean => "mean",
            Reduce::Sum => "sum",
        }
    }
}

/// The border rule of `--scale`, by numpy.pad's names (MantidImaging's and scikit-image's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PadMode {
    /// 0 outside the image (scipy.ndimage's constant; MantidImaging's default)
    Constant,
    /// The edge pixel repeated (scipy.ndimage's nearest)
    Edge,
    /// Mirrored with the edge pixel repeated: d c b a | a b c d (scipy.ndimage's reflect)
    Symmetric,
    /// Mirrored about the edge pixel: d c b | a b c d (scipy.ndimage's mirror)
    Reflect,
    /// Periodic (scipy.ndimage's wrap)
    Wrap,
}

impl PadMode {
    fn name(self) -> &'static str {
        match self {
            PadMode::Constant => "constant",
            PadMode::Edge => "edge",
            PadMode::Symmetric => "symmetric",
            PadMode::Reflect => "reflect",
            PadMode::Wrap => "wrap",
        }
    }

    /// scikit-image's `_to_ndimage_mode`.
    fn border(self) -> BorderMode {
        match self {
            PadMode::Constant => BorderMode::Constant,
            PadMode::Edge => BorderMode::Nearest,
            PadMode::Symmetric => BorderMode::Reflect,
            PadMode::Reflect => BorderMode::Mirror,
            PadMode::Wrap => BorderMode::Wrap,
        }
    }
}

fn parse_factor(s: &str) -> Result<usize, String> {
    let allowed = "the bin size must be a whole number of pixels, at least 1";
    match s.trim().parse::<i64>() {
        Ok(n) if n >= 1 => Ok(n as usize),
        Ok(n) => Err(format!("{n}: {allowed}")),
        Err(_) => Err(format!("'{s}' is not a whole number: {allowed}")),
    }
}

fn parse_scale(s: &str) -> Result<f64, String> {
    let allowed = "the scale must be a number greater than 0 (0.5 halves each side)";
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("{v}: {allowed}")),
        Err(_) => Err(format!("'{s}' is not a number: {allowed}")),
    }
}

/// `imfilter rebin`'s arguments: `--factor` or `--scale`, not both.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("size").required(true).args(["factor", "scale"])))]
pub struct RebinArgs {
    /// Bin N×N pixels into one (their mean, or sum with --reduce sum); rows and columns past the
    /// last whole block are dropped
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_factor)]
    pub factor: Option<usize>,

    /// How --factor combines a block [default: mean]
    #[arg(long, value_enum, conflicts_with = "scale")]
    pub reduce: Option<Reduce>,

    /// Resize each side to int(side * F) pixels, bilinear with anti-aliasing (MantidImaging's
    /// Rebin, skimage.transform.resize)
    #[arg(long, value_name = "F", allow_negative_numbers = true, value_parser = parse_scale)]
    pub scale: Option<f64>,

    /// Border rule of --scale, by numpy.pad's names [default: constant]
    #[arg(long, value_enum, conflicts_with = "factor")]
    pub mode: Option<PadMode>,
}

impl OpArgs for RebinArgs {
    fn build(&self) -> Result<Box<dyn Op>> {
        let how = match (self.factor, self.scale) {
            (Some(factor), _) => How::Bin {
                factor,
                reduce: self.reduce.unwrap_or(Reduce::Mean),
            },
            (None, Some(scale)) => How::Scale {
                scale,
                mode: self.mode.unwrap_or(PadMode::Constant),
            },
            (None, None) => bail!("invariant: clap requires --factor or --scale"),
        };
        Ok(Box::new(Rebin {
            how,
            first: OnceLock::new(),
        }))
    }
}

#[derive(Debug, Clone, Copy)]
enum How {
    Bin { factor: usize, reduce: Reduce },
    Scale { scale: f64, mode: PadMode },
}

/// `imfilter rebin` (see the module documentation).
pub struct Rebin {
    how: How,
    /// The first image format the step was asked about (the stack's, in a chain the format the
    /// step before makes), and the result: recorded in the parameters (rows and columns
    /// dropped, sizes, sigmas).
    first: OnceLock<(PageFormat, PageFormat)>,
}

/// The output side for `--scale`: Python's `int(side * scale)`.
fn scaled(side: usize, scale: f64) -> f64 {
    (side as f64 * scale).trunc()
}

/// scikit-image's anti-aliasing sigma for one axis: `max(0, (n / n_out - 1) / 2)`, 0 unless
/// some axis shrinks.
fn sigmas(input: PageFormat, output: PageFormat) -> (f64, f64) {
    let shrinks = output.width < input.width || output.height < input.height;
    let sigma = |n: usize, n_out: usize| {
        if shrinks {
            f64::max(0.0, (n as f64 / n_out as f64 - 1.0) / 2.0)
        } else {
            0.0
        }
    };
    (
        sigma(input.height, output.height),
        sigma(input.width, output.width),
    )
}

impl Op for Rebin {
    fn name(&self) -> &'static str {
        "rebin"
    }

    fn parameters(&self) -> serde_json::Value {
        let first = self.first.get();
        match self.how {
            How::Bin { factor, reduce } => {
                let dropped = |f: fn(&PageFormat) -> usize| first.map(|(i, _)| f(i) % factor);
                json!({
                    "factor": factor,
                    "reduce": reduce.name(),
                    "dropped_columns": dropped(|i| i.width),
                    "dropped_rows": dropped(|i| i.height),
                })
            }
            How::Scale { scale, mode } => json!({
                "scale": scale,
                "mode": mode.name(),
                "width": first.map(|(_, o)| o.width),
                "height": first.map(|(_, o)| o.height),
                "anti_aliasing_sigma": first.map(|(i, o)| {
                    let (y, x) = sigmas(*i, *o);
                    [y, x]
                }),
            }),
        }
    }

    fn output_format(&self, input: PageFormat) -> Result<PageFormat> {
        let size = format!("{}x{}", input.width, input.height);
        let (width, height) = match self.how {
            How::Bin { factor, .. } => {
                if factor > input.width || factor > input.height {
                    bail!(
                        "--factor {factor} is larger than the {size} images: a block must fit \
                         in the image at least once"
                    );
                }
                (input.width / factor, input.height / factor)
            }
            How::Scale { scale, .. } => {
                let (w, h) = (scaled(input.width, scale), scaled(input.height, scale));
                if w < 1.0 || h < 1.0 {
                    bail!(
                        "--scale {scale} makes the {size} images {w}x{h}: each side must keep \
                         at least 1 pixel (int(side * scale))"
                    );
                }
                if w > f64::from(u32::MAX) || h > f64::from(u32::MAX) {
                    bail!("--scale {scale} makes the {size} images {w}x{h}: too large for TIFF");
                }
                (w as usize, h as usize)
            }
        };
        let output = PageFormat {
            width,
            height,
            dtype: float_type(input.dtype),
        };
        if let How::Scale { scale, .. } = self.how {
            // The anti-aliasing kernel must be one `apply` can make.
            let (sigma_y, sigma_x) = sigmas(input, output);
            if radius(sigma_y.max(sigma_x), 4.0).is_err() {
                bail!(
                    "--scale {scale} shrinks the {size} images so much that the anti-aliasing \
                     kernel would reach more than {MAX_RADIUS} pixels"
                );
            }
        }
        let _ = self.first.set((input, output));
        Ok(output)
    }

    fn reshapes(&self) -> bool {
        true
    }

    fn apply(&self, _at: usize, src: Pixels<'_>, dst: PixelsMut<'_>) {
        let (input, output) = (src.format, dst.format);
        with_pixel_type!(input.dtype, T => {
            let src = src.get::<T>();
            match (self.how, output.dtype) {
                (How::Bin { factor, reduce }, DType::F64) => {
                    bin(src, input.width, dst.get::<f64>(), output.width, factor, reduce)
                }
                (How::Bin { factor, reduce }, _) => {
                    bin(src, input.width, dst.get::<f32>(), output.width, factor, reduce)
                }
                (How::Scale { mode, .. }, DType::F64) => {
                    resize(src, input, dst.get::<f64>(), output, mode)
                }
                (How::Scale { mode, .. }, _) => resize(src, input, dst.get::<f32>(), output, mode),
            }
        })
    }
}

/// The sum of one block row's values in float64, in numpy's order ([`pairwise_sum`]: from 0
/// left to right below 8 values). `scratch` holds wider rows converted.
#[inline(always)]
fn row_sum<T: Pixel>(values: &[T], scratch: &mut Vec<f64>) -> f64 {
    if values.len() < 8 {
        values.iter().fold(0.0, |s, v| s + v.as_f64())
    } else {
        scratch.clear();
        scratch.extend(values.iter().map(|v| v.as_f64()));
        pairwise_sum(scratch)
    }
}

/// Each `factor`×`factor` block of the `width`-wide `src` summed in float64 as numpy's
/// `.sum(axis=(1, 3))` of the reshaped float64 image adds it — each block row's values
/// pairwise, then the block rows one after the other — divided by `factor`² for the mean
/// (`.mean`), rounded once into the `out_width`-wide `dst`.
fn bin<T: Pixel, O: FloatOut>(
    src: &[T],
    width: usize,
    dst: &mut [O],
    out_width: usize,
    factor: usize,
    reduce: Reduce,
) {
    let count = (factor * factor) as f64;
    let mut sums = vec![0f64; out_width];
    let mut scratch = Vec::new();
    for (y, out) in dst.chunks_exact_mut(out_width).enumerate() {
        for dy in 0..factor {
            let start = (y * factor + dy) * width;
            let row = &src[start..start + out_width * factor];
            match (factor, dy) {
                // The common case, written so that the compiler vectorises it.
                (2, 0) => {
                    for (s, pair) in sums.iter_mut().zip(row.chunks_exact(2)) {
                        *s = (0.0 + pair[0].as_f64()) + pair[1].as_f64();
                    }
                }
                (2, _) => {
                    for (s, pair) in sums.iter_mut().zip(row.chunks_exact(2)) {
                        *s += (0.0 + pair[0].as_f64()) + pair[1].as_f64();
                    }
                }
                (_, 0) => {
                    for (s, block) in sums.iter_mut().zip(row.chunks_exact(factor)) {
                        *s = row_sum(block, &mut scratch);
                    }
                }
                _ => {
                    for (s, block) in sums.iter_mut().zip(row.chunks_exact(factor)) {
                        *s += row_sum(block, &mut scratch);
                    }
                }
            }
        }
        match reduce {
            Reduce::Mean => {
                for (o, &s) in out.iter_mut().zip(&sums) {
                    *o = O::from_f64(s / count);
                }
            }
            Reduce::Sum => {
                for (o, &s) in out.iter_mut().zip(&sums) {
                    *o = O::from_f64(s);
                }
            }
        }
    }
}

/// SciPy's `map_coordinate` (`ni_interpolation.c`) for the modes `zoom` maps: a coordinate
/// outside `[0, n − 1]` brought back inside by the border rule (a continuous reflection).
/// Constant (SciPy's grid-constant) and nearest leave it as it is.
fn map_coordinate(mut x: f64, n: usize, mode: BorderMode) -> f64 {
    let len = n as f64;
    // SciPy's `(npy_intp)(a / b)`: truncation toward zero.
    let int = |v: f64| v.trunc();
    if x < 0.0 {
        match mode {
            BorderMode::Mirror if n <= 1 => x = 0.0,
            BorderMode::Mirror => {
                let sz2 = 2.0 * len - 2.0;
                x += sz2 * int(-x / sz2);
                x = if x <= 1.0 - len { x + sz2 } else { -x };
            }
            BorderMode::Reflect if n <= 1 => x = 0.0,
            BorderMode::Reflect => {
                let sz2 = 2.0 * len;
                if x < -sz2 {
                    x += sz2 * int(-x / sz2);
                }
                x = if x < -len {
                    x + sz2
                } else {
                    (if x > -1e-15 { 1e-15 } else { -x }) - 1.0
                };
            }
            BorderMode::Wrap if n <= 1 => x = 0.0,
            // SciPy's grid-wrap.
            BorderMode::Wrap => x += len * (int((-1.0 - x) / len) + 1.0),
            BorderMode::Nearest | BorderMode::Constant => {}
        }
    } else if x > len - 1.0 {
        match mode {
            BorderMode::Mirror if n <= 1 => x = 0.0,
            BorderMode::Mirror => {
                let sz2 = 2.0 * len - 2.0;
                x -= sz2 * int(x / sz2);
                if x >= len {
                    x = sz2 - x;
                }
            }
            BorderMode::Reflect if n <= 1 => x = 0.0,
            BorderMode::Reflect => {
                let sz2 = 2.0 * len;
                x -= sz2 * int(x / sz2);
                if x >= len {
                    x = sz2 - x - 1.0;
                }
            }
            BorderMode::Wrap if n <= 1 => x = 0.0,
            BorderMode::Wrap => x -= len * int(x / len),
            BorderMode::Nearest | BorderMode::Constant => {}
        }
    }
    x
}

/// Where output index k along one axis reads, and with which weights.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Taps {
    /// Input indices `start` and `start + 1` as the border rule reads them (`None`: cval), and
    /// their weights.
    Two([Option<usize>; 2], [f64; 2]),
    /// The coordinate fell at or beyond −1 after mapping: the output is cval (SciPy's `zeros`;
    /// kept for fidelity, the modes used here never reach it).
    Outside,
}

/// `NI_ZoomShift`'s order-1 taps for an axis of `n` inputs and `n_out` outputs, grid mode.
fn taps(n: usize, n_out: usize, mode: BorderMode) -> Vec<Taps> {
    let zoom = n as f64 / n_out as f64;
    (0..n_out)
        .map(|k| {
            let mut cc = k as f64;
            cc += 0.5;
            cc *= zoom;
            cc -= 0.5;
            if !matches!(mode, BorderMode::Constant | BorderMode::Nearest) {
                cc = map_coordinate(cc, n, mode);
            }
            if cc <= -1.0 && !matches!(mode, BorderMode::Constant | BorderMode::Nearest) {
                return Taps::Outside;
            }
            let start = cc.floor();
            // `get_spline_interpolation_weights` for order 1.
            let x = cc - start;
            let w0 = 1.0 - x;
            let w1 = 1.0 - w0;
            let start = start as isize;
            let index = |i: isize| mode.source_index(i, n);
            Taps::Two([index(start), index(start + 1)], [w0, w1])
        })
        .collect()
}

/// Two filtered input rows kept, so each is computed once however many output rows read it.
/// Each row has one more value at its end, cval, which a tap outside the image reads.
struct RowCache {
    keys: [Option<usize>; 2],
    rows: [Vec<f64>; 2],
    /// A row of cval, for a row tap outside the image.
    outside: Vec<f64>,
    scratch: RowScratch<f64>,
}

impl RowCache {
    fn new(width: usize, cval: f64) -> RowCache {
        RowCache {
            keys: [None, None],
            rows: [vec![cval; width + 1], vec![cval; width + 1]],
            outside: vec![cval; width + 1],
            scratch: RowScratch::default(),
        }
    }

    /// The filtered rows `a` and `b` (`None`: the row of cval), each followed by cval.
    fn pair<T: Pixel>(
        &mut self,
        filter: &Separable,
        src: &[T],
        width: usize,
        [a, b]: [Option<usize>; 2],
    ) -> [&[f64]; 2] {
        let slot_of = |keys: &[Option<usize>; 2], y: usize| keys.iter().position(|&k| k == Some(y));
        let mut slots = [None, None];
        for (which, want) in [a, b].into_iter().enumerate() {
            let Some(y) = want else { continue };
            let slot = match slot_of(&self.keys, y) {
                Some(slot) => slot,
                None => {
                    // Not the slot the other wanted row is in.
                    let taken = slots[1 - which];
                    let other = [b, a][which].and_then(|o| slot_of(&self.keys, o));
                    let slot = match (taken, other) {
                        (Some(t), _) | (None, Some(t)) => 1 - t,
                        (None, None) => 0,
                    };
                    let row = &mut self.rows[slot][..width];
                    filter.row(src, width, y, &mut self.scratch, row);
                    self.keys[slot] = Some(y);
                    slot
                }
            };
            slots[which] = Some(slot);
        }
        slots.map(|s| s.map_or(&self.outside[..], |s| &self.rows[s][..]))
    }
}

/// NaN-aware minimum and maximum as scikit-image's `_clip_warp_output` takes them: with
/// `ignore_nan` (the input holds NaN) numpy's nanmin/nanmax, else min/max, which are NaN as
/// soon as one value is.
fn min_max(values: impl Iterator<Item = f64>, ignore_nan: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut any = false;
    for v in values {
        if v.is_nan() {
            if ignore_nan {
                continue;
            }
            return (f64::NAN, f64::NAN);
        }
        any = true;
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if any { (lo, hi) } else { (f64::NAN, f64::NAN) }
}

/// numpy's `np.clip(x, lo, hi)` for floats: `min(max(x, lo), hi)` with NaN propagated from
/// either side.
#[inline(always)]
fn np_clip(x: f64, lo: f64, hi: f64) -> f64 {
    let m = if x.is_nan() || x > lo { x } else { lo };
    if m.is_nan() || m < hi { m } else { hi }
}

/// `skimage.transform.resize(src, (h_out, w_out), order=1, mode=MODE, cval=0, clip=True,
/// preserve_range=True)` (anti-aliasing on when a side shrinks), in float64, into `dst`.
fn resize<T: Pixel, O: FloatOut>(
    src: &[T],
    input: PageFormat,
    dst: &mut [O],
    output: PageFormat,
    mode: PadMode,
) {
    let border = mode.border();
    let cval = 0.0;
    let (width, height) = (input.width, input.height);
    if (output.width, output.height) == (width, height) {
        // ndimage.zoom returns the input when every zoom is 1 (and nothing shrinks, so there
        // is no prefilter); the clip to its own range changes nothing.
        for (o, &v) in dst.iter_mut().zip(src) {
            *o = O::from_f64(v.as_f64());
        }
        return;
    }
    let filter = Separable::new(sigmas(input, output), 4.0, border, cval)
        .expect("invariant: output_format checked the anti-aliasing kernel's radius");
    debug_assert!(!filter.is_identity() || (output.width >= width && output.height >= height));
    let (rows, columns) = (
        taps(height, output.height, border),
        taps(width, output.width, border),
    );
    // Column taps as indices into a cached row, `width` being its cval at the end; a column
    // past −1 (never, for these modes) reads cval twice.
    let columns: Vec<([usize; 2], [f64; 2])> = columns
        .iter()
        .map(|t| match *t {
            Taps::Two(xs, wx) => (xs.map(|x| x.unwrap_or(width)), wx),
            Taps::Outside => ([width, width], [1.0, 0.0]),
        })
        .collect();
    let mut cache = RowCache::new(width, cval);
    for (out, row_taps) in dst.chunks_exact_mut(output.width).zip(&rows) {
        let Taps::Two(ys, [wy0, wy1]) = *row_taps else {
            out.fill(O::from_f64(cval));
            continue;
        };
        let [r0, r1] = cache.pair(&filter, src, width, ys);
        for (o, &([x0, x1], [wx0, wx1])) in out.iter_mut().zip(&columns) {
            // NI_ZoomShift's sum, in its order: the taps row by row, each value times its row
            // weight, then its column weight.
            let mut t = 0.0;
            t += (r0[x0] * wy0) * wx0;
            t += (r0[x1] * wy0) * wx1;
            t += (r1[x0] * wy1) * wx0;
            t += (r1[x1] * wy1) * wx1;
            *o = O::from_f64(t);
        }
    }
    // `_clip_warp_output`: the input's range, widened to cval in constant mode when the result
    // reaches it and the input does not.
    let has_nan = src.iter().any(|v| v.is_nan());
    let (mut lo, mut hi) = min_max(src.iter().map(|v| v.as_f64()), has_nan);
    if mode == PadMode::Constant && !(lo <= cval && cval <= hi) {
        let (out_lo, out_hi) = min_max(dst.iter().map(|v| v.as_f64()), has_nan);
        if out_lo <= cval && cval <= out_hi {
            lo = if cval < lo { cval } else { lo };
            hi = if cval > hi { cval } else { hi };
        }
    }
    // Rounding to the output type is monotonic and keeps 0, so clipping the rounded values
    // against the rounded bounds is clipping first and rounding after.
    let (lo, hi) = (O::from_f64(lo).as_f64(), O::from_f64(hi).as_f64());
    for o in dst.iter_mut() {
        *o = O::from_f64(np_clip(o.as_f64(), lo, hi));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(width: usize, height: usize) -> PageFormat {
        PageFormat {
            width,
            height,
            dtype: DType::F32,
        }
    }

    #[test]
    fn binning_drops_the_ragged_edge_and_records_it() {
        let rebin = Rebin {
            how: How::Bin {
                factor: 2,
                reduce: Reduce::Sum,
            },
            first: OnceLock::new(),
        };
        let out = rebin.output_format(format(5, 3)).expect("fits");
        assert_eq!((out.width, out.height), (2, 1));
        let p = rebin.parameters();
        assert_eq!(
            (p["dropped_columns"].clone(), p["dropped_rows"].clone()),
            (json!(1), json!(1))
        );
        // 5 wide, 3 high: only the top-left 4x2 counts.
        let src: Vec<u16> = (1..=15).collect();
        let mut dst = [0f32; 2];
        bin(&src, 5, &mut dst, 2, 2, Reduce::Sum);
        assert_eq!(dst, [1.0 + 2.0 + 6.0 + 7.0, 3.0 + 4.0 + 8.0 + 9.0]);
        bin(&src, 5, &mut dst, 2, 2, Reduce::Mean);
        assert_eq!(dst, [4.0, 6.0]);
        assert!(rebin.output_format(format(1, 3)).is_err());
    }

    #[test]
    fn scaled_sides_truncate_as_python_int() {
        assert_eq!(scaled(45, 0.37), 16.0);
        assert_eq!(scaled(67, 0.37), 24.0);
        assert_eq!(scaled(45, 1.5), 67.0);
        assert_eq!(scaled(3, 0.1), 0.0);
    }

    #[test]
    fn map_coordinate_is_scipys_for_each_mode() {
        // Values from scipy's C code, worked by hand for n = 4.
        assert_eq!(map_coordinate(-0.25, 4, BorderMode::Mirror), 0.25);
        // Between n - 1 and n a coordinate stays: its second tap is read by the border rule.
        assert_eq!(map_coordinate(3.25, 4, BorderMode::Mirror), 3.25);
        assert_eq!(map_coordinate(4.5, 4, BorderMode::Mirror), 1.5);
        assert_eq!(map_coordinate(-0.25, 4, BorderMode::Reflect), -0.75);
        assert_eq!(map_coordinate(3.25, 4, BorderMode::Reflect), 3.25);
        assert_eq!(map_coordinate(4.5, 4, BorderMode::Reflect), 2.5);
        assert_eq!(map_coordinate(-0.25, 4, BorderMode::Wrap), 3.75);
        assert_eq!(map_coordinate(4.5, 4, BorderMode::Wrap), 0.5);
        assert_eq!(map_coordinate(-0.25, 4, BorderMode::Nearest), -0.25);
        assert_eq!(map_coordinate(-7.0, 1, BorderMode::Mirror), 0.0);
    }

    #[test]
    fn upsampling_by_two_interpolates_between_neighbours() {
        // Output k of 4 from 2 reads coordinate (k + 0.5) / 2 - 0.5: -0.25, 0.25, 0.75, 1.25.
        let t = taps(2, 4, BorderMode::Nearest);
        assert_eq!(t[1], Taps::Two([Some(0), Some(1)], [0.75, 0.25]));
        assert_eq!(t[0], Taps::Two([Some(0), Some(0)], [0.25, 0.75]));
        let t = taps(2, 4, BorderMode::Constant);
        assert_eq!(t[0], Taps::Two([None, Some(0)], [0.25, 0.75]));
        assert_eq!(t[3], Taps::Two([Some(1), None], [0.75, 0.25]));
    }

    #[test]
    fn the_clip_widens_to_zero_only_in_constant_mode_when_the_result_reaches_it() {
        // A 1x2 image [10, 20] doubled in width (scikit-image's results): constant mode pulls
        // the ends towards 0 (10 * 0.75 = 7.5, 20 * 0.75 = 15) but not to 0, so the clip to
        // [10, 20] raises the left end back to 10.
        let src = [10f32, 20.0];
        let mut dst = [0f32; 4];
        resize(
            &src,
            format(2, 1),
            &mut dst,
            format(4, 1),
            PadMode::Constant,
        );
        assert_eq!(dst, [10.0, 12.5, 17.5, 15.0]);
        resize(&src, format(2, 1), &mut dst, format(4, 1), PadMode::Edge);
        assert_eq!(dst, [10.0, 12.5, 17.5, 20.0]);
        // With a negative value the input's range holds 0 already.
        let src = [-10f32, 20.0];
        resize(
            &src,
            format(2, 1),
            &mut dst,
            format(4, 1),
            PadMode::Constant,
        );
        assert_eq!(dst, [-7.5, -2.5, 12.5, 15.0]);
        resize(&src, format(2, 1), &mut dst, format(4, 1), PadMode::Edge);
        assert_eq!(dst, [-10.0, -2.5, 12.5, 20.0]);
        assert!(np_clip(f64::NAN, 0.0, 1.0).is_nan());
        assert!(np_clip(0.5, f64::NAN, 1.0).is_nan());
    }

    #[test]
    fn the_row_cache_gives_both_wanted_rows_each_followed_by_cval() {
        let filter = Separable::new((0.0, 0.0), 4.0, BorderMode::Reflect, 0.0).expect("f");
        let src: Vec<u16> = (0..12).collect();
        let mut cache = RowCache::new(3, -1.0);
        for pair in [
            [Some(0), Some(1)],
            [Some(1), Some(2)],
            [Some(3), Some(1)],
            [Some(2), None],
        ] {
            let rows = cache.pair(&filter, &src, 3, pair);
            for (row, want) in rows.iter().zip(pair) {
                let expected = match want {
                    Some(y) => [3 * y, 3 * y + 1, 3 * y + 2].map(|v| v as f64),
                    None => [-1.0; 3],
                };
                assert_eq!(row[..3], expected, "{pair:?}");
                assert_eq!(row[3], -1.0, "{pair:?}");
            }
        }
    }
}
