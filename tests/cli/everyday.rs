//! Everyday use (issue 15): shell completions and the manual page, generated from the one
//! clap definition, so they name every operation and option the program has.

use crate::support::Scratch;

fn stdout_of(args: &[&str]) -> String {
    let s = Scratch::new();
    let out = s.imfilter().args(args).assert().success();
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

#[test]
fn completions_for_bash_zsh_and_fish_name_every_operation() {
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout_of(&["completions", shell]);
        // (fish writes options as `-l flat-mode`.)
        for word in ["remove-stripes", "background-correct", "flat-mode", "pages"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    let s = Scratch::new();
    s.imfilter().args(["completions", "tcsh"]).assert().code(2);
}

#[test]
fn the_manual_page_is_roff_naming_the_operations() {
    let page = stdout_of(&["man"]);
    assert!(page.contains(".TH imfilter"), "a man page title: {page}");
    for word in ["remove\\-stripes", "background\\-correct", "median"] {
        assert!(page.contains(word), "the man page lacks {word}");
    }
}

/// The sample job, as a cron line runs it: stderr is a file, not a terminal.
fn sample_job(s: &Scratch, extra: &[&str]) -> assert_cmd::assert::Assert {
    let sample = crate::support::fixtures().join("sample");
    s.imfilter_as_cron_runs_it()
        .args(["background-correct", "--flat"])
        .arg(sample.join("flat.tif"))
        .arg("--dark")
        .arg(sample.join("dark.tif"))
        .arg(sample.join("stack.tif"))
        .args(["-o", "out.tif", "--force"])
        .args(extra)
        .assert()
}

#[test]
fn off_a_terminal_a_successful_run_prints_nothing_so_cron_sends_no_mail() {
    let s = Scratch::new();
    let out = sample_job(&s, &[]).success();
    assert!(out.get_output().stderr.is_empty(), "{:?}", out.get_output());
    assert!(out.get_output().stdout.is_empty());
    assert!(s.path("out.tif").exists());
}

#[test]
fn off_a_terminal_a_failed_run_still_says_why() {
    let s = Scratch::new();
    let out = s
        .imfilter_as_cron_runs_it()
        .args(["median", "--size", "3", "missing.tif", "-o", "out.tif"])
        .assert()
        .failure();
    let text = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(text.contains("missing.tif"), "{text}");
}

#[test]
fn verbose_or_progress_lines_asked_for_by_name_bring_the_summary_back() {
    for extra in [&["-v"][..], &["--verbose"], &["--progress", "plain"]] {
        let s = Scratch::new();
        let out = sample_job(&s, extra).success();
        let text = String::from_utf8_lossy(&out.get_output().stderr);
        assert!(text.contains("background-correct"), "{extra:?}: {text}");
        assert!(text.contains("out.tif"), "{extra:?}: {text}");
    }
    let s = Scratch::new();
    let out = sample_job(&s, &["--progress", "json"]).success();
    let last = String::from_utf8_lossy(&out.get_output().stderr)
        .lines()
        .last()
        .map(str::to_owned)
        .unwrap_or_default();
    let summary: serde_json::Value = serde_json::from_str(&last).expect("a JSON summary");
    assert!(summary.is_object(), "{last}");
}

#[test]
fn quiet_wins_over_verbose() {
    let s = Scratch::new();
    let out = sample_job(&s, &["-v", "-q"]).success();
    assert!(out.get_output().stderr.is_empty(), "{:?}", out.get_output());
}

fn info_json(s: &Scratch, file: &str) -> serde_json::Value {
    let out = s
        .imfilter()
        .args(["info", "--json", file])
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).expect("info --json is JSON")
}

#[test]
fn in_place_keeps_the_inputs_compression_and_the_pixels_equal_an_uncompressed_run() {
    let cases = [
        ("formats/tiffcp_lzw.tif", "LZW"),
        ("formats/tiffcp_zip.tif", "Deflate"),
        ("formats/tifffile_float32_zstd.tif", "ZSTD"),
        ("formats/tiffcp_packbits_rows1.tif", "PackBits"),
        ("formats/pillow_uint16.tif", "none"),
    ];
    for (fixture, compression) in cases {
        let s = Scratch::new();
        s.copy_fixture(fixture, "in.tif");
        let before = info_json(&s, "in.tif");
        assert_eq!(before["compression"], compression, "{fixture}: {before}");
        s.imfilter()
            .args(["median", "--size", "3", "in.tif", "-o", "reference.tif"])
            .assert()
            .success();
        s.imfilter()
            .args(["median", "--size", "3", "in.tif", "--in-place"])
            .assert()
            .success();
        let after = info_json(&s, "in.tif");
        assert_eq!(after["compression"], compression, "{fixture}: {after}");
        crate::support::assert_identical(
            &s.path("in.tif"),
            &s.path("reference.tif"),
            crate::support::Nan::Bits,
        );
    }
}

#[test]
fn in_place_with_compress_changes_the_kind_because_it_was_asked() {
    let s = Scratch::new();
    s.copy_fixture("formats/tiffcp_lzw.tif", "in.tif");
    s.imfilter()
        .args([
            "median",
            "--size",
            "3",
            "in.tif",
            "--in-place",
            "--compress",
            "none",
        ])
        .assert()
        .success();
    assert_eq!(info_json(&s, "in.tif")["compression"], "none");
}

#[test]
fn in_place_on_what_imfilter_cannot_write_again_is_refused_and_the_input_kept() {
    let s = Scratch::new();
    s.copy_fixture("formats/tiffcp_tiled.tif", "in.tif");
    let before = std::fs::read(s.path("in.tif")).expect("copied");
    let out = s
        .imfilter()
        .args(["median", "--size", "3", "in.tif", "--in-place"])
        .assert()
        .failure();
    crate::support::assert_one_line_error(
        &out.get_output().stderr,
        &[
            "in.tif",
            "tiled",
            "imfilter writes strips; write the result to a new file with -o",
        ],
    );
    assert_eq!(std::fs::read(s.path("in.tif")).expect("kept"), before);
}

#[test]
fn jpeg_and_lzma_files_from_tifffile_and_libtiff_are_read() {
    // Pixel values against tifffile's are checked in tests/formats.rs; here, as a user runs it.
    for fixture in [
        "tiffcp_uint8_jpeg.tif",
        "tifffile_uint16_lzma.tif",
        "tiffcp_lzma.tif",
    ] {
        let s = Scratch::new();
        s.copy_fixture(&format!("formats/{fixture}"), "in.tif");
        s.imfilter()
            .args(["median", "--size", "3", "in.tif", "-o", "out.tif"])
            .assert()
            .success();
        assert_eq!(info_json(&s, "out.tif")["compression"], "none", "{fixture}");
    }
}

#[test]
fn a_damaged_lzma_strip_is_a_one_line_error_not_wrong_pixels() {
    let s = Scratch::new();
    let mut bytes =
        std::fs::read(crate::support::fixtures().join("formats/tifffile_uint16_lzma.tif"))
            .expect("fixture");
    let stream = bytes
        .windows(6)
        .position(|w| w == b"\xFD7zXZ\0")
        .expect("an .xz stream in the file");
    bytes[stream + 40] ^= 0x55;
    std::fs::write(s.path("in.tif"), bytes).expect("write");
    let out = s
        .imfilter()
        .args(["median", "--size", "3", "in.tif", "-o", "out.tif"])
        .assert()
        .failure();
    crate::support::assert_one_line_error(&out.get_output().stderr, &["in.tif", "LZMA"]);
    assert!(!s.path("out.tif").exists());
}

fn preview_golden() -> serde_json::Value {
    let text = std::fs::read_to_string(crate::support::fixtures().join("preview/golden.json"))
        .expect("fixtures/preview/golden.json");
    serde_json::from_str(&text).expect("golden JSON")
}

fn read_png(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).expect("the PNG exists"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let frame = reader.next_frame(&mut pixels).expect("one frame");
    assert_eq!(frame.color_type, png::ColorType::Grayscale);
    assert_eq!(frame.bit_depth, png::BitDepth::Eight);
    pixels.truncate(frame.buffer_size());
    (frame.width, frame.height, pixels)
}

fn golden_pixels(entry: &serde_json::Value) -> (u32, u32, Vec<u8>) {
    let number = |k: &str| entry[k].as_u64().expect("a size") as u32;
    let pixels = entry["pixels"]
        .as_array()
        .expect("pixels")
        .iter()
        .map(|v| v.as_u64().expect("a grey level") as u8)
        .collect();
    (number("width"), number("height"), pixels)
}

#[test]
fn preview_stretches_a_page_from_its_1st_to_its_99th_percentile_as_numpy_computes_them() {
    let golden = preview_golden();
    for (fixture, key) in [
        ("sample/stack.tif", "sample/stack.tif:3"),
        ("expected/bc_mean.tif", "expected/bc_mean.tif:3"),
    ] {
        let s = Scratch::new();
        s.copy_fixture(fixture, "in.tif");
        s.imfilter()
            .args(["preview", "in.tif", "--page", "3", "-o", "page.png"])
            .assert()
            .success();
        assert_eq!(
            read_png(&s.path("page.png")),
            golden_pixels(&golden["stretch"][key]),
            "{key}"
        );
        s.assert_no_temp_files();
    }
}

#[test]
fn preview_compare_puts_both_stretched_pages_side_by_side() {
    let golden = preview_golden();
    let (w, h, raw) = golden_pixels(&golden["stretch"]["sample/stack.tif:3"]);
    let (w2, _, corrected) = golden_pixels(&golden["stretch"]["expected/bc_mean.tif:3"]);
    let s = Scratch::new();
    s.copy_fixture("sample/stack.tif", "raw.tif");
    s.copy_fixture("expected/bc_mean.tif", "corrected.tif");
    s.imfilter()
        .args([
            "preview",
            "raw.tif",
            "--compare",
            "corrected.tif",
            "--page",
            "3",
        ])
        .assert()
        .success();
    // The default name: beside the input, NAME_pageN.png.
    let (width, height, pixels) = read_png(&s.path("raw_page3.png"));
    assert_eq!((width, height), (w + 4 + w2, h));
    for y in 0..h as usize {
        let row = &pixels[y * width as usize..][..width as usize];
        assert_eq!(&row[..w as usize], &raw[y * w as usize..][..w as usize]);
        assert_eq!(
            &row[w as usize + 4..],
            &corrected[y * w2 as usize..][..w2 as usize]
        );
    }
}

#[test]
fn a_preview_gets_the_same_permissions_as_a_tiff_result() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    s.copy_fixture("sample/stack.tif", "in.tif");
    s.imfilter()
        .args(["preview", "in.tif", "-o", "p.png"])
        .assert()
        .success();
    s.imfilter()
        .args(["median", "--size", "3", "in.tif", "-o", "out.tif"])
        .assert()
        .success();
    let mode = |name: &str| {
        std::fs::metadata(s.path(name))
            .expect("written")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("p.png"), mode("out.tif"));
}

#[test]
fn preview_refuses_a_missing_page_an_existing_png_and_other_extensions() {
    let s = Scratch::new();
    s.copy_fixture("sample/stack.tif", "in.tif");
    let out = s
        .imfilter()
        .args(["preview", "in.tif", "--page", "12", "-o", "p.png"])
        .assert()
        .failure();
    crate::support::assert_one_line_error(&out.get_output().stderr, &["in.tif", "page 12", "12"]);
    std::fs::write(s.path("p.png"), b"mine").expect("write");
    let out = s
        .imfilter()
        .args(["preview", "in.tif", "-o", "p.png"])
        .assert()
        .failure();
    crate::support::assert_one_line_error(&out.get_output().stderr, &["p.png", "--force"]);
    assert_eq!(std::fs::read(s.path("p.png")).expect("kept"), b"mine");
    s.imfilter()
        .args(["preview", "in.tif", "-o", "p.tif"])
        .assert()
        .code(2);
}

#[test]
fn info_histogram_counts_a_page_as_numpy_histogram_does() {
    let golden = preview_golden();
    for (fixture, page, key) in [
        ("sample/stack.tif", "2", "sample/stack.tif:2"),
        ("sample/flat.tif", "0", "sample/flat.tif:0"),
    ] {
        let s = Scratch::new();
        s.copy_fixture(fixture, "in.tif");
        let out = s
            .imfilter()
            .args(["info", "--json", "--histogram", "--page", page, "in.tif"])
            .assert()
            .success();
        let info: serde_json::Value =
            serde_json::from_slice(&out.get_output().stdout).expect("JSON");
        let expected = &golden["histogram"][key];
        assert_eq!(info["histogram"]["counts"], expected["counts"], "{key}");
        assert_eq!(info["histogram"]["min"], expected["min"], "{key}");
        assert_eq!(info["histogram"]["max"], expected["max"], "{key}");
        let text = s
            .imfilter()
            .args(["info", "--histogram", "--page", page, "in.tif"])
            .assert()
            .success();
        let text = String::from_utf8_lossy(&text.get_output().stdout).into_owned();
        assert!(text.contains("256 bins"), "{text}");
    }
}
