//! The `unsafe` of memory maps of input and output files (the only other `unsafe` in imfilter
//! calls the median's `#[target_feature]` kernels, `filters::median`).
//!
//! # Invariants
//! 1. **Inputs** are mapped read-only and are never written through the map. Mapping is
//!    undefined behaviour in Rust's model if another process changes or truncates the file
//!    while it is mapped; imfilter cannot prevent that (no mandatory locks on Linux), so the
//!    contract is documented for users: do not rewrite an input while imfilter reads it.
//!    Every slice handed out is bounds-checked against the mapped length first.
//! 2. **Outputs** are temporary files imfilter itself created with a random name (O_EXCL),
//!    so no other process knows them; or a job's output (`scaleout`), which the job's shards,
//!    each a process of its own, write at once, each into bytes of its own (invariant 3).
//!    Their full length is allocated on disk (`fallocate`) *before* they are mapped: every
//!    mapped page is backed by a block, so a store can never fault with SIGBUS for a full
//!    disk or a hole past end-of-file.
//! 3. A multi-page output's writable map is split into one `&mut [T]` per page with
//!    `chunks_exact_mut`, so the borrow checker — not a comment — proves that no two workers
//!    can touch the same image. A job's shard maps only its own images' bytes; a sinogram
//!    shard, which writes a band of rows of every image while other shards write the other
//!    bands of the same pages, maps them as a [`BandMap`], which hands out `&mut` slices of
//!    its own band only, never of whole pages, so no reference of ours ever covers a
//!    byte another process writes. A directory's output file is mapped only by the worker holding
//!    the one `&mut` to its `OutputFile` (`output::OutputPage`), after checking that its path
//!    still names the file imfilter created. Casting bytes to `[T]` goes through `bytemuck`,
//!    which checks size and alignment (`T: Pod`); the data block starts on a page boundary
//!    (see `stack::write`).
//! 4. **A file cut short under a map** (acquisition software truncating and rewriting an
//!    input, or another program truncating a temporary output) makes the next read of a page
//!    past its new end raise SIGBUS, which by default kills the process with no message and
//!    its temporary files on disk. Every map here is entered in a lock-free table that the
//!    SIGBUS handler reads; for a fault inside one of them, the handler replaces the rest of
//!    that map, from the faulting page on, with zero-filled private memory (`mmap` with
//!    `MAP_FIXED`, a system call and so safe in a signal handler), records which map it was,
//!    and returns, so the faulting read sees zeros. Those zeros never reach an output path:
//!    workers check [`check_cut_short`] between images, the commit checks it before the
//!    rename, and any error that follows names the file that was cut short instead. A SIGBUS
//!    outside our maps keeps its default action. Written from the Linux `sigaction(2)`
//!    (SA_SIGINFO, `si_addr`) and `mmap(2)` (MAP_FIXED replaces existing pages) pages.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use memmap2::{Mmap, MmapMut, MmapOptions};

use crate::pixel::Pixel;

/// A whole input file, mapped read-only.
pub struct ReadMap {
    // Declared first so it is dropped first: a map leaves the fault table before it is unmapped.
    _entry: Option<Entry>,
    map: Option<Mmap>,
}

impl ReadMap {
    /// Maps `file`, which is the input `name` (for the message if it is cut short).
    pub fn open(file: &File, name: &Path) -> io::Result<ReadMap> {
        // mmap(2) refuses a zero length; an empty file is still a valid (empty) byte slice,
        // and the TIFF parser reports it as such.
        if file.metadata()?.len() == 0 {
            return Ok(ReadMap {
                _entry: None,
                map: None,
            });
        }
        // SAFETY: read-only shared map of a file we never write through; invariant 1 above.
        let map = unsafe { MmapOptions::new().map(file)? };
        Ok(ReadMap {
            _entry: Entry::new(map.as_ptr() as usize, map.len(), Some(name.to_path_buf())),
            map: Some(map),
        })
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

/// A byte range of an output file, mapped writable.
pub struct WriteMap {
    _entry: Option<Entry>,
    map: MmapMut,
    /// Where the map starts in its file.
    offset: u64,
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
        // SAFETY: the file is our temporary file, preallocated to cover the range (invariant
        // 2); nothing else writes it but a job's other shards, into bytes no reference handed
        // out from this map covers (invariant 3).
        let mut map = unsafe { MmapOptions::new().offset(offset).len(len).map_mut(file)? };
        Ok(WriteMap {
            _entry: Entry::new(map.as_mut_ptr() as usize, map.len(), None),
            map,
            offset,
        })
    }

    /// What sends this map's finished pages to the disk early ([`Writeback`]); `file` is the
    /// file it maps.
    pub fn writeback(&self, file: &File) -> io::Result<Writeback> {
        Ok(Writeback {
            file: file.try_clone()?,
            start: self.map.as_ptr() as usize,
            len: self.map.len(),
            offset: self.offset,
        })
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

/// A writable map of pages that other processes write at the same time, each a band of rows
/// of every page (a sinogram shard's output): it hands out slices of its own band of each
/// page only, never whole pages, which [`WriteMap`] would (invariant 3).
pub struct BandMap(WriteMap);

impl BandMap {
    /// Maps `len` bytes at `offset` of an allocated file, as [`WriteMap::new`].
    pub fn new(file: &File, offset: u64, len: usize) -> io::Result<BandMap> {
        WriteMap::new(file, offset, len).map(BandMap)
    }

    /// One `&mut` slice per page of `page_len` pixels, of the pixels `band` of each page only
    /// (a sinogram shard's rows): other processes write the rest of every page (invariant 3).
    pub fn bands_mut<T: Pixel>(&mut self, page_len: usize, band: Range<usize>) -> Vec<&mut [T]> {
        let size = size_of::<T>();
        let base = self.0.map.as_mut_ptr();
        assert!(
            band.start <= band.end
                && band.end <= page_len
                && (base as usize).is_multiple_of(align_of::<T>()),
            "invariant: a band of a page, in a map aligned for its pixels"
        );
        // Checked: the offsets below stay within the map only if this product did not wrap.
        let page_bytes = page_len
            .checked_mul(size)
            .expect("invariant: a page's size fits in memory");
        let pages = match page_bytes {
            0 => 0,
            page_bytes => self.0.map.len() / page_bytes,
        };
        (0..pages)
            .map(|p| {
                // SAFETY: page p's band lies inside the map (p < pages, band.end <=
                // page_len), is aligned (the base is, and the offset is whole pixels), and
                // the bands of different pages are disjoint; each borrows `self` mutably for
                // as long as it lives, so nothing else of ours reads or writes those bytes.
                unsafe {
                    std::slice::from_raw_parts_mut(
                        base.add((p * page_len + band.start) * size).cast::<T>(),
                        band.len(),
                    )
                }
            })
            .collect()
    }
}

/// Sends the pages of a map to the disk as they are finished, so that the `fsync` before a
/// durable commit waits only for the last of them. Without it nothing is written back until
/// the kernel's dirty threshold (a tenth of memory) is reached, and a result smaller than that
/// (a shard, or a whole run on a large machine) is written only when the commit waits for it:
/// the disk idles while the images are computed, then the CPU while the disk works
/// (docs/benchmarks.md, section 11).
///
/// Each batch of finished pages, consecutive in the map, is sent whole ([`Writeback::send`]),
/// between batches while the workers wait. Sending a page makes the kernel write-protect it in
/// every thread's page tables, and while other threads run that is an interrupt to each of
/// their CPUs per 4 KiB page: sent from the workers as they went, it made a shard 3 times
/// slower (6 s of system time instead of 1).
pub struct Writeback {
    /// A descriptor of its own: the file stays open as long as this does.
    file: File,
    /// The map's first byte's address and length, to tell which bytes are its own.
    start: usize,
    len: usize,
    offset: u64,
}

impl Writeback {
    /// Starts writing the map's bytes at addresses `span` (pages just finished, no longer
    /// being stored to) to the disk, if they lie in this map. Advice: on an error the final
    /// `fsync` writes them.
    pub fn send(&self, span: Range<usize>) {
        let at = span.start.wrapping_sub(self.start);
        if span.start <= span.end && at < self.len && at + span.len() <= self.len {
            let _ = start_writeback(&self.file, self.offset + at as u64, span.len() as u64);
        }
    }
}

/// Starts writing to disk the dirty pages of `file` in `offset..offset + len`, without waiting
/// for them (`sync_file_range(SYNC_FILE_RANGE_WRITE)`): a later `fsync` then waits only for
/// what was written since. Pages written through a shared map are dirty in the page cache
/// from their first store, so this reaches them too.
fn start_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let offset =
        libc::off64_t::try_from(offset).map_err(|_| io::Error::other("offset too large"))?;
    let len = libc::off64_t::try_from(len).map_err(|_| io::Error::other("length too large"))?;
    // SAFETY: sync_file_range only uses the descriptor number, which `file` keeps open, and
    // reads no memory of ours.
    let done = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
    if done == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
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

// ---------------------------------------------------------------------------------------------
// A file cut short under a map (invariant 4).

/// How many maps can be in the table at once: every kept input file, plus a few per worker
/// (a directory's files are mapped only while read or written). A map that finds no free slot
/// works as before the table existed: a fault in it ends the process.
const SLOTS: usize = 4096;

/// One map: its first byte and length. Free while `len` is 0; claimed by setting `start`.
struct Slot {
    start: AtomicUsize,
    len: AtomicUsize,
}

static TABLE: [Slot; SLOTS] = [const {
    Slot {
        start: AtomicUsize::new(0),
        len: AtomicUsize::new(0),
    }
}; SLOTS];

/// 1 + the slot of the first map that was cut short; 0 while none was.
static CUT_SHORT: AtomicUsize = AtomicUsize::new(0);

/// The system's page size, read when the handler is installed.
static PAGE: AtomicUsize = AtomicUsize::new(4096);

/// Which file each occupied slot maps (`None`: a temporary output). Read and written only
/// outside the handler.
static NAMES: Mutex<BTreeMap<usize, Option<PathBuf>>> = Mutex::new(BTreeMap::new());

/// The file of the map that was cut short, kept when that map is dropped and its slot reused.
static CUT_SHORT_NAME: Mutex<Option<Option<PathBuf>>> = Mutex::new(None);

/// A map's place in the table, given up when dropped.
struct Entry(usize);

impl Entry {
    fn new(start: usize, len: usize, name: Option<PathBuf>) -> Option<Entry> {
        if len == 0 {
            return None;
        }
        let slot = TABLE.iter().position(|s| {
            s.start
                .compare_exchange(0, start, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })?;
        lock(&NAMES).insert(slot, name);
        // Last: from here the handler may match it.
        TABLE[slot].len.store(len, Ordering::Release);
        Some(Entry(slot))
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let slot = &TABLE[self.0];
        slot.len.store(0, Ordering::Release);
        let name = lock(&NAMES).remove(&self.0);
        if CUT_SHORT.load(Ordering::Acquire) == self.0 + 1 {
            lock(&CUT_SHORT_NAME).get_or_insert(name.flatten());
        }
        slot.start.store(0, Ordering::Release);
    }
}

/// A poisoned lock still holds a usable table: no code here panics while holding it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A mapped file that was cut short while imfilter read or wrote it.
#[derive(Debug, thiserror::Error)]
pub enum CutShort {
    #[error(
        "{}: the file changed while imfilter was reading it (it was cut short, as when \
         acquisition software truncates and rewrites it); the output was not written",
        .0.display()
    )]
    Input(PathBuf),
    #[error(
        "a temporary output file was cut short by another program while imfilter wrote it; \
         the output was not written"
    )]
    Output,
}

/// The map that was cut short, if one was.
pub fn cut_short() -> Option<CutShort> {
    let slot = CUT_SHORT.load(Ordering::Acquire).checked_sub(1)?;
    let name = lock(&CUT_SHORT_NAME)
        .clone()
        .or_else(|| lock(&NAMES).get(&slot).cloned())
        .flatten();
    Some(name.map_or(CutShort::Output, CutShort::Input))
}

/// `Err` once any mapped file was cut short: checked between images and before a commit.
pub fn check_cut_short() -> Result<(), CutShort> {
    cut_short().map_or(Ok(()), Err)
}

/// Routes SIGBUS to the handler below (invariant 4).
pub fn install_cut_short_handler() -> io::Result<()> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if let Ok(page) = usize::try_from(page)
        && page.is_power_of_two()
    {
        PAGE.store(page, Ordering::Relaxed);
    }
    // SAFETY: a zeroed sigaction is a valid value; the handler has the SA_SIGINFO signature and
    // is async-signal-safe (atomics and system calls only).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_bus_error as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

extern "C" fn on_bus_error(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t with SA_SIGINFO; si_addr is the faulting
    // address for SIGBUS.
    let addr = unsafe { (*info).si_addr() } as usize;
    for (i, slot) in TABLE.iter().enumerate() {
        let len = slot.len.load(Ordering::Acquire);
        let start = slot.start.load(Ordering::Acquire);
        if len == 0 || addr < start || addr - start >= len {
            continue;
        }
        let page = PAGE.load(Ordering::Relaxed);
        let from = addr & !(page - 1);
        let to = (start + len).next_multiple_of(page);
        // SAFETY: [from, to) lies within this map's own pages (the map covers whole pages from
        // below `start` to past `start + len`); replacing them with private zeros changes only
        // what reads of the cut-short file see, and the map's munmap later removes them too.
        let replaced = unsafe {
            libc::mmap(
                from as *mut libc::c_void,
                to - from,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if replaced != libc::MAP_FAILED {
            let _ = CUT_SHORT.compare_exchange(0, i + 1, Ordering::AcqRel, Ordering::Relaxed);
            return;
        }
        break;
    }
    // Not one of our maps, or it could not be patched: the default action ends the process
    // when the faulting access is retried.
    // SAFETY: signal(2) is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGBUS, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_band_map_writes_its_band_of_each_page_and_nothing_else() {
        let file = tempfile::tempfile().expect("file");
        // Three pages of 4 float32 pixels.
        preallocate(&file, 48).expect("allocate");
        let mut map = BandMap::new(&file, 0, 48).expect("map");
        let bands = map.bands_mut::<f32>(4, 1..3);
        assert_eq!(bands.len(), 3);
        for (p, band) in bands.into_iter().enumerate() {
            assert_eq!(band.len(), 2);
            band.fill(p as f32 + 1.0);
        }
        drop(map);
        let mut bytes = vec![0u8; 48];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut bytes, 0).expect("read");
        let pixels: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(
            pixels,
            [0., 1., 1., 0., 0., 2., 2., 0., 0., 3., 3., 0.],
            "the band of each page, the rest untouched"
        );
    }

    #[test]
    #[should_panic(expected = "invariant")]
    fn a_band_past_its_page_is_refused() {
        let file = tempfile::tempfile().expect("file");
        preallocate(&file, 48).expect("allocate");
        let mut map = BandMap::new(&file, 0, 48).expect("map");
        let _ = map.bands_mut::<f32>(4, 3..5);
    }
}
