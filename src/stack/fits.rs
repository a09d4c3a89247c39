//! FITS images (Definition of the Flexible Image Transport System, FITS Standard 4.0, IAU FITS
//! Working Group, 2016), read as pages of a stack like the pages of a TIFF.
//!
//! A FITS file is a chain of header–data units (HDUs). Each header is ASCII: 80-character
//! cards in 2880-byte blocks, ended by an `END` card; its data follows at the next block, one
//! contiguous big-endian array (`NAXIS1` fastest), padded to a whole block. So an image's data
//! is exactly an uncompressed big-endian TIFF page stored as one strip: this module only parses
//! the headers and describes each image plane as a [`RawPage`] at its offset in the mapped
//! file, and `Stack::page` reads it as it reads such a TIFF page (copied and byte-swapped on a
//! little-endian machine). Only a file with pages whose values are scaled (`BZERO`, `BSCALE`,
//! `BLANK`) needs a conversion of its own: those pages (and only those) are read by
//! [`ScaledPages`], the file's [`PageDecoder`].
//!
//! Why not a crate: `fitsio` wraps the C library cfitsio, which `cargo install` cannot build
//! without it installed; the pure-Rust readers (`fitsrs`, `fitrs`, `fitsio-pure`) read the data
//! into arrays of their own, where imfilter maps the file and reads pages in place per worker,
//! and each has its own rule for `BZERO`/`BSCALE`, where imfilter must follow astropy's (what
//! MantidImaging and scientists' scripts read). The part of FITS imfilter needs — headers,
//! image sizes, data offsets — is small.
//!
//! Values, as astropy's `ImageHDU` gives them (`astropy/io/fits/hdu/image.py`,
//! `_dtype_for_bitpix` and `_scale_data`, with its default `uint=True`):
//!
//! | BITPIX | BZERO, BSCALE, BLANK | type |
//! |---|---|---|
//! | 8, 16, 32, −32, −64 | none (0, 1, no BLANK) | uint8, int16, int32, float32, float64 as stored |
//! | 16, 32 | BZERO = 2^15, 2^31 and BSCALE = 1 | uint16, uint32 (BLANK ignored, as astropy does) |
//! | 8 | BZERO = −128 and BSCALE = 1 | astropy's int8; imfilter has no int8, so int16 of the same values (BLANK ignored: astropy fails on it, putting NaN in int8) |
//! | 8, 16 | any other, or a BLANK | float32: `raw × BSCALE + BZERO` in float32, BLANK → NaN |
//! | 32, 64 | any other, or a BLANK | float64: the same in float64 |
//! | −32, −64 | any other (BLANK is ignored) | float32, float64: the same in the stored type |
//!
//! BITPIX 64 unscaled (int64) and with BZERO = 2^63 (uint64) are refused: imfilter has no
//! 64-bit integer type, and float64 would change values past 2^53.

use std::collections::HashMap;

use super::source::{PageDecoder, RawPage};
use crate::pixel::DType;

/// The FITS block: headers and data both come in whole blocks.
const BLOCK: usize = 2880;
/// One header card.
const CARD: usize = 80;

/// Whether `bytes` start like a FITS file: its first card must be `SIMPLE`, with the value
/// indicator in columns 9–10 (FITS 4.0, section 4.4.1.1).
pub fn is_fits(bytes: &[u8]) -> bool {
    bytes.starts_with(b"SIMPLE  =")
}

/// `.fits`, `.fit` or `.fts` in any case: the names a directory's FITS files have.
pub fn is_fits_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".fits", ".fit", ".fts"].iter().any(|e| lower.ends_with(e))
}

/// How a page's stored values become its pixels, for the pages that are not read as stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// BITPIX 16 or 32 with BZERO = 2^(bits−1) and BSCALE = 1: unsigned integers, stored with
    /// their top bit flipped (uint16, uint32).
    Unsigned,
    /// BITPIX 8 with BZERO = −128 and BSCALE = 1: astropy's int8, widened to int16.
    SignedBytes,
    /// Any other BSCALE and BZERO, or a BLANK: to float.
    Linear(Linear),
}

/// `raw × bscale + bzero` in the page's float type, each step rounded to it as numpy's
/// in-place `multiply` and `+=` on astropy's array round; a stored value equal to `blank`
/// becomes NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Linear {
    bscale: f64,
    bzero: f64,
    blank: Option<i64>,
}

impl Linear {
    /// `value` (the stored `raw`, where it is an integer) in the page's float type `F`.
    fn apply<F: Float>(self, value: F, raw: Option<i64>) -> F {
        let Linear {
            bscale,
            bzero,
            blank,
        } = self;
        if blank.is_some() && raw == blank {
            return F::NAN;
        }
        // astropy skips each step when it is the identity; `-0.0 + 0.0` would be `+0.0`.
        let mut v = value;
        if bscale != 1.0 {
            v *= F::rounded(bscale);
        }
        if bzero != 0.0 {
            v += F::rounded(bzero);
        }
        v
    }
}

/// The float types a scaled page is read into: float32 from 8- and 16-bit integers and
/// float32 pages, float64 from the rest, as astropy does.
trait Float: Copy + std::ops::MulAssign + std::ops::AddAssign {
    const NAN: Self;
    /// A header's BSCALE or BZERO rounded to this type, as numpy rounds them.
    fn rounded(value: f64) -> Self;
}

impl Float for f32 {
    const NAN: f32 = f32::NAN;
    fn rounded(value: f64) -> f32 {
        value as f32
    }
}

impl Float for f64 {
    const NAN: f64 = f64::NAN;
    fn rounded(value: f64) -> f64 {
        value
    }
}

/// The image pages of a FITS file, in HDU order (a cube's planes in `NAXIS3` order), and the
/// decoder that reads them when any page's values are scaled (`None`: every page is read as
/// stored). HDUs without data (an empty primary) are skipped; tables and anything that is not
/// a 2-D image or a 3-D cube are refused with a sentence saying which HDU holds what.
pub fn pages(bytes: &[u8]) -> Result<(Vec<RawPage>, Option<ScaledPages>), String> {
    let mut pages = Vec::new();
    let mut planes = Vec::new();
    let mut at = 0;
    let mut hdu = 0;
    let mut image_hdus = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if hdu > 0 && !rest.starts_with(b"XTENSION") {
            // Writers pad the end of a file with zeros; anything else there is not FITS,
            // and reading on as if it were not there could drop images silently.
            if rest.iter().all(|&b| b == 0) {
                break;
            }
            return Err(format!(
                "corrupt FITS: {} bytes after HDU {} (at offset {at}) are not an extension \
                 (no XTENSION card)",
                rest.len(),
                hdu - 1
            ));
        }
        let header = Header::parse(bytes, at, hdu)?;
        let unit = Unit::of(&header, hdu)?;
        let data_start = header.data_start;
        let data_end = data_start
            .checked_add(unit.data_bytes)
            .filter(|&end| end <= bytes.len() as u64)
            .ok_or_else(|| {
                format!(
                    "HDU {hdu}: its data ({} bytes at offset {data_start}, from BITPIX and \
                     NAXISn) run past the end of the file ({} bytes): the file is truncated or \
                     its header is wrong",
                    unit.data_bytes,
                    bytes.len()
                )
            })?;
        if let Some(image) = unit.image {
            image_hdus += 1;
            let stored = image.width * image.height * image.stored_bytes;
            for plane in 0..image.planes {
                let offset = data_start + plane * stored;
                // A scaled plane is the decoder's to read (no chunks); any other is read as
                // stored, a run of the file in big-endian order.
                let chunks = match image.rule {
                    Some(_) => Vec::new(),
                    None => vec![(offset, stored)],
                };
                pages.push(RawPage::plain(
                    image.width,
                    image.height,
                    image.dtype,
                    chunks,
                ));
                planes.push(image.rule.map(|rule| Plane {
                    offset,
                    bytes: stored,
                    bitpix: image.bitpix,
                    rule,
                }));
            }
        }
        // The last HDU's padding is sometimes missing; nothing follows it then.
        at = usize::try_from(data_end.next_multiple_of(BLOCK as u64))
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        hdu += 1;
    }
    if image_hdus == 0 {
        return Err(format!(
            "no image data: {hdu} HDU{} without pixels (NAXIS = 0 or a zero axis)",
            if hdu == 1 { "" } else { "s" }
        ));
    }
    let scaled = planes
        .iter()
        .any(Option::is_some)
        .then_some(ScaledPages { planes });
    Ok((pages, scaled))
}

/// One header's value cards and where its data begins.
struct Header<'a> {
    /// Keyword → value text without its comment; the first card of a keyword counts.
    cards: HashMap<&'a str, &'a str>,
    data_start: u64,
}

impl<'a> Header<'a> {
    /// The header starting at `at`: cards up to `END`, which must come before the end of the
    /// file; every byte must be printable ASCII (FITS 4.0, section 4.1.1).
    fn parse(bytes: &'a [u8], at: usize, hdu: usize) -> Result<Header<'a>, String> {
        let mut cards = HashMap::new();
        let mut pos = at;
        loop {
            let Some(card) = bytes.get(pos..pos + CARD) else {
                return Err(format!(
                    "HDU {hdu}: the header has no END card before the end of the file \
                     (truncated, or not FITS)"
                ));
            };
            if let Some(i) = card.iter().position(|b| !(0x20..=0x7e).contains(b)) {
                // Past the first block, a header without its END card has usually run into
                // its data: say that, not only the byte.
                if pos >= at + BLOCK {
                    return Err(format!(
                        "HDU {hdu}: no END card before offset {}, where byte 0x{:02x} is not \
                         header text: the END card is missing or the header is corrupt",
                        pos + i,
                        card[i]
                    ));
                }
                return Err(format!(
                    "HDU {hdu}: byte 0x{:02x} at offset {} in the header is not printable \
                     ASCII (corrupt FITS header)",
                    card[i],
                    pos + i
                ));
            }
            // Checked printable ASCII just above.
            let text = std::str::from_utf8(card).map_err(|_| "corrupt FITS header")?;
            let keyword = text[..8].trim_end();
            if keyword == "END" {
                let end = (pos + CARD).next_multiple_of(BLOCK);
                return Ok(Header {
                    cards,
                    data_start: end as u64,
                });
            }
            if &text[8..10] == "= " {
                cards
                    .entry(keyword)
                    .or_insert_with(|| value_text(&text[10..]));
            }
            pos += CARD;
        }
    }

    fn text(&self, keyword: &str) -> Option<&'a str> {
        self.cards.get(keyword).copied()
    }

    /// An integer keyword; `Ok(None)` when absent.
    fn int(&self, keyword: &str, hdu: usize) -> Result<Option<i64>, String> {
        self.text(keyword)
            .map(|v| {
                v.trim_start_matches('+').parse::<i64>().map_err(|_| {
                    format!("HDU {hdu}: {keyword} = {v} is not an integer (corrupt FITS header)")
                })
            })
            .transpose()
    }

    fn required_int(&self, keyword: &str, hdu: usize) -> Result<i64, String> {
        self.int(keyword, hdu)?
            .ok_or_else(|| format!("HDU {hdu}: the header has no {keyword} (corrupt FITS)"))
    }

    /// A real keyword (FITS allows `D` for the exponent); `default` when absent.
    fn real(&self, keyword: &str, default: f64, hdu: usize) -> Result<f64, String> {
        let Some(v) = self.text(keyword) else {
            return Ok(default);
        };
        v.replace(['D', 'd'], "E")
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("HDU {hdu}: {keyword} = {v} is not a number (corrupt FITS)"))
    }

    fn logical(&self, keyword: &str) -> Option<bool> {
        match self.text(keyword) {
            Some("T") => Some(true),
            Some("F") => Some(false),
            _ => None,
        }
    }
}

/// The value of a card (columns 11–80): a string's text between its quotes (`''` is a quote),
/// or the text before the comment's `/`, trimmed.
fn value_text(field: &str) -> &str {
    let field = field.trim_start();
    if let Some(inner) = field.strip_prefix('\'') {
        let bytes = inner.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'\'' {
                if bytes.get(i + 1) == Some(&b'\'') {
                    i += 2;
                    continue;
                }
                // Trailing spaces in a string are not significant (FITS 4.0, 4.2.1.1).
                return inner[..i].trim_end();
            }
            i += 1;
        }
        return inner.trim_end();
    }
    field.split('/').next().unwrap_or("").trim()
}

/// What an HDU holds, as far as imfilter cares.
struct Unit {
    /// Bytes of data after the header (before the padding).
    data_bytes: u64,
    image: Option<Image>,
}

struct Image {
    width: u64,
    height: u64,
    planes: u64,
    /// Bytes per stored value.
    stored_bytes: u64,
    /// The stored type: 8, 16, 32, 64, −32 or −64.
    bitpix: i32,
    dtype: DType,
    rule: Option<Rule>,
}

impl Unit {
    fn of(h: &Header<'_>, hdu: usize) -> Result<Unit, String> {
        let extension = if hdu == 0 {
            if h.logical("SIMPLE") != Some(true) {
                return Err(
                    "SIMPLE is not T: the file says it does not conform to the FITS standard"
                        .into(),
                );
            }
            None
        } else {
            Some(h.text("XTENSION").unwrap_or(""))
        };
        let bitpix = h.required_int("BITPIX", hdu)?;
        if ![8, 16, 32, 64, -32, -64].contains(&bitpix) {
            return Err(format!(
                "HDU {hdu}: BITPIX = {bitpix} is not a FITS data type (8, 16, 32, 64, -32, -64)"
            ));
        }
        let naxis = h.required_int("NAXIS", hdu)?;
        if !(0..=999).contains(&naxis) {
            return Err(format!(
                "HDU {hdu}: NAXIS = {naxis} is out of range (0 to 999; corrupt FITS)"
            ));
        }
        let mut axes = Vec::new();
        for n in 1..=naxis {
            let len = h.required_int(&format!("NAXIS{n}"), hdu)?;
            let len = u64::try_from(len)
                .map_err(|_| format!("HDU {hdu}: NAXIS{n} = {len} is negative (corrupt FITS)"))?;
            axes.push(len);
        }
        let (pcount, gcount) = match extension {
            Some(_) => (
                h.int("PCOUNT", hdu)?.unwrap_or(0),
                h.int("GCOUNT", hdu)?.unwrap_or(1),
            ),
            None => (0, 1),
        };
        let (Ok(pcount), Ok(gcount)) = (u64::try_from(pcount), u64::try_from(gcount)) else {
            return Err(format!(
                "HDU {hdu}: PCOUNT = {pcount}, GCOUNT = {gcount} are negative (corrupt FITS)"
            ));
        };
        let stored_bytes = bitpix.unsigned_abs() / 8;
        let too_large = || format!("HDU {hdu}: its axes {axes:?} are too large (corrupt FITS)");
        // FITS 4.0, equation 2: |BITPIX| / 8 × GCOUNT × (PCOUNT + NAXIS1 × … × NAXISn).
        let data_bytes = if naxis == 0 {
            0
        } else {
            axes.iter()
                .try_fold(1u64, |p, &n| p.checked_mul(n))
                .and_then(|p| p.checked_add(pcount))
                .and_then(|p| p.checked_mul(gcount))
                .and_then(|p| p.checked_mul(stored_bytes))
                .ok_or_else(too_large)?
        };
        match extension {
            None if h.logical("GROUPS") == Some(true) => {
                return Err(
                    "random groups (GROUPS = T) are not images; imfilter reads image HDUs".into(),
                );
            }
            None | Some("IMAGE") => {}
            Some("BINTABLE") if h.logical("ZIMAGE") == Some(true) => {
                return Err(format!(
                    "HDU {hdu} is a tile-compressed image (BINTABLE with ZIMAGE = T), which \
                     imfilter does not read; uncompress it first (funpack, or astropy)"
                ));
            }
            Some(kind @ ("BINTABLE" | "TABLE")) => {
                return Err(format!(
                    "HDU {hdu} is a table (XTENSION = '{kind}'); imfilter reads FITS images only"
                ));
            }
            Some(other) => {
                return Err(format!(
                    "HDU {hdu}: XTENSION = '{other}' is not supported; imfilter reads the \
                     primary image and IMAGE extensions"
                ));
            }
        }
        if data_bytes == 0 {
            return Ok(Unit {
                data_bytes,
                image: None,
            });
        }
        if pcount != 0 || gcount != 1 {
            return Err(format!(
                "HDU {hdu}: an image with PCOUNT = {pcount}, GCOUNT = {gcount} (corrupt FITS: \
                 an image has 0 and 1)"
            ));
        }
        let planes = match axes.as_slice() {
            [_, _] => 1,
            [_, _, planes, more @ ..] if more.iter().all(|&n| n == 1) => *planes,
            _ => {
                return Err(format!(
                    "HDU {hdu}: an image of {naxis} axes {axes:?}; imfilter reads 2-D images \
                     (NAXIS = 2) and cubes of 2-D images (NAXIS = 3)"
                ));
            }
        };
        let (dtype, rule) = values(h, bitpix as i32, hdu)?;
        Ok(Unit {
            data_bytes,
            image: Some(Image {
                width: axes[0],
                height: axes[1],
                planes,
                stored_bytes,
                bitpix: bitpix as i32,
                dtype,
                rule,
            }),
        })
    }
}

/// The pixel type of an image and how its stored values become pixels (`None`: as stored),
/// following astropy (see the module's table).
fn values(h: &Header<'_>, bitpix: i32, hdu: usize) -> Result<(DType, Option<Rule>), String> {
    let bzero = h.real("BZERO", 0.0, hdu)?;
    let bscale = h.real("BSCALE", 1.0, hdu)?;
    // astropy ignores a BLANK that is not an integer, and any BLANK of float data.
    let blank = match h.int("BLANK", hdu) {
        Ok(b) if bitpix > 0 => b,
        _ => None,
    };
    let int64 = || {
        format!(
            "HDU {hdu}: BITPIX = 64 with BZERO = {bzero} and BSCALE = {bscale} is a 64-bit \
             integer image, and imfilter has no 64-bit integer type (it reads BITPIX 8, 16, \
             32, -32, -64, and 64 scaled to float64)"
        )
    };
    if bzero == 0.0 && bscale == 1.0 && blank.is_none() {
        let dtype = match bitpix {
            8 => DType::U8,
            16 => DType::I16,
            32 => DType::I32,
            -32 => DType::F32,
            -64 => DType::F64,
            _ => return Err(int64()),
        };
        return Ok((dtype, None));
    }
    let scaled = |dtype, rule| Ok((dtype, Some(rule)));
    if bscale == 1.0 {
        match (bitpix, bzero) {
            (8, -128.0) => return scaled(DType::I16, Rule::SignedBytes),
            (16, 32768.0) => return scaled(DType::U16, Rule::Unsigned),
            (32, 2147483648.0) => return scaled(DType::U32, Rule::Unsigned),
            (64, 9223372036854775808.0) => return Err(int64()),
            _ => {}
        }
    }
    let dtype = match bitpix {
        8 | 16 | -32 => DType::F32,
        _ => DType::F64,
    };
    // astropy tests `if self._blank:`, so a BLANK of 0 marks nothing (the values are still
    // converted to float, as for any BLANK).
    let blank = blank.filter(|&b| b != 0);
    scaled(
        dtype,
        Rule::Linear(Linear {
            bscale,
            bzero,
            blank,
        }),
    )
}

/// The scaled pages of a FITS file, each converted from the file's bytes by its rule. An
/// unscaled page beside them is a plain run of the file, read as such (`Stack::page`).
#[derive(Debug)]
pub struct ScaledPages {
    /// One per page: `None` for a page read as stored (see `pages`).
    planes: Vec<Option<Plane>>,
}

/// One image plane as the file stores it.
#[derive(Debug, Clone, Copy)]
struct Plane {
    offset: u64,
    bytes: u64,
    /// The stored type: 8, 16, 32, 64, −32 or −64.
    bitpix: i32,
    /// How its stored values become pixels.
    rule: Rule,
}

impl PageDecoder for ScaledPages {
    fn decode(&self, bytes: &[u8], page: usize, dst: &mut [u8]) -> Result<(), String> {
        self.planes[page]
            .ok_or_else(|| "invariant: a page read as stored was given to the decoder".into())
            .and_then(|plane| plane.decode(bytes, dst))
            .map_err(|why| format!("page {page}: {why}"))
    }

    /// Converted straight into the page.
    fn page_buffers(&self) -> u64 {
        1
    }
}

impl Plane {
    /// Its pixels into `dst`: native byte order, the page's type.
    fn decode(&self, bytes: &[u8], dst: &mut [u8]) -> Result<(), String> {
        let stored = usize::try_from(self.offset)
            .ok()
            .zip(usize::try_from(self.bytes).ok())
            .and_then(|(o, n)| bytes.get(o..)?.get(..n))
            .ok_or("pixel data lies past the end of the file")?;
        let rule = self.rule;
        match (self.bitpix, rule) {
            (16, Rule::Unsigned) => convert(stored, dst, |b: [u8; 2]| {
                (u16::from_be_bytes(b) ^ 0x8000).to_ne_bytes()
            }),
            (32, Rule::Unsigned) => convert(stored, dst, |b: [u8; 4]| {
                (u32::from_be_bytes(b) ^ 0x8000_0000).to_ne_bytes()
            }),
            (8, Rule::SignedBytes) => convert(stored, dst, |b: [u8; 1]| {
                (i16::from(b[0]) - 128).to_ne_bytes()
            }),
            (8, Rule::Linear(linear)) => convert(stored, dst, |b: [u8; 1]| {
                linear
                    .apply(f32::from(b[0]), Some(i64::from(b[0])))
                    .to_ne_bytes()
            }),
            (16, Rule::Linear(linear)) => convert(stored, dst, |b: [u8; 2]| {
                let raw = i16::from_be_bytes(b);
                linear
                    .apply(f32::from(raw), Some(i64::from(raw)))
                    .to_ne_bytes()
            }),
            (-32, Rule::Linear(linear)) => convert(stored, dst, |b: [u8; 4]| {
                linear.apply(f32::from_be_bytes(b), None).to_ne_bytes()
            }),
            (32, Rule::Linear(linear)) => convert(stored, dst, |b: [u8; 4]| {
                let raw = i32::from_be_bytes(b);
                linear
                    .apply(f64::from(raw), Some(i64::from(raw)))
                    .to_ne_bytes()
            }),
            // Rounded to nearest, as numpy's int64 → float64 cast.
            (64, Rule::Linear(linear)) => convert(stored, dst, |b: [u8; 8]| {
                let raw = i64::from_be_bytes(b);
                linear.apply(raw as f64, Some(raw)).to_ne_bytes()
            }),
            (-64, Rule::Linear(linear)) => convert(stored, dst, |b: [u8; 8]| {
                linear.apply(f64::from_be_bytes(b), None).to_ne_bytes()
            }),
            (bitpix, rule) => Err(format!(
                "invariant: BITPIX {bitpix} with {rule:?} was refused at open"
            )),
        }
    }
}

/// Each `I`-byte stored value of `stored` through `f` into `O` bytes of `dst`; both must hold
/// the same number of values.
fn convert<const I: usize, const O: usize>(
    stored: &[u8],
    dst: &mut [u8],
    f: impl Fn([u8; I]) -> [u8; O],
) -> Result<(), String> {
    if stored.len() / I != dst.len() / O {
        return Err(format!(
            "pixel data holds {} values, the page {}",
            stored.len() / I,
            dst.len() / O
        ));
    }
    let (values, _) = stored.as_chunks::<I>();
    let (out, _) = dst.as_chunks_mut::<O>();
    for (v, o) in values.iter().zip(out) {
        *o = f(*v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header of `cards` (each padded to 80 columns) and END, padded to a block.
    fn header(cards: &[&str]) -> Vec<u8> {
        let mut h = Vec::new();
        for c in cards.iter().chain(&["END"]) {
            h.extend(format!("{c:<80}").bytes());
        }
        h.resize(h.len().next_multiple_of(BLOCK), b' ');
        h
    }

    fn file(cards: &[&str], data: &[u8]) -> Vec<u8> {
        let mut f = header(cards);
        f.extend_from_slice(data);
        f.resize(f.len().next_multiple_of(BLOCK), 0);
        f
    }

    const IMAGE_2X2: [&str; 5] = [
        "SIMPLE  =                    T",
        "BITPIX  =                   16",
        "NAXIS   =                    2",
        "NAXIS1  =                    2",
        "NAXIS2  =                    2",
    ];

    #[test]
    fn an_unscaled_int16_image_is_one_page_at_the_first_data_block() {
        let f = file(&IMAGE_2X2, &[0, 1, 0, 2, 0, 3, 0, 4]);
        let (pages, scaled) = pages(&f).expect("pages");
        assert_eq!(pages.len(), 1);
        assert_eq!((pages[0].width, pages[0].height), (2, 2));
        assert_eq!(pages[0].dtype(), Ok(DType::I16));
        assert_eq!(pages[0].chunks, vec![(2880, 8)]);
        assert!(scaled.is_none());
    }

    #[test]
    fn values_and_comments_are_read_as_fits_writes_them() {
        assert_eq!(value_text("                   16 / bits"), "16");
        assert_eq!(value_text(" 'IMAGE   '           / ext"), "IMAGE");
        assert_eq!(value_text(" 'it''s / here'"), "it''s / here");
        assert_eq!(value_text(" 'unterminated"), "unterminated");
    }

    #[test]
    fn bzero_32768_gives_uint16_with_the_top_bit_flipped() {
        let mut cards = IMAGE_2X2.to_vec();
        cards.push("BZERO   =                32768");
        let f = file(&cards, &[0x80, 0, 0x7f, 0xff, 0, 0, 0xff, 0xff]);
        let (pages, scaled) = pages(&f).expect("pages");
        assert_eq!(pages[0].dtype(), Ok(DType::U16));
        let mut out = [0u8; 8];
        let scaled = scaled.expect("a decoder for the scaled page");
        scaled.decode(&f, 0, &mut out).expect("decode");
        let v: Vec<u16> = out
            .chunks(2)
            .map(|c| u16::from_ne_bytes([c[0], c[1]]))
            .collect();
        // Stored -32768 + 32768 = 0, 32767 + 32768 = 65535, 0 → 32768, -1 → 32767.
        assert_eq!(v, [0, 65535, 32768, 32767]);
    }

    #[test]
    fn scaled_int16_with_blank_follows_astropy() {
        let mut cards = IMAGE_2X2.to_vec();
        cards.extend([
            "BSCALE  =                  0.5",
            "BZERO   =                 10.0",
        ]);
        cards.push("BLANK   =                   -1");
        let f = file(&cards, &[0, 4, 0xff, 0xff, 0x80, 0, 0, 0]);
        let (pages, scaled) = pages(&f).expect("pages");
        assert_eq!(pages[0].dtype(), Ok(DType::F32));
        let mut out = [0u8; 16];
        let scaled = scaled.expect("a decoder for the scaled page");
        scaled.decode(&f, 0, &mut out).expect("decode");
        let v: Vec<f32> = out
            .chunks(4)
            .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(v[0], 12.0);
        assert!(v[1].is_nan());
        assert_eq!(v[2], -16374.0);
        assert_eq!(v[3], 10.0);
    }

    #[test]
    fn beside_a_scaled_page_an_unscaled_one_is_read_as_stored() {
        let mut f = file(
            &[
                IMAGE_2X2[0],
                "BITPIX  =                  -32",
                "NAXIS   =                    2",
                "NAXIS1  =                    2",
                "NAXIS2  =                    2",
            ],
            &[1.5f32, -2.0, 0.0, 3.25]
                .iter()
                .flat_map(|v| v.to_be_bytes())
                .collect::<Vec<u8>>(),
        );
        f.extend(file(
            &[
                "XTENSION= 'IMAGE   '",
                "BITPIX  =                   16",
                "NAXIS   =                    2",
                "NAXIS1  =                    2",
                "NAXIS2  =                    2",
                "PCOUNT  =                    0",
                "GCOUNT  =                    1",
                "BSCALE  =                  0.5",
            ],
            &[0, 2, 0, 4, 0, 6, 0, 8],
        ));
        let (pages, scaled) = pages(&f).expect("pages");
        assert_eq!(pages.len(), 2);
        assert!(pages.iter().all(|p| p.dtype() == Ok(DType::F32)));
        // The unscaled page is a run of the file, the scaled one the decoder's.
        assert_eq!(pages[0].contiguous_offset(), Some(2880));
        assert!(pages[1].chunks.is_empty());
        let scaled = scaled.expect("a decoder for the scaled page");
        assert!(scaled.decode(&f, 0, &mut [0; 16]).is_err());
        // Read through a stack, each page its own way.
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("mixed.fits");
        std::fs::write(&path, &f).expect("write");
        let stack = crate::stack::Stack::open(&path).expect("opens");
        let read = |page| {
            let mut scratch = Vec::new();
            stack
                .page::<f32>(page, &mut scratch)
                .expect("read")
                .to_vec()
        };
        assert_eq!(read(0), [1.5, -2.0, 0.0, 3.25]);
        assert_eq!(read(1), [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn bad_headers_are_refused_with_a_sentence() {
        let cases: [(Vec<u8>, &str); 6] = [
            (b"SIMPLE  =                    T".to_vec(), "no END card"),
            (
                file(&IMAGE_2X2, &[]).split_at(2880).0.to_vec(),
                "run past the end",
            ),
            (
                file(
                    &[
                        IMAGE_2X2[0],
                        "BITPIX  =                   12",
                        "NAXIS   = 0",
                    ],
                    &[],
                ),
                "BITPIX = 12",
            ),
            (
                file(
                    &[
                        IMAGE_2X2[0],
                        "BITPIX  =                    8",
                        "NAXIS   =                    3",
                        "NAXIS1  =                 1000",
                        "NAXIS2  =                 1000",
                        "NAXIS3  =                 1000",
                    ],
                    &[],
                ),
                "run past the end",
            ),
            (
                {
                    let mut f = file(&IMAGE_2X2, &[0; 8]);
                    f[100] = 0xe9;
                    f
                },
                "not printable ASCII",
            ),
            (
                file(
                    &[
                        IMAGE_2X2[0],
                        "BITPIX  =                   64",
                        "NAXIS   =                    2",
                        "NAXIS1  =                    1",
                        "NAXIS2  =                    1",
                    ],
                    &[0; 8],
                ),
                "no 64-bit integer type",
            ),
        ];
        for (bytes, expected) in cases {
            let err = pages(&bytes).expect_err(expected);
            assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        }
    }

    #[test]
    fn a_table_extension_is_refused_and_an_empty_primary_skipped() {
        let mut f = file(
            &[
                "SIMPLE  =                    T",
                "BITPIX  =                    8",
                "NAXIS   =                    0",
            ],
            &[],
        );
        f.extend(file(
            &[
                "XTENSION= 'BINTABLE'",
                "BITPIX  =                    8",
                "NAXIS   =                    2",
                "NAXIS1  =                    4",
                "NAXIS2  =                    1",
                "PCOUNT  =                    0",
                "GCOUNT  =                    1",
            ],
            &[0; 4],
        ));
        let err = pages(&f).expect_err("a table");
        assert!(err.contains("HDU 1 is a table"), "{err}");
    }

    /// A quick, deterministic stand-in for the fuzz target (`fuzz/fuzz_targets/fits_reader.rs`)
    /// that runs with `cargo test`: astropy's files with cut, flipped and rewritten header
    /// values must give pages or an error, never a panic, and every page of a file with scaled
    /// pages must convert.
    #[test]
    fn mutated_astropy_files_give_pages_or_an_error_never_a_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fits");
        let mut state = 15u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        let values = [
            "0",
            "-1",
            "99999999999999999999",
            "1e308",
            "-32",
            "64",
            "3",
            "'IMAGE'",
        ];
        for seed in [
            "int16.fits",
            "scaled_int16_blank.fits",
            "multi_hdu.fits",
            "cube.fits",
        ] {
            let original = std::fs::read(dir.join(seed)).expect("fixture");
            for _ in 0..400 {
                let mut bytes = original.clone();
                match next() % 4 {
                    0 => bytes.truncate(next() % bytes.len()),
                    1 => bytes[next() % (2 * BLOCK)] = next() as u8,
                    2 => bytes[next() % BLOCK] = b"0123456789-+. DE'T"[next() % 18],
                    _ => {
                        let card = next() % 36 * CARD;
                        let value = format!("{:>20}", values[next() % values.len()]);
                        bytes[card + 10..card + 30].copy_from_slice(value.as_bytes());
                    }
                }
                let Ok((pages, Some(scaled))) = pages(&bytes) else {
                    continue;
                };
                for (index, page) in pages.iter().enumerate() {
                    let dtype = page.dtype().expect("a FITS page has a supported type");
                    let n = (page.width * page.height) as usize * dtype.bytes();
                    if n <= 1 << 24 {
                        scaled
                            .decode(&bytes, index, &mut vec![0; n])
                            .expect("a page of a file with scaled pages");
                    }
                }
            }
        }
    }
}
