//! HDF5 / NeXus stacks (issue 16): `FILE:/DATASET` inputs in every storage layout, NXtomo's
//! image_key deciding flats and darks, `--keys`, HDF5 outputs, `info`, and bad files. The
//! fixtures in `fixtures/hdf5/` were written by h5py (`make_hdf5.py` there); HDF5 outputs are
//! read back here with the HDF5 library itself (and with h5py in tests/tools.rs).

use std::path::Path;

use crate::support::{
    Nan, Scratch, assert_identical, assert_matches_reference, assert_one_line_error, fixtures,
    one_line_error, read_image, read_stack, run,
};

/// A scratch directory holding the HDF5 fixtures.
fn scratch() -> Scratch {
    let s = Scratch::new();
    for f in [
        "stacks.h5",
        "stacks.tif",
        "nxtomo.nxs",
        "nxtomo_gzip.nxs",
        "nxtomo_bc.tif",
        "bad_chunk.h5",
        "lzf.h5",
    ] {
        s.copy_fixture(&format!("hdf5/{f}"), f);
    }
    s
}

/// The median every read is checked with.
const MEDIAN: &[&str] = &["median", "--size", "3"];

/// stdout of `imfilter ARGS`, which must succeed.
fn stdout(s: &Scratch, args: &[&str]) -> String {
    let out = s.imfilter().args(args).assert().success();
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

/// `imfilter info --json ARGS`, parsed.
fn info_json(s: &Scratch, args: &[&str]) -> serde_json::Value {
    let text = stdout(s, &[&["info", "--json"][..], args].concat());
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `imfilter ARGS` must fail with `code` and one line of error holding every part of `parts`.
fn fails(s: &Scratch, args: &[&str], code: i32, parts: &[&str]) {
    let out = s.imfilter().args(args).assert().code(code);
    assert_one_line_error(&out.get_output().stderr, parts);
}

/// The history imfilter wrote on a dataset (its `imfilter_history` attribute).
fn history_attribute(d: &hdf5_metno::Dataset) -> String {
    d.attr("imfilter_history")
        .and_then(|a| a.read_scalar::<hdf5_metno::types::VarLenUnicode>())
        .expect("the history attribute, as text")
        .as_str()
        .to_string()
}

/// Every value of a 3-D dataset as f64, with its shape.
fn read_dataset(path: &Path, dataset: &str) -> (Vec<usize>, Vec<f64>, hdf5_metno::Dataset) {
    let file = hdf5_metno::File::open(path).expect("the HDF5 library opens the output");
    let d = file.dataset(dataset).expect("the dataset is there");
    let values = d.read_raw::<f64>().expect("reads as f64");
    (d.shape(), values, d)
}

#[test]
fn every_storage_layout_reads_as_the_same_stack_as_its_tiff() {
    let s = scratch();
    run(&s, MEDIAN, "stacks.tif", "from_tiff.tif");
    let (_, _, _, expected) = read_stack(&s.path("from_tiff.tif"));
    for (dataset, scale) in [
        ("/contiguous", 1.0),
        ("/chunked", 1.0),
        ("/gzip", 1.0),
        ("/frames", 1.0),
        ("/frames_be", 1.0),
        ("/big_endian", 1.0),
        ("/scaled/f64", 7.0),
    ] {
        run(&s, MEDIAN, &format!("stacks.h5:{dataset}"), "layout.tif");
        let image = read_image(&s.path("layout.tif"));
        let (pages, w, h, values) = (image.pages, image.width, image.height, image.values);
        assert_eq!((pages, w, h), (6, 12, 16), "{dataset}");
        // The median picks a value, so a stack scaled by 1/7 gives the same medians / 7.
        let unscaled: Vec<f64> = values.iter().map(|v| (v * scale).round()).collect();
        assert_eq!(unscaled, expected, "{dataset}");
    }
    // An HDF5 file by another name is known by its signature.
    s.copy_fixture("hdf5/stacks.h5", "scan.data");
    run(&s, MEDIAN, "scan.data:/gzip", "renamed.tif");
    assert_identical(&s.path("renamed.tif"), &s.path("from_tiff.tif"), Nan::Bits);
    one_line_error(&s, MEDIAN, "scan.data", 2, &["scan.data:/entry/data/data"]);
    run(&s, MEDIAN, "lzf.h5:/data", "lzf.tif");
    assert_identical(&s.path("lzf.tif"), &s.path("from_tiff.tif"), Nan::Bits);
}

#[test]
fn a_contiguous_dataset_is_read_in_place() {
    let s = scratch();
    let info = info_json(&s, &["stacks.h5:/contiguous"]);
    assert_eq!(info["readable_in_place"], true, "{info}");
    assert_eq!(info["images"], 6);
    let info = info_json(&s, &["stacks.h5:/gzip"]);
    assert_eq!(info["readable_in_place"], false, "{info}");
    assert!(
        info["layout"].as_str().unwrap_or("").contains("gzip"),
        "{info}"
    );
}

#[test]
fn nxtomo_image_key_gives_flats_and_darks_and_projections_only_are_written() {
    let s = scratch();
    for input in [
        "nxtomo.nxs:/entry/data/data",
        "nxtomo.nxs:/entry/instrument/detector/data",
        "nxtomo_gzip.nxs:/entry/data/data",
    ] {
        let out = s
            .imfilter()
            .args(["background-correct", input, "-o", "bc.tif", "--force"])
            .assert()
            .success()
            .get_output()
            .clone();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("8 projections, 6 flats, 3 darks"),
            "{input}: {err}"
        );
        assert!(
            err.contains("background-correct: 8 images"),
            "{input}: {err}"
        );
        assert_matches_reference(&s.path("bc.tif"), &s.path("nxtomo_bc.tif"));
    }
    let history = std::fs::read_to_string(s.path("bc.json")).expect("sidecar");
    let history: serde_json::Value = serde_json::from_str(&history).expect("json");
    let run = &history["operation_history"][0];
    assert_eq!(run["image_key"]["flats"], 6, "{history}");
    assert_eq!(
        run["parameters"]["flat"][0], "nxtomo_gzip.nxs:/entry/data/data",
        "{history}"
    );
}

#[test]
fn keys_override_the_image_key() {
    let s = scratch();
    // The same keys given three ways give the numpy reference.
    for keys in [
        "2x3,1x4,0x8,1x2",
        "/entry/instrument/detector/image_key",
        "nxtomo.nxs:/entry/data/image_key",
    ] {
        run(
            &s,
            &["background-correct", "--keys", keys],
            "nxtomo.nxs:/entry/data/data",
            "bc.tif",
        );
        assert_matches_reference(&s.path("bc.tif"), &s.path("nxtomo_bc.tif"));
    }
    // The keys given are in the history, in a form --keys takes back.
    run(
        &s,
        &["background-correct", "--keys", "2,2,2,1x4,0x8,1x2"],
        "nxtomo.nxs:/entry/data/data",
        "bc.tif",
    );
    let history = std::fs::read_to_string(s.path("bc.json")).expect("sidecar");
    assert!(
        history.contains(r#""keys": "2x3,1x4,0x8,1x2""#),
        "{history}"
    );
    // Flats and darks named as datasets: their images marked flat and dark.
    run(
        &s,
        &[
            "background-correct",
            "--flat",
            "nxtomo_gzip.nxs:/entry/data/data",
            "--dark",
            "nxtomo.nxs:/entry/data/data",
        ],
        "nxtomo.nxs:/entry/data/data",
        "bc.tif",
    );
    assert_matches_reference(&s.path("bc.tif"), &s.path("nxtomo_bc.tif"));
    // --keys none: every image is a projection, and there are no flats to take.
    run(
        &s,
        &[MEDIAN, &["--keys", "none"]].concat(),
        "nxtomo.nxs:/entry/data/data",
        "all.tif",
    );
    assert_eq!(read_stack(&s.path("all.tif")).0, 17);
    fails(
        &s,
        &[
            "background-correct",
            "--keys",
            "none",
            "nxtomo.nxs:/entry/data/data",
            "-o",
            "x.tif",
        ],
        2,
        &["needs flats"],
    );
    // Keys that do not fit the dataset, or that a TIFF input cannot take.
    one_line_error(
        &s,
        &[MEDIAN, &["--keys", "0x5"]].concat(),
        "nxtomo.nxs:/entry/data/data",
        1,
        &["nxtomo.nxs:/entry/data/data", "5 keys", "17 images"],
    );
    one_line_error(
        &s,
        &[MEDIAN, &["--keys", "0x6"]].concat(),
        "stacks.tif",
        2,
        &["--keys"],
    );
    s.imfilter()
        .args(["median", "--keys", "4", "stacks.tif"])
        .assert()
        .code(2);
}

#[test]
fn a_chain_reads_an_hdf5_input_like_its_steps_one_by_one() {
    let s = scratch();
    s.imfilter()
        .args([
            "run",
            "--step",
            "background-correct",
            "--step",
            "median --size 3",
        ])
        .args(["nxtomo.nxs:/entry/data/data", "-o", "chained.tif", "-q"])
        .assert()
        .success();
    run(&s, MEDIAN, "nxtomo_bc.tif", "steps.tif");
    assert_matches_reference(&s.path("chained.tif"), &s.path("steps.tif"));
}

#[test]
fn hdf5_outputs_hold_the_result_contiguous_or_compressed() {
    let s = scratch();
    run(&s, MEDIAN, "stacks.tif", "expected.tif");
    let (_, _, _, expected) = read_stack(&s.path("expected.tif"));
    run(&s, MEDIAN, "stacks.h5:/gzip", "out.h5:/data");
    let (shape, values, d) = read_dataset(&s.path("out.h5"), "/data");
    assert_eq!((shape, values), (vec![6, 16, 12], expected.clone()));
    assert_eq!(d.layout(), hdf5_metno::dataset::Layout::Contiguous);
    let history = history_attribute(&d);
    assert!(history.contains("\"median\""), "{history}");
    assert!(s.path("out.h5.json").exists(), "the sidecar");
    // Groups on the dataset's path are created, contiguous or compressed.
    run(
        &s,
        MEDIAN,
        "stacks.h5:/gzip",
        "nested.h5:/entry/result/data",
    );
    let (shape, values, d) = read_dataset(&s.path("nested.h5"), "/entry/result/data");
    assert_eq!((shape, values), (vec![6, 16, 12], expected.clone()));
    assert_eq!(d.layout(), hdf5_metno::dataset::Layout::Contiguous);

    s.imfilter()
        .args(MEDIAN)
        .args(["stacks.h5:/contiguous", "-o", "deep.h5:/entry/result/data"])
        .args(["--compress", "deflate", "-q"])
        .assert()
        .success();
    let (shape, values, d) = read_dataset(&s.path("deep.h5"), "/entry/result/data");
    assert_eq!((shape, values), (vec![6, 16, 12], expected));
    assert_eq!(d.chunk(), Some(vec![1, 16, 12]));
    assert!(
        d.filters()
            .contains(&hdf5_metno::filters::Filter::Deflate(4)),
        "{:?}",
        d.filters()
    );
    s.assert_no_temp_files();

    // An existing file is replaced only with --force, and as a whole.
    s.imfilter()
        .args(MEDIAN)
        .args(["stacks.h5:/gzip", "-o", "out.h5:/data", "-q"])
        .assert()
        .code(1);
    run(
        &s,
        &["background-correct"],
        "nxtomo.nxs:/entry/data/data",
        "out.h5:/corrected",
    );
    let file = hdf5_metno::File::open(s.path("out.h5")).expect("opens");
    assert_eq!(
        file.member_names().expect("names"),
        vec!["corrected".to_string()]
    );
    drop(file);
    // The next run extends the history written in the file.
    run(&s, MEDIAN, "out.h5:/corrected", "twice.h5:/data");
    let (_, _, d) = read_dataset(&s.path("twice.h5"), "/data");
    let history: serde_json::Value = serde_json::from_str(&history_attribute(&d)).expect("json");
    let ops: Vec<&str> = history["operation_history"]
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|r| r["operation"].as_str())
        .collect();
    assert_eq!(ops, ["background-correct", "median"]);
}

#[test]
fn hdf5_output_names_and_options_are_checked_before_any_work() {
    let s = scratch();
    for (args, part) in [
        (vec!["-o", "out.h5"], "out.h5:/data"),
        (
            vec!["-o", "out.h5:/data", "--compress", "zstd"],
            "--compress deflate",
        ),
        (vec!["-o", "out.h5:/data", "--imagej"], "--imagej"),
        (vec!["--in-place"], "--in-place"),
    ] {
        let command = [MEDIAN, &["stacks.h5:/contiguous"], &args].concat();
        fails(&s, &command, 2, &[part]);
    }
    // The input's own file is never replaced, not even with --force.
    let command = [
        MEDIAN,
        &["stacks.h5:/contiguous", "-o", "stacks.h5:/x", "--force"],
    ]
    .concat();
    fails(&s, &command, 1, &["stacks.h5", "is an input"]);
    assert!(!s.path("out.h5").exists());
    s.assert_no_temp_files();
}

#[test]
fn results_beside_an_hdf5_input_and_in_a_directory_are_named_after_the_file() {
    let s = scratch();
    s.imfilter()
        .args(MEDIAN)
        .args(["nxtomo.nxs:/entry/data/data", "-q"])
        .assert()
        .success();
    assert_eq!(read_stack(&s.path("nxtomo_median.tif")).0, 8);
    s.imfilter()
        .args(MEDIAN)
        .args(["stacks.h5:/gzip", "-o", "each/", "-q"])
        .assert()
        .success();
    assert!(s.path("each/stacks_000005.tif").exists());
}

#[test]
fn unfiltered_chunks_of_one_image_are_read_in_place_like_a_contiguous_dataset() {
    use imfilter::stack::Stack;
    let open = |dataset: &str| {
        Stack::open(&fixtures().join(format!("hdf5/stacks.h5:{dataset}"))).expect("opens")
    };
    let (chunked, contiguous) = (open("/chunked"), open("/contiguous"));
    assert!(chunked.is_mapped_in_place());
    for page in 0..chunked.len() {
        assert_eq!(
            chunked.page_in_place::<u16>(page),
            contiguous.page_in_place::<u16>(page),
            "page {page}"
        );
    }
    // Filtered chunks are decoded, not mapped.
    assert!(!open("/frames").is_mapped_in_place());
}

#[test]
fn info_lists_the_3d_datasets_of_a_file() {
    let s = scratch();
    let text = stdout(&s, &["info", "stacks.h5"]);
    for part in [
        "7 3-D datasets",
        "/frames  6 x 16 x 12  uint16  chunked 1x16x12, shuffle+gzip(4) (decoded by imfilter, in parallel)",
        "/frames_be  6 x 16 x 12  int16  chunked 1x16x12, shuffle+gzip(4) (decoded by imfilter",
        "/contiguous  6 x 16 x 12  uint16  contiguous (read in place",
        "/chunked  6 x 16 x 12  uint16  chunked 1x16x12 (read in place from the mapped file)",
        "/gzip  6 x 16 x 12  uint16  chunked 4x5x7, shuffle+gzip(4) (decoded by the HDF5 library",
        "/big_endian  6 x 16 x 12  float32  contiguous, big-endian",
        "int64 samples are not supported",
        "2 datasets that are not 3-D",
    ] {
        assert!(text.contains(part), "lacks {part:?}: {text}");
    }
    let info = info_json(&s, &["nxtomo.nxs"]);
    assert_eq!(info["datasets"][0]["image_key"]["darks"], 3, "{info}");
}

#[test]
fn bad_hdf5_inputs_are_one_line_naming_file_and_dataset() {
    let s = scratch();
    let bytes = std::fs::read(s.path("nxtomo.nxs")).expect("read");
    std::fs::write(s.path("truncated.nxs"), &bytes[..bytes.len() / 2]).expect("write");
    std::fs::write(s.path("text.h5"), b"not an HDF5 file at all").expect("write");
    for (input, code, parts) in [
        (
            "stacks.h5:/nope",
            1,
            vec!["stacks.h5:/nope", "no such dataset"],
        ),
        (
            "stacks.h5:/scaled",
            1,
            vec!["stacks.h5:/scaled", "is a group"],
        ),
        (
            "stacks.h5:/image2d",
            1,
            vec!["stacks.h5:/image2d", "2-D dataset"],
        ),
        (
            "stacks.h5:/fourd",
            1,
            vec!["stacks.h5:/fourd", "4-D dataset"],
        ),
        (
            "stacks.h5:/int64",
            1,
            vec!["stacks.h5:/int64", "int64 samples are not supported"],
        ),
        (
            "truncated.nxs:/entry/data/data",
            1,
            vec!["truncated.nxs:/entry/data/data", "truncated"],
        ),
        (
            "text.h5:/data",
            1,
            vec!["text.h5:/data", "cannot open as HDF5"],
        ),
        (
            "missing.h5:/data",
            1,
            vec!["missing.h5:/data", "cannot open"],
        ),
        ("stacks.h5", 2, vec!["stacks.h5", "name the dataset"]),
        (
            "bad_chunk.h5:/data",
            1,
            vec!["bad_chunk.h5", "/data", "image 3", "cannot decode"],
        ),
    ] {
        one_line_error(&s, MEDIAN, input, code, &parts);
    }
    // A dataset that fails in the middle of the run leaves no HDF5 output either.
    let command = [MEDIAN, &["bad_chunk.h5:/data", "-o", "out.h5:/data"]].concat();
    fails(&s, &command, 1, &["image 3"]);
    assert!(!s.path("out.h5").exists() && !s.path("out.h5.json").exists());
    s.assert_no_temp_files();
    assert!(fixtures().join("hdf5/make_hdf5.py").exists());
}

#[test]
fn info_histogram_of_a_dataset_page_equals_its_tiff_twins() {
    let s = Scratch::new();
    let histogram = |input: &str| {
        let path = fixtures().join(input).display().to_string();
        info_json(&s, &["--histogram", "--page", "2", &path])["histogram"].clone()
    };
    let twin = histogram("hdf5/stacks.tif");
    assert_eq!(twin["bins"], 256);
    for dataset in ["contiguous", "chunked", "frames"] {
        assert_eq!(
            histogram(&format!("hdf5/stacks.h5:/{dataset}")),
            twin,
            "{dataset}"
        );
    }
}
