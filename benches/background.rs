//! Micro-benchmark of the background-correction kernel, `BackgroundCorrect::apply`, on one
//! 2048 × 2048 image in memory (no files, no page faults of the output: the buffers are
//! allocated and touched once, outside the timing), next to two anchors that move the same
//! bytes:
//!
//! * `u16_to_f32`: the conversion alone (read 2 bytes, write 4 per pixel), what the kernel
//!   cannot beat;
//! * `apply_*`: the kernel, which also streams the dark and the clamped `F − D` (4 + 4 bytes)
//!   per pixel, so 14 bytes per pixel in all;
//! * `stack_*`: the kernel over a stack of 16 images on the rayon pool, one image per task, as
//!   the engine runs it, with 1 thread and with every core.
//!
//! Run: `cargo bench --bench background` (`-- --quick` for a short run). The flat and dark are
//! written as small TIFF files and opened with `Stack::open`, as the CLI does, because
//! `BackgroundCorrect::new` takes opened stacks.

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use imfilter::filters::background::{Average, BackgroundCorrect};
use imfilter::stack::Stack;
use rayon::prelude::*;

const W: usize = 2048;
const H: usize = 2048;
const PIXELS: usize = W * H;
const STACK: usize = 16;

/// A deterministic, detector-like image: a smooth beam of ~`level` counts plus a little
/// pseudo-random texture (an LCG), so no value is special for the division.
fn image(level: f32, seed: u32) -> Vec<u16> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..PIXELS)
        .map(|i| {
            let (y, x) = (
                (i / W) as f32 / H as f32 - 0.5,
                (i % W) as f32 / W as f32 - 0.5,
            );
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (state >> 20) as f32 / 4096.0 - 0.5;
            (level * (1.0 - 0.8 * (x * x + y * y)) + 40.0 * noise).clamp(0.0, 65535.0) as u16
        })
        .collect()
}

fn write_tiff(path: &Path, pages: &[Vec<u16>]) {
    let file = std::fs::File::create(path).expect("create a TIFF in the temp dir");
    let mut encoder =
        tiff::encoder::TiffEncoder::new(std::io::BufWriter::new(file)).expect("TIFF encoder");
    for page in pages {
        encoder
            .write_image::<tiff::encoder::colortype::Gray16>(W as u32, H as u32, page)
            .expect("write a TIFF page");
    }
}

/// The corrector the CLI would build from 4 flats and 4 darks (mean), and an optional cutoff.
fn corrector(dir: &Path, cutoff: Option<f32>) -> BackgroundCorrect {
    let (flat, dark) = (dir.join("flat.tif"), dir.join("dark.tif"));
    if !flat.exists() {
        write_tiff(
            &flat,
            &(0..4).map(|i| image(20_000.0, 100 + i)).collect::<Vec<_>>(),
        );
        write_tiff(
            &dark,
            &(0..4).map(|i| image(100.0, 200 + i)).collect::<Vec<_>>(),
        );
    }
    let flat = Stack::open(&flat).expect("open flat");
    let dark = Stack::open(&dark).expect("open dark");
    BackgroundCorrect::new((flat, Average::Mean), Some((dark, Average::Mean)), cutoff)
        .expect("prepare background correction")
}

fn kernel(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let plain = corrector(dir.path(), None);
    let clipped = corrector(dir.path(), Some(1.5));

    let input_u16 = image(12_000.0, 7);
    let input_f32: Vec<f32> = input_u16.iter().map(|&v| f32::from(v)).collect();
    let mut out = vec![1f32; PIXELS]; // touched: no first-write page faults inside the timing

    let mut g = c.benchmark_group("background_2048x2048");
    g.throughput(Throughput::Elements(PIXELS as u64));
    g.bench_function("u16_to_f32 (anchor)", |b| {
        b.iter(|| {
            for (o, &i) in out.iter_mut().zip(black_box(&input_u16)) {
                *o = f32::from(i);
            }
            black_box(&mut out);
        })
    });
    g.bench_function("apply u16", |b| {
        b.iter(|| {
            plain.apply(black_box(&input_u16[..]), &mut out);
            black_box(&mut out);
        })
    });
    g.bench_function("apply u16 --cutoff", |b| {
        b.iter(|| {
            clipped.apply(black_box(&input_u16[..]), &mut out);
            black_box(&mut out);
        })
    });
    g.bench_function("apply f32", |b| {
        b.iter(|| {
            plain.apply(black_box(&input_f32[..]), &mut out);
            black_box(&mut out);
        })
    });
    g.finish();

    let stack: Vec<Vec<u16>> = (0..STACK as u32)
        .map(|i| image(12_000.0, 1000 + i))
        .collect();
    let mut outs: Vec<Vec<f32>> = (0..STACK).map(|_| vec![1f32; PIXELS]).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut g = c.benchmark_group("background_stack_16x2048x2048");
    g.throughput(Throughput::Elements((STACK * PIXELS) as u64));
    g.sample_size(20);
    for threads in [1, cores] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("rayon pool");
        g.bench_with_input(
            BenchmarkId::new("apply u16, threads", threads),
            &threads,
            |b, _| {
                b.iter(|| {
                    pool.install(|| {
                        outs.par_iter_mut()
                            .zip(stack.par_iter())
                            .for_each(|(o, i)| plain.apply(&i[..], o));
                    });
                    black_box(&mut outs);
                })
            },
        );
        if cores == 1 {
            break;
        }
    }
    g.finish();
}

criterion_group!(benches, kernel);
criterion_main!(benches);
