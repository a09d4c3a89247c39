//! The TIFF layout imfilter writes: every page's pixels in one contiguous, page-aligned block,
//! so the block can be memory-mapped as one array.
//!
//! ```text
//! header | IFD 0 (+ its long values: description, software) | pad to 4096 | page 0 … page N-1 | IFD 1 … IFD N-1
//! ```
//! This is the layout tifffile writes for contiguous series (`tifffile.memmap` maps it) and
//! the one ImageJ expects: ImageJ reads the first directory's `images=N` description and then
//! takes the N pages as one run after the first strip. The tiff crate's encoder interleaves
//! each page's directory with its data, which no reader can map as one array, so this writer
//! is imfilter's own. Files whose end would pass 4 GiB are written as BigTIFF.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::os::unix::fs::FileExt;

use rayon::prelude::*;

use super::PageFormat;
use super::encode::{Encoder, Field};
use super::ifd::{ByteOrder, tag};
use crate::pixel::DType;

/// Data starts on a page boundary so the mapping's first pixel is aligned for any type and
/// for the vector units.
const DATA_ALIGN: u64 = 4096;

/// Uncompressed strips of compressed outputs are about this long.
const STRIP_TARGET_BYTES: u64 = 64 * 1024;

/// Where one page's pixels are in the file.
struct Strips {
    compression: u16,
    /// TIFF's predictor: 1 none, 2 horizontal differencing, 3 floating point.
    predictor: u16,
    rows_per_strip: u64,
    offsets: Vec<u64>,
    counts: Vec<u64>,
}

/// How outputs meant for archiving are compressed (losslessly).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    /// Uncompressed: memory-mappable, fastest to read.
    #[default]
    None,
    Lzw,
    /// Deflate (zlib), TIFF code 8: what libtiff, tifffile and ImageJ read.
    Deflate,
    Zstd,
    /// PackBits (TIFF 6.0, section 9), row by row: what `--in-place` keeps on a PackBits input.
    Packbits,
}

impl Compression {
    /// The TIFF Compression tag value.
    pub fn code(self) -> u16 {
        match self {
            Compression::None => 1,
            Compression::Lzw => 5,
            Compression::Deflate => 8,
            Compression::Zstd => 50000,
            Compression::Packbits => 32773,
        }
    }

    /// The compression a TIFF Compression tag value names, if imfilter writes it (Deflate's
    /// old code 32946 included).
    pub fn from_code(code: u16) -> Option<Compression> {
        let code = if code == 32946 { 8 } else { code };
        <Compression as clap::ValueEnum>::value_variants()
            .iter()
            .copied()
            .find(|c| c.code() == code)
    }

    /// The most `n` bytes can compress to. LZW (TIFF's, 8-bit symbols): at worst one code per
    /// input byte, codes of at most 12 bits, plus a clear code each time the 4094-entry table
    /// fills, a leading clear and the end code. Deflate: stored blocks, 5 bytes per 64 KiB and
    /// the 6-byte zlib wrapper, taken from zlib's own `compressBound`; libdeflate, which writes
    /// it, falls back to stored blocks of up to 64 KiB for any block they make smaller, so
    /// zlib's bound holds for it too. ZSTD: `ZSTD_compressBound`.
    /// PackBits: one header byte per 128 literal bytes of each row of `row_bytes`.
    fn worst_case(self, n: u64, row_bytes: u64) -> u64 {
        match self {
            Compression::None => n,
            Compression::Lzw => {
                let codes = n + n / 3000 + 3;
                (codes * 12).div_ceil(8)
            }
            Compression::Deflate => n + (n >> 12) + (n >> 14) + (n >> 25) + 13,
            Compression::Zstd => zstd::zstd_safe::compress_bound(n as usize) as u64,
            Compression::Packbits => {
                let row = row_bytes.clamp(1, n.max(1));
                n + n.div_ceil(row) * row.div_ceil(128)
            }
        }
    }

    /// `bytes`, whole rows of `row_bytes`, compressed.
    fn compress(self, bytes: &[u8], row_bytes: usize) -> io::Result<Vec<u8>> {
        let mut out = match self {
            Compression::None => bytes.to_vec(),
            Compression::Lzw => {
                let mut out = Vec::with_capacity(bytes.len() / 2);
                super::lzw::encode(bytes, &mut out);
                out
            }
            Compression::Deflate => deflate(bytes)?,
            Compression::Packbits => {
                // TIFF 6.0: "each row is packed separately"; a run never crosses a row.
                use tiff::encoder::compression::{CompressionAlgorithm, Packbits};
                let mut out = Vec::with_capacity(bytes.len());
                for row in bytes.chunks(row_bytes.max(1)) {
                    Packbits.write_to(&mut out, row)?;
                }
                out
            }
            Compression::Zstd => {
                // With the frame checksum, a reader (imfilter's own included) can tell a
                // damaged copy from the data: noise is stored in raw blocks, which decode
                // whatever their bytes are.
                let mut z = zstd::bulk::Compressor::new(3)?;
                z.include_checksum(true)?;
                z.compress(bytes)?
            }
        };
        // Each buffer was sized for the worst case, a whole strip or more: a batch of strips
        // waiting to be written holds their compressed sizes only.
        out.shrink_to_fit();
        Ok(out)
    }
}

/// `bytes` as a zlib stream at level 6 (zlib's default, tifffile's), by libdeflate: in the
/// issue 19 comparison zlib-rs took 1.17 × tifffile's time and wrote 3 % more, where libdeflate
/// compresses whole buffers faster and smaller at the same level (docs/benchmarks.md, section 10).
fn deflate(bytes: &[u8]) -> io::Result<Vec<u8>> {
    use libdeflater::{CompressionLvl, Compressor};
    thread_local! {
        static COMPRESSOR: std::cell::RefCell<Compressor> = std::cell::RefCell::new(
            Compressor::new(CompressionLvl::default()),
        );
    }
    COMPRESSOR.with_borrow_mut(|compressor| {
        let mut out = vec![0; compressor.zlib_compress_bound(bytes.len())];
        let written = compressor
            .zlib_compress(bytes, &mut out)
            .map_err(|e| io::Error::other(format!("Deflate: {e}")))?;
        out.truncate(written);
        Ok(out)
    })
}

/// The predictor a compressed output uses. Neighbouring pixels of an image are alike, so
/// their differences compress far better: horizontal differencing (2) for integers, the
/// floating-point predictor (3) for floats. But only where every reader the files are promised
/// to (tifffile, libtiff, ImageJ) decodes it right: ImageJ 1.x reads predictor 2 with LZW, but
/// applies no predictor to Deflate data (it silently shows the differences as the image) and
/// knows no predictor 3; it does not read ZSTD at all. So: LZW integers 2, ZSTD 2 or 3, and
/// none otherwise (measured with Debian's ImageJ, tests/tools.rs).
fn predictor_for(dtype: crate::pixel::DType, compression: Compression) -> u16 {
    use crate::pixel::DType;
    let float = matches!(dtype, DType::F32 | DType::F64);
    match compression {
        Compression::None | Compression::Deflate | Compression::Packbits => 1,
        Compression::Lzw if float => 1,
        Compression::Lzw => 2,
        Compression::Zstd if float => 3,
        Compression::Zstd => 2,
    }
}

/// `strip` (whole rows of `format`, native byte order) with `predictor` applied, in `scratch`
/// (or `strip` itself for none). Predictor 2 (TIFF 6.0, section 14) replaces each sample but
/// the first of a row by its difference from the one before, in the sample's own width. Predictor
/// 3 (Adobe's TIFF Technical Note 3) writes each row's bytes as planes, most significant bytes
/// of every sample first, then differences each byte from the one before.
fn predict<'a>(
    strip: &'a [u8],
    format: PageFormat,
    predictor: u16,
    scratch: &'a mut Vec<u8>,
) -> &'a [u8] {
    let bytes = format.dtype.bytes();
    let row = format.width * bytes;
    match predictor {
        2 => {
            scratch.clear();
            scratch.extend_from_slice(strip);
            for line in scratch.chunks_exact_mut(row) {
                macro_rules! difference {
                    ($t:ty) => {{
                        let samples: &mut [$t] = bytemuck::cast_slice_mut(line);
                        for i in (1..samples.len()).rev() {
                            samples[i] = samples[i].wrapping_sub(samples[i - 1]);
                        }
                    }};
                }
                match bytes {
                    1 => difference!(u8),
                    2 => difference!(u16),
                    4 => difference!(u32),
                    _ => difference!(u64),
                }
            }
            scratch
        }
        3 => {
            scratch.clear();
            scratch.resize(strip.len(), 0);
            let width = format.width;
            for (line, out) in strip.chunks_exact(row).zip(scratch.chunks_exact_mut(row)) {
                for (i, sample) in line.chunks_exact(bytes).enumerate() {
                    for b in 0..bytes {
                        // Plane 0 holds the most significant byte of every sample.
                        let significance = if cfg!(target_endian = "little") {
                            bytes - 1 - b
                        } else {
                            b
                        };
                        out[b * width + i] = sample[significance];
                    }
                }
                for i in (1..out.len()).rev() {
                    out[i] = out[i].wrapping_sub(out[i - 1]);
                }
            }
            scratch
        }
        _ => strip,
    }
}

/// Choices about the file beyond its pixels.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// The Software tag, e.g. `imfilter 0.1.0`.
    pub software: String,
    /// Past 4 GiB, write ImageJ's classic form (one directory, `images=N`) instead of BigTIFF.
    pub imagej: bool,
    /// Tags carried over from the input (resolution), written on every page.
    pub carried: Vec<(u16, Field)>,
    /// Lossless compression of the written file; the work still happens in a mapped array.
    pub compression: Compression,
    /// The result's history (JSON), written into the first directory (`tag::IMFILTER_HISTORY`).
    pub history: Option<String>,
}

/// Where everything goes in an output file of `pages` pages.
#[derive(Debug, Clone)]
pub struct Layout {
    pub pages: usize,
    pub format: PageFormat,
    pub bigtiff: bool,
    /// Only the first page has a directory (ImageJ's form for stacks past 4 GiB).
    pub first_directory_only: bool,
    pub data_offset: u64,
    pub page_bytes: u64,
    pub file_len: u64,
    description: String,
    pub options: WriteOptions,
}

impl Layout {
    pub fn new(pages: usize, format: PageFormat, options: &WriteOptions) -> Layout {
        let mut layout = Layout {
            pages,
            format,
            bigtiff: false,
            first_directory_only: false,
            data_offset: 0,
            page_bytes: format.page_bytes(),
            file_len: 0,
            description: description_for(pages, format),
            options: options.clone(),
        };
        layout.place();
        if layout.file_len > u64::from(u32::MAX) {
            if options.imagej && is_imagej_type(format.dtype) {
                layout.first_directory_only = true;
            } else {
                layout.bigtiff = true;
            }
            layout.place();
        }
        layout
    }

    /// Bytes of pixel data, i.e. the length of the mapped block.
    pub fn data_len(&self) -> u64 {
        self.page_bytes * self.pages as u64
    }

    fn encoder(&self) -> Encoder {
        Encoder {
            order: ByteOrder::native(),
            bigtiff: self.bigtiff,
        }
    }

    fn trailing_directories(&self) -> usize {
        if self.first_directory_only {
            0
        } else {
            self.pages.saturating_sub(1)
        }
    }

    fn place(&mut self) {
        let e = self.encoder();
        // A field that cannot be encoded is reported when the directories are written.
        let len = |page| self.fields(page).map_or(0, |f| e.directory_len(&f));
        let (first_len, rest_len) = (len(0), len(1));
        let first = e.header_len() + first_len;
        self.data_offset = first.div_ceil(DATA_ALIGN) * DATA_ALIGN;
        let rest = rest_len * self.trailing_directories() as u64;
        self.file_len = self.data_offset + self.data_len() + rest;
    }

    /// The tags of page `page` stored uncompressed in the mapped block.
    fn fields(&self, page: usize) -> io::Result<Vec<(u16, Field)>> {
        let strip = Strips {
            compression: 1,
            predictor: 1,
            rows_per_strip: self.format.height as u64,
            offsets: vec![self.data_offset + self.page_bytes * page as u64],
            counts: vec![self.page_bytes],
        };
        self.page_fields(page, strip)
    }

    /// The tags of page `page` with its pixels in `strips`, sorted. Only the first page carries
    /// description and software.
    fn page_fields(&self, page: usize, strips: Strips) -> io::Result<Vec<(u16, Field)>> {
        let f = self.format;
        let long = |v: usize, what| super::encode::long(v as u64, what);
        let mut fields = vec![
            (tag::NEW_SUBFILE_TYPE, Field::Long(vec![0])),
            (
                tag::IMAGE_WIDTH,
                Field::Long(vec![long(f.width, "image width")?]),
            ),
            (
                tag::IMAGE_LENGTH,
                Field::Long(vec![long(f.height, "image length")?]),
            ),
            (tag::BITS_PER_SAMPLE, Field::Short(vec![f.dtype.bits()])),
            (tag::COMPRESSION, Field::Short(vec![strips.compression])),
            // BlackIsZero: larger values are brighter, as every analysis tool assumes.
            (tag::PHOTOMETRIC, Field::Short(vec![1])),
            (tag::STRIP_OFFSETS, Field::Offsets(strips.offsets)),
            (tag::SAMPLES_PER_PIXEL, Field::Short(vec![1])),
            (
                tag::ROWS_PER_STRIP,
                Field::Long(vec![super::encode::long(
                    strips.rows_per_strip,
                    "rows per strip",
                )?]),
            ),
            (tag::STRIP_BYTE_COUNTS, Field::Offsets(strips.counts)),
            (
                tag::SAMPLE_FORMAT,
                Field::Short(vec![f.dtype.sample_format()]),
            ),
        ];
        if strips.predictor != 1 {
            fields.push((tag::PREDICTOR, Field::Short(vec![strips.predictor])));
        }
        if page == 0 {
            fields.push((
                tag::IMAGE_DESCRIPTION,
                Field::Ascii(self.description.clone()),
            ));
            fields.push((tag::SOFTWARE, Field::Ascii(self.options.software.clone())));
            if let Some(history) = &self.options.history {
                fields.push((tag::IMFILTER_HISTORY, Field::Ascii(history.clone())));
            }
        }
        fields.extend(self.options.carried.iter().cloned());
        fields.sort_by_key(|(t, _)| *t);
        Ok(fields)
    }

    /// Rows per strip of a compressed page: strips of about 64 KiB, as libtiff and tifffile
    /// write them, small enough for readers that decode a region, large enough to compress well.
    fn compressed_rows_per_strip(&self) -> u64 {
        let height = self.format.height as u64;
        (STRIP_TARGET_BYTES / self.row_bytes().max(1)).clamp(1, height)
    }

    fn row_bytes(&self) -> u64 {
        self.page_bytes / self.format.height as u64
    }

    /// Writes the stack held uncompressed in `data` (the mapped block) to `file`, each page
    /// compressed with `compression`. Pages are compressed in parallel, a batch at a time, and
    /// written in order: data first, then every directory, then the header. Returns where the
    /// written file ends (the file may have been allocated longer).
    ///
    /// Whether the file is classic TIFF or BigTIFF is decided from where its data actually
    /// ends, not from the uncompressed size: LZW of noisy float32 grows by a third. The data
    /// starts after room for the longer BigTIFF header, so the choice can wait until then.
    pub fn write_compressed(
        &self,
        data: &[u8],
        compression: Compression,
        file: &File,
    ) -> io::Result<u64> {
        let row_bytes = self.row_bytes();
        let rows_per_strip = self.compressed_rows_per_strip();
        let big = Encoder {
            order: ByteOrder::native(),
            bigtiff: true,
        };
        let mut at = big.header_len();
        let mut strips = Vec::with_capacity(self.pages);
        let batch = 4 * rayon::current_num_threads();
        let mut out = io::BufWriter::with_capacity(1 << 20, file);
        out.seek(io::SeekFrom::Start(at))?;
        let page_bytes = usize::try_from(self.page_bytes).map_err(io::Error::other)?;
        let strip_bytes = usize::try_from(rows_per_strip * row_bytes).map_err(io::Error::other)?;
        let predictor = predictor_for(self.format.dtype, compression);
        for first in (0..self.pages).step_by(batch) {
            // A stop asked for while compressing ends the run here, not after the last page.
            crate::interrupt::check().map_err(io::Error::other)?;
            let pages: Vec<usize> = (first..(first + batch).min(self.pages)).collect();
            // Strips, not pages, are the tasks: a stack of few large pages still uses every
            // core.
            let compressed: Vec<Vec<u8>> = pages
                .iter()
                .flat_map(|&p| data[p * page_bytes..][..page_bytes].chunks(strip_bytes))
                .collect::<Vec<_>>()
                .into_par_iter()
                .map_init(Vec::new, |scratch, strip| {
                    let predicted = predict(strip, self.format, predictor, scratch);
                    compression.compress(predicted, row_bytes as usize)
                })
                .collect::<io::Result<Vec<_>>>()?;
            let strips_per_page = page_bytes.div_ceil(strip_bytes.max(1));
            for page in compressed.chunks(strips_per_page.max(1)) {
                let mut s = Strips {
                    compression: compression.code(),
                    predictor,
                    rows_per_strip,
                    offsets: vec![],
                    counts: vec![],
                };
                for strip in page {
                    out.write_all(strip)?;
                    s.offsets.push(at);
                    s.counts.push(strip.len() as u64);
                    at += strip.len() as u64;
                }
                strips.push(s);
            }
        }
        at += at % 2;
        let classic = Encoder {
            bigtiff: false,
            ..big
        };
        let mut fields = Vec::with_capacity(strips.len());
        for (page, s) in strips.into_iter().enumerate() {
            fields.push(self.page_fields(page, s)?);
        }
        let classic_end = fields
            .iter()
            .map(|f| classic.directory_len(f))
            .fold(at, u64::saturating_add);
        let e = if classic_end <= u64::from(u32::MAX) {
            classic
        } else {
            big
        };
        out.seek(io::SeekFrom::Start(at))?;
        let first_directory = at;
        let last = fields.len().saturating_sub(1);
        for (page, fields) in fields.iter().enumerate() {
            let next = if page < last {
                at + e.directory_len(fields)
            } else {
                0
            };
            let directory = e.directory(fields, at, next)?;
            at += directory.len() as u64;
            out.write_all(&directory)?;
        }
        out.seek(io::SeekFrom::Start(0))?;
        out.write_all(&e.header(first_directory)?)?;
        out.flush()?;
        Ok(at)
    }

    /// A length the compressed file cannot exceed, reserved before any work so a full disk is
    /// found up front: each strip at its codec's worst case (below), every directory at its
    /// BigTIFF size, and the BigTIFF header.
    pub fn compressed_len_bound(&self) -> u64 {
        let compression = self.options.compression;
        let rows_per_strip = self.compressed_rows_per_strip();
        let height = self.format.height as u64;
        let full_strips = height / rows_per_strip;
        let strip_bytes = rows_per_strip * self.row_bytes();
        let last_bytes = (height % rows_per_strip) * self.row_bytes();
        let row_bytes = self.row_bytes();
        let per_page = full_strips * compression.worst_case(strip_bytes, row_bytes)
            + if last_bytes > 0 {
                compression.worst_case(last_bytes, row_bytes)
            } else {
                0
            };
        let strips_per_page = height.div_ceil(rows_per_strip) as usize;
        let big = Encoder {
            order: ByteOrder::native(),
            bigtiff: true,
        };
        let directory = |page| {
            let strips = Strips {
                compression: compression.code(),
                predictor: predictor_for(self.format.dtype, compression),
                rows_per_strip,
                offsets: vec![0; strips_per_page],
                counts: vec![0; strips_per_page],
            };
            self.page_fields(page, strips)
                .map_or(0, |fields| big.directory_len(&fields))
        };
        let pages = self.pages as u64;
        let directories = directory(0) + directory(1) * pages.saturating_sub(1);
        big.header_len() + 1 + per_page.saturating_mul(pages).saturating_add(directories)
    }

    /// Writes header and every directory. Pixel data is left to the mapping.
    pub fn write_metadata(&self, file: &File) -> io::Result<()> {
        let e = self.encoder();
        let trailing_at = self.data_offset + self.data_len();
        let next = if self.trailing_directories() > 0 {
            trailing_at
        } else {
            0
        };
        let mut head = e.header(e.header_len())?;
        head.extend(e.directory(&self.fields(0)?, e.header_len(), next)?);
        file.write_all_at(&head, 0)?;

        let mut tail = Vec::new();
        let pages = 1 + self.trailing_directories();
        for page in 1..pages {
            let here = trailing_at + tail.len() as u64;
            let fields = self.fields(page)?;
            let next = if page + 1 < pages {
                here + e.directory_len(&fields)
            } else {
                0
            };
            tail.extend(e.directory(&fields, here, next)?);
        }
        file.write_all_at(&tail, trailing_at)
    }
}

fn is_imagej_type(dtype: DType) -> bool {
    matches!(dtype, DType::U8 | DType::U16 | DType::F32)
}

/// ImageJ metadata for the types ImageJ opens as they are (8- and 16-bit, 32-bit float);
/// tifffile's shaped-series JSON otherwise, so tifffile still reads the stack's shape.
fn description_for(pages: usize, f: PageFormat) -> String {
    match f.dtype {
        d if is_imagej_type(d) && pages > 1 => {
            format!("ImageJ=1.11a\nimages={pages}\nslices={pages}\nloop=false\n")
        }
        d if is_imagej_type(d) => "ImageJ=1.11a\n".to_string(),
        _ => format!("{{\"shape\": [{pages}, {}, {}]}}", f.height, f.width),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::ifd::TiffFile;

    fn opts() -> WriteOptions {
        WriteOptions {
            software: "imfilter test".into(),
            ..WriteOptions::default()
        }
    }

    fn format(dtype: DType) -> PageFormat {
        PageFormat {
            width: 7,
            height: 5,
            dtype,
        }
    }

    #[test]
    fn a_compressed_strip_holds_its_compressed_size_not_the_worst_case() {
        let strip = [7u8; 65536];
        for compression in [
            Compression::Lzw,
            Compression::Deflate,
            Compression::Zstd,
            Compression::Packbits,
        ] {
            let out = compression.compress(&strip, 1024).expect("compressed");
            assert!(out.capacity() < 4096, "{compression:?}: {}", out.capacity());
        }
    }

    #[test]
    fn small_stacks_are_classic_with_aligned_data() {
        let l = Layout::new(3, format(DType::U16), &opts());
        assert!(!l.bigtiff);
        assert_eq!(l.data_offset % DATA_ALIGN, 0);
        assert_eq!(l.page_bytes, 7 * 5 * 2);
    }

    #[test]
    fn past_4_gib_the_layout_switches_to_bigtiff() {
        let big = PageFormat {
            width: 2048,
            height: 2048,
            dtype: DType::F32,
        };
        assert!(!Layout::new(255, big, &opts()).bigtiff);
        assert!(Layout::new(300, big, &opts()).bigtiff);
    }

    #[test]
    fn written_directories_parse_back_with_every_page_in_place() {
        for bigtiff_pages in [(3usize, DType::F64), (1, DType::U8)] {
            let (pages, dtype) = bigtiff_pages;
            let l = Layout::new(pages, format(dtype), &opts());
            let file = tempfile::tempfile().expect("temp file");
            file.set_len(l.file_len).expect("size");
            l.write_metadata(&file).expect("write");
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut &file, &mut bytes).expect("read");
            let parsed = TiffFile::parse(&bytes).expect("parses");
            assert_eq!(parsed.directories.len(), pages);
            for (i, d) in parsed.directories.iter().enumerate() {
                let at = parsed.uint(d, tag::STRIP_OFFSETS, None).expect("tag");
                assert_eq!(at, Some(l.data_offset + i as u64 * l.page_bytes));
            }
        }
    }

    #[test]
    fn no_codec_writes_more_than_its_worst_case() {
        // Noise is every codec's worst input (LZW's above all); a run of one byte value is
        // its best. The bound sizes the preallocated file, so it must hold for both.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let codecs = [
            Compression::Lzw,
            Compression::Deflate,
            Compression::Zstd,
            Compression::Packbits,
        ];
        for codec in codecs {
            for bytes in [&noise[..], &noise[..1], &[7u8; 65_536][..]] {
                let row = 1000.min(bytes.len());
                let written = codec.compress(bytes, row).expect("compresses").len() as u64;
                let bound = codec.worst_case(bytes.len() as u64, row as u64);
                assert!(
                    written <= bound,
                    "{codec:?}: {} bytes became {written}, past the bound {bound}",
                    bytes.len()
                );
            }
        }
    }
}
