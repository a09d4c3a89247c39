//! Stacks of images: reading them from a multi-page TIFF or a directory of TIFFs, and the
//! contiguous TIFF layout imfilter writes.

pub mod decode;
pub mod encode;
pub mod fits;
pub mod hdf5;
pub mod ifd;
pub mod lzw;
pub mod mapped;
pub mod source;
pub mod stamp;
pub mod write;

use std::cmp::Ordering;
use std::fs;
use std::marker::PhantomData;
use std::ops::{Deref, Range};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

use crate::pixel::{DType, Pixel};
use ifd::ByteOrder;
use mapped::ReadMap;
use source::{Bytes, Keep, RawPage, Source};

/// Width, height and sample type shared by every page of a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageFormat {
    pub width: usize,
    pub height: usize,
    pub dtype: DType,
}

impl PageFormat {
    pub fn pixels(&self) -> usize {
        self.width * self.height
    }

    /// Bytes one page's pixels take.
    pub fn page_bytes(&self) -> u64 {
        (self.pixels() * self.dtype.bytes()) as u64
    }
}

impl std::fmt::Display for PageFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{} {}", self.width, self.height, self.dtype)
    }
}

/// Whether the stack came from one file or from a directory of files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackKind {
    File,
    Directory,
    /// A TIFF read from standard input (`-`).
    Stdin,
    /// Several paths given one by one (a shell glob): one stack, in the order given.
    Files,
    /// One dataset of an HDF5 (NeXus) file: `path` is `FILE:/DATASET`.
    Hdf5,
}

/// How a page is stored: its TIFF compression code, and tiles or strips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Storage {
    pub compression: u16,
    pub tiled: bool,
}

impl std::fmt::Display for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.compression {
            1 => "uncompressed".to_string(),
            code => format!("{}-compressed", source::compression_name(code)),
        };
        let layout = if self.tiled { "tiles" } else { "strips" };
        write!(f, "{name}, in {layout}")
    }
}

/// A page of the stack: which file, which page in it.
#[derive(Debug, Clone, Copy)]
struct PageRef {
    source: usize,
    page: usize,
}

/// An input stack, every file mapped, every page checked to share one format.
pub struct Stack {
    pub path: PathBuf,
    pub kind: StackKind,
    pub format: PageFormat,
    sources: Vec<Source>,
    pages: Vec<PageRef>,
    /// For an HDF5 dataset with an image_key: how many projections, flats and darks it marks.
    pub keys: Option<hdf5::KeyCounts>,
}

impl Stack {
    /// Opens a multi-page TIFF file or a directory of TIFF files (natural order).
    pub fn open(path: &Path) -> Result<Stack> {
        if hdf5::is_hdf5_input(path) {
            return hdf5::open(path, &hdf5::Keys::Auto, hdf5::Role::Projection);
        }
        if path == Path::new(source::STDIN) {
            let stdin = Source::open(path, Keep::Mapped)?;
            return Stack::from_sources(path, StackKind::Stdin, vec![stdin]);
        }
        let meta =
            fs::metadata(path).with_context(|| format!("{}: cannot open", path.display()))?;
        let (kind, files, keep) = if meta.is_dir() {
            (StackKind::Directory, list_tiffs(path)?, Keep::WhileReading)
        } else {
            (StackKind::File, vec![path.to_path_buf()], Keep::Mapped)
        };
        let sources = files
            .iter()
            .map(|f| Source::open(f, keep))
            .collect::<Result<Vec<_>>>()?;
        Stack::from_sources(path, kind, sources)
    }

    /// Opens the input paths of a command: one ([`Stack::open`]), or several files and
    /// directories as one stack in the order given.
    pub fn open_many(paths: &[PathBuf]) -> Result<Stack> {
        if let [one] = paths {
            return Stack::open(one);
        }
        if paths.iter().any(|p| p == Path::new(source::STDIN)) {
            bail!(crate::cli::UsageError(
                "- (stdin) cannot be one of several inputs".into()
            ));
        }
        // Several inputs are a shell glob's files. A directory among them, or files from
        // several directories, is almost always a glob meant for another option that ran
        // into the input (`--flat Flat_Before/*.tif Tomo/` gives --flat the first flat only):
        // refused, rather than flats filtered as projections.
        if let Some(dir) = paths.iter().find(|p| p.is_dir()) {
            bail!(crate::cli::UsageError(format!(
                "{}: a directory among several inputs; give one directory, or files. If files \
                 before it are flats or darks (--flat Flat_Before/*.tif), give their directory \
                 instead: --flat Flat_Before/",
                dir.display()
            )));
        }
        let parent = |p: &PathBuf| p.parent().map(Path::to_path_buf).unwrap_or_default();
        if let Some(other) = paths.iter().find(|p| parent(p) != parent(&paths[0])) {
            bail!(crate::cli::UsageError(format!(
                "the inputs come from more than one directory ({} and {}): one stack's images \
                 come from one place. If the first are flats or darks (--flat \
                 Flat_Before/*.tif), give their directory instead: --flat Flat_Before/",
                paths[0].display(),
                other.display()
            )));
        }
        let mut stack = Stack::open_pooled(paths)?;
        stack.kind = StackKind::Files;
        Ok(stack)
    }

    /// Keeps only the images `slice` selects, in its order (`--pages`).
    pub fn select_pages(&mut self, slice: &crate::cli::PageSlice) -> Result<()> {
        let keep = slice.indices(self.pages.len());
        if keep.is_empty() {
            bail!(crate::cli::UsageError(format!(
                "--pages {slice} selects none of the {} images of {}",
                self.pages.len(),
                self.path.display()
            )));
        }
        self.pages = keep.into_iter().map(|i| self.pages[i]).collect();
        Ok(())
    }

    /// How image `index` is stored in its file.
    pub fn page_storage(&self, index: usize) -> Storage {
        let at = self.pages[index];
        let raw = &self.sources[at.source].pages[at.page];
        Storage {
            compression: raw.compression,
            tiled: raw.tile.is_some(),
        }
    }

    /// Whether image `index` is the one page of its file.
    pub fn page_is_whole_file(&self, index: usize) -> bool {
        self.sources[self.pages[index].source].pages.len() == 1
    }

    /// Opens several paths (files or directories) as one pooled stack, as for `--flat a b`.
    pub fn open_pooled(paths: &[PathBuf]) -> Result<Stack> {
        let mut sources = Vec::new();
        for path in paths {
            sources.extend(Stack::open(path)?.sources);
        }
        let first = paths
            .first()
            .ok_or_else(|| anyhow!("no input path given"))?;
        Stack::from_sources(first, StackKind::File, sources)
    }

    fn from_sources(path: &Path, kind: StackKind, sources: Vec<Source>) -> Result<Stack> {
        let mut pages = Vec::new();
        let mut format = None;
        let mut first_at = String::new();
        for (s, source) in sources.iter().enumerate() {
            for (p, raw) in source.pages.iter().enumerate() {
                let here = || format!("{} page {p}", source.path.display());
                let this = page_format(raw).map_err(|why| anyhow!("{}: {why}", here()))?;
                match format {
                    None => {
                        format = Some(this);
                        first_at = here();
                    }
                    Some(f) if f != this => bail!(
                        "{}: is {this}, but {first_at} is {f}; every page of a stack must \
                         have the same width, height and type",
                        here()
                    ),
                    Some(_) => {}
                }
                check_supported_storage(raw).map_err(|why| anyhow!("{}: {why}", here()))?;
                pages.push(PageRef { source: s, page: p });
            }
        }
        let format = format.ok_or_else(|| anyhow!("{}: no images", path.display()))?;
        Ok(Stack {
            path: path.to_path_buf(),
            kind,
            format,
            sources,
            pages,
            keys: None,
        })
    }

    pub fn len(&self) -> usize {
        self.pages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// The files the stack reads, in page order.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.sources.iter().map(|s| s.path.as_path())
    }

    /// Each file as it was when the stack opened it: what its pages were read from. `None`
    /// for standard input's unnamed spool.
    pub fn file_stamps(&self) -> impl Iterator<Item = Option<&stamp::FileStamp>> {
        self.sources.iter().map(|s| s.stamp.as_ref())
    }

    /// `Err` naming the first file that is no longer what was read (see
    /// [`Source::check_unchanged`]), or that was cut short under its map.
    pub fn check_unchanged(&self) -> Result<()> {
        mapped::check_cut_short()?;
        self.sources.iter().try_for_each(Source::check_unchanged)
    }

    /// The first FITS file of the stack, if it reads one (`--in-place` cannot write FITS).
    pub fn fits_file(&self) -> Option<&Path> {
        self.sources
            .iter()
            .find(|s| s.fits)
            .map(|s| s.path.as_path())
    }

    /// The file name each page came from (for directory outputs that keep input names).
    pub fn page_file(&self, index: usize) -> &Path {
        &self.sources[self.pages[index].source].path
    }

    /// Tags of the first page worth keeping in outputs (resolution).
    pub fn carried_tags(&self) -> Vec<(u16, encode::Field)> {
        self.sources
            .first()
            .map(|s| s.resolution.clone())
            .unwrap_or_default()
    }

    /// The history imfilter wrote into the (first) file, as JSON text.
    pub fn embedded_history(&self) -> Option<&str> {
        self.sources.first().and_then(|s| s.history.as_deref())
    }

    /// The ImageDescription of the stack's first file.
    pub fn description(&self) -> Option<&str> {
        self.sources.first().and_then(|s| s.description.as_deref())
    }

    /// Page `index`: the mapped file bytes themselves when the page is stored uncompressed,
    /// contiguous, aligned and in native byte order; otherwise decoded into `scratch`. `T`
    /// must be the stack's dtype.
    pub fn page<'a, T: Pixel>(
        &'a self,
        index: usize,
        scratch: &'a mut Vec<T>,
    ) -> Result<Page<'a, T>> {
        let at = self.pages[index];
        let source = &self.sources[at.source];
        let raw = &source.pages[at.page];
        let bytes = source.bytes()?;
        if let Some(range) = self.in_place_range::<T>(index)
            && bytemuck::try_cast_slice::<u8, T>(&bytes[range.clone()]).is_ok()
        {
            return Ok(match bytes {
                Bytes::Kept(kept) => Page::Borrowed(bytemuck::cast_slice(&kept[range])),
                Bytes::Fresh(map) => Page::Mapped(map, range, PhantomData),
            });
        }
        let len = self.format.pixels() * std::mem::size_of::<T>();
        scratch.clear();
        scratch
            .try_reserve_exact(self.format.pixels())
            .map_err(|_| {
                anyhow!(
                    "{}: page {}: cannot allocate {} MiB to decode it: out of memory",
                    source.path.display(),
                    at.page,
                    len >> 20
                )
            })?;
        scratch.resize(self.format.pixels(), T::default());
        let dst: &mut [u8] = bytemuck::cast_slice_mut(scratch.as_mut_slice());
        if let Some(decoder) = &source.decoder
            && raw.chunks.is_empty()
        {
            decoder
                .decode(&bytes, at.page, dst)
                .map_err(|why| anyhow!("{}: {why}", source.path.display()))?;
            return Ok(Page::Borrowed(scratch));
        }
        if raw.compression != 1 || raw.tile.is_some() {
            decode::decode_page(&bytes, source.byte_order, raw, dst)
                .map_err(|why| anyhow!("{}: page {}: {why}", source.path.display(), at.page))?;
            return Ok(Page::Borrowed(scratch));
        }
        let mut filled = 0;
        for &(offset, count) in &raw.chunks {
            let take = (count as usize).min(len - filled);
            dst[filled..filled + take].copy_from_slice(&bytes[offset as usize..][..take]);
            filled += take;
        }
        if source.byte_order != ByteOrder::native() {
            scratch.iter_mut().for_each(|v| *v = v.swap_bytes());
        }
        Ok(Page::Borrowed(scratch))
    }

    /// The memory a worker holds to read one page: nothing for pages read in place from a
    /// map; a page for pages decoded or copied; two for LZW, Deflate, LZMA and ZSTD, which are
    /// decoded into a buffer of their own first (see `decode`); for pages a source's decoder
    /// reads, what the decoder says.
    pub fn read_buffer_bytes(&self) -> u64 {
        let page = self.format.page_bytes();
        let copies = |raw: &RawPage, order: ByteOrder| match raw.compression {
            code if decode::decodes_whole_chunks(code) => 2,
            _ if raw.tile.is_some()
                || order != ByteOrder::native()
                || raw.contiguous_offset().is_none() =>
            {
                1
            }
            _ => 0,
        };
        let most = self
            .pages
            .iter()
            .map(|at| {
                let source = &self.sources[at.source];
                let raw = &source.pages[at.page];
                match &source.decoder {
                    Some(decoder) if raw.chunks.is_empty() => decoder.page_buffers(),
                    _ => copies(raw, source.byte_order),
                }
            })
            .max()
            .unwrap_or(0);
        page * most
    }

    /// Page `index` as the kept map's bytes themselves, when it is stored uncompressed,
    /// contiguous, aligned and in native byte order; None when it has to be decoded or its
    /// file is mapped only while it is read.
    pub fn page_in_place<T: Pixel>(&self, index: usize) -> Option<&[T]> {
        let range = self.in_place_range::<T>(index)?;
        let bytes = self.sources[self.pages[index].source].kept_bytes()?;
        bytemuck::try_cast_slice(&bytes[range]).ok()
    }

    /// Whether every page can be read in place ([`Stack::page_in_place`]): any part of any
    /// page is then a slice of a map, without decoding.
    pub fn is_mapped_in_place(&self) -> bool {
        crate::with_pixel_type!(self.format.dtype, T => {
            (0..self.len()).all(|i| self.page_in_place::<T>(i).is_some())
        })
    }

    /// Where page `index`'s pixels lie in its file, when they can be read without decoding.
    fn in_place_range<T: Pixel>(&self, index: usize) -> Option<Range<usize>> {
        assert_eq!(
            T::DTYPE,
            self.format.dtype,
            "invariant: page read as the stack's dtype"
        );
        let at = self.pages[index];
        let source = &self.sources[at.source];
        if source.byte_order != ByteOrder::native() {
            return None;
        }
        // None for a page without chunks, which its source's decoder reads.
        let start = source.pages[at.page].contiguous_offset()? as usize;
        Some(start..start + self.format.pixels() * std::mem::size_of::<T>())
    }
}

/// One page's pixels, as [`Stack::page`] found them.
pub enum Page<'a, T> {
    /// In a kept map, or decoded into the caller's scratch buffer.
    Borrowed(&'a [T]),
    /// In a map of a directory's file made for this read, unmapped when dropped.
    Mapped(ReadMap, Range<usize>, PhantomData<T>),
}

impl<T: Pixel> Deref for Page<'_, T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            Page::Borrowed(pixels) => pixels,
            // Alignment was checked when the page was made.
            Page::Mapped(map, range, _) => bytemuck::cast_slice(&map.bytes()[range.clone()]),
        }
    }
}

fn page_format(raw: &RawPage) -> Result<PageFormat, String> {
    let dtype = raw.dtype()?;
    let (width, height) = (usize::try_from(raw.width), usize::try_from(raw.height));
    match (width, height) {
        (Ok(width), Ok(height)) => Ok(PageFormat {
            width,
            height,
            dtype,
        }),
        _ => Err(format!(
            "image of {}x{} pixels is too large",
            raw.width, raw.height
        )),
    }
}

/// Refuses, up front, pages whose compression the decoder cannot undo losslessly.
fn check_supported_storage(raw: &RawPage) -> Result<(), String> {
    if !decode::can_decode(raw.compression) {
        return Err(format!(
            "{} compression is not supported (supported: none, LZW, Deflate, PackBits, ZSTD, \
             LZMA, JPEG)",
            raw.compression_name()
        ));
    }
    if raw.compression == 7 && (raw.bits_per_sample != 8 || raw.sample_format != 1) {
        return Err(format!(
            "JPEG with {}-bit samples is not supported (JPEG pages are read with 8-bit samples)",
            raw.bits_per_sample
        ));
    }
    Ok(())
}

/// The TIFF (and FITS) files of a directory in natural order (`img_2` before `img_10`); hidden
/// files and other extensions are skipped.
pub fn list_tiffs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in
        fs::read_dir(dir).with_context(|| format!("{}: cannot list directory", dir.display()))?
    {
        let entry = entry.with_context(|| format!("{}: cannot list directory", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !(is_tiff_name(&name) || fits::is_fits_name(&name)) {
            continue;
        }
        if entry.path().is_file() {
            files.push(entry.path());
        }
    }
    if files.is_empty() {
        bail!(
            "{}: directory has no .tif or .tiff files (nor .fits, .fit, .fts)",
            dir.display()
        );
    }
    files.sort_by(|a, b| natural_order(a, b));
    Ok(files)
}

fn natural_order(a: &Path, b: &Path) -> Ordering {
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    natord::compare(&name(a), &name(b))
}

pub fn is_tiff_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".tif") || lower.ends_with(".tiff")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_puts_2_before_10() {
        let mut v: Vec<PathBuf> = ["p_10.tif", "p_2.tif", "p_1.tif"]
            .iter()
            .map(PathBuf::from)
            .collect();
        v.sort_by(|a, b| natural_order(a, b));
        assert_eq!(
            v,
            ["p_1.tif", "p_2.tif", "p_10.tif"]
                .iter()
                .map(PathBuf::from)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn tiff_names_in_any_case() {
        assert!(is_tiff_name("A.TIF") && is_tiff_name("b.Tiff") && is_tiff_name("c.tif"));
        assert!(!is_tiff_name("d.png") && !is_tiff_name("tif"));
    }
}
