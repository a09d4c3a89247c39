//! The stack reader on arbitrary bytes: the IFD walker in memory, then the whole read path of
//! `imfilter::stack` (Source → Stack → every page, mapped in place or decoded).
//!
//! Any panic, abort, hang or huge allocation is a bug: bad input must be an `Err`.

#![no_main]

use imfilter::stack::Stack;
use imfilter::stack::ifd::{TiffFile, tag};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

/// Pages read per input: enough to reach the directory chain's odd cases, few enough to keep
/// thousands of executions a second.
const MAX_PAGES: usize = 16;

/// Pages claiming more pixel bytes than this are not read, because known bugs make the reader
/// allocate what a compressed page's header claims (docs/reliability.md, "Known bugs"); the
/// reliability tests pin them. `IMFILTER_FUZZ_UNGUARDED=1` lifts the guard, to check a fix.
const MAX_PAGE_BYTES: usize = 64 << 20;

const TAGS: [u16; 22] = [
    tag::NEW_SUBFILE_TYPE,
    tag::IMAGE_WIDTH,
    tag::IMAGE_LENGTH,
    tag::BITS_PER_SAMPLE,
    tag::COMPRESSION,
    tag::PHOTOMETRIC,
    tag::IMAGE_DESCRIPTION,
    tag::STRIP_OFFSETS,
    tag::SAMPLES_PER_PIXEL,
    tag::ROWS_PER_STRIP,
    tag::STRIP_BYTE_COUNTS,
    tag::PLANAR_CONFIGURATION,
    tag::SOFTWARE,
    tag::PREDICTOR,
    tag::TILE_WIDTH,
    tag::TILE_LENGTH,
    tag::TILE_OFFSETS,
    tag::TILE_BYTE_COUNTS,
    tag::SAMPLE_FORMAT,
    tag::X_RESOLUTION,
    tag::Y_RESOLUTION,
    tag::RESOLUTION_UNIT,
];

fn guarded() -> bool {
    std::env::var_os("IMFILTER_FUZZ_UNGUARDED").is_none()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = TiffFile::parse(data) {
        for dir in &file.directories {
            for t in TAGS {
                let _ = file.uints(dir, t);
                let _ = file.uint(dir, t, Some(1));
                let _ = file.rationals(dir, t);
                let _ = file.ascii(dir, t);
            }
        }
    }

    let path = common::as_file(data);
    let Ok(stack) = Stack::open(&path) else {
        return;
    };
    if guarded() && common::page_bytes(&stack).is_none_or(|n| n > MAX_PAGE_BYTES) {
        return;
    }
    let _ = stack.description();
    let _ = stack.carried_tags();
    common::read_pages(&stack, MAX_PAGES);
});
