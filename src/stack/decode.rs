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
//!
//! Deflate, ZSTD, LZMA and LZW chunks are decoded here first, not by the tiff crate (LZW
//! because its reader fails on right-edge tiles: `unlzw`). For the first three, it reads a stream
//! only as far as the pixels it needs, so it never reaches the end where zlib's Adler-32 and
//! ZSTD's frame checksum are checked, and a corrupt chunk decodes to wrong pixels without an
//! error. Each chunk is inflated whole, must end where its stream says it ends, pass its
//! checksum, and give exactly the bytes its rows or tile need; the tiff crate then undoes the
//! predictor and byte order over the inflated chunks as if they had been stored uncompressed.

use std::io::{self, Read, Seek, SeekFrom};

use tiff::decoder::{Decoder, Limits};

use super::encode::{Encoder, Field};
use super::ifd::{ByteOrder, tag};
use super::source::RawPage;

/// Compression codes imfilter decodes: every lossless one the tiff crate knows, and JPEG
/// (TIFF Technical Note 2, "new-style" JPEG, 8-bit; the tiff crate decodes it with zune-jpeg),
/// which old detector software writes. JPEG inputs are read as they are; outputs stay lossless.
/// LZMA (34925, libtiff's and tifffile's .xz streams) is decoded here with liblzma.
pub fn can_decode(compression: u16) -> bool {
    matches!(compression, 1 | 5 | 7 | 8 | 32946 | 32773 | 34925 | 50000)
}

/// Whether pages of this compression are decoded chunk by chunk into a buffer of their own
/// first, by imfilter (`inflate_chunks`), rather than by the tiff crate in place: a worker
/// then holds two copies of the page.
pub fn decodes_whole_chunks(compression: u16) -> bool {
    matches!(compression, 5 | 8 | 32946 | 34925 | 50000)
}

/// Decodes `page` of the file `bytes` into `dst` (exactly the page's pixel bytes).
pub fn decode_page(
    bytes: &[u8],
    byte_order: ByteOrder,
    page: &RawPage,
    dst: &mut [u8],
) -> Result<(), String> {
    check_chunk_count(page)?;
    if page.compression != 1 && page.chunks.iter().any(|c| c.1 == 0) {
        // libtiff refuses these too: a compressed chunk always has at least a stream header.
        let i = page.chunks.iter().position(|c| c.1 == 0).unwrap_or(0);
        return Err(format!(
            "corrupt TIFF: compressed {} {i} has 0 bytes",
            chunk_kind(page)
        ));
    }
    match page.compression {
        code if decodes_whole_chunks(code) => {
            let (inflated, plain) =
                inflate_chunks(bytes, page).map_err(|why| format!("cannot decode: {why}"))?;
            decode_with_tiff(&inflated, byte_order, &plain, dst)
        }
        _ => decode_with_tiff(bytes, byte_order, page, dst),
    }
}

fn decode_with_tiff(
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

/// How much of a first chunk [`probe`] decodes.
const PROBE_BYTES: usize = 64 << 10;

/// Decodes the start of `page`'s first Deflate or ZSTD chunk (at most [`PROBE_BYTES`]), and
/// checks a ZSTD frame's stated content size against what the chunk must hold. Cheap enough
/// to run when a file is opened; LZW and PackBits claims are bounded by their expansion
/// limits instead (`source::max_expansion`), since any bytes start a valid stream of theirs.
pub fn probe(bytes: &[u8], page: &RawPage) -> Result<(), String> {
    let Some(&(offset, count)) = page.chunks.first() else {
        return Ok(());
    };
    let Some(stored) = usize::try_from(offset)
        .ok()
        .zip(usize::try_from(count).ok())
        .and_then(|(offset, count)| bytes.get(offset..)?.get(..count))
    else {
        return Err("corrupt TIFF: the first strip lies past the end of the file".into());
    };
    let kind = chunk_kind(page);
    let mut out = vec![0u8; PROBE_BYTES];
    match page.compression {
        8 | 32946 => {
            use flate2::{Decompress, FlushDecompress};
            Decompress::new(true)
                .decompress(stored, &mut out, FlushDecompress::None)
                .map_err(|e| format!("{kind} 0: corrupt Deflate data ({e})"))?;
        }
        50000 => {
            use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};
            if let Ok(Some(stated)) = zstd::zstd_safe::get_frame_content_size(stored) {
                let (exact, padded) = expected_lengths(page, 0)?;
                if stated != exact && stated != padded {
                    return Err(format!(
                        "{kind} 0: corrupt ZSTD data (the frame says {stated} bytes, the {kind} \
                         holds {exact})"
                    ));
                }
            }
            let mut decoder = Decoder::new().map_err(|e| format!("cannot start ZSTD: {e}"))?;
            decoder
                .run(
                    &mut InBuffer::around(stored),
                    &mut OutBuffer::around(&mut out[..]),
                )
                .map_err(|e| format!("{kind} 0: corrupt ZSTD data ({e})"))?;
        }
        _ => {}
    }
    Ok(())
}

fn chunk_kind(page: &RawPage) -> &'static str {
    if page.tile.is_some() { "tile" } else { "strip" }
}

/// Bytes per row of a chunk `width` pixels wide (grayscale: one sample per pixel).
fn row_bytes(page: &RawPage, width: u64) -> Result<u64, String> {
    width
        .checked_mul(u64::from(page.bits_per_sample))
        .map(|bits| bits.div_ceil(8))
        .ok_or_else(|| {
            format!(
                "image of {}x{} pixels is too large",
                page.width, page.height
            )
        })
}

/// A page needs one chunk per strip (or tile) its size implies; fewer means a writer stopped.
fn check_chunk_count(page: &RawPage) -> Result<(), String> {
    let needed = match page.tile {
        Some((tw, tl)) => page
            .width
            .div_ceil(tw)
            .saturating_mul(page.height.div_ceil(tl)),
        None => page.height.div_ceil(page.rows_per_strip.max(1)),
    };
    if (page.chunks.len() as u64) < needed {
        return Err(format!(
            "corrupt TIFF: {} {}s, but a {}x{} page needs {needed}",
            page.chunks.len(),
            chunk_kind(page),
            page.width,
            page.height
        ));
    }
    Ok(())
}

/// The lengths chunk `i` may inflate to: exactly what its rows or tile hold, or, for the
/// last strip, a full strip's worth (some writers pad it to `RowsPerStrip` rows).
fn expected_lengths(page: &RawPage, i: u64) -> Result<(u64, u64), String> {
    let too_large = || {
        format!(
            "image of {}x{} pixels is too large",
            page.width, page.height
        )
    };
    match page.tile {
        Some((tw, tl)) => {
            let len = row_bytes(page, tw)?.checked_mul(tl).ok_or_else(too_large)?;
            Ok((len, len))
        }
        None => {
            let rps = page.rows_per_strip.max(1);
            let row = row_bytes(page, page.width)?;
            let rows = rps.min(page.height.saturating_sub(i * rps));
            let full = row.checked_mul(rps).ok_or_else(too_large)?;
            Ok((row * rows, full))
        }
    }
}

/// Decodes every chunk of `page` (Deflate, ZSTD, LZMA or LZW) into one buffer, checked (module doc).
/// Returns the buffer and `page` described as uncompressed chunks of that buffer.
fn inflate_chunks(bytes: &[u8], page: &RawPage) -> Result<(Vec<u8>, RawPage), String> {
    // The buffer starts with room for a BigTIFF header, so no chunk overlaps the synthetic one.
    const LEAD: u64 = 16;
    let mut total = LEAD;
    let mut sizes = Vec::with_capacity(page.chunks.len());
    for i in 0..page.chunks.len() as u64 {
        let (exact, _) = expected_lengths(page, i)?;
        sizes.push(exact);
        total = total.checked_add(exact).ok_or("image is too large")?;
    }
    let total = usize::try_from(total).map_err(|_| "image is too large")?;
    let mut out = Vec::new();
    out.try_reserve_exact(total).map_err(|_| {
        format!(
            "cannot allocate {} MiB to decode it: out of memory",
            total >> 20
        )
    })?;
    out.resize(LEAD as usize, 0);
    let mut plain = page.clone();
    plain.compression = 1;
    plain.chunks.clear();
    let mut scratch = Vec::new();
    for (i, &(offset, count)) in page.chunks.iter().enumerate() {
        let (exact, padded) = expected_lengths(page, i as u64)?;
        let stored = &bytes[offset as usize..][..count as usize];
        scratch.clear();
        let got = match page.compression {
            50000 => unzstd(stored, padded, &mut scratch),
            5 => unlzw(stored, padded, &mut scratch),
            34925 => unxz(stored, padded, &mut scratch),
            _ => inflate(stored, padded, &mut scratch),
        }
        .map_err(|why| format!("{} {i}: {why}", chunk_kind(page)))?;
        if got != exact && got != padded {
            return Err(format!(
                "{} {i}: decodes to {got} bytes, {exact} expected",
                chunk_kind(page)
            ));
        }
        plain.chunks.push((out.len() as u64, exact));
        out.extend_from_slice(&scratch[..exact as usize]);
    }
    debug_assert_eq!(sizes.iter().sum::<u64>() + LEAD, out.len() as u64);
    Ok((out, plain))
}

/// Decodes one TIFF LZW chunk whole (codes most significant bit first, widths switching one
/// code early as TIFF 6.0 says), with weezl, the decoder the tiff crate uses. Not left to the
/// tiff crate: for a tile at the right edge it reads only the columns inside the image and
/// then wants the end code, which it has not reached ("no lzw end code found", issue 15). A
/// stream that stops without its end code but gives the chunk's bytes is accepted, as libtiff
/// does.
fn unlzw(stored: &[u8], most: u64, out: &mut Vec<u8>) -> Result<u64, String> {
    let most = usize::try_from(most).map_err(|_| "chunk is too large")?;
    // One byte of room past the most it may hold tells "too long" from "just fits".
    out.resize(most + 1, 0);
    let mut decoder = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
    let (mut input, mut written) = (stored, 0);
    loop {
        let step = decoder.decode_bytes(input, &mut out[written..]);
        input = &input[step.consumed_in..];
        written += step.consumed_out;
        match step.status {
            Ok(weezl::LzwStatus::Done) => break,
            Ok(_) if written == out.len() => break,
            Ok(_) if step.consumed_in == 0 && step.consumed_out == 0 => break,
            Ok(_) => {}
            Err(e) => return Err(format!("corrupt LZW data ({e})")),
        }
    }
    Ok(written as u64)
}

/// Inflates the zlib stream `stored` into `dst` as far as either goes: whether the stream
/// ended (its Adler-32 is checked there, so a damaged stream is an error, not wrong bytes) and
/// how many bytes it gave. Not ended means `dst` filled first or `stored` is cut short.
pub(crate) fn inflate_zlib(stored: &[u8], dst: &mut [u8]) -> Result<(bool, usize), String> {
    use flate2::{Decompress, FlushDecompress, Status};
    let mut z = Decompress::new(true);
    let status = z
        .decompress(stored, dst, FlushDecompress::Finish)
        .map_err(|e| e.to_string())?;
    Ok((status == Status::StreamEnd, z.total_out() as usize))
}

/// Inflates one zlib stream, to its end: the Adler-32 is checked there.
fn inflate(stored: &[u8], most: u64, out: &mut Vec<u8>) -> Result<u64, String> {
    let most = usize::try_from(most).map_err(|_| "chunk is too large")?;
    // One byte of room past the most it may hold tells "too long" from "just fits".
    out.resize(most + 1, 0);
    match inflate_zlib(stored, out).map_err(|e| format!("corrupt Deflate data ({e})"))? {
        (true, got) => Ok(got as u64),
        (false, got) if got > most => Err(format!(
            "corrupt Deflate data (it decodes to more than {most} bytes)"
        )),
        (false, _) => Err("corrupt Deflate data (the stream ends early)".into()),
    }
}

/// Decompresses one LZMA chunk, an .xz stream (libtiff's `tif_lzma.c` writes one with
/// `lzma_stream_encoder`), read to its end so that its integrity check is verified.
fn unxz(stored: &[u8], most: u64, out: &mut Vec<u8>) -> Result<u64, String> {
    use std::io::Read;
    let mut decoder = liblzma::read::XzDecoder::new(stored).take(most.saturating_add(1));
    decoder
        .read_to_end(out)
        .map_err(|e| format!("corrupt LZMA data ({e})"))?;
    let got = out.len() as u64;
    if got > most {
        return Err(format!(
            "corrupt LZMA data (it decodes to more than {most} bytes)"
        ));
    }
    Ok(got)
}

/// Decompresses one ZSTD frame: libzstd checks the frame checksum when the writer stored one,
/// and the content size, when the header states it, must be what was decoded.
fn unzstd(stored: &[u8], most: u64, out: &mut Vec<u8>) -> Result<u64, String> {
    let most = usize::try_from(most).map_err(|_| "chunk is too large")?;
    out.resize(most + 1, 0);
    let got = zstd::bulk::decompress_to_buffer(stored, out.as_mut_slice())
        .map_err(|e| format!("corrupt ZSTD data ({e})"))? as u64;
    if let Ok(Some(stated)) = zstd::zstd_safe::get_frame_content_size(stored)
        && stated != got
    {
        return Err(format!(
            "corrupt ZSTD data (the frame says {stated} bytes, {got} decoded)"
        ));
    }
    if got as usize > most {
        return Err(format!(
            "corrupt ZSTD data (it decodes to more than {most} bytes)"
        ));
    }
    Ok(got)
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
        let fields = fields_for(page).map_err(|e| e.to_string())?;
        directory.extend(
            e.directory(&fields, directory_at, 0)
                .map_err(|e| e.to_string())?,
        );
        Ok(PageView {
            bytes,
            header: e.header(directory_at).map_err(|e| e.to_string())?,
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
fn fields_for(page: &RawPage) -> io::Result<Vec<(u16, Field)>> {
    let offsets = Field::Offsets(page.chunks.iter().map(|c| c.0).collect());
    let counts = Field::Offsets(page.chunks.iter().map(|c| c.1).collect());
    let long = |v: u64| super::encode::long(v, "image size").map(|v| Field::Long(vec![v]));
    let mut fields = vec![
        (tag::IMAGE_WIDTH, long(page.width)?),
        (tag::IMAGE_LENGTH, long(page.height)?),
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
    if let Some(tables) = &page.jpeg_tables {
        fields.push((tag::JPEG_TABLES, Field::Undefined(tables.clone())));
    }
    match page.tile {
        Some((tile_width, tile_length)) => fields.extend([
            (tag::TILE_WIDTH, long(tile_width)?),
            (tag::TILE_LENGTH, long(tile_length)?),
            (tag::TILE_OFFSETS, offsets),
            (tag::TILE_BYTE_COUNTS, counts),
        ]),
        None => fields.extend([
            (tag::STRIP_OFFSETS, offsets),
            (tag::ROWS_PER_STRIP, long(page.rows_per_strip)?),
            (tag::STRIP_BYTE_COUNTS, counts),
        ]),
    }
    fields.sort_by_key(|(t, _)| *t);
    Ok(fields)
}
