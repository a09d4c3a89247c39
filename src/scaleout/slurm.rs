//! `job slurm`: the job prepared, then one sbatch job array per phase and a commit job, each
//! depending on the one before (`--dependency=afterok:ID`, which for an array means every
//! task of it succeeded). Nothing of imfilter's own runs on the nodes but `imfilter job run`;
//! Slurm schedules, requeues and logs. The scripts stay in `JOBDIR/slurm/`, so failed tasks
//! can be resubmitted by hand (`sbatch --array=3,5 JOBDIR/slurm/images.sh`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};

use super::SlurmArgs;
use super::manifest::Manifest;
use super::prepare;
use crate::cli::Cli;

/// Prepares the job, writes its scripts and submits them (or prints the commands).
pub fn submit(args: &SlurmArgs, cli: &Cli) -> Result<()> {
    let dir = prepare::prepare(&args.prepare, cli)?;
    let m = Manifest::load(&dir)?;
    let imfilter = match &args.imfilter {
        Some(p) => {
            std::path::absolute(p).with_context(|| format!("{}: cannot resolve", p.display()))?
        }
        None => std::env::current_exe().context("cannot find this imfilter's path")?,
    };
    let scripts = dir.join("slurm");
    let logs = dir.join("logs");
    for d in [&scripts, &logs] {
        fs::create_dir_all(d).with_context(|| format!("{}: cannot create", d.display()))?;
    }
    let q = |p: &Path| quote(&p.to_string_lossy());
    let mut batches: Vec<(String, PathBuf)> = Vec::new();
    for (k, phase) in m.phases.iter().enumerate() {
        let mut lines = header(args, &format!("imfilter-{}", phase.name), k > 0);
        lines.push(format!("#SBATCH --array=0-{}", phase.shards.len() - 1));
        lines.push(format!(
            "#SBATCH --output={}",
            q(&logs.join(format!("{}-%a.log", phase.name)))?
        ));
        lines.push(String::new());
        // The workers match the CPUs Slurm gave the task.
        lines.push(format!(
            "exec {} ${{SLURM_CPUS_PER_TASK:+-j \"$SLURM_CPUS_PER_TASK\"}} --progress plain job \
             run {} --phase {} --shard \"$SLURM_ARRAY_TASK_ID\"",
            q(&imfilter)?,
            q(&dir)?,
            quote(&phase.name)?
        ));
        let path = scripts.join(format!("{}.sh", phase.name));
        write_script(&path, &lines)?;
        batches.push((phase.name.clone(), path));
    }
    let mut lines = header(args, "imfilter-commit", true);
    lines.push(format!("#SBATCH --output={}", q(&logs.join("commit.log"))?));
    lines.push(String::new());
    lines.push(format!("exec {} job commit {}", q(&imfilter)?, q(&dir)?));
    let path = scripts.join("commit.sh");
    write_script(&path, &lines)?;
    batches.push(("commit".into(), path));

    if args.dry_run {
        println!("# job folder: {}", dir.display());
        let mut previous: Option<String> = None;
        for (name, script) in &batches {
            let var = name.replace('-', "_");
            let dependency = previous
                .as_ref()
                .map(|p| format!("--dependency=afterok:${p} "))
                .unwrap_or_default();
            println!(
                "{var}=$(sbatch --parsable {dependency}{} | cut -d';' -f1)",
                q(script)?
            );
            previous = Some(var);
        }
        return Ok(());
    }
    println!("{}", dir.display());
    let mut previous: Option<String> = None;
    for (name, script) in &batches {
        let id = sbatch(script, previous.as_deref())?;
        println!("{name} {id}");
        previous = Some(id);
    }
    Ok(())
}

/// The `#SBATCH` lines every script shares.
fn header(args: &SlurmArgs, name: &str, dependent: bool) -> Vec<String> {
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!("#SBATCH --job-name={name}"),
    ];
    if let Some(p) = &args.partition {
        lines.push(format!("#SBATCH --partition={p}"));
    }
    if let Some(t) = &args.time {
        lines.push(format!("#SBATCH --time={t}"));
    }
    if let Some(c) = args.cpus_per_task {
        lines.push(format!("#SBATCH --cpus-per-task={c}"));
    }
    if let Some(a) = &args.account {
        lines.push(format!("#SBATCH --account={a}"));
    }
    if dependent {
        // A failed task leaves the later phases waiting for ever otherwise; they are
        // submitted again once the failed tasks are rerun (docs/scale-out.md).
        lines.push("#SBATCH --kill-on-invalid-dep=yes".into());
    }
    lines
}

fn write_script(path: &Path, lines: &[String]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, lines.join("\n") + "\n")
        .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(0o755)))
        .with_context(|| format!("{}: cannot write", path.display()))
}

fn quote(word: &str) -> Result<String> {
    shlex::try_quote(word)
        .map(|q| q.into_owned())
        .map_err(|e| anyhow!("{word}: cannot be quoted for a shell script: {e}"))
}

/// Submits `script` (after `after` succeeded), returning its job id.
fn sbatch(script: &Path, after: Option<&str>) -> Result<String> {
    let mut command = Command::new("sbatch");
    command.arg("--parsable");
    if let Some(id) = after {
        command.arg(format!("--dependency=afterok:{id}"));
    }
    command.arg(script);
    let out = command.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow!(
            "sbatch: not found; run imfilter job slurm where Slurm's commands are (a login \
             node), or give --dry-run to print the commands"
        ),
        _ => anyhow!(e).context("sbatch: cannot run"),
    })?;
    if !out.status.success() {
        bail!(
            "{}: sbatch refused it: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // `--parsable` prints `ID` or `ID;CLUSTER`.
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("{}: sbatch printed no job id: {text}", script.display());
    }
    Ok(id)
}
