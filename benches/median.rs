//! Micro-benchmark of the median kernels, `median_filter_with` and `remove_outliers`, on one
//! 2048 × 2048 image in memory, one thread:
//!
//! * `median_3x3`, `median_5x5`: the sorting-network kernels for uint16, float32 and uint8, once
//!   per compiled version this CPU runs (`portable`, `avx2`, `avx512`);
//! * `median_large`: 7×7 and 9×9 (sorting networks) and the sliding-histogram path at 15 and 31
//!   (best compiled version);
//! * `remove_outliers`: 3×3, bright, uint16.
//!
//! The image is a synthetic projection like the peers' `make_stack.py`: a Gaussian beam of up to
//! 20 000 counts through a cylinder, Poisson-like noise, a dark level of 100 and 0.01 % hot
//! pixels. Throughput is in input pixels. Run: `cargo bench --bench median` (`-- median_3x3` for
//! one group, `-- --quick` for a short run).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use imfilter::filters::median::{BorderMode, Isa, MedianParams, median_filter_with};
use imfilter::filters::outliers::{OutlierKind, OutlierParams, remove_outliers};
use imfilter::pixel::Pixel;

const W: usize = 2048;
const H: usize = 2048;

/// The projection, deterministic (xorshift noise).
fn projection() -> Vec<u16> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut image = Vec::with_capacity(W * H);
    for y in 0..H {
        for x in 0..W {
            let dx = (x as f64 - W as f64 / 2.0) / (0.6 * W as f64);
            let dy = (y as f64 - H as f64 / 2.0) / (0.7 * H as f64);
            let beam = 20_000.0 * (-0.5 * (dx * dx + dy * dy)).exp();
            // A cylinder of radius 0.3 W: transmission exp(-1.9 × chord / diameter).
            let c = (x as f64 - W as f64 / 2.0) / (0.3 * W as f64);
            let transmission = if c.abs() < 1.0 {
                (-1.9 * (1.0 - c * c).sqrt()).exp()
            } else {
                1.0
            };
            let counts = beam * transmission;
            let gauss = (-2.0 * uniform().ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos();
            let mut value = (counts + counts.sqrt() * gauss + 100.0).round();
            if uniform() < 1e-4 {
                value = 65535.0;
            }
            image.push(value.clamp(0.0, 65535.0) as u16);
        }
    }
    image
}

fn params(size: usize) -> MedianParams {
    MedianParams {
        size,
        mode: BorderMode::Reflect,
        cval: 0.0,
    }
}

fn bench_one<T: Pixel>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: BenchmarkId,
    image: &[T],
    size: usize,
    isa: Isa,
) {
    let mut out = vec![T::default(); image.len()];
    let p = params(size);
    group.bench_function(id, |b| {
        b.iter(|| median_filter_with(black_box(image), &mut out, W, H, &p, isa))
    });
}

fn networks(c: &mut Criterion) {
    let u16_image = projection();
    let f32_image: Vec<f32> = u16_image.iter().map(|&v| v as f32).collect();
    let u8_image: Vec<u8> = u16_image.iter().map(|&v| (v >> 7) as u8).collect();
    for size in [3, 5] {
        let mut group = c.benchmark_group(format!("median_{size}x{size}"));
        group.throughput(Throughput::Elements((W * H) as u64));
        for isa in Isa::available() {
            let id = |ty: &str| BenchmarkId::new(ty, isa.name());
            bench_one(&mut group, id("u16"), &u16_image, size, isa);
            bench_one(&mut group, id("f32"), &f32_image, size, isa);
            bench_one(&mut group, id("u8"), &u8_image, size, isa);
        }
        group.finish();
    }
}

fn histogram(c: &mut Criterion) {
    let u16_image = projection();
    let f32_image: Vec<f32> = u16_image.iter().map(|&v| v as f32).collect();
    let mut group = c.benchmark_group("median_large");
    group.throughput(Throughput::Elements((W * H) as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    let isa = Isa::best();
    for size in [7, 9, 15, 31] {
        bench_one(
            &mut group,
            BenchmarkId::new("u16", size),
            &u16_image,
            size,
            isa,
        );
        bench_one(
            &mut group,
            BenchmarkId::new("f32", size),
            &f32_image,
            size,
            isa,
        );
    }
    group.finish();
}

fn outliers(c: &mut Criterion) {
    let image = projection();
    let mut out = vec![0u16; image.len()];
    let p = OutlierParams {
        size: 3,
        threshold: 500.0,
        kind: OutlierKind::Bright,
    };
    let mut group = c.benchmark_group("remove_outliers");
    group.throughput(Throughput::Elements((W * H) as u64));
    group.bench_function("u16/3x3/bright", |b| {
        b.iter(|| remove_outliers(black_box(&image), &mut out, W, H, &p))
    });
    group.finish();
}

criterion_group!(benches, networks, histogram, outliers);
criterion_main!(benches);
