//! The recipe every command follows: open → check → create output → filter in parallel →
//! commit → report.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cli::{self, Cli, Command};
use crate::engine;
use crate::filters::{Chain, ChainError, Op};
use crate::history;
use crate::interrupt;
use crate::job::{self, Job};
use crate::output::{Durability, PendingOutput};
use crate::pipeline::{self, StepWords};
use crate::progress::Progress;
use crate::stack::Stack;
use crate::stack::write::Compression;
use crate::stack::write::WriteOptions;

/// What the `Software` tag of every output says.
pub fn software() -> String {
    format!("imfilter {}", env!("CARGO_PKG_VERSION"))
}

/// Runs a parsed command line, all of it on one pool of `--threads` workers (flats and darks
/// are combined in parallel too).
pub fn run(cli: Cli) -> Result<()> {
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(n) = cli.threads {
        pool = pool.num_threads(usize::from(n));
    }
    let pool = pool.build().context("cannot start worker threads")?;
    pool.install(|| run_command(&cli))
}

fn run_command(cli: &Cli) -> Result<()> {
    let job_for = |io| Job::new(io, cli.progress, cli.silent_on_success());
    if let Some((io, op)) = cli.command.operation() {
        let job = job_for(io);
        let step = op.build_for(&job.step_input())?;
        let name = step.name();
        let planned = Planned {
            op: step,
            arguments: cli.operation_words.clone(),
        };
        return execute(vec![planned], name, &job);
    }
    match &cli.command {
        Command::Info(args) => crate::info::print(args),
        Command::Preview(args) => crate::preview::run(args, cli.silent_on_success()),
        Command::Completions(args) => Ok(cli::print_completions(args.shell)?),
        Command::Man => Ok(cli::print_man_page()?),
        Command::Run(args) => {
            let job = job_for(&args.io);
            let planned = planned_steps(&run_step_words(args)?, &job.step_input())?;
            execute(planned, "run", &job)
        }
        Command::Job(args) => crate::scaleout::run(args, cli),
        _ => unreachable!("every operation is handled above"),
    }
}

/// The words of `run`'s steps, from `--step`s, a pipeline file or a replayed history.
pub fn run_step_words(args: &cli::RunArgs) -> Result<Vec<StepWords>> {
    match (&args.pipeline, &args.replay) {
        (Some(file), _) => pipeline::from_toml(file),
        (None, Some(history)) => pipeline::from_history(history),
        (None, None) => args
            .steps
            .iter()
            .enumerate()
            .map(|(k, text)| {
                let words = cli::step_words(k + 1, text).map_err(ChainError)?;
                Ok(StepWords {
                    label: format!("--step {} ('{text}')", k + 1),
                    words,
                })
            })
            .collect(),
    }
}

/// Each step parsed by its operation's definition and built for `input`.
pub fn planned_steps(steps: &[StepWords], input: &crate::filters::Input) -> Result<Vec<Planned>> {
    let mut planned = Vec::with_capacity(steps.len());
    for StepWords { label, words } in steps {
        let step = cli::parse_step(label, words).map_err(ChainError)?;
        let op = step
            .args()
            .build_for(input)
            .with_context(|| label.clone())?;
        planned.push(Planned {
            op,
            arguments: words[1..].to_vec(),
        });
    }
    Ok(planned)
}

/// The history entry of each step of `chain` run with `arguments` on `job`'s `stack` (named
/// `input`) into `output`: what `run` writes, and what `job prepare` writes so that a committed
/// job equals a local run byte for byte.
pub fn history_entries(
    chain: &Chain,
    arguments: &[Vec<String>],
    job: &Job,
    stack: &Stack,
    input: &Path,
    output: &Path,
) -> Vec<serde_json::Value> {
    chain
        .steps()
        .iter()
        .zip(arguments)
        .map(|(step, arguments)| {
            let mut entry =
                history::entry(step.name(), step.parameters(), arguments, input, output);
            // Which images of which files: what a later run needs to do the same.
            if job.inputs.len() > 1 {
                entry["inputs"] = job.inputs.iter().map(|p| p.display().to_string()).collect();
            }
            if let Some(pages) = &job.pages {
                entry["pages"] = pages.to_string().into();
            }
            if let Some(keys) = &stack.keys {
                entry["image_key"] = keys.to_json();
            }
            if job.keys != crate::stack::hdf5::Keys::Auto {
                entry["keys"] = job.keys.to_string().into();
            }
            entry
        })
        .collect()
}

/// Whether every file the result was computed from (the stack, each step's flats and darks)
/// is as it was when it was opened: a result computed from files that changed meanwhile is
/// not committed.
pub fn inputs_unchanged(stack: &Stack, chain: &Chain) -> Result<()> {
    stack.check_unchanged()?;
    chain
        .steps()
        .iter()
        .flat_map(|s| s.references())
        .try_for_each(|r| r.check_unchanged())
}

/// A step to run, with the arguments it was given (recorded for `run --replay`).
pub struct Planned {
    pub op: Box<dyn Op>,
    pub arguments: Vec<String>,
}

/// What a result's history records: the input the user named, and the steps already run
/// on it in an earlier part of the same chain (see [`Chain::pass_boundary`]).
struct Provenance {
    input: PathBuf,
    /// The history written into the input file, if any (`Stack::embedded_history`).
    embedded: Option<String>,
    earlier: Vec<serde_json::Value>,
}

/// Runs `steps` as one chain over the job's input, on the current rayon pool: the input read
/// once, the result written once. `name` is the command's (for the progress line, the summary
/// and a default output name).
pub fn execute(steps: Vec<Planned>, name: &str, job: &Job) -> Result<()> {
    note_unnatural_order(job);
    let provenance = Provenance {
        input: job.input.clone(),
        embedded: None,
        earlier: Vec::new(),
    };
    execute_part(steps, name, job, Some(provenance))
}

/// [`execute`] for one part of a chain; without `provenance`, no history is kept (an
/// intermediate stack).
fn execute_part(
    steps: Vec<Planned>,
    name: &str,
    job: &Job,
    provenance: Option<Provenance>,
) -> Result<()> {
    let mut stack = crate::stack::hdf5::open_inputs(&job.inputs, &job.keys)?;
    if let Some(pages) = &job.pages {
        stack.select_pages(pages)?;
    }
    if let (Some(keys), false, true) = (&stack.keys, job.quiet, provenance.is_some()) {
        eprintln!(
            "imfilter: note: {}: {keys}; the projections are the input",
            job.input.display()
        );
    }
    // The first part of a chain reads the input the user named: its embedded history.
    let provenance = provenance.map(|mut p| {
        if p.earlier.is_empty() && p.embedded.is_none() {
            p.embedded = stack.embedded_history().map(str::to_string);
        }
        p
    });
    let (ops, arguments): (Vec<_>, Vec<_>) = steps.into_iter().map(|p| (p.op, p.arguments)).unzip();
    let mut chain = Chain::new(ops, stack.format, name == "run")?;
    chain.set_stack_images(stack.len())?;
    chain.check_sinograms(stack.len(), stack.format.width)?;
    if let Some(boundary) = chain.pass_boundary() {
        let steps = chain
            .into_steps()
            .into_iter()
            .zip(arguments)
            .map(|(op, arguments)| Planned { op, arguments })
            .collect();
        // The result's files are named after the input's, which the second part cannot see.
        let names = job::page_names(&stack);
        drop(stack);
        return execute_in_two_parts(steps, boundary, name, job, provenance, names);
    }
    let out_format = chain.output_format();
    let (destination, overwrite) = job.destination(&stack, name, out_format.dtype)?;
    let compression = job.compression(&stack)?;
    let reference_files: Vec<std::path::PathBuf> = chain
        .steps()
        .iter()
        .flat_map(|s| s.references())
        .flat_map(|r| r.files().map(Path::to_path_buf))
        .collect();
    let inputs = stack
        .files()
        .chain(reference_files.iter().map(|p| p.as_path()));
    job::refuse_input_as_output(
        &destination,
        inputs,
        job.output == job::OutputChoice::InPlace,
    )?;
    interrupt::check()?;

    // The history: written into the result (so it flows through pipes and copies) and, for a
    // named result, beside it as NAME.json.
    let history = provenance.as_ref().map(|provenance| {
        let runs = history_entries(
            &chain,
            &arguments,
            job,
            &stack,
            &provenance.input,
            destination.display_path(),
        );
        let runs = provenance.earlier.iter().cloned().chain(runs).collect();
        history::extended(&provenance.input, provenance.embedded.as_deref(), runs)
    });
    let options = WriteOptions {
        software: software(),
        imagej: job.imagej,
        carried: stack.carried_tags(),
        compression,
        history: history
            .as_ref()
            .map(|h| history::ascii_json(&history::embedded(h))),
    };
    let mut output =
        PendingOutput::create(&destination, out_format, stack.len(), overwrite, &options)?;
    if let (true, Some(history)) = (destination.keeps_history(), &history) {
        output.prepare_history(history, job.force, job.durability)?;
    }
    // Steps that need a statistic of the whole stack get it first: one more read each.
    for k in chain.surveying_steps() {
        let label = format!("{name}: survey for {}", chain.steps()[k].name());
        let progress = Progress::new(job.progress, &label, stack.len());
        let surveys = engine::survey(&stack, &chain, k, &progress)?;
        progress.finish();
        chain.conclude_survey(k, surveys)?;
    }
    let started = std::time::Instant::now();
    // A chain whose steps up to its sinogram step all work pixel by pixel, on an input whose
    // pages are mapped in place, needs no image pass: the sinogram pass reads its rows of
    // each page straight from the input, through those steps.
    let sinograms_from_input =
        chain.first_sinogram_step().is_some() && chain.pointwise() && stack.is_mapped_in_place();
    if !sinograms_from_input {
        let progress = Progress::new(job.progress, name, stack.len());
        let compressed = compression != Compression::None;
        let workers = fitting_workers(
            &stack,
            &chain,
            job,
            compressed,
            rayon::current_num_threads(),
        );
        // A result that is to wait for the disk goes there batch by batch as its images are
        // finished, so the wait at the end is for the last few only. Not where a sinogram pass
        // rewrites every page afterwards: each would go to the disk twice.
        let writeback = match job.durability {
            Durability::WaitForDisk if chain.first_sinogram_step().is_none() => {
                output.writeback()?
            }
            _ => None,
        };
        if workers < rayon::current_num_threads() {
            rayon::ThreadPoolBuilder::new()
                .num_threads(workers)
                .build()
                .context("cannot start worker threads")?
                .install(|| {
                    engine::run_chain(&stack, &chain, &mut output, &progress, writeback.as_ref())
                })?;
        } else {
            engine::run_chain(&stack, &chain, &mut output, &progress, writeback.as_ref())?;
        }
        progress.finish();
    }
    if chain.first_sinogram_step().is_some() {
        let label = format!("{name}: sinograms");
        let progress = Progress::new(job.progress, &label, out_format.height);
        let pages = output.pages_mut::<f32>(out_format.pixels());
        let input = sinograms_from_input.then_some(&stack);
        engine::run_sinograms(&chain, input, pages, out_format, &progress)?;
        progress.finish();
    }
    interrupt::check()?;
    // A result computed from files that changed meanwhile is not committed.
    output.commit(job.durability, &|| inputs_unchanged(&stack, &chain))?;

    if !job.quiet {
        let seconds = started.elapsed().as_secs_f64();
        let mpix = (stack.len() * stack.format.pixels()) as f64 / seconds.max(1e-9) / 1e6;
        let (from, to) = (stack.format, out_format);
        let result = if (from.width, from.height) == (to.width, to.height) {
            to.dtype.to_string()
        } else {
            to.to_string()
        };
        // How a sinogram step was run is named, so its time is not a surprise.
        let passes = match (chain.first_sinogram_step(), sinograms_from_input) {
            (None, _) => String::new(),
            (Some(_), true) => format!(" in one pass over {} sinograms", out_format.height),
            (Some(_), false) => format!(
                " in 2 passes (images, then {} sinograms)",
                out_format.height
            ),
        };
        if job.progress == crate::progress::ProgressMode::Json {
            // A program reading JSON lines gets the summary as one more object.
            let summary = serde_json::json!({
                "event": "summary",
                "command": name,
                "images": stack.len(),
                "input": from.to_string(),
                "output_format": to.to_string(),
                "passes": passes.trim(),
                "elapsed_s": (seconds * 1000.0).round() / 1000.0,
                "mpixel_per_s": mpix.round(),
                "output": destination.display_path().display().to_string(),
                "image_key": stack.keys.as_ref().map(|k| k.to_json()),
            });
            eprintln!("{summary}");
        } else {
            eprintln!(
                "{name}: {} images, {from} -> {result}{passes}, {seconds:.2} s ({mpix:.0} \
                 Mpixel/s) -> {}",
                stack.len(),
                destination.display_path().display()
            );
        }
    }
    Ok(())
}

/// A chain with a step after a sinogram step that cannot join the sinogram pass (a median, a
/// crop, ...): the steps before it run into an intermediate uncompressed stack beside the
/// output (hidden, removed however the run ends), and the rest from it into the output. The
/// result and its history are those of the whole chain.
fn execute_in_two_parts(
    mut steps: Vec<Planned>,
    boundary: usize,
    name: &str,
    job: &Job,
    provenance: Option<Provenance>,
    names: Vec<std::ffi::OsString>,
) -> Result<()> {
    let tail = steps.split_off(boundary);
    // Flats and darks of a later step follow the reshaping steps of their own part only.
    let reshaped = steps.iter().any(|s| s.op.reshapes());
    if let Some(step) = tail
        .iter()
        .find(|s| !s.op.references().is_empty())
        .filter(|_| reshaped)
    {
        bail!(ChainError(format!(
            "{} after a sinogram step and a median, crop or similar step cannot follow the \
             crop, rotate, flip or rebin before them: put {} before the sinogram step",
            step.op.name(),
            step.op.name()
        )));
    }
    // The second part reads the intermediate stack: what the output is called comes from the
    // input the user gave.
    let output = match &job.output {
        job::OutputChoice::InPlace => bail!(ChainError(format!(
            "--in-place: {} after a sinogram step runs in a second part over an intermediate \
             stack; write the result with -o, then replace the input",
            tail[0].op.name()
        ))),
        job::OutputChoice::Beside => {
            let path = job::beside(&job.input, name);
            match job.input.is_dir() {
                true => PathBuf::from(format!("{}/", path.display())),
                false => path,
            }
        }
        job::OutputChoice::Path(p) => p.clone(),
    };
    let dir = scratch_dir(job);
    let scratch = tempfile::Builder::new()
        .prefix(".imfilter-part-")
        .suffix(".tif")
        .tempfile_in(&dir)
        .with_context(|| format!("{}: cannot create an intermediate stack", dir.display()))?
        .into_temp_path();
    let provenance = provenance.map(|p| {
        let mut earlier = p.earlier;
        earlier.extend(steps.iter().map(|s| {
            history::entry(
                s.op.name(),
                s.op.parameters(),
                &s.arguments,
                &p.input,
                &scratch,
            )
        }));
        Provenance {
            input: p.input,
            embedded: p.embedded,
            earlier,
        }
    });
    let first = Job {
        output: job::OutputChoice::Path(scratch.to_path_buf()),
        force: true,
        imagej: false,
        compression: Some(crate::stack::write::Compression::None),
        durability: crate::output::Durability::NoWait,
        quiet: true,
        ..job.clone()
    };
    execute_part(steps, name, &first, None)?;
    let second = Job {
        input: scratch.to_path_buf(),
        inputs: vec![scratch.to_path_buf()],
        pages: None,
        output: job::OutputChoice::Path(output),
        page_names: Some(names),
        keys: Default::default(),
        ..job.clone()
    };
    execute_part(tail, name, &second, provenance)
}

/// Where an intermediate stack goes: beside the output (the same file system, whose free
/// space the output needs anyway), else in the current directory.
fn scratch_dir(job: &Job) -> PathBuf {
    let beside = match &job.output {
        job::OutputChoice::Path(p) if p != Path::new(job::STDOUT) => {
            p.parent().map(Path::to_path_buf)
        }
        _ => job.input.parent().map(Path::to_path_buf),
    };
    beside
        .filter(|d| !d.as_os_str().is_empty() && d.is_dir())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Several inputs are taken in the order given; a shell lists `proj_10.tif` before
/// `proj_2.tif`, so say so (unless quiet) when that order is not the natural one.
fn note_unnatural_order(job: &Job) {
    let named = |p: &std::path::PathBuf| p.to_string_lossy().into_owned();
    let misplaced = job
        .inputs
        .windows(2)
        .find(|w| natord::compare(&named(&w[0]), &named(&w[1])) == std::cmp::Ordering::Greater);
    if let (Some(pair), false) = (misplaced, job.quiet) {
        eprintln!(
            "imfilter: note: the {} inputs are taken in the order given, which is not their \
             natural order ({} before {}); --natural-order sorts them",
            job.inputs.len(),
            pair[0].display(),
            pair[1].display()
        );
    }
}

/// As many workers as `threads` whose buffers fit in the memory available (see `memory`),
/// saying so unless quiet when that is fewer.
fn fitting_workers(
    stack: &Stack,
    chain: &Chain,
    job: &Job,
    compressed: bool,
    threads: usize,
) -> usize {
    let out = chain.output_format();
    let out_page = (out.pixels() * out.dtype.bytes()) as u64;
    let compressed_page = if compressed { out_page } else { 0 };
    let per_worker =
        stack.read_buffer_bytes() + 2 * chain.largest_intermediate() as u64 + compressed_page;
    let available = crate::memory::available();
    let workers = crate::memory::fitting_workers(per_worker, threads, available);
    if workers < threads && !job.quiet {
        eprintln!(
            "imfilter: note: {workers} workers instead of {threads}: each holds {} MiB of \
             images, and {} MiB of memory is available",
            per_worker >> 20,
            available.unwrap_or(0) >> 20
        );
    }
    workers
}
