//! `nan-removal` and `circular-mask` (issue 12) against their references, the golden files
//! `fixtures/ops/mn_*.tif` made by `fixtures/ops/make_mask_nan_fixtures.py`.
//!
//! Both only copy values or put a given value in place (rounded once to the image's type), and
//! the circle's test is exact in float64: every result must equal its reference bit for bit.

use crate::support::{
    Nan, Scratch, assert_identical, chain_equals_steps_one_by_one, golden, one_line_error,
    read_image as read, run, scratch_with, usage_error,
};

/// `imfilter ARGS fixtures/ops/INPUT` equals `fixtures/ops/GOLDEN` bit for bit and has the
/// type `dtype`.
fn equals_golden(args: &[&str], input: &str, golden_name: &str, dtype: &str) {
    let s = scratch_with(&[input]);
    run(&s, args, input, "out.tif");
    assert_identical(&s.path("out.tif"), &golden(golden_name), Nan::Bits);
    assert_eq!(read(&s.path("out.tif")).dtype, dtype, "{golden_name}");
}

// --- nan-removal ------------------------------------------------------------------------------

#[test]
fn nan_removal_constant_replaces_only_nan_with_the_value_in_the_image_type() {
    let args = ["nan-removal", "--mode", "constant", "--value", "0.1"];
    equals_golden(&args, "mn_in_nan.tif", "mn_nan_const.tif", "float32");
    equals_golden(&args, "mn_in_nan64.tif", "mn_nan64_const.tif", "float64");
    let input = read(&golden("mn_in_nan.tif"));
    let out = read(&golden("mn_nan_const.tif"));
    let mut replaced = 0;
    for (i, (&x, &y)) in input.values.iter().zip(&out.values).enumerate() {
        if x.is_nan() {
            assert_eq!(out.bits[i], u64::from(0.1f32.to_bits()));
            replaced += 1;
        } else {
            assert_eq!(out.bits[i], input.bits[i], "value {i}: {x} -> {y}");
        }
    }
    assert!(replaced >= 30, "the fixture has NaN");
    // ±Inf are not NaN: kept.
    assert_eq!(out.at(0, 24, 50), f64::INFINITY);
    assert_eq!(out.at(0, 26, 51), f64::NEG_INFINITY);
    // In float64 the value is exact.
    let out64 = read(&golden("mn_nan64_const.tif"));
    assert_eq!(out64.at(0, 0, 0), 0.1);
}

#[test]
fn nan_removal_median_takes_the_median_of_the_finite_values_of_the_window() {
    let args = ["nan-removal", "--mode", "median"];
    equals_golden(&args, "mn_in_nan.tif", "mn_nan_median.tif", "float32");
    equals_golden(&args, "mn_in_nan64.tif", "mn_nan64_median.tif", "float64");
    let input = read(&golden("mn_in_nan.tif"));
    let out = read(&golden("mn_nan_median.tif"));
    // Every pixel that is not NaN is kept, ±Inf included.
    for (i, &x) in input.values.iter().enumerate() {
        if !x.is_nan() {
            assert_eq!(out.bits[i], input.bits[i], "value {i}");
        }
    }
    // NaN is left only where the 3x3 window holds no finite value: the centre of the 3x3
    // block, a NaN ringed by infinities, and the corner of a 2x2 block in a corner (its
    // reflected window reads only the block).
    let left: Vec<(usize, usize, usize)> = (0..out.values.len())
        .filter(|&i| out.values[i].is_nan())
        .map(|i| {
            let (w, h) = (out.width as usize, out.height as usize);
            (i / (w * h), i / w % h, i % w)
        })
        .collect();
    assert_eq!(left, [(0, 15, 21), (1, 21, 6), (1, 44, 66)]);
    // Replacements are finite: infinities are never chosen.
    assert!(
        out.values
            .iter()
            .zip(&input.values)
            .all(|(y, x)| !x.is_nan() || y.is_nan() || y.is_finite())
    );
}

#[test]
fn nan_removal_median_twice_fills_what_one_pass_left() {
    let s = scratch_with(&["mn_in_nan.tif"]);
    let step = "nan-removal --mode median";
    s.imfilter()
        .args(["run", "--step", step, "--step", step])
        .args(["mn_in_nan.tif", "-o", "twice.tif", "-q"])
        .assert()
        .success();
    assert_identical(
        &s.path("twice.tif"),
        &golden("mn_nan_median2.tif"),
        Nan::Bits,
    );
    // Only the NaN ringed by infinities is still NaN.
    let out = read(&s.path("twice.tif"));
    assert_eq!(out.values.iter().filter(|v| v.is_nan()).count(), 1);
    assert!(out.at(1, 21, 6).is_nan());
}

#[test]
fn integer_images_pass_nan_removal_unchanged() {
    let s = scratch_with(&["in_stack3.tif", "mn_in_band.tif"]);
    for args in [
        &["nan-removal", "--mode", "constant", "--value", "0.5"][..],
        &["nan-removal", "--mode", "median"][..],
    ] {
        for input in ["in_stack3.tif", "mn_in_band.tif"] {
            run(&s, args, input, "out.tif");
            assert_identical(&s.path("out.tif"), &s.path(input), Nan::Bits);
            std::fs::remove_file(s.path("out.tif")).expect("remove");
        }
    }
}

#[test]
fn the_history_records_the_mode_and_the_value() {
    let s = scratch_with(&["mn_in_nan.tif"]);
    let steps = [
        "nan-removal --mode constant --value -2",
        "circular-mask --ratio 0.5 --value nan",
    ];
    s.imfilter()
        .args(["run", "--step", steps[0], "--step", steps[1]])
        .args(["mn_in_nan.tif", "-o", "out.tif", "-q"])
        .assert()
        .success();
    let text = std::fs::read_to_string(s.path("out.json")).expect("sidecar");
    let history: serde_json::Value = serde_json::from_str(&text).expect("json");
    let runs = &history["operation_history"];
    assert_eq!(runs[0]["operation"], "nan-removal");
    assert_eq!(runs[0]["parameters"]["mode"], "constant");
    assert_eq!(runs[0]["parameters"]["value"], serde_json::json!(-2.0));
    assert_eq!(runs[1]["operation"], "circular-mask");
    assert_eq!(runs[1]["parameters"]["ratio"], serde_json::json!(0.5));
    assert_eq!(runs[1]["parameters"]["value"], "NaN");
}

// --- circular-mask ----------------------------------------------------------------------------

#[test]
fn circular_mask_of_square_images_is_tomopy_circ_mask() {
    // MantidImaging's defaults: ratio 0.95, value 0.
    equals_golden(
        &["circular-mask"],
        "mn_in_sq45.tif",
        "mn_mask_sq45.tif",
        "float32",
    );
    equals_golden(
        &["circular-mask", "--ratio", "1"],
        "mn_in_sq44.tif",
        "mn_mask_sq44_r1.tif",
        "float32",
    );
}

#[test]
fn circular_mask_of_non_square_images_uses_the_shorter_side() {
    equals_golden(
        &["circular-mask", "--ratio", "0.8", "--value", "nan"],
        "in_bc2.tif",
        "mn_mask_bc_nan.tif",
        "float32",
    );
    equals_golden(
        &["circular-mask", "--ratio", "0.5", "--value", "-2.5"],
        "mn_in_tall.tif",
        "mn_mask_tall.tif",
        "float32",
    );
    // A 45-row image: ratio 1 keeps a circle of radius 22.5 around (22, 33); the middle row
    // is kept from column 11 to 55 (|x| < 22.5), all of the middle column.
    let s = scratch_with(&["in_bc2.tif"]);
    run(
        &s,
        &["circular-mask", "--ratio", "1", "--value", "-7"],
        "in_bc2.tif",
        "out.tif",
    );
    let out = read(&s.path("out.tif"));
    let row: Vec<bool> = (0..67).map(|c| out.at(0, 22, c) != -7.0).collect();
    assert_eq!(row.iter().position(|&k| k), Some(11));
    assert_eq!(row.iter().rposition(|&k| k), Some(55));
    assert!((0..45).all(|r| out.at(0, r, 33) != -7.0));
}

#[test]
fn circular_mask_keeps_an_integer_type_only_when_the_value_fits() {
    equals_golden(
        &["circular-mask", "--ratio", "0.9", "--value", "100"],
        "mn_in_u16.tif",
        "mn_mask_u16.tif",
        "uint16",
    );
    equals_golden(
        &["circular-mask", "--ratio", "0.9", "--value", "-1"],
        "mn_in_u16.tif",
        "mn_mask_u16_float.tif",
        "float32",
    );
    // float64 stays float64, the value exact.
    equals_golden(
        &["circular-mask", "--ratio", "0.7", "--value", "0.1"],
        "mn_in_nan64.tif",
        "mn_mask_nan64.tif",
        "float64",
    );
}

#[test]
fn circular_mask_of_images_larger_than_a_band_is_exact_across_bands() {
    // 150 x 131 pixels: the pointwise engine's bands of 16384 pixels end mid-row.
    let s = scratch_with(&["mn_in_band.tif"]);
    for threads in ["1", "2"] {
        let out = format!("out{threads}.tif");
        s.imfilter()
            .args([
                "-j",
                threads,
                "circular-mask",
                "--ratio",
                "1",
                "--value",
                "7",
            ])
            .args(["mn_in_band.tif", "-o", &out, "-q"])
            .assert()
            .success();
        assert_identical(&s.path(&out), &golden("mn_mask_band.tif"), Nan::Bits);
    }
}

// --- errors -----------------------------------------------------------------------------------

#[test]
fn a_ratio_outside_0_to_1_is_refused() {
    let s = Scratch::new();
    for ratio in ["0", "-0.5", "1.01", "2", "nan", "inf", "half"] {
        usage_error(
            &s,
            &["circular-mask", "--ratio", ratio],
            &["--ratio", ratio],
        );
    }
    usage_error(
        &s,
        &["run", "--step", "circular-mask --ratio 1.5"],
        &["--step 1", "--ratio"],
    );
    usage_error(&s, &["circular-mask", "--value", "x"], &["--value"]);
}

#[test]
fn nan_removal_needs_a_mode_and_constant_needs_a_value() {
    let s = Scratch::new();
    usage_error(&s, &["nan-removal"], &["--mode"]);
    usage_error(&s, &["nan-removal", "--value", "0"], &["--mode"]);
    usage_error(&s, &["nan-removal", "--mode", "constant"], &["--value"]);
    usage_error(
        &s,
        &["nan-removal", "--mode", "mean"],
        &["--mode", "median"],
    );
    usage_error(
        &s,
        &["nan-removal", "--mode", "constant", "--value", "nan"],
        &["--value", "finite"],
    );
    usage_error(
        &s,
        &["run", "--step", "nan-removal --mode constant"],
        &["--step 1"],
    );
    // A value with --mode median would be ignored: refused.
    one_line_error(
        &s,
        &["nan-removal", "--mode", "median", "--value", "3"],
        "sample/stack.tif",
        1,
        &["--value 3", "--mode constant"],
    );
}

#[test]
fn a_constant_beyond_float32_is_refused_for_a_float32_image() {
    let s = scratch_with(&["mn_in_nan.tif"]);
    let args = ["nan-removal", "--mode", "constant", "--value", "1e39"];
    one_line_error(&s, &args, "mn_in_nan.tif", 1, &["--value 1e39", "float32"]);
    one_line_error(
        &s,
        &["run", "--step", "nan-removal --mode constant --value 1e39"],
        "mn_in_nan.tif",
        2,
        &["--step 1 (nan-removal)", "float32"],
    );
}

// --- as steps of a chain --------------------------------------------------------------------

#[test]
fn background_correct_then_nan_removal_then_circular_mask_equals_one_by_one() {
    let s = Scratch::new();
    let bc = "background-correct --flat sample/flat.tif --dark sample/dark.tif";
    for steps in [
        [bc, "nan-removal --mode median", "circular-mask"],
        [
            bc,
            "nan-removal --mode constant --value 0",
            "circular-mask --ratio 0.8 --value -1",
        ],
    ] {
        chain_equals_steps_one_by_one(&s, &steps, "sample/stack.tif", Nan::Bits);
    }
}

#[test]
fn chains_that_make_and_remove_nan_equal_one_by_one() {
    let s = scratch_with(&["mn_in_nan.tif", "in_stack3.tif", "mn_in_band.tif"]);
    let chains: [(&[&str], &str); 6] = [
        // All pointwise: the band path.
        (
            &[
                "nan-removal --mode constant --value 0",
                "circular-mask --ratio 0.9 --value nan",
            ],
            "mn_in_nan.tif",
        ),
        // Clip makes NaN, the median mode removes it.
        (
            &[
                "clip --min 0.7 --min-value nan",
                "nan-removal --mode median",
                "circular-mask --ratio 1",
            ],
            "mn_in_nan.tif",
        ),
        // A NaN mask, its rim filled from the inside, then a median.
        (
            &[
                "circular-mask --value nan",
                "nan-removal --mode median",
                "median --size 3",
            ],
            "mn_in_nan.tif",
        ),
        // Reshaping first: the circle follows the cropped shape.
        (
            &[
                "crop --roi 3,2,60,40",
                "nan-removal --mode median",
                "circular-mask --ratio 0.6 --value 5",
            ],
            "mn_in_nan.tif",
        ),
        // uint16 through a mask that keeps uint16, then one that makes float32.
        (
            &[
                "circular-mask --ratio 0.9 --value 0",
                "nan-removal --mode median",
                "circular-mask --ratio 0.5 --value 0.5",
            ],
            "in_stack3.tif",
        ),
        // Bands that end mid-row, through two pointwise steps.
        (
            &[
                "circular-mask --ratio 1 --value 7",
                "nan-removal --mode constant --value 0",
            ],
            "mn_in_band.tif",
        ),
    ];
    for (steps, input) in chains {
        chain_equals_steps_one_by_one(&s, steps, input, Nan::Bits);
    }
    // nan-removal on uint8 changes nothing: the band chain is the mask's golden.
    assert_identical(
        &s.path("chained.tif"),
        &golden("mn_mask_band.tif"),
        Nan::Bits,
    );
}
