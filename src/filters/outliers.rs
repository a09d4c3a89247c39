//! Outlier removal: replace a pixel by its local median where it stands out by more than a
//! threshold (MantidImaging's "remove outliers", made exact for every sample type).
//!
//! The median is [`median_filter`] with a reflect border. A pixel p with local median m is
//! replaced where `p − m > threshold` (bright), `m − p > threshold` (dark), or either (both), with
//! strict `>` as in MantidImaging. The difference is taken in f64, where every sample type is
//! exact, so integer images cannot overflow or wrap (MantidImaging subtracts in the image's own
//! type). NaN pixels are left as they are (a comparison with NaN is false), and their neighbours'
//! medians ignore them (see [`super::median`]).

use super::median::{
    BorderMode, Isa, MedianParams, Sample, SampleFn, check_shape, median_filter_with, per_isa,
    with_sample,
};
use crate::pixel::Pixel;

/// Which side of the median counts as an outlier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OutlierKind {
    /// Brighter than the median by more than the threshold (hot pixels, zingers).
    Bright,
    /// Darker than the median by more than the threshold (dead pixels).
    Dark,
    Both,
}

impl OutlierKind {
    pub fn name(self) -> &'static str {
        match self {
            OutlierKind::Bright => "bright",
            OutlierKind::Dark => "dark",
            OutlierKind::Both => "both",
        }
    }
}

/// Parameters of [`remove_outliers`].
#[derive(Debug, Clone, Copy)]
pub struct OutlierParams {
    /// Median window side K, odd.
    pub size: usize,
    /// In the image's units.
    pub threshold: f64,
    pub kind: OutlierKind,
}

/// Removes outliers from one row-major image: `output` gets the input with each outlier replaced
/// by its local median (module docs).
///
/// # Panics
/// If the slice lengths are not `width * height` or `params.size` is even.
pub fn remove_outliers<T: Pixel>(
    input: &[T],
    output: &mut [T],
    width: usize,
    height: usize,
    params: &OutlierParams,
) {
    remove_outliers_with(input, output, width, height, params, Isa::best());
}

/// [`remove_outliers`] with the compiled version chosen by the caller (one the CPU lacks falls
/// back to the best one below it).
pub fn remove_outliers_with<T: Pixel>(
    input: &[T],
    output: &mut [T],
    width: usize,
    height: usize,
    params: &OutlierParams,
    isa: Isa,
) {
    check_shape(input.len(), output.len(), width, height, params.size);
    let median = MedianParams {
        size: params.size,
        mode: BorderMode::Reflect,
        cval: 0.0,
    };
    median_filter_with(input, output, width, height, &median, isa);
    with_sample(input, output, Replace(*params, isa.or_below()));
}

/// Turns `output`, which holds the median, into the cleaned image.
struct Replace(OutlierParams, Isa);

impl SampleFn for Replace {
    fn call<U: Sample>(self, input: &[U], output: &mut [U]) {
        let (t, isa) = (self.0.threshold, self.1);
        match self.0.kind {
            OutlierKind::Bright => bright(isa, input, output, t),
            OutlierKind::Dark => dark(isa, input, output, t),
            OutlierKind::Both => both(isa, input, output, t),
        }
    }
}

per_isa!(fn bright = bright_body(input: &[T], output: &mut [T], t: f64));
per_isa!(fn dark = dark_body(input: &[T], output: &mut [T], t: f64));
per_isa!(fn both = both_body(input: &[T], output: &mut [T], t: f64));

#[inline(always)]
fn bright_body<U: Sample>(input: &[U], output: &mut [U], t: f64) {
    replace(input, output, |p, m| p - m > t);
}

#[inline(always)]
fn dark_body<U: Sample>(input: &[U], output: &mut [U], t: f64) {
    replace(input, output, |p, m| m - p > t);
}

#[inline(always)]
fn both_body<U: Sample>(input: &[U], output: &mut [U], t: f64) {
    replace(input, output, |p, m| p - m > t || m - p > t);
}

/// Keeps the median in `output` where `is_outlier(pixel, median)`, the pixel elsewhere.
#[inline(always)]
fn replace<U: Sample>(input: &[U], output: &mut [U], is_outlier: impl Fn(f64, f64) -> bool) {
    for (o, &p) in output.iter_mut().zip(input) {
        // A select rather than a conditional store, so that the loop vectorises.
        *o = if is_outlier(p.to_f64(), o.to_f64()) {
            *o
        } else {
            p
        };
    }
}
