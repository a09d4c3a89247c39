//! `job status` and `job commit`. A result is committed only when every shard of every phase
//! has its done record and the bytes each writing phase recorded are still the file's (their
//! CRC-32s): a shard killed, never run, run for another job, or whose pages another writer
//! overwrote since (a rerun earlier phase, a shared file system that lost a write) is named
//! and nothing moves.
//!
//! What is read back by default is where a coherent file system can still lose bytes that a
//! shard synced: the pages it shares with another writer, at the ends of its range (see
//! [`Verify`]). Reading everything back on the commit's one node costs, for a large result,
//! more than the whole job on many nodes (docs/scale-out.md), so that is asked for with
//! `--verify all`, and is what happens anyway where a shard's record says nothing of the
//! disk (`--no-sync`) or where shards share every page (sinogram phases).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use rayon::prelude::*;

use super::manifest::{self, Manifest, Phase, PhaseKind};
use super::records::{self, Done, State};
use super::shard;
use crate::history;
use crate::output::{self, Durability, OutputLock};
use crate::stack::mapped::ReadMap;

const COMMITTED: &str = "committed.json";

/// Prints each phase's shards: done, running (or killed), failed, not started, stale.
pub fn status(dir: &Path) -> Result<()> {
    let (dir, m) = shard::open_job(dir)?;
    let committed = dir.join(COMMITTED).exists();
    println!(
        "job {}: {} images -> {} ({})",
        dir.display(),
        m.images,
        m.output.display(),
        if committed {
            "committed"
        } else {
            "not committed"
        }
    );
    let host = records::host();
    for (p, phase) in m.phases.iter().enumerate() {
        let (mut done, mut running, mut failed, mut waiting, mut stale) = (0, 0, 0, 0, 0);
        let mut lines = Vec::new();
        for s in 0..phase.shards.len() {
            match records::state(&dir, &m, p, s) {
                State::Done(_) => done += 1,
                State::NotStarted => waiting += 1,
                State::Started(st) => {
                    running += 1;
                    // On this host a process that is gone was killed; elsewhere only the
                    // scheduler knows.
                    let gone = st.host == host && !Path::new(&format!("/proc/{}", st.pid)).exists();
                    lines.push(match gone {
                        true => format!(
                            "  shard {s}: killed (started {} on {} as pid {}, which is gone)",
                            st.time, st.host, st.pid
                        ),
                        false => format!(
                            "  shard {s}: running, or killed (started {} on {} as pid {})",
                            st.time, st.host, st.pid
                        ),
                    });
                }
                State::Failed(f) => {
                    failed += 1;
                    lines.push(format!(
                        "  shard {s}: failed on {} at {}: {}",
                        f.host, f.time, f.error
                    ));
                }
                State::Stale(why) => {
                    stale += 1;
                    lines.push(format!("  shard {s}: stale: {why}"));
                }
            }
        }
        println!(
            "{}: {} shards: {done} done, {running} running, {failed} failed, {waiting} not \
             started{}",
            phase.name,
            phase.shards.len(),
            if stale > 0 {
                format!(", {stale} stale")
            } else {
                String::new()
            }
        );
        for line in lines {
            println!("{line}");
        }
    }
    Ok(())
}

/// How much of the result `job commit` reads back and checks against the shards' records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Verify {
    /// The images within a megabyte of a shard's first or last byte, where two writers share
    /// file system pages; every image when the shards did not sync before recording
    /// (--no-sync), and every row of a sinogram phase, whose shards share every page
    Seams,
    /// Every byte the shards wrote
    All,
    /// Nothing: trust the shards' records
    None,
}

/// Commits the job's result: see the module's comment.
pub fn commit(dir: &Path, verify: Verify, quiet: bool) -> Result<()> {
    let (dir, m) = shard::open_job(dir)?;
    if dir.join(COMMITTED).exists() {
        bail!(
            "{}: already committed to {}",
            dir.display(),
            m.output.display()
        );
    }
    let mut missing = Vec::new();
    let mut finished = Vec::with_capacity(m.phases.len());
    for (p, phase) in m.phases.iter().enumerate() {
        let mut done = Vec::with_capacity(phase.shards.len());
        for s in 0..phase.shards.len() {
            let why = match records::state(&dir, &m, p, s) {
                State::Done(d) => {
                    done.push(d);
                    continue;
                }
                State::NotStarted => "not started".to_string(),
                State::Started(_) => "started, not done (running, or killed)".to_string(),
                State::Failed(f) => format!("failed: {}", f.error),
                State::Stale(why) => format!("stale: {why}"),
            };
            missing.push(format!("{} shard {s} ({why})", phase.name));
        }
        finished.push(done);
    }
    if !missing.is_empty() {
        bail!(
            "{}: not committed: {} of the shards are not done: {}; run them (imfilter job run \
             {} --phase PHASE --shard N) and commit again",
            dir.display(),
            missing.len(),
            missing.join("; "),
            dir.display()
        );
    }
    let file = shard::open_output(&m)?;
    if verify != Verify::None {
        check_metadata(&m, &file)?;
        check_pages(&dir, &m, &file, &finished, verify)?;
    }

    let output = m.output.clone();
    let parent = crate::output::parent_dir(&output)?;
    let _lock = OutputLock::acquire(&output, &parent)?;
    let durability = if m.sync {
        Durability::WaitForDisk
    } else {
        Durability::NoWait
    };
    // The history as a local run writes it, with this commit's time.
    let mut history = m.history.clone();
    history::restamp(&mut history, m.steps.len());
    let sidecar = history::prepare(&output, &history, durability, m.force)?;
    let named = || output.display().to_string();
    if m.sync {
        file.sync_all()
            .with_context(|| format!("{}: cannot sync to disk", named()))?;
    }
    let replaced = fs::metadata(&output).ok().map(|meta| meta.permissions());
    let mode = replaced.or(m.restore_mode.map(fs::Permissions::from_mode));
    if let Some(mode) = mode {
        file.set_permissions(mode)
            .with_context(|| format!("{}: cannot set its mode", named()))?;
    }
    drop(file);
    crate::interrupt::check()?;
    // The same check as just before a local run's rename: the inputs and the file are still
    // what the shards read and wrote.
    m.check_inputs()?;
    shard::open_output(&m)?;
    let temp = tempfile::TempPath::try_from_path(&m.temporary)
        .with_context(|| format!("{}: cannot resolve", m.temporary.display()))?;
    let persisted = if m.force {
        temp.persist(&output)
    } else {
        temp.persist_noclobber(&output)
    };
    if let Err(e) = persisted {
        // Not ours to remove: the job can still be committed once the path is free.
        let _ = e.path.keep();
        return Err(e.error).with_context(|| {
            format!(
                "{}: cannot move the result into place (it stays in {})",
                named(),
                m.temporary.display()
            )
        });
    }
    if m.sync {
        output::sync_dir(&parent);
    }
    sidecar.commit()?;
    if let Some(intermediate) = &m.intermediate {
        let _ = fs::remove_file(intermediate);
    }
    let record = serde_json::json!({ "job": m.id, "output": output, "time": history::now() });
    fs::write(dir.join(COMMITTED), format!("{record:#}\n"))
        .with_context(|| format!("{}: cannot write", dir.join(COMMITTED).display()))?;
    if !quiet {
        eprintln!(
            "job: committed {} images ({} phases, {} shards each) -> {}",
            m.images,
            m.phases.len(),
            m.phases.first().map_or(0, |p| p.shards.len()),
            output.display()
        );
    }
    Ok(())
}

/// `Err` unless the output's TIFF header and directories are as `prepare` wrote them.
fn check_metadata(m: &Manifest, output: &fs::File) -> Result<()> {
    let crc = manifest::metadata_crc32(output, m.data_offset, m.data_len())
        .with_context(|| format!("{}: cannot read", m.temporary.display()))?;
    if crc != m.metadata_crc32 {
        bail!(
            "{}: not committed: the temporary output's TIFF header or directories changed \
             since the job was prepared ({}); prepare the job again",
            m.output.display(),
            m.temporary.display()
        );
    }
    Ok(())
}

/// How near (in bytes) to a shard's first or last byte an image is read back by
/// [`Verify::Seams`]: more than any file system's page or client write-back unit (4 KiB
/// pages, 64 KiB on some CPUs, 1 MiB NFS and Lustre transfers), so every page a shard shares
/// with its neighbour or with the header lies in an image that is read back.
const SEAM: u64 = 1 << 20;

/// Re-reads what each writing phase recorded, as `verify` asks, and compares it with the
/// shards' checksums; an error names the shards whose bytes changed since they finished.
fn check_pages(
    dir: &Path,
    m: &Manifest,
    output: &fs::File,
    finished: &[Vec<Done>],
    verify: Verify,
) -> Result<()> {
    let every = verify == Verify::All || !m.sync;
    for (phase, done) in m.phases.iter().zip(finished) {
        let changed = match phase.kind {
            PhaseKind::Survey { .. } => continue,
            PhaseKind::Images => match &m.intermediate {
                Some(path) => {
                    let file = output::reopen_temporary(path, false)
                        .with_context(|| format!("{}: cannot open", path.display()))?;
                    let len = file
                        .metadata()
                        .with_context(|| format!("{}: cannot read", path.display()))?
                        .len();
                    let image_bytes = len / m.images.max(1) as u64;
                    changed_images(&file, path, 0, image_bytes, phase, done, every)?
                }
                None => changed_images(
                    output,
                    &m.temporary,
                    m.data_offset,
                    m.page_bytes,
                    phase,
                    done,
                    every,
                )?,
            },
            PhaseKind::Sinograms => changed_rows(m, output, phase, done)?,
        };
        if !changed.is_empty() {
            bail!(
                "{}: not committed: stale shards of phase {}: {} (their pages changed since \
                 they finished; run them again)",
                dir.display(),
                phase.name,
                changed.join(", ")
            );
        }
    }
    Ok(())
}

/// The shards of an image phase (written into `file` from `offset`, `image_bytes` an image)
/// some of whose images no longer have the CRC-32 their record holds: each shard's images
/// at its seams, or `every` image.
fn changed_images(
    file: &fs::File,
    name: &Path,
    offset: u64,
    image_bytes: u64,
    phase: &Phase,
    done: &[Done],
    every: bool,
) -> Result<Vec<String>> {
    let map =
        ReadMap::open(file, name).with_context(|| format!("{}: cannot map", name.display()))?;
    let bytes = map.bytes();
    let mut picked: Vec<(usize, usize)> = Vec::new();
    for (s, &range) in phase.shards.iter().enumerate() {
        match every {
            true => picked.extend((range[0]..range[1]).map(|i| (s, i))),
            false => picked.extend(near_seams(range, image_bytes).map(|i| (s, i))),
        }
    }
    let image = |i: usize| {
        let at = (offset + i as u64 * image_bytes) as usize;
        bytes.get(at..at + image_bytes as usize)
    };
    let mut changed: Vec<usize> = picked
        .into_par_iter()
        .filter(|&(s, i)| {
            let [a, _] = phase.shards[s];
            let recorded = done[s].image_crc32.as_ref().and_then(|c| c.get(i - a));
            image(i).map(crc32fast::hash).as_ref() != recorded
        })
        .map(|(s, _)| s)
        .collect();
    changed.dedup();
    Ok(changed.into_iter().map(|s| s.to_string()).collect())
}

/// The images of the shard `[a, b)` (of `image_bytes` each) that lie within [`SEAM`] bytes
/// of its first or last byte, in order.
fn near_seams([a, b]: [usize; 2], image_bytes: u64) -> impl Iterator<Item = usize> {
    let image_bytes = image_bytes.max(1);
    let (start, end) = (a as u64 * image_bytes, b as u64 * image_bytes);
    let head = a..((start + SEAM).div_ceil(image_bytes) as usize).min(b);
    let tail = ((end.saturating_sub(SEAM) / image_bytes) as usize).max(head.end)..b;
    head.chain(tail)
}

/// The shards of a sinogram phase whose rows no longer have the CRC-32 their record holds:
/// every row, since the shards of a sinogram phase share every page.
fn changed_rows(
    m: &Manifest,
    output: &fs::File,
    phase: &Phase,
    done: &[Done],
) -> Result<Vec<String>> {
    let map = ReadMap::open(output, &m.temporary)
        .with_context(|| format!("{}: cannot map", m.temporary.display()))?;
    let start = m.data_offset as usize;
    let block = &map.bytes()[start..start + m.data_len() as usize];
    Ok((0..phase.shards.len())
        .into_par_iter()
        .filter(|&s| Some(m.rows_crc(block, phase.shards[s])) != done[s].crc32)
        .map(|s| s.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seams_are_the_images_within_a_megabyte_of_either_end() {
        const MIB: u64 = 1 << 20;
        let seams = |range, bytes| near_seams(range, bytes).collect::<Vec<_>>();
        // Images of 1 MiB: the first and the last of the shard.
        assert_eq!(seams([24, 48], MIB), [24, 47]);
        // Of 400 KiB: three at each end (the third reaches past the megabyte).
        assert_eq!(seams([10, 30], 400 << 10), [10, 11, 12, 27, 28, 29]);
        // A shard shorter than two megabytes is read back whole, each image once.
        assert_eq!(seams([3, 6], 512 << 10), [3, 4, 5]);
        // Images larger than the seam: one at each end, or the one image.
        assert_eq!(seams([0, 5], 16 * MIB), [0, 4]);
        assert_eq!(seams([7, 8], 16 * MIB), [7]);
    }
}
