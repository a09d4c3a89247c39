//! The command line, as clap types. Nothing here touches a file; `job` turns these into a
//! validated plan.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::filters::background::Average;
use crate::progress::ProgressMode;
use crate::stack::write::Compression;

const EXAMPLES: &str = "\
Examples:
  imfilter background-correct --flat Flat_Before/ --dark Dark_Before/ Tomo/ -o corrected.tif
  imfilter background-correct --flat f.tif --dark d.tif stack.tif   # -> stack_background-correct.tif
  imfilter median --size 3 stack.tif -o median.tif
  imfilter info corrected.tif";

/// Batch filters for stacks of TIFF projections (neutron and X-ray imaging).
#[derive(Debug, Parser)]
#[command(name = "imfilter", version, after_help = EXAMPLES, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Worker threads [default: all cores]
    #[arg(short = 'j', long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,

    /// Progress on stderr: a bar on a terminal (auto), plain lines for logs, JSON lines, none
    #[arg(long, value_enum, global = true, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,

    /// No progress and no summary line (same as --progress none, plus no summary)
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Flat-field correction: (I - dark) / max(flat - dark, 1e-6), as float32
    #[command(
        after_help = "Example:\n  imfilter background-correct --flat f.tif --dark d.tif stack.tif -o corrected.tif"
    )]
    BackgroundCorrect(BackgroundArgs),

    /// Describe a TIFF file or directory: pages, shape, type, layout
    Info(InfoArgs),
}

/// Where the input is and where the result goes; the same for every filter.
#[derive(Debug, Args)]
pub struct IoArgs {
    /// Input: a TIFF file (one or many pages) or a directory of TIFF files
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,

    /// Output: FILE.tif for one multi-page TIFF, or DIR/ (or an existing directory) for one
    /// file per image [default: beside the input, NAME_<command>.tif or NAME_<command>/]
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Replace an existing output
    #[arg(long)]
    pub force: bool,

    /// Replace the input with the result (atomically, once every image succeeded)
    #[arg(long, conflicts_with = "output")]
    pub in_place: bool,

    /// Past 4 GiB, write ImageJ's classic TIFF form (read by ImageJ and tifffile) instead of
    /// BigTIFF (read by everything else); uint8, uint16 and float32 results only
    #[arg(long)]
    pub imagej: bool,

    /// Compress the written TIFF losslessly (for archiving; an uncompressed output can be
    /// memory-mapped by the next program, a compressed one cannot)
    #[arg(long, value_enum, default_value_t = Compression::None)]
    pub compress: Compression,
}

#[derive(Debug, Args)]
pub struct BackgroundArgs {
    #[command(flatten)]
    pub io: IoArgs,

    /// Flat (open-beam) images: files or directories; repeat to pool several
    #[arg(long, required = true, value_name = "PATH")]
    pub flat: Vec<PathBuf>,

    /// Dark images: files or directories; repeat to pool several [default: a dark of zero]
    #[arg(long, value_name = "PATH")]
    pub dark: Vec<PathBuf>,

    /// How pooled flats and darks are combined per pixel
    #[arg(long, value_enum, default_value_t = Average::Mean)]
    pub average: Average,

    /// Clip results above this value
    #[arg(long, value_name = "X")]
    pub cutoff: Option<f32>,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A TIFF file or a directory of TIFF files
    pub path: PathBuf,

    /// One JSON object on stdout, for programs
    #[arg(long)]
    pub json: bool,
}
