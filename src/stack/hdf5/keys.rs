//! Which images of an HDF5 dataset are projections, flats and darks: NXtomo's `image_key`
//! (0 projection, 1 flat, 2 dark; other values, such as 3 for an invalid image, are none of
//! them), one value per image.
//!
//! Looked up as NXtomo files and HTTomo's loader place it: beside the data
//! (`/entry/data/image_key` for `/entry/data/data`, `…/detector/image_key` for
//! `…/detector/data`), then in the entry the dataset is in, at
//! `ENTRY/instrument/detector/image_key` (HTTomo's `auto`) and `ENTRY/data/image_key`. A key
//! beside the data with the wrong length is an error; one elsewhere in the entry with the
//! wrong length belongs to another dataset and is passed over. `--keys` overrides the lookup.

use anyhow::{Result, anyhow, bail};

use super::{Dataset3, DatasetPath, one_line};

/// What `--keys` said.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Keys {
    /// The image_key found beside the data, if any.
    #[default]
    Auto,
    /// `--keys none`: every image is a projection; no flats or darks from the dataset.
    Ignore,
    /// `--keys /PATH` (in the input's file) or `--keys FILE:/PATH`.
    Dataset(String),
    /// `--keys 2x10,1x20,0x1800`: one key per image, `KxN` for N images of key K.
    List(Vec<i64>),
}

impl Keys {
    /// Parses `--keys` (clap's value parser).
    pub fn parse(text: &str) -> Result<Keys, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("none") {
            return Ok(Keys::Ignore);
        }
        if text.starts_with('/') || text.contains(":/") {
            return Ok(Keys::Dataset(text.to_string()));
        }
        let mut keys = Vec::new();
        for item in text.split(',') {
            let (key, count) = item
                .trim()
                .split_once(['x', 'X'])
                .unwrap_or((item.trim(), "1"));
            let bad = || {
                format!(
                    "'{item}' is not a key: give 0 (projection), 1 (flat) or 2 (dark), KxN for N \
                     images of key K (2x10,1x20,0x1800), a dataset (/entry/instrument/detector/\
                     image_key), or none"
                )
            };
            let key: i64 = key.trim().parse().map_err(|_| bad())?;
            let count: usize = count.trim().parse().map_err(|_| bad())?;
            if !(0..=2).contains(&key) || count == 0 {
                return Err(bad());
            }
            keys.extend(std::iter::repeat_n(key, count));
        }
        Ok(Keys::List(keys))
    }

    /// The other file `--keys FILE:/PATH` reads the keys from: the result depends on it as
    /// on the dataset's own file (`/PATH` alone is in the input's file).
    pub fn file(&self) -> Option<std::path::PathBuf> {
        match self {
            Keys::Dataset(path) => DatasetPath::parse(std::path::Path::new(path)).map(|d| d.file),
            _ => None,
        }
    }
}

/// As `--keys` takes it back (a list in its `KxN` form), for the history.
impl std::fmt::Display for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Keys::Auto => write!(f, "auto"),
            Keys::Ignore => write!(f, "none"),
            Keys::Dataset(path) => write!(f, "{path}"),
            Keys::List(keys) => {
                let mut runs: Vec<(i64, usize)> = Vec::new();
                for &k in keys {
                    match runs.last_mut() {
                        Some((last, n)) if *last == k => *n += 1,
                        _ => runs.push((k, 1)),
                    }
                }
                let words: Vec<String> = runs.iter().map(|(k, n)| format!("{k}x{n}")).collect();
                write!(f, "{}", words.join(","))
            }
        }
    }
}

/// What an image is, by its image_key value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Projection = 0,
    Flat = 1,
    Dark = 2,
}

impl Role {
    fn plural(self) -> &'static str {
        match self {
            Role::Projection => "projections",
            Role::Flat => "flats",
            Role::Dark => "darks",
        }
    }
}

/// How many images of each kind a dataset's keys mark, and where the keys came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCounts {
    pub projections: usize,
    pub flats: usize,
    pub darks: usize,
    /// Images with another value (NXtomo's 3, invalid): read as none of them.
    pub other: usize,
    /// The image_key dataset, or `--keys`.
    pub from: String,
}

impl KeyCounts {
    fn of(keys: &[i64], from: String) -> KeyCounts {
        let count = |k| keys.iter().filter(|&&v| v == k).count();
        KeyCounts {
            projections: count(0),
            flats: count(1),
            darks: count(2),
            other: keys.iter().filter(|v| !(0..=2).contains(*v)).count(),
            from,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "from": self.from,
            "projections": self.projections,
            "flats": self.flats,
            "darks": self.darks,
            "other": self.other,
        })
    }
}

impl std::fmt::Display for KeyCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} projections, {} flats, {} darks",
            self.projections, self.flats, self.darks
        )?;
        if self.other > 0 {
            write!(f, ", {} other (skipped)", self.other)?;
        }
        write!(f, " by {}", self.from)
    }
}

/// The images of one role, and the counts when the dataset has keys.
pub struct Selection {
    pub images: Vec<usize>,
    pub counts: Option<KeyCounts>,
}

/// The dataset indices of the images with `role`. Without keys every image has it (a
/// dataset given as `--flat` holds flats).
pub fn select(dataset: &Dataset3, keys: &Keys, role: Role) -> Result<Selection> {
    let spec = &dataset.spec;
    let found = match keys {
        Keys::Ignore => None,
        Keys::Auto => find(dataset)?,
        Keys::Dataset(path) => {
            let at = match DatasetPath::parse(std::path::Path::new(path)) {
                Some(other) => other,
                None => DatasetPath {
                    file: spec.file.clone(),
                    dataset: path.clone(),
                },
            };
            let keys =
                read_keys(&at)?.ok_or_else(|| anyhow!("--keys {path}: {at}: no such dataset"))?;
            Some((keys, at.to_string()))
        }
        Keys::List(keys) => Some((keys.clone(), "--keys".to_string())),
    };
    let Some((keys, from)) = found else {
        return Ok(Selection {
            images: (0..dataset.images).collect(),
            counts: None,
        });
    };
    if keys.len() != dataset.images {
        bail!(
            "{spec}: {from} gives {} keys, but the dataset has {} images",
            keys.len(),
            dataset.images
        );
    }
    let images: Vec<usize> = (0..keys.len())
        .filter(|&i| keys[i] == role as i64)
        .collect();
    let counts = KeyCounts::of(&keys, from);
    if images.is_empty() {
        bail!(
            "{spec}: no {} among its {} images ({counts})",
            role.plural(),
            dataset.images
        );
    }
    Ok(Selection {
        images,
        counts: Some(counts),
    })
}

/// The image_key for `dataset` where NXtomo and HTTomo put it (see the module's notes).
fn find(dataset: &Dataset3) -> Result<Option<(Vec<i64>, String)>> {
    let spec = &dataset.spec;
    let group = spec.group();
    let beside = format!("{}/image_key", group.trim_end_matches('/'));
    let entry = spec
        .dataset
        .trim_start_matches('/')
        .split('/')
        .next()
        .filter(|_| spec.dataset.matches('/').count() > 1)
        .map(|e| format!("/{e}"));
    let mut candidates = vec![beside.clone()];
    if let Some(entry) = entry {
        for nexus in [
            format!("{entry}/instrument/detector/image_key"),
            format!("{entry}/data/image_key"),
        ] {
            if nexus != beside {
                candidates.push(nexus);
            }
        }
    }
    for candidate in candidates {
        let at = DatasetPath {
            file: spec.file.clone(),
            dataset: candidate.clone(),
        };
        let Some(keys) = read_keys_in(&dataset.file, &at)? else {
            continue;
        };
        if keys.len() != dataset.images && candidate != beside {
            continue;
        }
        return Ok(Some((keys, candidate)));
    }
    Ok(None)
}

/// The keys in dataset `at` (of another file, or the same one opened again).
fn read_keys(at: &DatasetPath) -> Result<Option<Vec<i64>>> {
    let file = super::open_file(&at.file).map_err(|e| anyhow!("{at}: {e:#}"))?;
    read_keys_in(&file, at)
}

/// The 1-D integer dataset `at.dataset` of `file`, or `None` if there is no dataset there.
fn read_keys_in(file: &hdf5_metno::File, at: &DatasetPath) -> Result<Option<Vec<i64>>> {
    let Ok(dataset) = file.dataset(&at.dataset) else {
        return Ok(None);
    };
    if dataset.ndim() != 1 {
        bail!(
            "{at}: an image_key must be 1-D, one key per image; this one is {}-D",
            dataset.ndim()
        );
    }
    let integer = matches!(
        dataset.dtype().and_then(|t| t.to_descriptor()),
        Ok(hdf5_metno::types::TypeDescriptor::Integer(_)
            | hdf5_metno::types::TypeDescriptor::Unsigned(_))
    );
    if !integer {
        bail!("{at}: an image_key must hold integers (0 projection, 1 flat, 2 dark)");
    }
    dataset
        .read_raw::<i64>()
        .map(Some)
        .map_err(|e| anyhow!("{at}: cannot read: {}", one_line(&e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_lists_repeats_datasets_and_none() {
        assert_eq!(
            Keys::parse("2x2,1,0x3"),
            Ok(Keys::List(vec![2, 2, 1, 0, 0, 0]))
        );
        assert_eq!(Keys::parse("none"), Ok(Keys::Ignore));
        assert_eq!(
            Keys::parse("/entry/data/image_key"),
            Ok(Keys::Dataset("/entry/data/image_key".into()))
        );
        assert_eq!(
            Keys::parse("k.nxs:/key"),
            Ok(Keys::Dataset("k.nxs:/key".into()))
        );
        assert!(Keys::parse("3").is_err());
        assert!(Keys::parse("1x0").is_err());
        assert!(Keys::parse("flat").is_err());
        let list = Keys::parse("2x2,1,0x3,0").expect("keys");
        assert_eq!(list.to_string(), "2x2,1x1,0x4");
        assert_eq!(Keys::parse(&list.to_string()), Ok(list));
    }

    #[test]
    fn keys_from_another_file_name_it() {
        let other = Keys::Dataset("k.nxs:/key".into());
        assert_eq!(other.file(), Some(std::path::PathBuf::from("k.nxs")));
        assert_eq!(Keys::Dataset("/entry/data/image_key".into()).file(), None);
        assert_eq!(Keys::Auto.file(), None);
    }

    #[test]
    fn counts_name_each_kind() {
        let c = KeyCounts::of(&[2, 1, 0, 0, 3], "k".into());
        assert_eq!(
            c.to_string(),
            "2 projections, 1 flats, 1 darks, 1 other (skipped) by k"
        );
    }
}
