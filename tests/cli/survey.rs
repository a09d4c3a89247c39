//! Steps that need a statistic of the whole stack first (`rescale` without bounds,
//! `roi-normalise`), against MantidImaging's rules computed with numpy (golden files made by
//! `fixtures/ops/make_survey_fixtures.py`).

use crate::support::{Scratch, assert_one_line_error, fixtures, read_stack};

/// Runs `imfilter -q ARGS INPUT -o out.tif` and compares with `fixtures/ops/GOLDEN`: exactly,
/// or within `rtol` relative.
fn matches(args: &str, input: &str, golden: &str, rtol: f64) {
    let s = Scratch::new();
    s.copy_fixture("expected/bc_mean.tif", "bc_mean.tif");
    s.imfilter()
        .arg("-q")
        .args(shlex::split(args).expect("words"))
        .args([input, "-o", "out.tif"])
        .assert()
        .success();
    let (got, want) = (
        read_stack(&s.path("out.tif")),
        read_stack(&fixtures().join("ops").join(golden)),
    );
    assert_eq!((got.0, got.1, got.2), (want.0, want.1, want.2), "{args}");
    for (i, (g, w)) in got.3.iter().zip(&want.3).enumerate() {
        let ok = g == w || (g.is_nan() && w.is_nan()) || (g - w).abs() <= rtol * w.abs();
        assert!(ok, "{args}: pixel {i} is {g}, numpy {w}");
    }
}

#[test]
fn rescale_without_bounds_maps_the_stacks_own_range() {
    // float32 in: np.interp in float64, rounded to float32, then truncated: exact.
    matches(
        "rescale --to uint16",
        "bc_mean.tif",
        "survey_rescale_bc_uint16.tif",
        0.0,
    );
    matches(
        "rescale --to float32",
        "sample/stack.tif",
        "survey_rescale_stack_float32.tif",
        0.0,
    );
}

#[test]
fn rescale_with_bounds_clamps_outside_them() {
    matches(
        "rescale --to uint8 --min 0.2 --max 1.1",
        "bc_mean.tif",
        "survey_rescale_bc_uint8_bounds.tif",
        0.0,
    );
    matches(
        "rescale --to uint8 --min 1000 --max 15000 --max-output 100",
        "sample/Tomo",
        "survey_rescale_stack_uint8_max100.tif",
        0.0,
    );
}

#[test]
fn roi_normalise_scales_each_image_to_the_air_regions_mean() {
    // numpy sums the region in float32 pairwise, imfilter in float64: factors differ by a few
    // float32 ulps at most.
    matches(
        "roi-normalise --roi 2,3,14,11",
        "bc_mean.tif",
        "survey_roi_bc_stack_average.tif",
        1e-6,
    );
    matches(
        "roi-normalise --roi 50,30,66,44",
        "sample/stack.tif",
        "survey_roi_stack_stack_average.tif",
        1e-6,
    );
    matches(
        "roi-normalise --roi 50,30,66,44 --mode flat-field --flat sample/flat.tif",
        "sample/stack.tif",
        "survey_roi_stack_flat_field.tif",
        1e-6,
    );
}

#[test]
fn a_survey_step_in_a_chain_sees_what_the_steps_before_it_made() {
    // The stack's own range after background correction is bc_mean's: the same golden.
    matches(
        "run --step 'background-correct --flat sample/flat.tif --dark sample/dark.tif' --step 'rescale --to uint16'",
        "sample/stack.tif",
        "survey_rescale_bc_uint16.tif",
        0.0,
    );
}

#[test]
fn an_roi_outside_the_images_and_a_constant_stack_are_refused() {
    let s = Scratch::new();
    let out = s
        .imfilter()
        .args([
            "roi-normalise",
            "--roi",
            "60,30,70,44",
            "sample/stack.tif",
            "-o",
            "out.tif",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert_one_line_error(&out.stderr, &["60,30,70,44", "67x45"]);
    // A stack of zeros has no range to map.
    let zeros = s.path("zeros.tif");
    let (file, _) = crate::sparse::sparse_stack(&zeros, 2, 8, imfilter::pixel::DType::U16, false);
    drop(file);
    let out = s
        .imfilter()
        .args(["rescale", "--to", "uint8", "zeros.tif", "-o", "out.tif"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert_one_line_error(&out.stderr, &["every value of the stack is 0", "--min"]);
    assert!(!s.path("out.tif").exists());
    s.assert_no_temp_files();
}
