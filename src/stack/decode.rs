//! Decoding compressed or tiled pages with the tiff crate, any page directly.
//!
//! The tiff crate's `Decoder` starts at the file's first directory and walks the chain to
//! reach page N (quadratic over a stack), and it refuses pages without a
//! PhotometricInterpretation tag, which detector software often omits. So imfilter hands it a
//! *view* of the file: the real bytes, with a header pointing at one synthetic directory
//! appended past the end. That directory repeats the page's own layout (sizes, type,
//! compression, predictor, strip or tile positions in the real bytes) and adds
//! `PhotometricInterpretation = BlackIsZero`. Each worker builds its own view, so pages decode
//! in parallel, and the pixels land in the caller's buffer in native byte order.

use std::io::{self, Read, Seek, SeekFrom};

use tiff::decoder::{Decoder, Limits};

use super::ifd::{ByteOrder, tag};
use super::source::RawPage;

/// Compression codes the tiff crate decodes losslessly.
pub fn can_decode(compression: u16) -> bool {
    matches!(compression, 1 | 5 | 8 | 32946 | 32773 | 50000)
}

/// Decodes `page` of the file `bytes` into `dst` (exactly the page's pixel bytes).
pub fn decode_page(
    bytes: &[u8],
    byte_order: ByteOrder,
    page: &RawPage,
    dst: &mut [u8],
) -> Result<(), String> {
    let view = PageView::new(bytes, byte_order, page)?;
    let mut decoder = Decoder::new(view)
        .map_err(|e| format!("cannot decode: {e}"))?
        .with_limits(Limits::unlimited());
    decoder
        .read_image_bytes(dst)
        .map_err(|e| format!("cannot decode: {e}"))
}

/// The file's bytes with a synthetic header in front and a synthetic directory behind.
struct PageView<'a> {
    bytes: &'a [u8],
    header: Vec<u8>,
    directory: Vec<u8>,
    position: u64,
}

impl<'a> PageView<'a> {
    fn new(bytes: &'a [u8], byte_order: ByteOrder, page: &RawPage) -> Result<Self, String> {
        let file_len = bytes.len() as u64;
        let mut e = FieldWriter {
            order: byte_order,
            bigtiff: false,
            buf: Vec::new(),
        };
        let lowest = page.chunks.iter().map(|c| c.0).min().unwrap_or(u64::MAX);
        // Classic when every offset fits in 32 bits; the header must not cover pixel data.
        e.bigtiff = file_len > u64::from(u32::MAX) - 4096;
        let header_len = if e.bigtiff { 16 } else { 8 };
        if lowest < header_len {
            return Err("pixel data overlaps the file header".into());
        }
        let directory_at = file_len;
        let directory = directory_for(page, &mut e, directory_at);
        let mut h = FieldWriter {
            order: byte_order,
            bigtiff: e.bigtiff,
            buf: Vec::new(),
        };
        h.buf.extend_from_slice(if byte_order == ByteOrder::Little {
            b"II"
        } else {
            b"MM"
        });
        if e.bigtiff {
            h.u16(43);
            h.u16(8);
            h.u16(0);
            h.u64(directory_at);
        } else {
            h.u16(42);
            h.u32(directory_at as u32);
        }
        Ok(PageView {
            bytes,
            header: h.buf,
            directory,
            position: 0,
        })
    }

    fn len(&self) -> u64 {
        self.bytes.len() as u64 + self.directory.len() as u64
    }
}

impl Read for PageView<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let (pos, header_len, file_len) = (
            self.position,
            self.header.len() as u64,
            self.bytes.len() as u64,
        );
        // Each call stays inside one region (header, file, directory); callers loop.
        let (region, at): (&[u8], u64) = if pos < header_len {
            (&self.header, pos)
        } else if pos < file_len {
            (&self.bytes[..], pos)
        } else {
            (&self.directory, pos - file_len)
        };
        let start = at.min(region.len() as u64) as usize;
        let n = (region.len() - start).min(out.len());
        out[..n].copy_from_slice(&region[start..start + n]);
        self.position += n as u64;
        Ok(n)
    }
}

impl Seek for PageView<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.position.checked_add_signed(d),
        };
        self.position = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?;
        Ok(self.position)
    }
}

/// One directory describing `page`, to be placed at `at`; long arrays follow it.
fn directory_for(page: &RawPage, w: &mut FieldWriter, at: u64) -> Vec<u8> {
    let offsets: Vec<u64> = page.chunks.iter().map(|c| c.0).collect();
    let counts: Vec<u64> = page.chunks.iter().map(|c| c.1).collect();
    let mut entries: Vec<(u16, Value)> = vec![
        (tag::IMAGE_WIDTH, Value::Long(page.width)),
        (tag::IMAGE_LENGTH, Value::Long(page.height)),
        (tag::BITS_PER_SAMPLE, Value::Short(page.bits_per_sample)),
        (tag::COMPRESSION, Value::Short(page.compression)),
        (tag::PHOTOMETRIC, Value::Short(1)),
        (tag::SAMPLES_PER_PIXEL, Value::Short(1)),
        (tag::PREDICTOR, Value::Short(page.predictor)),
        (tag::SAMPLE_FORMAT, Value::Short(page.sample_format)),
    ];
    match page.tile {
        Some((tile_width, tile_length)) => entries.extend([
            (tag::TILE_WIDTH, Value::Long(tile_width)),
            (tag::TILE_LENGTH, Value::Long(tile_length)),
            (tag::TILE_OFFSETS, Value::Offsets(offsets)),
            (tag::TILE_BYTE_COUNTS, Value::Offsets(counts)),
        ]),
        None => entries.extend([
            (tag::STRIP_OFFSETS, Value::Offsets(offsets)),
            (tag::ROWS_PER_STRIP, Value::Long(page.rows_per_strip)),
            (tag::STRIP_BYTE_COUNTS, Value::Offsets(counts)),
        ]),
    }
    entries.sort_by_key(|(t, _)| *t);

    let (entry_len, count_len, next_len) = if w.bigtiff { (20, 8, 8) } else { (12, 2, 4) };
    let inline = if w.bigtiff { 8 } else { 4 };
    let mut long_values_at = at + count_len + entry_len * entries.len() as u64 + next_len;
    let mut long_values = FieldWriter {
        order: w.order,
        bigtiff: w.bigtiff,
        buf: Vec::new(),
    };
    w.count(entries.len() as u64);
    for (t, value) in &entries {
        w.u16(*t);
        match value {
            Value::Short(v) => {
                w.u16(3);
                w.count_field(1);
                w.u16(*v);
                w.pad(inline - 2);
            }
            Value::Long(v) => {
                w.u16(4);
                w.count_field(1);
                w.u32(*v as u32);
                w.pad(inline - 4);
            }
            Value::Offsets(values) => {
                let (field_type, size) = if w.bigtiff { (16, 8) } else { (4, 4) };
                w.u16(field_type);
                w.count_field(values.len() as u64);
                let mut array = FieldWriter {
                    order: w.order,
                    bigtiff: w.bigtiff,
                    buf: Vec::new(),
                };
                values.iter().for_each(|&v| array.offset(v));
                if values.len() as u64 * size <= inline {
                    let n = array.buf.len();
                    w.buf.extend_from_slice(&array.buf);
                    w.pad(inline - n as u64);
                } else {
                    w.offset(long_values_at);
                    long_values_at += array.buf.len() as u64;
                    long_values.buf.extend_from_slice(&array.buf);
                }
            }
        }
    }
    w.offset(0);
    let mut out = std::mem::take(&mut w.buf);
    out.extend_from_slice(&long_values.buf);
    out
}

enum Value {
    Short(u16),
    Long(u64),
    Offsets(Vec<u64>),
}

struct FieldWriter {
    order: ByteOrder,
    bigtiff: bool,
    buf: Vec<u8>,
}

impl FieldWriter {
    fn u16(&mut self, v: u16) {
        let b = if self.order == ByteOrder::Little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        self.buf.extend_from_slice(&b);
    }
    fn u32(&mut self, v: u32) {
        let b = if self.order == ByteOrder::Little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        self.buf.extend_from_slice(&b);
    }
    fn u64(&mut self, v: u64) {
        let b = if self.order == ByteOrder::Little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        self.buf.extend_from_slice(&b);
    }
    fn pad(&mut self, n: u64) {
        self.buf.resize(self.buf.len() + n as usize, 0);
    }
    fn count(&mut self, n: u64) {
        if self.bigtiff {
            self.u64(n)
        } else {
            self.u16(n as u16)
        }
    }
    fn count_field(&mut self, n: u64) {
        if self.bigtiff {
            self.u64(n)
        } else {
            self.u32(n as u32)
        }
    }
    fn offset(&mut self, v: u64) {
        if self.bigtiff {
            self.u64(v)
        } else {
            self.u32(v as u32)
        }
    }
}
