//! Walking a TIFF file's directory (IFD) chain, over the file's bytes, without trusting it.
//!
//! Why not the tiff crate's `Decoder` for this: it builds a full `Image` for every directory
//! and refuses valid files it cannot decode (no PhotometricInterpretation, as many detector
//! programs write), and it has no parse-only walk that reports where each page's bytes are.
//! imfilter needs exactly that walk — page shapes, types and strip positions — to decide
//! whether a page can be read in place. The tiff crate still decodes compressed pages.
//!
//! Every offset and count read here is checked against the file's length before it is used,
//! so a corrupt header can never index out of bounds or size an allocation beyond the file.

use std::collections::HashSet;
use std::fmt;

/// Byte order of a TIFF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    Little,
    Big,
}

impl ByteOrder {
    pub fn native() -> ByteOrder {
        if cfg!(target_endian = "little") {
            ByteOrder::Little
        } else {
            ByteOrder::Big
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ByteOrder::Little => "little-endian",
            ByteOrder::Big => "big-endian",
        }
    }
}

/// Tag numbers imfilter reads (TIFF 6.0 and the TIFF tiles supplement).
pub mod tag {
    pub const NEW_SUBFILE_TYPE: u16 = 254;
    pub const IMAGE_WIDTH: u16 = 256;
    pub const IMAGE_LENGTH: u16 = 257;
    pub const BITS_PER_SAMPLE: u16 = 258;
    pub const COMPRESSION: u16 = 259;
    pub const PHOTOMETRIC: u16 = 262;
    pub const IMAGE_DESCRIPTION: u16 = 270;
    pub const STRIP_OFFSETS: u16 = 273;
    pub const SAMPLES_PER_PIXEL: u16 = 277;
    pub const ROWS_PER_STRIP: u16 = 278;
    pub const STRIP_BYTE_COUNTS: u16 = 279;
    pub const PLANAR_CONFIGURATION: u16 = 284;
    pub const SOFTWARE: u16 = 305;
    pub const PREDICTOR: u16 = 317;
    pub const TILE_WIDTH: u16 = 322;
    pub const TILE_LENGTH: u16 = 323;
    pub const TILE_OFFSETS: u16 = 324;
    pub const TILE_BYTE_COUNTS: u16 = 325;
    pub const SAMPLE_FORMAT: u16 = 339;
    /// The quantisation and Huffman tables every JPEG strip or tile of the page shares.
    pub const JPEG_TABLES: u16 = 347;
    pub const X_RESOLUTION: u16 = 282;
    pub const Y_RESOLUTION: u16 = 283;
    pub const RESOLUTION_UNIT: u16 = 296;
    /// imfilter's history of the result (the sidecar's JSON), in the first directory: a tag
    /// from the range TIFF keeps for private use (65000–65535), so ImageJ's and tifffile's
    /// ImageDescription stays theirs, and the history goes wherever the file goes (a pipe, a
    /// copy).
    pub const IMFILTER_HISTORY: u16 = 65321;
}

/// What is wrong with a file's structure; the caller adds the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfdError {
    NotTiff,
    Empty,
    Truncated(&'static str),
    Loop(u64),
    BadEntry { tag: u16, why: &'static str },
    NoPages,
}

impl fmt::Display for IfdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IfdError::Empty => write!(f, "empty file (0 bytes), not a TIFF"),
            IfdError::NotTiff => write!(f, "not a TIFF file (no II*/MM* signature)"),
            IfdError::Truncated(what) => write!(f, "file is truncated: {what} lies past its end"),
            IfdError::Loop(at) => write!(
                f,
                "corrupt TIFF: the directory chain loops back to offset {at}"
            ),
            IfdError::BadEntry { tag, why } => write!(f, "corrupt TIFF: tag {tag} {why}"),
            IfdError::NoPages => write!(f, "TIFF file has no image directory"),
        }
    }
}

impl std::error::Error for IfdError {}

/// One directory entry, its values not yet read.
#[derive(Debug, Clone, Copy)]
struct Entry {
    tag: u16,
    field_type: u16,
    count: u64,
    /// Where the values are: inside the entry itself or at an offset in the file.
    value_at: u64,
}

/// One image directory, as read from the file.
#[derive(Debug, Clone)]
pub struct Directory {
    /// Offset of this directory in the file, for error messages and `info`.
    pub offset: u64,
    entries: Vec<Entry>,
}

/// A TIFF file's header and directories, borrowed from its bytes.
pub struct TiffFile<'a> {
    bytes: &'a [u8],
    pub byte_order: ByteOrder,
    pub bigtiff: bool,
    pub directories: Vec<Directory>,
}

/// How many bytes of a file's start [`check_signature`] needs to see.
pub const SIGNATURE_LEN: usize = 8;

/// Whether `head`, a file's first bytes (up to [`SIGNATURE_LEN`]), starts a TIFF or BigTIFF:
/// for a stream read before it is stored, such as standard input.
pub fn check_signature(head: &[u8]) -> Result<(), IfdError> {
    if head.is_empty() {
        return Err(IfdError::Empty);
    }
    let version = match head.get(0..4) {
        Some(b"II*\0" | b"MM\0*") => 42,
        Some(b"II+\0" | b"MM\0+") => 43,
        Some(_) => return Err(IfdError::NotTiff),
        None => return Err(IfdError::Truncated("the header")),
    };
    let bigtiff_sizes = match head[0] {
        b'I' => [8, 0, 0, 0],
        _ => [0, 8, 0, 0],
    };
    match head.get(4..SIGNATURE_LEN) {
        None => Err(IfdError::Truncated("the header")),
        Some(sizes) if version == 43 && sizes != bigtiff_sizes => Err(IfdError::NotTiff),
        Some(_) => Ok(()),
    }
}

impl<'a> TiffFile<'a> {
    /// Parses the header and walks every directory. Bounded: each directory is visited once,
    /// and the number of directories can't exceed what the file's length can hold.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, IfdError> {
        if bytes.is_empty() {
            return Err(IfdError::Empty);
        }
        let byte_order = match bytes.get(0..2) {
            Some(b"II") => ByteOrder::Little,
            Some(b"MM") => ByteOrder::Big,
            _ => return Err(IfdError::NotTiff),
        };
        let mut file = TiffFile {
            bytes,
            byte_order,
            bigtiff: false,
            directories: Vec::new(),
        };
        let version = file.u16_at(2).ok_or(IfdError::NotTiff)?;
        let mut next = match version {
            42 => u64::from(file.u32_at(4).ok_or(IfdError::Truncated("the header"))?),
            43 => {
                if file.u16_at(4) != Some(8) || file.u16_at(6) != Some(0) {
                    return Err(IfdError::NotTiff);
                }
                file.bigtiff = true;
                file.u64_at(8).ok_or(IfdError::Truncated("the header"))?
            }
            _ => return Err(IfdError::NotTiff),
        };
        let mut seen = HashSet::new();
        while next != 0 {
            if !seen.insert(next) {
                return Err(IfdError::Loop(next));
            }
            let (dir, following) = file.read_directory(next)?;
            file.directories.push(dir);
            next = following;
        }
        if file.directories.is_empty() {
            return Err(IfdError::NoPages);
        }
        Ok(file)
    }

    fn read_directory(&self, offset: u64) -> Result<(Directory, u64), IfdError> {
        let (count_size, entry_size, next_size) =
            if self.bigtiff { (8, 20, 8) } else { (2, 12, 4) };
        let count = if self.bigtiff {
            self.u64_at(offset)
        } else {
            self.u16_at(offset).map(u64::from)
        }
        .ok_or(IfdError::Truncated("an image directory"))?;
        let entries_start = offset + count_size;
        let end = count
            .checked_mul(entry_size)
            .and_then(|n| n.checked_add(entries_start + next_size))
            .filter(|&end| end <= self.bytes.len() as u64)
            .ok_or(IfdError::Truncated("an image directory"))?;
        let mut entries = Vec::with_capacity(count as usize);
        for i in 0..count {
            let at = entries_start + i * entry_size;
            let tag = self.u16_at(at).ok_or(IfdError::Truncated("a tag"))?;
            let field_type = self.u16_at(at + 2).ok_or(IfdError::Truncated("a tag"))?;
            let (count, inline_at, inline_size) = if self.bigtiff {
                (self.u64_at(at + 4), at + 12, 8)
            } else {
                (self.u32_at(at + 4).map(u64::from), at + 8, 4)
            };
            let count = count.ok_or(IfdError::Truncated("a tag"))?;
            let Some(size) = type_size(field_type) else {
                // Unknown field types are allowed by the spec; such tags are skipped.
                continue;
            };
            let total = count.checked_mul(size).ok_or(IfdError::BadEntry {
                tag,
                why: "has a value count that overflows",
            })?;
            let value_at = if total <= inline_size {
                inline_at
            } else {
                let pointed = if self.bigtiff {
                    self.u64_at(inline_at)
                } else {
                    self.u32_at(inline_at).map(u64::from)
                }
                .ok_or(IfdError::Truncated("a tag"))?;
                if pointed
                    .checked_add(total)
                    .is_none_or(|e| e > self.bytes.len() as u64)
                {
                    return Err(IfdError::BadEntry {
                        tag,
                        why: "has values past the end of the file",
                    });
                }
                pointed
            };
            entries.push(Entry {
                tag,
                field_type,
                count,
                value_at,
            });
        }
        let next = if self.bigtiff {
            self.u64_at(end - 8)
        } else {
            self.u32_at(end - 4).map(u64::from)
        }
        .ok_or(IfdError::Truncated("an image directory"))?;
        Ok((Directory { offset, entries }, next))
    }

    fn entry(&self, dir: &Directory, tag: u16) -> Option<Entry> {
        dir.entries.iter().copied().find(|e| e.tag == tag)
    }

    /// The unsigned integer values of a tag (BYTE, SHORT, LONG, LONG8, IFD types).
    pub fn uints(&self, dir: &Directory, tag: u16) -> Result<Option<Vec<u64>>, IfdError> {
        let Some(e) = self.entry(dir, tag) else {
            return Ok(None);
        };
        let size = type_size(e.field_type).unwrap_or(0);
        let mut values = Vec::with_capacity(e.count as usize);
        for i in 0..e.count {
            let at = e.value_at + i * size;
            let v = match e.field_type {
                1 | 7 => self.bytes.get(at as usize).map(|&b| u64::from(b)),
                3 => self.u16_at(at).map(u64::from),
                4 | 13 => self.u32_at(at).map(u64::from),
                16 | 18 => self.u64_at(at),
                _ => {
                    return Err(IfdError::BadEntry {
                        tag,
                        why: "does not hold unsigned integers",
                    });
                }
            };
            values.push(v.ok_or(IfdError::Truncated("a tag value"))?);
        }
        Ok(Some(values))
    }

    /// A tag that must hold exactly one unsigned integer, or `default` when absent.
    pub fn uint(
        &self,
        dir: &Directory,
        tag: u16,
        default: Option<u64>,
    ) -> Result<Option<u64>, IfdError> {
        match self.uints(dir, tag)? {
            None => Ok(default),
            Some(v) if v.is_empty() => Err(IfdError::BadEntry {
                tag,
                why: "has no value",
            }),
            Some(v) => Ok(Some(v[0])),
        }
    }

    /// A RATIONAL tag's (numerator, denominator) pairs; `None` if absent or of another type.
    pub fn rationals(&self, dir: &Directory, tag: u16) -> Option<Vec<(u32, u32)>> {
        let e = self.entry(dir, tag).filter(|e| e.field_type == 5)?;
        (0..e.count)
            .map(|i| {
                Some((
                    self.u32_at(e.value_at + 8 * i)?,
                    self.u32_at(e.value_at + 8 * i + 4)?,
                ))
            })
            .collect()
    }

    /// An ASCII tag's text up to its first NUL; invalid UTF-8 is replaced, not refused.
    pub fn ascii(&self, dir: &Directory, tag: u16) -> Option<String> {
        let e = self.entry(dir, tag).filter(|e| e.field_type == 2)?;
        let start = usize::try_from(e.value_at).ok()?;
        let raw = self
            .bytes
            .get(start..start.checked_add(e.count as usize)?)?;
        let text = raw.split(|&b| b == 0).next().unwrap_or(raw);
        Some(String::from_utf8_lossy(text).into_owned())
    }

    fn u16_at(&self, at: u64) -> Option<u16> {
        let b: [u8; 2] = self.slice(at, 2)?.try_into().ok()?;
        Some(match self.byte_order {
            ByteOrder::Little => u16::from_le_bytes(b),
            ByteOrder::Big => u16::from_be_bytes(b),
        })
    }

    fn u32_at(&self, at: u64) -> Option<u32> {
        let b: [u8; 4] = self.slice(at, 4)?.try_into().ok()?;
        Some(match self.byte_order {
            ByteOrder::Little => u32::from_le_bytes(b),
            ByteOrder::Big => u32::from_be_bytes(b),
        })
    }

    fn u64_at(&self, at: u64) -> Option<u64> {
        let b: [u8; 8] = self.slice(at, 8)?.try_into().ok()?;
        Some(match self.byte_order {
            ByteOrder::Little => u64::from_le_bytes(b),
            ByteOrder::Big => u64::from_be_bytes(b),
        })
    }

    fn slice(&self, at: u64, len: usize) -> Option<&[u8]> {
        let start = usize::try_from(at).ok()?;
        self.bytes.get(start..start.checked_add(len)?)
    }
}

/// Bytes per value of a TIFF field type; `None` for types the spec does not define.
fn type_size(field_type: u16) -> Option<u64> {
    match field_type {
        1 | 2 | 6 | 7 => Some(1),
        3 | 8 => Some(2),
        4 | 9 | 11 | 13 => Some(4),
        5 | 10 | 12 | 16 | 17 | 18 => Some(8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal little-endian classic TIFF: header, then one directory at offset 8.
    fn classic(entries: &[(u16, u16, u32, u32)], next: u32) -> Vec<u8> {
        let mut b = b"II*\0".to_vec();
        b.extend_from_slice(&8u32.to_le_bytes());
        b.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for &(tag, ty, count, value) in entries {
            b.extend_from_slice(&tag.to_le_bytes());
            b.extend_from_slice(&ty.to_le_bytes());
            b.extend_from_slice(&count.to_le_bytes());
            b.extend_from_slice(&value.to_le_bytes());
        }
        b.extend_from_slice(&next.to_le_bytes());
        b
    }

    #[test]
    fn reads_inline_values() {
        let bytes = classic(&[(256, 3, 1, 7), (257, 4, 1, 5)], 0);
        let f = TiffFile::parse(&bytes).expect("valid file");
        let d = &f.directories[0];
        assert_eq!(f.uint(d, tag::IMAGE_WIDTH, None), Ok(Some(7)));
        assert_eq!(f.uint(d, tag::IMAGE_LENGTH, None), Ok(Some(5)));
        assert_eq!(f.uint(d, tag::COMPRESSION, Some(1)), Ok(Some(1)));
    }

    #[test]
    fn a_chain_that_loops_is_an_error_not_a_hang() {
        let bytes = classic(&[(256, 3, 1, 7)], 8);
        assert_eq!(TiffFile::parse(&bytes).err(), Some(IfdError::Loop(8)));
    }

    #[test]
    fn values_past_the_end_are_refused_before_allocating() {
        let bytes = classic(&[(273, 4, u32::MAX, 8)], 0);
        assert!(matches!(
            TiffFile::parse(&bytes),
            Err(IfdError::BadEntry { tag: 273, .. })
        ));
    }

    #[test]
    fn truncated_and_foreign_files_are_named_as_such() {
        assert_eq!(TiffFile::parse(b"").err(), Some(IfdError::Empty));
        assert_eq!(
            TiffFile::parse(b"\x89PNG\r\n\x1a\n").err(),
            Some(IfdError::NotTiff)
        );
        let mut bytes = classic(&[(256, 3, 1, 7)], 0);
        bytes.truncate(12);
        assert!(matches!(
            TiffFile::parse(&bytes),
            Err(IfdError::Truncated(_))
        ));
    }
}
