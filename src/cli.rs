//! The command line, as clap types. Nothing here touches a file; `job` turns these into a
//! validated plan.

use std::path::PathBuf;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::filters::OpArgs;
use crate::filters::background::BackgroundArgs;
use crate::filters::neighbourhood::{MedianArgs, OutlierArgs};
use crate::progress::ProgressMode;
use crate::stack::write::Compression;

const EXAMPLES: &str = "\
Examples:
  imfilter background-correct --flat Flat_Before/ --dark Dark_Before/ Tomo/ -o corrected.tif
  imfilter background-correct --flat f.tif --dark d.tif stack.tif   # -> stack_background-correct.tif
  imfilter median --size 3 stack.tif -o median.tif
  imfilter run --step 'background-correct --flat F/' --step 'median --size 3' Tomo/ -o out.tif
  imfilter info corrected.tif";

/// Batch filters for stacks of projections (neutron and X-ray imaging): TIFF, FITS, HDF5/NeXus.
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

    /// Print the summary line and notes even when stderr is not a terminal (cron, logs). By
    /// default a run there prints nothing unless it fails, or --progress plain|json asks.
    /// --quiet wins over it
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// The operation's own arguments as given (for a one-operation command), recorded in the
    /// history so `run --replay` can give them again; filled by [`Cli::parse_args`].
    #[arg(skip)]
    pub operation_words: Vec<String>,
}

impl Cli {
    /// Whether a successful run prints nothing. Cron mails whatever a job prints, so off a
    /// terminal silence is the default; a terminal, `-v`, or progress lines asked for by name
    /// bring the summary back.
    pub fn silent_on_success(&self) -> bool {
        use std::io::IsTerminal;
        let asked = self.verbose
            || matches!(
                self.progress,
                ProgressMode::Plain | ProgressMode::Json | ProgressMode::Bar
            );
        self.quiet || !(asked || std::io::stderr().is_terminal())
    }

    /// Parses the process's arguments, keeping the operation's own words.
    pub fn parse_args() -> Result<Cli, clap::Error> {
        let args = spread_globs(std::env::args_os().collect());
        let matches = Cli::command()
            .try_get_matches_from(&args)
            .map_err(|e| teach(e, &args))?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        cli.operation_words = operation_words(&matches);
        Ok(cli)
    }
}

/// The options that take reference images, each one path per occurrence.
const IMAGE_SET_OPTIONS: [&str; 6] = [
    "--flat",
    "--dark",
    "--flat-before",
    "--dark-before",
    "--flat-after",
    "--dark-after",
];

/// `--flat Flat_Before/*.tif` as a shell expands it: `--flat F/flat_1.tif F/flat_2.tif …`.
/// Each such option takes one path, so the words after the first that belong with it are
/// given their own `--flat`: the files of the same directory whose names differ from the
/// first's only in their digits (`flat_2.tif` with `flat_1.tif`), which a glob's files do and
/// the input after them does not (`--dark dark.tif stack.tif` stays as it was, and so does
/// the same file given again).
fn spread_globs(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    use std::path::Path;
    let family = |word: &std::ffi::OsStr| {
        let path = Path::new(word);
        let name: String = path
            .file_name()?
            .to_str()?
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect();
        Some((path.parent().map(Path::to_path_buf), name))
    };
    let mut out = Vec::with_capacity(args.len());
    let mut i = 0;
    while i < args.len() {
        out.push(args[i].clone());
        let option = args[i].to_str().filter(|a| IMAGE_SET_OPTIONS.contains(a));
        if let (Some(option), Some(first)) = (option, args.get(i + 1)) {
            out.push(first.clone());
            i += 2;
            let first_family = family(first);
            while let Some(next) = args.get(i) {
                let bare = !next.to_string_lossy().starts_with('-');
                // The same file again is not a glob's next file (`--flat x.tif x.tif`).
                let sibling = next != first && family(next) == first_family;
                if !(bare && first_family.is_some() && sibling) {
                    break;
                }
                out.push(option.into());
                out.push(next.clone());
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    out
}

/// clap's error, with a tip that points where the user most likely meant to go: an option of
/// another operation (`median --threshold`) is named as that operation's, not as the nearest
/// spelling of this one's (`--threads`); `--bright --dark` points to `--both`.
fn teach(e: clap::Error, args: &[std::ffi::OsString]) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let command = Cli::command();
    let given = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    };
    let tip = match e.kind() {
        ErrorKind::UnknownArgument => {
            let Some(arg) = given(ContextKind::InvalidArg) else {
                return e;
            };
            let long = arg.trim_start_matches('-').split('=').next().unwrap_or("");
            // The subcommand is the first word that names one.
            let here = args.iter().skip(1).find_map(|a| {
                let a = a.to_str()?;
                command
                    .get_subcommands()
                    .find(|c| c.get_name() == a || c.get_all_aliases().any(|x| x == a))
            });
            let Some(here) = here else {
                return e;
            };
            let takes = |c: &clap::Command| {
                c.get_arguments().any(|a| {
                    a.get_long() == Some(long)
                        || a.get_all_aliases().is_some_and(|all| all.contains(&long))
                })
            };
            let owners: Vec<&str> = command
                .get_subcommands()
                .filter(|c| takes(c))
                .map(|c| c.get_name())
                .collect();
            if owners.is_empty() || long.is_empty() {
                return e;
            }
            format!(
                "{arg} is an option of {}, not of {} (see imfilter {} --help)",
                owners.join(", "),
                here.get_name(),
                owners[0]
            )
        }
        ErrorKind::ArgumentConflict => {
            let (Some(a), Some(b)) = (given(ContextKind::InvalidArg), given(ContextKind::PriorArg))
            else {
                return e;
            };
            let pair = [a.as_str(), b.as_str()];
            if !(pair.contains(&"--bright") && pair.contains(&"--dark")) {
                return e;
            }
            "to replace both bright and dark outliers, give --both".to_string()
        }
        _ => return e,
    };
    // Rebuilt without clap's own spelling suggestion, which points the wrong way here.
    let mut taught = clap::Error::new(e.kind());
    for kind in [
        ContextKind::InvalidArg,
        ContextKind::PriorArg,
        ContextKind::Usage,
    ] {
        if let Some(value) = e.get(kind) {
            taught.insert(kind, value.clone());
        }
    }
    taught.insert(
        ContextKind::Suggested,
        ContextValue::StyledStrs(vec![tip.into()]),
    );
    taught
}

/// `--pages START:STOP[:STEP]`: which images of the input, as Python slices a list (a
/// positive step; MantidImaging's loader's start, stop and increment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSlice {
    pub start: Option<i64>,
    pub stop: Option<i64>,
    pub step: usize,
}

impl PageSlice {
    pub fn parse(s: &str) -> Result<PageSlice, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let why = || {
            format!(
                "'{s}': expected START:STOP or START:STOP:STEP, whole numbers, each may be left \
                 out (0:100, 10:, ::2, -50:)"
            )
        };
        if !(2..=3).contains(&parts.len()) {
            return Err(why());
        }
        let number = |p: &str| -> Result<Option<i64>, String> {
            match p.trim() {
                "" => Ok(None),
                t => t.parse::<i64>().map(Some).map_err(|_| why()),
            }
        };
        let step = match parts.get(2).map(|p| number(p)).transpose()?.flatten() {
            None => 1,
            Some(n) if n >= 1 => n as usize,
            Some(n) => {
                return Err(format!(
                    "'{s}': the step is {n}; it must be at least 1 (images are taken in order)"
                ));
            }
        };
        Ok(PageSlice {
            start: number(parts[0])?,
            stop: number(parts[1])?,
            step,
        })
    }

    /// The indices it takes from `len` images: Python's `range(*slice.indices(len))`.
    pub fn indices(&self, len: usize) -> Vec<usize> {
        let len = len as i64;
        let bound = |v: Option<i64>, default: i64| match v {
            None => default,
            Some(v) if v < 0 => (len + v).max(0),
            Some(v) => v.min(len),
        };
        let (start, stop) = (bound(self.start, 0), bound(self.stop, len));
        (start..stop.max(start))
            .step_by(self.step)
            .map(|i| i as usize)
            .collect()
    }
}

impl std::fmt::Display for PageSlice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let part = |v: Option<i64>| v.map_or(String::new(), |v| v.to_string());
        write!(f, "{}:{}:{}", part(self.start), part(self.stop), self.step)
    }
}

/// A command line that asks for something imfilter does not do, found after parsing (an
/// output name it would not write, say): a usage error, exit 2, like clap's own.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The words of the operation's own arguments given on the command line, in a form its
/// `--step` takes (`--size 3 --both`): input, output and global options left out.
fn operation_words(matches: &ArgMatches) -> Vec<String> {
    let Some((name, sub)) = matches.subcommand() else {
        return Vec::new();
    };
    let command = Cli::command();
    let Some(definition) = command.find_subcommand(name) else {
        return Vec::new();
    };
    let not_the_operations: Vec<String> = IoArgs::augment_args(clap::Command::new("io"))
        .get_arguments()
        .chain(command.get_arguments())
        .map(|a| a.get_id().to_string())
        .collect();
    let mut words = Vec::new();
    for arg in definition.get_arguments() {
        let id = arg.get_id().as_str();
        let given = sub.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
        let Some(long) = arg.get_long().filter(|_| given) else {
            continue;
        };
        if not_the_operations.iter().any(|n| n == id) {
            continue;
        }
        if !arg.get_action().takes_values() {
            words.push(format!("--{long}"));
            continue;
        }
        for value in sub.get_raw(id).into_iter().flatten() {
            words.push(format!("--{long}"));
            words.push(value.to_string_lossy().into_owned());
        }
    }
    words
}

/// The operations: one line each, for their subcommand and for `run --step` alike. Each
/// line's arguments type lives in the operation's own file and builds its step ([`OpArgs`]).
macro_rules! operations {
    ($( $(#[$attr:meta])* $variant:ident($args:ty), )*) => {
        #[derive(Debug, Subcommand)]
        pub enum Command {
            $( $(#[$attr])* $variant(WithIo<$args>), )*

            /// Several operations in one pass: the input read once, the result written once
            #[command(after_help = RUN_EXAMPLES)]
            Run(RunArgs),

            /// Describe a TIFF or FITS file or directory (pages, shape, type, layout), or an HDF5
            /// file's 3-D datasets
            Info(InfoArgs),

            /// Write one page as a PNG to look at, contrast stretched from its 1st to its 99th
            /// percentile; --compare puts the same page of another stack beside it
            Preview(PreviewArgs),

            /// Print a shell completion script: imfilter completions bash > ~/.local/share/bash-completion/completions/imfilter
            Completions(CompletionsArgs),

            /// Print the manual page (roff): imfilter man > ~/.local/share/man/man1/imfilter.1
            Man,

            /// One run split into shards for many machines (a Slurm job array), committed
            /// atomically: prepare, run, status, commit, slurm (docs/scale-out.md)
            Job(crate::scaleout::JobArgs),
        }

        /// The operations as steps of `run --step '…'`: the same arguments, without input and
        /// output.
        #[derive(Debug, Subcommand)]
        pub enum Step {
            $( $(#[$attr])* $variant($args), )*
        }

        impl Command {
            /// The input and output arguments and the operation of a one-operation command.
            pub fn operation(&self) -> Option<(&IoArgs, &dyn OpArgs)> {
                match self {
                    $( Command::$variant(a) => Some((&a.io, &a.op)), )*
                    _ => None,
                }
            }
        }

        impl Step {
            pub fn args(&self) -> &dyn OpArgs {
                match self {
                    $( Step::$variant(a) => a, )*
                }
            }
        }
    };
}

operations! {
    /// Flat-field correction: (I - dark) / max(flat - dark, 1e-6), as float32
    #[command(
        visible_alias = "flat-field",
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

    /// Cut each image to a rectangle: LEFT,TOP,RIGHT,BOTTOM (numpy's img[top:bottom, left:right])
    #[command(after_help = "Example:\n  imfilter crop --roi 100,100,1900,1900 stack.tif -o cropped.tif")]
    Crop(crate::filters::geometry::CropArgs),

    /// Rotate each image counter-clockwise by 90, 180 or 270 degrees (numpy's np.rot90)
    #[command(after_help = "Example:\n  imfilter rotate --angle 90 stack.tif -o rotated.tif")]
    Rotate(crate::filters::geometry::RotateArgs),

    /// Mirror each image left-right (horizontal, np.fliplr) or top-bottom (vertical, np.flipud)
    #[command(after_help = "Example:\n  imfilter flip --axis horizontal stack.tif -o flipped.tif")]
    Flip(crate::filters::geometry::FlipArgs),

    /// Replace values below --min and above --max (MantidImaging's Clip Values)
    #[command(
        after_help = "Example:\n  imfilter clip --min 0 --max 1.5 --max-value 0 corrected.tif -o clipped.tif"
    )]
    Clip(crate::filters::values::ClipArgs),

    /// a * (mul / div) + (add - sub) in float32 (MantidImaging's Arithmetic)
    #[command(
        after_help = "Example:\n  imfilter arithmetic --mul 2 --sub 0.5 corrected.tif -o scaled.tif"
    )]
    Arithmetic(crate::filters::values::ArithmeticArgs),

    /// Transmission to attenuation: -ln(max(a, 1e-6)), as float32
    #[command(after_help = "Example:\n  imfilter minus-log corrected.tif -o attenuation.tif")]
    MinusLog(crate::filters::values::MinusLogArgs),

    /// Map values linearly onto uint8, uint16 or float32, clamped (MantidImaging's Rescale);
    /// without --min/--max, from the whole stack's range (one more read)
    #[command(after_help = "Example:\n  imfilter rescale --to uint16 corrected.tif -o corrected_u16.tif")]
    Rescale(crate::filters::rescale::RescaleArgs),

    /// Scale each image so the mean of an air region follows the beam (MantidImaging's ROI
    /// Normalisation; one more read for the stack average)
    #[command(
        after_help = "Example:\n  imfilter roi-normalise --roi 0,0,200,200 corrected.tif -o normalised.tif"
    )]
    RoiNormalise(crate::filters::roi_normalise::RoiNormaliseArgs),

    /// Replace NaN by a value or by the median of the finite values of its 3x3 window
    /// (MantidImaging's NaN Removal)
    #[command(
        after_help = "Example:\n  imfilter nan-removal --mode median corrected.tif -o clean.tif"
    )]
    NanRemoval(crate::filters::nan_removal::NanRemovalArgs),

    /// Set pixels outside a centred circle to a value (tomopy's circ_mask, MantidImaging's
    /// Circular Mask)
    #[command(
        after_help = "Example:\n  imfilter circular-mask --ratio 0.95 --value 0 slices.tif -o masked.tif"
    )]
    CircularMask(crate::filters::circular_mask::CircularMaskArgs),

    /// Bin N×N pixels into one (--factor) or resize by a fraction (--scale, MantidImaging's Rebin)
    #[command(
        after_help = "Examples:\n  imfilter rebin --factor 2 stack.tif -o binned.tif\n  imfilter rebin --scale 0.5 corrected.tif -o half.tif"
    )]
    Rebin(crate::filters::rebin::RebinArgs),

    /// Gaussian blur of each image (scipy.ndimage.gaussian_filter; float32 results within 1e-6)
    #[command(after_help = "Example:\n  imfilter gaussian --sigma 2 corrected.tif -o blurred.tif")]
    Gaussian(crate::filters::gaussian::GaussianArgs),

    /// Remove stripes from each sinogram (ring artefacts; algotom's methods), in a pass of
    /// its own over the result
    #[command(after_help = crate::filters::stripes::REMOVE_STRIPES_HELP)]
    RemoveStripes(crate::filters::stripes::RemoveStripesArgs),
}

const RUN_EXAMPLES: &str = "\
Each --step is one operation with its own arguments, exactly as its subcommand takes them
(without input and output). Steps run in the order given, on each image in turn: the input is
read once and the result written once.

Examples:
  imfilter run --step 'background-correct --flat F/ --dark D/' --step 'median --size 3' Tomo/ -o out.tif
  imfilter run --step 'remove-outliers --size 3 --threshold 500' --step 'median --size 3' stack.tif
  imfilter run --pipeline steps.toml Tomo/ -o out.tif      # one [[step]] table per operation
  imfilter run --replay out.json Tomo_next/ -o next.tif    # the steps a result's history records

docs/pipelines.md describes chains, pipeline files and replay.";

/// An operation's own arguments with the input and output of a run of it alone.
#[derive(Debug, Args)]
pub struct WithIo<A: Args> {
    // The operation's own options first in its help (what it needs, such as --flat and
    // --dark), then input and output, then the options every command shares.
    #[command(flatten)]
    pub op: A,

    #[command(flatten)]
    pub io: IoArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub io: IoArgs,

    /// One operation and its arguments, as its subcommand takes them, in quotes:
    /// --step 'median --size 3'. Repeat for each step, in order
    #[arg(
        long = "step",
        value_name = "'OPERATION ARGS'",
        required_unless_present_any = ["pipeline", "replay"],
        conflicts_with_all = ["pipeline", "replay"]
    )]
    pub steps: Vec<String>,

    /// The steps from a pipeline file: one [[step]] table per operation, `operation = "NAME"`
    /// and its long flags as keys (docs/operations.md)
    #[arg(long, value_name = "FILE.toml", conflicts_with = "replay")]
    pub pipeline: Option<PathBuf>,

    /// The steps recorded in an earlier result's history sidecar (NAME.json), run again on
    /// this input
    #[arg(long, value_name = "RESULT.json")]
    pub replay: Option<PathBuf>,
}

/// One `--step`'s words, parsed by the operations' own definitions.
#[derive(Debug, Parser)]
#[command(name = "step", no_binary_name = true, disable_help_flag = true)]
struct StepLine {
    #[command(subcommand)]
    step: Step,
}

/// Splits `--step` number `number` (from 1) into words as a POSIX shell would.
pub fn step_words(number: usize, text: &str) -> Result<Vec<String>, String> {
    let named = |why: &str| format!("--step {number} ('{text}'): {why}");
    let words = shlex::split(text).ok_or_else(|| named("unbalanced quotes"))?;
    if words.is_empty() {
        return Err(named("empty: give an operation and its arguments"));
    }
    Ok(words)
}

/// Parses a step's words (`["median", "--size", "3"]`); an error starts with `label`.
pub fn parse_step(label: &str, words: &[String]) -> Result<Step, String> {
    StepLine::try_parse_from(words)
        .map(|line| line.step)
        .map_err(|e| {
            // clap's first paragraph (up to its usage lines), on one line.
            let rendered = e.render().to_string();
            let first: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            format!("{label}: {}", first.join(" ").trim_start_matches("error: "))
        })
}

/// Where the input is and where the result goes; the same for every filter.
#[derive(Debug, Args)]
pub struct IoArgs {
    /// Input: a TIFF file (one or many pages), a directory of TIFF files, several files
    /// (a shell glob such as proj_*.tif: one stack, in the order given), or an HDF5 dataset
    /// (scan.nxs:/entry/data/data)
    #[arg(value_name = "INPUT", num_args = 1.., required = true)]
    pub input: Vec<PathBuf>,

    /// With several input files: order them naturally (proj_2 before proj_10), as a directory
    /// is ordered, instead of as given (a shell sorts proj_10 before proj_2)
    #[arg(long)]
    pub natural_order: bool,

    /// Only these images of the input: START:STOP[:STEP], Python's slice (0 is the first
    /// image, STOP is not included, negative counts from the end): 0:100, 10:, ::2, -50:
    #[arg(long, value_name = "START:STOP[:STEP]", allow_hyphen_values = true, value_parser = PageSlice::parse)]
    pub pages: Option<PageSlice>,

    /// Output: FILE.tif for one multi-page TIFF, DIR/ (or an existing directory) for one
    /// file per image, or FILE.h5:/DATASET for a new HDF5 file [default: beside the input, NAME_<command>.tif or NAME_<command>/]
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
    /// memory-mapped by the next program, a compressed one cannot). Default: none, but
    /// --in-place keeps the input's own compression
    #[arg(long, value_enum)]
    pub compress: Option<Compression>,

    /// HDF5 input: which images are projections (0), flats (1) and darks (2), instead of the
    /// image_key found beside the dataset: an image_key dataset (/entry/data/image_key, or
    /// FILE:/PATH), a list with KxN for N images of key K (2x10,1x20,0x1800), or none (every
    /// image a projection)
    #[arg(long, value_name = "KEYS", value_parser = crate::stack::hdf5::Keys::parse)]
    pub keys: Option<crate::stack::hdf5::Keys>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Writes `shell`'s completion script for the one clap definition to stdout.
pub fn print_completions(shell: clap_complete::Shell) -> std::io::Result<()> {
    let mut command = Cli::command();
    clap_complete::generate(
        shell,
        &mut command,
        "imfilter",
        &mut std::io::stdout().lock(),
    );
    Ok(())
}

/// Writes the manual page, made from the one clap definition, to stdout.
pub fn print_man_page() -> std::io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout().lock())
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A TIFF file, a directory of TIFF files, an HDF5 file, or one of its datasets
    /// (scan.nxs:/entry/data/data)
    pub path: PathBuf,

    /// One JSON object on stdout, for programs
    #[arg(long)]
    pub json: bool,

    /// The values too: min, max and mean of the finite values, and how many are NaN, +Inf,
    /// -Inf and zero (one more read of every page, in parallel)
    #[arg(long)]
    pub stats: bool,

    /// With --stats, each page's too
    #[arg(long, requires = "stats")]
    pub per_page: bool,

    /// A 256-bin histogram of one page's finite values, from its minimum to its maximum (as
    /// numpy.histogram bins them)
    #[arg(long)]
    pub histogram: bool,

    /// The page --histogram describes, numbered from 0
    #[arg(long, value_name = "N", default_value_t = 0, requires = "histogram")]
    pub page: usize,
}

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// A TIFF file or a directory of TIFF files
    pub path: PathBuf,

    /// The page to show, numbered from 0
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub page: usize,

    /// Another stack whose same page is shown beside it (raw beside corrected, say), each
    /// stretched by its own percentiles
    #[arg(long, value_name = "STACK")]
    pub compare: Option<PathBuf>,

    /// The PNG to write [default: beside the input, NAME_pageN.png]
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Replace the PNG if it exists
    #[arg(long)]
    pub force: bool,
}
