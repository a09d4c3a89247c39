//! `rebin` and `gaussian` (issue 12) against their references: numpy for `rebin --factor`,
//! scikit-image's `resize` (MantidImaging's Rebin) for `rebin --scale`, scipy's
//! `gaussian_filter` for `gaussian` (golden files `fixtures/ops/rg_*.tif`, made by
//! `fixtures/ops/make_rebin_gaussian_fixtures.py`).
//!
//! Tolerances. `rebin --factor` is IEEE additions in numpy's order and one division: it must
//! equal numpy bit for bit. `gaussian` and `rebin --scale` use `exp` for their kernel weights:
//! imfilter's is the C library's, numpy's may be its own SIMD code, and one ulp of a weight
//! (1e-16) can move a float32 result across a rounding boundary; and `gaussian` computes a
//! float32 result in float32 (eight lanes a vector), which rounds each of its 2r + 1 sums. They
//! are compared within a relative 1e-5 for float32 results (the bound), plus 2e-6 of
//! the image's largest value for results near 0 made by cancelling large terms (float32 sums of
//! up to 2r + 1 terms, each rounding by 6e-8 of the largest), and within 1e-12 (relative and of
//! the largest) for float64 results, computed in float64 as scipy does.

use std::path::Path;

use crate::support::{
    Nan, Scratch, Tolerance, assert_one_line_error, assert_same_format as same_format,
    chain_equals_steps_one_by_one, golden, one_line_error, read_image as read, run, scratch_with,
    usage_error,
};

/// Same format and every value's bits (any NaN equals any NaN).
fn assert_identical(actual: &Path, expected: &Path) {
    crate::support::assert_identical(actual, expected, Nan::Any);
}

/// Same format; NaN where NaN, each infinity where it is; finite values within the tolerance
/// of the module documentation.
fn assert_close(actual: &Path, expected: &Path) {
    crate::support::assert_close(actual, expected, |dtype| {
        let (relative, of_largest) = if dtype == "float64" {
            (1e-12, 1e-12)
        } else {
            (1e-5, 2e-6)
        };
        Tolerance {
            relative,
            of_largest,
            ..Tolerance::default()
        }
    });
}

/// `imfilter ARGS` on `fixtures/ops/INPUT` against `fixtures/ops/GOLDEN`, bit for bit or
/// within the tolerance.
fn check(args: &[&str], input: &str, golden_name: &str, exact: bool) {
    let s = scratch_with(&[input]);
    let local = input.rsplit('/').next().expect("name");
    run(&s, args, local, "out.tif");
    if exact {
        assert_identical(&s.path("out.tif"), &golden(golden_name));
    } else {
        assert_close(&s.path("out.tif"), &golden(golden_name));
    }
}

fn shape_and_type(name: &str) -> (u32, u32, usize, &'static str) {
    let i = read(&golden(name));
    (i.width, i.height, i.pages, i.dtype)
}

// --- rebin --factor ----------------------------------------------------------------------------

#[test]
fn rebin_factor_mean_and_sum_equal_numpy_bit_for_bit() {
    for (input, tag) in [("in_stack3.tif", "stack3"), ("in_bc2.tif", "bc2")] {
        for factor in ["2", "3"] {
            check(
                &["rebin", "--factor", factor],
                input,
                &format!("rg_bin{factor}_mean_{tag}.tif"),
                true,
            );
            check(
                &["rebin", "--factor", factor, "--reduce", "sum"],
                input,
                &format!("rg_bin{factor}_sum_{tag}.tif"),
                true,
            );
        }
    }
}

#[test]
fn rebin_factor_drops_the_ragged_edge_and_gives_float32() {
    // 67x45: by 2, 33x22 (a column and a row dropped); by 3, 22x15 (a column dropped).
    assert_eq!(
        shape_and_type("rg_bin2_mean_stack3.tif"),
        (33, 22, 3, "float32")
    );
    assert_eq!(
        shape_and_type("rg_bin3_sum_stack3.tif"),
        (22, 15, 3, "float32")
    );
    assert_eq!(
        shape_and_type("rg_bin3_mean_bc2.tif"),
        (22, 15, 2, "float32")
    );
}

#[test]
fn rebin_factor_records_the_dropped_rows_and_columns_in_the_history() {
    let s = scratch_with(&["in_stack3.tif"]);
    for (factor, columns, rows) in [("2", 1, 1), ("3", 1, 0), ("5", 2, 0)] {
        let out = format!("bin{factor}.tif");
        let output = s
            .imfilter()
            .args(["rebin", "--factor", factor, "in_stack3.tif", "-o", &out])
            .assert()
            .success()
            .get_output()
            .clone();
        // Nothing is said per image.
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("dropped"), "{stderr}");
        let sidecar = s.path(&format!("bin{factor}.json"));
        let history: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(sidecar).expect("sidecar"))
                .expect("json");
        let runs = history["operation_history"].as_array().expect("runs");
        let parameters = &runs.last().expect("this run")["parameters"];
        assert_eq!(
            parameters["factor"],
            serde_json::json!(factor.parse::<u64>().unwrap())
        );
        assert_eq!(parameters["reduce"], "mean");
        assert_eq!(parameters["dropped_columns"], columns, "{factor}");
        assert_eq!(parameters["dropped_rows"], rows, "{factor}");
    }
}

// --- rebin --scale -----------------------------------------------------------------------------

#[test]
fn rebin_scale_equals_skimage_resize_as_mantidimaging_calls_it() {
    for (input, tag) in [("in_stack3.tif", "stack3"), ("in_bc2.tif", "bc2")] {
        for (scale, name) in [("0.5", "050"), ("0.37", "037"), ("1.5", "150")] {
            check(
                &["rebin", "--scale", scale],
                input,
                &format!("rg_scale{name}_{tag}.tif"),
                false,
            );
        }
    }
    for mode in ["edge", "symmetric", "reflect", "wrap"] {
        check(
            &["rebin", "--scale", "0.37", "--mode", mode],
            "in_bc2.tif",
            &format!("rg_scale037_{mode}_bc2.tif"),
            false,
        );
    }
    // --mode constant is the default (MantidImaging's dialog's first choice).
    check(
        &["rebin", "--scale", "0.37", "--mode", "constant"],
        "in_bc2.tif",
        "rg_scale037_bc2.tif",
        false,
    );
}

#[test]
fn rebin_scale_sides_are_python_int_of_side_times_scale() {
    // int(45 * 0.37) = 16, int(67 * 0.37) = 24; int(45 * 1.5) = 67, int(67 * 1.5) = 100.
    assert_eq!(
        shape_and_type("rg_scale037_stack3.tif"),
        (24, 16, 3, "float32")
    );
    assert_eq!(
        shape_and_type("rg_scale050_bc2.tif"),
        (33, 22, 2, "float32")
    );
    assert_eq!(
        shape_and_type("rg_scale150_stack3.tif"),
        (100, 67, 3, "float32")
    );
}

// --- gaussian ----------------------------------------------------------------------------------

#[test]
fn gaussian_equals_scipy_gaussian_filter_in_float64() {
    for (input, tag, cval) in [
        ("in_stack3.tif", "stack3", "12000"),
        ("in_bc2.tif", "bc2", "0.75"),
    ] {
        for (sigma, name) in [("1", "1"), ("2.5", "25")] {
            for mode in ["reflect", "nearest", "constant"] {
                let mut args = vec!["gaussian", "--sigma", sigma, "--mode", mode];
                if mode == "constant" {
                    args.extend(["--cval", cval]);
                }
                check(
                    &args,
                    input,
                    &format!("rg_gauss{name}_{mode}_{tag}.tif"),
                    false,
                );
            }
        }
    }
}

#[test]
fn gaussian_in_the_other_modes_with_kernels_wider_than_the_image_and_truncated() {
    for mode in ["mirror", "wrap"] {
        check(
            &["gaussian", "--sigma", "2.5", "--mode", mode],
            "in_stack3.tif",
            &format!("rg_gauss25_{mode}_stack3.tif"),
            false,
        );
    }
    // Radius int(4 * 20 + 0.5) = 80 > 67: the border rule repeats.
    for mode in ["reflect", "wrap"] {
        check(
            &["gaussian", "--sigma", "20", "--mode", mode],
            "in_bc2.tif",
            &format!("rg_gauss20_{mode}_bc2.tif"),
            false,
        );
    }
    check(
        &["gaussian", "--sigma", "2.5", "--truncate", "2"],
        "in_bc2.tif",
        "rg_gauss25_t2_bc2.tif",
        false,
    );
}

#[test]
fn gaussian_keeps_the_shape_and_gives_float32_for_uint16() {
    assert_eq!(
        shape_and_type("rg_gauss1_reflect_stack3.tif"),
        (67, 45, 3, "float32")
    );
}

// --- every input type -------------------------------------------------------------------------

#[test]
fn every_input_type_is_rebinned_and_filtered_as_numpy_scipy_and_skimage_do() {
    let ops: [(&str, &[&str], bool); 4] = [
        ("bin2mean", &["rebin", "--factor", "2"], true),
        (
            "bin2sum",
            &["rebin", "--factor", "2", "--reduce", "sum"],
            true,
        ),
        ("scale060", &["rebin", "--scale", "0.6"], false),
        ("gauss1", &["gaussian", "--sigma", "1"], false),
    ];
    let s = Scratch::new();
    for dtype in [
        "uint8", "uint16", "uint32", "int16", "int32", "float32", "float64",
    ] {
        let input = format!("in_{dtype}.tif");
        s.copy_fixture(&format!("ops/dtypes/{input}"), &input);
        for (op, args, exact) in ops {
            let out = format!("{op}_{dtype}.tif");
            run(&s, args, &input, &out);
            let expected = golden(&format!("rg_dtypes_{op}_{dtype}.tif"));
            let float = if dtype == "float64" {
                "float64"
            } else {
                "float32"
            };
            assert_eq!(read(&expected).dtype, float, "{out}");
            if exact {
                assert_identical(&s.path(&out), &expected);
            } else {
                assert_close(&s.path(&out), &expected);
            }
        }
    }
}

// --- errors ------------------------------------------------------------------------------------

#[test]
fn a_factor_of_zero_or_negative_or_fractional_is_a_usage_error() {
    let s = Scratch::new();
    for factor in ["0", "-2", "1.5", "two"] {
        usage_error(
            &s,
            &["rebin", "--factor", factor],
            &["--factor", "at least 1"],
        );
    }
    usage_error(
        &s,
        &["run", "--step", "rebin --factor 0"],
        &["--step 1", "at least 1"],
    );
}

#[test]
fn a_factor_larger_than_the_image_names_the_factor_and_the_size() {
    let s = Scratch::new();
    one_line_error(
        &s,
        &["rebin", "--factor", "46"],
        "sample/stack.tif",
        1,
        &["--factor 46", "67x45"],
    );
    // As a step of a chain it is a usage error naming the step.
    let out = s
        .imfilter()
        .args([
            "run",
            "--step",
            "median --size 3",
            "--step",
            "rebin --factor 68",
        ])
        .args(["sample/stack.tif", "-o", "out.tif"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert_one_line_error(&out.stderr, &["--step 2 (rebin)", "--factor 68", "67x45"]);
    // 45 fits exactly once in the height: one row of output.
    s.imfilter()
        .args([
            "-q",
            "rebin",
            "--factor",
            "45",
            "sample/stack.tif",
            "-o",
            "one.tif",
        ])
        .assert()
        .success();
    let one = read(&s.path("one.tif"));
    assert_eq!((one.width, one.height, one.pages), (1, 1, 12));
}

#[test]
fn a_scale_of_zero_or_less_is_a_usage_error_and_one_that_leaves_no_pixel_an_error() {
    let s = Scratch::new();
    for scale in ["0", "-0.5", "nan", "inf", "half"] {
        usage_error(
            &s,
            &["rebin", "--scale", scale],
            &["--scale", "greater than 0"],
        );
    }
    // int(45 * 0.02) = 0.
    let out = s
        .imfilter()
        .args([
            "rebin",
            "--scale",
            "0.02",
            "sample/stack.tif",
            "-o",
            "out.tif",
        ])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert_one_line_error(&out.stderr, &["--scale 0.02", "67x45", "1x0"]);
    assert!(!s.path("out.tif").exists());
}

#[test]
fn factor_and_scale_exclude_each_other_and_one_is_required() {
    let s = Scratch::new();
    usage_error(
        &s,
        &["rebin", "--factor", "2", "--scale", "0.5"],
        &["--factor", "--scale", "cannot be used with"],
    );
    usage_error(&s, &["rebin"], &["--factor", "--scale"]);
    usage_error(
        &s,
        &["rebin", "--scale", "0.5", "--reduce", "sum"],
        &["--reduce", "--scale", "cannot be used with"],
    );
    usage_error(
        &s,
        &["rebin", "--factor", "2", "--mode", "edge"],
        &["--mode", "--factor", "cannot be used with"],
    );
    usage_error(
        &s,
        &["run", "--step", "rebin --factor 2 --scale 0.5"],
        &["--step 1", "cannot be used with"],
    );
}

#[test]
fn a_sigma_of_zero_or_less_is_a_usage_error() {
    let s = Scratch::new();
    for sigma in ["0", "-1", "nan", "inf", "wide"] {
        usage_error(&s, &["gaussian", "--sigma", sigma], &["--sigma"]);
    }
    usage_error(&s, &["gaussian"], &["--sigma"]);
    usage_error(
        &s,
        &["gaussian", "--sigma", "1", "--mode", "grid-wrap"],
        &["--mode", "reflect, nearest, mirror, constant, wrap"],
    );
    usage_error(
        &s,
        &["gaussian", "--sigma", "1", "--truncate", "-1"],
        &["--truncate"],
    );
    usage_error(
        &s,
        &["run", "--step", "gaussian --sigma 0"],
        &["--step 1", "greater than 0"],
    );
}

#[test]
fn a_kernel_of_more_than_a_million_pixels_is_refused() {
    let s = Scratch::new();
    let out = s
        .imfilter()
        .args([
            "gaussian",
            "--sigma",
            "1e9",
            "sample/stack.tif",
            "-o",
            "out.tif",
        ])
        .assert()
        .failure()
        .get_output()
        .clone();
    assert_one_line_error(&out.stderr, &["--sigma 1000000000", "radius"]);
    assert!(!s.path("out.tif").exists());
}

// --- as steps of a chain -----------------------------------------------------------------------

#[test]
fn rebin_and_gaussian_in_chains_equal_one_by_one() {
    let s = scratch_with(&["in_bc2.tif"]);
    chain_equals_steps_one_by_one(
        &s,
        &[
            "rebin --factor 2",
            "gaussian --sigma 1.5 --mode nearest",
            "rebin --scale 0.6 --mode edge",
        ],
        "sample/stack.tif",
        Nan::Any,
    );
    chain_equals_steps_one_by_one(
        &s,
        &[
            "gaussian --sigma 2 --mode constant --cval 0.5",
            "rebin --factor 3 --reduce sum",
            "clip --max 10",
        ],
        "in_bc2.tif",
        Nan::Any,
    );
    chain_equals_steps_one_by_one(
        &s,
        &["rebin --scale 1.5", "median --size 3", "rebin --scale 0.37"],
        "in_bc2.tif",
        Nan::Any,
    );
}

/// `rebin ARGS` then `background-correct` with `flat` and `dark`, as a chain and by hand (the
/// flat, the dark and the stack rebinned first, then corrected with the rebinned files).
fn rebin_before_background_correction(s: &Scratch, rebin: &str, flat: &str, dark: &str) {
    let words: Vec<String> = shlex::split(rebin).expect("words");
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    run(s, &words, flat, "flat_r.tif");
    run(s, &words, dark, "dark_r.tif");
    run(s, &words, "sample/stack.tif", "stack_r.tif");
    let bc = [
        "background-correct",
        "--flat",
        "flat_r.tif",
        "--dark",
        "dark_r.tif",
    ];
    run(s, &bc, "stack_r.tif", "by_hand.tif");
    let chained_bc = format!("background-correct --flat {flat} --dark {dark}");
    s.imfilter()
        .args(["run", "--step", rebin, "--step", &chained_bc])
        .args(["sample/stack.tif", "-o", "chained.tif", "-q", "--force"])
        .assert()
        .success();
}

#[test]
fn rebin_before_background_correction_rebins_flat_and_dark_as_by_hand() {
    // One flat and one dark: the combined flat is the flat itself, so the chain (which rebins
    // the combined flat and dark) and the user (who rebins the files) compute the same numbers.
    let s = scratch_with(&["rg_flat1.tif", "rg_dark1.tif"]);
    for rebin in [
        "rebin --factor 2",
        "rebin --factor 3 --reduce sum",
        "rebin --scale 0.37",
    ] {
        rebin_before_background_correction(&s, rebin, "rg_flat1.tif", "rg_dark1.tif");
        assert_identical(&s.path("chained.tif"), &s.path("by_hand.tif"));
        let out = read(&s.path("chained.tif"));
        assert!(out.width < 67 && out.height < 45, "{rebin}");
    }
}

#[test]
fn with_several_flats_the_chain_rebins_their_average_within_float32_rounding() {
    // 3 flats and 2 darks: the chain averages them, then rebins the average; by hand each is
    // rebinned, then averaged. The same sums in another order, rounded to float32 at other
    // points: equal within float32 rounding, not bit for bit.
    let s = Scratch::new();
    rebin_before_background_correction(
        &s,
        "rebin --factor 2",
        "sample/flat.tif",
        "sample/dark.tif",
    );
    let (a, e) = (read(&s.path("chained.tif")), read(&s.path("by_hand.tif")));
    same_format(&a, &e, "rebinned flats");
    for (i, (x, y)) in a.values.iter().zip(&e.values).enumerate() {
        assert!((x - y).abs() <= 1e-6 * y.abs(), "value {i}: {x} vs {y}");
    }
}
