//! Any size: gather each window and select its median, O(K²) per pixel. The fallback for
//! K > 255, and the NaN-aware kernel the row driver switches to for windows that hold NaN.

use super::Sample;
use super::border::RowKernel;

/// Gathers each window and selects its median: O(K²) per pixel, the fallback for sizes without
/// a faster path.
pub(super) struct Select<T> {
    r: usize,
    buf: Vec<T>,
}

impl<T: Sample> Select<T> {
    pub(super) fn new(r: usize) -> Self {
        let k = 2 * r + 1;
        Select {
            r,
            buf: Vec::with_capacity(k * k),
        }
    }

    fn row(&mut self, rows: &[&[T]], out: &mut [T]) {
        let k = 2 * self.r + 1;
        let rank = k * k / 2;
        for (x, o) in out.iter_mut().enumerate() {
            self.buf.clear();
            for row in rows {
                self.buf.extend_from_slice(&row[x..x + k]);
            }
            let (_, m, _) = self.buf.select_nth_unstable_by(rank, T::order);
            *o = *m;
        }
    }
}

impl<T: Sample> RowKernel<T> for Select<T> {
    fn pair(&mut self, rows: &[&[T]], out0: &mut [T], out1: &mut [T]) {
        let k = 2 * self.r + 1;
        self.row(&rows[..k], out0);
        self.row(&rows[1..], out1);
    }
}

/// The NaN rule of the [module docs](super), any size: the lower median of the window's non-NaN
/// values.
pub(super) struct NanAware<T> {
    r: usize,
    buf: Vec<T>,
}

impl<T: Sample> NanAware<T> {
    pub(super) fn new(r: usize) -> Self {
        NanAware { r, buf: Vec::new() }
    }

    fn row(&mut self, rows: &[&[T]], out: &mut [T]) {
        let (r, k) = (self.r, 2 * self.r + 1);
        for (x, o) in out.iter_mut().enumerate() {
            let centre = rows[r][x + r];
            if centre.is_nan() {
                *o = centre;
                continue;
            }
            self.buf.clear();
            for row in rows {
                self.buf
                    .extend(row[x..x + k].iter().copied().filter(|p| !p.is_nan()));
            }
            // Not empty: the centre is in it.
            let rank = (self.buf.len() - 1) / 2;
            let (_, m, _) = self.buf.select_nth_unstable_by(rank, T::order);
            *o = *m;
        }
    }
}

impl<T: Sample> RowKernel<T> for NanAware<T> {
    fn pair(&mut self, rows: &[&[T]], out0: &mut [T], out1: &mut [T]) {
        let k = 2 * self.r + 1;
        self.row(&rows[..k], out0);
        self.row(&rows[1..], out1);
    }
}
