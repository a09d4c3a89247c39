//! Chains written down: a pipeline file (`run --pipeline steps.toml`) and the history of an
//! earlier result (`run --replay result.json`). Both become the words of `--step`s, parsed by
//! the operations' one clap definition, so there is no second grammar to keep in step.
//!
//! A pipeline file has one `[[step]]` table per operation, in order: `operation` names it and
//! every other key is one of its long flags, without the dashes:
//!
//! ```toml
//! [[step]]
//! operation = "background-correct"
//! flat = ["Flat_Before/", "Flat_After/"]   # a list repeats the flag
//! average = "median"
//!
//! [[step]]
//! operation = "remove-outliers"
//! size = 3
//! threshold = 0.05
//! both = true                              # a flag; false leaves it out
//! ```
//!
//! A history sidecar records each step's operation and the arguments it was given
//! (`"arguments"`), which replay as they were.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use toml_edit::{Item, Value};

use crate::filters::ChainError;

/// One step as words, `["median", "--size", "3"]`, with where it came from for errors.
pub struct StepWords {
    pub label: String,
    pub words: Vec<String>,
}

/// The steps of a pipeline file. A file that cannot be read is an I/O error (exit 1); one
/// that is not a pipeline is a [`ChainError`] (exit 2) naming the file, the step and the key.
pub fn from_toml(path: &Path) -> Result<Vec<StepWords>> {
    let text =
        fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let named = |why: String| ChainError(format!("{}: {why}", path.display()));
    let document: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        let line = e
            .span()
            .map(|span| text[..span.start].lines().count().max(1));
        let at = line.map_or(String::new(), |l| format!("line {l}: "));
        named(format!("{at}not valid TOML: {}", e.message()))
    })?;
    let tables = document
        .get("step")
        .and_then(Item::as_array_of_tables)
        .ok_or_else(|| {
            named("no [[step]] tables: a pipeline is one [[step]] per operation".into())
        })?;
    let mut steps = Vec::new();
    for (k, table) in tables.iter().enumerate() {
        let number = k + 1;
        let operation = table
            .get("operation")
            .and_then(Item::as_str)
            .ok_or_else(|| {
                named(format!(
                    "step {number}: no operation = \"NAME\" (e.g. operation = \"median\")"
                ))
            })?;
        let mut words = vec![operation.to_string()];
        for (key, item) in table.iter().filter(|(key, _)| *key != "operation") {
            let flag = format!("--{}", key.replace('_', "-"));
            let value = item.as_value().ok_or_else(|| {
                named(format!(
                    "step {number} ({operation}): {key}: expected a value"
                ))
            })?;
            let bad = |why: &str| named(format!("step {number} ({operation}): {key}: {why}"));
            match value {
                Value::Boolean(b) => {
                    if *b.value() {
                        words.push(flag);
                    }
                }
                Value::Array(list) => {
                    for v in list.iter() {
                        words.push(flag.clone());
                        words.push(scalar(v).ok_or_else(|| bad("a list of strings or numbers"))?);
                    }
                }
                v => {
                    words.push(flag);
                    words.push(scalar(v).ok_or_else(|| bad("expected a string or a number"))?);
                }
            }
        }
        steps.push(StepWords {
            label: format!("{}: step {number}", path.display()),
            words,
        });
    }
    Ok(steps)
}

/// A string or a number as the word a command line would carry.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.value().clone()),
        Value::Integer(i) => Some(i.value().to_string()),
        Value::Float(f) => Some(f.value().to_string()),
        _ => None,
    }
}

/// The steps an earlier result went through, from its history sidecar, oldest first.
pub fn from_history(path: &Path) -> Result<Vec<StepWords>> {
    let text =
        fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let named = |why: String| ChainError(format!("{}: {why}", path.display()));
    let history: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| named(format!("not an imfilter history (not JSON: {e})")))?;
    let runs = history
        .get("operation_history")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| named("not an imfilter history (no operation_history list)".into()))?;
    let mut steps = Vec::new();
    for (k, run) in runs.iter().enumerate() {
        let number = k + 1;
        let operation = run
            .get("operation")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| named(format!("entry {number} names no operation")))?;
        let arguments = run
            .get("arguments")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| {
                named(format!(
                    "entry {number} ({operation}) has no arguments: it was written by an \
                     imfilter older than replay, or by another program"
                ))
            })?;
        let mut words = vec![operation.to_string()];
        for a in arguments {
            let word = a.as_str().ok_or_else(|| {
                named(format!(
                    "entry {number} ({operation}): an argument is not a string"
                ))
            })?;
            words.push(word.to_string());
        }
        steps.push(StepWords {
            label: format!("{}: entry {number}", path.display()),
            words,
        });
    }
    if steps.is_empty() {
        return Err(named("the history has no entries to replay".into()).into());
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipeline_table_becomes_the_words_of_a_step() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("steps.toml");
        fs::write(
            &path,
            "[[step]]\noperation = \"background-correct\"\nflat = [\"a/\", \"b.tif\"]\n\
             cutoff = 1.5\n\n[[step]]\noperation = \"remove-outliers\"\nsize = 3\nboth = true\n\
             dark = false\n",
        )
        .expect("write");
        let steps = from_toml(&path).expect("parses");
        let words: Vec<Vec<String>> = steps.into_iter().map(|s| s.words).collect();
        assert_eq!(
            words,
            [
                vec![
                    "background-correct",
                    "--flat",
                    "a/",
                    "--flat",
                    "b.tif",
                    "--cutoff",
                    "1.5"
                ],
                vec!["remove-outliers", "--size", "3", "--both"],
            ]
        );
    }
}
