//! The recipe every command follows: open → check → create output → filter in parallel →
//! commit → report.

use anyhow::{Context, Result};

use crate::cli::{Cli, Command};
use crate::filters::Filter;
use crate::filters::background::BackgroundCorrect;
use crate::filters::median::MedianParams;
use crate::filters::neighbourhood::{Median, RemoveOutliers};
use crate::filters::outliers::{OutlierKind, OutlierParams};
use crate::history;
use crate::interrupt;
use crate::job::{self, Job};
use crate::output::PendingOutput;
use crate::progress::Progress;
use crate::stack::write::WriteOptions;
use crate::stack::{PageFormat, Stack};

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
    let job_for = |io| Job::new(io, cli.progress, cli.quiet);
    match &cli.command {
        Command::Info(args) => crate::info::print(&args.path, args.json),
        Command::BackgroundCorrect(args) => {
            let flats = Stack::open_pooled(&args.flat)?;
            let darks = if args.dark.is_empty() {
                None
            } else {
                Some(Stack::open_pooled(&args.dark)?)
            };
            let filter = BackgroundCorrect::new(
                (&flats, args.average),
                darks.as_ref().map(|d| (d, args.average)),
                args.cutoff,
            )?;
            let references: Vec<&Stack> = std::iter::once(&flats).chain(darks.as_ref()).collect();
            execute(&filter, &job_for(&args.io), &references)
        }
        Command::Median(args) => {
            let params = MedianParams {
                size: args.size,
                mode: args.mode,
                cval: args.cval,
            };
            execute(&Median(params), &job_for(&args.io), &[])
        }
        Command::RemoveOutliers(args) => {
            let kind = match (args.dark, args.both) {
                (_, true) => OutlierKind::Both,
                (true, false) => OutlierKind::Dark,
                (false, false) => OutlierKind::Bright,
            };
            let params = OutlierParams {
                size: args.size,
                threshold: args.threshold,
                kind,
            };
            execute(&RemoveOutliers(params), &job_for(&args.io), &[])
        }
    }
}

/// Runs `filter` over the job's input, on the current rayon pool. `references` are further
/// inputs (flats, darks) that must never be overwritten, nor change before the commit.
pub fn execute(filter: &dyn Filter, job: &Job, references: &[&Stack]) -> Result<()> {
    let stack = Stack::open(&job.input)?;
    filter.check(&stack.format)?;
    let out_format = PageFormat {
        dtype: filter.output_dtype(stack.format.dtype),
        ..stack.format
    };
    let (destination, overwrite) = job.destination(&stack, filter.name(), out_format.dtype)?;
    let inputs = stack
        .files()
        .chain(references.iter().flat_map(|r| r.files()));
    job::refuse_input_as_output(
        &destination,
        inputs,
        job.output == job::OutputChoice::InPlace,
    )?;
    interrupt::check()?;

    let options = WriteOptions {
        software: software(),
        imagej: job.imagej,
        carried: stack.carried_tags(),
        compression: job.compression,
    };
    let mut output =
        PendingOutput::create(&destination, out_format, stack.len(), overwrite, &options)?;
    if destination.keeps_history() {
        let this_run = history::entry(
            filter.name(),
            filter.parameters(),
            &job.input,
            destination.display_path(),
        );
        let history = history::extended(&job.input, this_run);
        output.prepare_history(&history, job.force, job.durability)?;
    }
    let progress = Progress::new(job.progress, filter.name(), stack.len());
    let workers = fitting_workers(&stack, out_format, job, rayon::current_num_threads());
    if workers < rayon::current_num_threads() {
        rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .build()
            .context("cannot start worker threads")?
            .install(|| filter.run(&stack, &mut output, &progress))?;
    } else {
        filter.run(&stack, &mut output, &progress)?;
    }
    progress.finish();
    interrupt::check()?;
    // A result computed from files that changed meanwhile is not committed.
    let unchanged = || {
        stack.check_unchanged()?;
        references.iter().try_for_each(|r| r.check_unchanged())
    };
    output.commit(job.durability, &unchanged)?;

    if !job.quiet {
        let seconds = progress.elapsed().as_secs_f64();
        let mpix = (stack.len() * stack.format.pixels()) as f64 / seconds.max(1e-9) / 1e6;
        eprintln!(
            "{}: {} images, {}x{} {} -> {}, {seconds:.2} s ({mpix:.0} Mpixel/s) -> {}",
            filter.name(),
            stack.len(),
            stack.format.width,
            stack.format.height,
            stack.format.dtype,
            out_format.dtype,
            destination.display_path().display()
        );
    }
    Ok(())
}

/// As many workers as `threads` whose buffers fit in the memory available (see `memory`),
/// saying so unless quiet when that is fewer.
fn fitting_workers(stack: &Stack, out_format: PageFormat, job: &Job, threads: usize) -> usize {
    let out_page = (out_format.pixels() * out_format.dtype.bytes()) as u64;
    let per_worker = stack.read_buffer_bytes()
        + if job.compression == crate::stack::write::Compression::None {
            0
        } else {
            out_page
        };
    let available = crate::memory::available();
    let workers = crate::memory::fitting_workers(per_worker, threads, available);
    if workers < threads && !job.quiet {
        eprintln!(
            "imfilter: note: {workers} workers instead of {threads}: each holds {} MiB of \
             decoded images, and {} MiB of memory is available",
            per_worker >> 20,
            available.unwrap_or(0) >> 20
        );
    }
    workers
}
