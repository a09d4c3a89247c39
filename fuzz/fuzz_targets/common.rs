//! What the fuzz targets share: the fuzz input as a file path, without touching the disk, and
//! a stack's pages read as imfilter reads them.
//!
//! `Stack::open` and `Info::of` take a path (they map the file), so each input is written to
//! an anonymous in-memory file (memfd) and opened through `/proc/self/fd/N`: no temporary file
//! is ever left behind, even when the fuzzer is killed.

// Each target takes what it needs of this module.
#![allow(dead_code)]

use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use imfilter::stack::Stack;
use imfilter::with_pixel_type;

struct Memfd {
    file: File,
    path: PathBuf,
}

static MEMFD: OnceLock<Memfd> = OnceLock::new();

/// A path whose file holds exactly `data`.
pub fn as_file(data: &[u8]) -> PathBuf {
    let memfd = MEMFD.get_or_init(|| {
        // SAFETY: memfd_create takes a NUL-terminated name and returns a new descriptor,
        // which `File` then owns.
        let fd = unsafe { libc::memfd_create(c"imfilter-fuzz".as_ptr(), 0) };
        assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
        Memfd {
            file: unsafe { File::from_raw_fd(fd) },
            path: PathBuf::from(format!("/proc/self/fd/{fd}")),
        }
    });
    let mut file = &memfd.file;
    file.set_len(0).expect("memfd truncate");
    std::os::unix::fs::FileExt::write_all_at(file, data, 0).expect("memfd write");
    file.flush().expect("memfd flush");
    // Each input is another file to imfilter, which knows a file rewritten in place by its
    // length and modification time (the HDF5 reader keeps a dataset's chunk table while they
    // stay the same): two inputs of one length can be written within one clock tick.
    static INPUTS: AtomicU64 = AtomicU64::new(0);
    let input = INPUTS.fetch_add(1, Ordering::Relaxed);
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_nanos(input))
        .expect("memfd modification time");
    memfd.path.clone()
}

/// Bytes one page of `stack` takes, when counting them does not overflow.
pub fn page_bytes(stack: &Stack) -> Option<usize> {
    let format = stack.format;
    format
        .width
        .checked_mul(format.height)?
        .checked_mul(format.dtype.bytes())
}

/// Reads the first `max_pages` pages of `stack`: a page may fail to read, but one that reads
/// must have the stack's pixel count.
pub fn read_pages(stack: &Stack, max_pages: usize) {
    let format = stack.format;
    with_pixel_type!(format.dtype, T => {
        let mut scratch: Vec<T> = Vec::new();
        for index in 0..stack.len().min(max_pages) {
            if let Ok(pixels) = stack.page::<T>(index, &mut scratch) {
                assert_eq!(pixels.len(), format.width * format.height, "page {index} has the wrong length");
            }
        }
    });
}
