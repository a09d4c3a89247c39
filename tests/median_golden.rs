//! The median filter and outlier removal against scipy (golden files made by
//! `fixtures/median/make_median_goldens.py`) and against a plain sort-based reference (property
//! tests), on every compiled version (`Isa`) this CPU runs.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use imfilter::filters::median::{
    BorderMode, Isa, MedianParams, cval_as, median_filter, median_filter_with,
};
use imfilter::filters::outliers::{
    OutlierKind, OutlierParams, remove_outliers, remove_outliers_with,
};
use imfilter::pixel::Pixel;
use proptest::prelude::*;
use tiff::decoder::{Decoder, DecodingResult};
use tiff::tags::Tag;

/// Sample types as the tests need them: decoded from TIFF, compared bit for bit.
trait TestPixel: Pixel {
    fn from_decoded(d: DecodingResult) -> Option<Vec<Self>>;
    fn bits(self) -> u64;
}

macro_rules! test_pixel {
    ($t:ty, $variant:ident, $bits:expr) => {
        impl TestPixel for $t {
            fn from_decoded(d: DecodingResult) -> Option<Vec<Self>> {
                match d {
                    DecodingResult::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn bits(self) -> u64 {
                $bits(self)
            }
        }
    };
}

test_pixel!(u8, U8, |v: u8| v as u64);
test_pixel!(u16, U16, |v: u16| v as u64);
test_pixel!(u32, U32, |v: u32| v as u64);
test_pixel!(i16, I16, |v: i16| v as u16 as u64);
test_pixel!(i32, I32, |v: i32| v as u32 as u64);
test_pixel!(f32, F32, |v: f32| v.to_bits() as u64);
test_pixel!(f64, F64, |v: f64| v.to_bits());

// ---------------------------------------------------------------------------------------------
// Golden files

struct Page<T> {
    desc: Vec<(String, String)>,
    width: usize,
    height: usize,
    data: Vec<T>,
}

impl<T> Page<T> {
    fn get(&self, key: &str) -> &str {
        self.desc
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("page {:?} has no {key}", self.desc))
    }
}

fn read_pages<T: TestPixel>(name: &str) -> Vec<Page<T>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/median")
        .join(name);
    let file = File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut dec = Decoder::new(BufReader::new(file)).expect("a TIFF file");
    let mut pages = Vec::new();
    loop {
        let (w, h) = dec.dimensions().expect("dimensions");
        let desc = dec
            .get_tag_ascii_string(Tag::ImageDescription)
            .expect("ImageDescription");
        let desc = desc
            .split_whitespace()
            .map(|kv| {
                let (k, v) = kv.split_once('=').expect("key=value");
                (k.to_string(), v.to_string())
            })
            .collect();
        let data = T::from_decoded(dec.read_image().expect("pixels")).expect("the file's type");
        assert_eq!(data.len(), w as usize * h as usize);
        pages.push(Page {
            desc,
            width: w as usize,
            height: h as usize,
            data,
        });
        if !dec.more_images() {
            break;
        }
        dec.next_image().expect("next page");
    }
    pages
}

fn mode_named(name: &str) -> BorderMode {
    BorderMode::parse(name).unwrap_or_else(|| panic!("unknown mode {name}"))
}

fn parse_f64(s: &str) -> f64 {
    match s {
        "inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        _ => s.parse().unwrap_or_else(|_| panic!("not a number: {s}")),
    }
}

fn first_difference<T: TestPixel>(got: &[T], want: &[T]) -> Option<(usize, T, T)> {
    got.iter()
        .zip(want)
        .enumerate()
        .find(|(_, (g, w))| g.bits() != w.bits())
        .map(|(i, (g, w))| (i, *g, *w))
}

fn golden<T: TestPixel>(name: &str) {
    let pages = read_pages::<T>(name);
    let inputs: Vec<&Page<T>> = pages.iter().filter(|p| p.get("kind") == "input").collect();
    let (mut medians, mut outliers) = (0, 0);
    for page in &pages {
        let kind = page.get("kind");
        if kind == "input" {
            continue;
        }
        let input = inputs[page.get("input").parse::<usize>().expect("input index")];
        assert_eq!((input.width, input.height), (page.width, page.height));
        let size: usize = page.get("size").parse().expect("size");
        for isa in Isa::available() {
            let mut out = vec![T::default(); input.data.len()];
            match kind {
                "median" => {
                    let params = MedianParams {
                        size,
                        mode: mode_named(page.get("mode")),
                        cval: parse_f64(page.get("cval")),
                    };
                    median_filter_with(
                        &input.data,
                        &mut out,
                        input.width,
                        input.height,
                        &params,
                        isa,
                    );
                }
                "outliers" => {
                    let params = OutlierParams {
                        size,
                        threshold: parse_f64(page.get("threshold")),
                        kind: match page.get("side") {
                            "bright" => OutlierKind::Bright,
                            "dark" => OutlierKind::Dark,
                            "both" => OutlierKind::Both,
                            other => panic!("unknown side {other}"),
                        },
                    };
                    remove_outliers_with(
                        &input.data,
                        &mut out,
                        input.width,
                        input.height,
                        &params,
                        isa,
                    );
                }
                other => panic!("unknown kind {other}"),
            }
            if let Some((i, got, want)) = first_difference(&out, &page.data) {
                panic!(
                    "{name} {:?} on {isa:?}: pixel (x {}, y {}) is {got:?}, scipy says {want:?}",
                    page.desc,
                    i % page.width,
                    i / page.width
                );
            }
        }
        match kind {
            "median" => medians += 1,
            _ => outliers += 1,
        }
    }
    // Guards against a fixture file that silently lost its cases.
    assert_eq!((medians, outliers), (170, 4), "{name}");
}

#[test]
fn golden_uint8() {
    golden::<u8>("median_uint8.tif");
}

#[test]
fn golden_uint16() {
    golden::<u16>("median_uint16.tif");
}

#[test]
fn golden_uint32() {
    golden::<u32>("median_uint32.tif");
}

#[test]
fn golden_int16() {
    golden::<i16>("median_int16.tif");
}

#[test]
fn golden_int32() {
    golden::<i32>("median_int32.tif");
}

#[test]
fn golden_float32() {
    golden::<f32>("median_float32.tif");
}

#[test]
fn golden_float64() {
    golden::<f64>("median_float64.tif");
}

// ---------------------------------------------------------------------------------------------
// Reference: gather, drop NaN, sort, take the lower middle

/// Where position `i` of a line of `n` reads, folding step by step (a different route from the
/// library's periodic formulas).
fn fold(mut i: isize, n: isize, mode: BorderMode) -> Option<isize> {
    match mode {
        BorderMode::Constant => (0..n).contains(&i).then_some(i),
        BorderMode::Nearest => Some(i.clamp(0, n - 1)),
        BorderMode::Wrap => Some(i.rem_euclid(n)),
        BorderMode::Reflect => {
            while !(0..n).contains(&i) {
                i = if i < 0 { -i - 1 } else { 2 * n - 1 - i };
            }
            Some(i)
        }
        BorderMode::Mirror if n == 1 => Some(0),
        BorderMode::Mirror => {
            while !(0..n).contains(&i) {
                i = if i < 0 { -i } else { 2 * (n - 1) - i };
            }
            Some(i)
        }
    }
}

fn reference<T: TestPixel>(img: &[T], w: usize, h: usize, p: &MedianParams) -> Vec<T> {
    let r = (p.size / 2) as isize;
    let cval: T = cval_as(p.cval);
    let mut out = Vec::with_capacity(img.len());
    for y in 0..h as isize {
        for x in 0..w as isize {
            let centre = img[y as usize * w + x as usize];
            if centre.is_nan() {
                out.push(centre);
                continue;
            }
            let mut win = Vec::new();
            for dy in -r..=r {
                for dx in -r..=r {
                    let v = match (
                        fold(y + dy, h as isize, p.mode),
                        fold(x + dx, w as isize, p.mode),
                    ) {
                        (Some(yy), Some(xx)) => img[yy as usize * w + xx as usize],
                        _ => cval,
                    };
                    if !v.is_nan() {
                        win.push(v);
                    }
                }
            }
            win.sort_by(|a, b| a.partial_cmp(b).expect("no NaN left"));
            out.push(win[(win.len() - 1) / 2]);
        }
    }
    out
}

/// Equal as values (−0.0 == +0.0: which zero comes out is unspecified), NaN where NaN.
fn assert_same_values<T: TestPixel>(got: &[T], want: &[T], what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let same = g.as_f64() == w.as_f64() || (g.is_nan() && w.is_nan());
        assert!(same, "{what}: pixel {i} is {g:?}, expected {w:?}");
    }
}

fn check_all_isas<T: TestPixel>(img: &[T], w: usize, h: usize, p: &MedianParams) {
    let want = reference(img, w, h, p);
    for isa in Isa::available() {
        let mut got = vec![T::default(); img.len()];
        median_filter_with(img, &mut got, w, h, p, isa);
        assert_same_values(&got, &want, &format!("{w}x{h} {p:?} {isa:?}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Property tests

fn mode_strategy() -> impl Strategy<Value = BorderMode> {
    prop::sample::select(BorderMode::ALL.to_vec())
}

/// Sizes up to larger than the image; 3 and 5 more often (the network kernels).
fn size_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => Just(3usize),
        3 => Just(5usize),
        2 => prop::sample::select(vec![1usize, 7, 9, 15]),
        1 => (0usize..20).prop_map(|k| 2 * k + 1),
    ]
}

fn params_strategy() -> impl Strategy<Value = MedianParams> {
    (size_strategy(), mode_strategy(), -300.0f64..70000.0).prop_map(|(size, mode, cval)| {
        MedianParams {
            size,
            mode,
            cval: cval.round(),
        }
    })
}

/// (width, height) with tiny and degenerate shapes well represented.
fn shape_strategy() -> impl Strategy<Value = (usize, usize)> {
    prop_oneof![
        (1usize..4, 1usize..4),
        (1usize..40, 1usize..12),
        (1usize..3, 1usize..30),
    ]
}

fn image<T: std::fmt::Debug + Clone>(
    values: impl Strategy<Value = T> + Clone,
) -> impl Strategy<Value = (usize, usize, Vec<T>)> {
    shape_strategy().prop_flat_map(move |(w, h)| {
        (
            Just(w),
            Just(h),
            prop::collection::vec(values.clone(), w * h),
        )
    })
}

/// Floats with ties, ±Inf and (for the NaN tests) NaN.
fn float_values(nan: bool) -> impl Strategy<Value = f32> + Clone {
    prop_oneof![
        8 => (-4i32..5).prop_map(|v| v as f32 * 0.25),
        6 => -1.0e3f32..1.0e3,
        1 => Just(f32::INFINITY),
        1 => Just(f32::NEG_INFINITY),
        if nan { 3 } else { 0 } => Just(f32::NAN),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn u8_matches_reference((w, h, img) in image(prop_oneof![0u8..4, Just(255u8)]), p in params_strategy()) {
        check_all_isas(&img, w, h, &p);
    }

    #[test]
    fn u16_matches_reference((w, h, img) in image(prop_oneof![
        4 => 1000u16..1008, 1 => Just(0u16), 1 => Just(u16::MAX), 2 => any::<u16>()]),
        p in params_strategy()) {
        check_all_isas(&img, w, h, &p);
    }

    #[test]
    fn i16_matches_reference((w, h, img) in image(prop_oneof![-3i16..3, Just(i16::MIN), Just(i16::MAX)]),
        p in params_strategy()) {
        check_all_isas(&img, w, h, &p);
    }

    #[test]
    fn u32_and_i32_match_reference((w, h, img) in image(any::<u32>().prop_map(|v| v % 5 * (u32::MAX / 4))),
        p in params_strategy()) {
        check_all_isas(&img, w, h, &p);
        let signed: Vec<i32> = img.iter().map(|&v| v as i32).collect();
        check_all_isas(&signed, w, h, &p);
    }

    #[test]
    fn f32_and_f64_match_reference((w, h, img) in image(float_values(false)), p in params_strategy()) {
        check_all_isas(&img, w, h, &p);
        let wide: Vec<f64> = img.iter().map(|&v| v as f64).collect();
        check_all_isas(&wide, w, h, &p);
    }

    #[test]
    fn nan_rule_matches_reference((w, h, img) in image(float_values(true)), p in params_strategy()) {
        check_all_isas(&img, w, h, &p);
        let wide: Vec<f64> = img.iter().map(|&v| v as f64).collect();
        check_all_isas(&wide, w, h, &p);
    }

    #[test]
    fn outliers_replace_exactly_where_the_threshold_is_exceeded(
        (w, h, img) in image(prop_oneof![4 => 100u16..110, 1 => Just(0u16), 1 => Just(u16::MAX)]),
        size in prop::sample::select(vec![1usize, 3, 5, 7]),
        threshold in 0.0f64..20.0,
        kind in prop::sample::select(vec![OutlierKind::Bright, OutlierKind::Dark, OutlierKind::Both]),
    ) {
        let p = MedianParams { size, mode: BorderMode::Reflect, cval: 0.0 };
        let med = reference(&img, w, h, &p);
        let mut got = vec![0u16; img.len()];
        remove_outliers(&img, &mut got, w, h, &OutlierParams { size, threshold, kind });
        for i in 0..img.len() {
            let d = img[i] as f64 - med[i] as f64;
            let replace = match kind {
                OutlierKind::Bright => d > threshold,
                OutlierKind::Dark => -d > threshold,
                OutlierKind::Both => d.abs() > threshold,
            };
            prop_assert_eq!(got[i], if replace { med[i] } else { img[i] }, "pixel {}", i);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Targeted cases

/// Rows wider than the network kernels' internal chunks (128 outputs), so chunk seams are
/// crossed.
#[test]
fn wide_rows_cross_chunk_boundaries() {
    let (w, h) = (600, 7);
    let img: Vec<u16> = (0..w * h)
        .map(|i| ((i * 7919 + i / 13) % 37) as u16)
        .collect();
    let imgf: Vec<f32> = img.iter().map(|&v| v as f32 * 0.5 - 3.0).collect();
    for size in [3, 5, 7, 9, 15] {
        for mode in BorderMode::ALL {
            let p = MedianParams {
                size,
                mode,
                cval: 11.0,
            };
            check_all_isas(&img, w, h, &p);
            check_all_isas(&imgf, w, h, &p);
        }
    }
}

/// Images larger than the histogram path's tiles (128 outputs) in both directions, so tile seams
/// are crossed, with NaN for the float types (their ranks are per tile).
#[test]
fn histogram_tiles_join_seamlessly() {
    let (w, h) = (140, 131);
    let img: Vec<u16> = (0..w * h)
        .map(|i| (1000 + (i % w) * 3 + (i * 7919 % 61)) as u16)
        .collect();
    let imgf: Vec<f32> = img
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if i % 97 == 0 {
                f32::NAN
            } else {
                v as f32 * 0.25
            }
        })
        .collect();
    let imgi: Vec<i32> = img.iter().map(|&v| (v as i32 - 1200) * 70_000).collect();
    for size in [7, 9] {
        for (mode, cval) in [(BorderMode::Reflect, 0.0), (BorderMode::Constant, f64::NAN)] {
            let p = MedianParams { size, mode, cval };
            check_all_isas(&img, w, h, &p);
            check_all_isas(&imgf, w, h, &p);
            check_all_isas(&imgi, w, h, &p);
        }
    }
}

/// Windows too large for the histogram's 16-bit counts take the selection path.
#[test]
fn huge_window_takes_the_selection_path() {
    let img: Vec<f64> = vec![3.0, -1.0, 7.5, f64::NAN, 2.0, 2.0];
    let p = MedianParams {
        size: 257,
        mode: BorderMode::Wrap,
        cval: 0.0,
    };
    check_all_isas(&img, 3, 2, &p);
}

/// A dead pixel (NaN) and a NaN border do not leak into their neighbours.
#[test]
fn nan_pixels_stay_nan_and_are_ignored_by_neighbours() {
    let (w, h) = (5, 5);
    let mut img = vec![1.0f32; w * h];
    img[12] = f32::NAN;
    img[13] = 9.0;
    img[11] = 0.0;
    for isa in Isa::available() {
        let mut out = vec![0.0f32; w * h];
        let p = MedianParams {
            size: 3,
            mode: BorderMode::Reflect,
            cval: 0.0,
        };
        median_filter_with(&img, &mut out, w, h, &p, isa);
        assert!(out[12].is_nan(), "{isa:?}");
        // Window of pixel 7: eight values, among them 0 and 9, the rest 1: lower middle is 1.
        assert_eq!(out[7], 1.0, "{isa:?}");
        assert!(out.iter().enumerate().all(|(i, v)| i == 12 || !v.is_nan()));
    }
    // Even count of non-NaN values: the lower of the two middle ones.
    let img = [f32::NAN, 4.0, 2.0, f32::NAN];
    let mut out = [0.0f32; 4];
    let p = MedianParams {
        size: 3,
        mode: BorderMode::Constant,
        cval: f64::NAN,
    };
    median_filter(&img, &mut out, 2, 2, &p);
    assert!(out[0].is_nan() && out[3].is_nan());
    assert_eq!(out[1], 2.0);
    assert_eq!(out[2], 2.0);
}

/// Only where the median itself is NaN-free does the whole image come out NaN-free.
#[test]
fn all_nan_image_stays_nan() {
    let img = vec![f64::NAN; 12];
    for size in [3, 5, 7] {
        let mut out = vec![0.0; 12];
        let p = MedianParams {
            size,
            mode: BorderMode::Nearest,
            cval: 0.0,
        };
        median_filter(&img, &mut out, 4, 3, &p);
        assert!(out.iter().all(|v| v.is_nan()));
    }
}

#[test]
fn size_one_is_the_identity() {
    let img: Vec<i16> = (0..35).map(|i| (i * 37 % 11) as i16 - 5).collect();
    let mut out = vec![0i16; 35];
    let p = MedianParams {
        size: 1,
        mode: BorderMode::Wrap,
        cval: 0.0,
    };
    median_filter(&img, &mut out, 7, 5, &p);
    assert_eq!(out, img);
}

#[test]
#[should_panic(expected = "odd")]
fn even_size_is_refused() {
    let img = [0u8; 4];
    let mut out = [0u8; 4];
    let p = MedianParams {
        size: 4,
        mode: BorderMode::Reflect,
        cval: 0.0,
    };
    median_filter(&img, &mut out, 2, 2, &p);
}

#[test]
fn empty_image_is_a_no_op() {
    let p = MedianParams {
        size: 3,
        mode: BorderMode::Reflect,
        cval: 0.0,
    };
    let mut out: [u16; 0] = [];
    median_filter::<u16>(&[], &mut out, 0, 5, &p);
    median_filter::<u16>(&[], &mut out, 7, 0, &p);
}

/// Asking for a version the CPU lacks runs the best one below it.
#[test]
fn unavailable_isa_falls_back() {
    let img: Vec<f32> = (0..63).map(|i| (i * 37 % 11) as f32).collect();
    let p = MedianParams {
        size: 3,
        mode: BorderMode::Reflect,
        cval: 0.0,
    };
    let (mut fast, mut plain) = (vec![0.0f32; 63], vec![0.0f32; 63]);
    median_filter_with(&img, &mut fast, 9, 7, &p, Isa::Avx512);
    median_filter_with(&img, &mut plain, 9, 7, &p, Isa::Portable);
    assert_eq!(fast, plain);
    let o = OutlierParams {
        size: 3,
        threshold: 2.0,
        kind: OutlierKind::Both,
    };
    remove_outliers_with(&img, &mut fast, 9, 7, &o, Isa::Avx512);
    remove_outliers_with(&img, &mut plain, 9, 7, &o, Isa::Portable);
    assert_eq!(fast, plain);
}
