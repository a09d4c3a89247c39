//! Scale-out: one run of a chain split into shards that many machines (a Slurm job array, a
//! shell loop, GNU parallel) write into one preallocated output, committed with the promise of
//! a local run: the output path holds the old file or the whole result, never a part.
//!
//! `job prepare` opens the input once, plans the chain as `run` would, creates the hidden
//! temporary output beside the final path at its full size (its TIFF directories written) and
//! a job folder beside it holding the manifest: the input's fingerprint (paths, sizes,
//! modification times), the steps, the phases and each phase's shards. `job run` does one
//! shard of one phase: it writes only its own pages (or rows), syncs them, and only
//! then records that it is done, with a checksum of what it wrote. `job commit` checks every
//! record, verifies the checksums against the file, syncs, writes the history and renames the
//! result into place.
//!
//! A chain becomes phases (see [`manifest::PhaseKind`]): a survey phase per step that needs a
//! statistic of the whole stack (each shard surveys its images; the next phase concludes from
//! every shard's survey), the image phase (page ranges), and for a chain with a sinogram step
//! a sinogram phase (row bands). A sinogram phase reads the image phase's result from an
//! intermediate file in the job folder rather than cleaning the output in place, so that
//! rerunning one of its shards is as harmless as rerunning an image shard.
//!
//! `job.rs` is something else: the validated plan of one local run, which `prepare` reuses.

mod commit;
mod manifest;
mod prepare;
mod records;
mod shard;
mod slurm;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::cli::{Cli, RunArgs};

const JOB_EXAMPLES: &str = "\
Examples:
  JOB=$(imfilter job prepare --shards 8 --step 'median --size 3' Tomo/ -o out.tif)
  for i in $(seq 0 7); do imfilter job run \"$JOB\" --shard $i; done
  imfilter job status \"$JOB\"
  imfilter job commit \"$JOB\"
  imfilter job slurm --shards 64 --partition short --time 1:00:00 --step 'median --size 3' Tomo/ -o /gpfs/out.tif

docs/scale-out.md describes phases, shared file systems and how many shards to use.";

#[derive(Debug, Args)]
#[command(after_help = JOB_EXAMPLES)]
pub struct JobArgs {
    #[command(subcommand)]
    pub command: JobCommand,
}

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Plan a job: create the temporary output at full size and the job folder beside it
    /// (manifest: input fingerprint, steps, phases, shards); prints the job folder
    Prepare(PrepareArgs),

    /// Run one shard of one phase: its images (or rows) only, synced, then recorded as done
    Run(ShardArgs),

    /// Each phase's shards: done, running, failed or not started
    Status(JobDirArgs),

    /// Every shard done and verified: sync, write the history, rename the result into place
    Commit(CommitArgs),

    /// Prepare, then write and submit (sbatch) one job array per phase and a commit job, each
    /// depending on the one before (afterok)
    Slurm(SlurmArgs),
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// How many shards each phase is split into (array tasks); at most the number of images
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub shards: u32,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct ShardArgs {
    /// The job folder `job prepare` printed
    #[arg(value_name = "JOBDIR")]
    pub job: PathBuf,

    /// Which shard, from 0 (under Slurm: $SLURM_ARRAY_TASK_ID)
    #[arg(long, value_name = "N")]
    pub shard: usize,

    /// Which phase, as `job status` names them [default: the only one]
    #[arg(long, value_name = "NAME")]
    pub phase: Option<String>,
}

#[derive(Debug, Args)]
pub struct JobDirArgs {
    /// The job folder `job prepare` printed
    #[arg(value_name = "JOBDIR")]
    pub job: PathBuf,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// The job folder `job prepare` printed
    #[arg(value_name = "JOBDIR")]
    pub job: PathBuf,

    /// What to read back and check against the shards' CRC-32s before committing
    #[arg(long, value_enum, default_value_t = commit::Verify::Seams)]
    pub verify: commit::Verify,

    /// --verify none
    #[arg(long, conflicts_with = "verify")]
    pub no_verify: bool,
}

#[derive(Debug, Args)]
pub struct SlurmArgs {
    #[command(flatten)]
    pub prepare: PrepareArgs,

    /// The Slurm partition (sbatch --partition) [default: the cluster's]
    #[arg(long, value_name = "NAME")]
    pub partition: Option<String>,

    /// Time limit of each array task and of the commit job (sbatch --time), e.g. 1:00:00
    #[arg(long, value_name = "TIME")]
    pub time: Option<String>,

    /// CPUs of each array task (sbatch --cpus-per-task); imfilter runs that many workers
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub cpus_per_task: Option<u16>,

    /// The Slurm account to charge (sbatch --account)
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,

    /// The imfilter the nodes run [default: this one, by its absolute path]
    #[arg(long, value_name = "PATH")]
    pub imfilter: Option<PathBuf>,

    /// Prepare the job and write the scripts, then print the sbatch commands instead of
    /// running them
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `imfilter job …`.
pub fn run(args: &JobArgs, cli: &Cli) -> Result<()> {
    match &args.command {
        JobCommand::Prepare(a) => {
            let dir = prepare::prepare(a, cli)?;
            println!("{}", dir.display());
            Ok(())
        }
        JobCommand::Run(a) => shard::run(&a.job, a.phase.as_deref(), a.shard, cli),
        JobCommand::Status(a) => commit::status(&a.job),
        JobCommand::Commit(a) => {
            let verify = if a.no_verify {
                commit::Verify::None
            } else {
                a.verify
            };
            commit::commit(&a.job, verify, cli.silent_on_success())
        }
        JobCommand::Slurm(a) => slurm::submit(a, cli),
    }
}
