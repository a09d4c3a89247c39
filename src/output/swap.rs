//! The two atomic renames a result needs beyond `rename(2)`: into a path that must stay free
//! (`RENAME_NOREPLACE`), and over an existing directory (`RENAME_EXCHANGE`: the new directory
//! and the old one trade names in one step, so a kill leaves one or the other, never a mixture;
//! a plain `rename` cannot replace a directory that is not empty).

use std::io;
use std::path::Path;

use rustix::fs::{CWD, RenameFlags, renameat_with};

/// Renames `from` to `to`, failing with `AlreadyExists` if `to` exists.
pub fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE).map_err(io::Error::from)
}

/// Swaps the entries `a` and `b` (both must exist). `Unsupported` where the file system
/// cannot (some network and FUSE file systems).
pub fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(|e| {
        let e = io::Error::from(e);
        match e.raw_os_error() {
            Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => {
                io::Error::new(io::ErrorKind::Unsupported, e)
            }
            _ => e,
        }
    })
}
