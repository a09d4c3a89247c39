//! `imfilter info` on arbitrary bytes: `Info::of` must describe the file or return an error,
//! never panic, hang or allocate what a header merely claims.

#![no_main]

use imfilter::info::Info;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let path = common::as_file(data);
    if let Ok(info) = Info::of(&path) {
        // Every field is computed; formatting them touches each once, as `info` prints them.
        std::hint::black_box(format!("{info:?}"));
    }
});
