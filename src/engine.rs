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
    assert_eq!(
        outputs.len(),
        input.len(),
        "invariant: one output page per input page"
    );
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
