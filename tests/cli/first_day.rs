//! A beamline user's first day (issue 19): outputs that are what their name says, and
//! messages that point where the user meant to go. Each test checks the message a user sees.

use crate::support::{Nan, Scratch, assert_identical, assert_one_line_error, run};

/// stderr of a command that must fail with a usage error (exit 2), nothing written.
fn refused(s: &Scratch, args: &[&str]) -> String {
    let out = s
        .imfilter()
        .args(args)
        .assert()
        .code(2)
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!text.contains("panicked"), "{text}");
    s.assert_no_temp_files();
    text
}

#[test]
fn an_output_name_imfilter_does_not_write_is_refused_naming_what_it_writes() {
    let s = Scratch::new();
    for name in ["x.png", "x.npy", "stack.h5"] {
        let ext = name.rsplit('.').next().expect("extension");
        let out = s
            .imfilter()
            .args(["median", "--size", "3", "sample/stack.tif", "-o", name])
            .assert()
            .code(2)
            .get_output()
            .clone();
        assert_one_line_error(
            &out.stderr,
            &[
                &format!("{name}: imfilter writes TIFF only"),
                "NAME.tif",
                "DIR/",
                &format!(".{ext} is not written"),
            ],
        );
        assert!(!s.path(name).exists());
        s.assert_no_temp_files();
    }
    // TIFF names in any case, and a name without an extension, are written.
    for name in ["upper.TIF", "big.tiff", "plain"] {
        run(&s, &["median", "--size", "3"], "sample/stack.tif", name);
        assert!(s.path(name).is_file(), "{name}");
    }
}

#[test]
fn an_option_of_another_operation_is_named_as_that_operations() {
    let s = Scratch::new();
    let text = refused(
        &s,
        &[
            "median",
            "--size",
            "3",
            "--threshold",
            "5",
            "sample/stack.tif",
        ],
    );
    assert!(
        text.contains(
            "tip: --threshold is an option of remove-outliers, not of median \
             (see imfilter remove-outliers --help)"
        ),
        "{text}"
    );
    assert!(
        !text.contains("--threads'"),
        "no tip toward --threads: {text}"
    );
}

#[test]
fn bright_and_dark_together_point_to_both() {
    let s = Scratch::new();
    let text = refused(
        &s,
        &[
            "remove-outliers",
            "--size",
            "3",
            "--threshold",
            "5",
            "--bright",
            "--dark",
            "sample/stack.tif",
        ],
    );
    assert!(text.contains("cannot be used with"), "{text}");
    assert!(
        text.contains("tip: to replace both bright and dark outliers, give --both"),
        "{text}"
    );
}

#[test]
fn a_negative_threshold_is_read_as_a_number_and_refused_as_one() {
    let s = Scratch::new();
    let text = refused(
        &s,
        &[
            "remove-outliers",
            "--size",
            "3",
            "--threshold",
            "-5",
            "sample/stack.tif",
        ],
    );
    assert!(!text.contains("unexpected argument"), "{text}");
    assert!(
        text.contains("-5: the threshold is a distance from the median and must be positive"),
        "{text}"
    );
    assert!(text.contains("use --dark"), "{text}");
}

/// The names people bring from scipy and MantidImaging work where they mean the same.
#[test]
fn kernel_size_and_flat_field_are_accepted_aliases() {
    let s = Scratch::new();
    run(
        &s,
        &["median", "--size", "3"],
        "sample/stack.tif",
        "size.tif",
    );
    run(
        &s,
        &["median", "--kernel-size", "3"],
        "sample/stack.tif",
        "kernel.tif",
    );
    assert_identical(&s.path("kernel.tif"), &s.path("size.tif"), Nan::Bits);
    let flats = ["--flat", "sample/flat.tif", "--dark", "sample/dark.tif"];
    let mut bc = vec!["background-correct"];
    bc.extend(flats);
    run(&s, &bc, "sample/stack.tif", "bc.tif");
    let mut ff = vec!["flat-field"];
    ff.extend(flats);
    run(&s, &ff, "sample/stack.tif", "ff.tif");
    assert_identical(&s.path("ff.tif"), &s.path("bc.tif"), Nan::Bits);
    // Both names are shown in the help, so they can be found.
    let help = s
        .imfilter()
        .args(["median", "--help"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(String::from_utf8_lossy(&help).contains("kernel-size"));
}

/// What a subcommand needs comes first in its help; the options every command shares last.
#[test]
fn background_corrects_help_puts_flat_and_dark_first() {
    let s = Scratch::new();
    let out = s
        .imfilter()
        .args(["background-correct", "--help"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let help = String::from_utf8_lossy(&out);
    // The line of the help that defines `flag` ("  -o, --output <PATH>", "      --force").
    let at = |flag: &str| {
        help.lines()
            .position(|line| {
                let line = line.trim_start();
                let line = line.split_once(", ").map_or(line, |(_, long)| long);
                line.split([' ', '\n']).next() == Some(flag)
            })
            .unwrap_or_else(|| panic!("{flag} in help: {help}"))
    };
    for common in ["--output", "--force", "--progress", "--quiet", "--threads"] {
        assert!(at("--flat") < at(common), "--flat before {common}: {help}");
        assert!(at("--dark") < at(common), "--dark before {common}: {help}");
    }
}

#[test]
fn in_json_progress_mode_the_summary_is_json_too() {
    let s = Scratch::new();
    let out = s
        .imfilter()
        .args(["median", "--size", "3", "sample/stack.tif", "-o", "out.tif"])
        .args(["--progress", "json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stderr);
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?} in {text}"));
        assert!(value["event"].is_string(), "{line}");
    }
    let last: serde_json::Value =
        serde_json::from_str(text.lines().last().expect("a summary")).expect("JSON");
    assert_eq!(last["event"], "summary");
    assert_eq!(last["command"], "median");
    assert_eq!(last["images"], 12);
    assert_eq!(last["output"], "out.tif");
}

#[test]
fn an_empty_pipe_says_the_stage_before_probably_failed() {
    let s = Scratch::new();
    let out = s
        .imfilter()
        .args(["median", "--size", "3", "-", "-o", "out.tif"])
        .write_stdin(Vec::<u8>::new())
        .assert()
        .code(1)
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        text.trim_end(),
        "imfilter: error: <stdin>: the input stream ended before a TIFF began (0 bytes): the \
         command before the pipe probably failed"
    );
    assert!(!s.path("out.tif").exists());
}
