//! Looking at a result by eye: one page of a stack as an 8-bit PNG with a robust contrast
//! stretch (`imfilter preview`), optionally beside the same page of another stack, and a
//! page's histogram (`imfilter info --histogram`).
//!
//! The stretch maps the page's 1st percentile to black and its 99th to white, linearly, as
//! ImageJ's "Auto" contrast and most viewers do in spirit: a few hot or dead pixels then do not
//! take the whole grey range. Percentiles are numpy's default (`np.percentile`, linear
//! interpolation between the two nearest ranks) over the finite values; NaN is drawn black,
//! and +Inf and -Inf clamp to white and black. A page whose 1st and 99th percentiles are equal
//! is drawn black where it is at or below that value and white above.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::pixel::Pixel;
use crate::stack::Stack;
use crate::with_pixel_type;

/// The percentiles that become black and white.
pub const LOW_PERCENTILE: f64 = 1.0;
pub const HIGH_PERCENTILE: f64 = 99.0;
/// Columns of mid grey between two pages shown side by side.
const GAP: usize = 4;

/// An 8-bit grayscale picture, row by row.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// `imfilter preview`: writes the page (beside `--compare`'s) as a PNG and, unless `silent`,
/// says where on stderr, like every command's summary line.
pub fn run(args: &crate::cli::PreviewArgs, silent: bool) -> Result<()> {
    let output = match &args.output {
        Some(path) => path.clone(),
        None => beside(&args.path, args.page),
    };
    if output
        .extension()
        .is_none_or(|e| !e.eq_ignore_ascii_case("png"))
    {
        bail!(crate::cli::UsageError(format!(
            "{}: preview writes PNG files; give -o a name ending in .png",
            output.display()
        )));
    }
    crate::output::refuse_existing(&output, args.force)?;
    let stack = Stack::open(&args.path)?;
    let other = args.compare.as_deref().map(Stack::open).transpose()?;
    let picture = render(&stack, args.page, other.as_ref())?;
    write_png(&picture, &output)?;
    if !silent {
        eprintln!(
            "preview: page {} ({}x{} PNG, stretched from the 1st to the 99th percentile) -> {}",
            args.page,
            picture.width,
            picture.height,
            output.display()
        );
    }
    Ok(())
}

/// `stack.tif` → `stack_page5.png`, `Tomo/` → `Tomo_page5.png`, beside the input.
fn beside(input: &Path, page: usize) -> std::path::PathBuf {
    let trimmed = input.components().as_path();
    let stem = trimmed
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "stack".into());
    trimmed.with_file_name(format!("{stem}_page{page}.png"))
}

/// Page `index` of `stack` as f64 values.
pub fn page_values(stack: &Stack, index: usize) -> Result<Vec<f64>> {
    if index >= stack.len() {
        bail!(
            "{}: there is no page {index}: the stack has {} (numbered from 0)",
            stack.path.display(),
            stack.len()
        );
    }
    with_pixel_type!(stack.format.dtype, T => {
        let mut scratch = Vec::<T>::new();
        let page = stack.page::<T>(index, &mut scratch)?;
        Ok(page.iter().map(|v| v.as_f64()).collect())
    })
}

/// The `q`-th percentile (0–100) of `finite` (finite values, reordered in place, so several
/// percentiles share one copy), interpolated linearly between the nearest ranks as numpy's
/// default does; `None` when there are none.
pub fn percentile(finite: &mut [f64], q: f64) -> Option<f64> {
    if finite.is_empty() {
        return None;
    }
    let position = q / 100.0 * (finite.len() - 1) as f64;
    let below = position.floor() as usize;
    let (_, &mut low, above) = finite.select_nth_unstable_by(below, f64::total_cmp);
    let high = above.iter().copied().min_by(f64::total_cmp).unwrap_or(low);
    let fraction = position - below as f64;
    // numpy's `_lerp`: the form that is exact at both ends.
    Some(if fraction >= 0.5 {
        high - (high - low) * (1.0 - fraction)
    } else {
        low + (high - low) * fraction
    })
}

/// `values` (`width` × `height`) stretched from their 1st to their 99th percentile.
pub fn stretched(values: &[f64], width: usize, height: usize) -> Picture {
    let mut finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let low = percentile(&mut finite, LOW_PERCENTILE).unwrap_or(0.0);
    let high = percentile(&mut finite, HIGH_PERCENTILE).unwrap_or(0.0);
    let pixels = values
        .iter()
        .map(|&v| {
            if v.is_nan() {
                0
            } else if high > low {
                (255.0 * ((v - low) / (high - low)).clamp(0.0, 1.0)).round() as u8
            } else if v > low {
                255
            } else {
                0
            }
        })
        .collect();
    Picture {
        width,
        height,
        pixels,
    }
}

/// `left` and `right` side by side, a mid-grey gap between them, the shorter one padded black
/// below.
pub fn side_by_side(left: &Picture, right: &Picture) -> Picture {
    let width = left.width + GAP + right.width;
    let height = left.height.max(right.height);
    let mut pixels = vec![0u8; width * height];
    for (y, row) in pixels.chunks_exact_mut(width).enumerate() {
        row[left.width..left.width + GAP].fill(128);
        for (picture, at) in [(left, 0), (right, left.width + GAP)] {
            if y < picture.height {
                row[at..at + picture.width]
                    .copy_from_slice(&picture.pixels[y * picture.width..][..picture.width]);
            }
        }
    }
    Picture {
        width,
        height,
        pixels,
    }
}

/// Page `index` of `stack`, stretched; beside the same page of `compare`, each stretched by
/// its own percentiles (a raw and a corrected stack differ in range by orders of magnitude).
pub fn render(stack: &Stack, index: usize, compare: Option<&Stack>) -> Result<Picture> {
    let one = |s: &Stack| -> Result<Picture> {
        let values = page_values(s, index)?;
        Ok(stretched(&values, s.format.width, s.format.height))
    };
    let picture = one(stack)?;
    Ok(match compare {
        Some(other) => side_by_side(&picture, &one(other)?),
        None => picture,
    })
}

/// Writes `picture` as an 8-bit grayscale PNG at `path`, through a temporary file beside it
/// renamed into place: an interrupted write never leaves a partial PNG under the name.
pub fn write_png(picture: &Picture, path: &Path) -> Result<()> {
    let dir = crate::output::parent_dir(path)?;
    let mut file = crate::output::temp_file_in(&dir, path)?;
    let width = u32::try_from(picture.width).context("picture too wide for PNG")?;
    let height = u32::try_from(picture.height).context("picture too tall for PNG")?;
    {
        let mut encoder =
            png::Encoder::new(std::io::BufWriter::new(file.as_file_mut()), width, height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .with_context(|| format!("{}: cannot write", path.display()))?;
        writer
            .write_image_data(&picture.pixels)
            .with_context(|| format!("{}: cannot write", path.display()))?;
        writer
            .finish()
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    file.as_file_mut()
        .flush()
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("{}: cannot write", path.display()))?;
    file.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    crate::output::sync_dir(&dir);
    Ok(())
}

/// A page's histogram: `counts.len()` equal bins from the finite minimum to the maximum, the
/// last bin closed on the right, as `numpy.histogram(values, bins, range=(min, max))` bins
/// integer data (numpy bins floats in their own precision; here every type is binned in f64,
/// so a float value within rounding of an edge may land in the bin beside numpy's).
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub min: f64,
    pub max: f64,
    pub counts: Vec<u64>,
    /// Values left out: NaN and ±Inf.
    pub not_finite: u64,
}

pub fn histogram(values: &[f64], bins: usize) -> Histogram {
    let finite = || values.iter().copied().filter(|v| v.is_finite());
    let not_finite = values.len() as u64 - finite().count() as u64;
    let (mut first, mut last) = finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let mut counts = vec![0u64; bins];
    if first > last {
        return Histogram {
            min: f64::NAN,
            max: f64::NAN,
            counts,
            not_finite,
        };
    }
    let (min, max) = (first, last);
    if first == last {
        // numpy widens an empty range by half a unit each way.
        first -= 0.5;
        last += 0.5;
    }
    // numpy's `linspace`: edge i is first + i·step, the last edge exactly `last`.
    let step = (last - first) / bins as f64;
    let edge = |i: usize| {
        if i == bins {
            last
        } else {
            first + i as f64 * step
        }
    };
    for v in finite() {
        // numpy's order of operations, for the same rounding: (v - first) / range · bins.
        let mut i = (((v - first) / (last - first) * bins as f64) as usize).min(bins - 1);
        // numpy's corrections where the multiplication rounded across an edge.
        if v < edge(i) && i > 0 {
            i -= 1;
        } else if v >= edge(i + 1) && i != bins - 1 {
            i += 1;
        }
        counts[i] += 1;
    }
    Histogram {
        min,
        max,
        counts,
        not_finite,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_between_ranks_as_numpy_does() {
        // np.percentile([1, 2, 3, 4], [1, 99]) == [1.03, 3.97]
        let mut v = [4.0, 1.0, 3.0, 2.0];
        assert!((percentile(&mut v, 1.0).expect("finite") - 1.03).abs() < 1e-12);
        assert!((percentile(&mut v, 99.0).expect("finite") - 3.97).abs() < 1e-12);
        assert_eq!(percentile(&mut [], 50.0), None);
    }

    #[test]
    fn the_stretch_clamps_outliers_and_draws_nan_black() {
        let mut v: Vec<f64> = (0..1000).map(f64::from).collect();
        v[0] = -1e9;
        v[999] = 1e9;
        v[500] = f64::NAN;
        let p = stretched(&v, 1000, 1);
        assert_eq!((p.pixels[0], p.pixels[999], p.pixels[500]), (0, 255, 0));
        assert!(p.pixels.windows(2).take(499).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn histogram_bins_like_numpy_with_the_last_edge_closed() {
        // np.histogram([0, 1, 2, 3, 4], bins=4) -> [1, 1, 1, 2]
        let h = histogram(&[0.0, 1.0, 2.0, 3.0, 4.0, f64::INFINITY], 4);
        assert_eq!(h.counts, vec![1, 1, 1, 2]);
        assert_eq!(h.not_finite, 1);
        // np.histogram([5, 5], bins=2) -> [0, 2]: the range widened to [4.5, 5.5]
        assert_eq!(histogram(&[5.0, 5.0], 2).counts, vec![0, 2]);
    }
}
