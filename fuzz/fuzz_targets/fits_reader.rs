//! The FITS reader on arbitrary bytes: the header walk in memory (`stack::fits::pages`), every
//! page of a file with scaled pages converted, then the whole read path of `imfilter::stack`
//! (Source → Stack → every page).
//!
//! Any panic, abort, hang or huge allocation is a bug: bad input must be an `Err`. The seeds in
//! `fuzz/corpus/fits_reader/` are astropy's files from `fixtures/fits/`; libFuzzer's mutations
//! of their ASCII cards reach the header parser's cases far sooner than random bytes would.

#![no_main]

use imfilter::stack::Stack;
use imfilter::stack::fits;
use imfilter::stack::source::PageDecoder;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

/// Pages read per input, as for the TIFF reader.
const MAX_PAGES: usize = 16;

/// Pages are read only up to this size: a valid header may claim a large image that the file
/// backs (the fuzzer's inputs are at most 64 KiB, so it cannot), and reading it is not a bug.
const MAX_PAGE_BYTES: usize = 64 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok((pages, Some(scaled))) = fits::pages(data) {
        for (index, page) in pages.iter().enumerate().take(MAX_PAGES) {
            let Some(bytes) = page.dtype().ok().and_then(|d| {
                let pixels = page.width.checked_mul(page.height)?;
                usize::try_from(pixels).ok()?.checked_mul(d.bytes())
            }) else {
                continue;
            };
            if bytes <= MAX_PAGE_BYTES {
                let mut out = vec![0u8; bytes];
                let _ = scaled.decode(data, index, &mut out);
            }
        }
    }

    let path = common::as_file(data);
    let Ok(stack) = Stack::open(&path) else {
        return;
    };
    if common::page_bytes(&stack).is_none_or(|n| n > MAX_PAGE_BYTES) {
        return;
    }
    common::read_pages(&stack, MAX_PAGES);
});
