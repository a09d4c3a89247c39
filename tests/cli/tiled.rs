//! Tiled files with partial edge tiles, written by tifffile and by libtiff's tiffcp (issue 15:
//! "no lzw end code found" on LZW with 48 x 16 tiles). Made by
//! `fixtures/tiled/make_tiled_fixtures.py`; each must read as the same pixels as its
//! uncompressed, untiled twin.

use crate::support::{Nan, Scratch, assert_identical, fixtures};

#[test]
fn every_tiled_fixture_reads_as_its_plain_twin() {
    let s = Scratch::new();
    let dir = fixtures().join("tiled");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures/tiled")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.ends_with(".tif") && !name.starts_with("plain_")
        })
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        24,
        "tifffile and tiffcp, 3 types, 2 tile sizes"
    );
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let dtype = name.split('_').nth(1).expect("a type in the name");
        // `crop` of the whole image keeps the type: the output is the pixels as read.
        s.imfilter()
            .args(["crop", "--roi", "0,0,70,40"])
            .arg(&file)
            .args(["-o", "out.tif", "-q", "--force"])
            .assert()
            .success();
        assert_identical(
            &s.path("out.tif"),
            &dir.join(format!("plain_{dtype}.tif")),
            Nan::Bits,
        );
    }
}
