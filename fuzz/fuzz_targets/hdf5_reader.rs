//! The HDF5 read path on arbitrary bytes: the HDF5 library opening the file, imfilter's checks
//! of the dataset (shape, type, layout, image_key), and every page read: mapped in place,
//! inflated by imfilter from one-image gzip chunks, or decoded by the library.
//!
//! Any panic or huge allocation in imfilter's code is a bug: bad input must be an `Err`. The
//! HDF5 C library itself is not memory-safe against hostile files (it has had CVEs for crafted
//! files); a crash inside it is reported upstream, and docs/hdf5.md says what was found.

#![no_main]

use imfilter::stack::hdf5::{DatasetPath, Keys, Role, open_spec};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

/// The dataset paths the seeds use (fixtures/hdf5).
const DATASETS: [&str; 9] = [
    "/contiguous",
    "/big_endian",
    "/chunked",
    "/gzip",
    "/frames",
    "/frames_be",
    "/scaled/f64",
    "/entry/data/data",
    "/data",
];

const MAX_PAGES: usize = 8;
const MAX_PAGE_BYTES: usize = 64 << 20;

fuzz_target!(|data: &[u8]| {
    let file = common::as_file(data);
    for dataset in DATASETS {
        let spec = DatasetPath {
            file: file.clone(),
            dataset: dataset.to_string(),
        };
        for role in [Role::Projection, Role::Flat] {
            let Ok(stack) = open_spec(&spec, &Keys::Auto, role) else {
                continue;
            };
            if common::page_bytes(&stack).is_none_or(|n| n > MAX_PAGE_BYTES) {
                continue;
            }
            common::read_pages(&stack, MAX_PAGES);
        }
    }
});
