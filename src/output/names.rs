//! The names imfilter gives the files it writes beside a result: temporary files, temporary
//! directories and locks, all `.NAME.imfilter-…`, so users can recognise and remove what a
//! killed run left (docs/reliability.md).
//!
//! Names are bytes (`OsStr`) end to end: a file name that is not UTF-8 is kept as it is, never
//! replaced by its lossy display form (two names that differ only in their invalid bytes would
//! otherwise collide, and `--in-place` would write a second, renamed copy).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// What every temporary name imfilter writes contains.
pub const TEMP_MARK: &str = ".imfilter-";

/// The longest file name Linux file systems take (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// tempfile's random part of a temporary name.
const RANDOM_LEN: usize = 6;

/// The longest suffix after `TEMP_MARK`: the random letters, or `lock`.
const SUFFIX_MAX: usize = RANDOM_LEN;

/// `.NAME.imfilter-`: how every temporary file or directory for a result at `path` begins. A
/// long NAME is shortened so that the whole temporary name fits in `NAME_MAX`: an output name
/// of 250 bytes is as valid as one of 10.
pub fn temp_prefix(path: &Path) -> OsString {
    let name = path.file_name().unwrap_or_default();
    let room = NAME_MAX - 1 - TEMP_MARK.len() - SUFFIX_MAX;
    let mut prefix = OsString::from(".");
    prefix.push(shortened(name, room));
    prefix.push(TEMP_MARK);
    prefix
}

/// `.NAME.imfilter-lock`: the lock a writer of the result at `path` holds (see `lock`).
pub fn lock_name(path: &Path) -> OsString {
    let mut name = temp_prefix(path);
    name.push("lock");
    name
}

/// `name` cut to at most `max` bytes; a UTF-8 name is cut on a character boundary.
pub fn shortened(name: &OsStr, max: usize) -> &OsStr {
    let bytes = name.as_bytes();
    if bytes.len() <= max {
        return name;
    }
    let mut end = max;
    if let Ok(text) = std::str::from_utf8(bytes) {
        while !text.is_char_boundary(end) {
            end -= 1;
        }
    }
    OsStr::from_bytes(&bytes[..end])
}

/// The file name of `path` with a TIFF extension (any case) taken off, as bytes.
pub fn tiff_stem(name: &OsStr) -> &OsStr {
    let bytes = name.as_bytes();
    for ext in [&b".tiff"[..], b".tif"] {
        if bytes.len() > ext.len() && bytes[bytes.len() - ext.len()..].eq_ignore_ascii_case(ext) {
            return OsStr::from_bytes(&bytes[..bytes.len() - ext.len()]);
        }
    }
    name
}

/// The file name of `path` with a FITS extension (`.fits`, `.fit`, `.fts`, any case) taken off:
/// imfilter writes TIFF, so a FITS input's result is named `STEM….tif`, never `….fits`.
pub fn fits_stem(name: &OsStr) -> &OsStr {
    let bytes = name.as_bytes();
    for ext in [&b".fits"[..], b".fit", b".fts"] {
        if bytes.len() > ext.len() && bytes[bytes.len() - ext.len()..].eq_ignore_ascii_case(ext) {
            return OsStr::from_bytes(&bytes[..bytes.len() - ext.len()]);
        }
    }
    name
}

/// The TIFF extension `name` ends with (keeping its case), if any.
pub fn tiff_extension(name: &OsStr) -> Option<&OsStr> {
    let stem = tiff_stem(name).as_bytes().len();
    (stem < name.as_bytes().len()).then(|| OsStr::from_bytes(&name.as_bytes()[stem..]))
}

/// `a` followed by `b`.
pub fn joined(a: &OsStr, b: impl AsRef<OsStr>) -> OsString {
    let mut bytes = a.as_bytes().to_vec();
    bytes.extend_from_slice(b.as_ref().as_bytes());
    OsString::from_vec(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temporary_name_fits_in_name_max_however_long_the_output_name() {
        for len in [1, 200, 238, 239, 250, 255] {
            let name = "a".repeat(len);
            let prefix = temp_prefix(Path::new(&name));
            assert!(prefix.len() + RANDOM_LEN <= NAME_MAX, "{len}");
            assert!(lock_name(Path::new(&name)).len() <= NAME_MAX, "{len}");
            assert!(prefix.to_string_lossy().ends_with(TEMP_MARK));
        }
    }

    #[test]
    fn a_long_utf8_name_is_cut_on_a_character_boundary() {
        let name = "é".repeat(127);
        let prefix = temp_prefix(Path::new(&name));
        assert!(prefix.to_str().is_some());
    }

    #[test]
    fn names_that_are_not_utf8_keep_their_bytes() {
        let name = OsStr::from_bytes(b"proj_\xff.TIF");
        assert_eq!(tiff_stem(name).as_bytes(), b"proj_\xff");
        assert_eq!(tiff_extension(name), Some(OsStr::new(".TIF")));
        let prefix = temp_prefix(Path::new(name));
        assert!(prefix.as_bytes().starts_with(b".proj_\xff.TIF.imfilter-"));
    }
}
