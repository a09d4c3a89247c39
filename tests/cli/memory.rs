//! Memory held by a run is bounded by what the machine has, not by what the input claims or
//! how many images it holds (issue 18, item 8).
//!
//! `--average median` over many flats: the flats' median is taken in bands of rows within a
//! fixed budget, so a run fits in an address-space limit that holding every flat would not,
//! every way of reading the flats (in place, a directory of files, compressed pages) gives the
//! same result, and memory that cannot be had is a one-line error, never an abort.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;

use imfilter::pixel::DType;

use crate::sparse::sparse_stack;
use crate::support::{Scratch, assert_one_line_error, read_stack, run_with_address_space};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Deterministic, varied flat values (1 ..= 4000, with ties): page `p`, pixel `i` is
/// `pool[(p * SHIFT + i) % POOL]`, so each pixel's values across pages are unrelated and
/// pages are written as slices of one buffer.
struct Pool {
    values: Vec<u16>,
}

const POOL: usize = 1_000_003;
const SHIFT: usize = 7919;

impl Pool {
    /// Room for pages of up to `page_len` pixels starting anywhere in the pool.
    fn new(page_len: usize) -> Pool {
        let values = (0..POOL + page_len)
            .map(|i| {
                let mut x = (i % POOL) as u64 ^ 0x9e37_79b9_7f4a_7c15;
                x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                ((x ^ (x >> 31)) % 4000 + 1) as u16
            })
            .collect();
        Pool { values }
    }

    fn page(&self, p: usize, len: usize) -> &[u16] {
        let at = (p * SHIFT) % POOL;
        &self.values[at..at + len]
    }

    fn value(&self, p: usize, i: usize) -> u16 {
        self.values[(p * SHIFT + i) % POOL]
    }
}

fn slices(pages: &[Vec<u16>]) -> Vec<&[u16]> {
    pages.iter().map(Vec::as_slice).collect()
}

/// The pixels' bytes, in native order as imfilter's own layout stores them.
fn bytes(values: &[u16]) -> &[u8] {
    bytemuck::cast_slice(values)
}

/// numpy's `np.median` of integer images: values as float64, the middle one or the mean of
/// the two middle ones, rounded once to float32.
fn median(mut column: Vec<f64>) -> f32 {
    column.sort_by(f64::total_cmp);
    let mid = column.len() / 2;
    let m = if column.len() % 2 == 1 {
        column[mid]
    } else {
        (column[mid - 1] + column[mid]) / 2.0
    };
    m as f32
}

/// `(I − D) / max(F − D, 1e-6)` in float32, as background-correct defines it.
fn corrected(image: f32, flat: f32, dark: f32) -> f32 {
    let d = flat - dark;
    (image - dark) / if d < 1e-6 { 1e-6 } else { d }
}

/// `pages` flats of `side`² uint16 from `pool` in imfilter's own (uncompressed, in place) layout.
fn flats_in_place(path: &Path, pool: &Pool, pages: usize, side: usize) {
    let (file, layout) = sparse_stack(path, pages, side, DType::U16, false);
    let len = side * side;
    for p in 0..pages {
        file.write_all_at(
            bytes(pool.page(p, len)),
            layout.data_offset + (p * len * 2) as u64,
        )
        .expect("pixels");
    }
}

/// One image of `side`² uint16, every pixel `value`.
fn constant_image(path: &Path, side: usize, value: u16) {
    let (file, layout) = sparse_stack(path, 1, side, DType::U16, false);
    file.write_all_at(bytes(&vec![value; side * side]), layout.data_offset)
        .expect("pixels");
}

#[test]
fn median_of_200_flats_fits_in_an_address_space_that_holding_every_flat_would_not() {
    // The red-team run was 200 flats of 1024² uint16: every flat held as float32, 1.24 GB for
    // 420 MB of file, and under a memory limit an abort (exit 134). 512² keeps this test to a
    // few seconds in a debug build with the same margins: the flats are mapped (100 MiB), and
    // holding them as float32 needs 200 MiB more than that plus the process itself (measured:
    // the old code aborts below 375 MiB, the banded one runs in 200 MiB). The median of an
    // even count, 200, is the mean of the two middle values.
    let (pages, side) = (200, 512);
    let s = Scratch::new();
    let pool = Pool::new(side * side);
    flats_in_place(&s.path("flats.tif"), &pool, pages, side);
    constant_image(&s.path("stack.tif"), side, 50_000);
    let mapped = fs::metadata(s.path("flats.tif")).expect("flats").len();
    let limit = mapped + (200 << 20);
    let args = "-q -j 2 background-correct --flat flats.tif --average median stack.tif -o out.tif";
    let args: Vec<&str> = args.split_whitespace().collect();
    let out = run_with_address_space(&s, limit, 2, &args);
    assert!(
        out.status.success(),
        "exit {:?} within {} MiB: {}",
        out.status.code(),
        limit >> 20,
        text(&out.stderr)
    );
    let (n, w, h, result) = read_stack(&s.path("out.tif"));
    assert_eq!((n, w as usize, h as usize), (1, side, side));
    // Every 61st pixel, and the whole last row (the end of the last band).
    let sample = (0..side * side)
        .step_by(61)
        .chain((side - 1) * side..side * side);
    for i in sample {
        let flat = median((0..pages).map(|p| f64::from(pool.value(p, i))).collect());
        let want = corrected(50_000.0, flat, 0.0);
        assert_eq!(result[i], f64::from(want), "pixel {i}: flat median {flat}");
    }
}

/// Writes `pages` (each `width` × `height` uint16) with the `tiff` crate: one multi-page file,
/// Deflate-compressed when `deflate`.
fn write_with_tiff_crate(
    path: &Path,
    pages: &[&[u16]],
    (width, height): (u32, u32),
    deflate: bool,
) {
    use tiff::encoder::compression::DeflateLevel;
    use tiff::encoder::{Compression, TiffEncoder, colortype::Gray16};
    let compression = if deflate {
        Compression::Deflate(DeflateLevel::Fast)
    } else {
        Compression::Uncompressed
    };
    let mut encoder = TiffEncoder::new(fs::File::create(path).expect("create"))
        .expect("encoder")
        .with_compression(compression);
    for page in pages {
        encoder
            .write_image::<Gray16>(width, height, page)
            .expect("page");
    }
}

#[test]
fn the_flats_median_is_the_same_read_in_place_from_a_directory_or_decoded() {
    // Three ways to read flats: pages where they lie in an uncompressed file, one file per
    // flat (each mapped while read), and Deflate pages decoded one at a time. 9 flats (odd)
    // and 3 darks, both by median, a ragged 67 x 45 image: the results must be identical,
    // and equal to the median computed here.
    let (width, height) = (67, 45);
    let len = width * height;
    let s = Scratch::new();
    let pool = Pool::new(len);
    let flats: Vec<Vec<u16>> = (0..9).map(|p| pool.page(p, len).to_vec()).collect();
    let darks: Vec<Vec<u16>> = (0..3)
        .map(|p| pool.page(100 + p, len).iter().map(|v| v / 8).collect())
        .collect();
    let image: Vec<u16> = pool.page(200, len).iter().map(|v| v * 5).collect();
    let size = (width as u32, height as u32);
    write_with_tiff_crate(&s.path("flats.tif"), &slices(&flats), size, false);
    write_with_tiff_crate(&s.path("flats_deflate.tif"), &slices(&flats), size, true);
    fs::create_dir(s.path("flats_dir")).expect("mkdir");
    for (p, flat) in flats.iter().enumerate() {
        let name = format!("flats_dir/flat_{p}.tif");
        write_with_tiff_crate(&s.path(&name), &[flat], size, false);
    }
    write_with_tiff_crate(&s.path("darks.tif"), &slices(&darks), size, true);
    write_with_tiff_crate(&s.path("stack.tif"), &[&image], size, false);
    let in_place = s
        .imfilter()
        .args(["info", "flats.tif"])
        .output()
        .expect("info");
    assert!(
        text(&in_place.stdout).contains("reading:     in place, without decoding"),
        "the uncompressed flats must be read in place: {}",
        text(&in_place.stdout)
    );

    let mut results = Vec::new();
    for flat in ["flats.tif", "flats_dir", "flats_deflate.tif"] {
        let out = format!("out_{}.tif", flat.replace('.', "_"));
        s.imfilter()
            .args([
                "-q",
                "background-correct",
                "--flat",
                flat,
                "--dark",
                "darks.tif",
            ])
            .args(["--average", "median", "stack.tif", "-o", &out])
            .assert()
            .success();
        let (n, w, h, values) = read_stack(&s.path(&out));
        assert_eq!((n, w, h), (1, size.0, size.1), "{flat}");
        results.push((flat, values));
    }
    let column = |pages: &[Vec<u16>], i: usize| pages.iter().map(|p| f64::from(p[i])).collect();
    let expected: Vec<f64> = (0..len)
        .map(|i| {
            let (f, d) = (median(column(&flats, i)), median(column(&darks, i)));
            f64::from(corrected(f32::from(image[i]), f, d))
        })
        .collect();
    for (flat, values) in &results {
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(values), bits(&expected), "--flat {flat}");
    }
}

#[test]
fn flats_whose_median_band_cannot_be_allocated_are_a_one_line_error() {
    // 200 Deflate flats of 1024² uint16 (a small file: zeros compress 1000:1) must be decoded
    // and copied: the band for all of them is the whole budget, 256 MiB, which a 256 MiB
    // address space cannot give. Holding every flat (the old way) aborted with a backtrace.
    let (pages, side) = (200, 1024);
    let s = Scratch::new();
    let zeros = vec![0u16; side * side];
    let all = vec![zeros.as_slice(); pages];
    write_with_tiff_crate(&s.path("flats.tif"), &all, (side as u32, side as u32), true);
    constant_image(&s.path("stack.tif"), side, 1);
    let args = "-q -j 2 background-correct --flat flats.tif --average median stack.tif -o out.tif";
    let args: Vec<&str> = args.split_whitespace().collect();
    let out = run_with_address_space(&s, 256 << 20, 2, &args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit {:?} (None: a signal): {}",
        out.status.code(),
        text(&out.stderr)
    );
    assert_one_line_error(
        &out.stderr,
        &["flats.tif: cannot allocate 256 MiB to combine the flats: out of memory"],
    );
    assert!(!s.path("out.tif").exists());
    s.assert_no_temp_files();
}
