//! A scratch directory with copies of the fixtures, the binary, and a TIFF reader that is
//! not imfilter's own (the `tiff` crate), so tests check files as other software sees them.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tiff::decoder::{Decoder, DecodingResult};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A temporary directory holding a copy of `fixtures/sample` as `sample/`.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("temp dir");
        copy_tree(&fixtures().join("sample"), &dir.path().join("sample"));
        Scratch { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `imfilter -v` run in the scratch directory: stderr is not a terminal here, so without
    /// `-v` a successful run prints nothing, and most tests read its summary line.
    pub fn imfilter(&self) -> Command {
        let mut cmd = self.imfilter_as_cron_runs_it();
        cmd.arg("-v");
        cmd
    }

    /// `imfilter` with nothing added, as cron or a pipeline runs it.
    pub fn imfilter_as_cron_runs_it(&self) -> Command {
        let mut cmd = Command::cargo_bin("imfilter").expect("binary built");
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// Every file name in the scratch directory tree, for "nothing else was left" checks.
    pub fn all_files(&self) -> Vec<String> {
        let mut names = Vec::new();
        walk(self.dir.path(), &mut names);
        names.sort();
        names
    }

    /// Copies `fixtures/<fixture>` to `<name>` in the scratch directory.
    pub fn copy_fixture(&self, fixture: &str, name: &str) {
        fs::copy(fixtures().join(fixture), self.path(name)).expect("copy fixture");
    }

    /// Fails the test if any imfilter temporary file is left in the scratch tree.
    pub fn assert_no_temp_files(&self) {
        let left = self.temp_files();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }

    /// Waits until a run has created its temporary output (its input is parsed and the work
    /// has begun), failing the test after `limit`.
    pub fn wait_for_temp_file(&self, limit: std::time::Duration) {
        let started = std::time::Instant::now();
        while self.temp_files().is_empty() {
            assert!(started.elapsed() < limit, "no temporary output appeared");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// imfilter's temporary files (`.NAME.imfilter-XXXXXX`) anywhere in the scratch tree.
    pub fn temp_files(&self) -> Vec<String> {
        self.all_files()
            .into_iter()
            .filter(|n| n.contains(".imfilter-"))
            .collect()
    }
}

fn walk(dir: &Path, out: &mut Vec<String>) {
    for e in fs::read_dir(dir).expect("list") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p.file_name().expect("name").to_string_lossy().into_owned());
        }
    }
}

pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).expect("list") {
        let p = e.expect("entry").path();
        let target = to.join(p.file_name().expect("name"));
        if p.is_dir() {
            copy_tree(&p, &target);
        } else {
            fs::copy(&p, &target).expect("copy");
        }
    }
}

/// Opens `path` with the `tiff` crate and hands each page's samples to `page`, in order;
/// returns (pages, width, height), the size being the first page's.
fn decode_pages(path: &Path, mut page: impl FnMut(DecodingResult)) -> (usize, u32, u32) {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut d = Decoder::new(std::io::BufReader::new(file)).expect("the tiff crate opens it");
    let (w, h) = d.dimensions().expect("dimensions");
    let mut pages = 0;
    loop {
        pages += 1;
        page(d.read_image().expect("decodes"));
        if !d.more_images() {
            break;
        }
        d.next_image().expect("next page");
    }
    (pages, w, h)
}

/// All pages of a TIFF as f64 values, with (pages, width, height).
pub fn read_stack(path: &Path) -> (usize, u32, u32, Vec<f64>) {
    let mut values = Vec::new();
    let (pages, w, h) = decode_pages(path, |samples| match samples {
        DecodingResult::F32(v) => values.extend(v.iter().map(|&x| f64::from(x))),
        DecodingResult::U16(v) => values.extend(v.iter().map(|&x| f64::from(x))),
        DecodingResult::U8(v) => values.extend(v.iter().map(|&x| f64::from(x))),
        DecodingResult::F64(v) => values.extend(v),
        other => panic!(
            "unexpected sample type {:?}",
            std::mem::discriminant(&other)
        ),
    });
    (pages, w, h, values)
}

/// Asserts `actual` equals the float32 reference within numpy's rtol of 1e-6.
pub fn assert_matches_reference(actual: &Path, expected: &Path) {
    let (pa, wa, ha, a) = read_stack(actual);
    let (pe, we, he, e) = read_stack(expected);
    assert_eq!(
        (pa, wa, ha),
        (pe, we, he),
        "{} has another shape",
        actual.display()
    );
    for (i, (x, y)) in a.iter().zip(&e).enumerate() {
        let ok = (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-6 * y.abs();
        assert!(ok, "{}: pixel {i} is {x}, reference {y}", actual.display());
    }
}

/// Runs imfilter in `s`'s directory with at most `bytes` of address space (`prlimit --as`)
/// and `arenas` malloc arenas: an allocation the limit cannot back then fails instead of
/// eating the machine, and the test sees how imfilter takes it. glibc reserves 64 MiB of
/// address space per arena, so the count is kept small for the limit to measure imfilter,
/// not the machine's core count. With `-v`, as the tests read its notes.
pub fn run_with_address_space(
    s: &Scratch,
    bytes: u64,
    arenas: u32,
    args: &[&str],
) -> std::process::Output {
    std::process::Command::new("prlimit")
        .arg(format!("--as={bytes}"))
        .arg(assert_cmd::cargo::cargo_bin!("imfilter"))
        .arg("-v")
        .args(args)
        .current_dir(s.dir.path())
        .env("MALLOC_ARENA_MAX", arenas.to_string())
        .output()
        .unwrap_or_else(|e| panic!("prlimit (util-linux) is needed for this test: {e}"))
}

/// A command that must have succeeded; its stderr says why not.
pub fn assert_succeeded(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The one-line error contract: `imfilter: error: ...`, one line, no panic.
pub fn assert_one_line_error(stderr: &[u8], must_contain: &[&str]) {
    let text = String::from_utf8_lossy(stderr);
    assert!(text.starts_with("imfilter: error: "), "stderr: {text}");
    assert_eq!(text.trim_end().lines().count(), 1, "stderr: {text}");
    assert!(!text.contains("panicked"), "stderr: {text}");
    for part in must_contain {
        assert!(text.contains(part), "stderr lacks {part:?}: {text}");
    }
}

// --- typed images and golden files ---------------------------------------------------------

/// A TIFF as another reader (the `tiff` crate) sees it: every page's values, of one type.
pub struct Image {
    pub pages: usize,
    pub width: u32,
    pub height: u32,
    /// numpy's name of the sample type.
    pub dtype: &'static str,
    /// Each value's bits: the IEEE bits of a float, the value of an integer.
    pub bits: Vec<u64>,
    pub values: Vec<f64>,
}

impl Image {
    /// The value of page `page`, row `row`, column `col`.
    pub fn at(&self, page: usize, row: usize, col: usize) -> f64 {
        let (w, h) = (self.width as usize, self.height as usize);
        self.values[(page * h + row) * w + col]
    }
}

/// Every page of the TIFF at `path`, with its sample type, each value's bits and each value.
pub fn read_image(path: &Path) -> Image {
    let mut dtype = "";
    let (mut bits, mut values) = (Vec::new(), Vec::new());
    let (pages, width, height) = decode_pages(path, |samples| {
        let (page_dtype, page_bits, page_values): (_, Vec<u64>, Vec<f64>) = match samples {
            DecodingResult::U8(v) => ("uint8", ints(&v), floats(&v)),
            DecodingResult::U16(v) => ("uint16", ints(&v), floats(&v)),
            DecodingResult::U32(v) => ("uint32", ints(&v), floats(&v)),
            DecodingResult::I16(v) => ("int16", ints(&v), floats(&v)),
            DecodingResult::I32(v) => ("int32", ints(&v), floats(&v)),
            DecodingResult::F32(v) => (
                "float32",
                v.iter().map(|x| u64::from(x.to_bits())).collect(),
                floats(&v),
            ),
            DecodingResult::F64(v) => ("float64", v.iter().map(|x| x.to_bits()).collect(), v),
            _ => panic!("{}: a sample type imfilter does not write", path.display()),
        };
        assert!(dtype.is_empty() || dtype == page_dtype, "mixed types");
        dtype = page_dtype;
        bits.extend(page_bits);
        values.extend(page_values);
    });
    Image {
        pages,
        width,
        height,
        dtype,
        bits,
        values,
    }
}

fn ints<T: Copy + Into<i64>>(v: &[T]) -> Vec<u64> {
    v.iter().map(|&x| x.into() as u64).collect()
}

fn floats<T: Copy + Into<f64>>(v: &[T]) -> Vec<f64> {
    v.iter().map(|&x| x.into()).collect()
}

/// `fixtures/ops/NAME`: the operations' inputs and numpy's results.
pub fn golden(name: &str) -> PathBuf {
    fixtures().join("ops").join(name)
}

/// A scratch directory with the sample and `fixtures/ops/NAME` copied in as `NAME`'s last
/// component, for each input.
pub fn scratch_with(inputs: &[&str]) -> Scratch {
    let s = Scratch::new();
    for name in inputs {
        s.copy_fixture(
            &format!("ops/{name}"),
            name.rsplit('/').next().expect("name"),
        );
    }
    s
}

/// Same pages, width, height and sample type.
pub fn assert_same_format(actual: &Image, expected: &Image, what: &str) {
    assert_eq!(
        (actual.pages, actual.width, actual.height, actual.dtype),
        (
            expected.pages,
            expected.width,
            expected.height,
            expected.dtype
        ),
        "{what}: pages, width, height, type"
    );
}

/// What a bit-for-bit comparison makes of NaN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nan {
    /// A NaN's bits count too: its sign and payload.
    Bits,
    /// Any NaN equals any NaN.
    Any,
}

/// Same pages, shape, type and every value's bits (a NaN's as `nan` says).
pub fn assert_identical(actual: &Path, expected: &Path, nan: Nan) {
    let (a, e) = (read_image(actual), read_image(expected));
    let what = expected.display().to_string();
    assert_same_format(&a, &e, &what);
    let same = |i: usize| {
        a.bits[i] == e.bits[i] || (nan == Nan::Any && a.values[i].is_nan() && e.values[i].is_nan())
    };
    if let Some(i) = (0..a.bits.len()).find(|&i| !same(i)) {
        panic!(
            "{what}: value {i} is {:e}, the reference {:e}",
            a.values[i], e.values[i]
        );
    }
}

/// How far a finite value may be from its finite reference: equal, or within any one of these.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tolerance {
    /// float32 steps, between values of one sign (the reference must be float32 if not 0).
    pub float32_ulps: u32,
    /// Of the reference value; the bound is this share of it plus `of_largest`'s.
    pub relative: f64,
    /// Of the reference's largest finite magnitude.
    pub of_largest: f64,
}

/// Same pages, shape and type; NaN where the reference is NaN, an infinity where it is that
/// infinity; finite values within the tolerance `tolerance` gives for the reference's type.
pub fn assert_close(actual: &Path, expected: &Path, tolerance: impl Fn(&str) -> Tolerance) {
    let (a, e) = (read_image(actual), read_image(expected));
    let what = expected.display().to_string();
    assert_same_format(&a, &e, &what);
    let t = tolerance(e.dtype);
    if t.float32_ulps > 0 {
        assert_eq!(e.dtype, "float32");
    }
    let largest = e
        .values
        .iter()
        .filter(|v| v.is_finite())
        .fold(0f64, |m, v| m.max(v.abs()));
    for (i, (&x, &y)) in a.values.iter().zip(&e.values).enumerate() {
        let ok = if !x.is_finite() || !y.is_finite() {
            x == y || (x.is_nan() && y.is_nan())
        } else {
            // Finite floats of one sign are ordered as their bit patterns are.
            x == y
                || (t.float32_ulps > 0
                    && x.is_sign_negative() == y.is_sign_negative()
                    && (a.bits[i] as u32).abs_diff(e.bits[i] as u32) <= t.float32_ulps)
                || (x - y).abs() <= t.relative * y.abs() + t.of_largest * largest
        };
        assert!(ok, "{what}: value {i} is {x:e}, the reference {y:e}");
    }
}

// --- running imfilter ------------------------------------------------------------------------

/// `imfilter ARGS INPUT -o OUTPUT -q --force` in `s`, which must succeed.
pub fn run(s: &Scratch, args: &[&str], input: &str, output: &str) {
    s.imfilter()
        .args(args)
        .args([input, "-o", output, "-q", "--force"])
        .assert()
        .success();
}

/// `imfilter run --step …` on `input` (into `chained.tif`) equals, bit for bit (a NaN's bits
/// as `nan` says), running the same steps one by one as subcommands through intermediate files
/// (`step0.tif`, `step1.tif`, …).
pub fn chain_equals_steps_one_by_one(s: &Scratch, steps: &[&str], input: &str, nan: Nan) {
    let mut cmd = s.imfilter();
    cmd.arg("run");
    for step in steps {
        cmd.args(["--step", step]);
    }
    cmd.args([input, "-o", "chained.tif", "-q", "--force"])
        .assert()
        .success();
    let mut current = input.to_string();
    for (k, step) in steps.iter().enumerate() {
        let next = format!("step{k}.tif");
        let words = shlex::split(step).expect("words");
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        run(s, &words, &current, &next);
        current = next;
    }
    assert_identical(&s.path("chained.tif"), &s.path(&current), nan);
}

/// A usage error: exit 2, the message naming `parts`, and nothing written.
pub fn usage_error(s: &Scratch, args: &[&str], parts: &[&str]) {
    let out = s
        .imfilter()
        .args(args)
        .args(["sample/stack.tif", "-o", "out.tif"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stderr);
    for part in parts {
        assert!(
            text.contains(part),
            "{args:?}: stderr lacks {part:?}: {text}"
        );
    }
    assert!(!text.contains("panicked"), "{text}");
    assert!(!s.path("out.tif").exists());
}

/// An error found after parsing: exit `code`, one line naming `parts`, nothing written.
pub fn one_line_error(s: &Scratch, args: &[&str], input: &str, code: i32, parts: &[&str]) {
    let out = s
        .imfilter()
        .args(args)
        .args([input, "-o", "out.tif"])
        .assert()
        .code(code)
        .get_output()
        .clone();
    assert_one_line_error(&out.stderr, parts);
    assert!(!s.path("out.tif").exists());
    s.assert_no_temp_files();
}
