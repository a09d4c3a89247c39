//! Per-image kernels: pure functions from one input page to one output page. No I/O, no
//! threads, no progress here; `engine` does the dispatching.

pub mod median;
pub mod outliers;
