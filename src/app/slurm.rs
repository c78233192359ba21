//! `windtunnel slurm`: the workflow around the Slurm scripts `runner::slurm` renders: load
//! and prepare the sweep, lay out its folder, write the scripts and optionally submit them.

use crate::runner::slurm::{check, default_grace_s, submit, time_s, write, SlurmOptions};
use crate::{runner, UserError};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// What `windtunnel slurm` was asked for (the CLI flags).
#[derive(Clone, Debug)]
pub struct Request {
    pub sweep: PathBuf,
    pub results: PathBuf,
    pub shards: Option<usize>,
    pub partition: Option<String>,
    pub time: String,
    pub cpus: usize,
    pub mem: Option<String>,
    pub gpus: Option<usize>,
    pub grace_s: Option<u64>,
    pub out: Option<PathBuf>,
    pub submit: bool,
}

/// `windtunnel slurm`: prepares the data (tokenized into the cache here, once, rather than by
/// every array task) and the sweep folder (so `status` lists every run as pending at once),
/// writes the scripts and, with `submit`, submits them. Prints what it did.
pub fn command(req: &Request) -> Result<i32> {
    let (sweep, data) = super::sweep::load_and_prepare(&req.sweep)?;
    eprint!("{data}");
    runner::plan::check_backend(&sweep)?;
    let n_runs = sweep.runs.len();
    let shards = req.shards.unwrap_or(n_runs.min(8)).max(1);
    if req.shards == Some(0) || req.cpus == 0 {
        bail!(UserError("--shards and --cpus must be at least 1".into()));
    }
    // Before time_s, whose parse would accept a `+`.
    if !req.time.chars().all(|c| c.is_ascii_digit() || c == ':' || c == '-') {
        bail!(UserError(format!("--time {:?}: expected HH:MM:SS, D-HH:MM:SS or minutes", req.time)));
    }
    let limit = time_s(&req.time)?;
    let results = std::path::absolute(&req.results)?;
    let dir = crate::store::SweepDir::new(&results, &sweep.name);
    let out_dir = std::path::absolute(req.out.clone().unwrap_or_else(|| dir.root.join("slurm")))?;
    let o = SlurmOptions {
        sweep_name: sweep.name.clone(),
        sweep_file: out_dir.join("sweep.toml"),
        results,
        exe: std::env::current_exe()?.canonicalize()?,
        out_dir,
        shards,
        partition: req.partition.clone(),
        time: req.time.clone(),
        cpus: req.cpus,
        mem: req.mem.clone(),
        gpus: req.gpus,
        grace_s: req.grace_s.unwrap_or_else(|| default_grace_s(limit)),
    };
    if o.grace_s >= limit {
        bail!(UserError(format!("--grace {} s is not shorter than --time {}", o.grace_s, req.time)));
    }
    // Before anything is written: the sweep folder is made by `prepare` below.
    check(&o)?;
    runner::prepare(&sweep, &dir)?;
    let text = std::fs::read(&req.sweep).with_context(|| format!("reading {}", req.sweep.display()))?;
    let (a, m) = write(&o, &text)?;
    let pending = sweep.runs.iter().filter(|r| !dir.run(&r.run_id()).is_done()).count();
    println!("sweep `{}`: {} runs ({} pending) in {} shard(s)", sweep.name, n_runs, pending, shards);
    if shards > n_runs {
        eprintln!("note: {shards} shards for {n_runs} runs: {} task(s) will have nothing to do", shards - n_runs);
    }
    println!("array: {}\nmerge: {}", a.display(), m.display());
    if req.submit {
        let (ja, jm) = submit(&a, &m)?;
        println!("array job: {ja}\nmerge job: {jm}");
        println!("follow it with: {} status {}", o.exe.display(), dir.root.display());
    } else {
        println!("submit with: sbatch {}  (then merge.sbatch with --dependency=afterany:<array job id>)", a.display());
    }
    Ok(0)
}
