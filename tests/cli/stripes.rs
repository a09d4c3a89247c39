//! `remove-stripes` (issue 13): every method against algotom 1.7 applied to each sinogram
//! (golden files made by `fixtures/stripes/make_stripe_fixtures.py`, listed with their
//! arguments in `fixtures/stripes/cases.json`), the sinogram pass inside chains, and the
//! refusals.

use crate::support::{
    Nan, Scratch, Tolerance, assert_close, assert_identical, chain_equals_steps_one_by_one,
    fixtures, one_line_error, read_image, usage_error,
};

/// How close each method must come to algotom (docs/stripes.md says why).
fn tolerance(method: &str) -> Tolerance {
    match method {
        // Values moved (medians of sorted values) or computed in numpy's order and
        // precision (float32 sums, float64 divisions, the same Fourier low-pass to the last
        // bit): bit for bit.
        "sorting" | "filtering" | "large" | "dead" | "all" => Tolerance::default(),
        // The whole-height Savitzky–Golay fit is summed in another order than scipy's direct
        // convolution: a few values in ten thousand move by 1 to 3 float32 steps.
        "fitting" => Tolerance {
            float32_ulps: 3,
            ..Tolerance::default()
        },
        other => panic!("no tolerance for method {other}"),
    }
}

fn stripes(name: &str) -> std::path::PathBuf {
    fixtures().join("stripes").join(name)
}

/// Each case of cases.json: imfilter with its arguments on its input, against its golden.
#[test]
fn every_method_matches_algotom_on_each_sinogram() {
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stripes("cases.json")).expect("cases.json"))
            .expect("cases.json is JSON");
    let cases = cases["cases"].as_array().expect("a list of cases");
    let methods: std::collections::BTreeSet<&str> = cases
        .iter()
        .map(|c| c["method"].as_str().expect("method"))
        .collect();
    assert_eq!(
        methods.into_iter().collect::<Vec<_>>(),
        ["all", "dead", "filtering", "fitting", "large", "sorting"],
        "every method has a golden case"
    );
    let s = Scratch::new();
    for case in cases {
        let method = case["method"].as_str().expect("method");
        let args: Vec<&str> = case["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(|a| a.as_str().expect("an argument"))
            .collect();
        let input = stripes(case["input"].as_str().expect("input"));
        let golden = stripes(case["file"].as_str().expect("output"));
        let out = s.path("out.tif");
        s.imfilter()
            .arg("remove-stripes")
            .args(&args)
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .args(["-q", "--force"])
            .assert()
            .success();
        assert_close(&out, &golden, |_| tolerance(method));
        // Something was removed: the golden differs from the input, and so does the result.
        let (before, after) = (read_image(&input), read_image(&out));
        assert!(
            before.values != after.values,
            "{args:?}: the result equals the input"
        );
    }
}

/// The sinogram pass runs after the image steps and folds the pixel-by-pixel steps after
/// it in: the chain equals the three commands one after another, whatever the band.
#[test]
fn a_chain_with_a_sinogram_step_equals_its_steps_one_by_one() {
    let s = Scratch::new();
    chain_equals_steps_one_by_one(
        &s,
        &[
            "background-correct --flat sample/flat.tif --dark sample/dark.tif",
            "remove-stripes --method all --la-size 31 --sm-size 11",
            "minus-log",
        ],
        "sample/stack.tif",
        Nan::Bits,
    );
    chain_equals_steps_one_by_one(
        &s,
        &[
            "remove-stripes --method sorting --size 5",
            "arithmetic --mul 2",
            "remove-stripes --method large --size 11 --snr 2",
        ],
        "sample/stack.tif",
        Nan::Bits,
    );
}

/// Bands of rows are an implementation detail: one thread or several, a file, a directory
/// of files or a compressed file, the same result.
#[test]
fn the_result_does_not_depend_on_threads_or_output_kind() {
    let s = Scratch::new();
    let step = ["remove-stripes", "--method", "filtering", "--size", "7"];
    let run = |extra: &[&str], out: &str| {
        s.imfilter()
            .args(step)
            .args(extra)
            .args(["sample/stack.tif", "-o", out, "-q"])
            .assert()
            .success();
    };
    run(&["-j", "1"], "one.tif");
    run(&["-j", "4"], "four.tif");
    run(&["--compress", "deflate"], "deflate.tif");
    run(&[], "dir/");
    assert_identical(&s.path("four.tif"), &s.path("one.tif"), Nan::Bits);
    assert_identical(&s.path("deflate.tif"), &s.path("one.tif"), Nan::Bits);
    let whole = read_image(&s.path("one.tif"));
    let mut files: Vec<_> = std::fs::read_dir(s.path("dir"))
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert_eq!(files.len(), whole.pages);
    for (p, file) in files.iter().enumerate() {
        let page = read_image(file);
        let n = page.values.len();
        assert_eq!(
            page.bits,
            whole.bits[p * n..(p + 1) * n],
            "{}",
            file.display()
        );
    }
}

/// The summary line of a run of `remove-stripes` on `input`, with `steps` before it.
fn summary(s: &Scratch, steps: &[&str], input: &str) -> String {
    let mut cmd = s.imfilter();
    cmd.arg("run");
    for step in steps {
        cmd.args(["--step", step]);
    }
    let out = cmd
        .args(["--step", "remove-stripes --method sorting"])
        .args([input, "-o", "out.tif", "--force", "--progress", "none"])
        .assert()
        .success()
        .get_output()
        .clone();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An uncompressed input behind pixel-by-pixel steps is read by sinograms straight away;
/// otherwise the steps before run image by image first. Both give the same result, and the
/// summary says which ran.
#[test]
fn one_pass_from_a_mapped_input_two_passes_otherwise_and_the_same_result() {
    let s = Scratch::new();
    let one = summary(&s, &["clip --min 0"], "sample/stack.tif");
    assert!(
        one.contains("12 images, 67x45 uint16 -> float32 in one pass over 45 sinograms"),
        "{one}"
    );
    std::fs::rename(s.path("out.tif"), s.path("one.tif")).expect("rename");

    // The same pixels, Deflate-compressed: pages must be decoded whole.
    s.imfilter()
        .args(["crop", "--roi", "0,0,67,45", "--compress", "deflate"])
        .args(["sample/stack.tif", "-o", "deflate.tif", "-q"])
        .assert()
        .success();
    let two = summary(&s, &["clip --min 0"], "deflate.tif");
    assert!(
        two.contains("in 2 passes (images, then 45 sinograms)"),
        "{two}"
    );
    assert_identical(&s.path("out.tif"), &s.path("one.tif"), Nan::Bits);

    // A step that needs whole images before the sinogram step: two passes.
    let median = summary(&s, &["median --size 3"], "sample/stack.tif");
    assert!(median.contains("in 2 passes"), "{median}");
    chain_equals_steps_one_by_one(
        &s,
        &[
            "median --size 3",
            "remove-stripes --method filtering --size 5",
        ],
        "sample/stack.tif",
        Nan::Bits,
    );
}

#[test]
fn parameters_outside_algotoms_ranges_are_refused() {
    let s = Scratch::new();
    fn stripes<'a>(more: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["remove-stripes"];
        args.extend_from_slice(more);
        args
    }
    usage_error(
        &s,
        &stripes(&["--method", "median"]),
        &["--method", "sorting"],
    );
    usage_error(
        &s,
        &stripes(&["--method", "sorting", "--size", "4"]),
        &["--size", "odd"],
    );
    usage_error(
        &s,
        &stripes(&["--method", "sorting", "--size", "1"]),
        &["--size", "at least 3"],
    );
    usage_error(
        &s,
        &stripes(&["--method", "large", "--snr", "0"]),
        &["--snr", "greater than 0"],
    );
    usage_error(
        &s,
        &stripes(&["--method", "dead", "--snr", "-2"]),
        &["--snr", "greater than 0"],
    );
    usage_error(
        &s,
        &stripes(&["--method", "filtering", "--dim", "3"]),
        &["--dim"],
    );
    usage_error(
        &s,
        &stripes(&["--method", "sorting", "--order", "2"]),
        &[
            "--order is not a parameter of --method sorting",
            "--size, --dim",
        ],
    );
    usage_error(
        &s,
        &stripes(&["--method", "all", "--size", "21"]),
        &["--size is not a parameter of --method all", "--la-size"],
    );
}

#[test]
fn a_stack_of_one_projection_is_refused() {
    let s = Scratch::new();
    one_line_error(
        &s,
        &["remove-stripes", "--method", "sorting"],
        "sample/Tomo/proj_1.tif",
        2,
        &["remove-stripes", "1 image", "at least 2 projections"],
    );
}

/// A step after a sinogram step that cannot join its pass (a median works on whole images)
/// makes the chain run in two parts through an intermediate stack: the result is still the
/// steps one by one, the history names every step and the input given, and nothing else is
/// left behind.
#[test]
fn a_step_that_cannot_join_the_sinogram_pass_runs_in_a_second_part() {
    let s = Scratch::new();
    let steps = [
        "remove-stripes --method sorting --size 5",
        "median --size 3",
        "minus-log",
    ];
    chain_equals_steps_one_by_one(&s, &steps, "sample/stack.tif", Nan::Bits);
    s.assert_no_temp_files();
    let leftovers: Vec<String> = s
        .all_files()
        .into_iter()
        .filter(|f| f.contains(".imfilter-part-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let history: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.path("chained.json")).expect("the chain's history"),
    )
    .expect("JSON");
    let runs = history["operation_history"].as_array().expect("runs");
    let names: Vec<&str> = runs
        .iter()
        .map(|r| r["operation"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["remove-stripes", "median", "minus-log"]);
    assert!(
        runs.iter().all(|r| r["input"] == "sample/stack.tif"),
        "{history}"
    );

    // A directory result keeps the input's file names; a default one is named after it.
    s.imfilter()
        .args(["run", "--step", steps[0], "--step", steps[1]])
        .args(["sample/Tomo", "-o", "out/", "-q"])
        .assert()
        .success();
    assert!(s.path("out/proj_10.tif").is_file());
    s.imfilter()
        .args([
            "run",
            "--step",
            steps[0],
            "--step",
            steps[1],
            "sample/stack.tif",
            "-q",
        ])
        .assert()
        .success();
    assert!(s.path("sample/stack_run.tif").is_file());
    s.assert_no_temp_files();
}
