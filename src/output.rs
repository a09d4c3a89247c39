//! Where a result goes, and how it gets there without ever leaving a partial file.
//!
//! Every output is first a temporary file named `.NAME.imfilter-XXXXXX` in the target
//! directory, created at its final size (fallocate) and mapped writable. Only when every image
//! succeeded is it synced to disk and renamed into place; until then, an error or a stop drops
//! the temporary file, which deletes it. A new output directory is built the same way: a
//! temporary directory renamed into place as a whole.
//!
//! A multi-page output stays mapped for the whole run, one `&mut` slice per image. The files of
//! a directory output are mapped one at a time, by the worker that computes their image: every
//! map is an entry of the process's map table, which Linux limits (`vm.max_map_count`, 65,530
//! by default), and a directory of tens of thousands of results must not run into it.

use std::fs::{self, File};
use std::io::{Seek, SeekFrom};
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use rayon::prelude::*;
use tempfile::{NamedTempFile, TempDir, TempPath};

use crate::pixel::Pixel;
use crate::stack::PageFormat;
use crate::stack::mapped::{self, WriteMap};
use crate::stack::write::{Compression, Layout, WriteOptions};

/// What the user asked the result to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// One multi-page TIFF.
    File(PathBuf),
    /// One single-page TIFF per image, named `names[i]`.
    Directory { dir: PathBuf, names: Vec<String> },
    /// One multi-page TIFF on standard output, for pipelines.
    Stdout,
}

impl Destination {
    pub fn display_path(&self) -> &Path {
        match self {
            Destination::File(p) => p,
            Destination::Directory { dir, .. } => dir,
            Destination::Stdout => Path::new("<stdout>"),
        }
    }

    /// The final paths of every file this destination writes.
    pub fn file_paths(&self) -> Vec<PathBuf> {
        match self {
            Destination::File(p) => vec![p.clone()],
            Destination::Directory { dir, names } => names.iter().map(|n| dir.join(n)).collect(),
            Destination::Stdout => Vec::new(),
        }
    }
}

/// An output file being computed. It keeps no file descriptor open: a directory of thousands
/// of images must not run into the open-file limit (1024 in most sessions), so the file is
/// reopened by its path to map, compress or sync it.
struct OutputFile {
    final_path: PathBuf,
    home: Home,
    layout: Layout,
    /// The mode the umask gave the file, put back by `settle` before the rename: until then its
    /// owner must be able to reopen it for reading and writing, which a umask such as 0222
    /// would not allow.
    restore_mode: Option<fs::Permissions>,
    pixels: Pixels,
}

/// Where an output file's pixels are computed.
enum Pixels {
    /// Mapped for the whole run: the pixel block of a multi-page file or, with compression, of
    /// an unnamed staging file (alive while mapped) compressed into the output by `commit`.
    Mapped(WriteMap),
    /// The one image of a directory's file, mapped (or, with compression, computed in memory
    /// and compressed at once) only while a worker computes it: see [`OutputPage`]. `written`
    /// once its page is closed: the file is allocated and its directory written beforehand, so
    /// an image never computed would otherwise commit as a valid-looking image of zeros.
    OnDemand { written: bool },
}

/// Where an output file is until it is committed.
enum Home {
    /// A temporary file beside the final path, removed if dropped.
    Temporary(TempPath, FileId),
    /// A file inside a new temporary directory, where files have their final names already.
    InNewDirectory(PathBuf, FileId),
    /// The unnamed file behind stdout, which only its descriptor reaches.
    Unnamed(File),
}

/// Which file a path named when imfilter created it: a path reopened later must still name
/// that file (in a shared directory someone could have put another file or a link there).
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(file: &File) -> std::io::Result<FileId> {
        let meta = file.metadata()?;
        Ok(FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

impl Home {
    /// A read-write descriptor (its owner can read and write it until `commit` settles it).
    /// Refuses a link, or another file, found at its path.
    fn reopen(&self, final_path: &Path) -> Result<File> {
        let (path, id) = match self {
            Home::Unnamed(f) => return f.try_clone().context("<stdout>: cannot reopen"),
            Home::Temporary(p, id) => (&**p, *id),
            Home::InNewDirectory(p, id) => (p.as_path(), *id),
        };
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .with_context(|| format!("{}: cannot reopen the output", final_path.display()))?;
        if FileId::of(&file).ok() != Some(id) {
            bail!(
                "{}: the temporary file {} was replaced while imfilter was running",
                final_path.display(),
                path.display()
            );
        }
        Ok(file)
    }
}

/// Whether `commit` waits for the result to be on disk before renaming it into place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync, then rename: after a power cut the output path holds the old file or the whole
    /// new one.
    WaitForDisk,
    /// Rename at once and let the kernel write the data back later (`--no-sync`): a power cut
    /// within the next half minute or so can leave a file of the right size with missing
    /// pixels. A crash of imfilter itself, or a kill, still cannot.
    NoWait,
}

/// A result being written: mapped temporary files, not yet visible at the output path.
pub struct PendingOutput {
    files: Vec<OutputFile>,
    /// A new output directory, built aside and renamed into place by `commit`.
    new_dir: Option<(TempDir, PathBuf, fs::Permissions)>,
    overwrite: bool,
}

const TEMP_MARK: &str = ".imfilter-";

impl PendingOutput {
    /// Creates the output files for `pages` images of `format`, allocated to their full
    /// uncompressed size, and maps a multi-page one. Refuses to replace
    /// an existing file unless `overwrite`.
    pub fn create(
        destination: &Destination,
        format: PageFormat,
        pages: usize,
        overwrite: bool,
        options: &WriteOptions,
    ) -> Result<PendingOutput> {
        let (files, new_dir) = match destination {
            Destination::Stdout => {
                // Built whole in an unnamed file first: a TIFF's directories point backwards
                // and forwards, so it cannot be streamed while it is computed.
                let file =
                    tempfile::tempfile().context("<stdout>: cannot create a temporary file")?;
                let layout = Layout::new(pages, format, options);
                let home = Home::Unnamed(
                    file.try_clone()
                        .context("<stdout>: cannot create a temporary file")?,
                );
                let out = OutputFile::mapped(Path::new("<stdout>"), &file, home, &layout, None)?;
                (vec![out], None)
            }
            Destination::File(path) => {
                let layout = Layout::new(pages, format, options);
                let parent = parent_dir(path)?;
                let (file, home) = OutputFile::temporary(path, &parent, overwrite)?;
                let out = OutputFile::mapped(path, &file, home, &layout, Some(&parent))?;
                (vec![out], None)
            }
            Destination::Directory { dir, names } => {
                assert_eq!(names.len(), pages, "invariant: one name per image");
                let layout = Layout::new(1, format, options);
                if dir.is_dir() {
                    let files = names
                        .iter()
                        .map(|name| {
                            let path = dir.join(name);
                            let (file, home) = OutputFile::temporary(&path, dir, overwrite)?;
                            OutputFile::on_demand(&path, &file, home, &layout)
                        })
                        .collect::<Result<Vec<_>>>()?;
                    (files, None)
                } else {
                    refuse_existing(dir, overwrite)?;
                    let parent = parent_dir(dir)?;
                    let temp_dir = tempfile::Builder::new()
                        .prefix(&temp_prefix(dir))
                        .permissions(fs::Permissions::from_mode(0o777))
                        .tempdir_in(&parent)
                        .with_context(|| {
                            format!("{}: cannot create a directory there", parent.display())
                        })?;
                    // The mode the umask gives it, which it gets back once filled: a umask
                    // that takes away the owner's write permission must not stop imfilter
                    // from creating the files in it.
                    let mode = fs::metadata(temp_dir.path())
                        .with_context(|| format!("{}: cannot create", dir.display()))?
                        .permissions();
                    if let Some(wider) = with_owner(&mode, OWNER_WRITE_SEARCH) {
                        fs::set_permissions(temp_dir.path(), wider)
                            .with_context(|| format!("{}: cannot create", dir.display()))?;
                    }
                    // Inside the new directory files have their final names already.
                    let files = names
                        .iter()
                        .map(|name| {
                            let path = temp_dir.path().join(name);
                            let file = File::create_new(&path)
                                .with_context(|| format!("{}: cannot create", path.display()))?;
                            let id = FileId::of(&file)
                                .with_context(|| format!("{}: cannot create", path.display()))?;
                            let home = Home::InNewDirectory(path, id);
                            OutputFile::on_demand(&dir.join(name), &file, home, &layout)
                        })
                        .collect::<Result<Vec<_>>>()?;
                    (files, Some((temp_dir, dir.clone(), mode)))
                }
            }
        };
        Ok(PendingOutput {
            files,
            new_dir,
            overwrite,
        })
    }

    /// Where each image's result goes, in stack order, across every output file: one
    /// disjoint `&mut` slice of a mapped output, or one file of a directory.
    pub fn pages_mut<T: Pixel>(&mut self, page_len: usize) -> Vec<OutputPage<'_, T>> {
        let mut pages = Vec::new();
        for f in &mut self.files {
            if matches!(f.pixels, Pixels::OnDemand { .. }) {
                debug_assert_eq!(f.layout.pages, 1);
                pages.push(OutputPage(Target::File(f)));
            } else if let Pixels::Mapped(map) = &mut f.pixels {
                let mine = map.pages_mut::<T>(page_len);
                debug_assert_eq!(mine.len(), f.layout.pages);
                pages.extend(mine.into_iter().map(|p| OutputPage(Target::Slice(p))));
            }
        }
        pages
    }

    /// Writes compressed multi-page files, syncs every file (with [`Durability::WaitForDisk`]) and
    /// renames them into place, so after a crash the output path holds either the old file or
    /// the whole new one.
    pub fn commit(self, durability: Durability) -> Result<()> {
        let files = self
            .files
            .into_par_iter()
            .map(OutputFile::finish)
            .collect::<Result<Vec<_>>>()?;
        if let [
            FinishedFile {
                home: Home::Unnamed(file),
                ..
            },
        ] = &files[..]
        {
            // stdout: the result goes there once complete.
            let mut file = file;
            file.seek(SeekFrom::Start(0))
                .context("<stdout>: cannot rewind")?;
            std::io::copy(&mut file, &mut std::io::stdout().lock())
                .context("<stdout>: cannot write")?;
            return Ok(());
        }
        let durable = durability == Durability::WaitForDisk;
        settle_files(&files, durable)?;
        if let Some((temp_dir, final_dir, mode)) = self.new_dir {
            drop(files);
            let writable = with_owner(&mode, OWNER_WRITE_SEARCH);
            fs::set_permissions(temp_dir.path(), mode)
                .with_context(|| format!("{}: cannot set its mode", final_dir.display()))?;
            if durable {
                // Its entries, before it appears under its final name.
                sync_dir(temp_dir.path());
            }
            let built = temp_dir.keep();
            if let Err(e) = rename_no_replace(&built, &final_dir, self.overwrite) {
                if let Some(writable) = writable {
                    let _ = fs::set_permissions(&built, writable);
                }
                let _ = fs::remove_dir_all(&built);
                return Err(e);
            }
            if durable {
                sync_dir(&parent_dir(&final_dir)?);
            }
            return Ok(());
        }
        let mut dirs = Vec::new();
        for f in files {
            let Home::Temporary(temp, _) = f.home else {
                unreachable!("invariant: files outside a new directory are temporary");
            };
            let persisted = if self.overwrite {
                temp.persist(&f.final_path).map_err(|e| e.error)
            } else {
                temp.persist_noclobber(&f.final_path).map_err(|e| e.error)
            };
            persisted.with_context(|| {
                format!(
                    "{}: cannot move the result into place",
                    f.final_path.display()
                )
            })?;
            dirs.push(parent_dir(&f.final_path)?);
        }
        if durable {
            dirs.dedup();
            dirs.iter().for_each(|d| sync_dir(d));
        }
        Ok(())
    }
}

impl OutputFile {
    /// A temporary file in `dir` for an output at `final_path` (refused if `final_path`
    /// exists, unless `overwrite`).
    fn temporary(final_path: &Path, dir: &Path, overwrite: bool) -> Result<(File, Home)> {
        refuse_existing(final_path, overwrite)?;
        let (file, temp) = temp_file_in(dir, final_path)?.into_parts();
        let id = FileId::of(&file)
            .with_context(|| format!("{}: cannot create", final_path.display()))?;
        Ok((file, Home::Temporary(temp, id)))
    }

    /// A multi-page output: allocated, its directories written and its pixel block mapped for
    /// the whole run. With compression the block lives in an unnamed staging file in
    /// `staging_dir` (beside the output, so it is on a disk with room) and `file` stays empty
    /// until `finish`. Neither descriptor is kept.
    fn mapped(
        final_path: &Path,
        file: &File,
        home: Home,
        layout: &Layout,
        staging_dir: Option<&Path>,
    ) -> Result<OutputFile> {
        let named = || final_path.display().to_string();
        let restore_mode = owner_read_write(file, final_path)?;
        let staging = match (layout_compressed(layout), staging_dir) {
            (false, _) => None,
            (true, Some(dir)) => Some(tempfile::tempfile_in(dir)),
            (true, None) => Some(tempfile::tempfile()),
        }
        .transpose()
        .with_context(|| format!("{}: cannot create a staging file", named()))?;
        let mapped_file = staging.as_ref().unwrap_or(file);
        allocate(mapped_file, layout, final_path)?;
        let map = WriteMap::new(mapped_file, layout.data_offset, layout.data_len() as usize)
            .with_context(|| format!("{}: cannot map the output", named()))?;
        Ok(OutputFile {
            final_path: final_path.to_path_buf(),
            home,
            layout: layout.clone(),
            restore_mode,
            pixels: Pixels::Mapped(map),
        })
    }

    /// One file of a directory output, allocated (and its directory written), mapped later by
    /// the worker that computes its image. A compressed one is allocated at its uncompressed
    /// size too, so that a full disk is an error before the work starts, and cut to its
    /// compressed size once written.
    fn on_demand(
        final_path: &Path,
        file: &File,
        home: Home,
        layout: &Layout,
    ) -> Result<OutputFile> {
        let restore_mode = owner_read_write(file, final_path)?;
        allocate(file, layout, final_path)?;
        Ok(OutputFile {
            final_path: final_path.to_path_buf(),
            home,
            layout: layout.clone(),
            restore_mode,
            pixels: Pixels::OnDemand { written: false },
        })
    }

    /// Writes `pixels`, compressed, into the output file, and cuts off what its allocation
    /// left beyond them.
    fn write_compressed(&self, pixels: &[u8]) -> Result<()> {
        let file = self.home.reopen(&self.final_path)?;
        self.layout
            .write_compressed(pixels, self.layout.options.compression, &file)
            .and_then(|end| file.set_len(end))
            .with_context(|| format!("{}: cannot write", self.final_path.display()))
    }

    /// Puts the pixels into the file and unmaps it. A compressed output is compressed from its
    /// staging map, in parallel. A mapped output needs no write: its pixels are already the
    /// file's page cache, which `fsync` writes out (on Linux that covers pages dirtied through
    /// a shared map, so no msync is needed). Unmapping first matters: writing back a page that
    /// is still mapped write-protects it in the page table and interrupts every other CPU to
    /// flush its TLB, one page at a time (20 % of the samples of a 1,024-file run).
    fn finish(self) -> Result<FinishedFile> {
        match &self.pixels {
            Pixels::Mapped(map) if layout_compressed(&self.layout) => {
                self.write_compressed(map.bytes())?
            }
            Pixels::OnDemand { written: false } => bail!(
                "{}: invariant: its image was never written",
                self.final_path.display()
            ),
            _ => {}
        }
        drop(self.pixels);
        Ok(FinishedFile {
            final_path: self.final_path,
            home: self.home,
            restore_mode: self.restore_mode,
        })
    }
}

/// Where one image's result goes: a slice of a mapped multi-page output, or one file of a
/// directory output, mapped when the worker computing the image opens it.
pub struct OutputPage<'a, T>(Target<'a, T>);

enum Target<'a, T> {
    Slice(&'a mut [T]),
    File(&'a mut OutputFile),
}

impl<'a, T: Pixel> OutputPage<'a, T> {
    /// The image's pixels, writable until [`OpenPage::close`].
    pub fn open(self) -> Result<OpenPage<'a, T>> {
        let file = match self.0 {
            Target::Slice(pixels) => return Ok(OpenPage(Open::Slice(pixels))),
            Target::File(file) => file,
        };
        let pixels = file.layout.format.pixels();
        if layout_compressed(&file.layout) {
            return Ok(OpenPage(Open::Buffer(vec![T::default(); pixels], file)));
        }
        let named = || format!("{}: cannot map the output", file.final_path.display());
        let handle = file.home.reopen(&file.final_path)?;
        let map = WriteMap::new(
            &handle,
            file.layout.data_offset,
            file.layout.data_len() as usize,
        )
        .with_context(named)?;
        Ok(OpenPage(Open::Map(map, file)))
    }
}

/// One image's writable pixels (see [`OutputPage::open`]).
pub struct OpenPage<'a, T>(Open<'a, T>);

enum Open<'a, T> {
    Slice(&'a mut [T]),
    /// A directory's file, unmapped when closed (or dropped).
    Map(WriteMap, &'a mut OutputFile),
    /// A compressed directory file's image, compressed into it when closed.
    Buffer(Vec<T>, &'a mut OutputFile),
}

impl<T: Pixel> OpenPage<'_, T> {
    /// Done with the image: a compressed one is written, a mapped file unmapped.
    pub fn close(self) -> Result<()> {
        let file = match self.0 {
            Open::Slice(_) => return Ok(()),
            Open::Map(map, file) => {
                drop(map);
                file
            }
            Open::Buffer(pixels, file) => {
                file.write_compressed(bytemuck::cast_slice(&pixels))?;
                file
            }
        };
        file.pixels = Pixels::OnDemand { written: true };
        Ok(())
    }
}

impl<T: Pixel> Deref for OpenPage<'_, T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match &self.0 {
            Open::Slice(pixels) => pixels,
            Open::Map(map, _) => bytemuck::cast_slice(map.bytes()),
            Open::Buffer(pixels, _) => pixels,
        }
    }
}

impl<T: Pixel> DerefMut for OpenPage<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match &mut self.0 {
            Open::Slice(pixels) => pixels,
            Open::Map(map, _) => map.pixels_mut(),
            Open::Buffer(pixels, _) => pixels,
        }
    }
}

/// Lets the owner read and write `file` while imfilter works on it, whatever the umask left;
/// returns the mode to put back before the file is renamed into place.
fn owner_read_write(file: &File, final_path: &Path) -> Result<Option<fs::Permissions>> {
    let named = || format!("{}: cannot create", final_path.display());
    let mode = file.metadata().with_context(named)?.permissions();
    let Some(wider) = with_owner(&mode, OWNER_READ_WRITE) else {
        return Ok(None);
    };
    file.set_permissions(wider).with_context(named)?;
    Ok(Some(mode))
}

const OWNER_READ_WRITE: u32 = 0o600;
/// What the owner needs of a directory to create and remove files in it.
const OWNER_WRITE_SEARCH: u32 = 0o300;

/// `mode` with the owner's permission `bits` added, when it lacks any of them.
fn with_owner(mode: &fs::Permissions, bits: u32) -> Option<fs::Permissions> {
    (mode.mode() & bits != bits).then(|| fs::Permissions::from_mode(mode.mode() | bits))
}

/// Reserves the file's blocks (see `mapped::preallocate`) and, for an uncompressed layout,
/// writes its TIFF directories around the pixel block the map fills. A compressed file's
/// directories are written with its compressed data (`Layout::write_compressed`).
fn allocate(file: &File, layout: &Layout, final_path: &Path) -> Result<()> {
    let named = || final_path.display().to_string();
    mapped::preallocate(file, layout.file_len).with_context(|| {
        format!(
            "{}: cannot allocate {} bytes for the output",
            named(),
            layout.file_len
        )
    })?;
    if layout_compressed(layout) {
        return Ok(());
    }
    layout
        .write_metadata(file)
        .with_context(|| format!("{}: cannot write", named()))
}

/// An output file whose pixels are all in it, unmapped, waiting to be synced and renamed.
struct FinishedFile {
    final_path: PathBuf,
    home: Home,
    restore_mode: Option<fs::Permissions>,
}

/// Makes a finished file what its output path should hold: synced to disk (if `durable`),
/// then given its final mode, through a descriptor checked to be the file imfilter created. A
/// file replacing another (`--force`, `--in-place`) keeps the old one's mode, so colleagues
/// keep access; a new one gets the umask's back. The mode comes after the sync because the
/// reopen needs the owner's read and write permission, which the final mode may lack.
fn settle(f: &FinishedFile, durable: bool) -> Result<()> {
    let replaced = fs::metadata(&f.final_path).ok().map(|m| m.permissions());
    let mode = replaced.or_else(|| f.restore_mode.clone());
    if !durable && mode.is_none() {
        return Ok(());
    }
    let file = f.home.reopen(&f.final_path)?;
    if durable {
        file.sync_all()
            .with_context(|| format!("{}: cannot sync to disk", f.final_path.display()))?;
    }
    if let Some(mode) = mode {
        file.set_permissions(mode)
            .with_context(|| format!("{}: cannot set its mode", f.final_path.display()))?;
    }
    Ok(())
}

/// [`settle`]s every file; durable, up to 16 at a time. An fsync mostly waits for the disk,
/// and the file system commits the metadata of concurrent fsyncs together: one at a time, a
/// directory of 1,024 results took 2–3 times as long to sync as one file of the same bytes.
fn settle_files(files: &[FinishedFile], durable: bool) -> Result<()> {
    const AT_ONCE: usize = 16;
    let settle_one = |f: &FinishedFile| settle(f, durable);
    if durable && files.len() > 1 {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(files.len().min(AT_ONCE))
            .build();
        // Without threads to be had (a process limit), one at a time below.
        if let Ok(pool) = pool {
            return pool.install(|| files.par_iter().with_max_len(1).try_for_each(settle_one));
        }
    }
    files.iter().try_for_each(settle_one)
}

fn layout_compressed(layout: &Layout) -> bool {
    layout.options.compression != Compression::None
}

fn refuse_existing(path: &Path, overwrite: bool) -> Result<()> {
    if !overwrite && fs::symlink_metadata(path).is_ok() {
        bail!(
            "{}: already exists; use --force to overwrite it",
            path.display()
        );
    }
    Ok(())
}

/// The directory a path lives in, which must exist.
fn parent_dir(path: &Path) -> Result<PathBuf> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        bail!(
            "{}: the directory {} does not exist",
            path.display(),
            parent.display()
        );
    }
    Ok(parent)
}

/// `.NAME.imfilter-`: how every temporary file imfilter writes beside a result begins, so that
/// users can recognise and remove what a killed run left (docs/reliability.md).
pub(crate) fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}{TEMP_MARK}")
}

fn temp_file_in(dir: &Path, final_path: &Path) -> Result<NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&temp_prefix(final_path))
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| anyhow!("{}: cannot create the output: {e}", final_path.display()))
}

fn rename_no_replace(from: &Path, to: &Path, overwrite: bool) -> Result<()> {
    if !overwrite && fs::symlink_metadata(to).is_ok() {
        bail!(
            "{}: appeared while imfilter was running; not replaced",
            to.display()
        );
    }
    fs::rename(from, to)
        .with_context(|| format!("{}: cannot move the result into place", to.display()))
}

/// Makes a rename durable. Best effort: some filesystems refuse to sync a directory.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
