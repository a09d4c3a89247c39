//! HDF5 / NeXus stacks: one 3-D dataset (images × rows × columns) of an HDF5 file, named on
//! the command line as `FILE.nxs:/entry/data/data` (also `.h5`, `.hdf5`, `.nx5`).
//!
//! The file is opened with the HDF5 library (the `hdf5-metno` bindings on the system
//! libhdf5), which says where and how the dataset is stored:
//! - **contiguous and unfiltered**: the library gives the dataset's file offset
//!   (`H5Dget_offset`), and each image is described as an uncompressed page at
//!   `offset + i · page bytes`, in the byte order of the dataset's type. The stack layer then
//!   reads it exactly as an uncompressed TIFF page: in place from the mapped file (no copy, no
//!   memory per worker) when aligned and in native order, else copied and byte-swapped.
//! - **chunked, one image per chunk, no filter**: the chunks are plain runs of the file, read
//!   as a contiguous dataset's pages are.
//! - **chunked, one image per chunk, gzip and/or shuffle**: each worker inflates its own
//!   image's chunk from the mapped file (`chunks`), in parallel, without the library.
//! - **any other chunking or filter**, compact or external: each image is read through the
//!   library ([`LibraryPages`]), which decodes its chunks. libhdf5 is not thread-safe unless
//!   built so, and its thread-safe build (Debian's) is so by one global lock around every call;
//!   hdf5-metno adds a process-wide lock of its own around every call. So images are decoded
//!   one at a time, whatever `-j` says, while the filters still run in parallel on the images
//!   already decoded (docs/hdf5.md has the measured cost).
//!
//! Which images are projections, flats and darks comes from NXtomo's `image_key` when the
//! file has one next to the data (see [`keys`]).

mod chunks;
pub mod keys;

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};

pub use keys::{KeyCounts, Keys, Role};

use super::ifd::ByteOrder;
use super::source::{PageDecoder, RawPage, Source};
use super::{Stack, StackKind};
use crate::pixel::DType;

/// File name extensions taken as HDF5 (NeXus writes `.nxs`, sometimes `.nx5`).
pub const EXTENSIONS: [&str; 4] = ["h5", "hdf5", "nxs", "nx5"];

/// The 8 bytes every HDF5 file starts with (without a user block).
const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// `FILE:/DATASET`: an HDF5 file and the path of a dataset in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetPath {
    pub file: PathBuf,
    /// Absolute, as `/entry/data/data`.
    pub dataset: String,
}

impl DatasetPath {
    /// Splits `FILE.h5:/DATASET` at the first `:/` after an HDF5 extension, or after the name
    /// of an existing HDF5 file with another name (its signature read), when the whole path
    /// names no file; `None` for any other path (a TIFF, a directory, `FILE.h5` alone).
    pub fn parse(path: &Path) -> Option<DatasetPath> {
        let bytes = path.as_os_str().as_bytes();
        let whole_is_a_file = std::cell::OnceCell::new();
        bytes.windows(2).enumerate().find_map(|(i, pair)| {
            if pair != b":/" {
                return None;
            }
            let file = Path::new(OsStr::from_bytes(&bytes[..i]));
            let named = has_hdf5_extension(file)
                || (!*whole_is_a_file.get_or_init(|| path.exists()) && has_signature(file));
            if !named {
                return None;
            }
            let dataset = std::str::from_utf8(&bytes[i + 1..]).ok()?;
            Some(DatasetPath {
                file: file.to_path_buf(),
                dataset: dataset.trim_end_matches('/').to_string(),
            })
        })
    }

    /// The group the dataset is in (`/` for a dataset at the root).
    pub fn group(&self) -> &str {
        match self.dataset.rfind('/') {
            Some(0) | None => "/",
            Some(i) => &self.dataset[..i],
        }
    }
}

impl std::fmt::Display for DatasetPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.dataset)
    }
}

pub fn has_hdf5_extension(path: &Path) -> bool {
    path.extension()
        .and_then(OsStr::to_str)
        .is_some_and(|e| EXTENSIONS.iter().any(|h| h.eq_ignore_ascii_case(e)))
}

/// Whether `path` is an HDF5 input: `FILE:/DATASET`, or a file with an HDF5 extension or
/// (unless named as a TIFF or FITS file) signature, which then needs its dataset named.
pub fn is_hdf5_input(path: &Path) -> bool {
    if DatasetPath::parse(path).is_some() {
        return true;
    }
    if !path.is_file() {
        return false;
    }
    if has_hdf5_extension(path) {
        return true;
    }
    // A .tif is a TIFF and a .fits a FITS file: no second open for each of a glob's tens of
    // thousands of files.
    let name = path.file_name().map(|n| n.to_string_lossy());
    if name.is_some_and(|n| super::is_tiff_name(&n) || super::fits::is_fits_name(&n)) {
        return false;
    }
    has_signature(path)
}

/// Whether `path` is a regular file that starts with the HDF5 signature.
fn has_signature(path: &Path) -> bool {
    let mut head = [0u8; 8];
    path.is_file()
        && std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok_and(|()| &head == SIGNATURE)
}

/// The images of the dataset `path` names that have `role` (see [`keys`]), as a stack.
pub fn open(path: &Path, keys: &Keys, role: Role) -> Result<Stack> {
    let Some(spec) = DatasetPath::parse(path) else {
        bail!(crate::cli::UsageError(format!(
            "{}: an HDF5 file: name the dataset to read as FILE:/DATASET, e.g. {}:/entry/data/data \
             (imfilter info {} lists its 3-D datasets)",
            path.display(),
            path.display(),
            path.display()
        )));
    };
    open_spec(&spec, keys, role)
}

/// [`open`] for a file and dataset given apart: a file whose name [`DatasetPath::parse`]
/// would not take for HDF5 (the fuzz target's `fuzz/fuzz_targets/hdf5_reader.rs`).
pub fn open_spec(spec: &DatasetPath, keys: &Keys, role: Role) -> Result<Stack> {
    let dataset = Dataset3::open(spec)?;
    let selection = keys::select(&dataset, keys, role)?;
    let source = dataset.source(&selection.images)?;
    let path = PathBuf::from(spec.to_string());
    let mut stack = Stack::from_sources(&path, StackKind::Hdf5, vec![source])?;
    stack.keys = selection.counts;
    Ok(stack)
}

/// The input of a command: one HDF5 dataset read with `keys`, or any other input
/// ([`Stack::open_many`]), for which `keys` must be [`Keys::Auto`].
pub fn open_inputs(paths: &[PathBuf], keys: &Keys) -> Result<Stack> {
    match paths {
        [one] if is_hdf5_input(one) => open(one, keys, Role::Projection),
        _ if *keys != Keys::Auto => bail!(crate::cli::UsageError(
            "--keys applies to an HDF5 dataset input (FILE.nxs:/entry/data/data) only".into()
        )),
        _ => Stack::open_many(paths),
    }
}

/// Flats or darks (`role`) from several paths pooled into one stack, as `--flat a b` does:
/// TIFF files and directories as they are, HDF5 datasets by their image_key (with `keys`
/// when the dataset is `input`, the command's own).
pub fn open_references(
    paths: &[PathBuf],
    role: Role,
    input: Option<(&Path, &Keys)>,
) -> Result<Stack> {
    if !paths.iter().any(|p| is_hdf5_input(p)) {
        return Stack::open_pooled(paths);
    }
    let keys_for = |path: &Path| match input {
        Some((input, keys)) if same_dataset(input, path) => keys,
        _ => &Keys::Auto,
    };
    if let [one] = paths {
        return open(one, keys_for(one), role);
    }
    let mut sources = Vec::new();
    let mut counts = None;
    for path in paths {
        let stack = if is_hdf5_input(path) {
            open(path, keys_for(path), role)?
        } else {
            Stack::open(path)?
        };
        counts = counts.or(stack.keys.clone());
        sources.extend(stack.sources);
    }
    let first = paths
        .first()
        .ok_or_else(|| anyhow!("no input path given"))?;
    let mut stack = Stack::from_sources(first, StackKind::File, sources)?;
    stack.keys = counts;
    Ok(stack)
}

/// How many projections, flats and darks the keys of the dataset `path` names mark (`None`
/// when it has no image_key and `keys` gives none).
pub fn key_counts(path: &Path, keys: &Keys) -> Result<Option<KeyCounts>> {
    let Some(spec) = DatasetPath::parse(path) else {
        return Ok(None);
    };
    Ok(keys::select(&Dataset3::open(&spec)?, keys, Role::Projection)?.counts)
}

/// Whether two paths name the same dataset of the same file.
pub fn same_dataset(a: &Path, b: &Path) -> bool {
    match (DatasetPath::parse(a), DatasetPath::parse(b)) {
        (Some(a), Some(b)) => {
            a.dataset == b.dataset
                && (a.file == b.file
                    || a.file
                        .canonicalize()
                        .ok()
                        .is_some_and(|f| b.file.canonicalize().ok() == Some(f)))
        }
        _ => false,
    }
}

/// An open 3-D dataset and what the library says about its storage.
pub struct Dataset3 {
    pub spec: DatasetPath,
    pub file: hdf5_metno::File,
    pub dataset: hdf5_metno::Dataset,
    pub images: usize,
    pub height: usize,
    pub width: usize,
    pub dtype: DType,
    pub byte_order: ByteOrder,
    /// The file offset of the pixels, when they are one contiguous, unfiltered run.
    pub offset: Option<u64>,
}

impl Dataset3 {
    /// Opens `spec`, refusing what is not a stack of a supported type, in one line naming the
    /// file and the dataset.
    pub fn open(spec: &DatasetPath) -> Result<Dataset3> {
        let file = open_file(&spec.file).map_err(|e| anyhow!("{spec}: {e:#}"))?;
        let dataset = file.dataset(&spec.dataset).map_err(|_| {
            let what = match file.group(&spec.dataset) {
                Ok(_) => "is a group, not a dataset",
                Err(_) => "no such dataset",
            };
            anyhow!(
                "{spec}: {what} (imfilter info {} lists the 3-D datasets)",
                spec.file.display()
            )
        })?;
        let shape = dataset.shape();
        let [images, height, width] = <[usize; 3]>::try_from(shape.as_slice()).map_err(|_| {
            let dims = shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(" x ");
            anyhow!(
                "{spec}: a {}-D dataset ({dims}); imfilter needs a 3-D stack (images x rows x \
                 columns)",
                shape.len()
            )
        })?;
        if images == 0 || height == 0 || width == 0 {
            bail!("{spec}: an empty dataset ({images} x {height} x {width})");
        }
        let (dtype, byte_order) = sample_type(&dataset).map_err(|why| anyhow!("{spec}: {why}"))?;
        let unfiltered_run = dataset.layout() == hdf5_metno::dataset::Layout::Contiguous
            && dataset.filters().is_empty();
        let offset = unfiltered_run.then(|| dataset.offset()).flatten();
        let image_bytes = height * width * dtype.bytes();
        let (file, dataset) = match chunk_cache(&dataset, image_bytes, dtype.bytes()) {
            Some((slots, bytes)) => {
                // Closed first: the library shares an open file between its handles, and a
                // second open of it would keep the first one's (default) cache.
                drop(dataset);
                drop(file);
                let file = hdf5_metno::File::with_options()
                    .with_fapl(|fapl| fapl.chunk_cache(slots, bytes, 0.75))
                    .open(&spec.file)
                    .map_err(|e| anyhow!("{spec}: cannot open: {}", one_line(&e.to_string())))?;
                let dataset = file
                    .dataset(&spec.dataset)
                    .map_err(|e| anyhow!("{spec}: cannot open: {}", one_line(&e.to_string())))?;
                (file, dataset)
            }
            None => (file, dataset),
        };
        Ok(Dataset3 {
            spec: spec.clone(),
            file,
            dataset,
            images,
            height,
            width,
            dtype,
            byte_order,
            offset,
        })
    }

    /// How imfilter reads images `images` (dataset indices) of it (see the module's notes).
    pub(crate) fn reading(&self, images: &[usize]) -> Reading {
        let page = self.page_bytes();
        if let Some(offset) = self.offset {
            let runs = images.iter().map(|&i| (offset + i as u64 * page, page));
            return Reading::Runs(runs.collect());
        }
        match chunks::DirectChunks::for_dataset(self, images) {
            Some(direct) => match direct.plain_runs(page) {
                Some(runs) => Reading::Runs(runs),
                None => Reading::Direct(direct),
            },
            None => Reading::Library,
        }
    }

    fn page_bytes(&self) -> u64 {
        (self.width * self.height * self.dtype.bytes()) as u64
    }

    /// The images `images` (dataset indices) as a source: mapped runs of the file when they
    /// are stored plain (see [`Reading`]), else decoded.
    fn source(self, images: &[usize]) -> Result<Source> {
        let (width, height, dtype) = (self.width as u64, self.height as u64, self.dtype);
        let raw = |chunks| RawPage::plain(width, height, dtype, chunks);
        let history = history_of(&self.dataset);
        let spec = self.spec.clone();
        let decoder: Box<dyn PageDecoder> = match self.reading(images) {
            Reading::Runs(runs) => {
                let end = runs.iter().map(|&(at, n)| at.saturating_add(n)).max();
                let pages = runs.into_iter().map(|run| raw(vec![run])).collect();
                let source = Source::described(&spec.file, self.byte_order, pages, history, None)?;
                // A file cut short after its header would otherwise be read past its end.
                if let Some(end) = end.filter(|&end| end > source.file_len) {
                    bail!(
                        "{spec}: the file is truncated: the dataset's pixels end at byte {end}, \
                         but the file has {} bytes",
                        source.file_len
                    );
                }
                return Ok(source);
            }
            Reading::Direct(direct) => Box::new(direct),
            Reading::Library => Box::new(LibraryPages::new(self, images.to_vec())),
        };
        let pages = images.iter().map(|_| raw(Vec::new())).collect();
        Source::described(
            &spec.file,
            ByteOrder::native(),
            pages,
            history,
            Some(decoder),
        )
    }
}

/// How a dataset's images are read, decided once for the reader and for `info`.
pub(crate) enum Reading {
    /// Plain runs of the file, `(offset, bytes)` per image: contiguous, or unfiltered chunks
    /// of one image each; read as uncompressed TIFF pages are (in place where they can be).
    Runs(Vec<(u64, u64)>),
    /// Chunks of one image each, inflated and unshuffled by imfilter on every worker.
    Direct(chunks::DirectChunks),
    /// Through the library, one image at a time.
    Library,
}

/// The chunk cache a dataset whose chunks span several images needs, as (slots, bytes), or
/// `None` when the library's default (1 MiB) does. Each image is read alone, so a chunk of
/// N images is decompressed N times unless it stays cached between them; and the workers read
/// images far apart in the stack (rayon splits the stack into ranges), so each needs the row
/// of chunks at its place: the chunks covering N whole images, per worker, up to 512 MiB.
fn chunk_cache(
    dataset: &hdf5_metno::Dataset,
    image_bytes: usize,
    sample_bytes: usize,
) -> Option<(usize, usize)> {
    const MAX_BYTES: usize = 512 << 20;
    let chunk = dataset.chunk()?;
    let images_per_chunk = *chunk.first()?;
    if images_per_chunk <= 1 {
        return None;
    }
    let slab = images_per_chunk.saturating_mul(image_bytes);
    let bytes = slab
        .saturating_mul(rayon::current_num_threads())
        .clamp(1 << 20, MAX_BYTES);
    let chunk_bytes = chunk
        .iter()
        .product::<usize>()
        .saturating_mul(sample_bytes)
        .max(1);
    // The library's advice: about 100 times as many hash slots as chunks that fit.
    let slots = (bytes / chunk_bytes)
        .saturating_mul(100)
        .clamp(521, 1 << 20)
        | 1;
    Some((slots, bytes))
}

/// Opens an HDF5 file read-only, or says in one line why not (the caller names the file).
pub fn open_file(path: &Path) -> Result<hdf5_metno::File> {
    let meta = std::fs::metadata(path).map_err(|e| anyhow!("cannot open: {e}"))?;
    if meta.is_dir() {
        bail!("is a directory, expected an HDF5 file");
    }
    hdf5_metno::File::open(path).map_err(|e| {
        anyhow!(
            "cannot open as HDF5 (damaged, truncated, or not an HDF5 file): {}",
            one_line(&e.to_string())
        )
    })
}

/// The library's message, on one line.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The dataset's sample type as imfilter's, and its byte order in the file.
fn sample_type(dataset: &hdf5_metno::Dataset) -> Result<(DType, ByteOrder), String> {
    use hdf5_metno::types::{FloatSize, IntSize, TypeDescriptor as T};
    let datatype = dataset
        .dtype()
        .map_err(|e| format!("cannot read its type: {}", one_line(&e.to_string())))?;
    let descriptor = datatype
        .to_descriptor()
        .map_err(|_| "its sample type is not supported (supported: uint8, uint16, uint32, int16, int32, float32, float64)".to_string())?;
    let dtype = match descriptor {
        T::Unsigned(IntSize::U1) => DType::U8,
        T::Unsigned(IntSize::U2) => DType::U16,
        T::Unsigned(IntSize::U4) => DType::U32,
        T::Integer(IntSize::U2) => DType::I16,
        T::Integer(IntSize::U4) => DType::I32,
        T::Float(FloatSize::U4) => DType::F32,
        T::Float(FloatSize::U8) => DType::F64,
        other => {
            return Err(format!(
                "{other} samples are not supported (supported: uint8, uint16, uint32, int16, \
                 int32, float32, float64)"
            ));
        }
    };
    let order = match datatype.byte_order() {
        hdf5_metno::datatype::ByteOrder::BigEndian => ByteOrder::Big,
        hdf5_metno::datatype::ByteOrder::LittleEndian => ByteOrder::Little,
        // One-byte types have no order.
        _ => ByteOrder::native(),
    };
    Ok((dtype, order))
}

/// The name of the attribute imfilter writes its history into (JSON text).
pub const HISTORY_ATTRIBUTE: &str = "imfilter_history";

/// The history imfilter wrote on a dataset, if it did.
fn history_of(dataset: &hdf5_metno::Dataset) -> Option<String> {
    let attr = dataset.attr(HISTORY_ATTRIBUTE).ok()?;
    if let Ok(text) = attr.read_scalar::<hdf5_metno::types::VarLenUnicode>() {
        return Some(text.as_str().to_string());
    }
    attr.read_scalar::<hdf5_metno::types::VarLenAscii>()
        .ok()
        .map(|t| t.as_str().to_string())
}

/// Images of a chunked (or otherwise not mappable) dataset, each decoded by the library.
struct LibraryPages {
    name: String,
    dataset: hdf5_metno::Dataset,
    /// Dataset index of each page.
    images: Vec<usize>,
    dtype: DType,
    /// Kept open for as long as the dataset is read.
    _file: hdf5_metno::File,
}

impl LibraryPages {
    fn new(opened: Dataset3, images: Vec<usize>) -> LibraryPages {
        LibraryPages {
            name: opened.spec.dataset.clone(),
            dataset: opened.dataset,
            images,
            dtype: opened.dtype,
            _file: opened.file,
        }
    }
}

impl PageDecoder for LibraryPages {
    /// The library reads into an array of its own, then copied.
    fn page_buffers(&self) -> u64 {
        2
    }

    fn decode(&self, _: &[u8], page: usize, dst: &mut [u8]) -> Result<(), String> {
        let index = self.images[page];
        let cannot = |e: hdf5_metno::Error| {
            format!(
                "{}: image {index}: cannot decode: {}",
                self.name,
                one_line(&e.to_string())
            )
        };
        crate::with_pixel_type!(self.dtype, T => {
            let image = self
                .dataset
                .read_slice_2d::<T, _>((index, .., ..))
                .map_err(cannot)?;
            let pixels = image
                .as_slice()
                .ok_or_else(|| format!("{}: image {index}: not in row order", self.name))?;
            dst.copy_from_slice(bytemuck::cast_slice(pixels));
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_paths_split_after_an_hdf5_extension() {
        let parse = |p: &str| DatasetPath::parse(Path::new(p)).map(|d| d.to_string());
        assert_eq!(
            parse("scan.nxs:/entry/data/data"),
            Some("scan.nxs:/entry/data/data".into())
        );
        assert_eq!(parse("dir/x.H5:/data/"), Some("dir/x.H5:/data".into()));
        assert_eq!(parse("a:/b.h5:/data"), Some("a:/b.h5:/data".into()));
        assert_eq!(parse("scan.nxs"), None);
        assert_eq!(parse("stack.tif"), None);
        assert_eq!(parse("no-such-file:/data"), None);
    }
}
