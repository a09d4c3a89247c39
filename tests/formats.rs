//! Every file in fixtures/formats (written by tifffile, libtiff's tiffcp, ImageMagick and
//! Pillow; see make_formats.py) loads with the exact values tifffile reads from it.

use std::path::Path;

use imfilter::stack::Stack;
use imfilter::with_pixel_type;

fn formats() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/formats")
}

/// All pages of `path` as imfilter reads them, as little-endian bytes.
#[cfg(target_endian = "little")] // the references are little-endian
fn read_with_imfilter(path: &Path) -> (String, Vec<usize>, Vec<u8>) {
    let stack = Stack::open(path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    let f = stack.format;
    let mut bytes = Vec::new();
    with_pixel_type!(f.dtype, T => {
        let mut scratch = Vec::new();
        for i in 0..stack.len() {
            let page = stack.page::<T>(i, &mut scratch).unwrap_or_else(|e| panic!("{e:#}"));
            bytes.extend_from_slice(bytemuck::cast_slice(&page));
        }
    });
    (
        f.dtype.name().to_string(),
        vec![stack.len(), f.height, f.width],
        bytes,
    )
}

#[test]
fn every_writer_and_layout_reads_as_tifffile_reads_it() {
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(formats().join("manifest.json")).expect("manifest"),
    )
    .expect("json");
    let entries = manifest.as_object().expect("object");
    assert!(entries.len() >= 40, "the fixture set is incomplete");
    for (name, entry) in entries {
        let path = formats().join(name);
        let (dtype, shape, bytes) = read_with_imfilter(&path);
        assert_eq!(
            dtype,
            entry["dtype"].as_str().expect("dtype"),
            "{name}: sample type"
        );
        let expected_shape: Vec<usize> = entry["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|v| v.as_u64().expect("n") as usize)
            .collect();
        assert_eq!(shape, expected_shape, "{name}: shape");
        let reference = std::fs::read(formats().join(format!("{name}.ref"))).expect("reference");
        // Lossy JPEG: decoders may round differently within the standard's accuracy.
        let tolerance = entry["tolerance"].as_u64().unwrap_or(0);
        if tolerance == 0 {
            assert!(
                bytes == reference,
                "{name} ({}): pixels differ from tifffile's",
                entry["exercises"]
            );
        } else {
            assert_eq!(dtype, "uint8", "{name}: tolerances are for 8-bit JPEG");
            let worst = bytes
                .iter()
                .zip(&reference)
                .map(|(a, b)| a.abs_diff(*b))
                .max();
            assert_eq!(bytes.len(), reference.len(), "{name}: size");
            assert!(
                worst.is_some_and(|w| u64::from(w) <= tolerance),
                "{name}: pixels differ from tifffile's by {worst:?}, more than {tolerance}"
            );
        }
    }
}
