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

use super::encode::{Encoder, Field};
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
    fn new(bytes: &'a [u8], order: ByteOrder, page: &RawPage) -> Result<Self, String> {
        let file_len = bytes.len() as u64;
        // Classic when every offset fits in 32 bits, as most readers expect.
        let e = Encoder {
            order,
            bigtiff: file_len > u64::from(u32::MAX) - 65536,
        };
        if page.chunks.iter().any(|c| c.0 < e.header_len()) {
            return Err("pixel data overlaps the file header".into());
        }
        let directory_at = file_len + file_len % 2;
        let mut directory = vec![0; (directory_at - file_len) as usize];
        directory.extend(e.directory(&fields_for(page), directory_at, 0));
        Ok(PageView {
            bytes,
            header: e.header(directory_at),
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
            (self.bytes, pos)
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

/// The tags describing `page` for the decoder, sorted, with BlackIsZero added.
fn fields_for(page: &RawPage) -> Vec<(u16, Field)> {
    let offsets = Field::Offsets(page.chunks.iter().map(|c| c.0).collect());
    let counts = Field::Offsets(page.chunks.iter().map(|c| c.1).collect());
    let long = |v: u64| Field::Long(vec![v as u32]);
    let mut fields = vec![
        (tag::IMAGE_WIDTH, long(page.width)),
        (tag::IMAGE_LENGTH, long(page.height)),
        (
            tag::BITS_PER_SAMPLE,
            Field::Short(vec![page.bits_per_sample]),
        ),
        (tag::COMPRESSION, Field::Short(vec![page.compression])),
        (tag::PHOTOMETRIC, Field::Short(vec![1])),
        (tag::SAMPLES_PER_PIXEL, Field::Short(vec![1])),
        (tag::PREDICTOR, Field::Short(vec![page.predictor])),
        (tag::SAMPLE_FORMAT, Field::Short(vec![page.sample_format])),
    ];
    match page.tile {
        Some((tile_width, tile_length)) => fields.extend([
            (tag::TILE_WIDTH, long(tile_width)),
            (tag::TILE_LENGTH, long(tile_length)),
            (tag::TILE_OFFSETS, offsets),
            (tag::TILE_BYTE_COUNTS, counts),
        ]),
        None => fields.extend([
            (tag::STRIP_OFFSETS, offsets),
            (tag::ROWS_PER_STRIP, long(page.rows_per_strip)),
            (tag::STRIP_BYTE_COUNTS, counts),
        ]),
    }
    fields.sort_by_key(|(t, _)| *t);
    fields
}
