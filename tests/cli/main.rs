//! Black-box tests: the real binary on the fixtures in `fixtures/`, as a user runs it.
//! One test binary with modules, to link once.

mod background;
mod chains;
mod codec;
mod errors;
mod everyday;
mod first_day;
mod fits;
mod hdf5;
mod hostile;
mod job;
mod mask_nan;
mod median;
mod memory;
mod ops;
mod outputs;
mod pipelines;
mod rebin_gaussian;
mod reliability;
mod signals;
#[path = "../common/sparse.rs"]
mod sparse;
mod streams;
mod stripes;
mod support;
mod survey;
mod tiled;
