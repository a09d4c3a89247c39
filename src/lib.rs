//! imfilter: batch filters for stacks of TIFF projections (neutron and X-ray tomography).
//!
//! The output stack is one uncompressed TIFF whose pixel block is memory-mapped writable and
//! split into one `&mut` slice per image; rayon hands whole images to workers, which read their
//! input page (mapped in place where the file allows it) and write their output page in place.

pub mod filters;
pub mod pixel;
pub mod stack;
pub mod engine;
pub mod interrupt;
pub mod output;
pub mod progress;
pub mod cli;
pub mod info;
pub mod job;
pub mod run;
