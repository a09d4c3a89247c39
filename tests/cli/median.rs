//! `median` and `remove-outliers` on the sample stack, against scipy (fixtures/expected).

use crate::support::{Scratch, assert_one_line_error, fixtures, read_stack};

fn assert_same_pixels(actual: &std::path::Path, expected: &str) {
    let (pa, wa, ha, a) = read_stack(actual);
    let (pe, we, he, e) = read_stack(&fixtures().join("expected").join(expected));
    assert_eq!((pa, wa, ha), (pe, we, he));
    let differing = a
        .iter()
        .zip(&e)
        .filter(|(x, y)| x != y && !(x.is_nan() && y.is_nan()))
        .count();
    assert_eq!(
        differing,
        0,
        "{} differs from {expected} in {differing} pixels",
        actual.display()
    );
}

#[test]
fn median_3_equals_scipy() {
    let s = Scratch::new();
    s.imfilter()
        .args(["median", "--size", "3", "sample/stack.tif", "-o", "m.tif"])
        .assert()
        .success();
    assert_same_pixels(&s.path("m.tif"), "median3.tif");
    let info = s
        .imfilter()
        .args(["info", "--json", "m.tif"])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&info.get_output().stdout).expect("json");
    assert_eq!(v["dtype"], "uint16", "the output keeps the input's type");
}

#[test]
fn median_5_nearest_on_a_directory_equals_scipy() {
    let s = Scratch::new();
    s.imfilter()
        .args([
            "median",
            "--size",
            "5",
            "--mode",
            "nearest",
            "sample/Tomo/",
            "-o",
            "Tomo_median/",
        ])
        .assert()
        .success();
    let (_, _, _, all) = read_stack(&fixtures().join("expected/median5_nearest.tif"));
    let (_, _, _, page_10) = read_stack(&s.path("Tomo_median/proj_10.tif"));
    assert_eq!(
        page_10,
        all[9 * 45 * 67..10 * 45 * 67],
        "proj_10 is the tenth image"
    );
}

#[test]
fn median_in_place_keeps_the_type_and_replaces_the_input() {
    let s = Scratch::new();
    s.imfilter()
        .args(["median", "--size", "3", "--in-place", "sample/stack.tif"])
        .assert()
        .success();
    assert_same_pixels(&s.path("sample/stack.tif"), "median3.tif");
}

#[test]
fn background_correct_piped_into_median_equals_the_two_steps_through_files() {
    let s = Scratch::new();
    let bc = [
        "background-correct",
        "-q",
        "--flat",
        "sample/flat.tif",
        "--dark",
        "sample/dark.tif",
    ];
    let first = s
        .imfilter()
        .args(bc)
        .args(["sample/stack.tif", "-o", "-"])
        .output()
        .expect("runs");
    assert!(first.status.success());
    s.imfilter()
        .args(["median", "-q", "--size", "3", "-", "-o", "piped.tif"])
        .write_stdin(first.stdout)
        .assert()
        .success();
    s.imfilter()
        .args(bc)
        .args(["sample/stack.tif", "-o", "step1.tif"])
        .assert()
        .success();
    s.imfilter()
        .args([
            "median",
            "-q",
            "--size",
            "3",
            "step1.tif",
            "-o",
            "step2.tif",
        ])
        .assert()
        .success();
    let (_, _, _, piped) = read_stack(&s.path("piped.tif"));
    let (_, _, _, files) = read_stack(&s.path("step2.tif"));
    assert!(
        piped
            .iter()
            .zip(&files)
            .all(|(a, b)| a == b || (a.is_nan() && b.is_nan()))
    );
    assert_same_pixels(&s.path("piped.tif"), "bc_then_median3.tif");
}

#[test]
fn remove_outliers_equals_mantidimaging_rule_with_scipy_median() {
    let s = Scratch::new();
    let base = [
        "remove-outliers",
        "--size",
        "3",
        "--threshold",
        "500",
        "sample/stack.tif",
    ];
    s.imfilter()
        .args(base)
        .args(["-o", "bright.tif"])
        .assert()
        .success();
    assert_same_pixels(&s.path("bright.tif"), "outliers3_bright500.tif");
    s.imfilter()
        .args(base)
        .args(["--both", "-o", "both.tif"])
        .assert()
        .success();
    assert_same_pixels(&s.path("both.tif"), "outliers3_both500.tif");
}

#[test]
fn window_sizes_that_are_not_odd_and_at_least_3_are_usage_errors() {
    let s = Scratch::new();
    for bad in ["4", "0", "-3", "1", "three"] {
        let a = s
            .imfilter()
            .args(["median", "--size", bad, "sample/stack.tif"])
            .assert()
            .code(2);
        let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
        assert!(
            err.contains("odd whole number of at least 3"),
            "--size {bad}: {err}"
        );
    }
    let a = s
        .imfilter()
        .args([
            "median",
            "--size",
            "3",
            "--mode",
            "bounce",
            "sample/stack.tif",
        ])
        .assert()
        .code(2);
    assert!(
        String::from_utf8_lossy(&a.get_output().stderr)
            .contains("reflect, nearest, mirror, constant, wrap")
    );
    let a = s
        .imfilter()
        .args([
            "remove-outliers",
            "--size",
            "3",
            "--threshold",
            "5",
            "--dark",
            "--both",
            "sample/stack.tif",
        ])
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("cannot be used with"));
}

#[test]
fn median_of_a_bad_file_is_a_one_line_error() {
    let s = Scratch::new();
    let a = s
        .imfilter()
        .args(["median", "--size", "3"])
        .arg(fixtures().join("bad/rgb.tif"))
        .assert()
        .code(1);
    assert_one_line_error(&a.get_output().stderr, &["rgb.tif", "grayscale"]);
}
