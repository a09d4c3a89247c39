//! Filters. Each is a pure per-image kernel plus its prepared state (e.g. flat and dark);
//! the `Filter` trait is how the job runner drives any of them. No I/O of the output, no
//! threads and no progress logic in here: `engine` does the dispatching.

pub mod background;
pub mod median;
pub mod neighbourhood;
pub mod outliers;

use anyhow::Result;

use crate::output::PendingOutput;
use crate::pixel::DType;
use crate::progress::Progress;
use crate::stack::{PageFormat, Stack};

pub trait Filter: Sync {
    /// The subcommand name: used in progress lines, summaries and default output names.
    fn name(&self) -> &'static str;

    /// The sample type of the result for an input of `input` type.
    fn output_dtype(&self, input: DType) -> DType;

    /// Refuses inputs the filter cannot process, before any output is created.
    fn check(&self, _input: &PageFormat) -> Result<()> {
        Ok(())
    }

    /// The parameters as recorded in the history sidecar.
    fn parameters(&self) -> serde_json::Value;

    /// Filters every image of `input` into the pages of `output`.
    fn run(&self, input: &Stack, output: &mut PendingOutput, progress: &Progress) -> Result<()>;
}
