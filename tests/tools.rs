//! Outputs as other software sees them: tifffile (values, memory-mapping, ImageJ metadata),
//! libtiff's `tiffinfo -D` (no warnings), and ImageJ 1.x's own reader (stack size, bit depth).
//!
//! These tools are not Rust: `.ci/run` installs them. Where they are missing and `CI` is not
//! set, each test says so and returns, so a bare `cargo test` needs no Python or Java.

#[path = "common/sparse.rs"]
mod sparse;

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::cargo_bin;
use sparse::sparse_stack;

const IJ_JAR: &str = "/usr/share/java/ij.jar";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// True when the tools can run; in CI their absence is a failure, not a skip.
fn tools_present(test: &str) -> bool {
    let python = Command::new("python3")
        .args(["-c", "import tifffile, numpy, imagecodecs"])
        .output();
    let present = python.is_ok_and(|o| o.status.success())
        && Command::new("tiffinfo").arg("-h").output().is_ok()
        && Path::new(IJ_JAR).exists()
        && Command::new("java").arg("-version").output().is_ok();
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install tifffile, numpy, imagecodecs, libtiff-tools and imagej (see .ci/run)"
        );
        eprintln!(
            "{test}: skipped: tifffile, tiffinfo or ImageJ not installed (.ci/run installs them)"
        );
    }
    present
}

fn imfilter(dir: &Path, args: &[&str]) {
    let out = Command::new(cargo_bin!("imfilter"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "imfilter {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tifffile(path: &Path, reference: Option<&Path>) -> serde_json::Value {
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("tests/tools/tifffile_probe.py"))
        .arg(path);
    if let Some(r) = reference {
        cmd.arg(r);
    }
    let out = cmd.output().expect("python3 runs");
    assert!(
        out.status.success(),
        "tifffile on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// `tiffinfo -D` reads every directory and strip; libtiff reports anything odd on stderr. The
/// one thing it may say is that it does not know imfilter's private history tag (65321), as it
/// says of every private tag: the history is there for imfilter and for tools that look for it.
fn assert_libtiff_clean(path: &Path) {
    let out = Command::new("tiffinfo")
        .arg("-D")
        .arg(path)
        .output()
        .expect("tiffinfo runs");
    let err = String::from_utf8_lossy(&out.stderr);
    let err: String = err
        .lines()
        .filter(|l| !l.contains("Unknown field with tag 65321 (0xff29) encountered"))
        .collect();
    assert!(
        out.status.success() && err.trim().is_empty(),
        "libtiff on {}: {err}",
        path.display()
    );
}

/// ImageJ's reader: "slices=N bits=B width=W height=H last_mean=M".
fn imagej(path: &Path) -> String {
    let out = Command::new("java")
        .args(["-Djava.awt.headless=true", "-cp", IJ_JAR])
        .arg(root().join("tests/tools/ImageJProbe.java"))
        .arg(path)
        .output()
        .expect("java runs");
    assert!(
        out.status.success(),
        "ImageJ on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn corrected(dir: &Path, extra: &[&str], output: &str) -> PathBuf {
    let sample = root().join("fixtures/sample");
    let (flat, dark, stack) = (
        sample.join("flat.tif"),
        sample.join("dark.tif"),
        sample.join("stack.tif"),
    );
    let mut args = vec![
        "background-correct",
        "-q",
        "--flat",
        flat.to_str().expect("utf-8"),
    ];
    args.extend([
        "--dark",
        dark.to_str().expect("utf-8"),
        stack.to_str().expect("utf-8"),
        "-o",
        output,
    ]);
    args.extend(extra);
    imfilter(dir, &args);
    dir.join(output)
}

#[test]
fn uncompressed_stack_maps_in_tifffile_passes_libtiff_and_opens_in_imagej() {
    if !tools_present("uncompressed") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let out = corrected(dir.path(), &[], "out.tif");
    let reference = root().join("fixtures/expected/bc_mean.tif");
    let t = tifffile(&out, Some(&reference));
    assert_eq!(t["shape"], serde_json::json!([12, 45, 67]));
    assert_eq!(t["dtype"], "float32");
    assert_eq!(
        t["memmap_shape"],
        serde_json::json!([12, 45, 67]),
        "tifffile.memmap maps it"
    );
    assert_eq!(t["is_imagej"], true);
    assert_eq!(t["equal"], true);
    assert_libtiff_clean(&out);
    let ij = imagej(&out);
    assert!(
        ij.starts_with("slices=12 bits=32 width=67 height=45"),
        "{ij}"
    );
}

#[test]
fn compressed_outputs_read_the_same_in_tifffile_libtiff_and_imagej() {
    if !tools_present("compressed") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let reference = root().join("fixtures/expected/bc_mean.tif");
    for (flag, code) in [("lzw", 5), ("deflate", 8), ("zstd", 50000)] {
        let out = corrected(dir.path(), &["--compress", flag], &format!("{flag}.tif"));
        let t = tifffile(&out, Some(&reference));
        assert_eq!(t["compression"], code);
        assert_eq!(t["equal"], true, "{flag}");
        assert_libtiff_clean(&out);
        if flag != "zstd" {
            // ImageJ 1.x reads LZW and Deflate, not ZSTD.
            let ij = imagej(&out);
            assert!(ij.starts_with("slices=12 bits=32"), "{flag}: {ij}");
        }
    }
}

/// Integer outputs compressed with the predictor each reader decodes right: LZW and ZSTD with
/// horizontal differencing, Deflate and PackBits without (ImageJ 1.x would show Deflate's
/// differences as the image). tifffile and ImageJ read the same pixels as from the
/// uncompressed output.
#[test]
fn compressed_integer_outputs_use_a_predictor_every_reader_decodes() {
    if !tools_present("predictor") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let stack = root().join("fixtures/sample/stack.tif");
    let stack = stack.to_str().expect("utf-8");
    let median = |extra: &[&str], name: &str| {
        let mut args = vec!["median", "-q", "--size", "3", stack, "-o", name];
        args.extend(extra);
        imfilter(dir.path(), &args);
        dir.path().join(name)
    };
    let plain = median(&[], "plain.tif");
    let plain_mean = imagej(&plain);
    for (flag, predictor) in [("lzw", 2), ("deflate", 1), ("zstd", 2), ("packbits", 1)] {
        let out = median(&["--compress", flag], &format!("{flag}.tif"));
        let t = tifffile(&out, Some(&plain));
        assert_eq!(t["predictor"], predictor, "{flag}");
        assert_eq!(t["equal"], true, "{flag}");
        assert_libtiff_clean(&out);
        if flag != "zstd" {
            assert_eq!(
                imagej(&out),
                plain_mean,
                "{flag}: ImageJ reads other pixels"
            );
        }
    }
}

#[test]
fn one_file_per_image_outputs_open_everywhere() {
    if !tools_present("directory") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let out = corrected(dir.path(), &[], "split/");
    let page = out.join("stack_000011.tif");
    let t = tifffile(&page, None);
    assert_eq!(t["shape"], serde_json::json!([45, 67]));
    assert_libtiff_clean(&page);
    assert!(imagej(&page).starts_with("slices=1 bits=32 width=67 height=45"));
}

#[test]
fn past_4_gib_bigtiff_and_the_imagej_form_are_read_by_tifffile() {
    if !tools_present("big") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    for imagej in [false, true] {
        let path = dir.path().join(format!("big_{imagej}.tif"));
        sparse_stack(&path, 300, 2048, imfilter::pixel::DType::F32, imagej);
        let t = tifffile(&path, None);
        assert_eq!(
            t["shape"],
            serde_json::json!([300, 2048, 2048]),
            "imagej={imagej}"
        );
        assert_eq!(t["is_bigtiff"], !imagej);
        assert_eq!(t["is_imagej"], true);
        assert_eq!(t["memmap_shape"], serde_json::json!([300, 2048, 2048]));
        if !imagej {
            assert_libtiff_clean(&path);
        }
    }
}

/// `imfilter preview` writes a PNG that Pillow opens, at the page's size, with the pixels the
/// stated stretch gives (fixtures/preview/golden.json, computed with numpy).
#[test]
fn preview_pngs_open_in_pillow_with_the_stretched_pixels() {
    let pillow = Command::new("python3")
        .args(["-c", "import PIL, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !pillow {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install Pillow (see .ci/run)"
        );
        eprintln!("preview: skipped: Pillow not installed (.ci/run installs it)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let stack = root().join("fixtures/sample/stack.tif");
    let stack = stack.to_str().expect("utf-8");
    imfilter(
        dir.path(),
        &["preview", stack, "--page", "3", "-o", "page.png"],
    );
    let script = "import sys, json, numpy; from PIL import Image; \
                  im = Image.open(sys.argv[1]); \
                  print(json.dumps({'size': im.size, 'mode': im.mode, \
                  'pixels': numpy.asarray(im).ravel().tolist()}))";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(dir.path().join("page.png"))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/preview/golden.json")).expect("golden"),
    )
    .expect("json");
    let expected = &golden["stretch"]["sample/stack.tif:3"];
    assert_eq!(seen["mode"], "L");
    assert_eq!(
        seen["size"],
        serde_json::json!([expected["width"], expected["height"]])
    );
    assert_eq!(seen["pixels"], expected["pixels"]);
}

/// True when h5py can run; in CI its absence is a failure, not a skip.
fn h5py_present(test: &str) -> bool {
    let present = Command::new("python3")
        .args(["-c", "import h5py, tifffile, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install h5py, tifffile and numpy (see .ci/run)"
        );
        eprintln!("{test}: skipped: h5py not installed (.ci/run installs it)");
    }
    present
}

/// HDF5 outputs as h5py reads them: the same pixels as the TIFF result, contiguous (and then
/// mappable by numpy at the offset HDF5 reports) or chunked with gzip, with the history.
#[test]
fn hdf5_outputs_read_the_same_in_h5py() {
    if !h5py_present("hdf5 outputs") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let nxtomo = root().join("fixtures/hdf5/nxtomo.nxs:/entry/data/data");
    let nxtomo = nxtomo.to_str().expect("utf-8");
    let reference = root().join("fixtures/hdf5/nxtomo_bc.tif");
    for (extra, name) in [
        (&[][..], "plain.h5"),
        (&["--compress", "deflate"][..], "gzip.h5"),
    ] {
        let output = format!("{name}:/entry/corrected/data");
        let mut args = vec!["background-correct", "-q", nxtomo, "-o", &output];
        args.extend(extra);
        imfilter(dir.path(), &args);
        let out = Command::new("python3")
            .arg(root().join("tests/tools/h5py_probe.py"))
            .arg(dir.path().join(name))
            .arg("/entry/corrected/data")
            .arg(&reference)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "h5py on {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let h: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(h["shape"], serde_json::json!([8, 10, 20]), "{name}: {h}");
        assert_eq!(h["dtype"], "float32");
        assert_eq!(h["equal"], true, "{name}: {h}");
        assert_eq!(h["history"], true, "{name}: {h}");
        if extra.is_empty() {
            assert_eq!(h["chunks"], serde_json::Value::Null, "{h}");
            assert_eq!(h["memmap_equal"], true, "{h}");
        } else {
            assert_eq!(h["chunks"], serde_json::json!([1, 10, 20]), "{h}");
            assert_eq!(h["compression"], "gzip", "{h}");
        }
    }
}
