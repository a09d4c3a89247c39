//! Steps that change each pixel's value on its own: `clip`, `arithmetic` and `minus-log`. All
//! are pointwise ([`Op::pointwise`]): each output pixel depends only on the input pixel at the
//! same place, so a chain of them runs band by band. Each kernel is one plain loop per type
//! (the type dispatched once per band with [`with_pixel_type!`]), so the compiler vectorises
//! it, `minus-log` included (its logarithm is written out, see [`ln`]).
//!
//! The references are MantidImaging's filters (which work on float32 stacks) and tomopy's
//! `minus_log`; `docs/operations.md` gives the numpy expression each result equals.

use anyhow::Result;
use serde_json::json;

use super::{Op, OpArgs, Pixels, PixelsMut};
use crate::pixel::{DType, Pixel};
use crate::stack::PageFormat;
use crate::with_pixel_type;

/// A finite number (bounds and arithmetic operands: NaN or infinity is surely a typing slip).
fn parse_finite(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err("give a finite number".into()),
        Err(_) => Err("not a number".into()),
    }
}

/// Any number, NaN and ±inf included (`nan`, `inf`, `-inf`): replacement values.
fn parse_any(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| "not a number (nan, inf and -inf are accepted here)".into())
}

/// A finite number other than 0: MantidImaging's `ArithmeticFilter` refuses to multiply or
/// divide by 0.
fn parse_nonzero(s: &str) -> Result<f64, String> {
    let v = parse_finite(s)?;
    if v == 0.0 {
        return Err(
            "multiplying or dividing by zero is refused (as MantidImaging's Arithmetic \
                    filter refuses it)"
                .into(),
        );
    }
    Ok(v)
}

/// `imfilter clip`'s arguments.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("bound").required(true).multiple(true).args(["min", "max"])))]
pub struct ClipArgs {
    /// Pixels below this value are replaced (by --min-value, or by this value) [default: no
    /// lower bound]
    #[arg(long, value_name = "A", allow_negative_numbers = true, value_parser = parse_finite)]
    pub min: Option<f64>,

    /// Pixels above this value are replaced (by --max-value, or by this value) [default: no
    /// upper bound]
    #[arg(long, value_name = "B", allow_negative_numbers = true, value_parser = parse_finite)]
    pub max: Option<f64>,

    /// What pixels below --min become (a number, nan, inf or -inf) [default: the --min value]
    #[arg(long, value_name = "X", requires = "min", allow_negative_numbers = true, value_parser = parse_any)]
    pub min_value: Option<f64>,

    /// What pixels above --max become (a number, nan, inf or -inf) [default: the --max value]
    #[arg(long, value_name = "Y", requires = "max", allow_negative_numbers = true, value_parser = parse_any)]
    pub max_value: Option<f64>,
}

impl OpArgs for ClipArgs {
    fn build(&self) -> Result<Box<dyn Op>> {
        Ok(Box::new(Clip {
            min: self.min.map(|m| (m, self.min_value.unwrap_or(m))),
            max: self.max.map(|m| (m, self.max_value.unwrap_or(m))),
        }))
    }
}

/// `imfilter clip`: MantidImaging's "Clip Values" filter (`ClipValuesFilter.compute_function`
/// in `mantidimaging/core/operations/clip_values/clip_values.py`), per pixel:
///
/// ```text
/// a[a < min] = min_value      # min_value defaults to min
/// a[a > max] = max_value      # then, on the result; max_value defaults to max
/// ```
///
/// Both comparisons are strict (a pixel equal to a bound is kept) and NaN is never replaced
/// (it compares false). Either bound may be left out (MantidImaging then uses the image's own
/// minimum or maximum, which replaces nothing), not both. The second line sees the first's
/// result, so with `min_value > max` a pixel below `min` ends as `max_value`.
///
/// Comparisons are numpy's on the input array in its own type: a float32 image against the
/// bounds rounded to float32 (MantidImaging's case: it keeps stacks in float32), any other type
/// in float64 (numpy promotes an integer array compared with a Python float to float64), which
/// is exact for every value of every integer type.
///
/// The result keeps the input's type when that type holds every replacement value exactly
/// (always for float32 and float64; for an integer type, whole numbers within its range), so
/// clipping a uint16 stack to 100..60000 gives uint16, bit for bit MantidImaging's result cast
/// back. Otherwise (an integer stack with a replacement such as 0.5, NaN or -1 for uint16) it is
/// float32, each value rounded once from float64: what MantidImaging, which would have loaded
/// the stack as float32, holds.
pub struct Clip {
    /// The lower bound and what replaces pixels below it.
    min: Option<(f64, f64)>,
    /// The upper bound and what replaces pixels above it.
    max: Option<(f64, f64)>,
}

/// Clip's bounds in the type the comparisons are made in; a missing bound is an infinity,
/// which no pixel passes.
#[derive(Clone, Copy)]
struct Bounds<C> {
    min: C,
    min_value: C,
    max: C,
    max_value: C,
}

impl Clip {
    fn bounds(&self) -> Bounds<f64> {
        let (min, min_value) = self.min.unwrap_or((f64::NEG_INFINITY, f64::NEG_INFINITY));
        let (max, max_value) = self.max.unwrap_or((f64::INFINITY, f64::INFINITY));
        Bounds {
            min,
            min_value,
            max,
            max_value,
        }
    }

    fn keeps(&self, dtype: DType) -> bool {
        let replacements = [self.min, self.max];
        with_pixel_type!(dtype, T => replacements.iter().flatten().all(|&(_, v)| T::holds(v)))
    }
}

/// `a[a < min] = min_value; a[a > max] = max_value` on one pixel, in the comparison type.
#[inline(always)]
fn clip_one<C: Copy + PartialOrd>(v: C, b: &Bounds<C>) -> C {
    let v = if v < b.min { b.min_value } else { v };
    if v > b.max { b.max_value } else { v }
}

/// Clips in float64 (exact for integers and float64) and writes each value as `O`.
fn clip_wide<T: Pixel, O: Pixel>(src: &[T], dst: &mut [O], b: &Bounds<f64>) {
    for (o, &x) in dst.iter_mut().zip(src) {
        *o = O::narrow(clip_one(x.as_f64(), b));
    }
}

/// Clips a float32 image in float32, against bounds rounded to float32 as numpy does.
fn clip_f32(src: &[f32], dst: &mut [f32], b: &Bounds<f64>) {
    let b = Bounds {
        min: b.min as f32,
        min_value: b.min_value as f32,
        max: b.max as f32,
        max_value: b.max_value as f32,
    };
    for (o, &x) in dst.iter_mut().zip(src) {
        *o = clip_one(x, &b);
    }
}

impl Op for Clip {
    fn name(&self) -> &'static str {
        "clip"
    }

    fn parameters(&self) -> serde_json::Value {
        let finite = |v: f64| {
            if v.is_finite() {
                json!(v)
            } else {
                json!(v.to_string())
            }
        };
        json!({
            "min": self.min.map(|(m, _)| m),
            "max": self.max.map(|(m, _)| m),
            "min_value": self.min.map(|(_, v)| finite(v)),
            "max_value": self.max.map(|(_, v)| finite(v)),
        })
    }

    fn output_format(&self, input: PageFormat) -> Result<PageFormat> {
        let dtype = if self.keeps(input.dtype) {
            input.dtype
        } else {
            DType::F32
        };
        Ok(PageFormat { dtype, ..input })
    }

    fn pointwise(&self) -> bool {
        true
    }

    fn apply(&self, _at: usize, src: Pixels<'_>, dst: PixelsMut<'_>) {
        let b = self.bounds();
        match (src.format.dtype, dst.format.dtype) {
            (DType::F32, _) => clip_f32(src.get::<f32>(), dst.get::<f32>(), &b),
            (from, DType::F32) => {
                with_pixel_type!(from, T => clip_wide(src.get::<T>(), dst.get::<f32>(), &b))
            }
            (from, _) => with_pixel_type!(from, T => clip_wide(src.get::<T>(), dst.get::<T>(), &b)),
        }
    }
}

/// `imfilter arithmetic`'s arguments (MantidImaging's defaults: 1, 1, 0, 0).
#[derive(Debug, clap::Args)]
pub struct ArithmeticArgs {
    /// Multiply by M (not 0)
    #[arg(long = "mul", value_name = "M", default_value_t = 1.0, allow_negative_numbers = true, value_parser = parse_nonzero)]
    pub mul: f64,

    /// Divide by D (not 0)
    #[arg(long = "div", value_name = "D", default_value_t = 1.0, allow_negative_numbers = true, value_parser = parse_nonzero)]
    pub div: f64,

    /// Add A
    #[arg(long = "add", value_name = "A", default_value_t = 0.0, allow_negative_numbers = true, value_parser = parse_finite)]
    pub add: f64,

    /// Subtract S
    #[arg(long = "sub", value_name = "S", default_value_t = 0.0, allow_negative_numbers = true, value_parser = parse_finite)]
    pub sub: f64,
}

impl OpArgs for ArithmeticArgs {
    fn build(&self) -> Result<Box<dyn Op>> {
        let (factor, offset) = ((self.mul / self.div) as f32, (self.add - self.sub) as f32);
        if !factor.is_finite() || factor == 0.0 {
            anyhow::bail!(
                "--mul {} --div {}: the factor {} is not a nonzero float32",
                self.mul,
                self.div,
                self.mul / self.div
            );
        }
        if !offset.is_finite() {
            anyhow::bail!(
                "--add {} --sub {}: the offset {} is beyond float32",
                self.add,
                self.sub,
                self.add - self.sub
            );
        }
        Ok(Box::new(Arithmetic {
            args: [self.mul, self.div, self.add, self.sub],
            factor,
            offset,
        }))
    }
}

/// `imfilter arithmetic`: MantidImaging's "Arithmetic" filter
/// (`ArithmeticFilter.compute_function` in
/// `mantidimaging/core/operations/arithmetic/arithmetic.py`), on the image as float32:
///
/// ```text
/// out = a * (mul / div) + (add - sub)
/// ```
///
/// `mul / div` and `add - sub` are computed in float64 and rounded once each to float32, then
/// the multiplication and the addition are each rounded to float32 (no fused multiply-add):
/// numpy's `a.astype(np.float32) * np.float32(mul / div) + np.float32(add - sub)`, bit for bit.
/// Every input type is first converted to float32 (round to nearest), as MantidImaging loads
/// stacks; float32 out. Multiplying or dividing by 0 is refused, as MantidImaging refuses it.
pub struct Arithmetic {
    /// mul, div, add, sub as given.
    args: [f64; 4],
    factor: f32,
    offset: f32,
}

fn scale_and_shift<T: Pixel>(src: &[T], dst: &mut [f32], factor: f32, offset: f32) {
    for (o, &x) in dst.iter_mut().zip(src) {
        *o = x.to_f32() * factor + offset;
    }
}

impl Op for Arithmetic {
    fn name(&self) -> &'static str {
        "arithmetic"
    }

    fn parameters(&self) -> serde_json::Value {
        let [mul, div, add, sub] = self.args;
        json!({ "mul": mul, "div": div, "add": add, "sub": sub })
    }

    fn output_format(&self, input: PageFormat) -> Result<PageFormat> {
        Ok(PageFormat {
            dtype: DType::F32,
            ..input
        })
    }

    fn pointwise(&self) -> bool {
        true
    }

    fn apply(&self, _at: usize, src: Pixels<'_>, dst: PixelsMut<'_>) {
        let out = dst.get::<f32>();
        with_pixel_type!(src.format.dtype, T => {
            scale_and_shift(src.get::<T>(), out, self.factor, self.offset)
        })
    }
}

/// The smallest transmission `minus-log` takes the logarithm of: anything below (zero,
/// negative, or a tiny positive value) is raised to it, so the result is at most
/// `-ln(1e-6) ≈ 13.8155`. The same 1e-6 as MantidImaging's former "Minus Log" filter put in
/// place of zeros, and as background correction's smallest denominator.
pub const MIN_TRANSMISSION: f32 = 1e-6;

/// `imfilter minus-log`'s arguments (none).
#[derive(Debug, clap::Args)]
pub struct MinusLogArgs {}

impl OpArgs for MinusLogArgs {
    fn build(&self) -> Result<Box<dyn Op>> {
        Ok(Box::new(MinusLog))
    }
}

/// `imfilter minus-log`: transmission to attenuation, in float32:
///
/// ```text
/// out = -ln(max(a, 1e-6))      # numpy: -np.log(np.maximum(a, np.float32(1e-6)))
/// ```
///
/// tomopy's `minus_log` (`tomopy/prep/normalize.py`) is `-log(arr)` on the array as float32,
/// which makes +Inf of a zero and NaN of a negative value; MantidImaging's "Minus Log" filter
/// (`mantidimaging/core/operations/minus_log/minus_log.py`, removed in 2020; its reconstruction
/// now calls `-np.log` itself) set exact zeros to 1e-6 before calling tomopy's, leaving
/// negatives NaN. Here every value below 1e-6 is raised to 1e-6 ([`MIN_TRANSMISSION`]), so
/// zeros, the negative noise that background correction leaves where the sample is nearly
/// opaque, and tiny positives all become the largest attenuation, 13.8155: no Inf or NaN is
/// made to spread through a reconstruction, and the result never decreases as the
/// transmission falls. NaN stays NaN and +Inf becomes -Inf. Values from 1e-6 up equal
/// tomopy's. Every input type is converted to float32 first; float32 out.
pub struct MinusLog;

fn minus_log<T: Pixel>(src: &[T], dst: &mut [f32]) {
    for (o, &x) in dst.iter_mut().zip(src) {
        let v = x.to_f32();
        // `<` keeps NaN as NaN, as np.maximum does.
        let v = if v < MIN_TRANSMISSION {
            MIN_TRANSMISSION
        } else {
            v
        };
        *o = -ln(v);
    }
}

/// The natural logarithm of a float32 that is NaN, +Inf or a normal number (here at least
/// [`MIN_TRANSMISSION`]), written so the loop around it vectorises: no branch, no call.
/// This is Cephes' `logf` (S. L. Moshier, Cephes Math Library, `logf.c`; the same reduction
/// and minimax polynomial), about 1 ulp from the correctly rounded result: the exponent is
/// split off with bit operations, the mantissa brought into [√½, √2), and ln(1 + m) taken as
/// m − m²/2 + m³·P(m). glibc's `logf`, called per pixel, kept the loop from vectorising.
#[inline(always)]
fn ln(x: f32) -> f32 {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    const P: [f32; 9] = [
        7.037_683_6e-2,
        -1.151_461e-1,
        1.167_699_9e-1,
        -1.242_014_1e-1,
        1.424_932_3e-1,
        -1.666_805_8e-1,
        2.000_071_5e-1,
        -2.499_999_4e-1,
        3.333_333e-1,
    ];
    let bits = x.to_bits();
    // x = m * 2^e with m in [0.5, 1).
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    let mut m = f32::from_bits((bits & 0x807f_ffff) | 0x3f00_0000);
    // Into [√½, √2): then ln(m) = ln(1 + (m − 1)) with |m − 1| < 0.42.
    let small = m < SQRT_HALF;
    e -= i32::from(small);
    m = if small { m + m - 1.0 } else { m - 1.0 };
    let z = m * m;
    let mut y = P[0];
    for &c in &P[1..] {
        y = y * m + c;
    }
    y *= m * z;
    let e = e as f32;
    // ln 2 split in two (0.693359375 exactly, and the rest) as Cephes does.
    y += -2.121_944_4e-4 * e;
    y += -0.5 * z;
    let r = m + y + 0.693_359_4 * e;
    // NaN stays NaN; +Inf gives +Inf.
    if x.is_finite() { r } else { x }
}

impl Op for MinusLog {
    fn name(&self) -> &'static str {
        "minus-log"
    }

    fn parameters(&self) -> serde_json::Value {
        json!({ "min_transmission": MIN_TRANSMISSION })
    }

    fn output_format(&self, input: PageFormat) -> Result<PageFormat> {
        Ok(PageFormat {
            dtype: DType::F32,
            ..input
        })
    }

    fn pointwise(&self) -> bool {
        true
    }

    fn apply(&self, _at: usize, src: Pixels<'_>, dst: PixelsMut<'_>) {
        let out = dst.get::<f32>();
        with_pixel_type!(src.format.dtype, T => minus_log(src.get::<T>(), out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(min: Option<(f64, f64)>, max: Option<(f64, f64)>) -> Clip {
        Clip { min, max }
    }

    #[test]
    fn clip_replaces_strictly_below_then_strictly_above_and_keeps_nan() {
        let c = clip(Some((1.0, 1.0)), Some((3.0, 3.0)));
        let mut out = [0f32; 6];
        clip_f32(&[0.5, 1.0, 2.0, 3.0, 3.5, f32::NAN], &mut out, &c.bounds());
        assert_eq!(&out[..5], &[1.0, 1.0, 2.0, 3.0, 3.0]);
        assert!(out[5].is_nan());
    }

    #[test]
    fn a_low_replacement_above_the_upper_bound_is_replaced_again() {
        let c = clip(Some((10.0, 500.0)), Some((100.0, 7.0)));
        let mut out = [0u16; 3];
        clip_wide(&[5u16, 50, 200], &mut out, &c.bounds());
        assert_eq!(out, [7, 50, 7]);
    }

    #[test]
    fn clip_keeps_an_integer_type_only_when_the_replacements_fit() {
        assert!(clip(Some((0.0, 0.0)), Some((65535.0, 65535.0))).keeps(DType::U16));
        assert!(!clip(Some((0.5, 0.5)), None).keeps(DType::U16));
        assert!(!clip(None, Some((1.0, f64::NAN))).keeps(DType::I32));
        assert!(!clip(Some((-1.0, -1.0)), None).keeps(DType::U8));
        assert!(clip(Some((-1.0, -1.0)), None).keeps(DType::I16));
        assert!(clip(None, Some((0.1, 0.1))).keeps(DType::F32));
    }

    #[test]
    fn float32_compares_against_the_bound_rounded_to_float32() {
        // 0.7 rounds down to 0.699999988 in float32, which is then not below the bound.
        let c = clip(Some((0.7, 0.0)), None);
        let mut out = [9f32; 1];
        clip_f32(&[0.7f32], &mut out, &c.bounds());
        assert_eq!(out, [0.7f32]);
    }

    #[test]
    fn minus_log_raises_everything_below_one_millionth() {
        let mut out = [0f32; 7];
        minus_log(
            &[1.0f32, 0.0, -0.5, 1e-9, f32::NAN, f32::INFINITY, 0.5],
            &mut out,
        );
        let top = -MIN_TRANSMISSION.ln();
        assert_eq!(out[0], 0.0);
        assert_eq!(&out[1..4], &[top, top, top]);
        assert!(out[4].is_nan());
        assert_eq!(out[5], f32::NEG_INFINITY);
        assert_eq!(out[6], -(0.5f32.ln()));
    }

    #[test]
    fn the_vectorisable_logarithm_is_within_1_ulp_of_the_c_librarys() {
        // Every 97th float32 from 1e-6 to the largest, and the edges.
        let mut worst = 0u32;
        let mut bits = 1e-6f32.to_bits();
        while bits < f32::MAX.to_bits() {
            let x = f32::from_bits(bits);
            let (got, want) = (ln(x), x.ln());
            let ulps = (got.to_bits() as i64 - want.to_bits() as i64).unsigned_abs() as u32;
            worst = worst.max(if got.signum() == want.signum() || want == 0.0 {
                ulps
            } else {
                u32::MAX
            });
            bits += 97;
        }
        assert!(worst <= 1, "{worst} ulp");
        assert_eq!(ln(1.0), 0.0);
        assert!(ln(f32::NAN).is_nan());
        assert_eq!(ln(f32::INFINITY), f32::INFINITY);
    }
}
