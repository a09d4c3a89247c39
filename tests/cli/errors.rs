//! Bad input: a one-line error naming the file and the problem, exit 1, never a panic.

use crate::support::{Scratch, assert_one_line_error, fixtures};

fn fails_with(input: &str, parts: &[&str]) {
    let s = Scratch::new();
    let path = fixtures().join("bad").join(input);
    let a = s
        .imfilter()
        .args(["background-correct", "--flat", "sample/flat.tif"])
        .arg(&path)
        .args(["-o", "out.tif"])
        .assert()
        .code(1);
    let mut parts = parts.to_vec();
    parts.push(input);
    assert_one_line_error(&a.get_output().stderr, &parts);
    assert!(!s.path("out.tif").exists());
}

#[test]
fn empty_file() {
    fails_with("empty.tif", &["empty file"]);
}

#[test]
fn png_renamed_to_tif() {
    fails_with("png_renamed.tif", &["not a TIFF"]);
}

#[test]
fn rgb_image() {
    fails_with("rgb.tif", &["RGB", "grayscale"]);
}

#[test]
fn complex_samples() {
    fails_with("complex.tif", &["complex"]);
}

#[test]
fn one_bit_image() {
    fails_with("bilevel.tif", &["1-bit"]);
}

#[test]
fn old_style_jpeg_is_refused_by_name() {
    // New-style JPEG (7) is read since issue 15; the old style (6, TIFF 6.0 section 22, which
    // TIFF Technical Note 2 replaced) is not. The fixture's Compression entry, patched to 6.
    let s = Scratch::new();
    let mut bytes = std::fs::read(fixtures().join("bad/jpeg.tif")).expect("fixture");
    let entry = [0x03, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07, 0x00];
    let at = bytes
        .windows(entry.len())
        .position(|w| w == entry)
        .expect("a little-endian Compression = 7 entry");
    bytes[at + 8] = 6;
    std::fs::write(s.path("old_jpeg.tif"), bytes).expect("write");
    let a = s
        .imfilter()
        .args(["median", "--size", "3", "old_jpeg.tif", "-o", "out.tif"])
        .assert()
        .code(1);
    assert_one_line_error(
        &a.get_output().stderr,
        &[
            "old_jpeg.tif",
            "old-style JPEG compression is not supported",
        ],
    );
    assert!(!s.path("out.tif").exists());
}

#[test]
fn truncated_pixel_data() {
    fails_with("truncated_pixels.tif", &["truncated"]);
}

#[test]
fn truncated_directory() {
    fails_with("truncated_ifd.tif", &["truncated"]);
}

#[test]
fn pages_of_different_shapes_name_the_first_odd_page() {
    fails_with("mixed_shapes", &["a_2.tif page 0", "60x40", "67x45"]);
}

#[test]
fn directory_without_tiffs() {
    fails_with("no_tiffs", &["no .tif or .tiff files"]);
}

#[test]
fn missing_input() {
    fails_with("does_not_exist.tif", &["cannot open"]);
}

#[test]
fn flat_of_another_shape_names_both_shapes() {
    let s = Scratch::new();
    let flat = fixtures().join("bad/other_shape.tif");
    let a = s
        .imfilter()
        .args(["background-correct", "--flat"])
        .arg(&flat)
        .args(["sample/stack.tif", "-o", "out.tif"])
        .assert()
        .code(1);
    assert_one_line_error(
        &a.get_output().stderr,
        &["other_shape.tif", "flat", "60x40", "67x45"],
    );
}

#[test]
fn missing_output_directory() {
    let s = Scratch::new();
    let a = s
        .imfilter()
        .args([
            "background-correct",
            "--flat",
            "sample/flat.tif",
            "sample/stack.tif",
            "-o",
            "nowhere/out.tif",
        ])
        .assert()
        .code(1);
    assert_one_line_error(&a.get_output().stderr, &["nowhere", "does not exist"]);
}

#[test]
fn usage_errors_exit_2() {
    let s = Scratch::new();
    s.imfilter()
        .args(["background-correct", "sample/stack.tif"])
        .assert()
        .code(2);
    s.imfilter().args(["frobnicate"]).assert().code(2);
    s.imfilter()
        .args(["-j", "0", "info", "sample/stack.tif"])
        .assert()
        .code(2);
}

#[test]
fn info_describes_a_stack() {
    let s = Scratch::new();
    let a = s
        .imfilter()
        .args(["info", "sample/stack.tif"])
        .assert()
        .success();
    let out = String::from_utf8_lossy(&a.get_output().stdout).into_owned();
    for line in [
        "pages:       12",
        "width:       67",
        "height:      45",
        "dtype:       uint16",
        "little-endian",
        "classic TIFF",
    ] {
        assert!(out.contains(line), "info lacks {line:?}:\n{out}");
    }
    let big = s
        .imfilter()
        .args(["info", "--json"])
        .arg(fixtures().join("variants/stack_bigendian.tif"))
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&big.get_output().stdout).expect("json");
    assert_eq!(v["byte_order"], "big-endian");
    assert_eq!(v["readable_in_place"], false);
}
