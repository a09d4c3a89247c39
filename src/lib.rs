//! imfilter: batch filters for stacks of TIFF projections (neutron and X-ray tomography).
//!
//! The output stack is one uncompressed TIFF whose pixel block is memory-mapped writable and
//! split into one `&mut` slice per image; rayon hands whole images to workers, which read their
//! input page (mapped in place where the file allows it) and write their output page in place.
//! A directory of single-image files is mapped one file at a time, by the worker whose image it
//! holds, so tens of thousands of files stay within the system's limit on maps.

pub mod cli;
pub mod engine;
pub mod filters;
pub mod history;
pub mod info;
pub mod interrupt;
pub mod job;
pub mod memory;
pub mod output;
pub mod pipeline;
pub mod pixel;
pub mod preview;
pub mod progress;
pub mod run;
pub mod scaleout;
pub mod stack;
