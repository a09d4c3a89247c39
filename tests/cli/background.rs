//! `background-correct` against numpy's float32 references (fixtures/expected).

use crate::support::{Scratch, assert_matches_reference, fixtures, read_stack};

fn expected(name: &str) -> std::path::PathBuf {
    fixtures().join("expected").join(name)
}

#[test]
fn sample_stack_matches_numpy() {
    let s = Scratch::new();
    s.imfilter()
        .args([
            "background-correct",
            "--flat",
            "sample/flat.tif",
            "--dark",
            "sample/dark.tif",
        ])
        .args(["sample/stack.tif", "-o", "out.tif"])
        .assert()
        .success();
    assert_matches_reference(&s.path("out.tif"), &expected("bc_mean.tif"));
}

#[test]
fn median_of_flats_and_darks_matches_numpy() {
    let s = Scratch::new();
    s.imfilter()
        .args([
            "background-correct",
            "--average",
            "median",
            "--flat",
            "sample/flat.tif",
        ])
        .args([
            "--dark",
            "sample/dark.tif",
            "sample/stack.tif",
            "-o",
            "out.tif",
        ])
        .assert()
        .success();
    assert_matches_reference(&s.path("out.tif"), &expected("bc_median.tif"));
}

#[test]
fn without_dark_the_dark_is_zero() {
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
    assert_matches_reference(&s.path("out.tif"), &expected("bc_nodark.tif"));
}

#[test]
fn cutoff_clips_above() {
    let s = Scratch::new();
    s.imfilter()
        .args([
            "background-correct",
            "--flat",
            "sample/flat.tif",
            "--dark",
            "sample/dark.tif",
        ])
        .args(["--cutoff", "1.05", "sample/stack.tif", "-o", "out.tif"])
        .assert()
        .success();
    assert_matches_reference(&s.path("out.tif"), &expected("bc_cutoff.tif"));
}

#[test]
fn directories_in_natural_order_give_the_same_result_as_files() {
    let s = Scratch::new();
    s.imfilter()
        .args([
            "background-correct",
            "--flat",
            "sample/Flat_Before/",
            "--dark",
            "sample/Dark_Before",
        ])
        .args(["sample/Tomo/", "-o", "out.tif"])
        .assert()
        .success();
    assert_matches_reference(&s.path("out.tif"), &expected("bc_mean.tif"));
}

#[test]
fn repeated_flat_paths_are_pooled() {
    let s = Scratch::new();
    let flats = [
        "sample/Flat_Before/flat_1.tif",
        "sample/Flat_Before/flat_2.tif",
        "sample/Flat_Before/flat_3.tif",
    ];
    let mut cmd = s.imfilter();
    cmd.arg("background-correct");
    for f in flats {
        cmd.args(["--flat", f]);
    }
    cmd.args([
        "--dark",
        "sample/dark.tif",
        "sample/stack.tif",
        "-o",
        "out.tif",
    ])
    .assert()
    .success();
    assert_matches_reference(&s.path("out.tif"), &expected("bc_mean.tif"));
}

#[test]
fn stacks_written_other_ways_give_the_same_result() {
    for variant in ["bigendian", "bigtiff", "rowsperstrip1", "imagej"] {
        let s = Scratch::new();
        let input = fixtures()
            .join("variants")
            .join(format!("stack_{variant}.tif"));
        s.imfilter()
            .args([
                "background-correct",
                "--flat",
                "sample/flat.tif",
                "--dark",
                "sample/dark.tif",
            ])
            .arg(&input)
            .args(["-o", "out.tif"])
            .assert()
            .success();
        assert_matches_reference(&s.path("out.tif"), &expected("bc_mean.tif"));
    }
}

#[test]
fn every_sample_type_is_corrected_in_float32() {
    for dtype in ["uint8", "uint32", "int16", "int32", "float32", "float64"] {
        let s = Scratch::new();
        let input = fixtures()
            .join("variants")
            .join(format!("stack_{dtype}.tif"));
        s.imfilter()
            .args([
                "background-correct",
                "--flat",
                "sample/flat.tif",
                "--dark",
                "sample/dark.tif",
            ])
            .arg(&input)
            .args(["-o", "out.tif"])
            .assert()
            .success();
        assert_matches_reference(&s.path("out.tif"), &expected(&format!("bc_{dtype}.tif")));
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
