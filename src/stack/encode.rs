//! Encoding TIFF headers and image directories, in either byte order, classic or BigTIFF.
//! Used by the output writer and by the decoder's synthetic directories.
//!
//! Every offset, count and value narrowed to 32 bits is checked: a value classic TIFF cannot
//! hold is an error, never a wrapped offset in a file that looks whole.

use std::io;

use super::ifd::ByteOrder;

/// `v` as a classic TIFF LONG, or an error naming what did not fit.
pub fn long(v: u64, what: &str) -> io::Result<u32> {
    u32::try_from(v).map_err(|_| {
        io::Error::other(format!(
            "{what} {v} does not fit in a classic TIFF (4 GiB); this is a bug in choosing the file's form"
        ))
    })
}

/// A tag's values. `Offsets` become LONG in classic TIFF and LONG8 in BigTIFF.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Short(Vec<u16>),
    Long(Vec<u32>),
    Offsets(Vec<u64>),
    Ascii(String),
    Rational(Vec<(u32, u32)>),
    /// Bytes of TIFF type UNDEFINED (7), such as JPEGTables.
    Undefined(Vec<u8>),
}

impl Field {
    fn type_and_count(&self, bigtiff: bool) -> (u16, u64, u64) {
        match self {
            Field::Short(v) => (3, v.len() as u64, 2),
            Field::Long(v) => (4, v.len() as u64, 4),
            Field::Offsets(v) if bigtiff => (16, v.len() as u64, 8),
            Field::Offsets(v) => (4, v.len() as u64, 4),
            Field::Ascii(s) => (2, s.len() as u64 + 1, 1),
            Field::Rational(v) => (5, v.len() as u64, 8),
            Field::Undefined(v) => (7, v.len() as u64, 1),
        }
    }
}

/// Byte order and offset width of the file being written.
#[derive(Debug, Clone, Copy)]
pub struct Encoder {
    pub order: ByteOrder,
    pub bigtiff: bool,
}

impl Encoder {
    pub fn header_len(self) -> u64 {
        if self.bigtiff { 16 } else { 8 }
    }

    pub fn header(self, first_directory: u64) -> io::Result<Vec<u8>> {
        let mut b = Bytes {
            order: self.order,
            buf: Vec::new(),
        };
        b.buf.extend_from_slice(if self.order == ByteOrder::Little {
            b"II"
        } else {
            b"MM"
        });
        if self.bigtiff {
            b.u16(43);
            b.u16(8);
            b.u16(0);
            b.u64(first_directory);
        } else {
            b.u16(42);
            b.u32(long(first_directory, "directory offset")?);
        }
        Ok(b.buf)
    }

    fn inline_len(self) -> u64 {
        if self.bigtiff { 8 } else { 4 }
    }

    /// Bytes of the directory itself, without values stored out of line.
    fn entries_len(self, n: usize) -> u64 {
        let n = n as u64;
        if self.bigtiff {
            8 + 20 * n + 8
        } else {
            2 + 12 * n + 4
        }
    }

    /// Bytes a directory with `fields` takes, values stored out of line included.
    pub fn directory_len(self, fields: &[(u16, Field)]) -> u64 {
        self.entries_len(fields.len())
            + fields
                .iter()
                .map(|(_, f)| {
                    let (_, count, size) = f.type_and_count(self.bigtiff);
                    let total = count * size;
                    if total <= self.inline_len() {
                        0
                    } else {
                        total.next_multiple_of(2)
                    }
                })
                .sum::<u64>()
    }

    /// A directory placed at `at` (word aligned) followed by its out-of-line values, pointing to
    /// the next directory at `next` (0: none). `fields` must be sorted by tag, as TIFF requires.
    pub fn directory(self, fields: &[(u16, Field)], at: u64, next: u64) -> io::Result<Vec<u8>> {
        debug_assert!(
            fields.windows(2).all(|w| w[0].0 < w[1].0),
            "tags must be sorted"
        );
        let mut dir = Bytes {
            order: self.order,
            buf: Vec::new(),
        };
        let mut values = Bytes {
            order: self.order,
            buf: Vec::new(),
        };
        let values_at = at + self.entries_len(fields.len());
        if self.bigtiff {
            dir.u64(fields.len() as u64);
        } else {
            let n = u16::try_from(fields.len())
                .map_err(|_| io::Error::other("more than 65535 tags in one directory"))?;
            dir.u16(n);
        }
        for (tag, field) in fields {
            let (field_type, count, _) = field.type_and_count(self.bigtiff);
            dir.u16(*tag);
            dir.u16(field_type);
            if self.bigtiff {
                dir.u64(count);
            } else {
                dir.u32(long(count, "value count")?);
            }
            let mut encoded = Bytes {
                order: self.order,
                buf: Vec::new(),
            };
            encoded.field(field, self.bigtiff)?;
            if encoded.buf.len() as u64 <= self.inline_len() {
                encoded.buf.resize(self.inline_len() as usize, 0);
                dir.buf.extend_from_slice(&encoded.buf);
            } else {
                let offset = values_at + values.buf.len() as u64;
                if self.bigtiff {
                    dir.u64(offset);
                } else {
                    dir.u32(long(offset, "value offset")?);
                }
                values.buf.extend_from_slice(&encoded.buf);
                if values.buf.len() % 2 == 1 {
                    values.buf.push(0);
                }
            }
        }
        if self.bigtiff {
            dir.u64(next);
        } else {
            dir.u32(long(next, "directory offset")?);
        }
        dir.buf.extend_from_slice(&values.buf);
        Ok(dir.buf)
    }
}

struct Bytes {
    order: ByteOrder,
    buf: Vec<u8>,
}

impl Bytes {
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
    fn field(&mut self, field: &Field, bigtiff: bool) -> io::Result<()> {
        match field {
            Field::Short(v) => v.iter().for_each(|&x| self.u16(x)),
            Field::Long(v) => v.iter().for_each(|&x| self.u32(x)),
            Field::Offsets(v) if bigtiff => v.iter().for_each(|&x| self.u64(x)),
            Field::Offsets(v) => {
                for &x in v {
                    self.u32(long(x, "strip offset or byte count")?);
                }
            }
            Field::Ascii(s) => {
                self.buf.extend_from_slice(s.as_bytes());
                self.buf.push(0);
            }
            Field::Rational(v) => v.iter().for_each(|&(n, d)| {
                self.u32(n);
                self.u32(d);
            }),
            Field::Undefined(v) => self.buf.extend_from_slice(v),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::ifd::{TiffFile, tag};

    #[test]
    fn directories_round_trip_through_the_reader_in_both_orders_and_widths() {
        for order in [ByteOrder::Little, ByteOrder::Big] {
            for bigtiff in [false, true] {
                let e = Encoder { order, bigtiff };
                let fields = vec![
                    (tag::IMAGE_WIDTH, Field::Long(vec![70000])),
                    (tag::BITS_PER_SAMPLE, Field::Short(vec![16])),
                    (tag::IMAGE_DESCRIPTION, Field::Ascii("hello world".into())),
                    (tag::STRIP_OFFSETS, Field::Offsets(vec![1, 2, 3])),
                ];
                let at = e.header_len();
                let mut bytes = e.header(at).expect("header");
                let dir = e.directory(&fields, at, 0).expect("directory");
                assert_eq!(dir.len() as u64, e.directory_len(&fields));
                bytes.extend(dir);
                let f = TiffFile::parse(&bytes).expect("parses");
                let d = &f.directories[0];
                assert_eq!(f.uint(d, tag::IMAGE_WIDTH, None), Ok(Some(70000)));
                assert_eq!(f.uint(d, tag::BITS_PER_SAMPLE, None), Ok(Some(16)));
                assert_eq!(f.uints(d, tag::STRIP_OFFSETS), Ok(Some(vec![1, 2, 3])));
                assert_eq!(
                    f.ascii(d, tag::IMAGE_DESCRIPTION).as_deref(),
                    Some("hello world")
                );
            }
        }
    }

    #[test]
    fn an_offset_past_4_gib_is_an_error_in_classic_tiff_not_a_wrapped_value() {
        let e = Encoder {
            order: ByteOrder::Little,
            bigtiff: false,
        };
        let fields = vec![(tag::STRIP_OFFSETS, Field::Offsets(vec![8, 1 << 32]))];
        assert!(e.directory(&fields, 8, 0).is_err());
        assert!(e.directory(&fields[..0], 8, 1 << 32).is_err());
        assert!(e.header(u64::from(u32::MAX) + 1).is_err());
        let big = Encoder { bigtiff: true, ..e };
        assert!(big.directory(&fields, 16, 1 << 33).is_ok());
    }
}
