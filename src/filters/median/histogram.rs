//! K ≥ 11: Huang's sliding-window histogram (T. S. Huang, G. J. Yang, G. Y. Tang, "A fast
//! two-dimensional median filtering algorithm", IEEE Transactions on Acoustics, Speech, and
//! Signal Processing 27(1), 1979), over tiles, moving in a serpentine: O(K) per pixel. Types of
//! 16 bits or fewer are counted directly; wider ones by their rank within the tile (radix sort),
//! with NaN as an uncounted largest key.

use super::border::Image;
use super::{Isa, Sample, per_isa};

/// Largest radius the histogram path takes: its keys are u16, so a tile's footprint (at least
/// (2r + 1)² values, each possibly distinct) must stay below 65536.
pub(super) const MAX_HISTOGRAM_RADIUS: usize = 127;

/// Output tile side of the histogram path, at most: a tile's keys stay in cache, and for wide
/// types its footprint of (tile + 2r)² values must rank below 65536.
const TILE: usize = 128;

/// Histogram bins: one per u16 key, at offset [`GUARD`], with [`GUARD`] always-empty bins on
/// each side so that the median search reads whole groups without bounds tests.
const GUARD: usize = 16;
const BINS: usize = (1 << 16) + 2 * GUARD;

/// u32 counts: read-modify-writes of 16-bit memory measured twice as slow as 32-bit ones.
type Histogram = [u32; BINS];

per_isa!(pub(super) fn histogram_median = histogram_median_body(
    img: &Image<'_, T>,
    output: &mut [T],
));

/// K ≥ 11: Huang's sliding-window histogram, moving the window one pixel at a time in a serpentine
/// (right along one row, down, left along the next), so that each step adds K values, removes K,
/// and moves the running median a few bins. O(K) per pixel with a small constant, and no
/// re-initialisation between rows.
///
/// Samples of 16 bits or fewer are counted directly. Wider types are first replaced, tile by tile,
/// by their dense rank among the tile's footprint (a radix sort), which keeps the histogram's
/// occupied bins close together. NaN takes the largest key and is left out of the rank, which
/// implements the NaN rule without a separate path.
#[inline(always)]
fn histogram_median_body<T: Sample>(img: &Image<'_, T>, output: &mut [T]) {
    let (w, h, r) = (img.width, img.height, img.r);
    let borders = Borders::new(img);
    let mut hist: Box<Histogram> = vec![0u32; BINS]
        .into_boxed_slice()
        .try_into()
        .expect("invariant: BINS long");
    // Tiles keep the keys a window reads in cache and the ranks of wide types below 65535.
    let tile = TILE.min(255 - 2 * r);
    let mut keys = TileKeys::default();
    for ty in (0..h).step_by(tile) {
        for tx in (0..w).step_by(tile) {
            let (tw, th) = (tile.min(w - tx), tile.min(h - ty));
            keys.load(&borders, tx, ty, tw + 2 * r, th + 2 * r);
            let rows = keys.rows;
            let nan_key = T::IS_FLOAT.then_some(keys.values.len() as u16);
            let (tile_keys, values) = (&keys.keys, &keys.values);
            huang_tile(tile_keys, rows, tw, th, r, &mut hist, nan_key, |x, y, m| {
                let at = (ty + y) * w + tx + x;
                output[at] = if T::DIRECT {
                    T::from_direct(m)
                } else if Some(tile_keys[(x + r) * rows + y + r]) == nan_key {
                    img.input[at]
                } else {
                    values[m as usize]
                };
            });
        }
    }
}

/// Where each row and column of the image padded by r on every side reads, per the border mode.
struct Borders<'a, T> {
    img: &'a Image<'a, T>,
    /// Padded row y (column x) reads input row `rows[y]` (column `cols[x]`); None: the constant.
    rows: Vec<Option<usize>>,
    cols: Vec<Option<usize>>,
}

impl<'a, T: Sample> Borders<'a, T> {
    fn new(img: &'a Image<'a, T>) -> Self {
        let (w, h, r) = (img.width as isize, img.height as isize, img.r as isize);
        Borders {
            img,
            rows: (-r..h + r)
                .map(|y| img.mode.source_index(y, h as usize))
                .collect(),
            cols: (-r..w + r)
                .map(|x| img.mode.source_index(x, w as usize))
                .collect(),
        }
    }

    /// Calls `f(x, y, value)` for the `cols × rows` block of the padded image at (x0, y0).
    #[inline(always)]
    fn block(
        &self,
        x0: usize,
        y0: usize,
        cols: usize,
        rows: usize,
        mut f: impl FnMut(usize, usize, T),
    ) {
        let (w, cval) = (self.img.width, self.img.cval);
        for (y, src) in self.rows[y0..y0 + rows].iter().enumerate() {
            let columns = self.cols[x0..x0 + cols].iter().enumerate();
            match src {
                Some(s) => {
                    let row = &self.img.input[s * w..(s + 1) * w];
                    for (x, c) in columns {
                        f(x, y, c.map_or(cval, |c| row[c]));
                    }
                }
                None => columns.for_each(|(x, _)| f(x, y, cval)),
            }
        }
    }
}

/// One tile's footprint as histogram keys, column-major (`keys[x * rows + y]`), so that the K
/// keys entering or leaving the window at each step along a row are contiguous.
///
/// Types of 16 bits or fewer are their own keys. Wider ones are ranked: the key is the rank among
/// the footprint's distinct values (`values[rank]`), and NaN gets `values.len()`.
struct TileKeys<T> {
    keys: Vec<u16>,
    rows: usize,
    values: Vec<T>,
    /// (sort key, position), and the radix sort's second buffer.
    pairs: Vec<(u64, u32)>,
    spare: Vec<(u64, u32)>,
    nans: Vec<u32>,
}

impl<T> Default for TileKeys<T> {
    fn default() -> Self {
        TileKeys {
            keys: Vec::new(),
            rows: 0,
            values: Vec::new(),
            pairs: Vec::new(),
            spare: Vec::new(),
            nans: Vec::new(),
        }
    }
}

impl<T: Sample> TileKeys<T> {
    fn load(&mut self, borders: &Borders<'_, T>, x0: usize, y0: usize, cols: usize, rows: usize) {
        self.rows = rows;
        self.keys.clear();
        self.keys.resize(cols * rows, 0);
        if T::DIRECT {
            let keys = &mut self.keys;
            borders.block(x0, y0, cols, rows, |x, y, v| {
                keys[x * rows + y] = v.to_direct()
            });
            return;
        }
        self.pairs.clear();
        self.nans.clear();
        let (pairs, nans) = (&mut self.pairs, &mut self.nans);
        borders.block(x0, y0, cols, rows, |x, y, v| {
            let pos = (x * rows + y) as u32;
            if v.is_nan() {
                nans.push(pos);
            } else {
                pairs.push((v.sort_key(), pos));
            }
        });
        radix_sort(&mut self.pairs, &mut self.spare);
        self.values.clear();
        let mut last = None;
        for &(key, pos) in &self.pairs {
            if last != Some(key) {
                last = Some(key);
                let (x, y) = (pos as usize / rows, pos as usize % rows);
                let (sy, sx) = (borders.rows[y0 + y], borders.cols[x0 + x]);
                let img = borders.img;
                self.values.push(match (sy, sx) {
                    (Some(sy), Some(sx)) => img.input[sy * img.width + sx],
                    _ => img.cval,
                });
            }
            // At most 255² values: the tile size keeps ranks and the NaN key below 65536.
            self.keys[pos as usize] = (self.values.len() - 1) as u16;
        }
        let nan_key = self.values.len() as u16;
        for &pos in &self.nans {
            self.keys[pos as usize] = nan_key;
        }
    }
}

/// Sorts by the u64 key, stably, 8 bits per pass, skipping the passes where every key has the
/// same digit (the high bytes of most images).
fn radix_sort(pairs: &mut Vec<(u64, u32)>, spare: &mut Vec<(u64, u32)>) {
    let first = pairs.first().map_or(0, |p| p.0);
    let differ = pairs.iter().fold(0, |acc, p| acc | (p.0 ^ first));
    spare.clear();
    spare.resize(pairs.len(), (0, 0));
    for shift in (0..64).step_by(8) {
        if (differ >> shift) & 0xff == 0 {
            continue;
        }
        let mut count = [0usize; 257];
        for p in pairs.iter() {
            count[((p.0 >> shift) & 0xff) as usize + 1] += 1;
        }
        for i in 0..256 {
            count[i + 1] += count[i];
        }
        for &p in pairs.iter() {
            let d = ((p.0 >> shift) & 0xff) as usize;
            spare[count[d]] = p;
            count[d] += 1;
        }
        std::mem::swap(pairs, spare);
    }
}

/// The window's histogram and the running median: bin `m` holds the median and `lt` window keys
/// lie below it. Keys are binned at `key + GUARD`.
struct Running<'h> {
    hist: &'h mut Histogram,
    m: usize,
    lt: usize,
}

impl Running<'_> {
    fn new(hist: &mut Histogram) -> Running<'_> {
        Running {
            hist,
            m: GUARD,
            lt: 0,
        }
    }

    #[inline(always)]
    fn add(&mut self, key: u16) {
        self.hist[key as usize + GUARD] += 1;
    }

    #[inline(always)]
    fn remove(&mut self, key: u16) {
        self.hist[key as usize + GUARD] -= 1;
    }

    /// The median's key.
    #[inline(always)]
    fn key(&self) -> u16 {
        (self.m - GUARD) as u16
    }

    /// `leave` out of the window, `enter` into it, pairwise.
    #[inline(always)]
    fn swap(&mut self, leave: &[u16], enter: &[u16]) {
        let m = self.m - GUARD;
        // Two independent sums rather than one running difference: no serial dependency.
        let (mut entering, mut leaving) = (0, 0);
        for (&out, &add) in leave.iter().zip(enter) {
            self.remove(out);
            self.add(add);
            entering += usize::from((add as usize) < m);
            leaving += usize::from((out as usize) < m);
        }
        self.lt = self.lt + entering - leaving;
    }

    /// Moves `m` to the bin of rank `rank` (0-based) among the window's keys.
    ///
    /// Where the image has a gradient the median moves tens of bins per step, over sparsely
    /// occupied bins, so the search passes 16 bins at a time by their (vectorised) sum, and walks
    /// bin by bin only within the last 16.
    #[inline(always)]
    fn settle(&mut self, rank: usize) {
        let hist = &*self.hist;
        let sum16 = |start: usize| -> usize {
            let group: &[u32; 16] = hist[start..start + 16].try_into().expect("16 bins");
            group.iter().sum::<u32>() as usize
        };
        let (mut m, mut lt) = (self.m, self.lt);
        if lt > rank {
            // The highest bin b < m with lt - (count in b..m) <= rank.
            loop {
                let below = sum16(m - 16);
                if lt - below <= rank {
                    break;
                }
                (m, lt) = (m - 16, lt - below);
            }
            loop {
                m -= 1;
                lt -= hist[m] as usize;
                if lt <= rank {
                    break;
                }
            }
        } else {
            // The lowest bin b >= m with lt + (count in m..=b) > rank.
            loop {
                let above = sum16(m);
                if lt + above > rank {
                    break;
                }
                (m, lt) = (m + 16, lt + above);
            }
            while lt + hist[m] as usize <= rank {
                lt += hist[m] as usize;
                m += 1;
            }
        }
        (self.m, self.lt) = (m, lt);
    }
}

/// Calls `emit(x, y, median key)` for every window of a `tw × th` block of outputs over the
/// column-major `keys` (column stride `rows`, padded by r on every side), leaving `hist` (all
/// zero on entry) all zero.
///
/// With `nan_key`, keys equal to it are not counted in the rank: the median is the lower median of
/// the others (when there are none, the key emitted is meaningless and the caller's centre check
/// applies). `nan_key` is then the largest key present.
#[allow(clippy::too_many_arguments)]
fn huang_tile(
    keys: &[u16],
    rows: usize,
    tw: usize,
    th: usize,
    r: usize,
    hist: &mut Histogram,
    nan_key: Option<u16>,
    mut emit: impl FnMut(usize, usize, u16),
) {
    let k = 2 * r + 1;
    let total = k * k;
    let rank = |hist: &Histogram| {
        let valid = total - nan_key.map_or(0, |n| hist[n as usize + GUARD] as usize);
        valid.saturating_sub(1) / 2
    };
    let column = |x: usize, y: usize| &keys[x * rows + y..][..k];
    let mut run = Running::new(hist);
    for dx in 0..k {
        for &key in column(dx, 0) {
            run.add(key);
        }
    }
    let mut x = 0;
    for y in 0..th {
        if y > 0 {
            // Down one row at column x: the window's top row leaves, a new bottom row enters.
            for dx in 0..k {
                let col = &keys[(x + dx) * rows..];
                run.swap(&col[y - 1..y], &col[y - 1 + k..y + k]);
            }
        }
        run.settle(rank(run.hist));
        emit(x, y, run.key());
        for _ in 1..tw {
            // Along the row, rightwards on even rows and leftwards on odd ones.
            let (leave, enter, next) = if y % 2 == 0 {
                (x, x + k, x + 1)
            } else {
                (x + k - 1, x - 1, x - 1)
            };
            run.swap(column(leave, y), column(enter, y));
            x = next;
            run.settle(rank(run.hist));
            emit(x, y, run.key());
        }
    }
    // Empty the histogram for the next tile.
    for dx in 0..k {
        for &key in column(x + dx, th - 1) {
            run.remove(key);
        }
    }
}
