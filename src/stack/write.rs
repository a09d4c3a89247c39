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
use std::io;
use std::os::unix::fs::FileExt;

use super::PageFormat;
use super::ifd::{ByteOrder, tag};
use crate::pixel::DType;

/// Data starts on a page boundary so the mapping's first pixel is aligned for any type and
/// for the vector units.
const DATA_ALIGN: u64 = 4096;

const SHORT: u16 = 3;
const LONG: u16 = 4;
const ASCII: u16 = 2;
const LONG8: u16 = 16;

/// Where everything goes in an output file of `pages` pages.
#[derive(Debug, Clone)]
pub struct Layout {
    pub pages: usize,
    pub format: PageFormat,
    pub bigtiff: bool,
    pub data_offset: u64,
    pub page_bytes: u64,
    pub file_len: u64,
    description: String,
    software: String,
}

impl Layout {
    pub fn new(pages: usize, format: PageFormat, software: &str) -> Layout {
        assert!(
            software.len() >= 8,
            "invariant: texts are stored out of line"
        );
        let description = description_for(pages, format);
        let mut layout = Layout {
            pages,
            format,
            bigtiff: false,
            data_offset: 0,
            page_bytes: (format.pixels() * format.dtype.bytes()) as u64,
            file_len: 0,
            description,
            software: software.to_string(),
        };
        layout.place();
        if layout.file_len > u64::from(u32::MAX) {
            layout.bigtiff = true;
            layout.place();
        }
        layout
    }

    /// Bytes of pixel data, i.e. the length of the mapped block.
    pub fn data_len(&self) -> u64 {
        self.page_bytes * self.pages as u64
    }

    fn place(&mut self) {
        let first = self.header_len() + self.ifd_len(true) + self.long_values_len();
        self.data_offset = first.div_ceil(DATA_ALIGN) * DATA_ALIGN;
        let rest = self.ifd_len(false) * self.pages.saturating_sub(1) as u64;
        self.file_len = self.data_offset + self.data_len() + rest;
    }

    fn header_len(&self) -> u64 {
        if self.bigtiff { 16 } else { 8 }
    }

    fn tag_count(first: bool) -> u64 {
        if first { 13 } else { 11 }
    }

    fn ifd_len(&self, first: bool) -> u64 {
        let n = Self::tag_count(first);
        if self.bigtiff {
            8 + 20 * n + 8
        } else {
            2 + 12 * n + 4
        }
    }

    fn long_values_len(&self) -> u64 {
        let ascii = |s: &str| (s.len() as u64 + 1).next_multiple_of(2);
        ascii(&self.description) + ascii(&self.software)
    }

    /// Writes header and every directory. Pixel data is left to the mapping.
    pub fn write_metadata(&self, file: &File) -> io::Result<()> {
        let mut head = Encoder::new(self.bigtiff);
        head.bytes(if ByteOrder::native() == ByteOrder::Little {
            b"II"
        } else {
            b"MM"
        });
        if self.bigtiff {
            head.u16(43);
            head.u16(8);
            head.u16(0);
            head.u64(self.header_len());
        } else {
            head.u16(42);
            head.u32(self.header_len() as u32);
        }
        let values_at = self.header_len() + self.ifd_len(true);
        let description_at = values_at;
        let software_at = values_at + (self.description.len() as u64 + 1).next_multiple_of(2);
        let trailing_at = self.data_offset + self.data_len();
        let next = if self.pages > 1 { trailing_at } else { 0 };
        self.directory(&mut head, 0, Some((description_at, software_at)), next);
        for text in [&self.description, &self.software] {
            head.bytes(text.as_bytes());
            head.bytes(&[0]);
            if (text.len() + 1) % 2 == 1 {
                head.bytes(&[0]);
            }
        }
        file.write_all_at(&head.buf, 0)?;

        let mut tail = Encoder::new(self.bigtiff);
        for page in 1..self.pages {
            let here = trailing_at + tail.buf.len() as u64;
            let next = if page + 1 < self.pages {
                here + self.ifd_len(false)
            } else {
                0
            };
            self.directory(&mut tail, page, None, next);
        }
        file.write_all_at(&tail.buf, trailing_at)
    }

    /// One directory; `texts` are the offsets of the description and software strings, which
    /// only the first directory carries.
    fn directory(&self, e: &mut Encoder, page: usize, texts: Option<(u64, u64)>, next: u64) {
        let f = self.format;
        let offset_type = if self.bigtiff { LONG8 } else { LONG };
        let strip_at = self.data_offset + self.page_bytes * page as u64;
        e.count(Self::tag_count(texts.is_some()));
        e.entry(tag::NEW_SUBFILE_TYPE, LONG, 1, 0);
        e.entry(tag::IMAGE_WIDTH, LONG, 1, f.width as u64);
        e.entry(tag::IMAGE_LENGTH, LONG, 1, f.height as u64);
        e.entry(tag::BITS_PER_SAMPLE, SHORT, 1, u64::from(f.dtype.bits()));
        e.entry(tag::COMPRESSION, SHORT, 1, 1);
        // BlackIsZero: larger values are brighter, as every analysis tool assumes.
        e.entry(tag::PHOTOMETRIC, SHORT, 1, 1);
        if let Some((description_at, _)) = texts {
            e.entry(
                tag::IMAGE_DESCRIPTION,
                ASCII,
                self.description.len() as u64 + 1,
                description_at,
            );
        }
        e.entry(tag::STRIP_OFFSETS, offset_type, 1, strip_at);
        e.entry(tag::SAMPLES_PER_PIXEL, SHORT, 1, 1);
        e.entry(tag::ROWS_PER_STRIP, LONG, 1, f.height as u64);
        e.entry(tag::STRIP_BYTE_COUNTS, offset_type, 1, self.page_bytes);
        if let Some((_, software_at)) = texts {
            e.entry(
                tag::SOFTWARE,
                ASCII,
                self.software.len() as u64 + 1,
                software_at,
            );
        }
        e.entry(
            tag::SAMPLE_FORMAT,
            SHORT,
            1,
            u64::from(f.dtype.sample_format()),
        );
        e.offset(next);
    }
}

/// ImageJ metadata for the types ImageJ opens as they are (8- and 16-bit, 32-bit float);
/// tifffile's shaped-series JSON otherwise, so tifffile still reads the stack's shape.
fn description_for(pages: usize, f: PageFormat) -> String {
    match f.dtype {
        DType::U8 | DType::U16 | DType::F32 if pages > 1 => {
            format!("ImageJ=1.11a\nimages={pages}\nslices={pages}\nloop=false\n")
        }
        DType::U8 | DType::U16 | DType::F32 => "ImageJ=1.11a\n".to_string(),
        _ => format!("{{\"shape\": [{pages}, {}, {}]}}", f.height, f.width),
    }
}

/// Native-endian TIFF field encoder.
struct Encoder {
    bigtiff: bool,
    buf: Vec<u8>,
}

impl Encoder {
    fn new(bigtiff: bool) -> Encoder {
        Encoder {
            bigtiff,
            buf: Vec::new(),
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_ne_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_ne_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_ne_bytes());
    }
    fn count(&mut self, n: u64) {
        if self.bigtiff {
            self.u64(n)
        } else {
            self.u16(n as u16)
        }
    }
    fn offset(&mut self, v: u64) {
        if self.bigtiff {
            self.u64(v)
        } else {
            self.u32(v as u32)
        }
    }
    /// A one-value entry (or an out-of-line value's offset): the value is left-justified in
    /// the entry's value field, as the spec requires.
    fn entry(&mut self, tag: u16, field_type: u16, count: u64, value: u64) {
        self.u16(tag);
        self.u16(field_type);
        if self.bigtiff {
            self.u64(count)
        } else {
            self.u32(count as u32)
        }
        let field = if self.bigtiff { 8 } else { 4 };
        let mut v = Vec::with_capacity(8);
        match field_type {
            SHORT => v.extend_from_slice(&(value as u16).to_ne_bytes()),
            // The texts are always longer than the value field, so `value` is their offset.
            LONG8 | ASCII if self.bigtiff => v.extend_from_slice(&value.to_ne_bytes()),
            _ => v.extend_from_slice(&(value as u32).to_ne_bytes()),
        }
        v.resize(field, 0);
        self.bytes(&v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::ifd::TiffFile;

    fn format(dtype: DType) -> PageFormat {
        PageFormat {
            width: 7,
            height: 5,
            dtype,
        }
    }

    #[test]
    fn small_stacks_are_classic_with_aligned_data() {
        let l = Layout::new(3, format(DType::U16), "imfilter test");
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
        assert!(!Layout::new(255, big, "imfilter test").bigtiff);
        assert!(Layout::new(300, big, "imfilter test").bigtiff);
    }

    #[test]
    fn written_directories_parse_back_with_every_page_in_place() {
        for bigtiff_pages in [(3usize, DType::F64), (1, DType::U8)] {
            let (pages, dtype) = bigtiff_pages;
            let l = Layout::new(pages, format(dtype), "imfilter test");
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
}
