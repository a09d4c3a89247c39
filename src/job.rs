//! A job: the plain, validated plan made from the command line. Past this point no clap type
//! is used. It decides where the result goes, and refuses, before anything is touched, plans
//! that would lose data.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cli::IoArgs;
use crate::output::{Destination, Durability, names};
use crate::pixel::DType;
use crate::progress::ProgressMode;
use crate::stack::hdf5;
use crate::stack::write::Compression;
use crate::stack::{Stack, StackKind};

/// The output path that means standard output.
pub const STDOUT: &str = "-";

/// Where the user asked the result to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputChoice {
    /// Beside the input: `stack.tif` → `stack_COMMAND.tif`, `Tomo/` → `Tomo_COMMAND/`.
    Beside,
    /// `-o PATH`: a file, or a directory when it ends in `/` or is an existing directory.
    Path(PathBuf),
    /// `--in-place`: the input itself, swapped atomically.
    InPlace,
}

#[derive(Debug, Clone)]
pub struct Job {
    /// The input as named in messages, histories and default output names: the only one, or
    /// the first of several.
    pub input: PathBuf,
    /// Every input path, in the order the stack takes them.
    pub inputs: Vec<PathBuf>,
    /// `--pages`: which images of the input.
    pub pages: Option<crate::cli::PageSlice>,
    /// The names of a directory result's files, when they are not the input's own (the
    /// input is then an intermediate stack of a chain run in two parts).
    pub page_names: Option<Vec<OsString>>,
    pub output: OutputChoice,
    pub force: bool,
    pub imagej: bool,
    /// `--compress`; when not given, [`Job::compression`] decides.
    pub compression: Option<Compression>,
    pub durability: Durability,
    pub progress: ProgressMode,
    pub quiet: bool,
    /// `--keys`: which images of an HDF5 dataset input are projections, flats and darks.
    pub keys: hdf5::Keys,
}

impl Job {
    pub fn new(io: &IoArgs, progress: ProgressMode, quiet: bool) -> Job {
        let output = match (&io.output, io.in_place) {
            (_, true) => OutputChoice::InPlace,
            (Some(p), false) => OutputChoice::Path(p.clone()),
            (None, false) => OutputChoice::Beside,
        };
        let mut inputs = io.input.clone();
        if io.natural_order {
            inputs.sort_by(|a, b| natord::compare(&a.to_string_lossy(), &b.to_string_lossy()));
        }
        Job {
            input: inputs.first().cloned().unwrap_or_default(),
            inputs,
            pages: io.pages,
            page_names: None,
            output,
            force: io.force,
            imagej: io.imagej,
            compression: io.compress,
            durability: if io.no_sync {
                Durability::NoWait
            } else {
                Durability::WaitForDisk
            },
            progress: if quiet { ProgressMode::None } else { progress },
            quiet,
            keys: io.keys.clone().unwrap_or_default(),
        }
    }

    /// What a step may need to know of the input when it is built.
    pub fn step_input(&self) -> crate::filters::Input<'_> {
        crate::filters::Input {
            paths: &self.inputs,
            keys: &self.keys,
            references: None,
        }
    }

    /// How the result is compressed: as asked; else, in place, as the input is (a user who
    /// compressed to save space must not silently get a bigger file), or refused where imfilter
    /// cannot write the input's kind again; else uncompressed.
    pub fn compression(&self, stack: &Stack) -> Result<Compression> {
        if let Some(asked) = self.compression {
            return Ok(asked);
        }
        if self.output != OutputChoice::InPlace {
            return Ok(Compression::None);
        }
        let mut kinds = (0..stack.len()).map(|i| stack.page_storage(i));
        let Some(first) = kinds.next() else {
            return Ok(Compression::None);
        };
        if let Some(other) = kinds.find(|k| *k != first) {
            bail!(crate::cli::UsageError(format!(
                "{}: --in-place: the images are stored differently ({} and {}); say which one \
                 the result takes with --compress none|lzw|deflate|zstd|packbits",
                stack.path.display(),
                first,
                other
            )));
        }
        if first.tiled {
            bail!(
                "{}: --in-place refused: the input is tiled ({}) and imfilter writes strips; \
                 write the result to a new file with -o instead",
                stack.path.display(),
                first
            );
        }
        let Some(keep) = Compression::from_code(first.compression) else {
            bail!(
                "{}: --in-place refused: the input is {} and imfilter cannot write that again; \
                 write the result to a new file with -o, or choose the result's compression \
                 with --compress",
                stack.path.display(),
                first
            );
        };
        Ok(keep)
    }

    /// Where `command`'s result for `stack` goes, and whether it may replace existing files.
    pub fn destination(
        &self,
        stack: &Stack,
        command: &str,
        output_dtype: DType,
    ) -> Result<(Destination, bool)> {
        match &self.output {
            OutputChoice::InPlace if self.pages.is_some() => bail!(crate::cli::UsageError(
                "--in-place cannot be combined with --pages: the input would lose the images \
                 not selected; write the selection to a new file with -o"
                    .into()
            )),
            OutputChoice::InPlace => Ok((in_place(stack, output_dtype, self.force)?, true)),
            OutputChoice::Path(p) if p == Path::new(STDOUT) => {
                refuse_unusable_stdout()?;
                Ok((Destination::Stdout, true))
            }
            OutputChoice::Path(p) => {
                // A device or a FIFO is written into like stdout, never replaced by a file.
                if fs::metadata(p).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
                    return Ok((Destination::Stream(p.clone()), true));
                }
                if let Some(spec) = hdf5::DatasetPath::parse(p) {
                    return Ok((crate::output::hdf5::destination(spec, self)?, self.force));
                }
                let as_dir = p.as_os_str().as_bytes().ends_with(b"/") || p.is_dir();
                let d = if as_dir {
                    Destination::Directory {
                        dir: resolved(p),
                        names: self.page_names.clone().unwrap_or_else(|| page_names(stack)),
                        carried: Vec::new(),
                    }
                } else {
                    refuse_foreign_extension(p)?;
                    Destination::File(p.clone())
                };
                Ok((d, self.force))
            }
            OutputChoice::Beside => {
                let d = match stack.kind {
                    StackKind::Files => bail!(crate::cli::UsageError(
                        "several inputs need -o: a file NAME.tif, or a directory DIR/ for one \
                         file per image"
                            .into()
                    )),
                    StackKind::Stdin => bail!(
                        "reading from stdin (-) needs -o: a file, a directory, or - for stdout"
                    ),
                    StackKind::File => Destination::File(beside(&stack.path, command)),
                    // A TIFF beside the HDF5 file: scan.nxs:/entry/data/data → scan_median.tif.
                    StackKind::Hdf5 => Destination::File(hdf5_beside(&stack.path, command)),
                    StackKind::Directory => Destination::Directory {
                        dir: beside(&stack.path, command),
                        names: page_names(stack),
                        carried: Vec::new(),
                    },
                };
                Ok((d, self.force))
            }
        }
    }
}

/// The extensions of the files imfilter writes: TIFF (BigTIFF past 4 GiB), and HDF5 as
/// `FILE.h5:/DATASET` (see `output::hdf5`). A name with
/// another extension (`x.png`, `x.npy`) would get a TIFF under a name that promises something
/// else, which the next program then misreads or refuses.
const TIFF_EXTENSIONS: [&str; 4] = ["tif", "tiff", "btf", "tf8"];

/// Refuses an output file name whose extension is not a TIFF one (no extension is fine).
fn refuse_foreign_extension(path: &Path) -> Result<()> {
    let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
        return Ok(());
    };
    if TIFF_EXTENSIONS.iter().any(|t| t.eq_ignore_ascii_case(ext)) {
        return Ok(());
    }
    if hdf5::has_hdf5_extension(path) {
        bail!(crate::cli::UsageError(format!(
            "{}: name the dataset to write as FILE:/DATASET, e.g. -o {}:/data",
            path.display(),
            path.display()
        )));
    }
    bail!(crate::cli::UsageError(format!(
        "{}: imfilter writes TIFF and HDF5 only: name the output NAME.tif (or .tiff), a \
         directory DIR/ for one TIFF per image, - for a TIFF on stdout, or NAME.h5:/DATASET; \
         .{ext} is not written",
        path.display()
    )))
}

/// `scan.nxs:/entry/data/data` → `scan_COMMAND.tif` beside `scan.nxs`.
fn hdf5_beside(input: &Path, command: &str) -> PathBuf {
    let file = hdf5::DatasetPath::parse(input).map_or_else(|| input.to_path_buf(), |s| s.file);
    let stem = file.file_stem().unwrap_or(OsStr::new("stack"));
    file.with_file_name(names::joined(stem, format!("_{command}.tif")))
}

/// A directory result replaces the directory a symbolic link points to, not the link.
fn resolved(dir: &Path) -> PathBuf {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => dir.canonicalize().unwrap_or_else(|_| dir.into()),
        _ => dir.to_path_buf(),
    }
}

/// `-o -` needs a stdout that is not a terminal and not closed. A closed stdout is not seen
/// as such by the program: Rust's runtime opens /dev/null, read-write, on a standard
/// descriptor that is closed at start, and every write to it then succeeds. That descriptor is
/// told apart from a user's `> /dev/null` (write-only) by its access mode.
fn refuse_unusable_stdout() -> Result<()> {
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        bail!("-o -: stdout is a terminal; pipe the TIFF into a program or redirect it to a file");
    }
    let fd = stdout.as_fd();
    let read_write = rustix::fs::fcntl_getfl(fd)
        .is_ok_and(|flags| flags & rustix::fs::OFlags::RWMODE == rustix::fs::OFlags::RDWR);
    let is_null = |m: &fs::Metadata| m.file_type().is_char_device() && m.rdev() == NULL_DEVICE;
    let on_null = File::from(fd.try_clone_to_owned().context("-o -: cannot use stdout")?)
        .metadata()
        .is_ok_and(|m| is_null(&m));
    if read_write && on_null {
        bail!("-o -: stdout is closed; redirect it to a file or a pipe");
    }
    Ok(())
}

/// `/dev/null`'s device number (1, 3) as `st_rdev` holds it on Linux.
const NULL_DEVICE: u64 = (1 << 8) | 3;

/// `stack.tif` → `stack_median.tif`; `Tomo/` → `Tomo_median`.
pub(crate) fn beside(input: &Path, command: &str) -> PathBuf {
    let name = input.file_name().unwrap_or(OsStr::new("stack"));
    let suffix = format!("_{command}");
    let new_name = match names::tiff_extension(name) {
        Some(ext) if input.is_file() => {
            names::joined(&names::joined(names::tiff_stem(name), &suffix), ext)
        }
        _ if input.is_file() => names::joined(names::fits_stem(name), format!("{suffix}.tif")),
        _ => names::joined(name, &suffix),
    };
    input.with_file_name(new_name)
}

/// File names for one-file-per-image output: a directory of single-page files keeps its
/// names (bytes, as they are); anything else gets `STEM_000000.tif`, … in page order.
pub(crate) fn page_names(stack: &Stack) -> Vec<OsString> {
    // Images that are each a file of their own keep that file's name.
    if matches!(stack.kind, StackKind::Directory | StackKind::Files)
        && (0..stack.len()).all(|i| stack.page_is_whole_file(i))
    {
        return (0..stack.len())
            .map(|i| {
                let name = stack.page_file(i).file_name().unwrap_or_default();
                // A FITS file's image is written as a TIFF: `proj_1.fits` → `proj_1.tif`.
                match names::fits_stem(name) {
                    stem if stem.len() < name.len() => names::joined(stem, ".tif"),
                    _ => name.to_os_string(),
                }
            })
            .collect();
    }
    let base = stack.path.file_name().unwrap_or(OsStr::new("stack"));
    let mut stem = names::fits_stem(names::tiff_stem(base));
    // An HDF5 dataset's images are named after the file, not the dataset's last component.
    let hdf5_file = hdf5::DatasetPath::parse(&stack.path).map(|s| s.file);
    if let Some(stem_of_file) = hdf5_file.as_deref().and_then(Path::file_stem) {
        stem = stem_of_file;
    }
    (0..stack.len())
        .map(|i| names::joined(stem, format!("_{i:06}.tif")))
        .collect()
}

fn in_place(stack: &Stack, output_dtype: DType, force: bool) -> Result<Destination> {
    if let Some(fits) = stack.fits_file() {
        bail!(
            "{}: --in-place refused: it is a FITS file, and imfilter writes TIFF; write the \
             result to a new file with -o instead",
            fits.display()
        );
    }
    let input = stack.format.dtype;
    if output_dtype != input {
        bail!(
            "{}: --in-place refused: the result is {output_dtype} but the input holds {input}; \
             write it to a new file with -o instead",
            stack.path.display()
        );
    }
    match stack.kind {
        StackKind::Stdin => bail!("--in-place needs a file or directory input, not stdin"),
        StackKind::Hdf5 => bail!(crate::cli::UsageError(format!(
            "{}: --in-place cannot replace one dataset inside an HDF5 file (imfilter replaces \
             whole files only); write the result with -o",
            stack.path.display()
        ))),
        StackKind::Files => bail!(crate::cli::UsageError(
            "--in-place takes one input (a file or a directory), not several".into()
        )),
        StackKind::File => {
            // A link is followed: the file it names is what the user means to replace.
            let file = stack
                .path
                .canonicalize()
                .with_context(|| format!("{}: cannot open", stack.path.display()))?;
            check_replaceable(&file, force)?;
            Ok(Destination::File(file))
        }
        StackKind::Directory => {
            if stack.files().count() != stack.len() {
                bail!(
                    "{}: --in-place refused: the directory holds multi-page files; write the \
                     result to a new directory with -o instead",
                    stack.path.display()
                );
            }
            let dir = stack
                .path
                .canonicalize()
                .with_context(|| format!("{}: cannot open", stack.path.display()))?;
            let names = page_names(stack);
            let mut carried = Vec::new();
            let listing =
                fs::read_dir(&dir).with_context(|| format!("{}: cannot list", dir.display()))?;
            for entry in listing {
                let entry = entry.with_context(|| format!("{}: cannot list", dir.display()))?;
                let path = entry.path();
                let kind = entry
                    .file_type()
                    .with_context(|| format!("{}: cannot read", path.display()))?;
                let image = names.iter().any(|n| *n == entry.file_name());
                if kind.is_dir() {
                    bail!(
                        "{}: --in-place refused: the directory holds a directory ({}), which \
                         imfilter cannot keep when it swaps in the result; write it to a new \
                         directory with -o instead",
                        dir.display(),
                        path.display()
                    );
                }
                if image && kind.is_symlink() {
                    bail!(
                        "{}: --in-place refused: it is a symbolic link, which the result would \
                         replace; run --in-place on the file it names",
                        path.display()
                    );
                }
                if image {
                    check_replaceable(&path, force)?;
                } else {
                    carried.push(entry.file_name());
                }
            }
            Ok(Destination::Directory {
                dir,
                names,
                carried,
            })
        }
    }
}

/// `--in-place` replaces a file by renaming the result over it: refused for a file the user
/// cannot write (the rename would still succeed where the directory is writable), and, unless
/// `force`, for a file with other hard links, which would keep the unfiltered data.
fn check_replaceable(file: &Path, force: bool) -> Result<()> {
    let meta = fs::metadata(file).with_context(|| format!("{}: cannot open", file.display()))?;
    let writable = meta.permissions().mode() & 0o222 != 0
        && rustix::fs::access(file, rustix::fs::Access::WRITE_OK).is_ok();
    if !writable {
        bail!(
            "{}: --in-place refused: the file is read-only; make it writable first, or write \
             the result to a new file with -o",
            file.display()
        );
    }
    if meta.nlink() > 1 && !force {
        bail!(
            "{}: --in-place refused: the file has {} hard links, and the others would keep the \
             unfiltered data; use --force to replace this name only",
            file.display(),
            meta.nlink()
        );
    }
    Ok(())
}

/// Refuses an output that would replace one of the inputs (the stack, a flat, a dark) unless
/// the user asked for `--in-place`; a directory result replaces its directory as a whole, so
/// no input may lie inside it either.
pub fn refuse_input_as_output<'a>(
    destination: &Destination,
    inputs: impl IntoIterator<Item = &'a Path>,
    in_place: bool,
) -> Result<()> {
    if in_place {
        return Ok(());
    }
    let inputs: Vec<PathBuf> = inputs
        .into_iter()
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    for out in destination.file_paths() {
        if let Ok(canonical) = out.canonicalize()
            && inputs.contains(&canonical)
        {
            bail!(
                "{}: is an input; imfilter never overwrites its input (use --in-place to replace it)",
                out.display()
            );
        }
    }
    if let Some(dir) = destination.replaced_directory()
        && let Ok(dir) = dir.canonicalize()
        && let Some(input) = inputs.iter().find(|i| i.starts_with(&dir))
    {
        bail!(
            "{}: holds an input ({}), and a directory result replaces the directory as a \
             whole; write the result elsewhere",
            dir.display(),
            input.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beside_a_directory_is_a_sibling_directory() {
        assert_eq!(
            beside(Path::new("/data/Tomo"), "median"),
            PathBuf::from("/data/Tomo_median")
        );
    }
}
