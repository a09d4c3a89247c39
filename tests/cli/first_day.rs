//! A beamline user's first day (issue 19): outputs that are what their name says, and
//! messages that point where the user meant to go. Each test checks the message a user sees.

use crate::support::{
    Nan, Scratch, assert_identical, assert_one_line_error, assert_succeeded,
    chain_equals_steps_one_by_one, run,
};

/// stdout of a command that must succeed.
fn stdout(s: &Scratch, args: &[&str]) -> String {
    let out = s.imfilter().args(args).assert().success();
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

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
    // stack.h5 alone is an HDF5 output without its dataset (tests/cli/hdf5.rs).
    for name in ["x.png", "x.npy"] {
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
                &format!("{name}: imfilter writes TIFF and HDF5 only"),
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
    assert!(stdout(&s, &["median", "--help"]).contains("kernel-size"));
}

/// What a subcommand needs comes first in its help; the options every command shares last.
#[test]
fn background_corrects_help_puts_flat_and_dark_first() {
    let s = Scratch::new();
    let help = stdout(&s, &["background-correct", "--help"]);
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

/// `Tomo/proj_*.tif` as the shell lists it (proj_1, proj_10, proj_11, proj_12, proj_2, …).
fn tomo_glob(s: &Scratch) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(s.path("sample/Tomo"))
        .expect("Tomo")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        // As a shell's `*.tif` lists them: hidden files are not matched.
        .filter(|n| n.ends_with(".tif") && !n.starts_with('.'))
        .map(|n| format!("sample/Tomo/{n}"))
        .collect();
    files.sort();
    files
}

/// Page `p` of a stack file, as another reader sees it.
fn page(path: &std::path::Path, p: usize) -> Vec<u64> {
    let image = crate::support::read_image(path);
    let n = image.bits.len() / image.pages;
    image.bits[p * n..(p + 1) * n].to_vec()
}

#[test]
fn several_input_files_are_one_stack_in_the_order_given_or_natural_order() {
    let s = Scratch::new();
    let glob = tomo_glob(&s);
    run(&s, &["median", "--size", "3"], "sample/Tomo/", "dir.tif");
    // The shell's order, with a note that it is not the natural one.
    assert_eq!(glob.len(), 12);
    let out = s
        .imfilter()
        .args(["median", "--size", "3"])
        .args(&glob)
        .args(["-o", "given.tif"])
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("imfilter: note: the 12 inputs are taken in the order given, which is not their natural order (sample/Tomo/proj_12.tif before sample/Tomo/proj_2.tif); --natural-order sorts them"),
        "{text}"
    );
    // proj_10.tif is the 10th image of the directory (natural order) and the 2nd given.
    assert_eq!(page(&s.path("given.tif"), 1), page(&s.path("dir.tif"), 9));
    s.imfilter()
        .args(["median", "--size", "3", "--natural-order"])
        .args(&glob)
        .args(["-o", "natural.tif", "-q"])
        .assert()
        .success();
    assert_identical(&s.path("natural.tif"), &s.path("dir.tif"), Nan::Bits);
    // Several inputs have no single place beside them for the result.
    let text = refused(
        &s,
        &[
            &["median", "--size", "3"][..],
            &glob[..2].iter().map(String::as_str).collect::<Vec<_>>(),
        ]
        .concat(),
    );
    assert!(text.contains("several inputs need -o"), "{text}");
}

#[test]
fn pages_selects_images_as_a_python_slice_and_is_recorded() {
    let s = Scratch::new();
    run(
        &s,
        &["median", "--size", "3"],
        "sample/stack.tif",
        "all.tif",
    );
    for (slice, expected) in [
        ("2:8:2", vec![2, 4, 6]),
        ("10:", vec![10, 11]),
        ("-3:", vec![9, 10, 11]),
        (":2", vec![0, 1]),
        ("::5", vec![0, 5, 10]),
        ("5:100", vec![5, 6, 7, 8, 9, 10, 11]),
    ] {
        run(
            &s,
            &["median", "--size", "3", "--pages", slice],
            "sample/stack.tif",
            "some.tif",
        );
        let got = crate::support::read_image(&s.path("some.tif"));
        assert_eq!(got.pages, expected.len(), "--pages {slice}");
        for (k, &p) in expected.iter().enumerate() {
            assert_eq!(
                page(&s.path("some.tif"), k),
                page(&s.path("all.tif"), p),
                "--pages {slice}: image {k} is page {p}"
            );
        }
    }
    let history: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.path("some.json")).expect("history sidecar"),
    )
    .expect("JSON");
    let last = history["operation_history"]
        .as_array()
        .and_then(|runs| runs.last())
        .expect("a run");
    assert_eq!(last["pages"], "5:100:1");

    for (slice, why) in [
        ("5:5", "--pages 5:5:1 selects none of the 12 images"),
        ("1:2:0", "it must be at least 1"),
        ("a:b", "expected START:STOP or START:STOP:STEP"),
    ] {
        let text = refused(
            &s,
            &[
                "median",
                "--size",
                "3",
                "--pages",
                slice,
                "sample/stack.tif",
                "-o",
                "x.tif",
            ],
        );
        assert!(text.contains(why), "--pages {slice}: {text}");
        assert!(!s.path("x.tif").exists());
    }
    let text = refused(
        &s,
        &[
            "median",
            "--size",
            "3",
            "--pages",
            "0:2",
            "--in-place",
            "sample/stack.tif",
        ],
    );
    assert!(
        text.contains("--in-place cannot be combined with --pages"),
        "{text}"
    );
}

/// `--flat Flat_Before/*.tif --dark Dark_Before/*.tif Tomo/*.tif` as a shell expands it: the
/// flats and darks are taken as flats and darks, the projections as the stack; the long-standing
/// `--flat f.tif --dark d.tif stack.tif` is unchanged.
#[test]
fn flats_and_darks_from_a_shell_glob_are_taken_as_such() {
    let s = Scratch::new();
    let list = |dir: &str| {
        let mut files: Vec<String> = std::fs::read_dir(s.path(dir))
            .expect("dir")
            .map(|e| format!("{dir}/{}", e.expect("entry").file_name().to_string_lossy()))
            .filter(|n| n.ends_with(".tif") && !n.contains("/."))
            .collect();
        files.sort();
        files
    };
    let (flats, darks) = (list("sample/Flat_Before"), list("sample/Dark_Before"));
    let tomo = tomo_glob(&s);
    run(
        &s,
        &[
            "background-correct",
            "--flat",
            "sample/Flat_Before",
            "--dark",
            "sample/Dark_Before",
        ],
        "sample/Tomo",
        "dirs.tif",
    );
    s.imfilter()
        .args(["background-correct", "--natural-order", "--flat"])
        .args(&flats)
        .arg("--dark")
        .args(&darks)
        .args(&tomo)
        .args(["-o", "globs.tif", "-q"])
        .assert()
        .success();
    assert_identical(&s.path("globs.tif"), &s.path("dirs.tif"), Nan::Bits);
    // The flats' glob running straight into a directory input: the directory is the input.
    let mut args = vec!["background-correct", "--flat"];
    args.extend(flats.iter().map(String::as_str));
    args.extend([
        "--dark",
        "sample/Dark_Before",
        "sample/Tomo",
        "-o",
        "dir.tif",
        "-q",
    ]);
    s.imfilter().args(&args).assert().success();
    assert_identical(&s.path("dir.tif"), &s.path("dirs.tif"), Nan::Bits);
    run(
        &s,
        &[
            "background-correct",
            "--flat",
            "sample/flat.tif",
            "--dark",
            "sample/dark.tif",
        ],
        "sample/stack.tif",
        "canonical.tif",
    );
    assert_eq!(
        crate::support::read_image(&s.path("canonical.tif")).pages,
        12
    );
}

/// Several inputs from different directories, or a directory among them, are almost always
/// a glob meant for something else: refused, not filtered as one stack.
#[test]
fn inputs_from_several_places_are_refused() {
    let s = Scratch::new();
    let text = refused(
        &s,
        &[
            "median",
            "--size",
            "3",
            "sample/stack.tif",
            "sample/Tomo",
            "-o",
            "x.tif",
        ],
    );
    assert!(
        text.contains("sample/Tomo: a directory among several inputs"),
        "{text}"
    );
    let text = refused(
        &s,
        &[
            "median",
            "--size",
            "3",
            "sample/Tomo/proj_1.tif",
            "sample/Flat_Before/flat_1.tif",
            "-o",
            "x.tif",
        ],
    );
    assert!(
        text.contains("the inputs come from more than one directory"),
        "{text}"
    );
    assert!(!s.path("x.tif").exists());
}

/// `info` says what the file is in plain statements.
#[test]
fn info_states_the_layout_plainly() {
    let s = Scratch::new();
    let file = stdout(&s, &["info", "sample/stack.tif"]);
    assert!(
        file.contains("pixels:      one contiguous array (mappable as a whole)"),
        "{file}"
    );
    assert!(
        file.contains("reading:     in place, without decoding"),
        "{file}"
    );
    let dir = stdout(&s, &["info", "sample/Tomo"]);
    assert!(
        dir.contains("pixels:      stored page by page, not as one array"),
        "{dir}"
    );
    assert!(!dir.contains("contiguous: "), "{dir}");
}

/// `info --stats` against the values as another reader (the tiff crate) reads them.
#[test]
fn info_stats_count_what_another_reader_sees() {
    let s = Scratch::new();
    s.copy_fixture("ops/dtypes/in_float32.tif", "floats.tif");
    let info = stdout(
        &s,
        &["info", "--stats", "--per-page", "--json", "floats.tif"],
    );
    let info: serde_json::Value = serde_json::from_str(&info).expect("JSON");
    let image = crate::support::read_image(&s.path("floats.tif"));
    let n = image.values.len() / image.pages;
    let expect = |values: &[f64], got: &serde_json::Value| {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let count = |f: &dyn Fn(f64) -> bool| values.iter().filter(|&&v| f(v)).count() as u64;
        assert_eq!(got["nan"], count(&|v| v.is_nan()));
        assert_eq!(got["plus_inf"], count(&|v| v == f64::INFINITY));
        assert_eq!(got["minus_inf"], count(&|v| v == f64::NEG_INFINITY));
        assert_eq!(got["zeros"], count(&|v| v == 0.0));
        assert_eq!(got["finite"], finite.len() as u64);
        let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // (serde_json's parser may be 1 ulp off on a float it printed: compared within 1e-15.)
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-15 * b.abs();
        assert!(close(got["min"].as_f64().expect("min"), min), "{got}");
        assert!(close(got["max"].as_f64().expect("max"), max), "{got}");
        let mean = finite.iter().sum::<f64>() / finite.len() as f64;
        let reported = got["mean"].as_f64().expect("a mean");
        assert!(
            (reported - mean).abs() <= 1e-12 * mean.abs(),
            "{reported} vs {mean}"
        );
    };
    expect(&image.values, &info["stats"]);
    assert_eq!(info["stats"]["nan"], 1, "the fixture holds a NaN");
    let pages = info["pages_stats"].as_array().expect("per page");
    assert_eq!(pages.len(), image.pages);
    for (p, got) in pages.iter().enumerate() {
        expect(&image.values[p * n..(p + 1) * n], got);
    }
    // The text form gives the same counts.
    let text = stdout(&s, &["info", "--stats", "floats.tif"]);
    assert!(text.contains("NaN 1, +Inf 1, -Inf 1, zeros 2"), "{text}");
}

/// Flats and darks before and after the scan, `--flat-mode`, against MantidImaging's
/// flat-fielding (golden files made by fixtures/flat_modes/make_flat_mode_fixtures.py).
#[test]
fn flats_before_after_or_both_equal_mantidimagings_flat_fielding() {
    let s = Scratch::new();
    for dir in ["Flat_After", "Dark_After"] {
        let from = crate::support::fixtures().join("flat_modes").join(dir);
        crate::support::copy_tree(&from, &s.path(dir));
    }
    let all = [
        "--flat-before",
        "sample/Flat_Before",
        "--dark-before",
        "sample/Dark_Before",
        "--flat-after",
        "Flat_After",
        "--dark-after",
        "Dark_After",
    ];
    for mode in ["before", "after", "both", "interpolated"] {
        let out = format!("{mode}.tif");
        let mut args = vec!["background-correct", "--flat-mode", mode];
        args.extend(all);
        run(&s, &args, "sample/stack.tif", &out);
        let golden = crate::support::fixtures().join(format!("flat_modes/fm_{mode}.tif"));
        assert_identical(&s.path(&out), &golden, Nan::Bits);
    }
    // Without --flat-mode, the sets given say which: both sets give "both".
    let mut args = vec!["background-correct"];
    args.extend(all);
    run(&s, &args, "sample/stack.tif", "inferred.tif");
    assert_identical(&s.path("inferred.tif"), &s.path("both.tif"), Nan::Bits);
    let history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("inferred.json")).expect("sidecar"))
            .expect("JSON");
    assert_eq!(
        history["operation_history"][0]["parameters"]["flat_mode"],
        "both"
    );
    // Darks from the other side only are not taken for no darks.
    let text = refused(
        &s,
        &[
            "background-correct",
            "--flat-after",
            "Flat_After",
            "--dark",
            "sample/Dark_Before",
            "sample/stack.tif",
            "-o",
            "x.tif",
        ],
    );
    assert!(
        text.contains(
            "--flat-mode after needs --dark-after (the darks given are from before the scan)"
        ),
        "{text}"
    );
    let text = refused(
        &s,
        &[
            "background-correct",
            "--flat-mode",
            "both",
            "--flat",
            "sample/Flat_Before",
            "sample/stack.tif",
            "-o",
            "x.tif",
        ],
    );
    assert!(
        text.contains("--flat-mode both needs --flat-after"),
        "{text}"
    );

    // Each image gets its own flat: so in a chain whose sinogram pass reads rows straight
    // from the input, and in a directory result, each row and file is still that image's.
    let mut step = String::from("background-correct --flat-mode interpolated");
    for (flag, path) in all.chunks(2).map(|p| (p[0], p[1])) {
        step.push_str(&format!(" {flag} {path}"));
    }
    chain_equals_steps_one_by_one(
        &s,
        &[&step, "remove-stripes --method sorting --size 5"],
        "sample/stack.tif",
        Nan::Bits,
    );
    let mut args: Vec<&str> = vec!["background-correct", "--flat-mode", "interpolated"];
    args.extend(all);
    run(&s, &args, "sample/Tomo", "dir/");
    let golden = crate::support::read_image(
        &crate::support::fixtures().join("flat_modes/fm_interpolated.tif"),
    );
    let n = golden.bits.len() / golden.pages;
    let page = crate::support::read_image(&s.path("dir/proj_12.tif"));
    assert_eq!(
        page.bits,
        golden.bits[11 * n..12 * n],
        "the 12th image, interpolated as such"
    );
}

/// A chain through a pipe keeps its whole history: each step writes the history into the
/// TIFF (a private tag), the next one extends what it read.
#[test]
fn history_flows_through_a_pipe_inside_the_tiff() {
    let s = Scratch::new();
    let first = s
        .imfilter()
        .args(["remove-outliers", "--size", "3", "--threshold", "500"])
        .args(["sample/stack.tif", "-o", "-", "-q"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    s.imfilter()
        .args([
            "background-correct",
            "--flat",
            "sample/flat.tif",
            "-",
            "-o",
            "out.tif",
            "-q",
        ])
        .write_stdin(first)
        .assert()
        .success();
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("out.json")).expect("sidecar"))
            .expect("JSON");
    let operations = |history: &serde_json::Value| -> Vec<String> {
        history["operation_history"]
            .as_array()
            .expect("runs")
            .iter()
            .map(|r| r["operation"].as_str().expect("operation").to_string())
            .collect()
    };
    assert_eq!(
        operations(&sidecar),
        ["remove-outliers", "background-correct"]
    );
    assert_eq!(
        sidecar["operation_history"][0]["input"], "sample/stack.tif",
        "the first step names the file it read"
    );
    // The same history inside the TIFF, as another reader finds it.
    let file = std::fs::File::open(s.path("out.tif")).expect("open");
    let mut decoder = tiff::decoder::Decoder::new(std::io::BufReader::new(file)).expect("TIFF");
    let tagged = decoder
        .get_tag_ascii_string(tiff::tags::Tag::Unknown(65321))
        .expect("the history tag");
    let tagged: serde_json::Value = serde_json::from_str(&tagged).expect("JSON in the tag");
    assert_eq!(operations(&tagged), operations(&sidecar));
    for (inside, beside) in tagged["operation_history"]
        .as_array()
        .expect("runs")
        .iter()
        .zip(sidecar["operation_history"].as_array().expect("runs"))
    {
        assert_eq!(inside["input"], beside["input"]);
        assert_eq!(inside["parameters"], beside["parameters"]);
        // Without time and output name, so one command writes the same file every time.
        assert!(
            inside.get("time").is_none() && inside.get("output").is_none(),
            "{inside}"
        );
    }
    // ImageJ's description is left to ImageJ; info names the steps.
    let description = decoder
        .get_tag_ascii_string(tiff::tags::Tag::ImageDescription)
        .expect("description");
    assert!(description.starts_with("ImageJ="), "{description}");
    let info = stdout(&s, &["info", "out.tif"]);
    assert!(
        info.contains("history:     remove-outliers -> background-correct"),
        "{info}"
    );
}

/// On a terminal the bar's rate is a whole number of images per second (indicatif's own
/// `{per_sec}` printed "30.2731/s"). `script` gives the run a terminal.
#[test]
fn the_bar_shows_a_rounded_rate_in_images_per_second() {
    let s = Scratch::new();
    let bin = assert_cmd::cargo::cargo_bin("imfilter");
    let command = format!(
        "{} median --size 3 sample/stack.tif -o out.tif --progress bar",
        bin.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(s.dir.path())
        .output()
        .expect("script (util-linux) runs");
    assert_succeeded(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    let rates: Vec<&str> = text
        .split(", ")
        .filter(|part| part.ends_with("images/s"))
        .collect();
    assert!(!rates.is_empty(), "no rate on the bar: {text:?}");
    for rate in rates {
        let number = rate.trim_end_matches(" images/s");
        assert!(
            number.chars().all(|c| c.is_ascii_digit()),
            "{rate:?} in {text:?}"
        );
    }
    assert!(s.path("out.tif").is_file());
}
