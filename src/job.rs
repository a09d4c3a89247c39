//! A job: the plain, validated plan made from the command line. Past this point no clap type
//! is used. It decides where the result goes, and refuses, before anything is touched, plans
//! that would lose data.

use std::path::{Path, PathBuf};

use std::io::IsTerminal;

use anyhow::{Result, bail};

use crate::cli::IoArgs;
use crate::output::{Destination, Durability};
use crate::pixel::DType;
use crate::progress::ProgressMode;
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
    pub input: PathBuf,
    pub output: OutputChoice,
    pub force: bool,
    pub imagej: bool,
    pub compression: Compression,
    pub durability: Durability,
    pub progress: ProgressMode,
    pub quiet: bool,
}

impl Job {
    pub fn new(io: &IoArgs, progress: ProgressMode, quiet: bool) -> Job {
        let output = match (&io.output, io.in_place) {
            (_, true) => OutputChoice::InPlace,
            (Some(p), false) => OutputChoice::Path(p.clone()),
            (None, false) => OutputChoice::Beside,
        };
        Job {
            input: io.input.clone(),
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
        }
    }

    /// Where `command`'s result for `stack` goes, and whether it may replace existing files.
    pub fn destination(
        &self,
        stack: &Stack,
        command: &str,
        output_dtype: DType,
    ) -> Result<(Destination, bool)> {
        match &self.output {
            OutputChoice::InPlace => Ok((in_place(stack, output_dtype)?, true)),
            OutputChoice::Path(p) if p == Path::new(STDOUT) => {
                if std::io::stdout().is_terminal() {
                    bail!(
                        "-o -: stdout is a terminal; pipe the TIFF into a program or redirect it to a file"
                    );
                }
                Ok((Destination::Stdout, true))
            }
            OutputChoice::Path(p) => {
                let as_dir = p.as_os_str().to_string_lossy().ends_with('/') || p.is_dir();
                let d = if as_dir {
                    Destination::Directory {
                        dir: p.clone(),
                        names: page_names(stack),
                    }
                } else {
                    Destination::File(p.clone())
                };
                Ok((d, self.force))
            }
            OutputChoice::Beside => {
                let d = match stack.kind {
                    StackKind::Stdin => bail!(
                        "reading from stdin (-) needs -o: a file, a directory, or - for stdout"
                    ),
                    StackKind::File => Destination::File(beside(&stack.path, command)),
                    StackKind::Directory => Destination::Directory {
                        dir: beside(&stack.path, command),
                        names: page_names(stack),
                    },
                };
                Ok((d, self.force))
            }
        }
    }
}

/// `stack.tif` → `stack_median.tif`; `Tomo/` → `Tomo_median`.
fn beside(input: &Path, command: &str) -> PathBuf {
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "stack".into());
    let lower = name.to_ascii_lowercase();
    let new_name = match [".tiff", ".tif"].iter().find(|ext| lower.ends_with(*ext)) {
        Some(ext) if input.is_file() => {
            let stem = &name[..name.len() - ext.len()];
            format!("{stem}_{command}{}", &name[name.len() - ext.len()..])
        }
        _ if input.is_file() => format!("{name}_{command}.tif"),
        _ => format!("{name}_{command}"),
    };
    input.with_file_name(new_name)
}

/// File names for one-file-per-image output: a directory of single-page files keeps its
/// names; anything else gets `STEM_000000.tif`, … in page order.
fn page_names(stack: &Stack) -> Vec<String> {
    let files: Vec<&Path> = stack.files().collect();
    if stack.kind == StackKind::Directory && files.len() == stack.len() {
        return files
            .iter()
            .map(|f| {
                f.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect();
    }
    let base = stack
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "stack".into());
    let lower = base.to_ascii_lowercase();
    let stem = [".tiff", ".tif"]
        .iter()
        .find(|ext| lower.ends_with(*ext))
        .map_or(base.as_str(), |ext| &base[..base.len() - ext.len()]);
    (0..stack.len())
        .map(|i| format!("{stem}_{i:06}.tif"))
        .collect()
}

fn in_place(stack: &Stack, output_dtype: DType) -> Result<Destination> {
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
        StackKind::File => Ok(Destination::File(stack.path.clone())),
        StackKind::Directory => {
            if stack.files().count() != stack.len() {
                bail!(
                    "{}: --in-place refused: the directory holds multi-page files; write the \
                     result to a new directory with -o instead",
                    stack.path.display()
                );
            }
            Ok(Destination::Directory {
                dir: stack.path.clone(),
                names: page_names(stack),
            })
        }
    }
}

/// Refuses an output that would replace one of the inputs (the stack, a flat, a dark) unless
/// the user asked for `--in-place`.
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
