//! One writer per output: the result and its history sidecar are one unit, so two runs writing
//! the same output must not interleave their renames (pixels from one, history from the other).
//!
//! A writer holds an advisory lock (`flock`) on `.NAME.imfilter-lock` beside the output from
//! before its work until after its sidecar is in place. A second writer fails at once with a
//! line that says so: a cron job that waited instead could pile up behind a stuck one. The
//! lock file is removed by its holder before it lets go, so none is left after a run; one left
//! by a SIGKILL holds no lock (the kernel drops it with the process) and is simply taken over.
//! Because a holder removes the file while others may have it open, a newcomer checks after
//! locking that the path still names the file it locked, and tries again if not.

use std::fs::{self, File, TryLockError};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::names;

/// The lock on one output, released (and its file removed) when dropped.
pub struct OutputLock {
    path: PathBuf,
    _file: File,
}

impl OutputLock {
    /// Locks the output at `output`, whose directory is `dir`.
    pub fn acquire(output: &Path, dir: &Path) -> Result<OutputLock> {
        let path = dir.join(names::lock_name(output));
        let cannot = || {
            format!(
                "{}: cannot create its lock {}",
                output.display(),
                path.display()
            )
        };
        loop {
            let file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o666)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .with_context(cannot)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => bail!(
                    "{}: another imfilter run is writing this output (it holds {}); wait for it \
                     to finish or write elsewhere",
                    output.display(),
                    path.display()
                ),
                Err(TryLockError::Error(e)) => return Err(e).with_context(cannot),
            }
            let locked = file.metadata().with_context(cannot)?;
            let named = fs::symlink_metadata(&path).ok();
            if named.is_some_and(|m| (m.dev(), m.ino()) == (locked.dev(), locked.ino())) {
                return Ok(OutputLock { path, _file: file });
            }
            // Its holder removed it between our open and our lock: take the new one.
        }
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Removed while still held, so no one can lock this file after it is gone.
        let _ = fs::remove_file(&self.path);
    }
}
