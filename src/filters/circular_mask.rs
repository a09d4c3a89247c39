//! `circular-mask`: every pixel outside a centred circle set to a value, as tomopy's
//! `circ_mask(arr, axis=0, ratio, val)` does (`tomopy/misc/corr.py`, `circ_mask` and
//! `_get_mask`, tomopy 1.15.2), which MantidImaging's "Circular Mask" filter calls
//! (`CircularMaskFilter` in `mantidimaging/core/operations/circular_mask/circular_mask.py`,
//! defaults `ratio = 0.95`, `value = 0`, the defaults here too).
//!
//! For an image of `H` rows and `W` columns, pixel (row `i`, column `j`) is kept when
//!
//! ```text
//! y = i + (0.5 - H / 2)        # np.ogrid[0.5 - H/2 : 0.5 + H/2, 0.5 - W/2 : 0.5 + W/2]
//! x = j + (0.5 - W / 2)
//! x*x + y*y < ratio*ratio * (min(H, W) / 2)**2
//! ```
//!
//! and set to `value` otherwise. So the centre is the image's middle ((H−1)/2, (W−1)/2: a pixel
//! for an odd size, between two for an even one), the comparison is strict, and the radius is
//! `ratio` times half the shorter side, for square and non-square images alike. Every term is
//! computed in float64 exactly as numpy computes it (the coordinates are exact halves or whole
//! numbers, their squares exact), so the mask is tomopy's pixel for pixel.
//!
//! The ratio must be in (0, 1]: tomopy takes any number (its default is 1, the inscribed
//! circle), MantidImaging refuses anything but 0 < ratio < 1; 1 is accepted here as tomopy's
//! default, and a larger ratio, which would keep corners of a square image, is refused as a
//! likely slip.
//!
//! Output type: tomopy converts the stack to float32 and `val` to float32. Here a float32 image
//! stays float32 (the value rounded to float32, bit for bit tomopy's result), a float64 image
//! stays float64 (the value exact: tomopy would round both to float32), and an integer image
//! keeps its type when the value is a whole number in its range (the kept pixels unchanged, as
//! tomopy's float32 result would hold them when they fit 24 bits), else becomes float32, each
//! kept pixel rounded to nearest as `astype(np.float32)` does: tomopy's result.
//!
//! Pointwise ([`Op::pointwise`]): a pixel's result depends on its value and its position, so the
//! step runs band by band; each row of a band is cut into the span inside the circle (found
//! with the exact test) and the two outside it.

use anyhow::Result;
use serde_json::json;

use super::{Op, OpArgs, Pixels, PixelsMut};
use crate::pixel::{DType, Pixel};
use crate::stack::PageFormat;
use crate::with_pixel_type;

/// A ratio of the circle's diameter to the image's shorter side, in (0, 1].
fn parse_ratio(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        Ok(_) => Err(
            "the ratio must be above 0 and at most 1 (1: the largest circle that fits \
                      the image)"
                .into(),
        ),
        Err(_) => Err("not a number".into()),
    }
}

/// Any number, NaN and ±inf included (`nan`, `inf`, `-inf`).
fn parse_any(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| "not a number (nan, inf and -inf are accepted here)".into())
}

/// `imfilter circular-mask`'s arguments (MantidImaging's defaults: 0.95 and 0).
#[derive(Debug, clap::Args)]
pub struct CircularMaskArgs {
    /// The circle's diameter as a fraction of the image's shorter side (above 0, at most 1)
    #[arg(long, value_name = "R", default_value_t = 0.95, allow_negative_numbers = true, value_parser = parse_ratio)]
    pub ratio: f64,

    /// What pixels outside the circle become (a number, nan, inf or -inf)
    #[arg(long, value_name = "V", default_value_t = 0.0, allow_negative_numbers = true, value_parser = parse_any)]
    pub value: f64,
}

impl OpArgs for CircularMaskArgs {
    fn build(&self) -> Result<Box<dyn Op>> {
        Ok(Box::new(CircularMask {
            ratio: self.ratio,
            value: self.value,
        }))
    }
}

/// `imfilter circular-mask`: pixels outside the centred circle of radius
/// `ratio * min(H, W) / 2` set to `value` (module doc).
pub struct CircularMask {
    pub ratio: f64,
    pub value: f64,
}

/// The circle of one image shape, as tomopy's `_get_mask` computes it.
#[derive(Debug, Clone, Copy)]
struct Circle {
    width: usize,
    /// `0.5 - H / 2` and `0.5 - W / 2`: the ogrid's starts.
    y0: f64,
    x0: f64,
    /// `ratio * ratio * r2`.
    limit: f64,
}

impl Circle {
    fn new(width: usize, height: usize, ratio: f64) -> Circle {
        let (rad1, rad2) = (height as f64 / 2.0, width as f64 / 2.0);
        let r2 = if height < width {
            rad1 * rad1
        } else {
            rad2 * rad2
        };
        Circle {
            width,
            y0: 0.5 - rad1,
            x0: 0.5 - rad2,
            limit: ratio * ratio * r2,
        }
    }

    /// tomopy's test for pixel (row, col).
    fn inside(&self, row: usize, col: usize) -> bool {
        let y = row as f64 + self.y0;
        let x = col as f64 + self.x0;
        x * x + y * y < self.limit
    }

    /// The columns `start..end` of `row` inside the circle (empty when none is). The test is
    /// symmetric about the middle (`x(W-1-j) = -x(j)` exactly) and `x*x` falls towards it, so
    /// the inside is one span, found by a binary search with the exact test.
    fn span(&self, row: usize) -> (usize, usize) {
        let middle = self.width / 2;
        if self.width == 0 || !self.inside(row, middle) {
            return (0, 0);
        }
        // First column in 0..=middle inside: the test is false, then true, up to the middle.
        let (mut lo, mut hi) = (0, middle);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.inside(row, mid) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        (lo, self.width - lo)
    }
}

/// Pixels `at ..` of an image of `circle`'s shape: kept (converted by `keep`) inside the
/// circle, `value` outside.
fn mask<T: Pixel, O: Pixel>(
    circle: &Circle,
    at: usize,
    src: &[T],
    dst: &mut [O],
    value: O,
    keep: impl Fn(T) -> O,
) {
    let width = circle.width;
    let mut done = 0;
    while done < src.len() {
        let p = at + done;
        let (row, first) = (p / width, p % width);
        let len = (width - first).min(src.len() - done);
        let (src, dst) = (&src[done..done + len], &mut dst[done..done + len]);
        // The span in this segment's own indices.
        let (start, end) = circle.span(row);
        let start = start.clamp(first, first + len) - first;
        let end = end.clamp(first + start, first + len) - first;
        dst[..start].fill(value);
        for (o, &x) in dst[start..end].iter_mut().zip(&src[start..end]) {
            *o = keep(x);
        }
        dst[end..].fill(value);
        done += len;
    }
}

impl CircularMask {
    /// Whether an image of `dtype` keeps its type (module doc).
    fn keeps(&self, dtype: DType) -> bool {
        with_pixel_type!(dtype, T => T::holds(self.value))
    }
}

impl Op for CircularMask {
    fn name(&self) -> &'static str {
        "circular-mask"
    }

    fn parameters(&self) -> serde_json::Value {
        let value = if self.value.is_finite() {
            json!(self.value)
        } else {
            json!(self.value.to_string())
        };
        json!({ "ratio": self.ratio, "value": value })
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

    fn apply(&self, at: usize, src: Pixels<'_>, dst: PixelsMut<'_>) {
        let PageFormat { width, height, .. } = src.format;
        let circle = Circle::new(width, height, self.ratio);
        match (src.format.dtype, dst.format.dtype) {
            (from, DType::F32) if from != DType::F32 => with_pixel_type!(from, T => {
                let value = f32::narrow(self.value);
                mask(&circle, at, src.get::<T>(), dst.get::<f32>(), value, T::to_f32)
            }),
            (from, _) => with_pixel_type!(from, T => {
                let value = T::narrow(self.value);
                mask(&circle, at, src.get::<T>(), dst.get::<T>(), value, |x| x)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tomopy's `_get_mask`, pixel by pixel.
    fn reference(width: usize, height: usize, ratio: f64) -> Vec<bool> {
        let c = Circle::new(width, height, ratio);
        (0..height)
            .flat_map(|i| (0..width).map(move |j| (i, j)))
            .map(|(i, j)| c.inside(i, j))
            .collect()
    }

    #[test]
    fn spans_equal_the_pixel_by_pixel_test() {
        for (width, height) in [
            (1, 1),
            (2, 2),
            (1, 5),
            (7, 3),
            (8, 8),
            (9, 9),
            (10, 7),
            (67, 45),
        ] {
            for ratio in [0.01, 0.3, 0.5, 0.95, 1.0] {
                let expected = reference(width, height, ratio);
                let c = Circle::new(width, height, ratio);
                for row in 0..height {
                    let (start, end) = c.span(row);
                    for col in 0..width {
                        assert_eq!(
                            (start..end).contains(&col),
                            expected[row * width + col],
                            "{width}x{height} ratio {ratio} ({row}, {col})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn small_shapes_match_tomopy() {
        // A 4x4 image, ratio 1: r2 = 4; corners x*x + y*y = 4.5 and edge-middles 1.5*1.5 +
        // 0.5*0.5 = 2.5 < 4: only the four corners are outside.
        let m = reference(4, 4, 1.0);
        let outside: Vec<usize> = (0..16).filter(|&i| !m[i]).collect();
        assert_eq!(outside, vec![0, 3, 12, 15]);
        // 3x3, ratio 1: r2 = 2.25; the middle of each edge is at distance 1 (1 < 2.25, kept),
        // corners at 2 (kept): all inside. Ratio 0.9: limit 1.8225, corners outside.
        assert!(reference(3, 3, 1.0).iter().all(|&b| b));
        let m = reference(3, 3, 0.9);
        let outside: Vec<usize> = (0..9).filter(|&i| !m[i]).collect();
        assert_eq!(outside, vec![0, 2, 6, 8]);
        // 1x1, ratio 1: 0 < 0.25, kept.
        assert!(reference(1, 1, 1.0)[0]);
    }

    #[test]
    fn bands_starting_anywhere_give_the_whole_image() {
        let (width, height) = (13, 9);
        let src: Vec<u16> = (0..(width * height) as u16).collect();
        let op = CircularMask {
            ratio: 0.8,
            value: 7.0,
        };
        let format = PageFormat {
            width,
            height,
            dtype: DType::U16,
        };
        let mut whole = vec![0u16; src.len()];
        op.apply(
            0,
            Pixels::new(format, &src),
            PixelsMut::new(format, &mut whole),
        );
        let m = reference(width, height, 0.8);
        for (i, (&o, &x)) in whole.iter().zip(&src).enumerate() {
            assert_eq!(o, if m[i] { x } else { 7 }, "pixel {i}");
        }
        for cuts in [
            vec![5, 6, 40, 100],
            Vec::new(),
            vec![13, 26],
            vec![7, 7, 7, 96],
        ] {
            let mut banded = vec![0u16; src.len()];
            let mut at = 0;
            for len in cuts.iter().copied().chain([src.len()]) {
                let end = (at + len).min(src.len());
                op.apply(
                    at,
                    Pixels::new(format, &src[at..end]),
                    PixelsMut::new(format, &mut banded[at..end]),
                );
                at = end;
                if at == src.len() {
                    break;
                }
            }
            assert_eq!(banded, whole, "{cuts:?}");
        }
    }

    #[test]
    fn the_type_is_kept_when_the_value_fits() {
        let op = |value| CircularMask { ratio: 1.0, value };
        assert!(op(0.0).keeps(DType::U16));
        assert!(op(65535.0).keeps(DType::U16));
        assert!(!op(-1.0).keeps(DType::U16));
        assert!(!op(0.5).keeps(DType::I32));
        assert!(!op(f64::NAN).keeps(DType::U8));
        assert!(op(f64::NAN).keeps(DType::F32));
        assert!(op(0.1).keeps(DType::F64));
    }

    #[test]
    fn ratio_is_above_0_and_at_most_1() {
        assert!(parse_ratio("0").is_err());
        assert!(parse_ratio("-0.5").is_err());
        assert!(parse_ratio("1.01").is_err());
        assert!(parse_ratio("nan").is_err());
        assert_eq!(parse_ratio("1"), Ok(1.0));
        assert_eq!(parse_ratio("0.95"), Ok(0.95));
    }
}
