//! `imfilter info` for HDF5: the 3-D datasets of a file (`info scan.nxs`), or one dataset as
//! the stack imfilter reads (`info scan.nxs:/entry/data/data`, with `--stats` too).

use std::io::Write;
use std::path::Path;

use anyhow::{Result, bail};
use serde_json::json;

use crate::stack::hdf5::{self, Dataset3, DatasetPath, KeyCounts, Keys, Reading, Role};
use crate::stack::ifd::ByteOrder;

/// How far into nested groups the listing goes, and how many objects it visits: a file
/// whose links loop, or with millions of entries, still gets a listing in bounded time.
const MAX_DEPTH: usize = 32;
const MAX_OBJECTS: usize = 100_000;

/// One 3-D dataset as the listing shows it.
struct Described {
    dataset: String,
    shape: [usize; 3],
    dtype: String,
    layout: String,
    /// Read in place from the mapped file, without copying.
    mapped: bool,
    keys: Option<KeyCounts>,
}

impl Described {
    fn of(d: &Dataset3) -> Result<Described> {
        let byte_order = match d.byte_order {
            ByteOrder::Little => "little-endian",
            ByteOrder::Big => "big-endian",
        };
        let reading = d.reading(&[]);
        let plain = matches!(reading, Reading::Runs(_));
        let mapped = plain && d.byte_order == ByteOrder::native();
        let chunk = d
            .dataset
            .chunk()
            .map(|c| c.iter().map(usize::to_string).collect::<Vec<_>>().join("x"));
        let stored = match (d.offset, &chunk) {
            (Some(_), _) => "contiguous".to_string(),
            (None, Some(c)) => format!("chunked {c}"),
            (None, None) => format!("{:?}", d.dataset.layout()).to_lowercase(),
        };
        let layout = match (plain, mapped) {
            (true, true) => format!("{stored} (read in place from the mapped file)"),
            (true, false) => format!("{stored}, {byte_order} (mapped, byte-swapped when read)"),
            (false, _) => {
                let filters: Vec<String> = d.dataset.filters().iter().map(filter_name).collect();
                let by = match reading {
                    Reading::Direct(_) => "decoded by imfilter, in parallel",
                    _ => "decoded by the HDF5 library, one image at a time",
                };
                match filters.is_empty() {
                    true => format!("{stored} ({by})"),
                    false => format!("{stored}, {} ({by})", filters.join("+")),
                }
            }
        };
        let keys = hdf5::keys::select(d, &Keys::Auto, Role::Projection)
            .ok()
            .and_then(|s| s.counts);
        Ok(Described {
            dataset: d.spec.dataset.clone(),
            shape: [d.images, d.height, d.width],
            dtype: d.dtype.name().to_string(),
            layout,
            mapped,
            keys,
        })
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "dataset": self.dataset,
            "images": self.shape[0],
            "height": self.shape[1],
            "width": self.shape[2],
            "dtype": self.dtype,
            "layout": self.layout,
            "readable_in_place": self.mapped,
            "image_key": self.keys.as_ref().map(KeyCounts::to_json),
        })
    }

    fn line(&self) -> String {
        let [n, h, w] = self.shape;
        let mut line = format!(
            "{}  {n} x {h} x {w}  {}  {}",
            self.dataset, self.dtype, self.layout
        );
        if let Some(keys) = &self.keys {
            line.push_str(&format!("  image_key: {keys}"));
        }
        line
    }
}

fn filter_name(filter: &hdf5_metno::filters::Filter) -> String {
    use hdf5_metno::filters::Filter;
    match filter {
        Filter::Deflate(level) => format!("gzip({level})"),
        Filter::Shuffle => "shuffle".into(),
        Filter::Fletcher32 => "fletcher32".into(),
        Filter::SZip(..) => "szip".into(),
        Filter::NBit => "nbit".into(),
        Filter::ScaleOffset(_) => "scaleoffset".into(),
        Filter::LZF => "lzf".into(),
        Filter::User(id, _) => format!("filter {id}"),
    }
}

/// Prints `info` for an HDF5 path: `FILE:/DATASET` as a stack, `FILE` as a list of datasets.
pub fn print(args: &crate::cli::InfoArgs) -> Result<()> {
    let path = args.path.as_path();
    let text = match DatasetPath::parse(path) {
        Some(spec) => dataset_text(path, &spec, args.json, &super::Values::of(args)?)?,
        None if args.stats || args.histogram => bail!(crate::cli::UsageError(format!(
            "{}: --stats and --histogram read one dataset: name it as FILE:/DATASET (imfilter \
             info {} lists them)",
            path.display(),
            path.display()
        ))),
        None => file_text(path, args.json)?,
    };
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}

fn dataset_text(
    path: &Path,
    spec: &DatasetPath,
    as_json: bool,
    values: &super::Values,
) -> Result<String> {
    let described = Described::of(&Dataset3::open(spec)?)?;
    if as_json {
        let mut value = described.to_json();
        value["path"] = path.display().to_string().into();
        values.add_json(&mut value);
        return Ok(value.to_string());
    }
    let [n, h, w] = described.shape;
    let mut lines = vec![
        format!("path:        {}", path.display()),
        format!("images:      {n}"),
        format!("width:       {w}"),
        format!("height:      {h}"),
        format!("dtype:       {}", described.dtype),
        format!("layout:      {}", described.layout),
        "format:      HDF5".to_string(),
    ];
    if let Some(keys) = &described.keys {
        lines.push(format!(
            "image_key:   {keys} (commands read the projections; background-correct takes the \
             flats and darks)"
        ));
    }
    lines.extend(values.lines());
    Ok(lines.join("\n"))
}

fn file_text(path: &Path, as_json: bool) -> Result<String> {
    let file = hdf5::open_file(path).map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?;
    let mut found = Vec::new();
    let mut visited = Vec::new();
    walk(&file, "", 0, &mut visited, &mut found);
    let mut stacks = Vec::new();
    let mut refused = Vec::new();
    let mut others = 0;
    for (name, ndim) in found {
        if ndim != 3 {
            others += 1;
            continue;
        }
        let spec = DatasetPath {
            file: path.to_path_buf(),
            dataset: name.clone(),
        };
        match Dataset3::open(&spec).and_then(|d| Described::of(&d)) {
            Ok(d) => stacks.push(d),
            Err(e) => refused.push(format!("{e:#}")),
        }
    }
    if as_json {
        return Ok(json!({
            "path": path.display().to_string(),
            "format": "HDF5",
            "datasets": stacks.iter().map(Described::to_json).collect::<Vec<_>>(),
            "unsupported": refused,
            "other_datasets": others,
        })
        .to_string());
    }
    let mut lines = vec![format!(
        "{}: HDF5, {} 3-D dataset{} (read one as {}:DATASET)",
        path.display(),
        stacks.len(),
        if stacks.len() == 1 { "" } else { "s" },
        path.display()
    )];
    lines.extend(stacks.iter().map(|d| format!("  {}", d.line())));
    lines.extend(refused.iter().map(|r| format!("  unsupported: {r}")));
    if others > 0 {
        lines.push(format!("  ({others} datasets that are not 3-D not listed)"));
    }
    Ok(lines.join("\n"))
}

/// Every dataset under `group` (as absolute paths) with its number of dimensions. Hard links
/// make one object reachable by several paths (NXtomo's /entry/data/data is
/// /entry/instrument/detector/data): each path is listed, each group walked once.
fn walk(
    group: &hdf5_metno::Group,
    prefix: &str,
    depth: usize,
    visited: &mut Vec<hdf5_metno::LocationToken>,
    found: &mut Vec<(String, usize)>,
) {
    if depth > MAX_DEPTH || visited.len() + found.len() > MAX_OBJECTS {
        return;
    }
    if let Ok(info) = group.loc_info() {
        if visited.contains(&info.token) {
            return;
        }
        visited.push(info.token);
    }
    let Ok(names) = group.member_names() else {
        return;
    };
    for name in names {
        let path = format!("{prefix}/{name}");
        if let Ok(dataset) = group.dataset(&name) {
            found.push((path, dataset.ndim()));
        } else if let Ok(sub) = group.group(&name) {
            walk(&sub, &path, depth + 1, visited, found);
        }
    }
}
