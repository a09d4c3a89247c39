//! One input TIFF file: mapped, its directories parsed, each page's format and pixel location.

use std::fs::File;
use std::ops::Deref;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

use super::encode::Field;
use super::ifd::{self, ByteOrder, TiffFile, tag};
use super::mapped::ReadMap;
use super::stamp::FileStamp;
use crate::pixel::DType;

/// TIFF Compression values imfilter names in messages.
pub fn compression_name(code: u16) -> String {
    match code {
        1 => "none".into(),
        5 => "LZW".into(),
        6 => "old-style JPEG".into(),
        7 => "JPEG".into(),
        8 | 32946 => "Deflate".into(),
        32773 => "PackBits".into(),
        34925 => "LZMA".into(),
        50000 => "ZSTD".into(),
        other => format!("code {other}"),
    }
}

/// Where a page's pixels are and how they are stored, as the file says.
#[derive(Debug, Clone)]
pub struct RawPage {
    pub width: u64,
    pub height: u64,
    pub bits_per_sample: u16,
    pub samples_per_pixel: u64,
    pub sample_format: u16,
    pub compression: u16,
    pub predictor: u16,
    pub photometric: Option<u16>,
    /// Tile width and length, for tiled pages.
    pub tile: Option<(u64, u64)>,
    /// Rows per strip (strip layout only).
    pub rows_per_strip: u64,
    /// (offset, byte count) of each strip or tile, in file order of the spec.
    pub chunks: Vec<(u64, u64)>,
    /// JPEG pages: the tables their strips or tiles share (TIFF Technical Note 2).
    pub jpeg_tables: Option<Vec<u8>>,
}

impl RawPage {
    /// A grayscale page of `dtype` samples stored uncompressed in one strip: at `chunks` in
    /// the file (none for a page only its source's decoder reads), as FITS and HDF5 store
    /// images.
    pub fn plain(width: u64, height: u64, dtype: DType, chunks: Vec<(u64, u64)>) -> RawPage {
        RawPage {
            width,
            height,
            bits_per_sample: dtype.bits(),
            samples_per_pixel: 1,
            sample_format: dtype.sample_format(),
            compression: 1,
            predictor: 1,
            photometric: None,
            tile: None,
            rows_per_strip: height,
            chunks,
            jpeg_tables: None,
        }
    }

    pub fn compression_name(&self) -> String {
        compression_name(self.compression)
    }

    /// The sample type, or a sentence saying what the page has instead.
    pub fn dtype(&self) -> Result<DType, String> {
        if self.samples_per_pixel != 1 {
            let what = if self.photometric == Some(2) {
                "RGB, "
            } else {
                ""
            };
            return Err(format!(
                "{what}{} samples per pixel; imfilter needs grayscale (1 sample per pixel)",
                self.samples_per_pixel
            ));
        }
        if self.photometric == Some(3) {
            return Err("palette colour image; imfilter needs grayscale".into());
        }
        match self.sample_format {
            5 | 6 => return Err("complex samples are not supported".into()),
            1..=3 => {}
            other => return Err(format!("sample format {other} is not supported")),
        }
        DType::from_tiff(self.bits_per_sample, self.sample_format).ok_or_else(|| {
            let kind = match self.sample_format {
                2 => "signed integer",
                3 => "floating-point",
                _ => "unsigned integer",
            };
            format!(
                "{}-bit {kind} samples are not supported (supported: uint8, uint16, uint32, \
                 int16, int32, float32, float64)",
                self.bits_per_sample
            )
        })
    }

    /// Bytes one page of pixels takes uncompressed, if it is a supported type.
    pub fn pixel_bytes(&self) -> Option<u64> {
        let d = self.dtype().ok()?;
        self.width
            .checked_mul(self.height)?
            .checked_mul(d.bytes() as u64)
    }

    /// The offset of the pixel block when it is one uncompressed contiguous run.
    pub fn contiguous_offset(&self) -> Option<u64> {
        if self.compression != 1 || self.tile.is_some() {
            return None;
        }
        let (first, _) = *self.chunks.first()?;
        let mut end = first;
        for &(offset, count) in &self.chunks {
            if offset != end {
                return None;
            }
            end = offset.checked_add(count)?;
        }
        (end - first >= self.pixel_bytes()?).then_some(first)
    }
}

/// The most a page compressed with `compression` may decode to, per stored byte: Deflate
/// 1032 (a 258-byte match in under 2 bits, RFC 1951), PackBits 64 (two bytes for a run of 128),
/// LZW 2731 (a 12-bit code stands for at most 4096 bytes), ZSTD 32768 (a 4-byte run-length
/// block for 128 KiB, RFC 8878); 32768 too for the rest, LZMA among them (xz stores 100 MiB of
/// zeros in 15 KB, 6,800 to 1). A claim beyond it is refused before anything is sized by it.
fn max_expansion(compression: u16) -> u64 {
    match compression {
        8 | 32946 => 1032,
        32773 => 64,
        5 => 2731,
        _ => 32768,
    }
}

/// The input path that means standard input.
pub const STDIN: &str = "-";

/// An input file: its bytes (mapped) and its pages.
pub struct Source {
    pub path: PathBuf,
    /// The file's bytes, mapped for as long as the stack lives; `None` for the files of a
    /// directory, which are mapped only while one of their pages is read (see [`Keep`]).
    map: Option<ReadMap>,
    /// Which file `path` named when it was parsed, so a file replaced since is not read.
    id: (u64, u64),
    /// Its size and modification time then: a file rewritten in place at the same length is
    /// found by its time at commit. `None` for standard input's unnamed spool.
    pub stamp: Option<FileStamp>,
    pub byte_order: ByteOrder,
    pub bigtiff: bool,
    pub file_len: u64,
    /// The first page's ImageDescription (ImageJ and tifffile keep their metadata there).
    pub description: Option<String>,
    /// The first page's resolution tags, carried over to outputs.
    pub resolution: Vec<(u16, Field)>,
    /// The history imfilter wrote into the file, if it did (`tag::IMFILTER_HISTORY`).
    pub history: Option<String>,
    pub pages: Vec<RawPage>,
    /// A FITS file (`stack::fits`), not a TIFF.
    pub fits: bool,
    /// Decodes the pages of a file that is not a TIFF that are not plain runs of its bytes
    /// (chunked HDF5 datasets, FITS pages with scaled values): those whose [`RawPage`] has no
    /// chunks. `None` for TIFF files and others whose pages all are read as their
    /// [`RawPage`]s say.
    pub decoder: Option<Box<dyn PageDecoder>>,
}

/// Decodes the pages of a source that are not read as their [`RawPage`]s say.
pub trait PageDecoder: Send + Sync {
    /// Decodes page `page` of the source, whose mapped bytes are `bytes`, into `dst` (exactly
    /// its pixel bytes, native byte order). An error is a sentence naming what is wrong (the
    /// caller adds the file).
    fn decode(&self, bytes: &[u8], page: usize, dst: &mut [u8]) -> Result<(), String>;

    /// How many page-sized buffers a worker holds while it decodes a page, `dst` included:
    /// what a worker's memory is planned for (`Stack::read_buffer_bytes`).
    fn page_buffers(&self) -> u64;
}

impl Source {
    /// Opens, maps and parses a TIFF file. Errors name the file.
    pub fn open(path: &Path, keep: Keep) -> Result<Source> {
        if path == Path::new(STDIN) {
            return Source::from_stdin();
        }
        let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
        Source::from_file(file, path, keep, true)
    }

    /// The file's bytes: the kept map, or the file mapped again for this read.
    pub fn bytes(&self) -> Result<Bytes<'_>> {
        match &self.map {
            Some(map) => Ok(Bytes::Kept(map.bytes())),
            None => self.map_again().map(Bytes::Fresh),
        }
    }

    /// The file mapped again, for a source that is not kept mapped. A file changed since it
    /// was parsed (another inode, another length) is an error, not a page read at stale
    /// offsets.
    fn map_again(&self) -> Result<ReadMap> {
        let file = File::open(&self.path)
            .with_context(|| format!("{}: cannot open", self.path.display()))?;
        let map = ReadMap::open(&file, &self.path)
            .with_context(|| format!("{}: cannot map the file", self.path.display()))?;
        let meta = file
            .metadata()
            .with_context(|| format!("{}: cannot read its size", self.path.display()))?;
        // The length checked is the map's own: a file cut short after a size check would leave
        // the page's offsets past the map.
        if (meta.dev(), meta.ino()) != self.id || map.bytes().len() as u64 != self.file_len {
            bail!(
                "{}: the file changed while imfilter was reading the stack",
                self.path.display()
            );
        }
        Ok(map)
    }

    /// `Err` if the file at `path` is no longer the one read: another file, another length, or
    /// another modification time. Checked before a result is committed, because a result
    /// computed from a file that changed meanwhile may mix its old and new contents.
    pub fn check_unchanged(&self) -> Result<()> {
        let Some(stamp) = &self.stamp else {
            return Ok(());
        };
        let meta = std::fs::metadata(&self.path)
            .with_context(|| format!("{}: cannot read it again", self.path.display()))?;
        let now = FileStamp::from_metadata(&self.path, &meta);
        if (meta.dev(), meta.ino()) != self.id || now != *stamp {
            bail!(
                "{}: the file changed while imfilter was reading it (its {} differs from when \
                 it was opened); the output was not written",
                self.path.display(),
                if (meta.dev(), meta.ino()) != self.id {
                    "inode"
                } else if now.size != stamp.size {
                    "size"
                } else {
                    "modification time"
                }
            );
        }
        Ok(())
    }

    /// The bytes of the kept map; `None` for a file mapped only while it is read.
    pub fn kept_bytes(&self) -> Option<&[u8]> {
        self.map.as_ref().map(ReadMap::bytes)
    }

    /// Reads a whole TIFF from standard input into an unnamed temporary file in `$TMPDIR`
    /// (on disk, so a stack larger than memory still works), then maps it like any file. The
    /// stream's first bytes are checked first: a stream that is not a TIFF is refused before
    /// anything is spooled (`cat /dev/zero | imfilter …` would otherwise fill the disk).
    fn from_stdin() -> Result<Source> {
        use std::io::{Read, Write};
        let name = Path::new("<stdin>");
        let mut stdin = std::io::stdin().lock();
        let mut head = Vec::with_capacity(ifd::SIGNATURE_LEN);
        (&mut stdin)
            .take(ifd::SIGNATURE_LEN as u64)
            .read_to_end(&mut head)
            .context("<stdin>: cannot read")?;
        ifd::check_signature(&head).map_err(|why| match why {
            // In a pipe, an empty stream almost always means the stage before failed.
            ifd::IfdError::Empty => anyhow!(
                "<stdin>: the input stream ended before a TIFF began (0 bytes): the command \
                 before the pipe probably failed"
            ),
            why => anyhow!("<stdin>: {why}"),
        })?;
        let mut file = tempfile::tempfile().context("<stdin>: cannot create a temporary file")?;
        file.write_all(&head)
            .and_then(|()| std::io::copy(&mut stdin, &mut file).map(drop))
            .context("<stdin>: cannot spool it to a temporary file in $TMPDIR")?;
        // Unnamed: only this map reaches it.
        Source::from_file(file, name, Keep::Mapped, false)
    }

    /// `named`: `path` names the file (not standard input's spool), so it can be checked again.
    fn from_file(file: File, path: &Path, keep: Keep, named: bool) -> Result<Source> {
        let meta = file
            .metadata()
            .with_context(|| format!("{}: cannot read its size", path.display()))?;
        if meta.is_dir() {
            bail!("{}: is a directory, expected a TIFF file", path.display());
        }
        let map = ReadMap::open(&file, path)
            .with_context(|| format!("{}: cannot map the file", path.display()))?;
        if super::fits::is_fits(map.bytes()) {
            let (pages, scaled) =
                super::fits::pages(map.bytes()).map_err(|e| anyhow!("{}: {e}", path.display()))?;
            return Ok(Source {
                path: path.to_path_buf(),
                byte_order: ByteOrder::Big,
                bigtiff: false,
                file_len: meta.len(),
                description: None,
                resolution: Vec::new(),
                history: None,
                pages,
                fits: true,
                decoder: scaled.map(|s| Box::new(s) as Box<dyn PageDecoder>),
                id: (meta.dev(), meta.ino()),
                stamp: named.then(|| FileStamp::from_metadata(path, &meta)),
                map: (keep == Keep::Mapped).then_some(map),
            });
        }
        let parsed =
            TiffFile::parse(map.bytes()).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let mut pages = Vec::with_capacity(parsed.directories.len());
        // Honest pages never share pixel data, so their strip tables and stored bytes together
        // fit in the file; a file whose pages all point at one block would otherwise cost
        // memory and time per page far beyond its size.
        let (mut table_bytes, mut stored_bytes) = (0u64, 0u64);
        for (index, dir) in parsed.directories.iter().enumerate() {
            let page = read_page(&parsed, dir, meta.len())
                .map_err(|e| anyhow!("{}: page {index}: {e}", path.display()))?;
            table_bytes = table_bytes.saturating_add(8 * page.chunks.len() as u64);
            stored_bytes = page
                .chunks
                .iter()
                .fold(stored_bytes, |t, c| t.saturating_add(c.1));
            if table_bytes > meta.len() || stored_bytes > meta.len() {
                bail!(
                    "{}: page {index}: corrupt TIFF: pages share pixel data",
                    path.display()
                );
            }
            pages.push(page);
        }
        if let Some(first) = pages.first() {
            // A stream that is garbage from its first bytes is refused here, before an output
            // or a worker's memory is sized by what the page claims.
            super::decode::probe(map.bytes(), first)
                .map_err(|why| anyhow!("{}: page 0: cannot decode: {why}", path.display()))?;
        }
        let first = &parsed.directories[0];
        let description = parsed.ascii(first, tag::IMAGE_DESCRIPTION);
        let history = parsed.ascii(first, tag::IMFILTER_HISTORY);
        let mut resolution = Vec::new();
        for t in [tag::X_RESOLUTION, tag::Y_RESOLUTION] {
            if let Some(v) = parsed.rationals(first, t).filter(|v| v.len() == 1) {
                resolution.push((t, Field::Rational(v)));
            }
        }
        if let (false, Ok(Some(unit))) = (
            resolution.is_empty(),
            parsed.uint(first, tag::RESOLUTION_UNIT, None),
        ) {
            resolution.push((tag::RESOLUTION_UNIT, Field::Short(vec![unit as u16])));
        }
        if let Some(n) = description.as_deref().and_then(imagej_images) {
            expand_imagej_pages(&mut pages, n, meta.len())
                .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        }
        Ok(Source {
            path: path.to_path_buf(),
            byte_order: parsed.byte_order,
            bigtiff: parsed.bigtiff,
            file_len: meta.len(),
            description,
            resolution,
            history,
            pages,
            fits: false,
            id: (meta.dev(), meta.ino()),
            stamp: named.then(|| FileStamp::from_metadata(path, &meta)),
            map: (keep == Keep::Mapped).then_some(map),
            decoder: None,
        })
    }

    /// A file of another format (HDF5) whose pages that format's reader found: `pages` that
    /// are plain runs of the file's bytes are read like uncompressed TIFF pages (in place from
    /// the kept map when aligned and in native order); others (no chunks) through `decoder`.
    /// Mapped, and checked unchanged at commit, like a TIFF file.
    pub(crate) fn described(
        path: &Path,
        byte_order: ByteOrder,
        pages: Vec<RawPage>,
        history: Option<String>,
        decoder: Option<Box<dyn PageDecoder>>,
    ) -> Result<Source> {
        let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
        let meta = file
            .metadata()
            .with_context(|| format!("{}: cannot read its size", path.display()))?;
        let map = ReadMap::open(&file, path)
            .with_context(|| format!("{}: cannot map the file", path.display()))?;
        Ok(Source {
            path: path.to_path_buf(),
            map: Some(map),
            id: (meta.dev(), meta.ino()),
            stamp: Some(FileStamp::from_metadata(path, &meta)),
            byte_order,
            bigtiff: false,
            file_len: meta.len(),
            description: None,
            resolution: Vec::new(),
            history,
            pages,
            fits: false,
            decoder,
        })
    }
}

/// A source's bytes, as [`Source::bytes`] found them.
pub enum Bytes<'a> {
    Kept(&'a [u8]),
    /// Unmapped when dropped.
    Fresh(ReadMap),
}

impl Deref for Bytes<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Kept(bytes) => bytes,
            Bytes::Fresh(map) => map.bytes(),
        }
    }
}

/// Whether a parsed input stays mapped. Every map is one entry of the process's memory map
/// table, which Linux limits to 65,530 by default (`vm.max_map_count`): a directory of that
/// many images, or half as many written into another directory, failed with "Cannot allocate
/// memory" when every file stayed mapped. Mapping a directory's files one at a time costs one
/// map and unmap per image; the pixels are still read in place (`stack::Page::Mapped`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Mapped until the stack is dropped: a multi-page file, read in place.
    Mapped,
    /// Mapped only while a page is read: one file of a directory.
    WhileReading,
}

fn read_page(
    f: &TiffFile<'_>,
    dir: &super::ifd::Directory,
    file_len: u64,
) -> Result<RawPage, String> {
    let e = |err: super::ifd::IfdError| err.to_string();
    let width = f
        .uint(dir, tag::IMAGE_WIDTH, None)
        .map_err(e)?
        .ok_or("no ImageWidth tag")?;
    let height = f
        .uint(dir, tag::IMAGE_LENGTH, None)
        .map_err(e)?
        .ok_or("no ImageLength tag")?;
    if width == 0 || height == 0 {
        return Err(format!("zero-sized image ({width}x{height})"));
    }
    let samples_per_pixel = f
        .uint(dir, tag::SAMPLES_PER_PIXEL, Some(1))
        .map_err(e)?
        .unwrap_or(1);
    let bits = f
        .uints(dir, tag::BITS_PER_SAMPLE)
        .map_err(e)?
        .unwrap_or_else(|| vec![1]);
    let bits_per_sample = bits.first().copied().unwrap_or(1);
    if bits.iter().any(|&b| b != bits_per_sample) {
        return Err(format!(
            "samples of different bit depths {bits:?} are not supported"
        ));
    }
    let sample_format = f
        .uints(dir, tag::SAMPLE_FORMAT)
        .map_err(e)?
        .and_then(|v| v.first().copied())
        .unwrap_or(1);
    let compression = f
        .uint(dir, tag::COMPRESSION, Some(1))
        .map_err(e)?
        .unwrap_or(1);
    let predictor = f
        .uint(dir, tag::PREDICTOR, Some(1))
        .map_err(e)?
        .unwrap_or(1);
    let photometric = f.uint(dir, tag::PHOTOMETRIC, None).map_err(e)?;
    let jpeg_tables = match compression {
        7 => f
            .uints(dir, tag::JPEG_TABLES)
            .map_err(e)?
            .map(|v| v.into_iter().map(|b| b as u8).collect()),
        _ => None,
    };
    let tile = match f.uints(dir, tag::TILE_OFFSETS).map_err(e)? {
        None => None,
        Some(_) => {
            let tw = f
                .uint(dir, tag::TILE_WIDTH, None)
                .map_err(e)?
                .ok_or("tiled, but no TileWidth tag")?;
            let tl = f
                .uint(dir, tag::TILE_LENGTH, None)
                .map_err(e)?
                .ok_or("tiled, but no TileLength tag")?;
            if tw == 0 || tl == 0 {
                return Err(format!("corrupt TIFF: tiles of {tw}x{tl} pixels"));
            }
            Some((tw, tl))
        }
    };
    let tiled = tile.is_some();
    let (offsets_tag, counts_tag) = if tiled {
        (tag::TILE_OFFSETS, tag::TILE_BYTE_COUNTS)
    } else {
        (tag::STRIP_OFFSETS, tag::STRIP_BYTE_COUNTS)
    };
    let offsets = f
        .uints(dir, offsets_tag)
        .map_err(e)?
        .ok_or("no pixel data offsets (StripOffsets)")?;
    let counts = f
        .uints(dir, counts_tag)
        .map_err(e)?
        .ok_or("no pixel data sizes (StripByteCounts)")?;
    if offsets.len() != counts.len() {
        return Err(format!(
            "corrupt TIFF: {} strip offsets but {} strip sizes",
            offsets.len(),
            counts.len()
        ));
    }
    let rows_per_strip = f
        .uint(dir, tag::ROWS_PER_STRIP, Some(height))
        .map_err(e)?
        .unwrap_or(height)
        .clamp(1, height);
    let narrow = |v: u64| u16::try_from(v).map_err(|_| format!("tag value {v} out of range"));
    let mut page = RawPage {
        width,
        height,
        bits_per_sample: narrow(bits_per_sample)?,
        samples_per_pixel,
        sample_format: narrow(sample_format)?,
        compression: narrow(compression)?,
        predictor: narrow(predictor)?,
        photometric: photometric.map(narrow).transpose()?,
        tile,
        rows_per_strip,
        chunks: offsets.into_iter().zip(counts).collect(),
        jpeg_tables,
    };
    for &(offset, count) in &page.chunks {
        if offset.checked_add(count).is_none_or(|end| end > file_len) {
            return Err(format!(
                "pixel data is truncated: {count} bytes at offset {offset}, but the file has {file_len} bytes"
            ));
        }
    }
    if page.dtype().is_ok() {
        let Some(bytes) = page.pixel_bytes() else {
            return Err(format!(
                "image of {}x{} pixels is too large",
                page.width, page.height
            ));
        };
        // No allocation beyond what the file can back: a compressed page can't decode to more
        // than its codec's maximum expansion of the bytes stored for it.
        let stored: u64 = page.chunks.iter().map(|c| c.1).fold(0, u64::saturating_add);
        if page.compression != 1 && bytes > stored.saturating_mul(max_expansion(page.compression)) {
            return Err(format!(
                "corrupt TIFF: {bytes} bytes of pixels cannot come from {stored} compressed bytes"
            ));
        }
    }
    if let (Some(bytes), true) = (page.pixel_bytes(), page.compression == 1 && !tiled) {
        check_uncompressed_strips(&page, bytes)?;
        if let Some(offset) = page.contiguous_offset() {
            // One run is all a reader needs; dropping the strip list keeps memory flat for
            // stacks of thousands of pages written one row per strip.
            page.chunks = vec![(offset, bytes)];
            page.rows_per_strip = height;
        }
    }
    Ok(page)
}

/// Every uncompressed strip must hold its rows in full; a short one means the writer stopped.
fn check_uncompressed_strips(page: &RawPage, pixel_bytes: u64) -> Result<(), String> {
    let row_bytes = pixel_bytes / page.height;
    let strips = page.height.div_ceil(page.rows_per_strip);
    if page.chunks.len() as u64 != strips {
        return Err(format!(
            "corrupt TIFF: {} strips, but {} rows at {} rows per strip need {strips}",
            page.chunks.len(),
            page.height,
            page.rows_per_strip
        ));
    }
    for (i, &(_, count)) in page.chunks.iter().enumerate() {
        let rows = page
            .rows_per_strip
            .min(page.height - i as u64 * page.rows_per_strip);
        if count < rows * row_bytes {
            return Err(format!(
                "pixel data is truncated: strip {i} has {count} bytes, {} expected",
                rows * row_bytes
            ));
        }
    }
    Ok(())
}

/// `images=N` of an ImageJ description, when it says there is more than one image.
fn imagej_images(description: &str) -> Option<u64> {
    if !description.starts_with("ImageJ=") {
        return None;
    }
    description
        .lines()
        .find_map(|l| l.strip_prefix("images="))
        .and_then(|n| n.trim().parse().ok())
        .filter(|&n| n > 1)
}

/// ImageJ writes stacks past 4 GiB as a classic TIFF with one directory: the other images
/// follow the first one's pixels back to back. Expands those into pages, refusing a file too
/// short to hold them.
fn expand_imagej_pages(pages: &mut Vec<RawPage>, images: u64, file_len: u64) -> Result<(), String> {
    if pages.len() != 1 {
        return Ok(());
    }
    let first = pages[0].clone();
    let (Some(offset), Some(bytes)) = (first.contiguous_offset(), first.pixel_bytes()) else {
        return Ok(());
    };
    let end = bytes
        .checked_mul(images)
        .and_then(|b| b.checked_add(offset));
    if end.is_none_or(|end| end > file_len) {
        return Err(format!(
            "ImageJ file says images={images}, but holds only {} bytes of pixels",
            file_len.saturating_sub(offset)
        ));
    }
    pages.extend((1..images).map(|i| RawPage {
        chunks: vec![(offset + i * bytes, bytes)],
        ..first.clone()
    }));
    Ok(())
}
