//! The operations added as steps (issue 12), each against its numpy reference (golden files
//! made by `fixtures/ops/make_ops_fixtures.py`).
//!
//! Crop, rotate, flip and clip only move or replace values, and arithmetic is two float32
//! roundings in numpy's order: their results must equal the references bit for bit. `minus-log`
//! calls the C library's `logf` (under 1 ulp from the exact logarithm), while numpy's float32
//! `np.log` uses its own SIMD code on AVX-512 machines (measured up to 3 ulp from glibc's on
//! the machine that made the references): it is compared within 4 ulp.

use std::path::Path;

use crate::support::{
    Nan, Scratch, Tolerance, assert_close, assert_identical, assert_one_line_error,
    chain_equals_steps_one_by_one, golden, one_line_error, read_image as read, run, scratch_with,
    usage_error,
};

/// Same pages, shape and type (float32), every value within `ulps` float32 steps of the
/// reference (NaN where it is NaN, an infinity where it is that infinity).
fn assert_within_ulps(actual: &Path, expected: &Path, ulps: u32) {
    assert_close(actual, expected, |_| Tolerance {
        float32_ulps: ulps,
        ..Tolerance::default()
    });
}

/// `imfilter ARGS fixtures/ops/INPUT` equals `fixtures/ops/GOLDEN` bit for bit.
fn equals_golden(args: &[&str], input: &str, golden_name: &str) {
    let s = scratch_with(&[input]);
    run(&s, args, input, "out.tif");
    assert_identical(&s.path("out.tif"), &golden(golden_name), Nan::Bits);
}

#[test]
fn crop_of_uint16_is_numpy_slicing_and_keeps_uint16() {
    equals_golden(
        &["crop", "--roi", "10,5,60,40"],
        "in_stack3.tif",
        "crop_stack.tif",
    );
    let cropped = read(&golden("crop_stack.tif"));
    assert_eq!(
        (cropped.pages, cropped.width, cropped.height, cropped.dtype),
        (3, 50, 35, "uint16")
    );
}

#[test]
fn crop_of_float32_to_the_right_and_bottom_edges_is_numpy_slicing() {
    equals_golden(
        &["crop", "--roi", "30,20,67,45"],
        "in_bc2.tif",
        "crop_bc.tif",
    );
    let cropped = read(&golden("crop_bc.tif"));
    assert_eq!(
        (cropped.width, cropped.height, cropped.dtype),
        (37, 25, "float32")
    );
}

#[test]
fn rotate_is_rot90_counter_clockwise() {
    for (angle, shape) in [("90", (45, 67)), ("180", (67, 45)), ("270", (45, 67))] {
        let name = format!("rotate{angle}.tif");
        equals_golden(&["rotate", "--angle", angle], "in_stack3.tif", &name);
        let r = read(&golden(&name));
        assert_eq!(((r.width, r.height), r.dtype), (shape, "uint16"), "{angle}");
    }
}

#[test]
fn flip_is_fliplr_or_flipud() {
    for axis in ["horizontal", "vertical"] {
        equals_golden(
            &["flip", "--axis", axis],
            "in_stack3.tif",
            &format!("flip_{axis}.tif"),
        );
    }
}

#[test]
fn clip_of_uint16_with_whole_bounds_keeps_uint16() {
    equals_golden(
        &["clip", "--min", "10000", "--max", "60000"],
        "in_stack3.tif",
        "clip_stack3.tif",
    );
    assert_eq!(read(&golden("clip_stack3.tif")).dtype, "uint16");
}

#[test]
fn clip_of_uint16_with_a_fractional_replacement_is_float32() {
    let args = [
        "clip",
        "--min",
        "10000",
        "--max",
        "60000",
        "--min-value",
        "0.5",
    ];
    equals_golden(&args, "in_stack3.tif", "clip_stack3_float.tif");
    assert_eq!(read(&golden("clip_stack3_float.tif")).dtype, "float32");
}

#[test]
fn clip_of_float32_is_mantidimaging_clip_values() {
    equals_golden(
        &["clip", "--min", "0.6", "--max", "1"],
        "in_bc2.tif",
        "clip_bc.tif",
    );
    equals_golden(
        &[
            "clip",
            "--min",
            "0.6",
            "--max",
            "1",
            "--min-value",
            "0",
            "--max-value",
            "2",
        ],
        "in_bc2.tif",
        "clip_bc_values.tif",
    );
    // Without --min, nothing below is touched.
    equals_golden(&["clip", "--max", "1"], "in_bc2.tif", "clip_bc_max.tif");
}

#[test]
fn arithmetic_with_each_parameter_is_numpy_in_float32_bit_for_bit() {
    for (args, name) in [
        (&["--mul", "2.5"][..], "arith_mul.tif"),
        (&["--div", "3"][..], "arith_div.tif"),
        (&["--add", "0.1"][..], "arith_add.tif"),
        (&["--sub", "0.7"][..], "arith_sub.tif"),
    ] {
        equals_golden(&[&["arithmetic"], args].concat(), "in_bc2.tif", name);
    }
    // All four on uint16, converted to float32 first.
    let all = [
        "arithmetic",
        "--mul",
        "3",
        "--div",
        "7",
        "--add",
        "0.25",
        "--sub",
        "1.5",
    ];
    equals_golden(&all, "in_stack3.tif", "arith_all.tif");
    assert_eq!(read(&golden("arith_all.tif")).dtype, "float32");
}

#[test]
fn minus_log_of_a_background_corrected_stack_is_numpy_within_4_ulp() {
    let s = scratch_with(&["in_bc2.tif"]);
    run(&s, &["minus-log"], "in_bc2.tif", "out.tif");
    assert_within_ulps(&s.path("out.tif"), &golden("minuslog_bc.tif"), 4);
}

#[test]
fn minus_log_raises_zero_negative_and_tiny_values_to_one_millionth() {
    let s = scratch_with(&["in_transmission.tif"]);
    run(&s, &["minus-log"], "in_transmission.tif", "out.tif");
    assert_within_ulps(&s.path("out.tif"), &golden("minuslog_transmission.tif"), 4);
    let input = read(&golden("in_transmission.tif"));
    let out = read(&s.path("out.tif"));
    let top = -(1e-6f32).ln();
    let mut raised = 0;
    for (&x, &y) in input.values.iter().zip(&out.values) {
        if x < 1e-6 {
            assert_eq!(y as f32, top, "{x}");
            raised += 1;
        } else if x.is_nan() {
            assert!(y.is_nan());
        } else {
            assert!(y <= f64::from(top), "{x} -> {y}");
        }
    }
    assert!(raised > 100, "the fixture has non-positive values");
    // The crafted pixels: 0, -0, -0.25, -1e-30, 1e-30, 1e-7, 1e-6, just above, NaN, Inf, -Inf, 1.
    let first = &out.values[..12];
    assert!(
        first[..8]
            .iter()
            .all(|&y| y.is_finite() && y > 13.8 && y <= f64::from(top))
    );
    assert!(first[8].is_nan());
    assert_eq!(first[9], f64::NEG_INFINITY);
    assert_eq!(first[10] as f32, top);
    assert_eq!(first[11], 0.0);
}

/// Output type of each `fixtures/ops/dtypes` operation for an input of `dtype`.
fn dtype_out(op: &str, dtype: &'static str) -> &'static str {
    match op {
        "clip_float" if dtype == "float64" => "float64",
        "clip_float" | "arith" | "minuslog" => "float32",
        _ => dtype,
    }
}

#[test]
fn every_input_type_goes_through_every_operation_as_numpy_computes_it() {
    let ops: [(&str, &[&str]); 9] = [
        ("crop", &["crop", "--roi", "1,1,6,4"]),
        ("rotate90", &["rotate", "--angle", "90"]),
        ("rotate270", &["rotate", "--angle", "270"]),
        ("fliph", &["flip", "--axis", "horizontal"]),
        ("flipv", &["flip", "--axis", "vertical"]),
        ("clip", &["clip", "--min", "10", "--max", "200"]),
        (
            "clip_float",
            &[
                "clip",
                "--min",
                "10",
                "--max",
                "200",
                "--max-value",
                "200.5",
            ],
        ),
        (
            "arith",
            &[
                "arithmetic",
                "--mul",
                "3",
                "--div",
                "7",
                "--add",
                "0.25",
                "--sub",
                "1.5",
            ],
        ),
        ("minuslog", &["minus-log"]),
    ];
    let s = Scratch::new();
    for dtype in [
        "uint8", "uint16", "uint32", "int16", "int32", "float32", "float64",
    ] {
        let input = format!("in_{dtype}.tif");
        s.copy_fixture(&format!("ops/dtypes/{input}"), &input);
        for (op, args) in ops {
            let out = format!("{op}_{dtype}.tif");
            run(&s, args, &input, &out);
            let expected = golden(&format!("dtypes/{out}"));
            assert_eq!(read(&expected).dtype, dtype_out(op, dtype), "{out}");
            if op == "minuslog" {
                assert_within_ulps(&s.path(&out), &expected, 4);
            } else {
                assert_identical(&s.path(&out), &expected, Nan::Bits);
            }
        }
    }
}

// --- errors -------------------------------------------------------------------------------

#[test]
fn a_roi_outside_the_image_names_the_roi_and_the_image_size() {
    let s = Scratch::new();
    one_line_error(
        &s,
        &["crop", "--roi", "10,5,80,40"],
        "sample/stack.tif",
        1,
        &["--roi 10,5,80,40", "67x45"],
    );
    // As a step of a chain it is a usage error naming the step.
    let out = s
        .imfilter()
        .args([
            "run",
            "--step",
            "median --size 3",
            "--step",
            "crop --roi 0,0,67,46",
        ])
        .args(["sample/stack.tif", "-o", "out.tif"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert_one_line_error(
        &out.stderr,
        &["--step 2 (crop)", "--roi 0,0,67,46", "67x45"],
    );
    assert!(!s.path("out.tif").exists());
}

#[test]
fn an_empty_roi_is_refused() {
    let s = Scratch::new();
    let out = s
        .imfilter()
        .args([
            "crop",
            "--roi",
            "10,5,10,40",
            "sample/stack.tif",
            "-o",
            "out.tif",
        ])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert_one_line_error(&out.stderr, &["--roi 10,5,10,40", "empty", "67x45"]);
    // A ROI that is not four whole numbers is a usage error.
    for roi in ["1,2,3", "-1,0,5,5", "a,b,c,d"] {
        s.imfilter()
            .args(["crop", "--roi", roi, "sample/stack.tif", "-o", "out.tif"])
            .assert()
            .code(2);
    }
    assert!(!s.path("out.tif").exists());
}

#[test]
fn division_by_zero_is_refused() {
    let s = Scratch::new();
    usage_error(&s, &["arithmetic", "--div", "0"], &["--div", "zero"]);
    usage_error(&s, &["arithmetic", "--div", "-0.0"], &["--div", "zero"]);
    usage_error(&s, &["arithmetic", "--mul", "0"], &["--mul", "zero"]);
    usage_error(
        &s,
        &["run", "--step", "arithmetic --div 0"],
        &["--step 1", "--div", "zero"],
    );
    usage_error(&s, &["arithmetic", "--add", "nan"], &["--add", "finite"]);
}

#[test]
fn an_angle_other_than_90_180_270_is_refused() {
    let s = Scratch::new();
    for angle in ["45", "0", "360", "-90", "90.0"] {
        usage_error(
            &s,
            &["rotate", "--angle", angle],
            &["--angle", "90, 180 or 270"],
        );
    }
    usage_error(
        &s,
        &["run", "--step", "rotate --angle 45"],
        &["--step 1", "90, 180 or 270"],
    );
}

#[test]
fn an_axis_other_than_horizontal_or_vertical_is_refused() {
    let s = Scratch::new();
    usage_error(
        &s,
        &["flip", "--axis", "diagonal"],
        &["--axis", "horizontal", "vertical"],
    );
    usage_error(&s, &["flip"], &["--axis"]);
}

#[test]
fn clip_needs_a_bound_and_a_replacement_needs_its_bound() {
    let s = Scratch::new();
    usage_error(&s, &["clip"], &["--min", "--max"]);
    usage_error(&s, &["clip", "--max", "3", "--min-value", "0"], &["--min"]);
    usage_error(&s, &["clip", "--min", "nan"], &["--min", "finite"]);
}

// --- as steps of a chain --------------------------------------------------------------------

#[test]
fn crop_before_background_correction_crops_flats_and_darks_as_one_by_one() {
    let s = Scratch::new();
    // One by one, the user crops the flats and darks too.
    run(
        &s,
        &["crop", "--roi", "5,3,60,40"],
        "sample/flat.tif",
        "flat_c.tif",
    );
    run(
        &s,
        &["crop", "--roi", "5,3,60,40"],
        "sample/dark.tif",
        "dark_c.tif",
    );
    let chained = [
        "crop --roi 5,3,60,40",
        "background-correct --flat sample/flat.tif --dark sample/dark.tif",
    ];
    s.imfilter()
        .args(["run", "--step", chained[0], "--step", chained[1]])
        .args(["sample/stack.tif", "-o", "chained.tif", "-q"])
        .assert()
        .success();
    run(
        &s,
        &["crop", "--roi", "5,3,60,40"],
        "sample/stack.tif",
        "step0.tif",
    );
    let bc = [
        "background-correct",
        "--flat",
        "flat_c.tif",
        "--dark",
        "dark_c.tif",
    ];
    run(&s, &bc, "step0.tif", "step1.tif");
    assert_identical(&s.path("chained.tif"), &s.path("step1.tif"), Nan::Bits);
}

#[test]
fn crop_then_minus_log_chained_equals_one_by_one() {
    let s = scratch_with(&["in_transmission.tif"]);
    chain_equals_steps_one_by_one(
        &s,
        &["crop --roi 0,0,40,30", "minus-log"],
        "in_transmission.tif",
        Nan::Bits,
    );
}

#[test]
fn rotate_in_a_chain_equals_one_by_one() {
    let s = Scratch::new();
    chain_equals_steps_one_by_one(
        &s,
        &["rotate --angle 90", "median --size 3", "rotate --angle 270"],
        "sample/stack.tif",
        Nan::Bits,
    );
}

#[test]
fn flip_in_a_chain_equals_one_by_one() {
    let s = Scratch::new();
    chain_equals_steps_one_by_one(
        &s,
        &[
            "flip --axis vertical",
            "clip --min 8000 --max 60000",
            "flip --axis horizontal",
        ],
        "sample/stack.tif",
        Nan::Bits,
    );
}

#[test]
fn clip_after_background_correction_chained_equals_one_by_one() {
    let s = Scratch::new();
    chain_equals_steps_one_by_one(
        &s,
        &[
            "background-correct --flat sample/flat.tif --dark sample/dark.tif",
            "clip --min 0.6 --max 1 --max-value nan",
        ],
        "sample/stack.tif",
        Nan::Bits,
    );
}

#[test]
fn arithmetic_then_minus_log_chained_equals_one_by_one() {
    let s = scratch_with(&["in_bc2.tif"]);
    chain_equals_steps_one_by_one(
        &s,
        &["arithmetic --sub 0.5 --mul 2", "minus-log"],
        "in_bc2.tif",
        Nan::Bits,
    );
}

#[test]
fn minus_log_of_uint16_in_a_chain_equals_one_by_one() {
    let s = Scratch::new();
    chain_equals_steps_one_by_one(
        &s,
        &[
            "clip --max 60000 --max-value 0",
            "minus-log",
            "rotate --angle 180",
        ],
        "sample/stack.tif",
        Nan::Bits,
    );
}
