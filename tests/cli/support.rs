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

    /// `imfilter` run in the scratch directory, quiet unless the test asks otherwise.
    pub fn imfilter(&self) -> Command {
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

/// All pages of a TIFF as f64 values, with (pages, width, height).
pub fn read_stack(path: &Path) -> (usize, u32, u32, Vec<f64>) {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut d = Decoder::new(std::io::BufReader::new(file)).expect("tiff crate opens it");
    let (w, h) = d.dimensions().expect("dims");
    let mut values = Vec::new();
    let mut pages = 0;
    loop {
        pages += 1;
        match d.read_image().expect("decodes") {
            DecodingResult::F32(v) => values.extend(v.iter().map(|&x| f64::from(x))),
            DecodingResult::U16(v) => values.extend(v.iter().map(|&x| f64::from(x))),
            DecodingResult::U8(v) => values.extend(v.iter().map(|&x| f64::from(x))),
            DecodingResult::F64(v) => values.extend(v),
            other => panic!(
                "unexpected sample type {:?}",
                std::mem::discriminant(&other)
            ),
        }
        if !d.more_images() {
            break;
        }
        d.next_image().expect("next page");
    }
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
