//! The plan of a job, as written by `job prepare` into `JOBDIR/manifest.json` and read by
//! every other `job` command: plain data, no clap type, no open file.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::pipeline::StepWords;
use crate::stack::hdf5::Keys;
pub use crate::stack::stamp::FileStamp;

/// Bumped when the manifest changes incompatibly: a job prepared by another imfilter is then
/// refused rather than misread.
pub const FORMAT: u32 = 4;

pub const MANIFEST: &str = "manifest.json";

/// The job folder's subfolder of flats and darks combined once, at prepare.
pub const REFERENCES: &str = "references";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// Random; every shard record carries it, so a record left by an earlier job of the same
    /// folder is never taken for one of this job.
    pub id: String,
    pub software: String,
    /// Where `prepare` ran: every relative path (input, output, flats in the steps) is
    /// relative to it, and every other `job` command works from there.
    pub cwd: PathBuf,
    pub input: PathBuf,
    pub inputs: Vec<PathBuf>,
    /// `--pages`, as `PageSlice` prints it.
    pub pages: Option<String>,
    /// `--keys` for an HDF5 dataset input, as `Keys` prints it (and parses it back); `None`:
    /// the image_key found beside the dataset, if any. Which images are projections, flats
    /// and darks, so every shard opens the same stack as `prepare`.
    pub keys: Option<String>,
    pub steps: Vec<Step>,
    /// The result's path, as given.
    pub output: PathBuf,
    /// The hidden temporary output beside it, at its full size, and the inode it had when
    /// `prepare` created it.
    pub temporary: PathBuf,
    pub temporary_inode: u64,
    /// For a chain with a sinogram step: the image phase's result (raw float32 images), in the
    /// job folder.
    pub intermediate: Option<PathBuf>,
    pub force: bool,
    pub sync: bool,
    /// The mode the result gets when it is renamed into place (the umask's), if the owner
    /// needed more while the shards wrote it.
    pub restore_mode: Option<u32>,
    pub images: usize,
    /// The result's pages: `width`×`height` of `dtype`, at `data_offset`, `page_bytes` each.
    pub width: usize,
    pub height: usize,
    pub dtype: String,
    pub data_offset: u64,
    pub page_bytes: u64,
    pub file_len: u64,
    /// The CRC-32 of the bytes around the pixel block (the TIFF header and directories), as
    /// `prepare` wrote them: no shard writes them, and the commit checks them.
    pub metadata_crc32: u32,
    /// Every file the result is computed from (the input's, or the HDF5 file of a dataset
    /// input and of `--keys FILE:/PATH`, and the steps' flats and darks).
    pub fingerprint: Vec<FileStamp>,
    /// The history sidecar `commit` writes beside the result (the same is in the TIFF).
    pub history: serde_json::Value,
    pub phases: Vec<Phase>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub label: String,
    pub words: Vec<String>,
}

impl From<&StepWords> for Step {
    fn from(s: &StepWords) -> Step {
        Step {
            label: s.label.clone(),
            words: s.words.clone(),
        }
    }
}

impl From<&Step> for StepWords {
    fn from(s: &Step) -> StepWords {
        StepWords {
            label: s.label.clone(),
            words: s.words.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum PhaseKind {
    /// Step `step` (from 0) needs a statistic of the whole stack: each shard carries its
    /// images through the steps before it and records what the step takes from each.
    Survey { step: usize },
    /// Every step (up to and converting for the first sinogram step), image by image, into
    /// the output, or into the intermediate file when a sinogram phase follows.
    Images,
    /// The sinogram steps and those after them, over bands of rows: from the intermediate
    /// file into the output.
    Sinograms,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    #[serde(flatten)]
    pub kind: PhaseKind,
    /// Each shard's `[start, end)`: images for a survey or image phase, rows for a sinogram
    /// phase.
    pub shards: Vec<[usize; 2]>,
}

/// `Err` naming the file if it is no longer what it was when the job was prepared.
fn check_stamp(stamp: &FileStamp) -> Result<()> {
    let now = FileStamp::of(&stamp.path).with_context(|| {
        format!(
            "{}: the job's input is gone since the job was prepared",
            stamp.path.display()
        )
    })?;
    if now.size != stamp.size {
        bail!(
            "{}: changed since the job was prepared (size {} bytes, now {}); prepare the \
             job again",
            stamp.path.display(),
            stamp.size,
            now.size
        );
    }
    if now.mtime_ns != stamp.mtime_ns {
        bail!(
            "{}: changed since the job was prepared (modified again); prepare the job again",
            stamp.path.display()
        );
    }
    Ok(())
}

/// The CRC-32 of `file`'s bytes outside its pixel block (`data_len` bytes at `data_offset`).
pub fn metadata_crc32(file: &fs::File, data_offset: u64, data_len: u64) -> std::io::Result<u32> {
    let len = file.metadata()?.len();
    let mut crc = crc32fast::Hasher::new();
    for (start, end) in [(0, data_offset), (data_offset + data_len, len)] {
        let mut bytes = vec![0; end.saturating_sub(start) as usize];
        file.read_exact_at(&mut bytes, start)?;
        crc.update(&bytes);
    }
    Ok(crc.finalize())
}

impl Manifest {
    /// Bytes of the output's pixel block (every page, at `data_offset`).
    pub fn data_len(&self) -> u64 {
        self.images as u64 * self.page_bytes
    }

    /// The CRC-32 of rows `a..b` of every page of `block` (the output's pixel block): what a
    /// sinogram shard wrote. The shard records it; commit checks it.
    pub fn rows_crc(&self, block: &[u8], [a, b]: [usize; 2]) -> u32 {
        let row = (self.page_bytes / self.height as u64) as usize;
        let mut crc = crc32fast::Hasher::new();
        for page in block.chunks_exact(self.page_bytes as usize) {
            crc.update(&page[a * row..b * row]);
        }
        crc.finalize()
    }

    /// The `--keys` the job was prepared with.
    pub fn keys(&self) -> Result<Keys> {
        match &self.keys {
            None => Ok(Keys::Auto),
            Some(text) => Keys::parse(text).map_err(|e| anyhow!("the job's --keys: {e}")),
        }
    }

    pub fn phase(&self, name: &str) -> Option<(usize, &Phase)> {
        self.phases.iter().enumerate().find(|(_, p)| p.name == name)
    }

    /// Every input file unchanged since `prepare`, or an error naming the first that is not.
    pub fn check_inputs(&self) -> Result<()> {
        self.fingerprint.iter().try_for_each(check_stamp)
    }

    /// Reads `JOBDIR/manifest.json`.
    pub fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let text = fs::read_to_string(&path).with_context(|| {
            format!(
                "{}: cannot read the job's manifest (is {} a job folder that imfilter job \
                 prepare printed?)",
                path.display(),
                dir.display()
            )
        })?;
        let manifest: Manifest = serde_json::from_str(&text)
            .with_context(|| format!("{}: not an imfilter job manifest", path.display()))?;
        if manifest.format != FORMAT {
            bail!(
                "{}: a job of another imfilter (manifest format {}, this one reads {FORMAT}); \
                 prepare it again",
                path.display(),
                manifest.format
            );
        }
        Ok(manifest)
    }
}

/// `n` items split into `shards` contiguous ranges whose sizes differ by at most one.
pub fn split(n: usize, shards: usize) -> Vec<[usize; 2]> {
    (0..shards)
        .map(|i| [i * n / shards, (i + 1) * n / shards])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_item_once_in_order() {
        for (n, shards) in [(10, 3), (8, 8), (1000, 64), (7, 1)] {
            let ranges = split(n, shards);
            assert_eq!(ranges.len(), shards);
            assert_eq!(ranges[0][0], 0);
            assert_eq!(ranges[shards - 1][1], n);
            for w in ranges.windows(2) {
                assert_eq!(w[0][1], w[1][0]);
            }
            let sizes: Vec<usize> = ranges.iter().map(|r| r[1] - r[0]).collect();
            let (min, max) = (sizes.iter().min(), sizes.iter().max());
            assert!(max.zip(min).is_some_and(|(a, b)| a - b <= 1), "{sizes:?}");
        }
    }
}
