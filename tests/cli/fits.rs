//! FITS input (issue 15): files written by astropy (`fixtures/fits/make_fits_fixtures.py`)
//! read as the values astropy reads from them, as a stack, a directory, a flat and a dark; bad
//! FITS files give one line naming the file and the problem.

use std::fs;
use std::path::PathBuf;

use crate::support::{
    Nan, Scratch, assert_identical, assert_one_line_error, assert_succeeded, fixtures, read_image,
};

fn fits(name: &str) -> PathBuf {
    fixtures().join("fits").join(name)
}

/// `crop` of the whole 23 x 17 image keeps the type: its output is the pixels as read.
fn read_through_crop(s: &Scratch, input: &PathBuf, out: &str) {
    s.imfilter()
        .args(["crop", "--roi", "0,0,23,17"])
        .arg(input)
        .args(["-o", out, "-q", "--force"])
        .assert()
        .success();
}

#[test]
fn every_fits_fixture_reads_as_astropy_reads_it() {
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(fits("manifest.json")).expect("manifest.json"))
            .expect("json");
    let entries = manifest.as_object().expect("an object");
    assert_eq!(entries.len(), 18, "the fixture set is incomplete");
    let s = Scratch::new();
    for (name, entry) in entries {
        read_through_crop(&s, &fits(name), "out.tif");
        let golden = fits(entry["golden"].as_str().expect("golden"));
        // Bit for bit, NaN included: BLANK gives numpy's NaN.
        assert_identical(&s.path("out.tif"), &golden, Nan::Bits);
        let image = read_image(&s.path("out.tif"));
        assert_eq!(
            image.dtype,
            entry["dtype"].as_str().expect("dtype"),
            "{name}"
        );
        assert_eq!(
            image.pages as u64,
            entry["pages"].as_u64().expect("pages"),
            "{name}"
        );
    }
}

#[test]
fn scaled_values_are_astropys_not_the_stored_integers() {
    // The golden test would also pass on a reader that scaled nothing if the goldens were
    // unscaled; pin what astropy's rule gives for known stored values.
    let s = Scratch::new();
    read_through_crop(&s, &fits("scaled_int16_blank.fits"), "out.tif");
    let image = read_image(&s.path("out.tif"));
    assert_eq!(image.dtype, "float32");
    // Stored -32768 (the minimum, also BLANK) is NaN; stored 32767 is 32767 * 0.5 + 10.
    assert!(image.values[0].is_nan() && (5..9).all(|i| image.values[i].is_nan()));
    assert_eq!(image.values[1], 32767.0 * 0.5 + 10.0);
    read_through_crop(&s, &fits("uint16.fits"), "u16.tif");
    let u16s = read_image(&s.path("u16.tif"));
    assert_eq!(
        (u16s.dtype, u16s.values[0], u16s.values[1]),
        ("uint16", 0.0, 65535.0)
    );
    read_through_crop(&s, &fits("int8.fits"), "i8.tif");
    let i8s = read_image(&s.path("i8.tif"));
    assert_eq!(
        (i8s.dtype, i8s.values[0], i8s.values[1]),
        ("int16", -128.0, 127.0)
    );
}

#[test]
fn a_directory_of_fits_files_is_one_stack_in_natural_order() {
    let s = Scratch::new();
    read_through_crop(&s, &fits("dir"), "out.tif");
    // proj_1.fits, proj_2.fit, proj_10.fts
    assert_identical(&s.path("out.tif"), &fits("dir.tif"), Nan::Bits);
}

#[test]
fn median_over_a_fits_stack_equals_median_over_the_same_stack_as_tiff() {
    let s = Scratch::new();
    for (input, twin) in [
        ("cube.fits", "cube.tif"),
        ("multi_hdu.fits", "multi_hdu.tif"),
    ] {
        for (from, out) in [
            (fits(input), "from_fits.tif"),
            (fits(twin), "from_tiff.tif"),
        ] {
            s.imfilter()
                .args(["median", "--size", "3"])
                .arg(from)
                .args(["-o", out, "-q", "--force"])
                .assert()
                .success();
        }
        assert_identical(
            &s.path("from_fits.tif"),
            &s.path("from_tiff.tif"),
            Nan::Bits,
        );
    }
}

#[test]
fn fits_flats_and_darks_correct_as_their_tiff_twins_do() {
    let s = Scratch::new();
    let run = |flat: &str, dark: &str, input: &str, out: &str| {
        s.imfilter()
            .arg("background-correct")
            .arg("--flat")
            .arg(fits(flat))
            .arg("--dark")
            .arg(fits(dark))
            .arg(fits(input))
            .args(["-o", out, "-q"])
            .assert()
            .success();
    };
    run("flat.fits", "dark.fits", "multi_hdu.fits", "from_fits.tif");
    run("flat.tif", "dark.tif", "multi_hdu.tif", "from_tiff.tif");
    assert_identical(
        &s.path("from_fits.tif"),
        &s.path("from_tiff.tif"),
        Nan::Bits,
    );
    assert_eq!(read_image(&s.path("from_fits.tif")).pages, 3);
}

#[test]
fn info_describes_a_fits_file() {
    let s = Scratch::new();
    let out = s
        .imfilter()
        .args(["info", "--json"])
        .arg(fits("multi_hdu.fits"))
        .output()
        .expect("run");
    assert_succeeded(&out);
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(info["format"], "FITS");
    assert_eq!(info["pages"], 3);
    assert_eq!(
        (info["width"].clone(), info["height"].clone()),
        (23.into(), 17.into())
    );
    assert_eq!(info["dtype"], "uint16");
    assert_eq!(info["byte_order"], "big-endian");
    let text = s
        .imfilter()
        .args(["info", "--stats"])
        .arg(fits("scaled_int16_blank.fits"))
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("format:      FITS"), "{text}");
    assert!(text.contains("dtype:       float32"), "{text}");
    assert!(text.contains("FITS scaling"), "{text}");
}

#[test]
fn results_of_fits_inputs_are_tiffs_named_tif() {
    let s = Scratch::new();
    fs::copy(fits("cube.fits"), s.path("scan.fits")).expect("copy");
    s.imfilter()
        .args(["median", "--size", "3", "scan.fits", "-q"])
        .assert()
        .success();
    assert!(s.path("scan_median.tif").is_file(), "{:?}", s.all_files());
    crate::support::copy_tree(&fits("dir"), &s.path("Tomo"));
    s.imfilter()
        .args(["median", "--size", "3", "Tomo", "-o", "Tomo_median/", "-q"])
        .assert()
        .success();
    let mut written: Vec<_> = fs::read_dir(s.path("Tomo_median"))
        .expect("output directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written, ["proj_1.tif", "proj_10.tif", "proj_2.tif"]);
}

#[test]
fn in_place_on_a_fits_file_is_refused_and_the_file_kept() {
    let s = Scratch::new();
    fs::copy(fits("uint16.fits"), s.path("scan.fits")).expect("copy");
    let before = fs::read(s.path("scan.fits")).expect("read");
    let out = s
        .imfilter()
        .args(["crop", "--roi", "0,0,10,10", "--in-place", "scan.fits"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_one_line_error(&out.stderr, &["scan.fits", "FITS", "-o"]);
    assert_eq!(fs::read(s.path("scan.fits")).expect("read"), before);
}

// --- bad input ------------------------------------------------------------------------------

/// `bytes` as the input, as the flat, and with `info`: each exits 1 with one line naming the
/// file and containing every part of `what`, prints nothing on stdout, leaves nothing behind.
fn refused(bytes: &[u8], what: &[&str]) {
    let s = Scratch::new();
    let name = "crafted.fits";
    fs::write(s.path(name), bytes).expect("write");
    let before = s.all_files();
    let runs: [&[&str]; 3] = [
        &[
            "background-correct",
            "--flat",
            "sample/flat.tif",
            name,
            "-o",
            "out.tif",
        ],
        &[
            "background-correct",
            "--flat",
            name,
            "sample/stack.tif",
            "-o",
            "out.tif",
        ],
        &["info", name],
    ];
    for args in runs {
        let out = s.imfilter().args(args).output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        let mut parts = what.to_vec();
        parts.push(name);
        assert_one_line_error(&out.stderr, &parts);
        assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
    }
    assert_eq!(s.all_files(), before, "something was left behind");
}

/// A valid single-image file (int16, 23 x 17, one header block) to break.
fn valid() -> Vec<u8> {
    fs::read(fits("int16.fits")).expect("int16.fits")
}

/// `bytes` with the value of `keyword`'s card replaced by `value` (right-aligned in columns
/// 11–30, as FITS writes integers).
fn with_card(mut bytes: Vec<u8>, keyword: &str, value: &str) -> Vec<u8> {
    let key = format!("{keyword:<8}= ");
    let at = (0..2880)
        .step_by(80)
        .find(|&i| bytes[i..].starts_with(key.as_bytes()))
        .unwrap_or_else(|| panic!("no {keyword} card"));
    let card = format!("{key}{value:>20}");
    bytes[at..at + 80].copy_from_slice(format!("{card:<80}").as_bytes());
    bytes
}

#[test]
fn the_crafted_control_is_accepted() {
    // Each variant below breaks this file in one way, so each fails for its own reason.
    let s = Scratch::new();
    fs::write(s.path("crafted.fits"), with_card(valid(), "NAXIS1", "23")).expect("write");
    read_through_crop(&s, &s.path("crafted.fits"), "out.tif");
    assert_identical(&s.path("out.tif"), &fits("int16.tif"), Nan::Bits);
}

#[test]
fn truncated_data_is_refused() {
    let mut bytes = valid();
    bytes.truncate(2880 + 100);
    refused(
        &bytes,
        &["HDU 0", "run past the end of the file", "truncated"],
    );
}

#[test]
fn a_header_cut_short_or_without_end_is_refused() {
    let mut cut = valid();
    cut.truncate(300); // within the cards, before END
    refused(&cut, &["no END card"]);
    let mut no_end = valid();
    let end = (0..2880)
        .step_by(80)
        .find(|&i| no_end[i..].starts_with(b"END "))
        .expect("END");
    no_end[end..end + 8].copy_from_slice(b"COMMENT ");
    refused(&no_end, &["no END card"]);
}

#[test]
fn sizes_the_file_cannot_hold_are_refused_before_anything_is_sized() {
    refused(
        &with_card(valid(), "NAXIS1", "100000"),
        &["run past the end"],
    );
    let mut cube = with_card(valid(), "NAXIS", "3");
    // NAXIS3 takes the place of EXTEND, the card after NAXIS2.
    let extend = (0..2880)
        .step_by(80)
        .find(|&i| cube[i..].starts_with(b"EXTEND"))
        .expect("EXTEND");
    cube[extend..extend + 80]
        .copy_from_slice(format!("{:<80}", "NAXIS3  = 999999999999").as_bytes());
    refused(&cube, &["run past the end"]);
    let huge = with_card(
        with_card(cube, "NAXIS1", "9999999999"),
        "NAXIS2",
        "9999999999",
    );
    refused(&huge, &["too large"]);
}

#[test]
fn unsupported_bitpix_is_refused() {
    refused(
        &with_card(valid(), "BITPIX", "12"),
        &["BITPIX = 12", "not a FITS data type"],
    );
    // An honest int64 image: imfilter has no int64 type.
    let mut int64 = with_card(valid(), "BITPIX", "64");
    int64.resize(2880 + 23 * 17 * 8, 0);
    refused(&int64, &["64-bit integer"]);
}

#[test]
fn a_header_that_is_not_ascii_is_refused() {
    let mut bytes = valid();
    bytes[5 * 80 + 40] = 0xc3;
    refused(&bytes, &["not printable ASCII", "0xc3"]);
}

#[test]
fn tables_one_axis_and_headers_without_data_are_refused() {
    refused(
        &fs::read(fits("table.fits")).expect("table.fits"),
        &["HDU 1 is a table", "BINTABLE"],
    );
    refused(&with_card(valid(), "NAXIS", "1"), &["2-D images"]);
    let mut no_data = with_card(valid(), "NAXIS", "0");
    no_data.truncate(2880);
    refused(&no_data, &["no image data"]);
    let mut garbage_after = valid();
    garbage_after.extend_from_slice(&[b'x'; 2880]);
    refused(&garbage_after, &["not an extension"]);
}
