//! Compressed files, written and read (issue 18, items 1 and 2): a compressed output that
//! grows past 4 GiB is a BigTIFF every reader opens, and damaged Deflate or ZSTD data, or a
//! compressed strip with no bytes, is an error naming the file, never wrong pixels.

use std::fs;
use std::os::unix::fs::FileExt;

use imfilter::pixel::DType;
use imfilter::stack::Stack;
use imfilter::stack::ifd::{TiffFile, tag};

use crate::sparse::sparse_stack;
use crate::support::{Scratch, assert_one_line_error};

/// Deterministic noise (xorshift64*), so a failure can be rerun.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// float32 values in [1, 2) with random mantissas: LZW makes them about a third larger.
fn noisy_floats(seed: u64, pixels: usize) -> Vec<u8> {
    noise(seed, pixels * 4)
        .chunks_exact(4)
        .flat_map(|b| {
            (0x3f80_0000 | (u32::from_le_bytes(b.try_into().unwrap()) >> 9)).to_le_bytes()
        })
        .collect()
}

/// Flat 1 and dark 0 of `side`² float32, so background correction returns its input.
fn identity_references(s: &Scratch, side: usize) {
    for (name, value) in [("one.tif", 1.0f32), ("zero.tif", 0.0)] {
        let (file, layout) = sparse_stack(&s.path(name), 1, side, DType::F32, false);
        let pixels: Vec<u8> = (0..side * side).flat_map(|_| value.to_le_bytes()).collect();
        file.write_all_at(&pixels, layout.data_offset)
            .expect("write");
    }
}

fn page_f32(stack: &Stack, index: usize) -> Vec<f32> {
    let mut scratch = Vec::new();
    stack
        .page::<f32>(index, &mut scratch)
        .expect("page")
        .to_vec()
}

#[test]
fn a_compressed_output_that_grows_past_4_gib_is_a_bigtiff_that_reads_back() {
    // The uncompressed result is under 4 GiB, so a layout chosen from it is classic TIFF;
    // LZW makes it larger than 4 GiB, where classic offsets would wrap. Pages of the same
    // noise compress to the same length, so the page count needed is measured, not guessed.
    const SIDE: usize = 1024;
    let s = Scratch::new();
    let page = noisy_floats(7, SIDE * SIDE);
    let mut lzw = Vec::new();
    {
        use tiff::encoder::compression::{CompressionAlgorithm, Lzw};
        for strip in page.chunks(64 * 1024) {
            Lzw.write_to(&mut lzw, strip).expect("lzw");
        }
    }
    let pages = (4.5e9 / lzw.len() as f64).ceil() as usize;
    let uncompressed = (pages * page.len()) as u64;
    assert!(
        uncompressed < u64::from(u32::MAX) - (1 << 24),
        "{pages} pages: the uncompressed result must stay classic"
    );
    let (file, layout) = sparse_stack(&s.path("noise.tif"), pages, SIDE, DType::F32, false);
    let last = noisy_floats(11, SIDE * SIDE);
    for p in 0..pages {
        let bytes = if p == pages - 1 { &last } else { &page };
        file.write_all_at(bytes, layout.data_offset + (p * page.len()) as u64)
            .expect("write");
    }
    drop(file);
    identity_references(&s, SIDE);

    let out = s
        .imfilter()
        .args([
            "background-correct",
            "--flat",
            "one.tif",
            "--dark",
            "zero.tif",
        ])
        .args([
            "noise.tif",
            "-o",
            "out.tif",
            "--compress",
            "lzw",
            "--no-sync",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::remove_file(s.path("noise.tif")).expect("rm");
    let len = fs::metadata(s.path("out.tif")).expect("out").len();
    assert!(len > 1 << 32, "the test must write past 4 GiB, wrote {len}");
    let mut header = [0; 4];
    fs::File::open(s.path("out.tif"))
        .expect("open")
        .read_exact_at(&mut header, 0)
        .expect("header");
    assert_eq!(&header, b"II+\0", "a file past 4 GiB must be BigTIFF");
    let stack = Stack::open(&s.path("out.tif")).expect("the output opens");
    assert_eq!(stack.len(), pages);
    let want = |bytes: &[u8]| -> Vec<f32> {
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    };
    assert_eq!(page_f32(&stack, 0), want(&page));
    assert_eq!(
        page_f32(&stack, pages - 1),
        want(&last),
        "the page past 4 GiB"
    );
}

/// Writes a small noisy uint16 stack compressed with `codec` by imfilter itself, and returns
/// its bytes and the (offset, count) of every strip.
fn compressed_stack(s: &Scratch, codec: &str) -> (Vec<u8>, Vec<(u64, u64)>) {
    // 256 KiB a page: four strips of 64 KiB each.
    const SIDE: usize = 256;
    let (file, layout) = sparse_stack(&s.path("raw.tif"), 3, SIDE, DType::F32, false);
    file.write_all_at(&noisy_floats(3, 3 * SIDE * SIDE), layout.data_offset)
        .expect("write");
    identity_references(s, SIDE);
    s.imfilter()
        .args([
            "background-correct",
            "--flat",
            "one.tif",
            "--dark",
            "zero.tif",
        ])
        .args(["raw.tif", "-o", "packed.tif", "--compress", codec])
        .assert()
        .success();
    let bytes = fs::read(s.path("packed.tif")).expect("read");
    let tiff = TiffFile::parse(&bytes).expect("parses");
    let mut strips = Vec::new();
    for d in &tiff.directories {
        let offsets = tiff
            .uints(d, tag::STRIP_OFFSETS)
            .expect("tag")
            .expect("offsets");
        let counts = tiff
            .uints(d, tag::STRIP_BYTE_COUNTS)
            .expect("tag")
            .expect("counts");
        strips.extend(offsets.into_iter().zip(counts));
    }
    (bytes, strips)
}

fn assert_refused(s: &Scratch, bytes: &[u8], must_contain: &[&str]) {
    fs::write(s.path("damaged.tif"), bytes).expect("write");
    let out = s
        .imfilter()
        .args(["median", "--size", "3", "damaged.tif", "-o", "out.tif"])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "damaged data accepted; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_one_line_error(&out.stderr, must_contain);
    assert!(!s.path("out.tif").exists(), "an output was left");
    s.assert_no_temp_files();
}

/// 64 zeroed bytes at 20 places spread over the compressed data (the red-team's case): the
/// control run reads the file whole, and every damaged copy is refused.
fn damage_is_refused_everywhere(codec: &str, what: &str) {
    let s = Scratch::new();
    let (bytes, strips) = compressed_stack(&s, codec);
    s.imfilter()
        .args(["median", "--size", "3", "packed.tif", "-o", "control.tif"])
        .assert()
        .success();
    for k in 0..20 {
        let (offset, count) = strips[k * strips.len() / 20];
        assert!(count > 64, "strip of {count} bytes");
        let at = (offset + (count - 64) * (k as u64 % 5) / 4) as usize;
        let mut damaged = bytes.clone();
        damaged[at..at + 64].fill(0);
        assert_refused(&s, &damaged, &["damaged.tif", "cannot decode", what]);
    }
}

#[test]
fn damaged_deflate_data_is_refused_wherever_it_is() {
    damage_is_refused_everywhere("deflate", "Deflate");
}

#[test]
fn damaged_zstd_data_is_refused_wherever_it_is() {
    damage_is_refused_everywhere("zstd", "ZSTD");
}

#[test]
fn a_compressed_strip_of_zero_bytes_is_refused() {
    let s = Scratch::new();
    let (mut bytes, _) = compressed_stack(&s, "deflate");
    // Rewrites the second page's third StripByteCounts value as 0. Its four counts are stored
    // out of line, at the offset its classic directory entry holds (tag, type, count, offset).
    let tiff = TiffFile::parse(&bytes).expect("parses");
    assert!(!tiff.bigtiff);
    let d = tiff.directories[1].offset as usize;
    drop(tiff);
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
    let entry = (0..u16_at(d) as usize)
        .map(|i| d + 2 + 12 * i)
        .find(|&e| u16_at(e) == tag::STRIP_BYTE_COUNTS)
        .expect("StripByteCounts entry");
    assert_eq!(u32_at(entry + 4), 4, "four strips");
    let at = u32_at(entry + 8) as usize + 2 * 4;
    let width = 4;
    bytes[at..at + width].fill(0);
    assert_refused(&s, &bytes, &["damaged.tif", "strip 2 has 0 bytes"]);
}
