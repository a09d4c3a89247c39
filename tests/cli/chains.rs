//! Chains (`imfilter run --step …`): one read, one write, the same result as the steps run one
//! by one, and a clear error for a chain that cannot run.

use std::fs;

use crate::support::{Scratch, assert_one_line_error, fixtures, one_line_error, read_stack};

const BG: &str = "background-correct --flat sample/flat.tif --dark sample/dark.tif";
const OUTLIERS: &str = "remove-outliers --size 3 --threshold 500 --both";
const MEDIAN: &str = "median --size 3";

/// Runs `imfilter -q run` with `steps` on `input` into `output`.
fn run_chain(s: &Scratch, steps: &[&str], input: &str, output: &str) {
    let mut cmd = s.imfilter();
    cmd.args(["-q", "run"]);
    for step in steps {
        cmd.args(["--step", step]);
    }
    cmd.args([input, "-o", output]).assert().success();
}

/// Runs each of `steps` as its own command, through intermediate files; returns the last.
fn run_one_by_one(s: &Scratch, steps: &[&str], input: &str) -> String {
    let mut from = input.to_string();
    for (k, step) in steps.iter().enumerate() {
        let to = format!("step{k}.tif");
        s.imfilter()
            .arg("-q")
            .args(shlex::split(step).expect("words"))
            .args([from.as_str(), "-o", to.as_str(), "--force"])
            .assert()
            .success();
        from = to;
    }
    from
}

fn bits(path: &std::path::Path) -> (usize, u32, u32, Vec<u64>) {
    let (pages, w, h, values) = read_stack(path);
    (pages, w, h, values.iter().map(|v| v.to_bits()).collect())
}

#[test]
fn a_chain_equals_its_steps_run_one_by_one_bit_for_bit() {
    let s = Scratch::new();
    for steps in [
        &[BG, OUTLIERS, MEDIAN][..],
        &[OUTLIERS, MEDIAN, BG][..],
        &[MEDIAN, MEDIAN][..],
        &[BG][..],
    ] {
        run_chain(&s, steps, "sample/stack.tif", "chained.tif");
        let separate = run_one_by_one(&s, steps, "sample/stack.tif");
        assert_eq!(
            bits(&s.path("chained.tif")),
            bits(&s.path(&separate)),
            "{steps:?}"
        );
        fs::remove_file(s.path("chained.tif")).expect("rm");
    }
}

#[test]
fn a_chain_equals_the_composed_numpy_reference() {
    // bc_then_median3.tif: numpy's background correction, then scipy's 3x3 median.
    let s = Scratch::new();
    run_chain(&s, &[BG, MEDIAN], "sample/Tomo", "out.tif");
    let (got, want) = (
        read_stack(&s.path("out.tif")),
        read_stack(&fixtures().join("expected/bc_then_median3.tif")),
    );
    assert_eq!((got.0, got.1, got.2), (want.0, want.1, want.2));
    let differing = got
        .3
        .iter()
        .zip(&want.3)
        .filter(|(a, b)| a != b && !(a.is_nan() && b.is_nan()))
        .count();
    assert_eq!(differing, 0);
}

#[test]
fn the_history_records_every_step_in_order() {
    let s = Scratch::new();
    run_chain(&s, &[OUTLIERS, BG, MEDIAN], "sample/stack.tif", "out.tif");
    let text = fs::read_to_string(s.path("out.json")).expect("sidecar");
    let history: serde_json::Value = serde_json::from_str(&text).expect("json");
    let operations: Vec<&str> = history["operation_history"]
        .as_array()
        .expect("list")
        .iter()
        .map(|run| run["operation"].as_str().expect("name"))
        .collect();
    assert_eq!(
        operations,
        ["remove-outliers", "background-correct", "median"]
    );
    assert_eq!(
        history["operation_history"][2]["parameters"]["size"],
        serde_json::json!(3)
    );
}

#[test]
fn a_chain_directory_to_directory_keeps_the_names() {
    let s = Scratch::new();
    run_chain(&s, &[BG, MEDIAN], "sample/Tomo", "out/");
    assert!(s.path("out/proj_1.tif").exists());
    assert_eq!(fs::read_dir(s.path("out")).expect("list").count(), 12);
}

/// `imfilter run` with `steps` must exit 2 with one line containing `must_contain`, and write
/// nothing.
fn refused(steps: &[&str], must_contain: &[&str]) {
    let s = Scratch::new();
    let mut args = vec!["run"];
    for step in steps {
        args.extend(["--step", step]);
    }
    one_line_error(&s, &args, "sample/stack.tif", 2, must_contain);
}

#[test]
fn a_chain_that_cannot_run_names_its_step_and_exits_2() {
    refused(&[MEDIAN, "blur --size 3"], &["--step 2", "blur"]);
    refused(&["median --sizes 3"], &["--step 1", "--sizes"]);
    refused(&[MEDIAN, ""], &["--step 2", "empty"]);
    refused(&["median --size '3"], &["--step 1", "quotes"]);
    // Input and output belong to `run`, not to a step.
    refused(&["median --size 3 -o x.tif"], &["--step 1", "-o"]);
}

#[test]
fn flats_of_another_shape_name_their_step() {
    let s = Scratch::new();
    s.copy_fixture("bad/other_shape.tif", "other.tif");
    let out = s
        .imfilter()
        .args([
            "run",
            "--step",
            MEDIAN,
            "--step",
            "background-correct --flat other.tif",
        ])
        .args(["sample/stack.tif", "-o", "out.tif"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert_one_line_error(&out.stderr, &["--step 2 (background-correct)", "other.tif"]);
    assert!(!s.path("out.tif").exists());
}

#[test]
fn run_without_steps_is_a_usage_error() {
    let s = Scratch::new();
    let out = s
        .imfilter()
        .args(["run", "sample/stack.tif", "-o", "out.tif"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--step"));
}
