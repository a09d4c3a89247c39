//! Stops asked for by a signal: a flag that workers check between images and `commit` checks
//! up to the rename, so a stop leaves no partial output behind (the temporary files are
//! dropped, and with them deleted) and never swaps in a result the user asked not to have.
//!
//! Besides Ctrl-C (SIGINT) and SIGTERM, the signals whose default action would kill the
//! process with its preallocated temporary files on disk are caught the same way: SIGHUP (the
//! ssh session closed), SIGUSR1 and SIGUSR2 (Slurm's `--signal` warning before a time limit
//! by default SIGUSR1), SIGALRM and SIGXCPU (a CPU-time limit of a batch system).

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use signal_hook::consts::{SIGALRM, SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGXCPU, SIGXFSZ};

/// The signals that stop a run cleanly.
pub const STOPPING: [i32; 7] = [SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM, SIGXCPU];

/// The signal that asked us to stop, or 0.
static RECEIVED: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

/// The error a stopped run returns; `main` turns it into exit status 128 + signal.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by {}; the output was not written", signal_name(*.0))]
pub struct Interrupted(pub i32);

impl Interrupted {
    pub fn exit_code(&self) -> u8 {
        (128 + self.0).clamp(0, 255) as u8
    }
}

fn signal_name(sig: i32) -> String {
    signal_hook::low_level::signal_name(sig).map_or_else(|| format!("signal {sig}"), str::to_string)
}

/// Routes the stopping signals to the flag. A second signal of the same kind ends the process
/// at once (the user insists); that may leave a `.NAME.imfilter-*` temporary file behind,
/// never a partial file at the output path.
pub fn install() -> std::io::Result<()> {
    let flag = RECEIVED.get_or_init(|| Arc::new(AtomicUsize::new(0)));
    for sig in STOPPING {
        let already = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, already.clone())?;
        signal_hook::flag::register(sig, already)?;
        signal_hook::flag::register_usize(sig, flag.clone(), sig as usize)?;
    }
    // Past RLIMIT_FSIZE the kernel sends SIGXFSZ, whose default action kills silently; with
    // a handler the write or fallocate fails with EFBIG instead, and the user is told why.
    signal_hook::flag::register(SIGXFSZ, Arc::new(AtomicBool::new(false)))?;
    Ok(())
}

/// `Err(Interrupted)` once a stop was asked for.
pub fn check() -> Result<(), Interrupted> {
    match RECEIVED
        .get()
        .map(|f| f.load(Ordering::Relaxed))
        .unwrap_or(0)
    {
        0 => Ok(()),
        sig => Err(Interrupted(sig as i32)),
    }
}

/// The stop found in an error's chain, also when it was wrapped in an I/O error (a check made
/// inside code that returns `io::Result`, such as the compressor).
pub fn find(e: &anyhow::Error) -> Option<&Interrupted> {
    e.chain().find_map(|c| {
        c.downcast_ref::<Interrupted>().or_else(|| {
            c.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<Interrupted>())
        })
    })
}
