//! The sinogram pass: steps that work across the stack (row y of every image, a sinogram)
//! run after the image pass, over the result in place, a band of rows at a time. Each task
//! copies its band's rows out of every page into a buffer of its own (sinogram by sinogram,
//! contiguous), runs the sinogram pass's steps on each sinogram, and copies the rows back.
//! The result is mapped (a multi-page file, or a directory's files each mapped), so a band
//! touches only its rows of each page: memory stays bounded on a stack larger than RAM, and
//! the input is still read once (by the image pass).
//!
//! When the steps before the sinogram step work pixel by pixel and the input's pages are
//! mapped in place, there is no image pass: each band's rows are read from the input itself,
//! through those steps, so the stack is read once and written once, as for any other chain.

use anyhow::Result;
use rayon::prelude::*;

use super::check_stops;
use crate::filters::{Chain, ImageBuffer, Pixels, PixelsMut, SinogramWorker};
use crate::output::OutputPage;
use crate::pixel::DType;
use crate::progress::Progress;
use crate::stack::{PageFormat, Stack};
use crate::with_pixel_type;

/// The most a band's buffer holds: a few MiB per worker whatever the stack's size (one
/// sinogram of 450 projections 2048 wide is 3.7 MB, so such a band is two rows).
const BAND_BYTES: usize = 8 << 20;

/// Runs `chain`'s sinogram pass (see [`Chain::sinogram_pass_steps`]) over `pages` (float32
/// images of `format`), in parallel on the current rayon pool, ticking `progress` once per
/// sinogram (row of the images). The pass starts from `pages` as the image pass left them,
/// or, given `input`, from the input's rows carried through the image pass's steps (which
/// must then all be pointwise, and every page of `input` mapped in place).
pub fn run_sinograms(
    chain: &Chain,
    input: Option<&Stack>,
    pages: Vec<OutputPage<'_, f32>>,
    format: PageFormat,
    progress: &Progress,
) -> Result<()> {
    let Some(input) = input else {
        return run_band_pass(chain, pages, format, 0, progress, None::<&NoRows>);
    };
    assert!(
        chain.pointwise(),
        "invariant: rows are read through pointwise steps"
    );
    let from = chain.input_format();
    let row_format = PageFormat {
        width: format.width,
        height: 1,
        dtype: DType::F32,
    };
    with_pixel_type!(from.dtype, I => {
        let sources = (0..input.len())
            .map(|p| input.page_in_place::<I>(p))
            .collect::<Option<Vec<_>>>()
            .expect("invariant: every page is mapped in place");
        let width = format.width;
        let read = move |p: usize, y: usize, dst: &mut [f32], buffers: &mut [ImageBuffer; 2]| {
            let row = &sources[p][y * width..(y + 1) * width];
            let row_in = PageFormat { height: 1, ..from };
            chain.apply(
                p,
                y * width,
                Pixels::new(row_in, row),
                PixelsMut::new(row_format, dst),
                buffers,
            )
        };
        run_band_pass(chain, pages, format, 0, progress, Some(&read))
    })
}

/// [`run_sinograms`] over rows `first_row ..` of the images only (one shard of a job's
/// sinogram phase, `scaleout`), read from `source` (the image pass's result, whole float32
/// images) and written into `pages`, which hold those rows of every image (`format.height`
/// of them). Each sinogram is cleaned as in a whole pass; where it is in the image is kept
/// for the pixel-by-pixel steps after the sinogram step. The source is not changed, so the
/// same rows can be done again.
pub fn run_sinogram_rows(
    chain: &Chain,
    source: &[&[f32]],
    pages: Vec<OutputPage<'_, f32>>,
    format: PageFormat,
    first_row: usize,
    progress: &Progress,
) -> Result<()> {
    assert_eq!(source.len(), pages.len(), "invariant: one source per page");
    let width = format.width;
    let read = |p: usize, y: usize, dst: &mut [f32], _: &mut [ImageBuffer; 2]| {
        dst.copy_from_slice(&source[p][y * width..(y + 1) * width]);
        Ok(())
    };
    run_band_pass(chain, pages, format, first_row, progress, Some(&read))
}

/// Where the rows of a band come from when they are not the output's: `read(page, row,
/// into, buffers)`.
trait ReadRow: Fn(usize, usize, &mut [f32], &mut [ImageBuffer; 2]) -> Result<()> + Sync {}
impl<F: Fn(usize, usize, &mut [f32], &mut [ImageBuffer; 2]) -> Result<()> + Sync> ReadRow for F {}

/// The type of "no reader" (the rows are the output's own).
type NoRows = fn(usize, usize, &mut [f32], &mut [ImageBuffer; 2]) -> Result<()>;

fn run_band_pass<R: ReadRow>(
    chain: &Chain,
    pages: Vec<OutputPage<'_, f32>>,
    format: PageFormat,
    first_row: usize,
    progress: &Progress,
    read: Option<&R>,
) -> Result<()> {
    let (width, height) = (format.width, format.height);
    let angles = pages.len();
    let first = chain
        .first_sinogram_step()
        .expect("invariant: a sinogram pass has a sinogram step");
    let steps = chain.sinogram_pass_steps();
    let mut opened = pages
        .into_iter()
        .map(|p| p.open())
        .collect::<Result<Vec<_>>>()?;

    // Enough bands to keep every worker busy, each at most BAND_BYTES.
    let sinogram_bytes = angles * width * 4;
    let for_balance = height.div_ceil(4 * rayon::current_num_threads());
    let band_rows = (BAND_BYTES / sinogram_bytes.max(1))
        .min(for_balance)
        .clamp(1, height.max(1));
    let mut bands: Vec<Vec<&mut [f32]>> = (0..height.div_ceil(band_rows))
        .map(|_| Vec::with_capacity(angles))
        .collect();
    for page in opened.iter_mut() {
        for (band, rows) in bands.iter_mut().zip(page.chunks_mut(band_rows * width)) {
            band.push(rows);
        }
    }

    bands.into_par_iter().enumerate().try_for_each_init(
        || Band::new(chain, first, angles, width),
        |state, (b, mut pages)| {
            check_stops()?;
            let state = state.as_mut().map_err(|e| anyhow::anyhow!("{e:#}"))?;
            let rows = pages[0].len() / width;
            match read {
                Some(read) => state.read(read, first_row + b * band_rows, rows, angles, width)?,
                None => state.gather(&pages, rows, width),
            }
            for r in 0..rows {
                let y = first_row + b * band_rows + r;
                state.clean(chain, first, steps.len(), r, y, angles, width);
                progress.tick();
            }
            state.scatter(&mut pages, rows, width);
            Ok::<(), anyhow::Error>(())
        },
    )?;
    for page in opened {
        page.close()?;
    }
    Ok(())
}

/// One worker's buffers and the states of the pass's sinogram steps.
struct Band {
    /// The band's sinograms, one after another: `buffer[((r * angles) + p) * width + x]`.
    buffer: Vec<f32>,
    /// One row, for the pixel-by-pixel steps (they do not work in place).
    row: Vec<f32>,
    /// For the steps a row read from the input goes through.
    buffers: [ImageBuffer; 2],
    /// Per step of the pass: its worker, for a sinogram step.
    workers: Vec<Option<Box<dyn SinogramWorker>>>,
}

impl Band {
    fn new(chain: &Chain, first: usize, angles: usize, width: usize) -> Result<Band> {
        let workers = chain.steps()[first..]
            .iter()
            .map(|step| step.sinogram().map(|s| s.worker(angles, width)).transpose())
            .collect::<Result<Vec<_>>>()?;
        Ok(Band {
            buffer: Vec::new(),
            row: vec![0.0; width],
            buffers: Default::default(),
            workers,
        })
    }

    /// Copies rows `0..rows` of every page's band into the buffer, as sinograms.
    fn gather(&mut self, pages: &[&mut [f32]], rows: usize, width: usize) {
        let angles = pages.len();
        self.buffer.resize(rows * angles * width, 0.0);
        for (p, page) in pages.iter().enumerate() {
            for r in 0..rows {
                let at = (r * angles + p) * width;
                self.buffer[at..at + width].copy_from_slice(&page[r * width..(r + 1) * width]);
            }
        }
    }

    /// Reads rows `first_row ..` (`rows` of them) of every page into the buffer, as
    /// sinograms, through `read`.
    fn read<R: ReadRow>(
        &mut self,
        read: &R,
        first_row: usize,
        rows: usize,
        angles: usize,
        width: usize,
    ) -> Result<()> {
        self.buffer.resize(rows * angles * width, 0.0);
        for p in 0..angles {
            for r in 0..rows {
                let at = (r * angles + p) * width;
                read(
                    p,
                    first_row + r,
                    &mut self.buffer[at..at + width],
                    &mut self.buffers,
                )?;
            }
        }
        Ok(())
    }

    /// Runs the pass's steps on sinogram `r` of the buffer (row `y` of the images).
    #[allow(clippy::too_many_arguments)]
    fn clean(
        &mut self,
        chain: &Chain,
        first: usize,
        steps: usize,
        r: usize,
        y: usize,
        angles: usize,
        width: usize,
    ) {
        let sinogram = &mut self.buffer[r * angles * width..(r + 1) * angles * width];
        for j in 0..steps {
            match &mut self.workers[j] {
                Some(worker) => worker.apply(sinogram),
                None => {
                    for (p, line) in sinogram.chunks_exact_mut(width).enumerate() {
                        chain.apply_to_row(first + j, p, y * width, line, &mut self.row);
                        line.copy_from_slice(&self.row);
                    }
                }
            }
        }
    }

    /// Copies the buffer's sinograms back into rows `0..rows` of every page's band.
    fn scatter(&self, pages: &mut [&mut [f32]], rows: usize, width: usize) {
        let angles = pages.len();
        for (p, page) in pages.iter_mut().enumerate() {
            for r in 0..rows {
                let at = (r * angles + p) * width;
                page[r * width..(r + 1) * width].copy_from_slice(&self.buffer[at..at + width]);
            }
        }
    }
}
