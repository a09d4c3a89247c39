//! `job status` and `job commit`. A result is committed only when every shard of every phase
//! has its done record and the bytes the last writing phase recorded are still the file's
//! (their CRC-32): a shard killed, never run, run for another job, or whose pages another
//! writer overwrote since (a rerun earlier phase, a shared file system that lost a write) is
//! named and nothing moves.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use rayon::prelude::*;

use super::manifest::{Manifest, PhaseKind};
use super::records::{self, State};
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

/// Commits the job's result: see the module's comment.
pub fn commit(dir: &Path, check_pages: bool, quiet: bool) -> Result<()> {
    let (dir, m) = shard::open_job(dir)?;
    if dir.join(COMMITTED).exists() {
        bail!(
            "{}: already committed to {}",
            dir.display(),
            m.output.display()
        );
    }
    let mut missing = Vec::new();
    for (p, phase) in m.phases.iter().enumerate() {
        for s in 0..phase.shards.len() {
            let why = match records::state(&dir, &m, p, s) {
                State::Done(_) => continue,
                State::NotStarted => "not started".to_string(),
                State::Started(_) => "started, not done (running, or killed)".to_string(),
                State::Failed(f) => format!("failed: {}", f.error),
                State::Stale(why) => format!("stale: {why}"),
            };
            missing.push(format!("{} shard {s} ({why})", phase.name));
        }
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
    m.check_inputs()?;
    let file = shard::open_output(&m)?;
    if check_pages {
        verify(&dir, &m, &file)?;
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
    if let Some(runs) = history["operation_history"].as_array_mut() {
        let this_job = runs.len().saturating_sub(m.steps.len());
        for entry in &mut runs[this_job..] {
            entry["time"] = records::now().into();
        }
    }
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
    let record = serde_json::json!({ "job": m.id, "output": output, "time": records::now() });
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

/// Re-reads what the last phase that writes the output recorded, shard by shard, and
/// compares its CRC-32 with the record.
fn verify(dir: &Path, m: &Manifest, file: &fs::File) -> Result<()> {
    let Some(p) = m
        .phases
        .iter()
        .rposition(|ph| !matches!(ph.kind, PhaseKind::Survey { .. }))
    else {
        bail!("{}: the job has no phase that writes", dir.display());
    };
    let phase = &m.phases[p];
    let map = ReadMap::open(file, &m.temporary)
        .with_context(|| format!("{}: cannot map", m.temporary.display()))?;
    let bytes = map.bytes();
    let start = m.data_offset as usize;
    let block = &bytes[start..start + m.images * m.page_bytes as usize];
    // Shards are checked in parallel: the read back is commit's one cost that grows with the
    // data (docs/benchmarks.md, section 11).
    let checked = (0..phase.shards.len())
        .into_par_iter()
        .map(|s| -> Result<Option<String>> {
            let [a, b] = phase.shards[s];
            let State::Done(done) = records::state(dir, m, p, s) else {
                bail!("{}: {} shard {s} is not done", dir.display(), phase.name);
            };
            let crc = match phase.kind {
                PhaseKind::Sinograms => m.rows_crc(block, [a, b]).0,
                _ => {
                    let pb = m.page_bytes as usize;
                    crc32fast::hash(&block[a * pb..b * pb])
                }
            };
            Ok((Some(crc) != done.crc32).then(|| s.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    let changed: Vec<String> = checked.into_iter().flatten().collect();
    if !changed.is_empty() {
        bail!(
            "{}: not committed: stale shards of phase {}: {} (their pages changed since they \
             finished; run them again)",
            dir.display(),
            phase.name,
            changed.join(", ")
        );
    }
    Ok(())
}
