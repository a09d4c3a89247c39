//! Chains written down: `run --pipeline steps.toml` and `run --replay result.json` give the
//! same result as the `--step`s they stand for.

use std::fs;

use crate::support::{Scratch, one_line_error, read_stack};

fn bits(path: &std::path::Path) -> Vec<u64> {
    read_stack(path).3.iter().map(|v| v.to_bits()).collect()
}

const PIPELINE: &str = r#"
# crop, flat-field, outliers, median: the flats follow the crop
[[step]]
operation = "crop"
roi = "2,3,60,40"

[[step]]
operation = "background-correct"
flat = ["sample/flat.tif"]
dark = ["sample/dark.tif"]
average = "median"

[[step]]
operation = "remove-outliers"
size = 3
threshold = 0.05
both = true

[[step]]
operation = "median"
size = 3
mode = "nearest"
"#;

const STEPS: [&str; 4] = [
    "crop --roi 2,3,60,40",
    "background-correct --flat sample/flat.tif --dark sample/dark.tif --average median",
    "remove-outliers --size 3 --threshold 0.05 --both",
    "median --size 3 --mode nearest",
];

fn run_steps(s: &Scratch, output: &str) {
    let mut cmd = s.imfilter();
    cmd.args(["-q", "run"]);
    for step in STEPS {
        cmd.args(["--step", step]);
    }
    cmd.args(["sample/stack.tif", "-o", output])
        .assert()
        .success();
}

#[test]
fn a_pipeline_file_runs_the_same_chain_as_its_steps() {
    let s = Scratch::new();
    fs::write(s.path("steps.toml"), PIPELINE).expect("write");
    run_steps(&s, "steps.tif");
    s.imfilter()
        .args([
            "-q",
            "run",
            "--pipeline",
            "steps.toml",
            "sample/stack.tif",
            "-o",
            "file.tif",
        ])
        .assert()
        .success();
    assert_eq!(bits(&s.path("file.tif")), bits(&s.path("steps.tif")));
}

#[test]
fn a_replayed_history_gives_the_same_result_on_the_same_images() {
    let s = Scratch::new();
    run_steps(&s, "first.tif");
    // The same projections as a directory: a new input, the recorded chain.
    s.imfilter()
        .args([
            "-q",
            "run",
            "--replay",
            "first.json",
            "sample/Tomo",
            "-o",
            "again.tif",
        ])
        .assert()
        .success();
    assert_eq!(bits(&s.path("again.tif")), bits(&s.path("first.tif")));
    // A one-operation command's own arguments are recorded too.
    s.imfilter()
        .args([
            "-q",
            "median",
            "--size",
            "5",
            "--mode",
            "nearest",
            "sample/stack.tif",
        ])
        .args(["-o", "median.tif"])
        .assert()
        .success();
    s.imfilter()
        .args([
            "-q",
            "run",
            "--replay",
            "median.json",
            "sample/stack.tif",
            "-o",
            "m2.tif",
        ])
        .assert()
        .success();
    assert_eq!(bits(&s.path("m2.tif")), bits(&s.path("median.tif")));
}

/// `imfilter run ARGS sample/stack.tif -o out.tif` exits 2 with one line holding `parts`.
fn refused(s: &Scratch, args: &[&str], parts: &[&str]) {
    let run: Vec<&str> = std::iter::once("run").chain(args.iter().copied()).collect();
    one_line_error(s, &run, "sample/stack.tif", 2, parts);
}

#[test]
fn a_bad_pipeline_or_history_names_the_file_the_step_and_the_key() {
    let s = Scratch::new();
    fs::write(
        s.path("typo.toml"),
        "[[step]]\noperation = \"median\"\nsizes = 3\n",
    )
    .expect("write");
    refused(
        &s,
        &["--pipeline", "typo.toml"],
        &["typo.toml: step 1", "--sizes"],
    );
    fs::write(
        s.path("broken.toml"),
        "[[step]]\noperation = \"median\nsize = 3\n",
    )
    .expect("write");
    refused(
        &s,
        &["--pipeline", "broken.toml"],
        &["broken.toml", "line 2", "TOML"],
    );
    fs::write(s.path("none.toml"), "title = \"no steps\"\n").expect("write");
    refused(&s, &["--pipeline", "none.toml"], &["none.toml", "[[step]]"]);
    fs::write(s.path("other.json"), "{\"name\": \"not a history\"}").expect("write");
    refused(
        &s,
        &["--replay", "other.json"],
        &["other.json", "not an imfilter history"],
    );
    fs::write(
        s.path("old.json"),
        "{\"operation_history\": [{\"operation\": \"median\", \"parameters\": {\"size\": 3}}]}",
    )
    .expect("write");
    refused(
        &s,
        &["--replay", "old.json"],
        &["old.json: entry 1 (median)", "no arguments"],
    );
}
