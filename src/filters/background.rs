//! Background (flat-field) correction: `out = (I − D) / max(F − D, 1e-6)`, in float32.
//!
//! F and D are the pooled flat (open-beam) and dark images combined per pixel by mean or
//! median. `F − D` is computed once and shared read-only by every worker. The clamp, as in
//! tomopy's `normalize`, keeps dead or saturated detector pixels (F ≤ D) from dividing by zero
//! and producing Inf. Every step is float32 in the order numpy evaluates
//! `(I.astype(np.float32) - D) / np.maximum(F - D, np.float32(1e-6))`, so results agree with it.

use std::path::PathBuf;

use anyhow::{Result, bail};
use rayon::prelude::*;

use super::Filter;
use crate::engine;
use crate::output::PendingOutput;
use crate::pixel::{DType, Pixel};
use crate::progress::Progress;
use crate::stack::{PageFormat, Stack};
use crate::with_pixel_type;

/// The smallest denominator: where `F − D` is below it, it is used instead.
pub const MIN_DENOMINATOR: f32 = 1e-6;

/// How several flat (or dark) images become one, per pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Average {
    /// The mean: least noise.
    Mean,
    /// The median: ignores outliers such as gamma spots in one of the images.
    Median,
}

/// One combined image: width × height floats.
#[derive(Debug, Clone)]
pub struct Reference {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<f32>,
}

impl Reference {
    /// Combines every page of `stack` per pixel. Means and medians are taken in f64 and
    /// rounded once to f32, which is what numpy does for integer detector images.
    pub fn combine(stack: &Stack, average: Average) -> Result<Reference> {
        let n = stack.len();
        let len = stack.format.pixels();
        let mut pixels = vec![0f32; len];
        match average {
            Average::Mean => with_pixel_type!(stack.format.dtype, T => {
                mean_of_pages::<T>(stack, &mut pixels)
            })?,
            Average::Median => {
                let pages = (0..n)
                    .map(|i| {
                        let mut page = Vec::new();
                        stack.page_f32(i, &mut page).map(|()| page)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let mut column = vec![0f64; n];
                for (i, out) in pixels.iter_mut().enumerate() {
                    column
                        .iter_mut()
                        .zip(&pages)
                        .for_each(|(c, p)| *c = f64::from(p[i]));
                    column.sort_unstable_by(f64::total_cmp);
                    let mid = n / 2;
                    let median = if n % 2 == 1 {
                        column[mid]
                    } else {
                        (column[mid - 1] + column[mid]) / 2.0
                    };
                    *out = median as f32;
                }
            }
        }
        Ok(Reference {
            width: stack.format.width,
            height: stack.format.height,
            pixels,
        })
    }
}

/// The per-pixel mean of every page of `stack`, summed in f64 in page order (so the result does
/// not depend on the threads) and rounded once to f32.
fn mean_of_pages<T: Pixel>(stack: &Stack, mean: &mut [f32]) -> Result<()> {
    const BAND: usize = 1 << 14;
    let n = stack.len();
    let add = |sums: &mut [f64], page: &[T]| {
        sums.iter_mut()
            .zip(page)
            .for_each(|(s, &v)| *s += f64::from(v.to_f32()));
    };
    let divide = |mean: &mut [f32], sums: &[f64]| {
        mean.iter_mut()
            .zip(sums)
            .for_each(|(m, &s)| *m = (s / n as f64) as f32);
    };
    let in_place: Option<Vec<&[T]>> = (0..n).map(|i| stack.page_in_place::<T>(i)).collect();
    match in_place {
        // Pages readable in place from a kept map (uncompressed multi-page files): band by band,
        // every page's band added while the band's sums stay in cache, no full-size sum array.
        Some(pages) => {
            mean.par_chunks_mut(BAND)
                .enumerate()
                .for_each_init(Vec::new, |sums, (band, mean)| {
                    let at = band * BAND;
                    sums.clear();
                    sums.resize(mean.len(), 0f64);
                    for page in &pages {
                        add(sums, &page[at..at + mean.len()]);
                    }
                    divide(mean, sums);
                });
        }
        // Pages to decode, or files of a directory (mapped one at a time): one page at a time,
        // each page's sum split over the threads.
        None => {
            let mut sums = vec![0f64; mean.len()];
            let mut scratch = Vec::new();
            for i in 0..n {
                let page = stack.page::<T>(i, &mut scratch)?;
                sums.par_chunks_mut(BAND)
                    .zip(page.par_chunks(BAND))
                    .for_each(|(sums, page)| add(sums, page));
            }
            mean.par_chunks_mut(BAND)
                .zip(sums.par_chunks(BAND))
                .for_each(|(mean, sums)| divide(mean, sums));
        }
    }
    Ok(())
}

/// Prepared background correction: the dark image and the clamped `F − D`.
pub struct BackgroundCorrect {
    dark: Vec<f32>,
    denominator: Vec<f32>,
    cutoff: Option<f32>,
    /// Where the flats and darks came from and their shape, for `check`.
    references: Vec<(&'static str, PathBuf, (usize, usize))>,
    parameters: serde_json::Value,
}

impl BackgroundCorrect {
    /// `dark: None` means a dark of zero (detectors with no offset, or already subtracted).
    pub fn new(
        flat: (&Stack, Average),
        dark: Option<(&Stack, Average)>,
        cutoff: Option<f32>,
    ) -> Result<Self> {
        let shape = |s: &Stack| (s.format.width, s.format.height);
        let mut references = vec![("flat", flat.0.path.clone(), shape(flat.0))];
        // Flats and darks are averaged side by side when averaging is by mean, which holds one
        // page at a time; a median holds every page, so those are done one after the other.
        let both_mean = flat.1 == Average::Mean && dark.is_none_or(|(_, a)| a == Average::Mean);
        let combine_dark = || dark.map(|(stack, average)| Reference::combine(stack, average));
        let (f, d) = if both_mean {
            rayon::join(|| Reference::combine(flat.0, flat.1), combine_dark)
        } else {
            (Reference::combine(flat.0, flat.1), combine_dark())
        };
        let f = f?;
        if let Some((stack, _)) = dark {
            references.push(("dark", stack.path.clone(), shape(stack)));
        }
        let d = d
            .transpose()?
            .map_or_else(|| vec![0.0; f.pixels.len()], |d| d.pixels);
        let files = |s: &Stack| {
            s.files()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
        };
        let mut corrector = Self::from_images(f, d, cutoff);
        corrector.references = references;
        corrector.parameters = serde_json::json!({
            "flat": files(flat.0),
            "dark": dark.map(|(s, _)| files(s)).unwrap_or_default(),
            "average": format!("{:?}", flat.1).to_lowercase(),
            "cutoff": cutoff,
        });
        Ok(corrector)
    }

    fn from_images(flat: Reference, dark: Vec<f32>, cutoff: Option<f32>) -> Self {
        let denominator = flat
            .pixels
            .iter()
            .zip(&dark)
            .map(|(&f, &d)| clamp_denominator(f - d))
            .collect();
        BackgroundCorrect {
            dark,
            denominator,
            cutoff,
            references: Vec::new(),
            parameters: serde_json::Value::Null,
        }
    }

    /// Corrects one image. `input`, `output`, dark and flat all have the same length.
    pub fn apply<T: Pixel>(&self, input: &[T], output: &mut [f32]) {
        self.apply_at(0, input, output);
    }

    /// Corrects the pixels `at .. at + input.len()` of an image.
    pub fn apply_at<T: Pixel>(&self, at: usize, input: &[T], output: &mut [f32]) {
        let span = at..at + input.len();
        let (dark, denominator) = (&self.dark[span.clone()], &self.denominator[span]);
        let output = &mut output[..input.len()];
        // Two loops rather than a branch per pixel, so both vectorise.
        match self.cutoff {
            None => {
                for (((o, &i), &d), &n) in output.iter_mut().zip(input).zip(dark).zip(denominator) {
                    *o = (i.to_f32() - d) / n;
                }
            }
            Some(c) => {
                for (((o, &i), &d), &n) in output.iter_mut().zip(input).zip(dark).zip(denominator) {
                    let v = (i.to_f32() - d) / n;
                    // `>` keeps NaN as NaN, as numpy's `np.minimum`/tomopy's mask do.
                    *o = if v > c { c } else { v };
                }
            }
        }
    }
}

/// `max(x, 1e-6)` that keeps NaN as NaN, as `np.maximum` does.
fn clamp_denominator(x: f32) -> f32 {
    if x < MIN_DENOMINATOR {
        MIN_DENOMINATOR
    } else {
        x
    }
}

impl Filter for BackgroundCorrect {
    fn name(&self) -> &'static str {
        "background-correct"
    }

    fn output_dtype(&self, _input: DType) -> DType {
        DType::F32
    }

    fn parameters(&self) -> serde_json::Value {
        self.parameters.clone()
    }

    fn check(&self, input: &PageFormat) -> Result<()> {
        for (what, path, (width, height)) in &self.references {
            if (*width, *height) != (input.width, input.height) {
                bail!(
                    "{}: {what} images are {width}x{height}, but the stack's images are {}x{}",
                    path.display(),
                    input.width,
                    input.height
                );
            }
        }
        Ok(())
    }

    fn run(&self, input: &Stack, output: &mut PendingOutput, progress: &Progress) -> Result<()> {
        let pages = output.pages_mut::<f32>(input.format.pixels());
        with_pixel_type!(input.format.dtype, T => {
            engine::run_pointwise::<T, f32, _>(
                input,
                pages,
                |at, i, o| self.apply_at(at, i, o),
                progress,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corrector(flat: Vec<f32>, dark: Vec<f32>, cutoff: Option<f32>) -> BackgroundCorrect {
        let n = flat.len();
        let f = Reference {
            width: n,
            height: 1,
            pixels: flat,
        };
        BackgroundCorrect::from_images(f, dark, cutoff)
    }

    #[test]
    fn divides_the_dark_subtracted_image_by_the_dark_subtracted_flat() {
        let bc = corrector(vec![110.0, 1100.0], vec![10.0, 100.0], None);
        let mut out = [0f32; 2];
        bc.apply(&[60u16, 600], &mut out);
        assert_eq!(out, [0.5, 0.5]);
    }

    #[test]
    fn a_flat_at_or_below_the_dark_is_clamped_not_infinite() {
        let bc = corrector(vec![10.0, 5.0], vec![10.0, 10.0], None);
        let mut out = [0f32; 2];
        bc.apply(&[11u16, 11], &mut out);
        assert!(out.iter().all(|v| v.is_finite()));
        assert_eq!(out[0], 1.0 / MIN_DENOMINATOR);
    }

    #[test]
    fn cutoff_clips_only_above_and_keeps_nan() {
        let bc = corrector(vec![2.0, 2.0, 2.0], vec![0.0; 3], Some(1.5));
        let mut out = [0f32; 3];
        bc.apply(&[1.0f32, 8.0, f32::NAN], &mut out);
        assert_eq!(out[0], 0.5);
        assert_eq!(out[1], 1.5);
        assert!(out[2].is_nan());
    }
}
