//! Ctrl-C and SIGTERM: a flag that workers check between images, so a stop leaves no partial
//! output behind (the temporary file is dropped, and with it deleted).

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};

/// The signal that asked us to stop, or 0.
static RECEIVED: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

/// The error a stopped run returns; `main` turns it into exit status 128 + signal.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by signal {0}")]
pub struct Interrupted(pub i32);

impl Interrupted {
    pub fn exit_code(&self) -> u8 {
        (128 + self.0).clamp(0, 255) as u8
    }
}

/// Routes SIGINT and SIGTERM to the flag. A second signal of the same kind ends the process
/// at once (the user insists); that may leave a `.NAME.imfilter-*` temporary file behind,
/// never a partial file at the output path.
pub fn install() -> std::io::Result<()> {
    let flag = RECEIVED.get_or_init(|| Arc::new(AtomicUsize::new(0)));
    for sig in [SIGINT, SIGTERM] {
        let already = Arc::new(std::sync::atomic::AtomicBool::new(false));
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, already.clone())?;
        signal_hook::flag::register(sig, already)?;
        signal_hook::flag::register_usize(sig, flag.clone(), sig as usize)?;
    }
    // Past RLIMIT_FSIZE the kernel sends SIGXFSZ, whose default action kills silently; with
    // a handler the write or fallocate fails with EFBIG instead, and the user is told why.
    signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
    )?;
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
