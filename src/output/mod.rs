//! Where a result goes, and how it gets there without ever leaving a partial file.
//!
//! Every output file is first a temporary file named `.NAME.imfilter-XXXXXX` in the target
//! directory, created at its final size (fallocate; a compressed one at a bound its compressed
//! size cannot pass) and mapped writable. Only when every image succeeded is it synced to disk
//! and renamed into place; until then, an error or a stop drops the temporary file, which
//! deletes it. A directory result is always built whole in a temporary directory and put in
//! place in one step: renamed to a free path, or swapped with the directory it replaces
//! (`swap`), which is then removed. One writer at a time holds the output's lock (`lock`), and
//! the history sidecar is committed with the result, under that lock.
//!
//! A multi-page output stays mapped for the whole run, one `&mut` slice per image. The files of
//! a directory output are mapped one at a time, by the worker that computes their image: every
//! map is an entry of the process's map table, which Linux limits (`vm.max_map_count`, 65,530
//! by default), and a directory of tens of thousands of results must not run into it.

pub mod hdf5;
mod lock;
pub mod names;
mod swap;

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{Seek, SeekFrom};
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use rayon::prelude::*;
use tempfile::{NamedTempFile, TempDir, TempPath};

use crate::history::{self, PendingSidecar};
use crate::interrupt;
use crate::pixel::Pixel;
use crate::stack::PageFormat;
use crate::stack::mapped::{self, WriteMap, Writeback};
use crate::stack::write::{Compression, Layout, WriteOptions};
pub use lock::OutputLock;
pub use names::temp_prefix;

/// What the user asked the result to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// One multi-page TIFF.
    File(PathBuf),
    /// One single-page TIFF per image, named `names[i]`, in a directory that is replaced as a
    /// whole. `carried` are entries of the directory being replaced that are not images of
    /// the stack (`--in-place` on a directory with other files in it): they are kept, by a
    /// hard link into the new directory.
    Directory {
        dir: PathBuf,
        names: Vec<OsString>,
        carried: Vec<OsString>,
    },
    /// One multi-page TIFF on standard output, for pipelines.
    Stdout,
    /// One multi-page TIFF written into something that is not a regular file (`-o /dev/null`,
    /// a FIFO): written like standard output, never replaced, no sidecar.
    Stream(PathBuf),
    /// A new HDF5 file holding the result as `dataset` (`-o out.h5:/data`; see `hdf5`).
    /// `named` is the path as given, `FILE:/DATASET`.
    Hdf5 {
        named: PathBuf,
        file: PathBuf,
        dataset: String,
    },
}

impl Destination {
    pub fn display_path(&self) -> &Path {
        match self {
            Destination::File(p) | Destination::Stream(p) => p,
            Destination::Directory { dir, .. } => dir,
            Destination::Stdout => Path::new("<stdout>"),
            Destination::Hdf5 { named, .. } => named,
        }
    }

    /// The final paths of every file this destination writes.
    pub fn file_paths(&self) -> Vec<PathBuf> {
        match self {
            Destination::File(p) => vec![p.clone()],
            Destination::Directory { dir, names, .. } => {
                names.iter().map(|n| dir.join(n)).collect()
            }
            Destination::Stdout | Destination::Stream(_) => Vec::new(),
            Destination::Hdf5 { file, .. } => vec![file.clone()],
        }
    }

    /// The directory this destination replaces as a whole, if any.
    pub fn replaced_directory(&self) -> Option<&Path> {
        match self {
            Destination::Directory { dir, .. } => Some(dir),
            _ => None,
        }
    }

    /// Whether the result is a named file or directory with a history sidecar beside it.
    pub fn keeps_history(&self) -> bool {
        matches!(
            self,
            Destination::File(_) | Destination::Directory { .. } | Destination::Hdf5 { .. }
        )
    }
}

/// An output file being computed. It keeps no file descriptor open: a directory of thousands
/// of images must not run into the open-file limit (1024 in most sessions), so the file is
/// reopened by its path to map, compress or sync it.
struct OutputFile {
    final_path: PathBuf,
    home: Home,
    /// The mode the umask gave the file, put back by `settle` before the rename: until then its
    /// owner must be able to reopen it for reading and writing, which a umask such as 0222
    /// would not allow.
    restore_mode: Option<fs::Permissions>,
    pixels: Pixels,
}

/// Where an output file's pixels are computed, and what the file is.
enum Pixels {
    /// A multi-page TIFF laid out as `layout`, its pixel block mapped for the whole run: in the
    /// file or, with compression, in an unnamed staging file (alive while mapped) compressed
    /// into the output by `finish`.
    Mapped { map: WriteMap, layout: Layout },
    /// The one image of a directory's TIFF file, mapped (or, with compression, computed in
    /// memory and compressed at once) only while a worker computes it: see [`OutputPage`].
    /// `written` once its page is closed: the file is allocated and its directory written
    /// beforehand, so an image never computed would otherwise commit as a valid-looking image
    /// of zeros.
    OnDemand { layout: Layout, written: bool },
    /// The `pages` images of an HDF5 file's dataset, mapped for the whole run (see `hdf5`): in
    /// the file or, with compression, in a staging file that the library compresses into the
    /// file at `finish` (`deferred`).
    Hdf5 {
        map: WriteMap,
        pages: usize,
        deferred: Option<hdf5::Deferred>,
    },
}

/// Where an output file is until it is committed.
enum Home {
    /// A temporary file beside the final path, removed if dropped.
    Temporary(TempPath, FileId),
    /// A file inside a new temporary directory, where files have their final names already.
    InNewDirectory(PathBuf, FileId),
    /// The unnamed file behind a stream (stdout, a device, a FIFO), which only its descriptor
    /// reaches.
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

/// Opens a temporary file imfilter made, again (`write`: for writing too), refusing a link
/// found at its path (`O_NOFOLLOW`): the caller then checks it is the file it made.
pub fn reopen_temporary(path: &Path, write: bool) -> std::io::Result<File> {
    fs::OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
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
        let file = reopen_temporary(path, true)
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

/// A new directory result, built aside and put in place by `commit`.
struct NewDirectory {
    temp: TempDir,
    final_dir: PathBuf,
    /// The mode the umask gives a new directory (one replacing another gets the old one's).
    mode: fs::Permissions,
    carried: Vec<OsString>,
}

/// Where a finished result goes.
enum Target {
    /// Renamed onto `final_path` (a file) or put in place as a directory.
    Named,
    Stdout,
    Stream(PathBuf),
}

/// A result being written: mapped temporary files, not yet visible at the output path.
pub struct PendingOutput {
    files: Vec<OutputFile>,
    new_dir: Option<NewDirectory>,
    target: Target,
    display: PathBuf,
    overwrite: bool,
    sidecar: Option<PendingSidecar>,
    /// Held from before the work until the result and its sidecar are in place.
    _lock: Option<OutputLock>,
}

impl PendingOutput {
    /// Creates the output files for `pages` images of `format`, allocated to their full size,
    /// and maps a multi-page one. Refuses to replace an existing file or a directory that is
    /// not empty unless `overwrite`, and a destination another imfilter run is writing.
    pub fn create(
        destination: &Destination,
        format: PageFormat,
        pages: usize,
        overwrite: bool,
        options: &WriteOptions,
    ) -> Result<PendingOutput> {
        let display = destination.display_path().to_path_buf();
        let mut pending = PendingOutput {
            files: Vec::new(),
            new_dir: None,
            target: Target::Named,
            display: display.clone(),
            overwrite,
            sidecar: None,
            _lock: None,
        };
        match destination {
            Destination::Stdout | Destination::Stream(_) => {
                // Built whole in an unnamed file first: a TIFF's directories point backwards
                // and forwards, so it cannot be streamed while it is computed.
                let named = display.display().to_string();
                let file = tempfile::tempfile()
                    .with_context(|| format!("{named}: cannot create a temporary file"))?;
                let layout = Layout::new(pages, format, options);
                let home = Home::Unnamed(
                    file.try_clone()
                        .with_context(|| format!("{named}: cannot create a temporary file"))?,
                );
                pending
                    .files
                    .push(OutputFile::mapped(&display, &file, home, &layout, None)?);
                pending.target = match destination {
                    Destination::Stream(p) => Target::Stream(p.clone()),
                    _ => Target::Stdout,
                };
            }
            Destination::File(path) => {
                let layout = Layout::new(pages, format, options);
                let parent = parent_dir(path)?;
                pending._lock = Some(OutputLock::acquire(path, &parent)?);
                let (file, home) = OutputFile::temporary(path, &parent, overwrite)?;
                pending.files.push(OutputFile::mapped(
                    path,
                    &file,
                    home,
                    &layout,
                    Some(&parent),
                )?);
            }
            Destination::Hdf5 {
                file: path,
                dataset,
                ..
            } => {
                let parent = parent_dir(path)?;
                pending._lock = Some(OutputLock::acquire(path, &parent)?);
                // The sidecar goes beside the file: out.h5 → out.h5.json.
                pending.display = path.clone();
                let (file, home) = OutputFile::temporary(path, &parent, overwrite)?;
                pending.files.push(hdf5::create(
                    path,
                    dataset,
                    &file,
                    home,
                    (format, pages),
                    options,
                    &parent,
                )?);
            }
            Destination::Directory {
                dir,
                names,
                carried,
            } => {
                assert_eq!(names.len(), pages, "invariant: one name per image");
                let layout = Layout::new(1, format, options);
                let parent = parent_dir(dir)?;
                pending._lock = Some(OutputLock::acquire(dir, &parent)?);
                refuse_existing_directory(dir, overwrite)?;
                let temp = tempfile::Builder::new()
                    .prefix(&temp_prefix(dir))
                    .permissions(fs::Permissions::from_mode(0o777))
                    .tempdir_in(&parent)
                    .with_context(|| {
                        format!("{}: cannot create a directory there", parent.display())
                    })?;
                // The mode the umask gives it, which it gets back once filled: a umask that
                // takes away the owner's write permission must not stop imfilter from creating
                // the files in it.
                let mode = fs::metadata(temp.path())
                    .with_context(|| format!("{}: cannot create", dir.display()))?
                    .permissions();
                if let Some(wider) = with_owner(&mode, OWNER_WRITE_SEARCH) {
                    fs::set_permissions(temp.path(), wider)
                        .with_context(|| format!("{}: cannot create", dir.display()))?;
                }
                // Inside the new directory files have their final names already.
                pending.files = names
                    .iter()
                    .map(|name| {
                        let path = temp.path().join(name);
                        let file = File::create_new(&path)
                            .with_context(|| format!("{}: cannot create", path.display()))?;
                        let id = FileId::of(&file)
                            .with_context(|| format!("{}: cannot create", path.display()))?;
                        let home = Home::InNewDirectory(path, id);
                        OutputFile::on_demand(&dir.join(name), &file, home, &layout)
                    })
                    .collect::<Result<Vec<_>>>()?;
                pending.new_dir = Some(NewDirectory {
                    temp,
                    final_dir: dir.clone(),
                    mode,
                    carried: carried.clone(),
                });
            }
        }
        Ok(pending)
    }

    /// Writes the result's history sidecar under a temporary name now, before the work, so
    /// that a sidecar that cannot be written, or one that is not imfilter's to replace, fails
    /// the run while nothing has changed (see [`history::prepare`]). Streams keep no history.
    pub fn prepare_history(
        &mut self,
        history: &serde_json::Value,
        force: bool,
        durability: Durability,
    ) -> Result<()> {
        if matches!(self.target, Target::Named) {
            self.sidecar = Some(history::prepare(&self.display, history, durability, force)?);
        }
        Ok(())
    }

    /// What sends the finished pages of the uncompressed mapped output file (TIFF or HDF5) to
    /// the disk early (see [`Writeback`]): for a result that is to wait for the disk. None for
    /// a directory's files, mapped one image at a time, for compressed outputs, whose mapped
    /// pages are a staging file, never the result, or for a stream's staging file.
    pub fn writeback(&self) -> Result<Option<Writeback>> {
        if !matches!(self.target, Target::Named) {
            return Ok(None);
        }
        for f in &self.files {
            let map = match &f.pixels {
                Pixels::Mapped { map, layout } if !layout_compressed(layout) => map,
                Pixels::Hdf5 {
                    map,
                    deferred: None,
                    ..
                } => map,
                _ => continue,
            };
            let file = f.home.reopen(&f.final_path)?;
            let writeback = map
                .writeback(&file)
                .with_context(|| format!("{}: cannot reopen the output", f.final_path.display()))?;
            return Ok(Some(writeback));
        }
        Ok(None)
    }

    /// Where each image's result goes, in stack order, across every output file: one
    /// disjoint `&mut` slice of a mapped output, or one file of a directory.
    pub fn pages_mut<T: Pixel>(&mut self, page_len: usize) -> Vec<OutputPage<'_, T>> {
        let mut pages = Vec::new();
        for f in &mut self.files {
            if let Pixels::OnDemand { layout, .. } = &f.pixels {
                debug_assert_eq!(layout.pages, 1);
                pages.push(OutputPage(PageTarget::File(f)));
                continue;
            }
            let (map, count) = match &mut f.pixels {
                Pixels::Mapped { map, layout } => (map, layout.pages),
                Pixels::Hdf5 { map, pages, .. } => (map, *pages),
                Pixels::OnDemand { .. } => continue,
            };
            let mine = map.pages_mut::<T>(page_len);
            debug_assert_eq!(mine.len(), count);
            pages.extend(mine.into_iter().map(|p| OutputPage(PageTarget::Slice(p))));
        }
        pages
    }

    /// Writes compressed multi-page files, syncs every file (with [`Durability::WaitForDisk`]),
    /// puts the result in place and then its sidecar. After a crash the output path holds
    /// either the old result or the whole new one. A stop (SIGINT, SIGTERM, …) is honoured up
    /// to the rename: until then nothing has changed at the output path. So is `verify`,
    /// the caller's last word on whether the result may stand (its inputs unchanged): it runs
    /// after the sync, just before the rename.
    pub fn commit(self, durability: Durability, verify: &dyn Fn() -> Result<()>) -> Result<()> {
        let PendingOutput {
            files,
            new_dir,
            target,
            display,
            overwrite,
            sidecar,
            _lock,
        } = self;
        let files = files
            .into_par_iter()
            .map(OutputFile::finish)
            .collect::<Result<Vec<_>>>()?;
        let ready = || -> Result<()> {
            interrupt::check()?;
            verify()
        };
        ready()?;
        let durable = durability == Durability::WaitForDisk;
        match target {
            Target::Stdout => {
                let mut stdout = std::io::stdout().lock();
                return copy_out(&files, &mut stdout, &display);
            }
            Target::Stream(path) => {
                let mut stream = fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .with_context(|| format!("{}: cannot open for writing", path.display()))?;
                return copy_out(&files, &mut stream, &display);
            }
            Target::Named => {}
        }
        settle_files(&files, durable)?;
        match new_dir {
            Some(new_dir) => {
                drop(files);
                commit_directory(new_dir, overwrite, durable, &ready)?;
            }
            None => {
                let [file] = <[FinishedFile; 1]>::try_from(files)
                    .map_err(|_| anyhow!("invariant: one file outside a new directory"))?;
                commit_file(file, overwrite, durable, &ready)?;
            }
        }
        sidecar.map(PendingSidecar::commit).transpose()?;
        Ok(())
    }
}

/// Copies the one finished unnamed file of a stream destination into `out`.
fn copy_out(files: &[FinishedFile], out: &mut impl std::io::Write, display: &Path) -> Result<()> {
    let Some(FinishedFile {
        home: Home::Unnamed(file),
        ..
    }) = files.first()
    else {
        bail!("invariant: a stream is built in one unnamed file");
    };
    let mut file = file;
    let named = display.display();
    file.seek(SeekFrom::Start(0))
        .with_context(|| format!("{named}: cannot rewind"))?;
    std::io::copy(&mut file, out).with_context(|| format!("{named}: cannot write"))?;
    out.flush()
        .with_context(|| format!("{named}: cannot write"))
}

/// Renames a synced file onto its final path (replacing what is there only if `overwrite`).
fn commit_file(
    f: FinishedFile,
    overwrite: bool,
    durable: bool,
    ready: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let Home::Temporary(temp, _) = f.home else {
        bail!("invariant: a file result is a temporary file beside its path");
    };
    ready()?;
    let persisted = if overwrite {
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
    if durable {
        sync_dir(&parent_dir(&f.final_path)?);
    }
    Ok(())
}

/// Puts a filled new directory in place: renamed onto a free path, or swapped in one step
/// with the directory it replaces, which is then removed.
fn commit_directory(
    new_dir: NewDirectory,
    overwrite: bool,
    durable: bool,
    ready: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let NewDirectory {
        temp,
        final_dir,
        mode,
        carried,
    } = new_dir;
    let named = || final_dir.display().to_string();
    for name in &carried {
        fs::hard_link(final_dir.join(name), temp.path().join(name)).with_context(|| {
            format!(
                "{}: cannot keep {} in the new directory (hard link)",
                named(),
                Path::new(name).display()
            )
        })?;
    }
    let replaced = fs::symlink_metadata(&final_dir)
        .ok()
        .filter(fs::Metadata::is_dir)
        .map(|m| m.permissions());
    let mode = replaced.unwrap_or(mode);
    ready()?;
    if durable {
        // Its entries, before it appears under its final name.
        sync_dir(temp.path());
    }
    fs::set_permissions(temp.path(), mode.clone())
        .with_context(|| format!("{}: cannot set its mode", named()))?;
    let built = temp.keep();
    let placed = place_directory(&built, &final_dir, overwrite);
    if let Err(PlaceError {
        error,
        built_is_ours,
    }) = placed
    {
        if built_is_ours {
            remove_tree(&built, &mode);
        }
        return Err(error);
    }
    if placed.is_ok_and(|p| p == Placed::Swapped) {
        // `built` now names the directory that was replaced.
        if let Ok(old) = fs::symlink_metadata(&built) {
            remove_tree(&built, &old.permissions());
        }
    }
    if durable {
        sync_dir(&parent_dir(&final_dir)?);
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Placed {
    New,
    Swapped,
}

/// Why a new directory was not put in place, and whether the path it was built at still
/// holds it (to be removed) or, after a failed swap back, the user's directory (to be kept).
struct PlaceError {
    error: anyhow::Error,
    built_is_ours: bool,
}

fn place_directory(
    built: &Path,
    final_dir: &Path,
    overwrite: bool,
) -> std::result::Result<Placed, PlaceError> {
    let ours = |error: anyhow::Error| PlaceError {
        error,
        built_is_ours: true,
    };
    let cannot = |e: std::io::Error| {
        ours(anyhow!(e).context(format!(
            "{}: cannot move the result into place",
            final_dir.display()
        )))
    };
    let exists = match swap::rename_no_replace(built, final_dir) {
        Ok(()) => return Ok(Placed::New),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => true,
        // RENAME_NOREPLACE unsupported: a rename to a free path, or the swap below.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => fs::symlink_metadata(final_dir).is_ok(),
        Err(e) => return Err(cannot(e)),
    };
    if !exists {
        fs::rename(built, final_dir).map_err(cannot)?;
        return Ok(Placed::New);
    }
    let appeared = || {
        anyhow!(
            "{}: appeared while imfilter was running; not replaced",
            final_dir.display()
        )
    };
    // Without `overwrite` only an empty directory is replaced; one that got an entry between
    // this check and the swap is swapped back, so nothing in it is lost.
    if !overwrite && !is_empty_dir(final_dir) {
        return Err(ours(appeared()));
    }
    match swap::exchange(built, final_dir) {
        Ok(()) if !overwrite && !is_empty_dir(built) => match swap::exchange(built, final_dir) {
            Ok(()) => Err(ours(appeared())),
            Err(e) => Err(PlaceError {
                error: anyhow!(e).context(format!(
                    "{}: appeared while imfilter was running, and could not be swapped back \
                     from {}",
                    final_dir.display(),
                    built.display()
                )),
                built_is_ours: false,
            }),
        },
        Ok(()) => Ok(Placed::Swapped),
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => Err(ours(anyhow!(
            "{}: this file system cannot swap directories atomically (renameat2 \
             RENAME_EXCHANGE), and imfilter does not replace a directory file by file; write \
             the result to a new directory",
            final_dir.display()
        ))),
        Err(e) => Err(cannot(e)),
    }
}

/// Removes a directory tree imfilter made or replaced, giving its owner the permission that
/// takes. Best effort: what is left has the `.NAME.imfilter-XXXXXX` name (docs/reliability.md).
fn remove_tree(dir: &Path, mode: &fs::Permissions) {
    if let Some(writable) = with_owner(mode, OWNER_WRITE_SEARCH) {
        let _ = fs::set_permissions(dir, writable);
    }
    let removed = if fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        fs::remove_dir_all(dir)
    } else {
        fs::remove_file(dir)
    };
    if let Err(e) = removed {
        eprintln!(
            "imfilter: warning: {}: cannot remove what the result replaced: {e}",
            dir.display()
        );
    }
}

fn is_empty_dir(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
}

/// An existing directory is replaced as a whole, so one with anything in it needs
/// `overwrite`; an empty one (made with mkdir for the result) does not.
fn refuse_existing_directory(dir: &Path, overwrite: bool) -> Result<()> {
    if overwrite {
        return Ok(());
    }
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return Ok(());
    };
    if !(meta.is_dir() && is_empty_dir(dir)) {
        bail!(
            "{}: already exists; use --force to replace it (a directory is replaced as a \
             whole, with only this result in it)",
            dir.display()
        );
    }
    Ok(())
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
    /// `staging_dir` (beside the output, so it is on a disk with room), allocated at the
    /// uncompressed size, and `file` is allocated at the bound of its compressed size, to be
    /// written by `finish`: a full disk is an error before the work, not after it. Neither
    /// descriptor is kept.
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
        let mapped_file = match &staging {
            Some(staging) => {
                reserve(staging, layout.file_len, final_path)?;
                allocate(file, layout, final_path)?;
                staging
            }
            None => {
                allocate(file, layout, final_path)?;
                file
            }
        };
        let map = WriteMap::new(mapped_file, layout.data_offset, layout.data_len() as usize)
            .with_context(|| format!("{}: cannot map the output", named()))?;
        Ok(OutputFile {
            final_path: final_path.to_path_buf(),
            home,
            restore_mode,
            pixels: Pixels::Mapped {
                map,
                layout: layout.clone(),
            },
        })
    }

    /// One file of a directory output, allocated (and its directory written), mapped later by
    /// the worker that computes its image. A compressed one is allocated at the bound of its
    /// compressed size, so that a full disk is an error before the work starts, and cut to its
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
            restore_mode,
            pixels: Pixels::OnDemand {
                layout: layout.clone(),
                written: false,
            },
        })
    }

    /// The layout of a directory's file, whose one image is opened by the worker computing it.
    fn own_image_layout(&self) -> Result<&Layout> {
        match &self.pixels {
            Pixels::OnDemand { layout, .. } => Ok(layout),
            _ => bail!(
                "{}: invariant: only a directory's file is opened image by image",
                self.final_path.display()
            ),
        }
    }

    /// Writes `pixels`, compressed, into the output file laid out as `layout`, and cuts off
    /// what its allocation left beyond them.
    fn write_compressed(&self, layout: &Layout, pixels: &[u8]) -> Result<()> {
        let file = self.home.reopen(&self.final_path)?;
        layout
            .write_compressed(pixels, layout.options.compression, &file)
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
            Pixels::Mapped { map, layout } if layout_compressed(layout) => {
                self.write_compressed(layout, map.bytes())?
            }
            Pixels::Hdf5 {
                map,
                deferred: Some(deferred),
                ..
            } => hdf5::write_deferred(&self, deferred, map.bytes())?,
            Pixels::OnDemand { written: false, .. } => bail!(
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
pub struct OutputPage<'a, T>(PageTarget<'a, T>);

enum PageTarget<'a, T> {
    Slice(&'a mut [T]),
    File(&'a mut OutputFile),
}

impl<'a, T: Pixel> OutputPage<'a, T> {
    /// An image's pixels in a map the caller holds (one shard's pages of a job's output,
    /// `scaleout`).
    pub fn slice(pixels: &'a mut [T]) -> OutputPage<'a, T> {
        OutputPage(PageTarget::Slice(pixels))
    }

    /// Where its pixels lie in memory (addresses), for a page in a map the caller holds.
    pub(crate) fn span(&self) -> Option<std::ops::Range<usize>> {
        match &self.0 {
            PageTarget::Slice(pixels) => {
                let start = pixels.as_ptr() as usize;
                Some(start..start + std::mem::size_of_val(&**pixels))
            }
            PageTarget::File(_) => None,
        }
    }

    /// The image's pixels, writable until [`OpenPage::close`].
    pub fn open(self) -> Result<OpenPage<'a, T>> {
        let file = match self.0 {
            PageTarget::Slice(pixels) => return Ok(OpenPage(Open::Slice(pixels))),
            PageTarget::File(file) => file,
        };
        let layout = file.own_image_layout()?;
        let pixels = layout.format.pixels();
        let (offset, len) = (layout.data_offset, layout.data_len() as usize);
        if layout_compressed(layout) {
            let mut buffer = Vec::new();
            buffer.try_reserve_exact(pixels).map_err(|_| {
                anyhow!(
                    "{}: cannot allocate {} MiB for an image: out of memory",
                    file.final_path.display(),
                    (pixels * std::mem::size_of::<T>()) >> 20
                )
            })?;
            buffer.resize(pixels, T::default());
            return Ok(OpenPage(Open::Buffer(buffer, file)));
        }
        let named = || format!("{}: cannot map the output", file.final_path.display());
        let handle = file.home.reopen(&file.final_path)?;
        let map = WriteMap::new(&handle, offset, len).with_context(named)?;
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
                file.write_compressed(file.own_image_layout()?, bytemuck::cast_slice(&pixels))?;
                file
            }
        };
        if let Pixels::OnDemand { written, .. } = &mut file.pixels {
            *written = true;
        }
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
pub(crate) fn owner_read_write(file: &File, final_path: &Path) -> Result<Option<fs::Permissions>> {
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

/// Reserves the file's blocks for its layout (see `mapped::preallocate`): the whole file of an
/// uncompressed layout, whose TIFF directories it then writes around the pixel block the map
/// fills; for a compressed layout, as many bytes as its compressed form can possibly take (its
/// directories are written with its data, by `Layout::write_compressed`).
pub(crate) fn allocate(file: &File, layout: &Layout, final_path: &Path) -> Result<()> {
    if layout_compressed(layout) {
        return reserve(file, layout.compressed_len_bound(), final_path);
    }
    reserve(file, layout.file_len, final_path)?;
    layout
        .write_metadata(file)
        .with_context(|| format!("{}: cannot write", final_path.display()))
}

fn reserve(file: &File, len: u64, final_path: &Path) -> Result<()> {
    mapped::preallocate(file, len).with_context(|| {
        format!(
            "{}: cannot allocate {len} bytes for the output",
            final_path.display()
        )
    })
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

/// Refuses to replace anything at `path` (a file, a directory, a dangling link) unless
/// `overwrite` (`--force`).
pub(crate) fn refuse_existing(path: &Path, overwrite: bool) -> Result<()> {
    if !overwrite && fs::symlink_metadata(path).is_ok() {
        bail!(
            "{}: already exists; use --force to overwrite it",
            path.display()
        );
    }
    Ok(())
}

/// The directory a path lives in, which must exist.
pub(crate) fn parent_dir(path: &Path) -> Result<PathBuf> {
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

/// A new temporary file in `dir` for the result at `final_path` (`.NAME.imfilter-XXXXXX`,
/// with the mode the umask gives a new file).
pub(crate) fn temp_file_in(dir: &Path, final_path: &Path) -> Result<NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&temp_prefix(final_path))
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| anyhow!("{}: cannot create the output: {e}", final_path.display()))
}

/// Writes `path` whole: what `write` writes goes to a temporary file in the same folder, which
/// is synced (if `sync`) and renamed over `path`, so a reader sees the old file or the new
/// one, never a part. Readable and writable as the umask allows (a job's files are read and
/// written by its shards, which may run as others of a group).
pub(crate) fn write_whole(
    path: &Path,
    sync: bool,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let cannot = || format!("{}: cannot write", path.display());
    let mut temp = tempfile::Builder::new()
        .prefix(".partial-")
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(cannot)?;
    write(&mut temp).with_context(cannot)?;
    if sync {
        temp.as_file().sync_all().with_context(cannot)?;
    }
    temp.persist(path)
        .map_err(|e| e.error)
        .with_context(cannot)?;
    if sync {
        sync_dir(dir);
    }
    Ok(())
}

/// Makes a rename durable. Best effort: some filesystems refuse to sync a directory.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixel::DType;

    #[test]
    fn only_a_named_uncompressed_file_sends_its_pages_to_the_disk_early() {
        let dir = tempfile::tempdir().expect("dir");
        let format = PageFormat {
            width: 8,
            height: 8,
            dtype: DType::F32,
        };
        let plain = WriteOptions::default();
        let writes_back = |destination: &Destination, options: &WriteOptions| {
            let pending =
                PendingOutput::create(destination, format, 3, false, options).expect("created");
            pending.writeback().expect("writeback").is_some()
        };
        let file = Destination::File(dir.path().join("out.tif"));
        assert!(writes_back(&file, &plain));
        // A stream's result is built in an unnamed staging file, copied out at the end.
        assert!(!writes_back(&Destination::Stdout, &plain));
        let fifo = Destination::Stream(dir.path().join("fifo"));
        assert!(!writes_back(&fifo, &plain));
        // A compressed result's map is a staging file too.
        let compressed = WriteOptions {
            compression: Compression::Deflate,
            ..WriteOptions::default()
        };
        let file = Destination::File(dir.path().join("packed.tif"));
        assert!(!writes_back(&file, &compressed));
        // An uncompressed HDF5 result is mapped where it lies, as a TIFF's.
        let file = dir.path().join("out.h5");
        let hdf5 = Destination::Hdf5 {
            named: PathBuf::from(format!("{}:/data", file.display())),
            file,
            dataset: "/data".into(),
        };
        assert!(writes_back(&hdf5, &plain));
        assert!(!writes_back(&hdf5, &compressed));
    }
}
