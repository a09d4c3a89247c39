//! Background (flat-field) correction: `out = (I − D) / max(F − D, 1e-6)`, in float32.
//!
//! F and D are the pooled flat (open-beam) and dark images combined per pixel by mean or
//! median. A median needs every page's value of a pixel at once: pages that cannot be read in
//! place are copied band of rows by band of rows within a fixed budget ([`MEDIAN_BUDGET`]),
//! never whole, and memory that cannot be had is an error naming the stack, not an abort.
//! `F − D` is computed once and shared read-only by every worker. The clamp, as in
//! tomopy's `normalize`, keeps dead or saturated detector pixels (F ≤ D) from dividing by zero
//! and producing Inf. Every step is float32 in the order numpy evaluates
//! `(I.astype(np.float32) - D) / np.maximum(F - D, np.float32(1e-6))`, so results agree with it.

use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use rayon::prelude::*;

use super::reference_store::ReferenceStore;
use super::{Op, OpArgs, Pixels, PixelsMut, reshaped_like};
use crate::pixel::{DType, Pixel};
use crate::stack::hdf5::{self, Role};
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
        Self::combine_images(stack, average, "images")
    }

    /// As [`Reference::combine`]; `what` ("flats", "darks") names the images in errors.
    pub(crate) fn combine_images(stack: &Stack, average: Average, what: &str) -> Result<Reference> {
        let mut pixels = try_filled(stack.format.pixels(), 0f32, stack, what)?;
        with_pixel_type!(stack.format.dtype, T => match average {
            Average::Mean => mean_of_pages::<T>(stack, &mut pixels, what),
            Average::Median => median_of_pages::<T>(stack, &mut pixels, what, MEDIAN_BUDGET),
        })?;
        Ok(Reference {
            width: stack.format.width,
            height: stack.format.height,
            pixels,
        })
    }
}

/// Each set (before, after) combined per pixel, then the sets' mean in float32, as numpy's
/// `(a + b) / 2.0` on float32 images.
fn combine_sets(sets: &[Stack], average: Average, what: &str) -> Result<Reference> {
    let mut combined = sets
        .iter()
        .map(|stack| Reference::combine_images(stack, average, what))
        .collect::<Result<Vec<_>>>()?;
    let mut first = combined.remove(0);
    if let Some(second) = combined.first() {
        for (a, &b) in first.pixels.iter_mut().zip(&second.pixels) {
            *a = (*a + b) / 2.0;
        }
    }
    Ok(first)
}

/// A vector of `len` copies of `value`, its memory reserved with `try_reserve_exact`: not
/// getting it is an error naming the stack, not an abort.
fn try_filled<V: Clone>(len: usize, value: V, stack: &Stack, what: &str) -> Result<Vec<V>> {
    let mut v = try_with_capacity(len, stack, what)?;
    v.resize(len, value);
    Ok(v)
}

/// An empty vector with room for `len` values, or the one-line out-of-memory error.
fn try_with_capacity<V>(len: usize, stack: &Stack, what: &str) -> Result<Vec<V>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| out_of_memory(len.saturating_mul(size_of::<V>()), stack, what))?;
    Ok(v)
}

fn out_of_memory(bytes: usize, stack: &Stack, what: &str) -> anyhow::Error {
    anyhow!(
        "{}: cannot allocate {} MiB to combine the {what}: out of memory",
        stack.path.display(),
        bytes.div_ceil(1 << 20)
    )
}

/// The per-pixel mean of every page of `stack`, summed in f64 in page order (so the result does
/// not depend on the threads) and rounded once to f32.
fn mean_of_pages<T: Pixel>(stack: &Stack, mean: &mut [f32], what: &str) -> Result<()> {
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
            let mut sums = try_filled(mean.len(), 0f64, stack, what)?;
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

/// What a median may hold of the pages it has to copy (pages decoded, or in files mapped only
/// while read): the band of rows it works on is as high as this allows for all of them at once.
///
/// Why bands: a median needs every page's value of a pixel at the same time, and holding every
/// page whole made `--average median` over 200 flats of 1024² uint16 (420 MB of file) allocate
/// 1.2 GB. With bands it holds at most this much (plus the page or two `Stack::page` decodes
/// into) however many flats there are. 256 MiB holds every page at once, one band, for 128
/// flats of 1024² uint16 or 32 of 2048²; past that each compressed page is decoded once per
/// band (`Stack::page` decodes whole pages), the price of bounded memory, and rarely more than
/// twice. Pages read in place from a kept map are never copied and do not count.
const MEDIAN_BUDGET: usize = 256 << 20;

/// The per-pixel median of every page of `stack`, in f64 and rounded once to f32: the values
/// sorted by `total_cmp`, the middle one, or the mean of the two middle ones for an even count
/// (`np.median`).
///
/// Pages readable in place (uncompressed multi-page files, kept map) are read where they lie.
/// The others are copied, band of rows by band of rows, into one buffer of at most `budget`
/// bytes (or one row of every page, if even that is more): each such page is read (decoded into
/// one reused scratch page, or its file mapped) once per band. A stack that fits is one band.
fn median_of_pages<T: Pixel>(
    stack: &Stack,
    median: &mut [f32],
    what: &str,
    budget: usize,
) -> Result<()> {
    let (width, height) = (stack.format.width, stack.format.height);
    if median.is_empty() || stack.is_empty() {
        return Ok(());
    }
    let in_place: Vec<Option<&[T]>> = (0..stack.len())
        .map(|i| stack.page_in_place::<T>(i))
        .collect();
    let copied = in_place.iter().filter(|p| p.is_none()).count();
    let row_bytes = copied.saturating_mul(width * size_of::<T>());
    let rows = match row_bytes {
        0 => height,
        _ => (budget / row_bytes).clamp(1, height),
    };
    let mut band = try_with_capacity::<T>(copied.saturating_mul(rows * width), stack, what)?;
    let mut scratch = Vec::new();
    for top in (0..height).step_by(rows) {
        let span = top * width..(top + rows).min(height) * width;
        band.clear();
        for (i, page) in in_place.iter().enumerate() {
            if page.is_none() {
                band.extend_from_slice(&stack.page::<T>(i, &mut scratch)?[span.clone()]);
            }
        }
        let mut copies = band.chunks_exact(span.len());
        let pages: Vec<&[T]> = in_place
            .iter()
            .map(|page| match page {
                Some(page) => &page[span.clone()],
                None => copies.next().expect("invariant: one band per copied page"),
            })
            .collect();
        median_of_band(&pages, &mut median[span], stack, what)?;
    }
    Ok(())
}

/// `out[i]` = the median of `pages[·][i]`, split over the threads. Each piece gathers a block
/// of pixels page by page (reading each page in order) into columns of its own, then selects.
fn median_of_band<T: Pixel>(
    pages: &[&[T]],
    out: &mut [f32],
    stack: &Stack,
    what: &str,
) -> Result<()> {
    const PIECE: usize = 1 << 12;
    const BLOCK: usize = 32;
    let n = pages.len();
    let columns_len = n.saturating_mul(BLOCK);
    out.par_chunks_mut(PIECE).enumerate().try_for_each_init(
        || {
            let mut columns = Vec::new();
            columns.try_reserve_exact(columns_len).ok()?;
            columns.resize(columns_len, 0i64);
            Some(columns)
        },
        |columns, (piece, out)| {
            let columns = columns
                .as_mut()
                .ok_or_else(|| out_of_memory(columns_len.saturating_mul(8), stack, what))?;
            for (block, out) in out.chunks_mut(BLOCK).enumerate() {
                let at = piece * PIECE + block * BLOCK;
                for (p, page) in pages.iter().enumerate() {
                    for (k, &v) in page[at..at + out.len()].iter().enumerate() {
                        columns[k * n + p] = total_order_key(f64::from(v.to_f32()));
                    }
                }
                for (o, column) in out.iter_mut().zip(columns.chunks_exact_mut(n)) {
                    *o = median_of_column(column) as f32;
                }
            }
            Ok(())
        },
    )
}

/// `x` as an integer whose order is `f64::total_cmp`'s (the same transform `total_cmp` makes),
/// so columns are selected with plain integer comparisons. It is its own inverse.
fn total_order_key(x: f64) -> i64 {
    let bits = x.to_bits() as i64;
    bits ^ (((bits >> 63) as u64) >> 1) as i64
}

/// The f64 whose [`total_order_key`] is `key`.
fn from_total_order_key(key: i64) -> f64 {
    f64::from_bits(total_order_key(f64::from_bits(key as u64)) as u64)
}

/// The median of the values whose [`total_order_key`]s `column` (not empty) holds, reordering
/// it: the value a sort by `total_cmp` puts in the middle, or the mean of the two middle values
/// for an even length.
fn median_of_column(column: &mut [i64]) -> f64 {
    let (len, mid) = (column.len(), column.len() / 2);
    let (below, &mut middle, _) = column.select_nth_unstable(mid);
    if len % 2 == 1 {
        return from_total_order_key(middle);
    }
    let before = *below
        .iter()
        .max()
        .expect("invariant: an even, non-empty column has values below its middle");
    (from_total_order_key(before) + from_total_order_key(middle)) / 2.0
}

/// `imfilter background-correct`'s arguments (its subcommand and `run --step`).
#[derive(Debug, clap::Args)]
pub struct BackgroundArgs {
    /// Flat (open-beam) images (taken before the scan, when there are two sets): files or
    /// directories; repeat to pool several
    /// [default: for an HDF5 dataset input with an image_key, its flats (key 1) and darks
    /// (key 2)]
    #[arg(long, visible_alias = "flat-before", value_name = "PATH")]
    pub flat: Vec<PathBuf>,

    /// Dark images (taken before the scan, when there are two sets): files or directories;
    /// repeat to pool several [default: a dark of zero]
    #[arg(long, visible_alias = "dark-before", value_name = "PATH")]
    pub dark: Vec<PathBuf>,

    /// Flat images taken after the scan
    #[arg(long, value_name = "PATH")]
    pub flat_after: Vec<PathBuf>,

    /// Dark images taken after the scan
    #[arg(long, value_name = "PATH")]
    pub dark_after: Vec<PathBuf>,

    /// Which flats and darks correct the scan, as MantidImaging's flat-fielding: before, after,
    /// or both (the mean of the two sets' averages) [default: the sets given; both when both
    /// are]
    #[arg(long, value_enum)]
    pub flat_mode: Option<FlatMode>,

    /// How pooled flats and darks are combined per pixel
    #[arg(long, value_enum, default_value_t = Average::Mean)]
    pub average: Average,

    /// Clip results above this value
    #[arg(long, value_name = "X")]
    pub cutoff: Option<f32>,
}

/// Which set of flats (and darks) corrects the scan: MantidImaging's "Only Before", "Only
/// After" and "Both, concatenated".
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FlatMode {
    /// The flats and darks taken before the scan (--flat, --dark)
    Before,
    /// The flats and darks taken after it (--flat-after, --dark-after)
    After,
    /// Both: each set averaged, then the two averages' mean
    Both,
    /// For image i of n, the flat (and dark) interpolated linearly between the before set's
    /// and the after set's, by i / (n - 1): for a beam that drifts during the scan
    Interpolated,
}

impl OpArgs for BackgroundArgs {
    fn build(&self) -> Result<Box<dyn Op>> {
        self.build_with(None)
    }

    fn build_for(&self, input: &super::Input<'_>) -> Result<Box<dyn Op>> {
        if !(self.flat.is_empty() && self.flat_after.is_empty()) {
            return self.build_with(Some(input));
        }
        // No flats given: an HDF5 dataset input whose image_key marks flats brings its own,
        // and its darks unless --dark gives others (NXtomo: flats and darks in the scan).
        let keyed = match input.paths {
            [one] if hdf5::is_hdf5_input(one) => hdf5::key_counts(one, input.keys)?
                .filter(|c| c.flats > 0)
                .map(|c| (one, c)),
            _ => None,
        };
        let Some((dataset, counts)) = keyed else {
            return self.build_with(Some(input));
        };
        let keyed = BackgroundArgs {
            flat: vec![dataset.clone()],
            dark: match (self.dark.is_empty(), counts.darks) {
                (true, 0) => Vec::new(),
                (true, _) => vec![dataset.clone()],
                (false, _) => self.dark.clone(),
            },
            flat_after: Vec::new(),
            dark_after: self.dark_after.clone(),
            flat_mode: self.flat_mode,
            average: self.average,
            cutoff: self.cutoff,
        };
        keyed.build_with(Some(input))
    }
}

impl BackgroundArgs {
    fn build_with(&self, input: Option<&super::Input<'_>>) -> Result<Box<dyn Op>> {
        let (before, after) = (!self.flat.is_empty(), !self.flat_after.is_empty());
        let mode = self.flat_mode.unwrap_or(match (before, after) {
            (true, true) => FlatMode::Both,
            (false, true) => FlatMode::After,
            _ => FlatMode::Before,
        });
        let usage = |why: String| anyhow::Error::new(super::ChainError(why));
        if !before && !after {
            return Err(usage(
                "background-correct needs flats: --flat PATH (or --flat-after), or an HDF5 \
                 dataset input whose image_key marks flats"
                    .into(),
            ));
        }
        let name = |m: FlatMode| format!("{m:?}").to_lowercase();
        // Every set the mode needs is given. Sets given for another mode are left unused, as
        // in MantidImaging, but darks from the other side only are not taken for none.
        let needs = |flag: &str, given: bool| -> Result<()> {
            if given {
                Ok(())
            } else {
                Err(usage(format!("--flat-mode {} needs {flag}", name(mode))))
            }
        };
        let (dark_before, dark_after) = (!self.dark.is_empty(), !self.dark_after.is_empty());
        let (flats, darks): (Vec<&Vec<PathBuf>>, Vec<&Vec<PathBuf>>) = match mode {
            FlatMode::Before => {
                needs("--flat", before)?;
                if dark_after && !dark_before {
                    needs("--dark (the darks given are from after the scan)", false)?;
                }
                (vec![&self.flat], vec![&self.dark])
            }
            FlatMode::After => {
                needs("--flat-after", after)?;
                if dark_before && !dark_after {
                    needs(
                        "--dark-after (the darks given are from before the scan)",
                        false,
                    )?;
                }
                (vec![&self.flat_after], vec![&self.dark_after])
            }
            FlatMode::Both | FlatMode::Interpolated => {
                needs("--flat", before)?;
                needs("--flat-after", after)?;
                if dark_before != dark_after {
                    return Err(usage(format!(
                        "--flat-mode {} needs darks from both sides (--dark and --dark-after) \
                         or none",
                        name(mode)
                    )));
                }
                (
                    vec![&self.flat, &self.flat_after],
                    vec![&self.dark, &self.dark_after],
                )
            }
        };
        // An HDF5 dataset among them gives its images marked flat (or dark), by the input's
        // --keys when it is the input's own dataset.
        let store = input.and_then(|i| i.references);
        let input = input.and_then(|i| Some((i.paths.first()?.as_path(), i.keys)));
        let open = |sets: Vec<&Vec<PathBuf>>, role| -> Result<Vec<Stack>> {
            sets.into_iter()
                .filter(|paths| !paths.is_empty())
                .map(|paths| hdf5::open_references(paths, role, input))
                .collect()
        };
        let (mut flats, mut darks) = (open(flats, Role::Flat)?, open(darks, Role::Dark)?);
        // Interpolated: the before set here, the after set as the other end.
        let ends = if mode == FlatMode::Interpolated {
            let flat_after = flats.split_off(1);
            let dark_after = darks.split_off(darks.len().min(1));
            let dark_after = (!dark_after.is_empty()).then_some((dark_after, self.average));
            Some(BackgroundCorrect::with_stored_sets(
                (flat_after, self.average),
                dark_after,
                self.cutoff,
                store,
            )?)
        } else {
            None
        };
        let darks = (!darks.is_empty()).then_some((darks, self.average));
        let mut corrector =
            BackgroundCorrect::with_stored_sets((flats, self.average), darks, self.cutoff, store)?;
        if let Some(after) = ends {
            corrector.interpolate_towards(after)?;
        }
        if self.flat_mode.is_some() || after {
            corrector.parameters["flat_mode"] = serde_json::json!(name(mode));
        }
        Ok(Box::new(corrector))
    }
}

/// Prepared background correction: the combined flat and dark, and the clamped `F − D`.
pub struct BackgroundCorrect {
    flat: Vec<f32>,
    dark: Vec<f32>,
    denominator: Vec<f32>,
    /// Width and height of `flat`, `dark` and `denominator`.
    shape: (usize, usize),
    cutoff: Option<f32>,
    /// The flat and dark stacks, kept open so the commit can check they did not change.
    references: Vec<Stack>,
    /// What to name when the shapes do not fit: "flat" or "dark", the path, and the shape
    /// the files have (before any step of a chain reshaped them).
    described: Vec<(&'static str, PathBuf, (usize, usize))>,
    /// The reshaping steps before this one in a chain, applied to flat and dark too.
    followed: Vec<&'static str>,
    /// `--flat-mode interpolated`: the flat and dark taken after the scan (`flat` and `dark`
    /// being the ones before), and how many images the stack has.
    after: Option<(Vec<f32>, Vec<f32>)>,
    images: usize,
    parameters: serde_json::Value,
}

impl BackgroundCorrect {
    /// `dark: None` means a dark of zero (detectors with no offset, or already subtracted).
    pub fn new(
        flat: (Stack, Average),
        dark: Option<(Stack, Average)>,
        cutoff: Option<f32>,
    ) -> Result<Self> {
        Self::with_stored_sets(
            (vec![flat.0], flat.1),
            dark.map(|(d, a)| (vec![d], a)),
            cutoff,
            None,
        )
    }

    /// As [`BackgroundCorrect::new`], with one or two sets of flats (and of darks): taken
    /// before and after the scan, each set combined per pixel, then the two combined images'
    /// mean in float32 (MantidImaging's "Both, concatenated"). The combined flat and dark are
    /// taken from `store` where it holds them (a job's shards), or kept in it (`job prepare`).
    fn with_stored_sets(
        flat: (Vec<Stack>, Average),
        dark: Option<(Vec<Stack>, Average)>,
        cutoff: Option<f32>,
        store: Option<&ReferenceStore>,
    ) -> Result<Self> {
        let shape = |s: &Stack| (s.format.width, s.format.height);
        let first = flat
            .0
            .first()
            .ok_or_else(|| anyhow!("no flat images given"))?;
        let mut described = Vec::new();
        for (what, stack) in flat
            .0
            .iter()
            .map(|s| ("flat", s))
            .chain(dark.iter().flat_map(|(d, _)| d.iter().map(|s| ("dark", s))))
        {
            if shape(stack) != shape(first) {
                bail!(
                    "{}: {what} images are {}x{}, but the flat images are {}x{}",
                    stack.path.display(),
                    stack.format.width,
                    stack.format.height,
                    first.format.width,
                    first.format.height
                );
            }
            described.push((what, stack.path.clone(), shape(stack)));
        }
        // Flats and darks are averaged side by side when averaging is by mean, which holds one
        // page at a time; a median may hold up to its band budget, so medians are done one
        // after the other and the budget is not held twice.
        let both_mean =
            flat.1 == Average::Mean && dark.as_ref().is_none_or(|(_, a)| *a == Average::Mean);
        let stored = |sets: &[Stack], average: Average, what: &str| match store {
            Some(store) => {
                store.combined(sets, average, what, || combine_sets(sets, average, what))
            }
            None => combine_sets(sets, average, what),
        };
        let combine_flat = || stored(&flat.0, flat.1, "flats");
        let combine_dark = || {
            dark.as_ref()
                .map(|(stacks, average)| stored(stacks, *average, "darks"))
        };
        let (f, d) = if both_mean {
            rayon::join(combine_flat, combine_dark)
        } else {
            (combine_flat(), combine_dark())
        };
        let f = f?;
        let d = match d.transpose()? {
            Some(d) => d.pixels,
            None => try_filled(f.pixels.len(), 0.0, first, "flats")?,
        };
        let files = |sets: &[Stack]| {
            sets.iter()
                .flat_map(|s| match s.kind {
                    // The dataset, not only its file.
                    crate::stack::StackKind::Hdf5 => vec![s.path.display().to_string()],
                    _ => s.files().map(|p| p.display().to_string()).collect(),
                })
                .collect::<Vec<_>>()
        };
        let mut corrector = Self::from_images(f, d, cutoff);
        corrector.described = described;
        corrector.parameters = serde_json::json!({
            "flat": files(&flat.0),
            "dark": dark.as_ref().map(|(s, _)| files(s)).unwrap_or_default(),
            "average": format!("{:?}", flat.1).to_lowercase(),
            "cutoff": cutoff,
        });
        corrector.references = flat
            .0
            .into_iter()
            .chain(dark.into_iter().flat_map(|(s, _)| s))
            .collect();
        Ok(corrector)
    }

    fn from_images(flat: Reference, dark: Vec<f32>, cutoff: Option<f32>) -> Self {
        let shape = (flat.width, flat.height);
        let mut corrector = BackgroundCorrect {
            flat: flat.pixels,
            dark,
            denominator: Vec::new(),
            shape,
            cutoff,
            references: Vec::new(),
            described: Vec::new(),
            followed: Vec::new(),
            after: None,
            images: 0,
            parameters: serde_json::Value::Null,
        };
        corrector.denominator = corrector.denominator_of(&corrector.flat);
        corrector
    }

    /// Makes this correction (of the flats and darks taken before the scan) interpolate, image
    /// by image, towards `after` (those taken after it).
    fn interpolate_towards(&mut self, after: BackgroundCorrect) -> Result<()> {
        if after.shape != self.shape {
            let (_, path, (w, h)) = &after.described[0];
            bail!(
                "{}: flat images are {w}x{h}, but the flats taken before the scan are {}x{}",
                path.display(),
                self.shape.0,
                self.shape.1
            );
        }
        let files =
            |p: &serde_json::Value, key: &str| p[key].as_array().cloned().unwrap_or_default();
        let mut flat_files = files(&self.parameters, "flat");
        flat_files.extend(files(&after.parameters, "flat"));
        let mut dark_files = files(&self.parameters, "dark");
        dark_files.extend(files(&after.parameters, "dark"));
        self.parameters["flat"] = flat_files.into();
        self.parameters["dark"] = dark_files.into();
        self.described.extend(after.described);
        self.references.extend(after.references);
        self.after = Some((after.flat, after.dark));
        Ok(())
    }

    /// Corrects the pixels `at ..` of image `index` with the flat and dark interpolated
    /// between before and after: `w = index / (images − 1)`, `F = (1 − w)·F_before +
    /// w·F_after` (and D alike), then `(I − D) / max(F − D, 1e-6)`, all in float32 in that order.
    fn apply_interpolated<T: Pixel>(
        &self,
        index: usize,
        at: usize,
        input: &[T],
        output: &mut [f32],
    ) {
        let (flat_after, dark_after) = self.after.as_ref().expect("an interpolating correction");
        let w = if self.images > 1 {
            index as f32 / (self.images - 1) as f32
        } else {
            0.0
        };
        // No cutoff is a cutoff no value passes (`>` keeps NaN as NaN): no branch per pixel.
        let cutoff = self.cutoff.unwrap_or(f32::INFINITY);
        let span = at..at + input.len();
        let before = self.flat[span.clone()].iter().zip(&self.dark[span.clone()]);
        let after = flat_after[span.clone()].iter().zip(&dark_after[span]);
        for ((o, &i), ((&fb, &db), (&fa, &da))) in
            output.iter_mut().zip(input).zip(before.zip(after))
        {
            let f = (1.0 - w) * fb + w * fa;
            let d = (1.0 - w) * db + w * da;
            let v = (i.to_f32() - d) / clamp_denominator(f - d);
            *o = if v > cutoff { cutoff } else { v };
        }
    }

    fn denominator_of(&self, flat: &[f32]) -> Vec<f32> {
        flat.iter()
            .zip(&self.dark)
            .map(|(&f, &d)| clamp_denominator(f - d))
            .collect()
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

impl Op for BackgroundCorrect {
    fn name(&self) -> &'static str {
        "background-correct"
    }

    fn parameters(&self) -> serde_json::Value {
        self.parameters.clone()
    }

    fn pointwise(&self) -> bool {
        true
    }

    fn references(&self) -> &[Stack] {
        &self.references
    }

    /// Flats and darks go through the steps before this one that move pixels (crop, rotate,
    /// flip, rebin), so a chain needs the files as they were taken: what the user would get
    /// by running those steps on flats, darks and projections alike. Steps that change values
    /// (a median, say) are not applied to them, as running the steps one by one would not.
    fn follow(&mut self, before: &[Box<dyn Op>]) -> Result<()> {
        let named =
            |e: anyhow::Error| anyhow!("cannot apply it to the flat and dark images: {e:#}");
        let flat = std::mem::take(&mut self.flat);
        let dark = std::mem::take(&mut self.dark);
        let flat = reshaped_like(before, flat, self.shape).map_err(named)?;
        let dark = reshaped_like(before, dark, self.shape).map_err(named)?;
        if let Some((flat_after, dark_after)) = self.after.take() {
            let flat_after = reshaped_like(before, flat_after, self.shape).map_err(named)?;
            let dark_after = reshaped_like(before, dark_after, self.shape).map_err(named)?;
            self.after = Some((flat_after.image, dark_after.image));
        }
        (self.flat, self.dark) = (flat.image, dark.image);
        (self.shape, self.followed) = (flat.shape, flat.applied);
        if !self.followed.is_empty() {
            self.denominator = self.denominator_of(&self.flat);
        }
        Ok(())
    }

    fn output_format(&self, input: PageFormat) -> Result<PageFormat> {
        if self.shape != (input.width, input.height) {
            let (what, path, (width, height)) = &self.described[0];
            let after = if self.followed.is_empty() {
                String::new()
            } else {
                format!(
                    " ({}x{} after {})",
                    self.shape.0,
                    self.shape.1,
                    self.followed.join(", ")
                )
            };
            bail!(
                "{}: {what} images are {width}x{height}{after}, but the stack's images are {}x{}",
                path.display(),
                input.width,
                input.height
            );
        }
        Ok(PageFormat {
            dtype: DType::F32,
            ..input
        })
    }

    fn apply(&self, at: usize, src: Pixels<'_>, dst: PixelsMut<'_>) {
        self.apply_image(0, at, src, dst)
    }

    fn apply_image(&self, index: usize, at: usize, src: Pixels<'_>, dst: PixelsMut<'_>) {
        let out = dst.get::<f32>();
        match self.after {
            None => with_pixel_type!(src.format.dtype, T => self.apply_at(at, src.get::<T>(), out)),
            Some(_) => with_pixel_type!(src.format.dtype, T => {
                self.apply_interpolated(index, at, src.get::<T>(), out)
            }),
        }
    }

    fn stack_images(&mut self, count: usize) -> Result<()> {
        self.images = count;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `--average median` computed before bands: every value as f64, sorted by
    /// `total_cmp`, the middle or the mean of the two middle ones, rounded once to f32.
    fn sorted_median(mut column: Vec<f64>) -> f32 {
        column.sort_unstable_by(f64::total_cmp);
        let mid = column.len() / 2;
        let median = if column.len() % 2 == 1 {
            column[mid]
        } else {
            (column[mid - 1] + column[mid]) / 2.0
        };
        median as f32
    }

    #[test]
    fn selecting_the_median_gives_the_sorted_median_bit_for_bit() {
        let specials = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            2.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            f64::MIN_POSITIVE,
            1e300,
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for len in 1..=24 {
            for _ in 0..200 {
                let column: Vec<f64> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        specials[(state % specials.len() as u64) as usize]
                    })
                    .collect();
                let mut keys: Vec<i64> = column.iter().map(|&v| total_order_key(v)).collect();
                let selected = median_of_column(&mut keys) as f32;
                let sorted = sorted_median(column.clone());
                assert_eq!(selected.to_bits(), sorted.to_bits(), "{column:?}");
            }
        }
    }

    /// A pooled stack of `in_place` pages in imfilter's own layout (read where they lie) and
    /// `deflated` Deflate pages (decoded, so copied band by band), `width` × `height` uint16;
    /// returns it with every page's pixels.
    fn mixed_stack(
        dir: &std::path::Path,
        in_place: usize,
        deflated: usize,
        (width, height): (usize, usize),
    ) -> (Stack, Vec<Vec<u16>>) {
        use std::os::unix::fs::FileExt;
        let pixels: Vec<Vec<u16>> = (0..in_place + deflated)
            .map(|p| {
                (0..width * height)
                    .map(|i| ((i * 7919 + p * 104_729) % 1009) as u16 * 3 + (p % 2) as u16)
                    .collect()
            })
            .collect();
        let plain = dir.join("plain.tif");
        let format = PageFormat {
            width,
            height,
            dtype: DType::U16,
        };
        let layout = crate::stack::write::Layout::new(in_place, format, &Default::default());
        let file = std::fs::File::create(&plain).expect("create");
        file.set_len(layout.file_len).expect("size");
        layout.write_metadata(&file).expect("metadata");
        let bytes: Vec<u8> = pixels[..in_place]
            .iter()
            .flatten()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        file.write_all_at(&bytes, layout.data_offset)
            .expect("pixels");
        let deflate = dir.join("deflate.tif");
        let level = tiff::encoder::compression::DeflateLevel::Fast;
        let mut encoder =
            tiff::encoder::TiffEncoder::new(std::fs::File::create(&deflate).expect("create"))
                .expect("encoder")
                .with_compression(tiff::encoder::Compression::Deflate(level));
        for page in &pixels[in_place..] {
            encoder
                .write_image::<tiff::encoder::colortype::Gray16>(width as u32, height as u32, page)
                .expect("page");
        }
        drop(encoder);
        let stack = Stack::open_pooled(&[plain, deflate]).expect("stack");
        assert!(stack.page_in_place::<u16>(0).is_some());
        assert!(stack.page_in_place::<u16>(in_place).is_none());
        (stack, pixels)
    }

    #[test]
    fn bands_of_any_height_give_the_whole_stack_median() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (width, height) = (7, 5);
        // 9 pages (odd) and 8 (even), 4 and 3 of them read in place, the rest decoded.
        for (in_place, deflated) in [(4, 5), (3, 5)] {
            let (stack, pixels) = mixed_stack(dir.path(), in_place, deflated, (width, height));
            let expected: Vec<f32> = (0..width * height)
                .map(|i| sorted_median(pixels.iter().map(|p| f64::from(p[i])).collect()))
                .collect();
            let row = deflated * width * 2;
            // One row a band (and a budget below one row), 2 rows (the last band ragged), 3,
            // and everything at once.
            for budget in [1, row, 2 * row, 3 * row + 1, MEDIAN_BUDGET] {
                let mut median = vec![0f32; width * height];
                median_of_pages::<u16>(&stack, &mut median, "flats", budget).expect("median");
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&median), bits(&expected), "budget {budget}");
            }
        }
    }

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
