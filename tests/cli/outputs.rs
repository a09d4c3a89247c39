//! Where results go, and that nothing is ever overwritten or left half-written.

use std::fs;

use crate::support::{
    Scratch, assert_matches_reference, assert_one_line_error, fixtures, read_stack,
};

const BC: [&str; 5] = [
    "background-correct",
    "--flat",
    "sample/flat.tif",
    "--dark",
    "sample/dark.tif",
];

fn expected_mean() -> std::path::PathBuf {
    fixtures().join("expected").join("bc_mean.tif")
}

#[test]
fn without_o_a_file_result_goes_beside_the_input() {
    let s = Scratch::new();
    s.imfilter()
        .args(BC)
        .arg("sample/stack.tif")
        .assert()
        .success();
    assert_matches_reference(
        &s.path("sample/stack_background-correct.tif"),
        &expected_mean(),
    );
}

#[test]
fn without_o_a_directory_result_is_a_sibling_directory_with_the_same_names() {
    let s = Scratch::new();
    s.imfilter().args(BC).arg("sample/Tomo").assert().success();
    let out = s.path("sample/Tomo_background-correct");
    let (_, _, _, all) = read_stack(&expected_mean());
    let page = 45 * 67;
    for i in 0..12 {
        let (pages, w, h, v) = read_stack(&out.join(format!("proj_{}.tif", i + 1)));
        assert_eq!((pages, w, h), (1, 67, 45));
        assert_eq!(
            v,
            all[i * page..(i + 1) * page],
            "proj_{} holds the wrong image",
            i + 1
        );
    }
    assert_eq!(
        fs::read_dir(&out).expect("list").count(),
        12,
        "only the images, no temp files"
    );
}

#[test]
fn o_directory_splits_a_multipage_stack_into_numbered_files() {
    let s = Scratch::new();
    s.imfilter()
        .args(BC)
        .args(["sample/stack.tif", "-o", "split/"])
        .assert()
        .success();
    let (_, _, _, all) = read_stack(&expected_mean());
    let (_, _, _, last) = read_stack(&s.path("split/stack_000011.tif"));
    assert_eq!(last, all[11 * 45 * 67..]);
    assert!(s.path("split/stack_000000.tif").is_file());
}

#[test]
fn o_existing_empty_directory_is_filled_and_one_with_files_is_replaced_whole_only_with_force() {
    let s = Scratch::new();
    fs::create_dir(s.path("results")).expect("mkdir");
    s.imfilter()
        .args(BC)
        .args(["sample/Tomo", "-o", "results"])
        .assert()
        .success();
    assert!(s.path("results/proj_12.tif").is_file());

    // A stale file would be read by the next step of a chain: a directory that holds anything
    // is replaced only with --force, and then as a whole.
    fs::write(s.path("results/stale.tif"), "from an older run").expect("write");
    let a = s
        .imfilter()
        .args(BC)
        .args(["sample/Tomo", "-o", "results"])
        .assert()
        .code(1);
    assert_one_line_error(&a.get_output().stderr, &["results", "--force"]);
    assert!(s.path("results/stale.tif").is_file());
    s.imfilter()
        .args(BC)
        .args(["sample/Tomo", "-o", "results", "--force"])
        .assert()
        .success();
    assert!(!s.path("results/stale.tif").exists(), "stale file kept");
    assert_eq!(fs::read_dir(s.path("results")).expect("list").count(), 12);
    s.assert_no_temp_files();
}

#[test]
fn an_existing_output_is_kept_without_force_and_replaced_with_it() {
    let s = Scratch::new();
    fs::write(s.path("out.tif"), "precious").expect("write");
    let a = s
        .imfilter()
        .args(BC)
        .args(["sample/stack.tif", "-o", "out.tif"])
        .assert()
        .code(1);
    assert_one_line_error(
        &a.get_output().stderr,
        &["out.tif", "already exists", "--force"],
    );
    assert_eq!(
        fs::read_to_string(s.path("out.tif")).expect("read"),
        "precious"
    );

    s.imfilter()
        .args(BC)
        .args(["sample/stack.tif", "-o", "out.tif", "--force"])
        .assert()
        .success();
    assert_matches_reference(&s.path("out.tif"), &expected_mean());
}

#[test]
fn the_input_is_never_the_output_without_in_place() {
    let s = Scratch::new();
    let before = fs::read(s.path("sample/stack.tif")).expect("read");
    for target in ["sample/stack.tif", "sample/flat.tif"] {
        let a = s
            .imfilter()
            .args(BC)
            .args(["sample/stack.tif", "-o", target, "--force"])
            .assert()
            .code(1);
        assert_one_line_error(&a.get_output().stderr, &[target, "is an input"]);
    }
    assert_eq!(fs::read(s.path("sample/stack.tif")).expect("read"), before);
}

#[test]
fn in_place_is_refused_when_the_input_cannot_hold_float32() {
    let s = Scratch::new();
    let before = fs::read(s.path("sample/stack.tif")).expect("read");
    let a = s
        .imfilter()
        .args(BC)
        .args(["sample/stack.tif", "--in-place"])
        .assert()
        .code(1);
    assert_one_line_error(
        &a.get_output().stderr,
        &["sample/stack.tif", "--in-place refused", "uint16"],
    );
    assert_eq!(fs::read(s.path("sample/stack.tif")).expect("read"), before);
}

#[test]
fn in_place_replaces_a_float32_input_with_the_result() {
    let s = Scratch::new();
    s.copy_fixture("variants/stack_float32.tif", "f32.tif");
    s.imfilter()
        .args(BC)
        .args(["f32.tif", "--in-place"])
        .assert()
        .success();
    assert_matches_reference(
        &s.path("f32.tif"),
        &fixtures().join("expected/bc_float32.tif"),
    );
    s.assert_no_temp_files();
}

#[test]
fn no_sync_writes_the_same_result_for_files_and_directories() {
    let s = Scratch::new();
    s.imfilter()
        .args(BC)
        .args(["sample/stack.tif", "-o", "out.tif", "--no-sync"])
        .assert()
        .success();
    assert_matches_reference(&s.path("out.tif"), &expected_mean());
    s.imfilter()
        .args(BC)
        .args(["sample/stack.tif", "-o", "out_dir/", "--no-sync"])
        .assert()
        .success();
    let (_, _, _, all) = read_stack(&expected_mean());
    let page = 45 * 67;
    for i in 0..12 {
        let (_, _, _, v) = read_stack(&s.path(&format!("out_dir/stack_{i:06}.tif")));
        assert_eq!(v, all[i * page..(i + 1) * page], "image {i}");
    }
    s.assert_no_temp_files();
}

#[test]
fn no_sync_is_refused_with_in_place() {
    let s = Scratch::new();
    s.copy_fixture("variants/stack_float32.tif", "f32.tif");
    let before = fs::read(s.path("f32.tif")).expect("read");
    let a = s
        .imfilter()
        .args(BC)
        .args(["f32.tif", "--in-place", "--no-sync"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        stderr.contains("--no-sync") && stderr.contains("--in-place"),
        "{stderr}"
    );
    assert_eq!(fs::read(s.path("f32.tif")).expect("read"), before);
}

#[test]
fn a_sidecar_that_cannot_be_written_fails_before_the_result_is_in_place() {
    let s = Scratch::new();
    fs::create_dir(s.path("out.json")).expect("mkdir");
    let a = s
        .imfilter()
        .args(BC)
        .args(["sample/stack.tif", "-o", "out.tif"])
        .assert()
        .code(1);
    assert_one_line_error(&a.get_output().stderr, &["out.json", "directory"]);
    assert!(!s.path("out.tif").exists(), "result committed anyway");
    s.assert_no_temp_files();
}

#[test]
fn a_failed_run_leaves_no_output_and_no_temp_file() {
    // No output can be allocated under an 8 KiB file-size limit (each image alone is 12 KiB
    // of float32): imfilter must fail before computing anything and clean up, for a file, a
    // directory and a compressed directory (compressed sizes are unknown in advance, so each
    // file is allocated at its uncompressed size first).
    let s = Scratch::new();
    let before = s.all_files();
    for (out, extra) in [
        ("out.tif", &[][..]),
        ("out_dir/", &[][..]),
        ("packed_dir/", &["--compress", "deflate"][..]),
    ] {
        let run = std::process::Command::new("prlimit")
            .arg("--fsize=8192")
            .arg(assert_cmd::cargo::cargo_bin!("imfilter"))
            .args(BC)
            .args(["sample/stack.tif", "-o", out])
            .args(extra)
            .current_dir(s.dir.path())
            .output();
        let Ok(run) = run else {
            panic!("prlimit (util-linux) is needed for this test");
        };
        assert_eq!(
            run.status.code(),
            Some(1),
            "{out}: stderr: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_one_line_error(&run.stderr, &[out.trim_end_matches('/'), "cannot allocate"]);
        assert_eq!(s.all_files(), before, "{out}");
    }
}

#[test]
fn summary_and_progress_go_to_stderr_and_quiet_silences_them() {
    let s = Scratch::new();
    let a = s
        .imfilter()
        .args(BC)
        .args(["sample/stack.tif", "-o", "a.tif", "--progress", "plain"])
        .assert()
        .success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("background-correct: 12/12 images"),
        "stderr: {err}"
    );
    assert!(
        err.contains("12 images, 67x45 uint16 -> float32"),
        "stderr: {err}"
    );
    assert!(a.get_output().stdout.is_empty());

    let q = s
        .imfilter()
        .args(BC)
        .args(["sample/stack.tif", "-o", "b.tif", "-q"])
        .assert()
        .success();
    assert!(q.get_output().stderr.is_empty());

    let j = s
        .imfilter()
        .args(BC)
        .args(["sample/stack.tif", "-o", "c.tif", "--progress", "json"])
        .assert()
        .success();
    let err = String::from_utf8_lossy(&j.get_output().stderr).into_owned();
    let first = err.lines().next().expect("a progress line");
    let v: serde_json::Value = serde_json::from_str(first).expect("json progress");
    assert_eq!(v["total"], 12);
}

#[test]
fn threads_flag_gives_identical_results() {
    let s = Scratch::new();
    for j in ["1", "2", "5"] {
        s.imfilter()
            .args(BC)
            .args(["-j", j, "sample/stack.tif", "-o", &format!("j{j}.tif")])
            .assert()
            .success();
    }
    assert_eq!(
        fs::read(s.path("j1.tif")).expect("read"),
        fs::read(s.path("j5.tif")).expect("read")
    );
    assert_eq!(
        fs::read(s.path("j1.tif")).expect("read"),
        fs::read(s.path("j2.tif")).expect("read")
    );
}

#[test]
fn compressed_outputs_hold_the_same_pixels() {
    let s = Scratch::new();
    for (flag, name) in [("lzw", "LZW"), ("deflate", "Deflate"), ("zstd", "ZSTD")] {
        let out = format!("{flag}.tif");
        s.imfilter()
            .args(BC)
            .args(["sample/stack.tif", "-o", &out, "--compress", flag])
            .assert()
            .success();
        assert_matches_reference(&s.path(&out), &expected_mean());
        let info = s
            .imfilter()
            .args(["info", "--json", &out])
            .assert()
            .success();
        let v: serde_json::Value = serde_json::from_slice(&info.get_output().stdout).expect("json");
        assert_eq!(v["compression"], name);
        let plain = fs::metadata(s.path(&out)).expect("stat").len();
        assert!(plain > 0);
    }
    // A directory of compressed files: each image is compressed by the worker that computed
    // it, and cut to its compressed size.
    s.imfilter()
        .args(BC)
        .args(["sample/stack.tif", "-o", "packed/", "--compress", "deflate"])
        .assert()
        .success();
    let (pages, width, height, reference) = read_stack(&expected_mean());
    let mut files: Vec<_> = fs::read_dir(s.path("packed"))
        .expect("packed/")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert_eq!(files.len(), pages);
    let image = (width * height) as usize;
    for (i, file) in files.iter().enumerate() {
        let (one, w, h, values) = read_stack(file);
        assert_eq!((one, w, h), (1, width, height), "{}", file.display());
        assert_eq!(
            values,
            reference[i * image..(i + 1) * image],
            "{}",
            file.display()
        );
        let stored = fs::metadata(file).expect("stat").len();
        // Allocated first at the uncompressed layout's size: a 4 KiB-aligned pixel block.
        assert!(
            stored < 4096 + 4 * image as u64,
            "{}: {stored} bytes, not cut to its compressed size",
            file.display()
        );
    }
    s.assert_no_temp_files();
}

#[test]
fn history_sidecar_records_each_run_and_carries_the_inputs_history() {
    let s = Scratch::new();
    s.imfilter()
        .args(BC)
        .args(["sample/stack.tif", "-o", "one.tif"])
        .assert()
        .success();
    s.imfilter()
        .args([
            "background-correct",
            "--flat",
            "sample/flat.tif",
            "--cutoff",
            "2",
            "one.tif",
            "-o",
            "two.tif",
        ])
        .assert()
        .success();
    let v: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(s.path("two.json")).expect("sidecar"))
            .expect("json");
    let runs = v["operation_history"].as_array().expect("list");
    assert_eq!(runs.len(), 2, "the input's history, then this run");
    assert_eq!(runs[0]["input"], "sample/stack.tif");
    assert_eq!(runs[1]["operation"], "background-correct");
    assert_eq!(runs[1]["parameters"]["cutoff"], 2.0);
    assert_eq!(runs[1]["parameters"]["flat"][0], "sample/flat.tif");
    assert!(
        runs[1]["software"]
            .as_str()
            .expect("text")
            .starts_with("imfilter ")
    );
}

#[test]
fn software_and_resolution_tags_are_written() {
    let s = Scratch::new();
    s.imfilter()
        .args(BC)
        .args(["sample/stack.tif", "-o", "out.tif"])
        .assert()
        .success();
    let file = fs::File::open(s.path("out.tif")).expect("open");
    let mut d = tiff::decoder::Decoder::new(file).expect("tiff");
    let software = d
        .get_tag_ascii_string(tiff::tags::Tag::Software)
        .expect("Software tag");
    assert_eq!(software, format!("imfilter {}", env!("CARGO_PKG_VERSION")));
}

/// A `pages`-page uint16 stack written by the `tiff` crate, pixel values distinct per page.
fn write_many_page_stack(path: &std::path::Path, pages: usize) {
    use tiff::encoder::{TiffEncoder, colortype::Gray16};
    let mut enc = TiffEncoder::new(fs::File::create(path).expect("create")).expect("encoder");
    for p in 0..pages {
        let pixels: Vec<u16> = (0..8 * 6).map(|i| (p * 97 + i * i) as u16).collect();
        enc.write_image::<Gray16>(8, 6, &pixels)
            .expect("write page");
    }
}

#[test]
fn a_directory_of_more_images_than_the_open_file_limit_is_written() {
    // Most Linux sessions allow 1024 open files (soft limit) and a beamline run can have
    // thousands of projections: the number of files open at once must not grow with the
    // number of images written.
    let s = Scratch::new();
    write_many_page_stack(&s.path("many.tif"), 300);
    s.imfilter()
        .args(["median", "--size", "3", "many.tif", "-o", "all.tif"])
        .assert()
        .success();
    let (_, _, _, all) = read_stack(&s.path("all.tif"));
    fs::create_dir(s.path("existing")).expect("mkdir");
    fs::create_dir(s.path("existing_packed")).expect("mkdir");
    let bin = assert_cmd::cargo::cargo_bin("imfilter");
    for (out, extra) in [
        ("new", ""),
        ("existing", ""),
        ("packed", "--compress deflate"),
        ("existing_packed", "--compress deflate"),
    ] {
        let script = format!(
            "ulimit -n 64 && exec '{}' median --size 3 {extra} many.tif -o {out}/",
            bin.display()
        );
        let run = std::process::Command::new("sh")
            .args(["-c", &script])
            .current_dir(s.path(""))
            .output()
            .expect("sh runs");
        assert!(
            run.status.success(),
            "{out}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        for i in [0, 150, 299] {
            let (_, _, _, v) = read_stack(&s.path(&format!("{out}/many_{i:06}.tif")));
            assert_eq!(v, all[i * 48..(i + 1) * 48], "{out}: image {i}");
        }
        let files = fs::read_dir(s.path(out)).expect("read dir").count();
        assert_eq!(files, 300, "{out}");
    }
    s.assert_no_temp_files();
}
