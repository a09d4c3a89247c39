//! Border modes and the row driver: where the window reads outside the image (scipy.ndimage's
//! `mode`, periodic when the window is larger than the image), and how the kernels are fed. The
//! interior of each output row reads the input rows in place; the r columns at each edge are
//! computed from small padded copies; float row pairs whose windows hold NaN go to the NaN-aware
//! kernel.

use super::Sample;
use super::select::NanAware;

/// How the window reads outside the image (scipy.ndimage's `mode`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BorderMode {
    /// `d c b a | a b c d | d c b a` (scipy's default and MantidImaging's).
    Reflect,
    /// `a a a | a b c d | d d d`
    Nearest,
    /// `d c b | a b c d | c b a`
    Mirror,
    /// `k k k | a b c d | k k k` with k = `cval` converted to the image's type.
    Constant,
    /// `b c d | a b c d | a b c`
    Wrap,
}

impl BorderMode {
    pub const ALL: [BorderMode; 5] = [
        BorderMode::Reflect,
        BorderMode::Nearest,
        BorderMode::Mirror,
        BorderMode::Constant,
        BorderMode::Wrap,
    ];

    /// The scipy name, which is what users type.
    pub fn name(self) -> &'static str {
        match self {
            BorderMode::Reflect => "reflect",
            BorderMode::Nearest => "nearest",
            BorderMode::Mirror => "mirror",
            BorderMode::Constant => "constant",
            BorderMode::Wrap => "wrap",
        }
    }

    /// The mode with this scipy name.
    pub fn parse(s: &str) -> Option<Self> {
        BorderMode::ALL.into_iter().find(|m| m.name() == s)
    }

    /// The index in `0..n` that position `i` reads, or `None` where it reads the constant.
    ///
    /// Reflect, mirror and wrap are periodic (periods 2n, 2n − 2 and n), which is what scipy does
    /// when the window is larger than the image.
    pub fn source_index(self, i: isize, n: usize) -> Option<usize> {
        assert!(n > 0, "invariant: an image side is at least 1 pixel");
        let n = n as isize;
        if (0..n).contains(&i) {
            return Some(i as usize);
        }
        let j = match self {
            BorderMode::Constant => return None,
            BorderMode::Nearest => i.clamp(0, n - 1),
            BorderMode::Wrap => i.rem_euclid(n),
            BorderMode::Reflect => {
                let m = i.rem_euclid(2 * n);
                if m < n { m } else { 2 * n - 1 - m }
            }
            BorderMode::Mirror => {
                if n == 1 {
                    0
                } else {
                    let m = i.rem_euclid(2 * n - 2);
                    if m < n { m } else { 2 * n - 2 - m }
                }
            }
        };
        Some(j as usize)
    }
}

impl std::fmt::Display for BorderMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------------------------
// The row driver: borders, NaN rows, pairs of output rows

/// One input image and how its window reads outside it.
pub(super) struct Image<'a, T> {
    pub(super) input: &'a [T],
    pub(super) width: usize,
    pub(super) height: usize,
    /// Window radius: K = 2r + 1.
    pub(super) r: usize,
    pub(super) mode: BorderMode,
    /// Already converted to T.
    pub(super) cval: T,
}

/// A kernel over padded rows.
pub(super) trait RowKernel<T: Sample> {
    /// `rows` are the 2r + 2 rows y − r ..= y + r + 1, each `out0.len() + 2r` long, column
    /// `x + r` of a row lying under output `x`; writes output rows y (`out0`) and y + 1 (`out1`).
    fn pair(&mut self, rows: &[&[T]], out0: &mut [T], out1: &mut [T]);
}

/// Runs `kernel` over the whole image, switching to the NaN-aware kernel for row pairs whose
/// windows hold NaN.
///
/// The interior of each output row reads the input rows in place; only the r columns at each
/// edge are computed from small padded copies ([`Strip`]). Float rows are checked for NaN right
/// after the fast kernel first read them (they are in cache then; checking before would stall on
/// memory); a pair that turns out to hold NaN is recomputed by the NaN-aware kernel.
pub(super) fn drive<T: Sample, K: RowKernel<T>>(
    img: &Image<'_, T>,
    output: &mut [T],
    kernel: &mut K,
) {
    let (w, h, r) = (img.width, img.height, img.r);
    let constant_row = if img.mode == BorderMode::Constant {
        vec![img.cval; w]
    } else {
        Vec::new()
    };
    let cval_nan = img.mode == BorderMode::Constant && img.cval.is_nan();
    // Per input row: None until checked, then whether it holds NaN.
    let mut row_nan: Vec<Option<bool>> = vec![None; if T::IS_FLOAT { h } else { 0 }];
    let mut nan_kernel = NanAware::new(r);
    let mut edges = Edges::new(img);
    let mut rows: Vec<&[T]> = Vec::with_capacity(2 * r + 2);
    let mut sources: Vec<Option<usize>> = Vec::with_capacity(2 * r + 2);
    let mut scratch = vec![T::default(); if h % 2 == 1 { w } else { 0 }];

    for (pair_index, out_pair) in output.chunks_mut(2 * w).enumerate() {
        let y = 2 * pair_index;
        let (out0, out1) = if out_pair.len() == 2 * w {
            out_pair.split_at_mut(w)
        } else {
            (out_pair, &mut scratch[..])
        };
        sources.clear();
        sources.extend(
            (0..2 * r + 2).map(|v| img.mode.source_index((y + v) as isize - r as isize, h)),
        );
        rows.clear();
        rows.extend(sources.iter().map(|src| match src {
            Some(s) => &img.input[s * w..(s + 1) * w],
            None => &constant_row[..],
        }));
        let mut dirty = false;
        let mut unchecked = false;
        for src in &sources {
            match src {
                None => dirty |= cval_nan,
                Some(s) if T::IS_FLOAT => match row_nan[*s] {
                    Some(nan) => dirty |= nan,
                    None => unchecked = true,
                },
                Some(_) => {}
            }
        }
        if !dirty {
            edges.run(kernel, Some(&mut nan_kernel), &rows, &sources, out0, out1);
            if unchecked {
                for src in sources.iter().flatten() {
                    let nan = *row_nan[*src].get_or_insert_with(|| {
                        img.input[src * w..(src + 1) * w]
                            .iter()
                            .fold(false, |acc, p| acc | p.is_nan())
                    });
                    dirty |= nan;
                }
            }
        }
        if dirty {
            edges.run(
                &mut nan_kernel,
                None::<&mut NanAware<T>>,
                &rows,
                &sources,
                out0,
                out1,
            );
        }
    }
}

/// Splits each output row into the interior, computed from the input rows in place, and the r
/// columns at each edge, computed from small padded copies.
struct Edges<'a, T: 'static> {
    img: &'a Image<'a, T>,
    interior: std::ops::Range<usize>,
    strips: Vec<Strip>,
    cval_nan: bool,
    buf: Vec<T>,
    rows_store: Vec<&'static [T]>,
}

/// Output columns `a..b` at an image edge.
struct Strip {
    a: usize,
    b: usize,
    /// For padded columns a − r .. b + r: the input column read, or None for the constant.
    columns: Vec<Option<usize>>,
}

impl<'a, T: Sample> Edges<'a, T> {
    fn new(img: &'a Image<'a, T>) -> Self {
        let (w, r) = (img.width, img.r);
        // Output columns [0, left) and [right, w) are the strips, [r, w - r) the interior.
        let left = r.min(w);
        let right = r.max(w.saturating_sub(r));
        let strips = [(0, left), (right, w)]
            .into_iter()
            .filter(|(a, b)| a < b)
            .map(|(a, b)| Strip {
                a,
                b,
                columns: (a as isize - r as isize..(b + r) as isize)
                    .map(|c| img.mode.source_index(c, w))
                    .collect(),
            })
            .collect();
        Edges {
            img,
            interior: r..w.saturating_sub(r),
            strips,
            cval_nan: img.mode == BorderMode::Constant && img.cval.is_nan(),
            buf: Vec::new(),
            rows_store: Vec::new(),
        }
    }

    /// Output rows y and y + 1 with `kernel`; strips padded with a NaN `cval` go to `nan_kernel`
    /// if given.
    fn run<K: RowKernel<T>, N: RowKernel<T>>(
        &mut self,
        kernel: &mut K,
        mut nan_kernel: Option<&mut N>,
        rows: &[&[T]],
        sources: &[Option<usize>],
        out0: &mut [T],
        out1: &mut [T],
    ) {
        let (a, b) = (self.interior.start, self.interior.end);
        if a < b {
            kernel.pair(rows, &mut out0[a..b], &mut out1[a..b]);
        }
        let (w, cval) = (self.img.width, self.img.cval);
        for strip in &self.strips {
            self.buf.clear();
            for src in sources {
                match src {
                    Some(s) => {
                        let row = &self.img.input[s * w..(s + 1) * w];
                        self.buf
                            .extend(strip.columns.iter().map(|c| c.map_or(cval, |c| row[c])));
                    }
                    None => self.buf.extend(strip.columns.iter().map(|_| cval)),
                }
            }
            let mut strip_rows = recycle(std::mem::take(&mut self.rows_store));
            strip_rows.extend(self.buf.chunks_exact(strip.columns.len()));
            let (o0, o1) = (&mut out0[strip.a..strip.b], &mut out1[strip.a..strip.b]);
            match nan_kernel.as_deref_mut() {
                Some(nan_kernel) if self.cval_nan => nan_kernel.pair(&strip_rows, o0, o1),
                _ => kernel.pair(&strip_rows, o0, o1),
            }
            self.rows_store = recycle(strip_rows);
        }
    }
}

/// An empty vector of row references with a new lifetime, keeping the allocation (std collects
/// in place when the element layout is unchanged).
#[expect(
    clippy::unnecessary_filter_map,
    reason = "the map changes the element's lifetime, which `filter` cannot"
)]
fn recycle<'b, T>(mut v: Vec<&[T]>) -> Vec<&'b [T]> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn border_modes_match_scipy_pictures() {
        // a b c d = 0 1 2 3; positions -3..=6
        let pick = |m: BorderMode| -> Vec<Option<usize>> {
            (-3..=6).map(|i| m.source_index(i, 4)).collect()
        };
        let s = |v: &[usize]| v.iter().map(|&i| Some(i)).collect::<Vec<_>>();
        assert_eq!(
            pick(BorderMode::Reflect),
            s(&[2, 1, 0, 0, 1, 2, 3, 3, 2, 1])
        );
        assert_eq!(pick(BorderMode::Mirror), s(&[3, 2, 1, 0, 1, 2, 3, 2, 1, 0]));
        assert_eq!(
            pick(BorderMode::Nearest),
            s(&[0, 0, 0, 0, 1, 2, 3, 3, 3, 3])
        );
        assert_eq!(pick(BorderMode::Wrap), s(&[1, 2, 3, 0, 1, 2, 3, 0, 1, 2]));
        assert_eq!(pick(BorderMode::Constant)[0], None);
        assert_eq!(BorderMode::Mirror.source_index(-5, 1), Some(0));
        for m in BorderMode::ALL {
            assert_eq!(BorderMode::parse(m.name()), Some(m));
        }
        assert_eq!(BorderMode::parse("grid-wrap"), None);
    }
}
