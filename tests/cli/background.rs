//! `background-correct` against numpy's float32 references (fixtures/expected).

use std::os::unix::fs::FileExt;

use imfilter::pixel::DType;

use crate::sparse::sparse_stack;
use crate::support::{Scratch, assert_matches_reference, fixtures, read_stack};

fn expected(name: &str) -> std::path::PathBuf {
    fixtures().join("expected").join(name)
}

/// `background-correct ARGS -o out.tif` in a fresh scratch copy of the sample, compared with
/// the numpy reference `expected`.
fn corrects_like_numpy(args: &[&str], expected_name: &str) {
    let s = Scratch::new();
    s.imfilter()
        .arg("background-correct")
        .args(args)
        .args(["-o", "out.tif"])
        .assert()
        .success();
    assert_matches_reference(&s.path("out.tif"), &expected(expected_name));
}

const FLAT_DARK: [&str; 4] = ["--flat", "sample/flat.tif", "--dark", "sample/dark.tif"];

#[test]
fn sample_stack_matches_numpy() {
    corrects_like_numpy(
        &[&FLAT_DARK[..], &["sample/stack.tif"]].concat(),
        "bc_mean.tif",
    );
}

#[test]
fn median_of_flats_and_darks_matches_numpy() {
    let args = [
        &["--average", "median"],
        &FLAT_DARK[..],
        &["sample/stack.tif"],
    ]
    .concat();
    corrects_like_numpy(&args, "bc_median.tif");
}

#[test]
fn without_dark_the_dark_is_zero() {
    corrects_like_numpy(
        &["--flat", "sample/flat.tif", "sample/stack.tif"],
        "bc_nodark.tif",
    );
}

#[test]
fn cutoff_clips_above() {
    let args = [&FLAT_DARK[..], &["--cutoff", "1.05", "sample/stack.tif"]].concat();
    corrects_like_numpy(&args, "bc_cutoff.tif");
}

#[test]
fn directories_in_natural_order_give_the_same_result_as_files() {
    let args = [
        "--flat",
        "sample/Flat_Before/",
        "--dark",
        "sample/Dark_Before",
        "sample/Tomo/",
    ];
    corrects_like_numpy(&args, "bc_mean.tif");
}

#[test]
fn repeated_flat_paths_are_pooled() {
    let mut args = Vec::new();
    for i in 1..=3 {
        args.push("--flat".to_string());
        args.push(format!("sample/Flat_Before/flat_{i}.tif"));
    }
    args.extend(["--dark", "sample/dark.tif", "sample/stack.tif"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    corrects_like_numpy(&args, "bc_mean.tif");
}

/// `fixtures/variants/stack_NAME.tif`, as an absolute path string.
fn variant(name: &str) -> String {
    let path = fixtures()
        .join("variants")
        .join(format!("stack_{name}.tif"));
    path.to_str().expect("utf-8 path").to_string()
}

#[test]
fn stacks_written_other_ways_give_the_same_result() {
    for name in ["bigendian", "bigtiff", "rowsperstrip1", "imagej"] {
        corrects_like_numpy(
            &[&FLAT_DARK[..], &[variant(name).as_str()]].concat(),
            "bc_mean.tif",
        );
    }
}

#[test]
fn every_sample_type_is_corrected_in_float32() {
    for dtype in ["uint8", "uint32", "int16", "int32", "float32", "float64"] {
        let input = variant(dtype);
        let args = [&FLAT_DARK[..], &[input.as_str()]].concat();
        corrects_like_numpy(&args, &format!("bc_{dtype}.tif"));
    }
}

#[test]
fn output_is_a_mappable_imagej_float32_stack() {
    let s = Scratch::new();
    s.imfilter()
        .args([
            "background-correct",
            "--flat",
            "sample/flat.tif",
            "sample/stack.tif",
            "-o",
            "out.tif",
        ])
        .assert()
        .success();
    let info = s
        .imfilter()
        .args(["info", "--json", "out.tif"])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&info.get_output().stdout).expect("json");
    assert_eq!(v["pages"], 12);
    assert_eq!(v["dtype"], "float32");
    assert_eq!(v["contiguous"], true);
    assert_eq!(v["compression"], "none");
    let bytes = std::fs::read(s.path("out.tif")).expect("read");
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("ImageJ=1.11a\nimages=12\nslices=12"),
        "ImageJ description missing"
    );
    let (pages, w, h, _) = read_stack(&s.path("out.tif"));
    assert_eq!((pages, w, h), (12, 67, 45));
}

#[test]
fn flats_read_in_place_or_decoded_average_alike_in_page_order() {
    // Float flats whose mean depends on the order of the additions (1e20 + x − 1e20 is 0, but
    // −1e20 + 1e20 + x is x), with more pixels than one band of the averaging loop, read once
    // in place and once decoded from a Deflate copy: both must give the page-order f64 mean.
    let s = Scratch::new();
    let (side, pages) = (150, 3);
    let pixels = side * side;
    let value = |page: usize, p: usize| -> f32 {
        match (page + p) % 3 {
            0 => 1e20,
            1 => 1.0 + (p % 7) as f32,
            _ => -1e20,
        }
    };
    let write = |name: &str, pages: usize, value: &dyn Fn(usize, usize) -> f32| {
        let (file, layout) = sparse_stack(&s.path(name), pages, side, DType::F32, false);
        let bytes: Vec<u8> = (0..pages)
            .flat_map(|k| (0..pixels).map(move |p| (k, p)))
            .flat_map(|(k, p)| value(k, p).to_ne_bytes())
            .collect();
        file.write_all_at(&bytes, layout.data_offset)
            .expect("pixels");
    };
    write("vals.tif", pages, &value);
    write("ones.tif", 1, &|_, _| 1.0);
    // (v − 0) / 1 = v: a Deflate copy of the flats, which has to be decoded to be read.
    s.imfilter()
        .args(["background-correct", "--flat", "ones.tif", "vals.tif"])
        .args(["-o", "vals_deflate.tif", "--compress", "deflate"])
        .assert()
        .success();
    let expected: Vec<f64> = (0..pixels)
        .map(|p| {
            let sum = (0..pages).fold(0f64, |sum, k| sum + f64::from(value(k, p)));
            let flat = (sum / pages as f64) as f32;
            f64::from(1.0f32 / flat.max(1e-6))
        })
        .collect();
    for flat in ["vals.tif", "vals_deflate.tif"] {
        s.imfilter()
            .args(["background-correct", "--flat", flat, "ones.tif"])
            .args(["-o", "out.tif", "--force"])
            .assert()
            .success();
        let (_, _, _, got) = read_stack(&s.path("out.tif"));
        assert!(got == expected, "flat {flat}: not the page-order mean");
    }
}
