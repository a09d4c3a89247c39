//! Combined flats and darks kept between processes. A job's shards each build the same chain,
//! and background correction would read and average every flat and dark again in each one: a
//! fixed cost per shard, most of a small shard's start (docs/benchmarks.md, section 11). So
//! `job prepare` keeps what it combined in the job folder, and each shard reads that instead.
//!
//! An entry is found by what it was made from: the role ("flats", "darks"), the average, and
//! each file's path, size and modification time, written in the entry's first line and
//! compared whole, so a flat rewritten since is combined again rather than taken from the
//! store. An entry that cannot be read, does not match or fails its CRC-32 is combined again
//! too: the store only saves time, and what it gives equals what combining gives, bit for bit.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};

use super::background::{Average, Reference};
use crate::stack::{Stack, StackKind};

/// Where combined references are kept to be saved (`job prepare`), or looked up (a shard).
pub enum ReferenceStore {
    Keeping(Mutex<Vec<(String, Reference)>>),
    Reading(PathBuf),
}

impl ReferenceStore {
    /// A store that keeps what is combined, for [`ReferenceStore::save`] (`job prepare`).
    pub fn keeping() -> ReferenceStore {
        ReferenceStore::Keeping(Mutex::new(Vec::new()))
    }

    /// A store that looks in `dir`, where [`ReferenceStore::save`] wrote (a shard).
    pub fn reading(dir: PathBuf) -> ReferenceStore {
        ReferenceStore::Reading(dir)
    }

    /// The references of `sets` combined by `average`: from the store when it holds them as
    /// made from these same files, else from `combine`.
    pub(crate) fn combined(
        &self,
        sets: &[Stack],
        average: Average,
        what: &str,
        combine: impl FnOnce() -> Result<Reference>,
    ) -> Result<Reference> {
        // An HDF5 dataset's images are chosen by keys a file's stamp does not show.
        let Some(key) = key(sets, average, what) else {
            return combine();
        };
        match self {
            ReferenceStore::Reading(dir) => match load(&entry(dir, &key), &key) {
                Some(found) => Ok(found),
                None => combine(),
            },
            ReferenceStore::Keeping(kept) => {
                let made = combine()?;
                kept.lock()
                    .map_err(|_| anyhow::anyhow!("a worker panicked"))?
                    .push((key, made.clone()));
                Ok(made)
            }
        }
    }

    /// Writes what was kept into `dir` (created), each entry whole under a temporary name,
    /// then renamed. Not synced to disk: an entry lost or torn by a crash fails its key or
    /// CRC-32 check and is combined again, so a flush (tens of milliseconds for two 16 MiB
    /// images on the development machine) would buy nothing.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let ReferenceStore::Keeping(kept) = self else {
            return Ok(());
        };
        let kept = kept
            .lock()
            .map_err(|_| anyhow::anyhow!("a worker panicked"))?;
        if kept.is_empty() {
            return Ok(());
        }
        fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
        for (key, reference) in kept.iter() {
            let path = entry(dir, key);
            let pixels = little_endian(&reference.pixels);
            let header = serde_json::json!({
                "key": key,
                "width": reference.width,
                "height": reference.height,
                "crc32": crc32fast::hash(&pixels),
            });
            // Not synced (above); readable where the manifest is.
            crate::output::write_whole(&path, false, |w| {
                w.write_all(format!("{header}\n").as_bytes())?;
                w.write_all(&pixels)
            })?;
        }
        Ok(())
    }
}

/// The pixels' bytes as stored: little-endian, which on such a machine they already are.
fn little_endian(pixels: &[f32]) -> std::borrow::Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        bytemuck::cast_slice(pixels).into()
    } else {
        pixels.iter().flat_map(|v| v.to_le_bytes()).collect()
    }
}

/// What a combined reference was made from, as one line of JSON; `None` where that cannot be
/// told from the files alone.
fn key(sets: &[Stack], average: Average, what: &str) -> Option<String> {
    let mut stacks = Vec::with_capacity(sets.len());
    for stack in sets {
        if stack.kind == StackKind::Hdf5 {
            return None;
        }
        // The stamps the stack took when it opened its files, which is what was combined; a
        // file rewritten since then has another stamp when a shard opens it.
        let mut files = Vec::new();
        for stamp in stack.file_stamps() {
            let mut stamp = stamp?.clone();
            stamp.path = fs::canonicalize(&stamp.path).ok()?;
            files.push(serde_json::to_value(stamp).ok()?);
        }
        stacks.push(serde_json::json!({
            "files": files,
            "images": stack.len(),
            "format": stack.format.to_string(),
        }));
    }
    let key = serde_json::json!({
        "what": what,
        "average": format!("{average:?}").to_lowercase(),
        "sets": stacks,
    });
    Some(key.to_string())
}

/// The entry's file: named by a checksum of its key (the key itself is inside, compared).
fn entry(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{:08x}.f32", crc32fast::hash(key.as_bytes())))
}

/// The reference at `path` if it was made from `key` and is whole.
fn load(path: &Path, key: &str) -> Option<Reference> {
    let mut reader = BufReader::new(File::open(path).ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let header: serde_json::Value = serde_json::from_str(&line).ok()?;
    if header["key"].as_str()? != key {
        return None;
    }
    let width = usize::try_from(header["width"].as_u64()?).ok()?;
    let height = usize::try_from(header["height"].as_u64()?).ok()?;
    let mut pixels = vec![0f32; width.checked_mul(height)?];
    reader
        .read_exact(bytemuck::cast_slice_mut(&mut pixels))
        .ok()?;
    if reader.read(&mut [0u8]).ok()? != 0
        || Some(u64::from(crc32fast::hash(bytemuck::cast_slice(&pixels))))
            != header["crc32"].as_u64()
    {
        return None;
    }
    // Stored little-endian; a no-op where the machine is.
    for v in &mut pixels {
        *v = f32::from_bits(u32::from_le(v.to_bits()));
    }
    Some(Reference {
        width,
        height,
        pixels,
    })
}
