//! Reliability promises (issue 5): faults, bad input, concurrent writers.
//!
//! What signals.rs (SIGINT, SIGTERM), outputs.rs (file-size limit) and errors.rs (fixture
//! files) already prove is not repeated here. This module proves the rest: SIGKILL at any
//! moment, an error half-way through a run, every malformed-file kind of promise 4 crafted
//! byte by byte, unreadable inputs and unwritable outputs, memory bounded by the file's own
//! length, and two processes racing for one output path. docs/reliability.md maps each
//! promise to its test.
//!
//! Tests named `bug_*` are `#[ignore]`d: each pins a known defect and passes once it is fixed.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use imfilter::pixel::DType;

use crate::sparse::sparse_stack;
use crate::support::{Scratch, assert_one_line_error, run_with_address_space};

fn imfilter_bin() -> &'static Path {
    assert_cmd::cargo::cargo_bin!("imfilter")
}

// ---------------------------------------------------------------------------------------------
// Crafting TIFF files byte by byte (little-endian, classic or BigTIFF).

const ASCII: u16 = 2;
const SHORT: u16 = 3;
const LONG: u16 = 4;
const LONG8: u16 = 16;

/// One directory entry: tag, field type, count, and the value itself (when it fits in the
/// entry) or the offset of the values.
#[derive(Clone, Copy)]
struct Entry(u16, u16, u64, u64);

/// A TIFF file under construction: data blocks and directories appended in order, each new
/// directory linked from the previous one (or from the header).
struct Tiff {
    big: bool,
    bytes: Vec<u8>,
    /// Each directory's offset.
    directories: Vec<u64>,
    /// Where each directory's "next directory" offset is, to link or corrupt the chain.
    next_fields: Vec<usize>,
}

impl Tiff {
    fn classic() -> Tiff {
        Tiff {
            big: false,
            bytes: b"II*\0\0\0\0\0".to_vec(),
            directories: Vec::new(),
            next_fields: Vec::new(),
        }
    }

    fn bigtiff() -> Tiff {
        let mut bytes = b"II+\0\x08\0\0\0".to_vec();
        bytes.extend_from_slice(&[0; 8]);
        Tiff {
            big: true,
            bytes,
            directories: Vec::new(),
            next_fields: Vec::new(),
        }
    }

    fn offset_size(&self) -> usize {
        if self.big { 8 } else { 4 }
    }

    fn put_offset(&mut self, at: usize, value: u64) {
        if self.big {
            self.bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
        } else {
            let v = u32::try_from(value).expect("test: classic offsets fit in 32 bits");
            self.bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
    }

    fn align(&mut self) {
        if self.bytes.len() % 2 == 1 {
            self.bytes.push(0);
        }
    }

    /// Appends raw bytes (pixels, long tag values) and returns their offset.
    fn data(&mut self, bytes: &[u8]) -> u64 {
        self.align();
        let at = self.bytes.len() as u64;
        self.bytes.extend_from_slice(bytes);
        at
    }

    /// Appends a directory, links it into the chain and returns its offset.
    fn ifd(&mut self, entries: &[Entry]) -> u64 {
        self.align();
        let at = self.bytes.len() as u64;
        let link = match self.next_fields.last() {
            Some(&field) => field,
            None => self.offset_size(),
        };
        self.put_offset(link, at);
        let mut entries = entries.to_vec();
        entries.sort_by_key(|e| e.0);
        if self.big {
            self.bytes
                .extend_from_slice(&(entries.len() as u64).to_le_bytes());
        } else {
            self.bytes
                .extend_from_slice(&(entries.len() as u16).to_le_bytes());
        }
        for Entry(tag, ty, count, value) in entries {
            self.bytes.extend_from_slice(&tag.to_le_bytes());
            self.bytes.extend_from_slice(&ty.to_le_bytes());
            if self.big {
                self.bytes.extend_from_slice(&count.to_le_bytes());
                self.bytes.extend_from_slice(&value.to_le_bytes());
            } else {
                let count = u32::try_from(count).expect("test: classic counts fit in 32 bits");
                let value = u32::try_from(value).expect("test: classic values fit in 32 bits");
                self.bytes.extend_from_slice(&count.to_le_bytes());
                // Little-endian: a SHORT stored in the entry is the first two bytes of this.
                self.bytes.extend_from_slice(&value.to_le_bytes());
            }
        }
        self.directories.push(at);
        self.next_fields.push(self.bytes.len());
        self.bytes
            .extend(std::iter::repeat_n(0, self.offset_size()));
        at
    }

    /// Points the header at `offset` as the first directory.
    fn first_directory_at(mut self, offset: u64) -> Tiff {
        let at = self.offset_size();
        self.put_offset(at, offset);
        self
    }

    /// Points directory `index`'s "next" field at `offset`.
    fn next_directory_at(mut self, index: usize, offset: u64) -> Tiff {
        let at = self.next_fields[index];
        self.put_offset(at, offset);
        self
    }

    fn bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// The entries of one grayscale page of unsigned samples in a single strip.
fn page(width: u64, height: u64, bits: u64, compression: u64, strip: (u64, u64)) -> Vec<Entry> {
    let wide = |v: u64| if v > u64::from(u32::MAX) { LONG8 } else { LONG };
    vec![
        Entry(256, wide(width), 1, width),
        Entry(257, wide(height), 1, height),
        Entry(258, SHORT, 1, bits),
        Entry(259, SHORT, 1, compression),
        Entry(262, SHORT, 1, 1),
        Entry(273, wide(strip.0), 1, strip.0),
        Entry(277, SHORT, 1, 1),
        Entry(278, wide(height), 1, height),
        Entry(279, wide(strip.1), 1, strip.1),
    ]
}

/// Replaces (or adds) one entry of a page.
fn with(mut entries: Vec<Entry>, entry: Entry) -> Vec<Entry> {
    entries.retain(|e| e.0 != entry.0);
    entries.push(entry);
    entries
}

/// Width and height of the sample fixtures (`sample/flat.tif` is 67x45 uint16).
const SAMPLE_W: u64 = 67;
const SAMPLE_H: u64 = 45;

/// A valid `pages`-page uint16 stack of the sample's shape: the control that shows the
/// crafting is right, so that each corrupt variant fails for the reason it was made for.
fn valid_stack(pages: usize) -> Tiff {
    let mut t = Tiff::classic();
    let len = SAMPLE_W * SAMPLE_H * 2;
    for p in 0..pages {
        let pixels: Vec<u8> = (0..len).map(|i| (i as usize * 7 + p) as u8).collect();
        let at = t.data(&pixels);
        t.ifd(&page(SAMPLE_W, SAMPLE_H, 16, 1, (at, len)));
    }
    t
}

/// A TIFF ImageDescription as ImageJ writes it, claiming `images` images.
fn imagej_description(t: &mut Tiff, images: &str) -> Entry {
    let text = format!("ImageJ=1.54f\nimages={images}\nslices={images}\n\0");
    let at = t.data(text.as_bytes());
    Entry(270, ASCII, text.len() as u64, at)
}

// ---------------------------------------------------------------------------------------------
// Running imfilter and checking what it left.

/// A command line written as one string, for readability; no argument has a space.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Runs imfilter to its end; a minute is far past any run here, so more is a hang.
fn run(s: &Scratch, args: &[&str]) -> Output {
    s.imfilter()
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("imfilter runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether `name` is the temporary form of one of `outputs`, `.NAME.imfilter-XXXXXX`, or the
/// lock a killed writer left, `.NAME.imfilter-lock`.
fn is_temp_name_of(name: &str, outputs: &[&str]) -> bool {
    outputs.iter().any(|out| {
        name.strip_prefix(&format!(".{out}.imfilter-"))
            .is_some_and(|rest| {
                rest == "lock"
                    || (rest.len() == 6 && rest.chars().all(|c| c.is_ascii_alphanumeric()))
            })
    })
}

/// Files in the top level of `dir` that are not in `known`.
fn new_files(dir: &Path, known: &BTreeSet<String>) -> Vec<String> {
    fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !known.contains(n))
        .collect()
}

/// Runs `background-correct` on `file` as the input, then as the flat, then `info` on it:
/// each must exit 1 with one line naming the file and containing every part of `what`, and
/// leave no output or temporary file behind.
fn refused(bytes: &[u8], what: &[&str]) {
    let s = Scratch::new();
    let name = "crafted.tif";
    fs::write(s.path(name), bytes).expect("write");
    let before = s.all_files();
    let as_input = format!("background-correct --flat sample/flat.tif {name} -o out.tif");
    let as_flat = format!("background-correct --flat {name} sample/stack.tif -o out.tif");
    let runs = [words(&as_input), words(&as_flat), vec!["info", name]];
    for args in &runs {
        let out = run(&s, args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: stderr: {}",
            text(&out.stderr)
        );
        let mut parts = what.to_vec();
        parts.push(name);
        assert_one_line_error(&out.stderr, &parts);
        assert!(
            out.stdout.is_empty(),
            "{args:?} printed {}",
            text(&out.stdout)
        );
    }
    assert_eq!(s.all_files(), before, "something was left behind");
}

#[test]
fn a_crafted_valid_stack_is_accepted() {
    // The control for every crafted corrupt file below.
    let s = Scratch::new();
    fs::write(s.path("crafted.tif"), valid_stack(3).bytes()).expect("write");
    let out = run(
        &s,
        &words("background-correct --flat crafted.tif crafted.tif -o out.tif"),
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let info = run(&s, &["info", "--json", "crafted.tif"]);
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).expect("json");
    assert_eq!(
        (v["pages"].as_u64(), v["width"].as_u64()),
        (Some(3), Some(SAMPLE_W))
    );

    let mut big = Tiff::bigtiff();
    let at = big.data(&vec![1; (SAMPLE_W * SAMPLE_H * 2) as usize]);
    big.ifd(&page(
        SAMPLE_W,
        SAMPLE_H,
        16,
        1,
        (at, SAMPLE_W * SAMPLE_H * 2),
    ));
    fs::write(s.path("big.tif"), big.bytes()).expect("write");
    let info = run(&s, &["info", "--json", "big.tif"]);
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).expect("json");
    assert_eq!(v["bigtiff"], true, "stderr: {}", text(&info.stderr));
}

// ---------------------------------------------------------------------------------------------
// Promise 4: bad input is one line naming the file and the problem, exit 1, no panic.

#[test]
fn first_directory_offset_past_the_end() {
    let t = valid_stack(1).first_directory_at(1_000_000);
    refused(&t.bytes(), &["truncated", "image directory"]);
}

#[test]
fn later_directory_offset_past_the_end() {
    let t = valid_stack(2).next_directory_at(1, 1_000_000);
    refused(&t.bytes(), &["truncated", "image directory"]);
}

#[test]
fn directory_chain_that_loops() {
    // A reader that follows the chain blindly never ends: page 2 leads to itself, or the
    // last of three pages leads back to the first.
    let t = valid_stack(2);
    let second = t.directories[1];
    refused(&t.next_directory_at(1, second).bytes(), &["loops"]);
    let t = valid_stack(3);
    let first = t.directories[0];
    refused(&t.next_directory_at(2, first).bytes(), &["loops"]);
}

#[test]
fn directory_with_more_entries_than_the_file_holds() {
    let mut bytes = b"II*\0\x08\0\0\0".to_vec();
    bytes.extend_from_slice(&u16::MAX.to_le_bytes());
    bytes.extend_from_slice(&[0; 30]);
    refused(&bytes, &["truncated", "image directory"]);
}

#[test]
fn tag_count_whose_byte_size_overflows() {
    // BigTIFF: 2^62 eight-byte offsets do not fit in 64 bits of bytes.
    let mut t = Tiff::bigtiff();
    let len = SAMPLE_W * SAMPLE_H * 2;
    let at = t.data(&vec![0; len as usize]);
    t.ifd(&with(
        page(SAMPLE_W, SAMPLE_H, 16, 1, (at, len)),
        Entry(273, LONG8, 1 << 62, at),
    ));
    refused(&t.bytes(), &["tag 273", "overflows"]);
}

#[test]
fn tag_values_past_the_end() {
    // 2^32 - 1 strip sizes: 16 GiB of values in a file of a few kilobytes.
    let mut t = Tiff::classic();
    let len = SAMPLE_W * SAMPLE_H * 2;
    t.data(&vec![0; len as usize]);
    t.ifd(&with(
        page(SAMPLE_W, SAMPLE_H, 16, 1, (8, len)),
        Entry(279, LONG, u64::from(u32::MAX), 8),
    ));
    refused(&t.bytes(), &["tag 279", "past the end"]);
}

#[test]
fn width_times_height_beyond_the_file() {
    // 100000 x 100000 uint16 is 20 GB of pixels; the file has 16.
    let mut t = Tiff::classic();
    let at = t.data(&[0; 16]);
    t.ifd(&page(100_000, 100_000, 16, 1, (at, 16)));
    refused(&t.bytes(), &["truncated", "20000000000"]);
}

#[test]
fn strip_offset_past_the_end() {
    let mut t = Tiff::classic();
    let len = SAMPLE_W * SAMPLE_H * 2;
    t.ifd(&page(SAMPLE_W, SAMPLE_H, 16, 1, (3_000_000_000, len)));
    refused(&t.bytes(), &["truncated", "3000000000"]);
}

#[test]
fn imagej_image_count_beyond_the_file() {
    // ImageJ's one-directory form: images=N says N pages follow the first one's pixels.
    for images in ["1000000000000", "18446744073709551615"] {
        let mut t = Tiff::classic();
        let len = SAMPLE_W * SAMPLE_H * 2;
        let at = t.data(&vec![3; len as usize]);
        let description = imagej_description(&mut t, images);
        t.ifd(&with(
            page(SAMPLE_W, SAMPLE_H, 16, 1, (at, len)),
            description,
        ));
        refused(&t.bytes(), &[&format!("images={images}")]);
    }
}

#[test]
fn zero_width_or_height() {
    for (w, h) in [(0, SAMPLE_H), (SAMPLE_W, 0)] {
        let mut t = Tiff::classic();
        let at = t.data(&[0; 64]);
        t.ifd(&page(w, h, 16, 1, (at, 64)));
        refused(&t.bytes(), &["zero-sized", &format!("{w}x{h}")]);
    }
}

#[test]

fn bug_width_times_height_that_overflows_64_bits() {
    // Found while writing these tests: a size whose byte count overflows u64 passes
    // `Stack::open` (source.rs skips the strip checks when `pixel_bytes()` is `None`) and
    // then panics on `pixels() * size_of::<T>()` (stack/mod.rs, `Stack::page`) or in
    // `Layout::new` (stack/write.rs). A release build wraps the product instead.
    for compression in [1, 8] {
        let mut t = Tiff::classic();
        let at = t.data(&[0; 16]);
        t.ifd(&page(
            u64::from(u32::MAX),
            u64::from(u32::MAX),
            16,
            compression,
            (at, 16),
        ));
        refused_in_small_memory(&t.bytes(), &[]);
    }
}

// ---------------------------------------------------------------------------------------------
// Permissions: unreadable inputs, an output directory that can't be written.

/// The command prefix under which file permissions apply to imfilter. Tests often run as
/// root, for whom mode bits mean nothing; then imfilter runs through `setpriv` without the
/// capabilities that bypass them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH). `None` when
/// permissions cannot be made to apply here; the caller skips with a note.
fn permission_prefix(dir: &Path) -> Option<Vec<&'static str>> {
    let probe = dir.join("probe");
    fs::write(&probe, "x").expect("write probe");
    fs::set_permissions(&probe, fs::Permissions::from_mode(0o000)).expect("chmod probe");
    if File::open(&probe).is_err() {
        fs::remove_file(&probe).expect("remove probe");
        return Some(Vec::new());
    }
    let prefix = vec![
        "setpriv",
        "--bounding-set=-dac_override,-dac_read_search",
        "--",
    ];
    let refused = Command::new(prefix[0])
        .args(&prefix[1..])
        .arg("cat")
        .arg(&probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| !s.success());
    let _ = fs::remove_file(&probe);
    refused.then_some(prefix)
}

fn run_as(prefix: &[&str], s: &Scratch, args: &[&str]) -> Output {
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(imfilter_bin());
            c
        }
        None => Command::new(imfilter_bin()),
    };
    cmd.args(args)
        .current_dir(s.dir.path())
        .output()
        .expect("imfilter runs")
}

#[test]
fn unreadable_input_flat_or_directory() {
    let s = Scratch::new();
    let Some(prefix) = permission_prefix(s.dir.path()) else {
        eprintln!(
            "note: skipped: file permissions cannot be made to apply here (root, no setpriv)"
        );
        return;
    };
    fs::copy(s.path("sample/stack.tif"), s.path("locked.tif")).expect("copy");
    fs::set_permissions(s.path("locked.tif"), fs::Permissions::from_mode(0o000)).expect("chmod");
    fs::set_permissions(s.path("sample/Tomo"), fs::Permissions::from_mode(0o000)).expect("chmod");
    let cases: [(&[&str], &[&str]); 4] = [
        (
            &words("background-correct --flat sample/flat.tif locked.tif -o out.tif"),
            &["locked.tif", "cannot open", "Permission denied"],
        ),
        (
            &words("background-correct --flat locked.tif sample/stack.tif -o out.tif"),
            &["locked.tif", "cannot open", "Permission denied"],
        ),
        (
            &["info", "locked.tif"],
            &["locked.tif", "cannot open", "Permission denied"],
        ),
        (
            &words("background-correct --flat sample/flat.tif sample/Tomo -o out.tif"),
            &["sample/Tomo", "Permission denied"],
        ),
    ];
    for (args, parts) in cases {
        let out = run_as(&prefix, &s, args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_one_line_error(&out.stderr, parts);
    }
    fs::set_permissions(s.path("sample/Tomo"), fs::Permissions::from_mode(0o755)).expect("chmod");
    assert!(!s.path("out.tif").exists());
}

#[test]
fn output_directory_not_writable() {
    let s = Scratch::new();
    let Some(prefix) = permission_prefix(s.dir.path()) else {
        eprintln!(
            "note: skipped: file permissions cannot be made to apply here (root, no setpriv)"
        );
        return;
    };
    fs::create_dir(s.path("ro")).expect("mkdir");
    fs::write(s.path("ro/out.tif"), "precious").expect("write");
    fs::set_permissions(s.path("ro"), fs::Permissions::from_mode(0o555)).expect("chmod");
    let bc = [
        "background-correct",
        "--flat",
        "sample/flat.tif",
        "sample/stack.tif",
    ];
    for target in [
        &["-o", "ro/new.tif"][..],
        &["-o", "ro/out.tif", "--force"],
        &["-o", "ro/split/"],
    ] {
        let out = run_as(&prefix, &s, &[&bc[..], target].concat());
        assert_eq!(
            out.status.code(),
            Some(1),
            "{target:?}: {}",
            text(&out.stderr)
        );
        // A new directory is built aside in its parent, so that is what the error names.
        let named = target[1].trim_end_matches("split/");
        assert_one_line_error(&out.stderr, &[named, "Permission denied"]);
    }
    fs::set_permissions(s.path("ro"), fs::Permissions::from_mode(0o755)).expect("chmod");
    assert_eq!(fs::read(s.path("ro/out.tif")).expect("read"), b"precious");
    assert_eq!(fs::read_dir(s.path("ro")).expect("list").count(), 1);
}

// ---------------------------------------------------------------------------------------------
// Promise 5: no allocation beyond what the file's length can back.

/// Runs imfilter with at most `mib` MiB of address space and two malloc arenas.
fn run_in_small_memory(s: &Scratch, mib: u64, args: &[&str]) -> Output {
    run_with_address_space(s, mib << 20, 2, args)
}

/// The memory rule's ways in: as the flat (flats are held in memory) and the input of
/// background-correct, as the input of median, and `info`. Each must be exit 1 with one line
/// naming the file, in a few seconds, within 512 MiB of address space.
fn refused_in_small_memory(bytes: &[u8], what: &[&str]) {
    in_small_memory(bytes, what, false);
}

/// As `refused_in_small_memory`, or `may_succeed`: exit 0 is fine too (a file that is
/// strange but can be read in bounded memory), only an abort or a slow run is not.
fn in_small_memory(bytes: &[u8], what: &[&str], may_succeed: bool) {
    let s = Scratch::new();
    fs::write(s.path("claims.tif"), bytes).expect("write");
    // The file is its own flat: a flat of the sample's shape would be refused for its shape
    // before the input is read.
    let runs: [&[&str]; 3] = [
        &words("-j 2 background-correct --flat claims.tif claims.tif -o out.tif"),
        &words("-j 2 median --size 3 claims.tif -o out.tif"),
        &["info", "claims.tif"],
    ];
    for args in runs {
        let started = Instant::now();
        let out = run_in_small_memory(&s, 512, args);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{args:?} took {:?}",
            started.elapsed()
        );
        if may_succeed && out.status.success() {
            continue;
        }
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?} (exit {:?}, a signal if None): {}",
            out.status.code(),
            text(&out.stderr)
        );
        let mut parts = what.to_vec();
        parts.push("claims.tif");
        assert_one_line_error(&out.stderr, &parts);
        assert!(!s.path("out.tif").exists());
    }
    s.assert_no_temp_files();
}

#[test]
fn a_200_byte_file_claiming_a_huge_stack_fails_fast_in_small_memory() {
    // 100000 x 100000 uint16 pixels x 1000 ImageJ images: 20 TB claimed by 200 bytes.
    let mut t = Tiff::classic();
    let at = t.data(&[0; 16]);
    let description = imagej_description(&mut t, "1000");
    t.ifd(&with(page(100_000, 100_000, 16, 1, (at, 16)), description));
    let bytes = t.bytes();
    assert!(bytes.len() <= 200, "{} bytes", bytes.len());
    refused_in_small_memory(&bytes, &["truncated"]);
}

#[test]

fn bug_a_compressed_page_claiming_more_pixels_than_its_data_can_hold() {
    // Found while writing these tests (and by the fuzzer within 2 minutes, unguarded): a
    // Deflate page claiming 100000 x 100000 uint8 pixels from 1000 bytes of zeros makes
    // `Stack::page` (stack/mod.rs) `scratch.resize(width * height)`: 10 GB allocated for a
    // 200-byte file before decoding fails. Deflate cannot expand past 1032:1, so the file's
    // length bounds what a page can honestly hold.
    use tiff::encoder::compression::{CompressionAlgorithm, Deflate, DeflateLevel};
    let mut zlib = Vec::new();
    Deflate::with_level(DeflateLevel::Best)
        .write_to(&mut zlib, &[0; 1000])
        .expect("deflate");
    let mut t = Tiff::classic();
    let at = t.data(&zlib);
    t.ifd(&page(100_000, 100_000, 8, 8, (at, zlib.len() as u64)));
    let bytes = t.bytes();
    assert!(bytes.len() <= 200, "{} bytes", bytes.len());
    refused_in_small_memory(&bytes, &[]);
}

/// `pages` directories with the same entries, so all point at the same table or pixels:
/// legal-looking entries, but bytes the file holds once claimed again and again.
fn pages_sharing(t: &mut Tiff, pages: usize, entries: &[Entry]) {
    for _ in 0..pages {
        t.ifd(entries);
    }
}

#[test]

fn bug_strip_tables_shared_by_many_pages() {
    // Found while writing these tests: 2000 directories whose StripOffsets and
    // StripByteCounts all point at one table of 65536 strips (8 bytes each, all at the same
    // offset). source.rs `read_page` builds each page's 65536-entry strip list (1.5 MiB of
    // vectors) and keeps it, since the strips are not one run: a 490 KB file makes `info`
    // take 2 GB and 100 s. A file's strips cannot honestly overlap, so the bytes claimed by
    // all pages' strips together can't exceed the file's length.
    let mut t = Tiff::classic();
    let pixel_at = t.data(&[0; 8]);
    let strips: u64 = 65536;
    let table: Vec<u8> = (0..strips)
        .flat_map(|_| (pixel_at as u32).to_le_bytes())
        .collect();
    let table_at = t.data(&table);
    let entries = with(
        with(
            with(
                page(8, strips, 8, 1, (0, 0)),
                Entry(273, LONG, strips, table_at),
            ),
            Entry(279, LONG, strips, table_at),
        ),
        Entry(278, LONG, 1, 1),
    );
    pages_sharing(&mut t, 2000, &entries);
    in_small_memory(&t.bytes(), &[], true);
}

#[test]

fn bug_flat_pages_sharing_their_pixels() {
    // Found while writing these tests: 2000 directories pointing at the same 512 x 512 uint8
    // pixels. Flats for a median are held in memory as float32, one vector per page:
    // a 485 KB flat makes background-correct allocate 2 GB. Refusing
    // pages whose pixels overlap (the sum of all pages' strip bytes can't exceed the file)
    // bounds it; so would combining the mean page by page.
    let mut t = Tiff::classic();
    let side = 512;
    let at = t.data(&vec![9; side * side]);
    pages_sharing(
        &mut t,
        2000,
        &page(side as u64, side as u64, 8, 1, (at, (side * side) as u64)),
    );
    let s = Scratch::new();
    fs::write(s.path("flat2000.tif"), t.bytes()).expect("write");
    let mut one = Tiff::classic();
    let at = one.data(&vec![1; side * side]);
    one.ifd(&page(
        side as u64,
        side as u64,
        8,
        1,
        (at, (side * side) as u64),
    ));
    fs::write(s.path("one.tif"), one.bytes()).expect("write");
    let out = run_in_small_memory(
        &s,
        1024,
        &words("-j 2 background-correct --flat flat2000.tif one.tif -o out.tif"),
    );
    // Refused (exit 1, naming the flat), or combined in bounded memory (exit 0): not an abort.
    if !out.status.success() {
        assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
        assert_one_line_error(&out.stderr, &["flat2000.tif"]);
    }
}

// ---------------------------------------------------------------------------------------------
// Promises 1 and 2: an error in any image, or SIGKILL at any moment.

/// A uint16 (or float32) stack in imfilter's own layout whose pixels are a pattern that
/// depends on `seed`, so that results of different inputs differ in every page.
fn patterned_stack(path: &Path, pages: usize, side: usize, dtype: DType, seed: u32) {
    let (file, layout) = sparse_stack(path, pages, side, dtype, false);
    let n = pages * side * side;
    let values = (0..n as u32).map(|i| (i.wrapping_mul(2_654_435_761) ^ seed) % 4000 + 1);
    let bytes: Vec<u8> = match dtype {
        DType::F32 => values.flat_map(|v| (v as f32).to_ne_bytes()).collect(),
        _ => values.flat_map(|v| (v as u16).to_ne_bytes()).collect(),
    };
    file.write_all_at(&bytes, layout.data_offset)
        .expect("pixels");
}

#[test]
fn an_error_in_one_image_keeps_the_existing_output_and_removes_the_temporary_file() {
    // A directory stack whose third file has corrupt Deflate data: every file opens, the
    // output is created, and the run fails only when a worker decodes that page.
    let s = Scratch::new();
    fs::create_dir(s.path("Tomo")).expect("mkdir");
    let len = SAMPLE_W * SAMPLE_H * 2;
    for i in 1..=5 {
        let mut t = Tiff::classic();
        if i == 3 {
            let at = t.data(b"\x78\x9c this is not a deflate stream at all");
            t.ifd(&page(SAMPLE_W, SAMPLE_H, 16, 8, (at, 38)));
        } else {
            let at = t.data(&vec![i as u8; len as usize]);
            t.ifd(&page(SAMPLE_W, SAMPLE_H, 16, 1, (at, len)));
        }
        fs::write(s.path(&format!("Tomo/p_{i}.tif")), t.bytes()).expect("write");
    }
    fs::write(s.path("out.tif"), "precious").expect("write");
    let before: Vec<Vec<u8>> = (1..=5)
        .map(|i| fs::read(s.path(&format!("Tomo/p_{i}.tif"))).expect("read"))
        .collect();
    for threads in ["1", "2"] {
        let out = run(
            &s,
            &words(&format!(
                "-j {threads} background-correct --flat sample/flat.tif Tomo -o out.tif --force"
            )),
        );
        assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
        assert_one_line_error(&out.stderr, &["p_3.tif", "cannot decode"]);
        assert_eq!(fs::read(s.path("out.tif")).expect("read"), b"precious");
        s.assert_no_temp_files();
        assert!(
            !s.path("out.json").exists(),
            "history written for a failed run"
        );
    }
    for (i, b) in before.iter().enumerate() {
        assert_eq!(
            &fs::read(s.path(&format!("Tomo/p_{}.tif", i + 1))).expect("read"),
            b
        );
    }
}

/// What a SIGKILL sweep found at the output path.
#[derive(Default, Debug)]
struct Outcomes {
    old: usize,
    complete: usize,
    with_leftovers: usize,
}

/// Kills `args` with SIGKILL at moments spread over a whole run (before it opens anything,
/// while it works, around the rename, after it ends), and after each kill checks:
/// `unchanged` files hold their bytes; `watched` holds `old` or `complete`, never anything
/// else; every other new file is a `.NAME.imfilter-XXXXXX` temporary of `outputs`.
fn sigkill_sweep(
    s: &Scratch,
    args: &[&str],
    unchanged: &[&str],
    watched: (&str, &[u8], &[u8]),
    outputs: &[&str],
) -> Outcomes {
    let (watched, old, complete) = watched;
    let inputs: Vec<(&str, Vec<u8>)> = unchanged
        .iter()
        .map(|f| (*f, fs::read(s.path(f)).expect("read")))
        .collect();
    let mut known: BTreeSet<String> = fs::read_dir(s.dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    known.insert(watched.to_string());
    let sidecar = Path::new(watched).with_extension("json");
    let sidecar = sidecar.to_string_lossy().into_owned();
    known.remove(&sidecar);
    // Each run starts from the same provenance: a sidecar left by the run before would be
    // extended, and the history written into the result would differ from `complete`'s.
    let spawn = || {
        let _ = fs::remove_file(s.path(&sidecar));
        Command::new(imfilter_bin())
            .args(args)
            .current_dir(s.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn")
    };
    // How long a whole run takes here, to spread the kills over it.
    fs::write(s.path(watched), old).expect("reset");
    let started = Instant::now();
    let status = spawn().wait().expect("wait");
    assert!(status.success(), "the uninterrupted run failed");
    let whole = started.elapsed();
    assert_eq!(
        fs::read(s.path(watched)).expect("read"),
        complete,
        "run is not deterministic"
    );

    let mut outcomes = Outcomes::default();
    // Fractions of a run, in 64ths; `None`: as soon as the temporary output exists.
    let moments = [0, 1, 2, 4, 8, 12, 16, 24, 32, 40, 48, 56, 60, 64, 72, 96]
        .map(Some)
        .into_iter()
        .chain([None, None]);
    for moment in moments {
        fs::write(s.path(watched), old).expect("reset");
        let _ = fs::remove_file(s.path(&sidecar));
        let mut child = spawn();
        match moment {
            Some(k) => std::thread::sleep(whole * k / 64),
            None => {
                let t = Instant::now();
                while s.temp_files().is_empty() && t.elapsed() < whole * 4 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");

        for (f, bytes) in &inputs {
            assert!(
                &fs::read(s.path(f)).expect("read") == bytes,
                "{f} changed (kill at {moment:?}/64)"
            );
        }
        let now = fs::read(s.path(watched)).unwrap_or_default();
        if now == old {
            outcomes.old += 1;
        } else if now == complete {
            outcomes.complete += 1;
        } else {
            panic!(
                "{watched} holds {} bytes that are neither the old content nor the whole result (kill at {moment:?}/64)",
                now.len()
            );
        }
        let mut leftovers = false;
        for name in new_files(s.dir.path(), &known) {
            if name == sidecar {
                let v: Result<serde_json::Value, _> =
                    serde_json::from_slice(&fs::read(s.path(&name)).expect("read"));
                assert!(
                    v.is_ok(),
                    "{name} is not complete JSON (kill at {moment:?}/64)"
                );
                continue;
            }
            assert!(
                is_temp_name_of(&name, outputs),
                "{name} is neither an output nor a recognisable temporary (kill at {moment:?}/64)"
            );
            leftovers = true;
            fs::remove_file(s.path(&name)).expect("clean up as docs/reliability.md says");
        }
        outcomes.with_leftovers += usize::from(leftovers);
    }
    outcomes
}

#[test]
fn sigkill_at_any_moment_keeps_inputs_and_leaves_the_old_output_or_the_whole_result() {
    let s = Scratch::new();
    patterned_stack(&s.path("stack.tif"), 48, 256, DType::U16, 1);
    patterned_stack(&s.path("flat.tif"), 1, 256, DType::U16, 2);
    let args = words("background-correct --flat flat.tif stack.tif -o out.tif --force");
    let complete = {
        let out = run(&s, &args);
        assert!(out.status.success(), "stderr: {}", text(&out.stderr));
        fs::read(s.path("out.tif")).expect("read")
    };
    let outcomes = sigkill_sweep(
        &s,
        &args,
        &["stack.tif", "flat.tif"],
        ("out.tif", b"an older result, precious", &complete),
        &["out.tif", "out.json"],
    );
    eprintln!("SIGKILL sweep: {outcomes:?}");
    // The kills as soon as the temporary exists must leave it (nothing can clean up after
    // SIGKILL), with its recognisable name: the sweep really hit the middle of a run.
    assert!(outcomes.with_leftovers >= 1, "{outcomes:?}");
    assert!(outcomes.old >= 1, "{outcomes:?}");
}

#[test]
fn sigkill_during_in_place_leaves_the_original_or_the_whole_result() {
    let s = Scratch::new();
    patterned_stack(&s.path("stack.tif"), 32, 256, DType::F32, 3);
    patterned_stack(&s.path("flat.tif"), 1, 256, DType::U16, 4);
    let original = fs::read(s.path("stack.tif")).expect("read");
    let args = words("background-correct --flat flat.tif stack.tif --in-place");
    let complete = {
        let out = run(&s, &args);
        assert!(out.status.success(), "stderr: {}", text(&out.stderr));
        fs::read(s.path("stack.tif")).expect("read")
    };
    assert_ne!(complete, original);
    let outcomes = sigkill_sweep(
        &s,
        &args,
        &["flat.tif"],
        ("stack.tif", &original, &complete),
        &["stack.tif", "stack.json"],
    );
    eprintln!("SIGKILL --in-place sweep: {outcomes:?}");
    assert!(outcomes.with_leftovers >= 1, "{outcomes:?}");
}

// ---------------------------------------------------------------------------------------------
// Promise 7: two processes writing one output path.

#[test]
fn two_writers_to_one_output_leave_one_whole_result() {
    let s = Scratch::new();
    patterned_stack(&s.path("a.tif"), 32, 256, DType::U16, 5);
    patterned_stack(&s.path("b.tif"), 32, 256, DType::U16, 6);
    patterned_stack(&s.path("flat.tif"), 1, 256, DType::U16, 7);
    let args = |input: &'static str, out: &'static str| {
        [
            "-q",
            "background-correct",
            "--flat",
            "flat.tif",
            input,
            "-o",
            out,
        ]
    };
    let mut results = Vec::new();
    for (input, out) in [("a.tif", "ref_a.tif"), ("b.tif", "ref_b.tif")] {
        let o = run(&s, &args(input, out));
        assert!(o.status.success(), "stderr: {}", text(&o.stderr));
        results.push(fs::read(s.path(out)).expect("read"));
    }
    assert_ne!(results[0], results[1]);
    let race = |extra: &[&str]| -> Vec<Output> {
        let children: Vec<_> = ["a.tif", "b.tif"]
            .into_iter()
            .map(|input| {
                Command::new(imfilter_bin())
                    .args(args(input, "out.tif"))
                    .args(extra)
                    .current_dir(s.dir.path())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        children
            .into_iter()
            .map(|c| c.wait_with_output().expect("wait"))
            .collect()
    };
    // With --force, a writer that finds another one writing the same output is refused with
    // a line that says so; whoever succeeds leaves its whole result and its own history.
    for round in 0..4 {
        let outs = race(&["--force"]);
        let mut winners = Vec::new();
        for (o, input) in outs.iter().zip(["a.tif", "b.tif"]) {
            if o.status.success() {
                winners.push(input);
            } else {
                assert_eq!(o.status.code(), Some(1), "round {round}");
                assert_one_line_error(&o.stderr, &["out.tif", "another imfilter run"]);
            }
        }
        assert!(!winners.is_empty(), "round {round}: neither succeeded");
        let got = fs::read(s.path("out.tif")).expect("read");
        let pixels_of = if got == results[0] {
            "a.tif"
        } else {
            assert!(got == results[1], "round {round}: a mixture");
            "b.tif"
        };
        assert!(
            winners.contains(&pixels_of),
            "round {round}: a loser's pixels"
        );
        let history: serde_json::Value =
            serde_json::from_slice(&fs::read(s.path("out.json")).expect("sidecar")).expect("json");
        let last = history["operation_history"]
            .as_array()
            .and_then(|runs| runs.last())
            .expect("a run");
        assert_eq!(
            last["input"], pixels_of,
            "round {round}: pixels from one writer, history from the other"
        );
        assert!(
            s.temp_files().is_empty(),
            "round {round}: {:?}",
            s.temp_files()
        );
    }
    // Without --force exactly one may create the path; the other is told, and nothing mixes.
    for round in 0..4 {
        fs::remove_file(s.path("out.tif")).expect("rm");
        let outs = race(&[]);
        let won: Vec<bool> = outs.iter().map(|o| o.status.success()).collect();
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "round {round}: {won:?}"
        );
        let loser = &outs[won.iter().position(|w| !w).expect("one lost")];
        assert_eq!(loser.status.code(), Some(1));
        assert_one_line_error(&loser.stderr, &["out.tif"]);
        eprintln!(
            "race {round}: the loser said {}",
            text(&loser.stderr).trim_end()
        );
        let winner = won.iter().position(|w| *w).expect("one won");
        assert_eq!(
            fs::read(s.path("out.tif")).expect("read"),
            results[winner],
            "round {round}: the file is not the winner's result"
        );
        assert!(
            s.temp_files().is_empty(),
            "round {round}: {:?}",
            s.temp_files()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// File modes: a result must be as readable as any file the user creates.

#[test]

fn bug_outputs_follow_the_umask_and_in_place_keeps_the_input_mode() {
    // Found while measuring promise 8: every output is the tempfile crate's 0600 temporary
    // renamed into place, and a new output directory its 0700 one. On shared beamline storage
    // colleagues then can't read results, and `--in-place` silently takes their read access
    // to the input away.
    let s = Scratch::new();
    let mode = |p: &str| fs::metadata(s.path(p)).expect("stat").permissions().mode() & 0o777;
    fs::write(s.path("probe"), "x").expect("write");
    fs::create_dir(s.path("probe_dir")).expect("mkdir");
    let (file_mode, dir_mode) = (mode("probe"), mode("probe_dir"));
    let bc = "background-correct --flat sample/flat.tif";
    for args in [
        format!("{bc} sample/stack.tif -o out.tif"),
        format!("{bc} sample/stack.tif -o split/"),
    ] {
        let out = run(&s, &words(&args));
        assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    }
    assert_eq!(mode("out.tif"), file_mode, "out.tif");
    assert_eq!(mode("out.json"), file_mode, "out.json");
    assert_eq!(mode("split"), dir_mode, "split/");
    assert_eq!(
        mode("split/stack_000000.tif"),
        file_mode,
        "split/stack_000000.tif"
    );

    s.copy_fixture("variants/stack_float32.tif", "f32.tif");
    fs::set_permissions(s.path("f32.tif"), fs::Permissions::from_mode(0o640)).expect("chmod");
    let out = run(&s, &words(&format!("{bc} f32.tif --in-place")));
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(
        mode("f32.tif"),
        0o640,
        "--in-place changed the input's mode"
    );
    // The same for a replaced output that is not synced (the mode is set on its own then).
    fs::set_permissions(s.path("out.tif"), fs::Permissions::from_mode(0o604)).expect("chmod");
    let out = run(
        &s,
        &words(&format!(
            "{bc} sample/stack.tif -o out.tif --force --no-sync"
        )),
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(mode("out.tif"), 0o604, "--force changed the output's mode");
}

/// Pages of `side`² uint8 stored as one ZSTD strip each of the given bytes.
fn zstd_pages(side: u64, strips: &[Vec<u8>]) -> Vec<u8> {
    let mut t = Tiff::classic();
    for strip in strips {
        let at = t.data(strip);
        t.ifd(&page(side, side, 8, 50000, (at, strip.len() as u64)));
    }
    t.bytes()
}

#[test]
fn garbage_zstd_pages_claiming_huge_images_are_refused_before_anything_is_sized() {
    // The red team's file: 4 pages of 64 KiB of noise marked ZSTD, each claiming 46000²
    // uint8 (2 GB, within ZSTD's 32768:1). It reserved 8.5 GB of disk and 8.2 GB of memory
    // with -j 4 before the first decode failed, and aborted under a memory limit.
    let mut x = 0x2545_f491u32;
    let garbage: Vec<Vec<u8>> = (0..4)
        .map(|_| {
            (0..65_000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect()
        })
        .collect();
    refused_in_small_memory(&zstd_pages(46_000, &garbage), &["page 0", "ZSTD"]);
}

#[test]
fn a_valid_image_larger_than_memory_is_an_error_not_an_abort() {
    // An honest ZSTD page of 46000² zeros (2 GB) in a few kB: decoding it needs the 2 GB,
    // which 512 MiB of address space cannot give. A one-line error, not a backtrace.
    let side = 46_000u64;
    let zeros = zstd::bulk::compress(&vec![0u8; (side * side) as usize], 1).expect("zstd");
    let s = Scratch::new();
    fs::write(s.path("claims.tif"), zstd_pages(side, &[zeros])).expect("write");
    let started = Instant::now();
    let out = run_in_small_memory(
        &s,
        512,
        &words("-q -j 4 median --size 3 claims.tif -o out/"),
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_one_line_error(&out.stderr, &["claims.tif", "page 0", "out of memory"]);
    assert!(!s.path("out").exists());
    s.assert_no_temp_files();
}

#[test]
fn workers_are_fewer_when_their_decode_buffers_do_not_fit_in_memory() {
    // 16 Deflate pages of 2048² uint16: each worker holds 16 MiB to decode one (the page and
    // its inflated copy). With -j 16 under 350 MiB of address space, 16 workers' buffers do
    // not fit; the run uses as many as do, says so, and succeeds (the binary of 2026-12-04
    // aborts here). One malloc arena: with two, whether the second's 64 MiB reservation came
    // before the output was mapped varied from run to run, and with it whether the map fit.
    use tiff::encoder::compression::DeflateLevel;
    use tiff::encoder::{Compression, TiffEncoder, colortype::Gray16};
    let s = Scratch::new();
    let side = 2048u32;
    let mut enc = TiffEncoder::new(fs::File::create(s.path("in.tif")).expect("create"))
        .expect("encoder")
        .with_compression(Compression::Deflate(DeflateLevel::Fast));
    let mut x = 0x9E37_79B9u32;
    for _ in 0..16 {
        let pixels: Vec<u16> = (0..side * side)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x & 63) as u16
            })
            .collect();
        enc.write_image::<Gray16>(side, side, &pixels)
            .expect("page");
    }
    drop(enc);
    let out = run_with_address_space(
        &s,
        350 << 20,
        1,
        &words("-j 16 median --size 3 in.tif -o out.tif"),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("workers instead of 16"), "{stderr}");
    let result = imfilter::stack::Stack::open(&s.path("out.tif")).expect("output opens");
    assert_eq!(result.len(), 16);
}
