//! The only `unsafe` in imfilter: memory maps of input and output files.
//!
//! # Invariants
//! 1. **Inputs** are mapped read-only and are never written through the map. Mapping is
//!    undefined behaviour in Rust's model if another process changes or truncates the file
//!    while it is mapped; imfilter cannot prevent that (no mandatory locks on Linux), so the
//!    contract is documented for users: do not rewrite an input while imfilter reads it.
//!    Every slice handed out is bounds-checked against the mapped length first.
//! 2. **Outputs** are temporary files imfilter itself created with a random name (O_EXCL),
//!    so no other process knows them. Their full length is allocated on disk (`fallocate`)
//!    *before* they are mapped: every mapped page is backed by a block, so a store can never
//!    fault with SIGBUS for a full disk or a hole past end-of-file.
//! 3. A multi-page output's writable map is split into one `&mut [T]` per page with
//!    `chunks_exact_mut`, so the borrow checker — not a comment — proves that no two workers
//!    can touch the same image. A directory's output file is mapped only by the worker holding
//!    the one `&mut` to its `OutputFile` (`output::OutputPage`), after checking that its path
//!    still names the file imfilter created. Casting bytes to `[T]` goes through `bytemuck`,
//!    which checks size and alignment (`T: Pod`); the data block starts on a page boundary
//!    (see `stack::write`).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use memmap2::{Mmap, MmapMut, MmapOptions};

use crate::pixel::Pixel;

/// A whole input file, mapped read-only.
pub struct ReadMap {
    map: Option<Mmap>,
}

impl ReadMap {
    pub fn open(file: &File) -> io::Result<ReadMap> {
        // mmap(2) refuses a zero length; an empty file is still a valid (empty) byte slice,
        // and the TIFF parser reports it as such.
        if file.metadata()?.len() == 0 {
            return Ok(ReadMap { map: None });
        }
        // SAFETY: read-only shared map of a file we never write through; invariant 1 above.
        let map = unsafe { MmapOptions::new().map(file)? };
        Ok(ReadMap { map: Some(map) })
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

/// A byte range of an output file, mapped writable.
pub struct WriteMap {
    map: MmapMut,
}

impl WriteMap {
    /// Maps `len` bytes at `offset` of a file that is already allocated to at least
    /// `offset + len` bytes (invariant 2).
    pub fn new(file: &File, offset: u64, len: usize) -> io::Result<WriteMap> {
        let file_len = file.metadata()?.len();
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > file_len)
        {
            return Err(io::Error::other(
                "invariant: output is mapped only after it is allocated to full size",
            ));
        }
        // SAFETY: the file is our private temporary file, preallocated to cover the range
        // (invariant 2); nothing else maps or writes it.
        let map = unsafe { MmapOptions::new().offset(offset).len(len).map_mut(file)? };
        Ok(WriteMap { map })
    }

    /// One disjoint `&mut` slice per page of `page_len` pixels (invariant 3).
    pub fn pages_mut<T: Pixel>(&mut self, page_len: usize) -> Vec<&mut [T]> {
        if self.map.is_empty() || page_len == 0 {
            return Vec::new();
        }
        let pixels: &mut [T] = bytemuck::cast_slice_mut(&mut self.map[..]);
        pixels.chunks_exact_mut(page_len).collect()
    }

    /// The whole map as one page of pixels.
    pub fn pixels_mut<T: Pixel>(&mut self) -> &mut [T] {
        bytemuck::cast_slice_mut(&mut self.map[..])
    }

    /// The mapped bytes, for writing them elsewhere once every page is done.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }
}

/// Reserves a file's blocks up to `len` bytes (invariant 2), so a full disk or a file-size
/// limit is an error before any pixel is computed, never a SIGBUS while writing through a map.
pub fn preallocate(file: &File, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    if len == 0 {
        return Ok(());
    }
    // SAFETY: posix_fallocate only uses the descriptor number, which `file` keeps open.
    // It returns the error number rather than setting errno.
    match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) } {
        0 => Ok(()),
        err => Err(io::Error::from_raw_os_error(err)),
    }
}
