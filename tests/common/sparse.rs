//! Stacks in imfilter's own layout (`stack::write::Layout`), written sparse: the header and
//! directories are real, the pixels are a hole that reads as zeros. Gigabytes cost no disk and
//! no time, and reading them goes through the page cache like real data.

use std::fs::File;
use std::path::Path;

use imfilter::pixel::DType;
use imfilter::stack::PageFormat;
use imfilter::stack::write::{Layout, WriteOptions};

/// Creates `path` holding `pages` images of `side`² `dtype` zeros; returns the file, open for
/// writing pixels at `layout.data_offset`, and its layout.
pub fn sparse_stack(
    path: &Path,
    pages: usize,
    side: usize,
    dtype: DType,
    imagej: bool,
) -> (File, Layout) {
    let format = PageFormat {
        width: side,
        height: side,
        dtype,
    };
    let options = WriteOptions {
        software: "imfilter test".into(),
        imagej,
        ..WriteOptions::default()
    };
    let layout = Layout::new(pages, format, &options);
    let file = File::create(path).expect("create");
    file.set_len(layout.file_len).expect("sparse size");
    layout.write_metadata(&file).expect("metadata");
    (file, layout)
}
