//! Chunks of one image each, filtered by gzip and shuffle only (or by nothing), read straight
//! from the mapped file and decoded by imfilter, on every worker at once.
//!
//! Through the library, images are decoded one at a time (its lock; see the parent module);
//! but one image per chunk, gzip and shuffle is how most detector software and h5py users
//! write a scan, and both filters are simple and documented: gzip is a zlib stream (RFC 1950,
//! `H5Z_filter_deflate` calls zlib's `compress2`), shuffle stores byte 0 of every sample, then
//! byte 1 of every sample, and so on (`H5Z_filter_shuffle`). So the library is asked once, when
//! the file is opened, where each chunk is and which filters it skipped (`H5Dget_chunk_info`),
//! and each worker then inflates and unshuffles its own image with no call into the library.
//! That walk of the chunk index is done once per dataset in a process ([`walked`]), however
//! many times the dataset is opened.
//! Anything else (several images per chunk, chunks split within an image, other filters,
//! chunks not all written) is left to the library.

use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, PoisonError};

use super::Dataset3;
use crate::stack::ifd::ByteOrder;
use crate::stack::source::PageDecoder;
use crate::stack::stamp::FileStamp;

/// `H5Dget_chunk_info` walks the chunk index up to the chunk asked for, so asking about every
/// chunk costs time quadratic in their number: measured on the 2-core machine, 0.2 s for 4,000
/// chunks, 3 s for 16,000. Past this many the library decodes instead, one image at a time.
const MAX_CHUNKS: usize = 8_192;

/// A filter of the pipeline imfilter undoes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    Deflate,
    Shuffle,
}

/// One stored chunk: where, how long, and the filters it skipped (bit i: filter i).
#[derive(Debug, Clone, Copy)]
struct Chunk {
    offset: u64,
    size: u64,
    skipped: u32,
}

pub(crate) struct DirectChunks {
    name: String,
    /// In pipeline order (as written); undone in reverse.
    filters: Vec<Filter>,
    /// One per image of the dataset, in image order.
    chunks: Arc<[Chunk]>,
    /// Dataset index of each page.
    images: Vec<usize>,
    sample_bytes: usize,
    byte_order: ByteOrder,
    /// The buffers shuffled chunks are inflated into before they are unshuffled into their
    /// page: one per worker decoding at the time, kept for its next page rather than an image
    /// allocated (mapped and faulted in afresh) per page, and freed with the stack.
    inflated: Mutex<Vec<Vec<u8>>>,
}

impl DirectChunks {
    /// Where each of its pages lies in the file, `(offset, page_bytes)`, when its chunks are
    /// stored as they are (no filter) and each holds exactly its image: such pages are plain
    /// runs of the file, read like a contiguous dataset's. `None` otherwise.
    pub(super) fn plain_runs(&self, page_bytes: u64) -> Option<Vec<(u64, u64)>> {
        if !self.filters.is_empty() || self.chunks.iter().any(|c| c.size != page_bytes) {
            return None;
        }
        Some(
            self.images
                .iter()
                .map(|&i| (self.chunks[i].offset, page_bytes))
                .collect(),
        )
    }

    /// The direct reader for `dataset`, when it is stored so that one applies (see the
    /// module's notes); `None` leaves it to the library.
    pub(super) fn for_dataset(dataset: &Dataset3, images: &[usize]) -> Option<Self> {
        let d = &dataset.dataset;
        if d.chunk()? != [1, dataset.height, dataset.width] {
            return None;
        }
        let filters = d
            .filters()
            .iter()
            .map(|f| match f {
                hdf5_metno::filters::Filter::Deflate(_) => Some(Filter::Deflate),
                hdf5_metno::filters::Filter::Shuffle => Some(Filter::Shuffle),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        let undone = [
            &[][..],
            &[Filter::Deflate],
            &[Filter::Shuffle],
            &[Filter::Shuffle, Filter::Deflate],
        ];
        if !undone.contains(&filters.as_slice()) {
            return None;
        }
        Some(DirectChunks {
            name: dataset.spec.dataset.clone(),
            filters,
            chunks: walked(dataset)?,
            images: images.to_vec(),
            sample_bytes: dataset.dtype.bytes(),
            byte_order: dataset.byte_order,
            inflated: Mutex::new(Vec::new()),
        })
    }

    /// Inflates `stored` into a buffer of the pool, then unshuffles it into `dst`.
    fn inflate_and_unshuffle(&self, stored: &[u8], dst: &mut [u8]) -> Result<(), String> {
        let pool = || self.inflated.lock().unwrap_or_else(PoisonError::into_inner);
        let mut inflated = pool().pop().unwrap_or_default();
        // A buffer of the pool is already an image long: `inflate_into` fills every byte or
        // fails, so it is not zeroed again.
        if inflated.len() != dst.len() {
            inflated.clear();
            inflated.try_reserve_exact(dst.len()).map_err(|_| {
                format!(
                    "cannot allocate {} MiB to inflate its chunk: out of memory",
                    dst.len() >> 20
                )
            })?;
            inflated.resize(dst.len(), 0);
        }
        let done = inflate_into(stored, &mut inflated)
            .map(|()| unshuffle(&inflated, dst, self.sample_bytes));
        pool().push(inflated);
        done
    }
}

/// Which dataset a walk of its chunk index describes: its file, told from another (or from
/// itself rewritten) as `Source::check_unchanged` tells them apart, its path and its length.
#[derive(PartialEq, Eq)]
struct WalkKey {
    id: (u64, u64),
    stamp: FileStamp,
    dataset: String,
    images: usize,
}

/// The chunk tables walked by this process, the latest last.
type Walks = Vec<(WalkKey, Option<Arc<[Chunk]>>)>;

static WALKS: Mutex<Walks> = Mutex::new(Vec::new());

/// Walks kept: a few datasets read at once (a scan, its flats and darks from other files).
const KEPT_WALKS: usize = 8;

/// The chunk of each image of `dataset`, when each lies whole in the file and the index lists
/// them in image order; `None` leaves the dataset to the library. Background correction opens
/// a dataset with an image_key up to four times (its key counts, projections, flats, darks)
/// and `info --stats` twice, and the walk is the slow part of an open (see [`MAX_CHUNKS`]): so
/// it is done once, and a later open of the same dataset of the same file takes its table.
fn walked(dataset: &Dataset3) -> Option<Arc<[Chunk]>> {
    let meta = std::fs::metadata(&dataset.spec.file).ok()?;
    let key = WalkKey {
        id: (meta.dev(), meta.ino()),
        stamp: FileStamp::from_metadata(&dataset.spec.file, &meta),
        dataset: dataset.spec.dataset.clone(),
        images: dataset.images,
    };
    // Held through the walk: the library runs one call at a time anyway (its lock).
    let mut walks = WALKS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, chunks)) = walks.iter().find(|(k, _)| *k == key) {
        return chunks.clone();
    }
    let chunks = walk(dataset, meta.len()).map(Arc::from);
    if walks.len() == KEPT_WALKS {
        walks.remove(0);
    }
    walks.push((key, chunks.clone()));
    chunks
}

/// Asks the library about every chunk of `dataset` (see [`walked`]).
fn walk(dataset: &Dataset3, file_len: u64) -> Option<Vec<Chunk>> {
    let d = &dataset.dataset;
    if dataset.images > MAX_CHUNKS || d.num_chunks()? != dataset.images {
        return None;
    }
    let mut chunks = Vec::with_capacity(dataset.images);
    for index in 0..dataset.images {
        let info = d.chunk_info(index)?;
        // The chunk index lists chunks in the order of their first image.
        let fits = info
            .addr
            .checked_add(info.size)
            .is_some_and(|end| end <= file_len);
        if info.offset.first().copied() != Some(index as u64) || !fits {
            return None;
        }
        chunks.push(Chunk {
            offset: info.addr,
            size: info.size,
            skipped: info.filter_mask,
        });
    }
    Some(chunks)
}

impl PageDecoder for DirectChunks {
    /// A shuffled, gzipped chunk is inflated into a buffer of its own, then unshuffled into
    /// the page; any other chunk is decoded straight into the page.
    fn page_buffers(&self) -> u64 {
        let undone = |f| self.filters.contains(&f);
        match undone(Filter::Shuffle) && undone(Filter::Deflate) {
            true => 2,
            false => 1,
        }
    }

    fn decode(&self, bytes: &[u8], page: usize, dst: &mut [u8]) -> Result<(), String> {
        let index = self.images[page];
        let chunk = self.chunks[index];
        let fail = |why: String| format!("{}: image {index}: cannot decode: {why}", self.name);
        let stored = usize::try_from(chunk.offset)
            .ok()
            .zip(usize::try_from(chunk.size).ok())
            .and_then(|(at, n)| bytes.get(at..)?.get(..n))
            .ok_or_else(|| fail("its chunk lies past the end of the file".into()))?;
        let applied: Vec<Filter> = self
            .filters
            .iter()
            .enumerate()
            .filter(|(i, _)| chunk.skipped & (1 << i) == 0)
            .map(|(_, f)| *f)
            .collect();
        // Undone in reverse, the last step straight into `dst`: at most one image more.
        match applied.as_slice() {
            [] => same_length(stored, dst).map(|()| dst.copy_from_slice(stored)),
            [Filter::Deflate] => inflate_into(stored, dst),
            [Filter::Shuffle] => {
                same_length(stored, dst).map(|()| unshuffle(stored, dst, self.sample_bytes))
            }
            [Filter::Shuffle, Filter::Deflate] => self.inflate_and_unshuffle(stored, dst),
            _ => Err("its filters are in an order imfilter does not undo".to_string()),
        }
        .map_err(fail)?;
        if self.byte_order != ByteOrder::native() {
            for sample in dst.chunks_exact_mut(self.sample_bytes) {
                sample.reverse();
            }
        }
        Ok(())
    }
}

/// An unfiltered chunk must hold exactly the image.
fn same_length(stored: &[u8], dst: &[u8]) -> Result<(), String> {
    if stored.len() != dst.len() {
        return Err(format!(
            "its chunk holds {} bytes, the image {}",
            stored.len(),
            dst.len()
        ));
    }
    Ok(())
}

/// Inflates the zlib stream `stored` into `dst`, which it must fill exactly, its checksum
/// (Adler-32) checked.
fn inflate_into(stored: &[u8], dst: &mut [u8]) -> Result<(), String> {
    let ended = crate::stack::decode::inflate_zlib(stored, dst)
        .map_err(|e| format!("corrupt gzip chunk ({e})"))?;
    match ended {
        (true, filled) if filled == dst.len() => Ok(()),
        (true, filled) => Err(format!(
            "its gzip chunk holds {filled} bytes, the image {}",
            dst.len()
        )),
        _ => Err(format!(
            "its gzip chunk holds more than the image's {} bytes, or is cut short",
            dst.len()
        )),
    }
}

/// Undoes HDF5's shuffle from `shuffled` into `dst`, both as long: `shuffled` holds byte 0 of
/// every sample, then byte 1 of every sample, and so on (a tail shorter than a sample is
/// stored as is).
fn unshuffle(shuffled: &[u8], dst: &mut [u8], sample_bytes: usize) {
    let samples = dst.len() / sample_bytes.max(1);
    let whole = samples * sample_bytes;
    if sample_bytes > 1 && samples > 0 {
        for (b, plane) in shuffled[..whole].chunks_exact(samples).enumerate() {
            for (s, &byte) in plane.iter().enumerate() {
                dst[s * sample_bytes + b] = byte;
            }
        }
    } else {
        dst[..whole].copy_from_slice(&shuffled[..whole]);
    }
    dst[whole..].copy_from_slice(&shuffled[whole..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unshuffle_interleaves_the_byte_planes_back() {
        // Three 2-byte samples 0x0201, 0x0403, 0x0605, little-endian, shuffled.
        let mut data = [0u8; 6];
        unshuffle(&[0x01, 0x03, 0x05, 0x02, 0x04, 0x06], &mut data, 2);
        assert_eq!(data, [0x01, 0x02, 0x03, 0x04, 0x05, 0x06]);
        // Two 4-byte samples, and a tail shorter than a sample kept as stored.
        let mut data = [0u8; 9];
        unshuffle(&[1, 5, 2, 6, 3, 7, 4, 8, 9], &mut data, 4);
        assert_eq!(data, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        // One-byte samples are not shuffled.
        let mut data = [0u8; 3];
        unshuffle(&[3, 2, 1], &mut data, 1);
        assert_eq!(data, [3, 2, 1]);
    }

    #[test]
    fn a_dataset_opened_again_takes_the_chunk_table_of_its_first_walk() {
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/hdf5");
        let at = |file: std::path::PathBuf| super::super::DatasetPath {
            file,
            dataset: "/frames".into(),
        };
        let walk = |file| {
            let dataset = Dataset3::open(&at(file)).expect("the fixture opens");
            walked(&dataset).expect("one chunk per image, in order")
        };
        let first = walk(fixture.join("stacks.h5"));
        assert!(Arc::ptr_eq(&first, &walk(fixture.join("stacks.h5"))));
        // Another file, even with the same bytes, is walked for itself.
        let copy = tempfile::tempdir().expect("a temporary directory");
        std::fs::copy(fixture.join("stacks.h5"), copy.path().join("stacks.h5")).expect("copy");
        let other = walk(copy.path().join("stacks.h5"));
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(first.len(), other.len());
    }

    #[test]
    fn inflate_wants_exactly_the_image() {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&[7u8; 100]).expect("compress");
        let stored = z.finish().expect("compress");
        let mut exact = [0u8; 100];
        assert_eq!(inflate_into(&stored, &mut exact), Ok(()));
        assert_eq!(exact, [7u8; 100]);
        assert!(inflate_into(&stored, &mut [0u8; 99]).is_err());
        assert!(inflate_into(&stored, &mut [0u8; 101]).is_err());
        assert!(inflate_into(&stored[..stored.len() - 1], &mut [0u8; 100]).is_err());
    }
}
