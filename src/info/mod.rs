//! `imfilter info`: what a TIFF or FITS file (or directory of them) holds and how it is laid out.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::preview::Histogram;
use crate::stack::ifd::ByteOrder;
use crate::stack::list_tiffs;
use crate::stack::source::{Keep, Source};

mod hdf5;
mod stats;

/// A summary of one or more files read as one stack.
#[derive(Debug)]
pub struct Info {
    pub files: usize,
    pub pages: usize,
    pub width: u64,
    pub height: u64,
    /// The sample type, or why it is not supported.
    pub dtype: Result<String, String>,
    /// Every page has the first page's width, height and type.
    pub uniform: bool,
    pub byte_order: &'static str,
    pub compression: String,
    pub bigtiff: bool,
    /// The (first) file is FITS, not TIFF.
    pub fits: bool,
    /// Every page is uncompressed and back to back: the pixels form one mappable array.
    pub contiguous: bool,
    /// Every page can be read in place (uncompressed, one run, native byte order).
    pub readable_in_place: bool,
    pub bytes: u64,
    /// The steps imfilter's history in the file names, oldest first (empty without one).
    pub history: Vec<String>,
}

impl Info {
    pub fn of(path: &Path) -> Result<Info> {
        let files = if path.is_dir() {
            list_tiffs(path)?
        } else {
            vec![path.to_path_buf()]
        };
        let sources = files
            .iter()
            .map(|f| Source::open(f, Keep::WhileReading))
            .collect::<Result<Vec<_>>>()?;
        let first = &sources[0];
        let page0 = &first.pages[0];
        let mut uniform = true;
        let mut contiguous = sources.len() == 1;
        let mut in_place = true;
        let mut expected_next = None;
        for s in &sources {
            for p in &s.pages {
                uniform &=
                    (p.width, p.height, p.dtype()) == (page0.width, page0.height, page0.dtype());
                let offset = p.contiguous_offset();
                in_place &= offset.is_some() && s.byte_order == ByteOrder::native();
                match (offset, p.pixel_bytes()) {
                    (Some(o), Some(n)) => {
                        contiguous &= expected_next.is_none_or(|e| e == o);
                        expected_next = Some(o + n);
                    }
                    _ => contiguous = false,
                }
            }
        }
        let mut compressions: Vec<String> = sources
            .iter()
            .flat_map(|s| s.pages.iter().map(|p| p.compression_name()))
            .collect();
        compressions.dedup();
        Ok(Info {
            files: sources.len(),
            pages: sources.iter().map(|s| s.pages.len()).sum(),
            width: page0.width,
            height: page0.height,
            dtype: page0.dtype().map(|d| d.name().to_string()),
            uniform,
            byte_order: first.byte_order.name(),
            compression: compressions.join(", "),
            bigtiff: first.bigtiff,
            fits: first.fits,
            contiguous,
            readable_in_place: in_place,
            bytes: sources.iter().map(|s| s.file_len).sum(),
            history: first
                .history
                .as_deref()
                .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
                .and_then(|h| h["operation_history"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|run| run["operation"].as_str().map(str::to_string))
                .collect(),
        })
    }
}

/// Bins of `info --histogram`: one per grey level of an 8-bit display.
const HISTOGRAM_BINS: usize = 256;

/// What `--stats` and `--histogram` found in the values of a stack (of any format).
struct Values {
    stats: Option<(stats::Stats, Vec<stats::Stats>)>,
    per_page: bool,
    histogram: Option<(usize, Histogram)>,
}

impl Values {
    /// Reads the values `args` asks about: nothing, unless `--stats` or `--histogram`.
    fn of(args: &crate::cli::InfoArgs) -> Result<Values> {
        let opened = (args.stats || args.histogram)
            .then(|| crate::stack::Stack::open(&args.path))
            .transpose()?;
        let stats = opened
            .as_ref()
            .filter(|_| args.stats)
            .map(stats::of_stack)
            .transpose()?;
        let histogram = opened
            .as_ref()
            .filter(|_| args.histogram)
            .map(|stack| -> Result<(usize, Histogram)> {
                let values = crate::preview::page_values(stack, args.page)?;
                Ok((
                    args.page,
                    crate::preview::histogram(&values, HISTOGRAM_BINS),
                ))
            })
            .transpose()?;
        Ok(Values {
            stats,
            per_page: args.per_page,
            histogram,
        })
    }

    fn add_json(&self, value: &mut serde_json::Value) {
        value["stats"] = self.stats.as_ref().map(|(whole, _)| whole.to_json()).into();
        value["pages_stats"] = self
            .stats
            .as_ref()
            .filter(|_| self.per_page)
            .map(|(_, pages)| pages.iter().map(|p| p.to_json()).collect::<Vec<_>>())
            .into();
        value["histogram"] = self
            .histogram
            .as_ref()
            .map(|(page, h)| {
                json!({
                    "page": page,
                    "min": h.min,
                    "max": h.max,
                    "bins": h.counts.len(),
                    "counts": h.counts,
                    "not_finite": h.not_finite,
                })
            })
            .into();
    }

    fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some((whole, pages)) = &self.stats {
            lines.push(format!("values:      {}", whole.line()));
            if self.per_page {
                for (p, page) in pages.iter().enumerate() {
                    lines.push(format!("  page {p}: {}", page.line()));
                }
            }
        }
        if let Some((page, h)) = &self.histogram {
            lines.push(format!(
                "histogram:   page {page}, {} bins from {} to {}{} (bin start: count)",
                h.counts.len(),
                h.min,
                h.max,
                match h.not_finite {
                    0 => String::new(),
                    n => format!(", {n} NaN or infinite values left out"),
                }
            ));
            let width = (h.max - h.min) / h.counts.len() as f64;
            for (b, count) in h.counts.iter().enumerate() {
                lines.push(format!("  {}: {count}", h.min + b as f64 * width));
            }
        }
        lines
    }
}

/// Prints `info` for `args.path`, as text or as one JSON object; with `--stats`, the values'
/// statistics too (per page with `--per-page`); with `--histogram`, one page's histogram.
pub fn print(args: &crate::cli::InfoArgs) -> Result<()> {
    let (path, as_json) = (args.path.as_path(), args.json);
    if crate::stack::hdf5::is_hdf5_input(path) {
        return hdf5::print(args);
    }
    let i = Info::of(path)?;
    let values = Values::of(args)?;
    let dtype = match &i.dtype {
        Ok(d) => d.clone(),
        Err(why) => format!("unsupported ({why})"),
    };
    let text = if as_json {
        let mut value = json!({
            "path": path.display().to_string(),
            "files": i.files,
            "pages": i.pages,
            "width": i.width,
            "height": i.height,
            "dtype": i.dtype.as_ref().ok(),
            "unsupported": i.dtype.as_ref().err(),
            "uniform": i.uniform,
            "byte_order": i.byte_order,
            "compression": i.compression,
            "bigtiff": i.bigtiff,
            "format": if i.fits { "FITS" } else if i.bigtiff { "BigTIFF" } else { "TIFF" },
            "contiguous": i.contiguous,
            "readable_in_place": i.readable_in_place,
            "bytes": i.bytes,
            "history": i.history,
        });
        values.add_json(&mut value);
        value.to_string()
    } else {
        let mut lines = vec![format!("path:        {}", path.display())];
        if i.files > 1 {
            lines.push(format!("files:       {}", i.files));
        }
        lines.extend([
            format!("pages:       {}", i.pages),
            format!("width:       {}", i.width),
            format!("height:      {}", i.height),
            format!("dtype:       {dtype}"),
        ]);
        if !i.uniform {
            lines.push("uniform:     no (pages differ in shape or type)".to_string());
        }
        lines.extend([
            format!("byte order:  {}", i.byte_order),
            format!("compression: {}", i.compression),
            format!(
                "format:      {}",
                if i.fits {
                    "FITS"
                } else if i.bigtiff {
                    "BigTIFF"
                } else {
                    "classic TIFF"
                }
            ),
            // Plain statements of what the file is, not yes/no against a definition.
            format!(
                "pixels:      {}",
                if i.contiguous {
                    "one contiguous array (mappable as a whole)"
                } else {
                    "stored page by page, not as one array"
                }
            ),
            format!(
                "reading:     {}",
                if i.readable_in_place {
                    "in place, without decoding"
                } else {
                    "decoded page by page (compressed, tiled, another byte order, or FITS scaling)"
                }
            ),
            format!("bytes:       {}", i.bytes),
        ]);
        if !i.history.is_empty() {
            lines.push(format!(
                "history:     {} (imfilter's, written in the file)",
                i.history.join(" -> ")
            ));
        }
        lines.extend(values.lines());
        lines.join("\n")
    };
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}
