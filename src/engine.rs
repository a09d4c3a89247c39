//! Dispatching images over the rayon pool: each task is one whole image, read from the input
//! stack (in place when it can be) and written into its own `&mut` output page.

use anyhow::Result;
use rayon::prelude::*;

use crate::interrupt;
use crate::pixel::Pixel;
use crate::progress::Progress;
use crate::stack::Stack;

/// Runs `kernel(input page i, output page i)` for every image, in parallel on the current
/// rayon pool, ticking `progress` per image. Stops at the first error or interrupt; pages
/// already written are then discarded with the temporary output.
pub fn run_pages<I, O, K>(
    input: &Stack,
    outputs: Vec<&mut [O]>,
    kernel: K,
    progress: &Progress,
) -> Result<()>
where
    I: Pixel,
    O: Pixel,
    K: Fn(&[I], &mut [O]) + Sync,
{
    assert_one_output_per_page(input, outputs.len());
    outputs
        .into_par_iter()
        .enumerate()
        .try_for_each_init(Vec::new, |scratch, (index, out)| {
            interrupt::check()?;
            let page = input.page::<I>(index, scratch)?;
            kernel(page, out);
            progress.tick();
            Ok(())
        })
}

/// For filters whose output pixel depends only on the same input pixel and on per-pixel state
/// shared by every image (background correction: the dark and `F − D`). Images go to the
/// workers a few at a time and are walked band by band, so each band of the shared state is
/// read from memory once for the group rather than once per image: that state is as large as
/// two float32 images and does not stay in cache from one image to the next.
pub fn run_pointwise<I, O, K>(
    input: &Stack,
    outputs: Vec<&mut [O]>,
    kernel: K,
    progress: &Progress,
) -> Result<()>
where
    I: Pixel,
    O: Pixel,
    K: Fn(usize, &[I], &mut [O]) + Sync,
{
    /// Pixels per band: the band's shared state (8 bytes a pixel) stays in L2.
    const BAND: usize = 1 << 14;
    assert_one_output_per_page(input, outputs.len());
    // Up to 4 images a group, but enough groups to keep every worker busy.
    let group = (outputs.len() / (2 * rayon::current_num_threads())).clamp(1, 4);
    let mut groups: Vec<(usize, Vec<&mut [O]>)> = Vec::new();
    for (index, out) in outputs.into_iter().enumerate() {
        match groups.last_mut() {
            Some((_, members)) if members.len() < group => members.push(out),
            _ => groups.push((index, vec![out])),
        }
    }
    groups.into_par_iter().try_for_each_init(
        Vec::new,
        |scratch: &mut Vec<Vec<I>>, (first, mut outs)| {
            interrupt::check()?;
            scratch.resize_with(outs.len(), Vec::new);
            let pages = scratch
                .iter_mut()
                .enumerate()
                .map(|(k, scratch)| input.page::<I>(first + k, scratch))
                .collect::<Result<Vec<_>>>()?;
            let len = pages.first().map_or(0, |p| p.len());
            for at in (0..len).step_by(BAND) {
                let end = (at + BAND).min(len);
                for (page, out) in pages.iter().zip(outs.iter_mut()) {
                    kernel(at, &page[at..end], &mut out[at..end]);
                }
            }
            outs.iter().for_each(|_| progress.tick());
            Ok(())
        },
    )
}

fn assert_one_output_per_page(input: &Stack, outputs: usize) {
    assert_eq!(
        outputs,
        input.len(),
        "invariant: one output page per input page"
    );
}
