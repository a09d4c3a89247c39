//! What each shard leaves in `JOBDIR/shards/`: `PHASE.N.started.json` when it starts,
//! `PHASE.N.done.json` once its pages are on disk (with a checksum of them), or
//! `PHASE.N.failed.json` with the error. Each is written whole under a temporary name and
//! renamed, so a reader (another node's `status`, `commit`) sees a complete record or none.
//! Only the done record is synced to disk (unless the job is `--no-sync`): it is the one the
//! commit relies on. A started or failed record lost in a crash shows the shard as not
//! started, which is rerun as a failed one would be, so neither is worth a disk flush each
//! (two per shard, a few milliseconds apiece).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::manifest::Manifest;

const SHARDS: &str = "shards";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Started {
    pub job: String,
    pub host: String,
    pub pid: u32,
    pub time: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Done {
    pub job: String,
    pub range: [usize; 2],
    /// A sinogram shard: the CRC-32 of the rows it wrote, in file order.
    pub crc32: Option<u32>,
    /// An image shard: the CRC-32 of each image it wrote, in order, so the commit can read
    /// back some of them (those at the seams) or all.
    #[serde(default)]
    pub image_crc32: Option<Vec<u32>>,
    pub host: String,
    pub time: String,
    /// A survey shard's findings: per image, each number's IEEE bits (exact, unlike decimal
    /// text read back).
    pub surveys: Option<Vec<Vec<u64>>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failed {
    pub job: String,
    pub host: String,
    pub time: String,
    pub error: String,
}

/// Where one shard of one phase stands.
#[derive(Debug)]
pub enum State {
    NotStarted,
    /// Started and neither done nor failed: still running, or killed.
    Started(Started),
    Failed(Failed),
    Done(Done),
    /// A record that is not this shard's as planned (another job's, another range, unreadable).
    Stale(String),
}

fn path(dir: &Path, phase: &str, shard: usize, kind: &str) -> PathBuf {
    dir.join(SHARDS)
        .join(format!("{phase}.{shard}.{kind}.json"))
}

pub fn host() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Creates `JOBDIR/shards/`.
pub fn create_dir(dir: &Path) -> Result<()> {
    let shards = dir.join(SHARDS);
    fs::create_dir_all(&shards).with_context(|| format!("{}: cannot create", shards.display()))
}

/// Writes `value` as `path`, as JSON, whole (see [`crate::output::write_whole`]).
pub(super) fn write_whole<T: Serialize>(path: &Path, value: &T, sync: bool) -> Result<()> {
    crate::output::write_whole(path, sync, |w| {
        serde_json::to_writer_pretty(&mut *w, value)?;
        w.write_all(b"\n")
    })
}

fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<Result<T>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Err(e).with_context(|| format!("{}: cannot read", path.display()))),
    };
    Some(
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a shard record", path.display())),
    )
}

/// Removes the shard's records: it is about to run again.
pub fn clear(dir: &Path, phase: &str, shard: usize) -> Result<()> {
    // The started record first: a shard still running checks it after writing its done
    // record (see `done`).
    for kind in ["started", "done", "failed"] {
        let p = path(dir, phase, shard, kind);
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("{}: cannot remove", p.display())),
        }
    }
    Ok(())
}

pub fn started(dir: &Path, m: &Manifest, phase: &str, shard: usize) -> Result<()> {
    let record = Started {
        job: m.id.clone(),
        host: host(),
        pid: std::process::id(),
        time: crate::history::now(),
    };
    write_whole(&path(dir, phase, shard, "started"), &record, false)
}

/// Writes the shard's done record, unless its started record is no longer this process's:
/// a shard of an earlier phase ran again meanwhile and cleared it, so what this shard read
/// may have changed under it.
pub fn done(dir: &Path, m: &Manifest, phase: &str, shard: usize, record: &Done) -> Result<()> {
    still_running_here(dir, phase, shard, &m.id)?;
    let done = path(dir, phase, shard, "done");
    write_whole(&done, record, m.sync)?;
    // Checked again once the record is there: `clear` removes the started record first, so a
    // clear that came between the check and the rename is seen here, and its record undone.
    if let Err(e) = still_running_here(dir, phase, shard, &m.id) {
        let _ = fs::remove_file(&done);
        return Err(e);
    }
    // The started record has served; a done shard is only its done record.
    let _ = fs::remove_file(path(dir, phase, shard, "started"));
    Ok(())
}

/// `Err` unless the shard's started record is this job's and this process's.
fn still_running_here(dir: &Path, phase: &str, shard: usize, job: &str) -> Result<()> {
    let ours = match read::<Started>(&path(dir, phase, shard, "started")) {
        Some(Ok(s)) => s.job == job && s.host == host() && s.pid == std::process::id(),
        _ => false,
    };
    if !ours {
        anyhow::bail!(
            "{}: {phase} shard {shard}: its record was cleared while it ran (a shard of an \
             earlier phase ran again, or this one was started twice); run it again",
            dir.display()
        );
    }
    Ok(())
}

pub fn failed(dir: &Path, m: &Manifest, phase: &str, shard: usize, error: &str) -> Result<()> {
    let record = Failed {
        job: m.id.clone(),
        host: host(),
        time: crate::history::now(),
        error: error.to_string(),
    };
    write_whole(&path(dir, phase, shard, "failed"), &record, false)
}

/// Where shard `shard` of phase `phase` (index `p` in the manifest) stands.
pub fn state(dir: &Path, m: &Manifest, p: usize, shard: usize) -> State {
    let phase = &m.phases[p];
    let name = phase.name.as_str();
    let stale = |e: anyhow::Error| State::Stale(format!("{e:#}"));
    if let Some(done) = read::<Done>(&path(dir, name, shard, "done")) {
        return match done {
            Err(e) => stale(e),
            Ok(d) if d.job != m.id => State::Stale("its done record is another job's".into()),
            Ok(d) if Some(&d.range) != phase.shards.get(shard) => {
                State::Stale("its done record is for another range".into())
            }
            Ok(d) => State::Done(d),
        };
    }
    if let Some(failed) = read::<Failed>(&path(dir, name, shard, "failed")) {
        return match failed {
            Err(e) => stale(e),
            Ok(f) if f.job != m.id => State::NotStarted,
            Ok(f) => State::Failed(f),
        };
    }
    match read::<Started>(&path(dir, name, shard, "started")) {
        None => State::NotStarted,
        Some(Err(e)) => stale(e),
        Some(Ok(s)) if s.job != m.id => State::NotStarted,
        Some(Ok(s)) => State::Started(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started_by(dir: &Path, job: &str, pid: u32) {
        let record = Started {
            job: job.into(),
            host: host(),
            pid,
            time: String::new(),
        };
        write_whole(&path(dir, "sinograms", 0, "started"), &record, false).expect("write");
    }

    #[test]
    fn a_shard_whose_started_record_was_cleared_or_taken_over_may_not_say_it_is_done() {
        let dir = tempfile::tempdir().expect("dir");
        create_dir(dir.path()).expect("shards");
        let me = std::process::id();
        started_by(dir.path(), "job-1", me);
        assert!(still_running_here(dir.path(), "sinograms", 0, "job-1").is_ok());
        // An earlier phase's shard ran again and cleared this phase's records.
        clear(dir.path(), "sinograms", 0).expect("clear");
        let e = still_running_here(dir.path(), "sinograms", 0, "job-1").expect_err("cleared");
        assert!(format!("{e}").contains("cleared while it ran"), "{e}");
        // The same shard started again by another process, or by another job.
        started_by(dir.path(), "job-1", me.wrapping_add(1));
        assert!(still_running_here(dir.path(), "sinograms", 0, "job-1").is_err());
        started_by(dir.path(), "job-2", me);
        assert!(still_running_here(dir.path(), "sinograms", 0, "job-1").is_err());
    }
}
