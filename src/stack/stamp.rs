//! What a file was when it was read: its path, size and modification time. Compared later to
//! notice that it changed: a job's inputs between `job prepare` and each shard, the flats a
//! stored reference was combined from, an input between its opening and the commit.

use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Size and modification time: what rewriting a file, in place or by replacing it, changes.
/// Not the inode, which a copy restored with its time (`cp -p`, `rsync -t`) would change
/// while its contents stayed the same; where a replaced file must be told apart from the one
/// opened, its inode is compared as well (`Source::check_unchanged`, a shard's output).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileStamp {
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i128,
}

impl FileStamp {
    pub fn of(path: &Path) -> io::Result<FileStamp> {
        Ok(FileStamp::from_metadata(path, &fs::metadata(path)?))
    }

    pub fn from_metadata(path: &Path, meta: &Metadata) -> FileStamp {
        FileStamp {
            path: path.to_path_buf(),
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
}
