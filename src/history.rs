//! The processing history of a result, in a JSON sidecar beside it.
//!
//! `corrected.tif` gets `corrected.json`, a directory `Tomo_median/` gets `Tomo_median.json`.
//! The file holds `{"operation_history": [ … ]}`, one entry per imfilter run, oldest first,
//! as MantidImaging keeps it: the input's own sidecar (if any) is carried over and this run is
//! appended, so a chain of runs documents itself. The format is in docs/formats.md.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::output::Durability;
use crate::output::names;

/// The sidecar path for a result at `output` (a file or a directory).
pub fn sidecar_path(output: &Path) -> PathBuf {
    let trimmed: PathBuf = output.components().collect();
    let name = trimmed.file_name().unwrap_or_default();
    // The stem is cut where NAME.json would pass NAME_MAX (a 255-byte NAME.tif is valid); the
    // rule is the same for every run, so a chain still finds its input's history.
    let stem = names::shortened(names::tiff_stem(name), names::NAME_MAX - ".json".len());
    trimmed.with_file_name(names::joined(stem, ".json"))
}

/// One run: what was done, with which parameters, to what, into what, when, by which version.
/// `output` is how a later run knows the sidecar is this result's own (see [`prepare`]).
/// `arguments` are the words the step was given (`run --replay` gives them again).
pub fn entry(
    operation: &str,
    parameters: Value,
    arguments: &[String],
    input: &Path,
    output: &Path,
) -> Value {
    json!({
        "operation": operation,
        "parameters": parameters,
        "arguments": arguments,
        "input": input.display().to_string(),
        "output": output.display().to_string(),
        "time": now(),
        "software": crate::run::software(),
    })
}

/// This moment as a history entry's time: RFC 3339, in whole seconds, UTC.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Gives the last `runs` entries of `history` this moment's time: a job's steps, planned when
/// it was prepared, are dated when it is committed, as a local run's are when it ends.
pub fn restamp(history: &mut Value, runs: usize) {
    if let Some(entries) = history["operation_history"].as_array_mut() {
        let first = entries.len().saturating_sub(runs);
        let time = now();
        for entry in &mut entries[first..] {
            entry["time"] = time.clone().into();
        }
    }
}

/// The history as written inside a result: each run without its time and output name, so
/// that one command gives the same file byte for byte whenever and wherever it writes it (the
/// sidecar keeps both).
pub fn embedded(history: &Value) -> Value {
    let mut history = history.clone();
    if let Some(runs) = history["operation_history"].as_array_mut() {
        for run in runs.iter_mut().filter_map(Value::as_object_mut) {
            run.remove("time");
            run.remove("output");
        }
    }
    history
}

/// `value` as JSON text of ASCII characters only (others as `\uXXXX` escapes, which JSON
/// reads back as the same text): what a TIFF ASCII field may hold.
pub fn ascii_json(value: &Value) -> String {
    let text = value.to_string();
    let mut ascii = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                ascii.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    ascii
}

/// The input's history (empty when it has no readable sidecar) with `this_run` appended: one
/// entry per step of the run.
pub fn extended(input: &Path, embedded: Option<&str>, this_run: Vec<Value>) -> Value {
    // The sidecar beside the input, else the history written into the input itself (what
    // came through a pipe or a copy without its sidecar).
    let mut runs = fs::read_to_string(sidecar_path(input))
        .ok()
        .or_else(|| embedded.map(str::to_string))
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|v| {
            v.get("operation_history")
                .and_then(Value::as_array)
                .cloned()
        })
        .unwrap_or_default();
    runs.extend(this_run);
    json!({ "operation_history": runs })
}

/// A history written and synced beside the result under a temporary name, waiting for the
/// result to be committed. Dropping it removes the temporary file.
pub struct PendingSidecar {
    temp: tempfile::NamedTempFile,
    path: PathBuf,
    dir: PathBuf,
    durability: Durability,
}

/// Writes `history` for a result at `output` under a temporary name in the same directory,
/// synced unless the result itself is not (`--no-sync`).
///
/// Done before the work, so that a full disk or an unwritable sidecar is an error while nothing
/// has changed at the output path, and so that after the result's rename only the sidecar's own
/// rename is left (a kill in between leaves the result with its previous sidecar, or none; the
/// new history waits in `.NAME.json.imfilter-XXXXXX`).
///
/// An existing `NAME.json` is replaced only if it is the history imfilter wrote for this same
/// output, or with `force`: the name is common, and the file may be another result's history
/// (`imfilter … Tomo -o Tomo.tif` would replace the input directory's own `Tomo.json`) or
/// something no imfilter wrote.
pub fn prepare(
    output: &Path,
    history: &Value,
    durability: Durability,
    force: bool,
) -> Result<PendingSidecar> {
    let path = sidecar_path(output);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let cannot = || format!("{}: cannot write the history", path.display());
    // What would make the final rename fail is refused now, before the result is committed.
    match fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => bail!(
            "{}: cannot write the history there: it is a directory",
            path.display()
        ),
        Ok(_) if !force && !is_history_of(&path, output) => bail!(
            "{}: exists and is not the history of {}; it is kept (use --force to replace it)",
            path.display(),
            output.display()
        ),
        _ => {}
    }
    let mut temp = tempfile::Builder::new()
        .prefix(&names::temp_prefix(&path))
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(&dir)
        .with_context(cannot)?;
    serde_json::to_writer_pretty(&mut temp, history).with_context(cannot)?;
    temp.write_all(b"\n").with_context(cannot)?;
    if durability == Durability::WaitForDisk {
        temp.as_file().sync_all().with_context(cannot)?;
    }
    Ok(PendingSidecar {
        temp,
        path,
        dir,
        durability,
    })
}

/// Whether the sidecar at `path` is an imfilter history whose last run wrote `output`.
fn is_history_of(path: &Path, output: &Path) -> bool {
    let Some(last) = fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|v| v.get("operation_history")?.as_array()?.last().cloned())
    else {
        return false;
    };
    let written_by_imfilter = last
        .get("software")
        .and_then(Value::as_str)
        .is_some_and(|s| s.starts_with("imfilter "));
    let file_name = |p: &Path| {
        let trimmed: PathBuf = p.components().collect();
        trimmed
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    };
    let wrote = last
        .get("output")
        .and_then(Value::as_str)
        .and_then(|o| file_name(Path::new(o)));
    written_by_imfilter && wrote.is_some() && wrote == file_name(output)
}

impl PendingSidecar {
    /// Moves the history into place, replacing the sidecar of whatever was there before, and
    /// (unless `--no-sync`) makes the rename durable.
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        self.temp
            .persist(&path)
            .map_err(|e| e.error)
            .with_context(|| format!("{}: cannot write the history", path.display()))?;
        if self.durability == Durability::WaitForDisk {
            crate::output::sync_dir(&self.dir);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_replace_the_tiff_extension_or_follow_a_directory() {
        assert_eq!(
            sidecar_path(Path::new("a/corrected.tif")),
            PathBuf::from("a/corrected.json")
        );
        assert_eq!(
            sidecar_path(Path::new("a/X.TIFF")),
            PathBuf::from("a/X.json")
        );
        assert_eq!(
            sidecar_path(Path::new("a/Tomo_median/")),
            PathBuf::from("a/Tomo_median.json")
        );
    }
}
