//! `job run`: one shard of one phase. It maps only its own images (or rows) of the output,
//! runs the chain's engine on them with each image's index in the whole stack, syncs what it
//! wrote, and only then records that it is done, with a CRC-32 of each image (of its rows,
//! for a sinogram shard). Running it
//! again rewrites the same bytes: it reads only the input (and, for a sinogram shard, the
//! intermediate file the image phase wrote), never what it writes.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail};
use rayon::prelude::*;

use super::manifest::{self, Manifest, PhaseKind};
use super::records::{self, Done, State};
use crate::cli::{Cli, PageSlice};
use crate::engine;
use crate::filters::Chain;
use crate::filters::reference_store::ReferenceStore;
use crate::history;
use crate::output::{self, OutputPage};
use crate::pipeline::StepWords;
use crate::progress::{Progress, ProgressMode};
use crate::run;
use crate::stack::mapped::{BandMap, ReadMap, WriteMap};
use crate::stack::{PageFormat, Stack};
use crate::with_pixel_type;

/// Loads the job at `dir` and moves into the directory it was prepared in, where its
/// relative paths (input, output, flats) point. Returns the folder's absolute path.
pub fn open_job(dir: &Path) -> Result<(PathBuf, Manifest)> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("{}: no such job folder", dir.display()))?;
    let m = Manifest::load(&dir)?;
    std::env::set_current_dir(&m.cwd).with_context(|| {
        format!(
            "{}: cannot work from {}, where the job was prepared",
            dir.display(),
            m.cwd.display()
        )
    })?;
    Ok((dir, m))
}

/// Runs shard `shard` of `phase` (the only phase when `None`).
pub fn run(dir: &Path, phase: Option<&str>, shard: usize, cli: &Cli) -> Result<()> {
    let (dir, m) = open_job(dir)?;
    let names = || {
        m.phases
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let p = match phase {
        Some(name) => match m.phase(name) {
            Some((p, _)) => p,
            None => bail!(
                "{}: the job has no phase {name}; its phases are {}",
                dir.display(),
                names()
            ),
        },
        None if m.phases.len() == 1 => 0,
        None => bail!(
            "{}: the job has phases {}, run in that order: give --phase",
            dir.display(),
            names()
        ),
    };
    let name = m.phases[p].name.clone();
    let count = m.phases[p].shards.len();
    if shard >= count {
        bail!(
            "{}: --shard {shard}: phase {name} has shards 0 to {}",
            dir.display(),
            count - 1
        );
    }
    records::clear(&dir, &name, shard)?;
    records::started(&dir, &m, &name, shard)?;
    let finished =
        work(&dir, &m, p, shard, cli).and_then(|done| records::done(&dir, &m, &name, shard, &done));
    if let Err(e) = &finished {
        let _ = records::failed(&dir, &m, &name, shard, &format!("{e:#}"));
    }
    finished
}

/// Clears the records of every shard of the phases after `p`: this shard's results are about
/// to change, so what later phases made from them no longer stands. A later shard still
/// running then finds its started record gone and does not record itself done.
fn clear_later_phases(dir: &Path, m: &Manifest, p: usize) -> Result<()> {
    for later in &m.phases[p + 1..] {
        for s in 0..later.shards.len() {
            records::clear(dir, &later.name, s)?;
        }
    }
    Ok(())
}

/// The chain as planned, over the input as planned: the same steps, images and formats,
/// with the flats and darks the job in `dir` combined when it was prepared.
pub fn rebuild(dir: &Path, m: &Manifest) -> Result<(Stack, Chain)> {
    let words: Vec<StepWords> = m.steps.iter().map(StepWords::from).collect();
    // An HDF5 dataset input's projections (and, for background correction without --flat,
    // its flats and darks) are the images its keys mark, as when the job was prepared.
    let keys = m.keys()?;
    let store = ReferenceStore::reading(dir.join(manifest::REFERENCES));
    let input = crate::filters::Input {
        paths: &m.inputs,
        keys: &keys,
        references: Some(&store),
    };
    let planned = run::planned_steps(&words, &input)?;
    let mut stack = crate::stack::hdf5::open_inputs(&m.inputs, &keys)?;
    if let Some(pages) = &m.pages {
        let slice =
            PageSlice::parse(pages).map_err(|e| anyhow::anyhow!("the job's --pages: {e}"))?;
        stack.select_pages(&slice)?;
    }
    let ops = planned.into_iter().map(|p| p.op).collect();
    let mut chain = Chain::new(ops, stack.format, true)?;
    chain.set_stack_images(stack.len())?;
    let out = chain.output_format();
    if stack.len() != m.images
        || (out.width, out.height, out.dtype.to_string()) != (m.width, m.height, m.dtype.clone())
    {
        bail!(
            "{}: no longer gives the job's {} images of {}×{} {}; prepare the job again",
            m.input.display(),
            m.images,
            m.width,
            m.height,
            m.dtype
        );
    }
    Ok((stack, chain))
}

/// Reopens the job's temporary output for writing, refusing another file or a link at its
/// path, or one of another size.
pub fn open_output(m: &Manifest) -> Result<File> {
    let path = &m.temporary;
    let file = output::reopen_temporary(path, true).with_context(|| {
        format!(
            "{}: cannot open the job's temporary output {} (committed or removed?)",
            m.output.display(),
            path.display()
        )
    })?;
    let meta = file
        .metadata()
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if meta.ino() != m.temporary_inode || meta.len() != m.file_len {
        bail!(
            "{}: the job's temporary output {} was replaced since the job was prepared",
            m.output.display(),
            path.display()
        );
    }
    Ok(file)
}

/// Opens the job's intermediate file, `len` bytes: for writing (the image phase) or for
/// reading (the sinogram phase). A file of another length is refused, not mapped.
fn open_intermediate(path: &Path, len: u64, write: bool) -> Result<File> {
    let file = output::reopen_temporary(path, write).with_context(|| {
        format!(
            "{}: cannot open the job's intermediate file",
            path.display()
        )
    })?;
    let found = file
        .metadata()
        .with_context(|| format!("{}: cannot read", path.display()))?
        .len();
    if found != len {
        bail!(
            "{}: the job's intermediate file has {found} bytes, not the {len} it was made \
             with; prepare the job again",
            path.display()
        );
    }
    Ok(file)
}

/// The done records of every shard of the phases before `p`, phase by phase, or an error
/// naming the shards that are not done.
fn earlier_phases_done(dir: &Path, m: &Manifest, p: usize) -> Result<Vec<Vec<Done>>> {
    let mut phases = Vec::with_capacity(p);
    for q in 0..p {
        let mut done = Vec::with_capacity(m.phases[q].shards.len());
        let mut missing = Vec::new();
        for s in 0..m.phases[q].shards.len() {
            match records::state(dir, m, q, s) {
                State::Done(d) => done.push(d),
                _ => missing.push(s.to_string()),
            }
        }
        if !missing.is_empty() {
            bail!(
                "{}: phase {} needs phase {} done first; its shards {} are not",
                dir.display(),
                m.phases[p].name,
                m.phases[q].name,
                missing.join(", ")
            );
        }
        phases.push(done);
    }
    Ok(phases)
}

/// Gives the chain's survey steps their statistics from the survey phases' records (`done`,
/// as [`earlier_phases_done`] gives them), in page order, as a local run's survey collects
/// them.
fn conclude_surveys(
    dir: &Path,
    m: &Manifest,
    done: Vec<Vec<Done>>,
    chain: &mut Chain,
) -> Result<()> {
    for (phase, records) in m.phases.iter().zip(done) {
        let PhaseKind::Survey { step } = phase.kind else {
            continue;
        };
        let mut surveys = Vec::with_capacity(m.images);
        for (s, record) in records.into_iter().enumerate() {
            let Some(found) = record.surveys else {
                bail!(
                    "{}: phase {} shard {s}: its record holds no survey",
                    dir.display(),
                    phase.name
                );
            };
            surveys.extend(
                found
                    .into_iter()
                    .map(|image| image.into_iter().map(f64::from_bits).collect::<Vec<_>>()),
            );
        }
        chain.conclude_survey(step, surveys)?;
    }
    Ok(())
}

fn work(dir: &Path, m: &Manifest, p: usize, shard: usize, cli: &Cli) -> Result<Done> {
    m.check_inputs()?;
    let earlier = earlier_phases_done(dir, m, p)?;
    let (stack, mut chain) = rebuild(dir, m)?;
    conclude_surveys(dir, m, earlier, &mut chain)?;
    // Only once every check has passed: a shard refused for a changed input or an early
    // start changes nothing, so later phases stay done.
    clear_later_phases(dir, m, p)?;
    let phase = &m.phases[p];
    let [a, b] = phase.shards[shard];
    let label = format!("job: {} shard {shard}", phase.name);
    let mode = if cli.quiet {
        ProgressMode::None
    } else {
        cli.progress
    };
    let progress = Progress::new(mode, &label, b - a);
    let mut done = Done {
        job: m.id.clone(),
        range: [a, b],
        crc32: None,
        image_crc32: None,
        host: records::host(),
        time: String::new(),
        surveys: None,
    };
    let written: File = match phase.kind {
        PhaseKind::Survey { step } => {
            let found = engine::survey_pages(&stack, &chain, step, a..b, &progress)?;
            done.surveys = Some(
                found
                    .into_iter()
                    .map(|v| v.into_iter().map(f64::to_bits).collect())
                    .collect(),
            );
            progress.finish();
            run::inputs_unchanged(&stack, &chain)?;
            done.time = history::now();
            return Ok(done);
        }
        PhaseKind::Images => {
            let format = chain.image_pass_format();
            let (file, offset, page_bytes) = match &m.intermediate {
                Some(path) => {
                    let page_bytes = format.page_bytes();
                    let len = page_bytes * m.images as u64;
                    (open_intermediate(path, len, true)?, 0, page_bytes)
                }
                None => (open_output(m)?, m.data_offset, m.page_bytes),
            };
            let mut map = WriteMap::new(
                &file,
                offset + a as u64 * page_bytes,
                ((b - a) as u64 * page_bytes) as usize,
            )
            .with_context(|| format!("{}: cannot map the output", m.output.display()))?;
            // Synced shards send their images to the disk batch by batch as they are
            // finished: one shard's pages stay under the kernel's own write-back threshold, so
            // otherwise nothing is written until the final fsync, and shards run one after
            // another would wait for the disk in turn instead of while computing
            // (docs/benchmarks.md, section 11). Each image's checksum is taken by the worker
            // that wrote it, while the image is still in cache, not in a second pass.
            let writeback = match m.sync {
                true => Some(map.writeback(&file).with_context(|| {
                    format!("{}: cannot reopen the output", m.output.display())
                })?),
                false => None,
            };
            let checksums: Vec<AtomicU32> = (a..b).map(|_| AtomicU32::new(0)).collect();
            with_pixel_type!(format.dtype, O => {
                let written = |index: usize, image: &[O]| {
                    let crc = crc32fast::hash(bytemuck::cast_slice(image));
                    checksums[index - a].store(crc, Ordering::Relaxed);
                };
                let pages = map
                    .pages_mut::<O>(format.pixels())
                    .into_iter()
                    .map(OutputPage::slice)
                    .collect();
                engine::run_chain_writing_back(
                    &stack,
                    &chain,
                    a,
                    pages,
                    &progress,
                    &written,
                    writeback.as_ref(),
                )
            })?;
            done.image_crc32 = Some(checksums.into_iter().map(AtomicU32::into_inner).collect());
            file
        }
        PhaseKind::Sinograms => {
            let Some(path) = &m.intermediate else {
                bail!(
                    "{}: a sinogram phase without an intermediate file",
                    dir.display()
                );
            };
            let len = chain.image_pass_format().page_bytes() * m.images as u64;
            let source_file = open_intermediate(path, len, false)?;
            let source = ReadMap::open(&source_file, path)
                .with_context(|| format!("{}: cannot map", path.display()))?;
            let format = chain.output_format();
            let pixels = format.pixels();
            let sources: Vec<&[f32]> = bytemuck::cast_slice::<u8, f32>(source.bytes())
                .chunks_exact(pixels)
                .collect();
            let file = open_output(m)?;
            let mut map = BandMap::new(&file, m.data_offset, m.data_len() as usize)
                .with_context(|| format!("{}: cannot map the output", m.output.display()))?;
            let width = format.width;
            let rows = PageFormat {
                height: b - a,
                ..format
            };
            let band = a * width..b * width;
            let pages = map
                .bands_mut::<f32>(pixels, band.clone())
                .into_iter()
                .map(OutputPage::slice)
                .collect();
            engine::run_sinogram_rows(&chain, &sources, pages, rows, a, &progress)?;
            // The CRC-32 of its rows in file order, as `Manifest::rows_crc` reads them back at
            // commit: each page's rows (contiguous in the file) on all workers, then joined in
            // page order.
            let pieces: Vec<crc32fast::Hasher> = map
                .bands_mut::<f32>(pixels, band)
                .into_par_iter()
                .map(|rows| {
                    let mut crc = crc32fast::Hasher::new();
                    crc.update(bytemuck::cast_slice(rows));
                    crc
                })
                .collect();
            let mut crc = crc32fast::Hasher::new();
            pieces.iter().for_each(|piece| crc.combine(piece));
            done.crc32 = Some(crc.finalize());
            file
        }
    };
    progress.finish();
    // The pages reach the disk before the record that says they are there; on Linux an
    // fsync writes the pages dirtied through a map too (the map is gone by now).
    if m.sync {
        written
            .sync_all()
            .with_context(|| format!("{}: cannot sync to disk", m.output.display()))?;
    }
    // Checked against the prepare-time fingerprint when the shard began; now against what
    // it opened, as a local run checks before its commit.
    run::inputs_unchanged(&stack, &chain)?;
    done.time = history::now();
    Ok(done)
}
