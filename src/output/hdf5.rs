//! HDF5 outputs: `-o out.h5:/data` writes a new HDF5 file holding the result as one 3-D
//! dataset (images × rows × columns), through a hidden temporary file renamed into place like
//! every output. An existing file at that path is replaced as a whole (with `--force`):
//! imfilter never adds a dataset to an existing file, since no change inside an HDF5 file can
//! be made atomically, and a failed run must not damage a file it did not create.
//!
//! - **Uncompressed** (the default): the HDF5 library lays the file out with the dataset
//!   contiguous, its space allocated at creation and never filled, aligned to 4096 bytes
//!   (`H5Pset_alignment`), and says where it is (`H5Dget_offset`); the file is closed, its
//!   blocks reserved (`fallocate`), and that byte range mapped writable like a TIFF output's
//!   pixel block: every worker writes its images straight into the file, and the library is
//!   not called while the filters run.
//! - **`--compress deflate`**: chunks of one image, shuffle + gzip (level 4, h5py's default),
//!   readable by every HDF5 reader without plugins. The work still happens in a mapped
//!   staging file; at the end the library compresses and writes it. hdf5-metno serialises all
//!   library calls under one lock, so this compression runs on one core (docs/hdf5.md).
//!
//! The history goes on the dataset as the attribute `imfilter_history` (the JSON written
//! inside TIFF outputs), and in the usual sidecar beside the file.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

use super::{Destination, Home, OutputFile, Pixels, reserve};
use crate::job::Job;
use crate::stack::PageFormat;
use crate::stack::hdf5::{DatasetPath, HISTORY_ATTRIBUTE, one_line};
use crate::stack::mapped::WriteMap;
use crate::stack::write::{Compression, WriteOptions};
use crate::with_pixel_type;

/// Where the dataset's pixels start: a page boundary, so the map's first pixel is aligned for
/// any type, as in TIFF outputs.
const DATA_ALIGN: u64 = 4096;

/// gzip level of compressed outputs: h5py's default, most of level 9's ratio at a fraction of
/// its time.
const GZIP_LEVEL: u8 = 4;

/// The destination for `-o FILE.h5:/DATASET`, or why it cannot be written.
pub fn destination(spec: DatasetPath, job: &Job) -> Result<Destination> {
    let usage = |why: String| anyhow::Error::new(crate::cli::UsageError(why));
    match job.compression.unwrap_or(Compression::None) {
        Compression::None | Compression::Deflate => {}
        other => {
            return Err(usage(format!(
                "{spec}: an HDF5 output is compressed with --compress deflate (gzip, which \
                 every HDF5 reader decodes); {} is for TIFF outputs",
                format!("{other:?}").to_lowercase()
            )));
        }
    }
    if job.imagej {
        return Err(usage(format!(
            "{spec}: --imagej applies to TIFF outputs only"
        )));
    }
    if spec.dataset == "/" || spec.dataset.is_empty() {
        return Err(usage(format!(
            "{spec}: name the dataset to write, e.g. {}:/data",
            spec.file.display()
        )));
    }
    Ok(Destination::Hdf5 {
        named: PathBuf::from(spec.to_string()),
        file: spec.file,
        dataset: spec.dataset,
    })
}

/// What `finish` still has to write for a compressed HDF5 output.
pub(super) struct Deferred {
    dataset: String,
    format: PageFormat,
    pages: usize,
    history: Option<String>,
}

/// The output file for `pages` images of `format` into `dataset` of a new HDF5 file at
/// `final_path`, whose temporary file is `file` (at `home`). See the module's notes.
pub(super) fn create(
    final_path: &Path,
    dataset: &str,
    file: &File,
    home: Home,
    (format, pages): (PageFormat, usize),
    options: &WriteOptions,
    staging_dir: &Path,
) -> Result<OutputFile> {
    let named = || final_path.display().to_string();
    let restore_mode = super::owner_read_write(file, final_path)?;
    let Home::Temporary(temp, _) = &home else {
        bail!("invariant: an HDF5 output is a temporary file beside its path");
    };
    let data_len = format.page_bytes() * pages as u64;
    let compressed = options.compression == Compression::Deflate;
    let (map, deferred) = if compressed {
        let staging = tempfile::tempfile_in(staging_dir)
            .with_context(|| format!("{}: cannot create a staging file", named()))?;
        reserve(&staging, data_len, final_path)?;
        let map = WriteMap::new(&staging, 0, data_len as usize)
            .with_context(|| format!("{}: cannot map the output", named()))?;
        let deferred = Deferred {
            dataset: dataset.to_string(),
            format,
            pages,
            history: options.history.clone(),
        };
        (map, Some(deferred))
    } else {
        let offset = lay_out_contiguous(temp, dataset, format, pages, options, data_len)
            .map_err(|e| anyhow!("{}: cannot create the HDF5 file: {e:#}", named()))?;
        reserve(file, offset + data_len, final_path)?;
        let map = WriteMap::new(file, offset, data_len as usize)
            .with_context(|| format!("{}: cannot map the output", named()))?;
        (map, None)
    };
    Ok(OutputFile {
        final_path: final_path.to_path_buf(),
        home,
        restore_mode,
        pixels: Pixels::Hdf5 {
            map,
            pages,
            deferred,
        },
    })
}

/// Creates the HDF5 file at `path` with `dataset` contiguous, allocated and unfilled, and
/// returns the file offset of its pixels.
fn lay_out_contiguous(
    path: &Path,
    dataset: &str,
    format: PageFormat,
    pages: usize,
    options: &WriteOptions,
    data_len: u64,
) -> Result<u64> {
    let file = hdf5_metno::File::with_options()
        .with_fapl(|fapl| fapl.alignment(data_len.max(1), DATA_ALIGN))
        .create(path)
        .map_err(library)?;
    let shape = [pages, format.height, format.width];
    // The library creates the groups on the dataset's path (as h5py does).
    let created = with_pixel_type!(format.dtype, T => {
        file.new_dataset::<T>()
            .shape(shape)
            .layout(hdf5_metno::dataset::Layout::Contiguous)
            .alloc_time(Some(hdf5_metno::dataset::AllocTime::Early))
            // The workers write every pixel; filling first would write the file twice.
            .fill_time(hdf5_metno::dataset::FillTime::Never)
            .create(dataset)
    })
    .map_err(library)?;
    write_history(&created, options.history.as_deref())?;
    let offset = created
        .offset()
        .ok_or_else(|| anyhow!("the library gave no file offset for the dataset"))?;
    if offset % DATA_ALIGN != 0 {
        bail!(
            "the library placed the dataset at byte {offset}, not on a {DATA_ALIGN}-byte boundary"
        );
    }
    drop(created);
    file.close().map_err(library)?;
    Ok(offset)
}

/// Writes a compressed output's pixels (`bytes`, every image in order, native byte order)
/// into its temporary file, a new HDF5 file.
pub(super) fn write_deferred(output: &OutputFile, deferred: &Deferred, bytes: &[u8]) -> Result<()> {
    let Home::Temporary(path, _) = &output.home else {
        bail!("invariant: an HDF5 output is a temporary file beside its path");
    };
    write_compressed(path, deferred, bytes)
        .with_context(|| format!("{}: cannot write", output.final_path.display()))?;
    // The library wrote the file by its path: that path must still name our file.
    output.home.reopen(&output.final_path)?;
    Ok(())
}

/// A new HDF5 file at `path` holding `bytes` compressed as `deferred` says.
fn write_compressed(path: &Path, deferred: &Deferred, bytes: &[u8]) -> Result<()> {
    let file = hdf5_metno::File::create(path).map_err(library)?;
    let format = deferred.format;
    let shape = [deferred.pages, format.height, format.width];
    let created = with_pixel_type!(format.dtype, T => {
        let pixels: &[T] = bytemuck::cast_slice(bytes);
        file.new_dataset::<T>()
            .shape(shape)
            .chunk([1, format.height, format.width])
            .shuffle()
            .deflate(GZIP_LEVEL)
            .create(deferred.dataset.as_str())
            .and_then(|d| d.write_raw(pixels).map(|()| d))
    })
    .map_err(library)?;
    write_history(&created, deferred.history.as_deref())?;
    drop(created);
    file.close().map_err(library)
}

fn write_history(dataset: &hdf5_metno::Dataset, history: Option<&str>) -> Result<()> {
    let Some(history) = history else {
        return Ok(());
    };
    let text: hdf5_metno::types::VarLenUnicode = history
        .parse()
        .map_err(|_| anyhow!("the history is not valid text for an HDF5 attribute"))?;
    dataset
        .new_attr::<hdf5_metno::types::VarLenUnicode>()
        .create(HISTORY_ATTRIBUTE)
        .and_then(|a| a.write_scalar(&text))
        .map_err(library)
}

fn library(e: hdf5_metno::Error) -> anyhow::Error {
    anyhow!("{}", one_line(&e.to_string()))
}
