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

    /// Worker threads [default: all cores]. Syncing a directory of results also starts up to 16
    /// threads that only wait for the disk
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

    /// Median filter of each image (same result as scipy.ndimage.median_filter)
    #[command(
        after_help = "Example:\n  imfilter median --size 5 --mode nearest Tomo/ -o Tomo_median/"
    )]
    Median(MedianArgs),

    /// Replace bright and/or dark outliers with their local median
    #[command(
        after_help = "Example:\n  imfilter remove-outliers --size 3 --threshold 500 stack.tif -o clean.tif"
    )]
    RemoveOutliers(OutlierArgs),

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

    /// Do not wait for the result to reach the disk before moving it into place. Faster where
    /// the disk is slower than the filter, but a power cut in the following half minute or so
    /// can leave a complete-looking result with missing pixels: for scratch results only
    #[arg(long, conflicts_with = "in_place")]
    pub no_sync: bool,

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
pub struct MedianArgs {
    #[command(flatten)]
    pub io: IoArgs,

    /// Window width and height in pixels: odd, at least 3
    #[arg(long, value_name = "K", allow_negative_numbers = true, value_parser = parse_window_size)]
    pub size: usize,

    /// Border rule, as scipy.ndimage: reflect (d c b a | a b c d | d c b a), mirror
    /// (d c b | a b c d | c b a), nearest (a a a | a b c d | d d d), constant (cval), wrap
    #[arg(long, default_value = "reflect", value_parser = parse_border_mode)]
    pub mode: crate::filters::median::BorderMode,

    /// Value outside the image for --mode constant
    #[arg(long, default_value_t = 0.0, value_name = "V")]
    pub cval: f64,
}

#[derive(Debug, Args)]
pub struct OutlierArgs {
    #[command(flatten)]
    pub io: IoArgs,

    /// Median window width and height in pixels: odd, at least 3
    #[arg(long, value_name = "K", allow_negative_numbers = true, value_parser = parse_window_size)]
    pub size: usize,

    /// A pixel further than this from its local median is replaced by the median
    #[arg(long, value_name = "T")]
    pub threshold: f64,

    /// Replace pixels brighter than the median by more than the threshold (default)
    #[arg(long, group = "kind")]
    pub bright: bool,

    /// Replace pixels darker than the median by more than the threshold
    #[arg(long, group = "kind")]
    pub dark: bool,

    /// Replace both
    #[arg(long, group = "kind")]
    pub both: bool,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A TIFF file or a directory of TIFF files
    pub path: PathBuf,

    /// One JSON object on stdout, for programs
    #[arg(long)]
    pub json: bool,
}

fn parse_window_size(s: &str) -> Result<usize, String> {
    let allowed = "the window size must be an odd whole number of at least 3 (3, 5, 7, …)";
    match s.parse::<i64>() {
        Ok(k) if k >= 3 && k % 2 == 1 => Ok(k as usize),
        Ok(k) => Err(format!("{k}: {allowed}")),
        Err(_) => Err(format!("'{s}' is not a number: {allowed}")),
    }
}

fn parse_border_mode(s: &str) -> Result<crate::filters::median::BorderMode, String> {
    crate::filters::median::BorderMode::parse(s)
        .ok_or_else(|| format!("'{s}': expected one of reflect, nearest, mirror, constant, wrap"))
}
