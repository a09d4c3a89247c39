//! `job prepare`: the chain planned as `run` plans it, checked once, and everything the shards
//! write into made before any of them starts.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::PrepareArgs;
use super::manifest::{self, FileStamp, Manifest, Phase, PhaseKind, Step};
use super::records;
use crate::cli::{Cli, UsageError};
use crate::filters::reference_store::ReferenceStore;
use crate::filters::{Chain, ChainError, Input};
use crate::history;
use crate::job::{self, Job, OutputChoice};
use crate::output::{Destination, Durability};
use crate::run;
use crate::stack::write::{Compression, Layout, WriteOptions};
use crate::stack::{StackKind, hdf5, mapped};

/// The job folder of the result at `output`: beside it, `NAME.imfilter-job`.
pub fn job_dir_for(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".imfilter-job");
    output.with_file_name(name)
}

/// Plans the job, creates its temporary output and its job folder; returns the folder, by
/// its absolute path (array tasks may start elsewhere).
pub fn prepare(args: &PrepareArgs, cli: &Cli) -> Result<PathBuf> {
    let job = Job::new(&args.run.io, cli.progress, cli.silent_on_success());
    if job.output == OutputChoice::InPlace {
        bail!(UsageError(
            "job: --in-place is not sharded; write the result with -o, then replace the input"
                .into()
        ));
    }
    if job.compression.is_some_and(|c| c != Compression::None) {
        bail!(UsageError(
            "job: --compress is not sharded: shards write into one uncompressed output; \
             compress the committed result afterwards (imfilter run --compress …)"
                .into()
        ));
    }
    if let OutputChoice::Path(p) = &job.output
        && (hdf5::DatasetPath::parse(p).is_some() || hdf5::has_hdf5_extension(p))
    {
        bail!(UsageError(format!(
            "job: {}: an HDF5 output is not sharded: the result of a job is one multi-page \
             TIFF file (-o NAME.tif); run on one machine for an HDF5 result",
            p.display()
        )));
    }
    let words = run::run_step_words(&args.run)?;
    // What the steps combine (flats, darks) is kept, for the job folder: each shard then
    // reads it instead of combining it again.
    let store = ReferenceStore::keeping();
    let input = Input {
        references: Some(&store),
        ..job.step_input()
    };
    let planned = run::planned_steps(&words, &input)?;
    // An HDF5 dataset input is its projections, as for `run`: the shards open it with the
    // same keys, from the manifest.
    let mut stack = hdf5::open_inputs(&job.inputs, &job.keys)?;
    if stack.kind == StackKind::Stdin {
        bail!(UsageError(
            "job: the input must be files every shard can open, not - (stdin)".into()
        ));
    }
    if let Some(pages) = &job.pages {
        stack.select_pages(pages)?;
    }
    if let (Some(keys), false) = (&stack.keys, job.quiet) {
        eprintln!(
            "imfilter: note: {}: {keys}; the projections are the input",
            job.input.display()
        );
    }
    let (ops, arguments): (Vec<_>, Vec<_>) =
        planned.into_iter().map(|p| (p.op, p.arguments)).unzip();
    let mut chain = Chain::new(ops, stack.format, true)?;
    chain.set_stack_images(stack.len())?;
    chain.check_sinograms(stack.len(), stack.format.width)?;
    if let Some(boundary) = chain.pass_boundary() {
        bail!(ChainError(format!(
            "job: {} after a sinogram step runs, in a local run, in a second part over an \
             intermediate stack, which a job does not shard; run the steps up to it as one job \
             and the rest as another",
            chain.steps()[boundary].name()
        )));
    }
    let out_format = chain.output_format();
    let (destination, overwrite) = job.destination(&stack, "run", out_format.dtype)?;
    let Destination::File(output) = &destination else {
        bail!(UsageError(format!(
            "job: {}: the result of a job is one multi-page TIFF file (-o NAME.tif); a \
             directory or a stream is not sharded",
            destination.display_path().display()
        )));
    };
    let references: Vec<PathBuf> = chain
        .steps()
        .iter()
        .flat_map(|s| s.references())
        .flat_map(|r| r.files().map(Path::to_path_buf))
        .collect();
    // An HDF5 dataset's file is the stack's file; keys read from another file count too.
    let inputs: Vec<PathBuf> = stack
        .files()
        .map(Path::to_path_buf)
        .chain(job.keys.file())
        .chain(references)
        .collect();
    job::refuse_input_as_output(&destination, inputs.iter().map(PathBuf::as_path), false)?;
    crate::output::refuse_existing(output, overwrite)?;

    // The history exactly as `run` writes it, so the committed file equals a local run's.
    let provenance = job.input.clone();
    let runs = run::history_entries(
        &chain,
        &arguments,
        &job,
        &stack,
        &provenance,
        destination.display_path(),
    );
    let history = history::extended(&provenance, stack.embedded_history(), runs);
    let options = WriteOptions {
        software: run::software(),
        imagej: job.imagej,
        carried: stack.carried_tags(),
        compression: Compression::None,
        history: Some(history::ascii_json(&history::embedded(&history))),
    };
    let layout = Layout::new(stack.len(), out_format, &options);
    let phases = phases(&chain, stack.len(), out_format.height, args.shards as usize)?;

    let dir = job_dir_for(output);
    if fs::symlink_metadata(&dir).is_ok() {
        if !job.force {
            bail!(
                "{}: exists: an earlier job for this output; commit it, remove it, or give \
                 --force to start over",
                dir.display()
            );
        }
        discard(&dir);
    }
    fs::create_dir(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let made = make(
        &dir, &job, output, &layout, &chain, &inputs, phases, &words, history, &store,
    );
    if made.is_err() {
        discard(&dir);
    }
    let dir =
        std::path::absolute(&dir).with_context(|| format!("{}: cannot resolve", dir.display()))?;
    made.map(|()| dir)
}

/// The phases of `chain` over `images` images of `height` rows, each in `shards` shards.
fn phases(chain: &Chain, images: usize, height: usize, shards: usize) -> Result<Vec<Phase>> {
    if shards > images {
        bail!(UsageError(format!(
            "--shards {shards}: the stack has {images} images; give at most {images}"
        )));
    }
    let mut phases: Vec<Phase> = chain
        .surveying_steps()
        .into_iter()
        .map(|k| Phase {
            name: format!("survey-{}", k + 1),
            kind: PhaseKind::Survey { step: k },
            shards: manifest::split(images, shards),
        })
        .collect();
    phases.push(Phase {
        name: "images".into(),
        kind: PhaseKind::Images,
        shards: manifest::split(images, shards),
    });
    if chain.first_sinogram_step().is_some() {
        if shards > height {
            bail!(UsageError(format!(
                "--shards {shards}: the sinogram phase splits the {height} rows of the images; \
                 give at most {height}"
            )));
        }
        phases.push(Phase {
            name: "sinograms".into(),
            kind: PhaseKind::Sinograms,
            shards: manifest::split(height, shards),
        });
    }
    Ok(phases)
}

/// Creates the temporary output (and the intermediate file, for a sinogram phase) at full
/// size, and writes the combined references and then the manifest into the new job folder
/// `dir`.
#[allow(clippy::too_many_arguments)]
fn make(
    dir: &Path,
    job: &Job,
    output: &Path,
    layout: &Layout,
    chain: &Chain,
    inputs: &[PathBuf],
    phases: Vec<Phase>,
    words: &[crate::pipeline::StepWords],
    history: serde_json::Value,
    store: &ReferenceStore,
) -> Result<()> {
    records::create_dir(dir)?;
    store.save(&dir.join(manifest::REFERENCES))?;
    let parent = crate::output::parent_dir(output)?;
    let temp = crate::output::temp_file_in(&parent, output)?;
    let file = temp.as_file();
    // Shards on other nodes reopen it for writing, whatever the umask left the owner.
    let restore_mode = crate::output::owner_read_write(file, output)?.map(|m| m.mode());
    crate::output::allocate(file, layout, output)?;
    let cannot = || format!("{}: cannot write", output.display());
    // The header and directories are written here, once: on the disk before any shard's
    // record (the commit node's sync cannot flush this node's cache), and checked by the
    // commit against their checksum.
    if job.durability == Durability::WaitForDisk {
        file.sync_all().with_context(cannot)?;
    }
    let metadata_crc32 = manifest::metadata_crc32(file, layout.data_offset, layout.data_len())
        .with_context(cannot)?;
    let inode = file.metadata().with_context(cannot)?.ino();
    let intermediate = match chain.first_sinogram_step() {
        None => None,
        Some(_) => {
            let format = chain.image_pass_format();
            let path = dir.join("intermediate.f32");
            let f = fs::File::create_new(&path)
                .with_context(|| format!("{}: cannot create", path.display()))?;
            let len = format.page_bytes() * layout.pages as u64;
            mapped::preallocate(&f, len)
                .with_context(|| format!("{}: cannot allocate {len} bytes", path.display()))?;
            Some(std::path::absolute(&path).unwrap_or(path))
        }
    };
    let mut seen = std::collections::HashSet::new();
    let fingerprint = inputs
        .iter()
        .filter(|p| seen.insert(*p))
        .map(|p| FileStamp::of(p).with_context(|| format!("{}: cannot read", p.display())))
        .collect::<Result<Vec<_>>>()?;
    let temporary = temp.path().to_path_buf();
    let suffix = temporary
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let id = format!(
        "{}-{}-{}",
        suffix.rsplit('-').next().unwrap_or_default(),
        std::process::id(),
        history::now()
    );
    let manifest = Manifest {
        format: manifest::FORMAT,
        id,
        software: run::software(),
        cwd: std::env::current_dir().context("cannot read the current directory")?,
        input: job.input.clone(),
        inputs: job.inputs.clone(),
        pages: job.pages.map(|p| p.to_string()),
        keys: (job.keys != hdf5::Keys::Auto).then(|| job.keys.to_string()),
        steps: words.iter().map(Step::from).collect(),
        output: output.to_path_buf(),
        temporary: temporary.clone(),
        temporary_inode: inode,
        intermediate,
        force: job.force,
        sync: job.durability == Durability::WaitForDisk,
        restore_mode,
        images: layout.pages,
        width: layout.format.width,
        height: layout.format.height,
        dtype: layout.format.dtype.to_string(),
        data_offset: layout.data_offset,
        page_bytes: layout.page_bytes,
        file_len: layout.file_len,
        metadata_crc32,
        fingerprint,
        history,
        phases,
    };
    records::write_whole(&dir.join(manifest::MANIFEST), &manifest, true)?;
    // The temporary output now belongs to the job, until `commit` renames it.
    temp.into_temp_path()
        .keep()
        .with_context(|| format!("{}: cannot keep", temporary.display()))?;
    crate::output::sync_dir(dir);
    crate::output::sync_dir(&parent);
    Ok(())
}

/// Removes a job folder and the temporary output its manifest names (a job that failed to
/// be made, or one started over with --force). Best effort: what is left has the
/// `.NAME.imfilter-XXXXXX` name of any leftover (docs/reliability.md).
pub fn discard(dir: &Path) {
    if let Ok(m) = Manifest::load(dir) {
        let temporary = if m.temporary.is_absolute() {
            m.temporary.clone()
        } else {
            m.cwd.join(&m.temporary)
        };
        let _ = fs::remove_file(temporary);
    }
    let _ = fs::remove_dir_all(dir);
}
