//! Dispatching images over the rayon pool: each task is one whole image (or, for pointwise
//! chains, a few whole images), read from the input stack (in place when it can be), carried
//! through every step of a chain in the worker's own buffers, and written into its own output
//! page (`&mut` slices of the mapped output, or a directory's files, each mapped while its
//! image is computed). One read of the input, one write of the output, whatever the chain.

mod sinograms;

pub use sinograms::{run_sinogram_rows, run_sinograms};

use anyhow::Result;
use rayon::prelude::*;

use crate::filters::{Chain, ImageBuffer, Pixels, PixelsMut};
use crate::interrupt;
use crate::output::{OutputPage, PendingOutput};
use crate::pixel::Pixel;
use crate::progress::Progress;
use crate::stack::Stack;
use crate::stack::mapped::{self, Writeback};
use crate::with_pixel_type;

/// Carries every image of `input` through `chain`'s image pass (every step, or up to its
/// first sinogram step: see [`run_sinograms`]) into the pages of `output`, in parallel on
/// the current rayon pool. A chain whose steps are all pointwise goes band by band (see
/// `pointwise_from`); any other, image by image, each worker ping-ponging between two
/// buffers of its own and writing the last step straight into its output page. `written`
/// sees each output page's bytes once the page is finished.
pub fn run_chain(
    input: &Stack,
    chain: &Chain,
    output: &mut PendingOutput,
    progress: &Progress,
    writeback: Option<&Writeback>,
) -> Result<()> {
    let to = chain.image_pass_format();
    with_pixel_type!(to.dtype, O => {
        let pages = output.pages_mut::<O>(to.pixels());
        assert_one_output_per_page(input, pages.len());
        run_chain_writing_back(input, chain, 0, pages, progress, &|_, _| (), writeback)
    })
}

/// [`run_chain`] for images `first .. first + pages.len()` of `input`, each finished page
/// sent to the disk early through `writeback` (none: all at once, by the commit's sync). The
/// pages go in batches of a few per worker, each batch sent whole while the workers wait (see
/// `mapped::Writeback` for why not as they finish). A shard of a job calls it directly.
pub fn run_chain_writing_back<O: Pixel>(
    input: &Stack,
    chain: &Chain,
    first: usize,
    pages: Vec<OutputPage<'_, O>>,
    progress: &Progress,
    written: &(dyn Fn(usize, &[O]) + Sync),
    writeback: Option<&Writeback>,
) -> Result<()> {
    let Some(writeback) = writeback else {
        return run_chain_pages(input, chain, first, pages, progress, written);
    };
    let batch = 4 * rayon::current_num_threads();
    let end = first + pages.len();
    let mut pages = pages.into_iter();
    let mut at = first;
    while at < end {
        let some: Vec<_> = pages.by_ref().take(batch).collect();
        let n = some.len();
        // Consecutive pages of one map: one span from the first's start to the last's end.
        let span = some.first().and_then(OutputPage::span);
        let span = span.zip(some.last().and_then(OutputPage::span));
        run_chain_pages(input, chain, at, some, progress, written)?;
        if let Some((first_page, last_page)) = span {
            writeback.send(first_page.start..last_page.end);
        }
        at += n;
    }
    Ok(())
}

/// [`run_chain`] for images `first .. first + pages.len()` of `input` only, into `pages`
/// (through [`run_chain_writing_back`], all of a run or one shard of a job). Each image keeps
/// its index in the whole stack, which a step may depend on (flats interpolated along the
/// scan). `written(index, page)` sees each finished page on its worker while the page is
/// still in cache (a shard's checksums).
fn run_chain_pages<O: Pixel>(
    input: &Stack,
    chain: &Chain,
    first: usize,
    pages: Vec<OutputPage<'_, O>>,
    progress: &Progress,
    written: &(dyn Fn(usize, &[O]) + Sync),
) -> Result<()> {
    assert!(
        first + pages.len() <= input.len() && O::DTYPE == chain.image_pass_format().dtype,
        "invariant: the pages are images of the stack, of the image pass's type"
    );
    let (from, to) = (chain.input_format(), chain.image_pass_format());
    with_pixel_type!(from.dtype, I => {
        let carry = |buffers: &mut [ImageBuffer; 2], index: usize, at: usize, i: &[I], o: &mut [O]| {
                chain.apply(index, at, Pixels::new(from, i), PixelsMut::new(to, o), buffers)
            };
            if chain.pointwise() {
                pointwise_from::<I, O, _, _>(
                    input,
                    first,
                    pages,
                    Default::default,
                    carry,
                    progress,
                    written,
                )
            } else {
                pages_from::<I, O, _, _>(
                    input,
                    first,
                    pages,
                    Default::default,
                    |buffers, index, i, o| carry(buffers, index, 0, i, o),
                    progress,
                    written,
                )
            }
    })
}

/// The survey step `k` of `chain` needs (see `Op::needs_survey`): every image of `input`
/// carried through the steps before it, in parallel, and what step `k` takes from each, in
/// page order.
pub fn survey(
    input: &Stack,
    chain: &Chain,
    k: usize,
    progress: &Progress,
) -> Result<Vec<Vec<f64>>> {
    survey_pages(input, chain, k, 0..input.len(), progress)
}

/// [`survey`] of the images in `range` only (one shard of a job's survey phase).
pub fn survey_pages(
    input: &Stack,
    chain: &Chain,
    k: usize,
    range: std::ops::Range<usize>,
    progress: &Progress,
) -> Result<Vec<Vec<f64>>> {
    let from = chain.input_format();
    with_pixel_type!(from.dtype, I => {
        range
            .into_par_iter()
            .map_init(
                || (Vec::<I>::new(), <[ImageBuffer; 2]>::default()),
                |(scratch, buffers), index| {
                    check_stops()?;
                    let page = input.page::<I>(index, scratch)?;
                    let found = chain.survey(k, index, Pixels::new(from, &page), buffers)?;
                    progress.tick();
                    Ok(found)
                },
            )
            .collect()
    })
}

/// Runs `kernel(input page i, output page i)` for every image, in parallel on the current
/// rayon pool, ticking `progress` per image. Stops at the first error or interrupt; pages
/// already written are then discarded with the temporary output.
pub fn run_pages<I, O, K>(
    input: &Stack,
    outputs: Vec<OutputPage<'_, O>>,
    kernel: K,
    progress: &Progress,
) -> Result<()>
where
    I: Pixel,
    O: Pixel,
    K: Fn(&[I], &mut [O]) + Sync,
{
    assert_one_output_per_page(input, outputs.len());
    pages_from(
        input,
        0,
        outputs,
        || (),
        |(), _, i, o| {
            kernel(i, o);
            Ok(())
        },
        progress,
        &|_, _| (),
    )
}

/// As [`run_pages`], for images `first ..` of `input` (one per output page), with per-worker
/// state `S` made by `init` (scratch buffers); the kernel is also told the image's index.
fn pages_from<I, O, S, K>(
    input: &Stack,
    first: usize,
    outputs: Vec<OutputPage<'_, O>>,
    init: impl Fn() -> S + Sync + Send,
    kernel: K,
    progress: &Progress,
    written: &(dyn Fn(usize, &[O]) + Sync),
) -> Result<()>
where
    I: Pixel,
    O: Pixel,
    K: Fn(&mut S, usize, &[I], &mut [O]) -> Result<()> + Sync,
{
    outputs.into_par_iter().enumerate().try_for_each_init(
        || (Vec::new(), init()),
        |(scratch, state), (index, out)| {
            let index = first + index;
            check_stops()?;
            let page = input.page::<I>(index, scratch)?;
            let mut out = out.open()?;
            kernel(state, index, &page, &mut out)?;
            written(index, &out);
            out.close()?;
            progress.tick();
            Ok(())
        },
    )
}

/// For chains whose output pixel depends only on the same input pixel and on per-pixel state
/// shared by every image (background correction: the dark and `F − D`). Images go to the
/// workers a few at a time and are walked band by band, so each band of the shared state is
/// read from memory once for the group rather than once per image: that state is as large as
/// two float32 images and does not stay in cache from one image to the next. `kernel(state,
/// image index, at, band of input, band of output)` gets the band's first pixel index `at`.
/// Images `first ..` of `input`, one per output page.
fn pointwise_from<I, O, S, K>(
    input: &Stack,
    first: usize,
    outputs: Vec<OutputPage<'_, O>>,
    init: impl Fn() -> S + Sync + Send,
    kernel: K,
    progress: &Progress,
    written: &(dyn Fn(usize, &[O]) + Sync),
) -> Result<()>
where
    I: Pixel,
    O: Pixel,
    K: Fn(&mut S, usize, usize, &[I], &mut [O]) -> Result<()> + Sync,
{
    /// Pixels per band: the band's shared state (8 bytes a pixel) stays in L2.
    const BAND: usize = 1 << 14;
    // Up to 4 images a group, but enough groups to keep every worker busy. Images that must
    // be decoded go one at a time: a worker then holds one decoded image, not four, which is
    // what `memory::fitting_workers` was told.
    let group = match input.read_buffer_bytes() {
        0 => (outputs.len() / (2 * rayon::current_num_threads())).clamp(1, 4),
        _ => 1,
    };
    outputs
        .into_par_iter()
        .enumerate()
        .map(|(index, out)| (first + index, out))
        .chunks(group)
        .try_for_each_init(
            || (Vec::<Vec<I>>::new(), init()),
            |(scratch, state), members: Vec<(usize, OutputPage<'_, O>)>| {
                check_stops()?;
                scratch.resize_with(members.len(), Vec::new);
                let pages = members
                    .iter()
                    .zip(scratch.iter_mut())
                    .map(|((index, _), scratch)| input.page::<I>(*index, scratch))
                    .collect::<Result<Vec<_>>>()?;
                let indices: Vec<usize> = members.iter().map(|(index, _)| *index).collect();
                let mut outs = members
                    .into_iter()
                    .map(|(_, out)| out.open())
                    .collect::<Result<Vec<_>>>()?;
                let len = pages.first().map_or(0, |p| p.len());
                for at in (0..len).step_by(BAND) {
                    let end = (at + BAND).min(len);
                    for ((page, out), &index) in pages.iter().zip(outs.iter_mut()).zip(&indices) {
                        kernel(state, index, at, &page[at..end], &mut out[at..end])?;
                    }
                }
                for (out, index) in outs.into_iter().zip(indices) {
                    written(index, &out);
                    out.close()?;
                    progress.tick();
                }
                Ok(())
            },
        )
}

/// `Err` once a stop was asked for or a mapped file was cut short: checked before each task.
fn check_stops() -> Result<()> {
    interrupt::check()?;
    mapped::check_cut_short()?;
    Ok(())
}

fn assert_one_output_per_page(input: &Stack, outputs: usize) {
    assert_eq!(
        outputs,
        input.len(),
        "invariant: one output page per input page"
    );
}
