//! The plan: what each run costs (parameters, tokens, FLOPs, estimated seconds), which runs
//! are already done, and how the grid is split into shards. Pure functions of the sweep and
//! the run folders; `plan` never trains.

use crate::flops;
use crate::spec::config::{RunConfig, Sweep};
use crate::store::SweepDir;
use anyhow::{bail, Result};

/// Throughput model of one job on one CPU core with the flex backend and the fused kernels,
/// measured on the 2-core development machine (Intel Xeon, AVX-512; see README "Benchmarks"):
/// sustained matmul-bound GFLOP/s plus a fixed per-step cost for the small ops of a tiny model.
/// Fitted (least squares) to 21 runs of the quickstart's recipe (six sizes x 5-40 tokens per parameter) (2 jobs on 2 cores, batch 16 x 64
/// tokens; 2.8 ms/step at width 16 depth 1, 18 ms/step at width 80 depth 2): 77 GFLOP/s and
/// 2.0 ms/step; rounded down here so estimates err long (the fit's largest error was 35%,
/// on the smallest runs).
pub const CPU_GFLOPS_PER_JOB: f64 = 70.0;
pub const CPU_STEP_OVERHEAD_S: f64 = 0.002;
/// Per-run startup (process spawn, model init, validation set generation).
pub const RUN_STARTUP_S: f64 = 0.1;

#[derive(Clone, Debug)]
pub struct PlanRow {
    pub id: String,
    pub width: usize,
    pub depth: usize,
    pub lr: f64,
    pub batch_size: usize,
    pub params: u64,
    pub tokens: u64,
    pub flops: f64,
    pub est_s: f64,
    pub done: bool,
    /// The run's mixture, "markov 0.15, grammar 0.85".
    pub mix: String,
    /// Peak memory of the run (`flops::memory`), bytes: all of it on the CPU backend.
    pub memory: flops::memory::RunMemory,
    /// Disk the run keeps once finished (evals, metrics, WSD snapshots) and the extra it
    /// needs while it trains (three checkpoints at a save: new, current, previous), bytes.
    pub disk_kept: f64,
    pub disk_training: f64,
}

/// The share of a run's steps it trains itself: a WSD branch starts at its branch point.
pub fn trained_share(r: &RunConfig) -> f64 {
    match r.branch.as_ref().and_then(|b| b.from) {
        Some(from) => (r.steps - from.min(r.steps)) as f64 / r.steps.max(1) as f64,
        None => 1.0,
    }
}

/// Estimated wall seconds of one run on one job (of the part it trains itself).
pub fn estimate_s(r: &RunConfig) -> f64 {
    estimate_full_s(r) * trained_share(r)
}

fn estimate_full_s(r: &RunConfig) -> f64 {
    let train = flops::train_flops(r.width, r.depth, r.seq_len, r.vocab, r.tokens);
    // validation forward passes: 1/3 of training FLOPs per token, per domain, per eval
    let evals = (r.steps / r.eval_every.max(1) + 1) as f64;
    let eval = evals
        * (r.eval_tokens * r.domains.len() as u64) as f64
        * flops::flops_per_token(r.width, r.depth, r.seq_len, r.vocab)
        / 3.0;
    (train + eval) / (CPU_GFLOPS_PER_JOB * 1e9) + r.steps as f64 * CPU_STEP_OVERHEAD_S + RUN_STARTUP_S
}

/// This machine's pace against the throughput model: the wall seconds its finished runs took
/// over their estimates. The model's constants were measured on one machine under one load; on
/// another the same runs take 1.5x to 2x as long (the quickstart's check: 12 min estimated, 22
/// min trained), so estimates scale by what was measured here when anything was.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pace {
    /// Measured wall seconds / estimated seconds, summed over `runs`.
    pub factor: f64,
    pub runs: usize,
    /// Measured in the sweep's own folder (else in the other sweep folders beside it).
    pub own: bool,
}

/// The pace of the sweep's own finished runs or, when it has none (a new sweep, a `check`),
/// of those in the other folders beside it. Only runs this host trained count: a results
/// folder shared with cluster nodes holds runs of other machines. Runs under a few seconds in
/// all say nothing beyond their start-up, so they alone give no pace. (A folder beside it
/// trained on another backend would mislead; the sweep's own pace takes over as soon as its
/// own runs have measured one.)
pub fn measured_pace(dir: &SweepDir) -> Option<Pace> {
    if let Some(p) = pace_of(std::slice::from_ref(dir), true) {
        return Some(p);
    }
    let parent = dir.root.parent()?;
    let others: Vec<SweepDir> = std::fs::read_dir(parent)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir() && *p != dir.root)
        .map(|p| SweepDir::at(&p))
        .collect();
    pace_of(&others, false)
}

fn pace_of(dirs: &[SweepDir], own: bool) -> Option<Pace> {
    let me = crate::store::hostname();
    let (mut wall, mut est, mut runs) = (0.0f64, 0.0f64, 0usize);
    for r in dirs.iter().flat_map(|d| d.list_runs().unwrap_or_default()) {
        let Some(done) = r.read_summary() else { continue };
        let Ok(config) = crate::store::read_json::<RunConfig>(&r.config_json()) else { continue };
        if r.read_status().is_some_and(|s| s.host != me) {
            continue;
        }
        // DONE's wall time covers the last attempt only: from the branch point of a WSD branch,
        // from the checkpoint of a resumed run. Its tokens per second say how much that was.
        let share = (done.tokens_per_s * done.wall_s / done.tokens.max(1) as f64).clamp(0.0, 1.0);
        let e = estimate_full_s(&config) * share;
        if done.wall_s > 0.0 && done.wall_s.is_finite() && e > 0.0 {
            (wall, est, runs) = (wall + done.wall_s, est + e, runs + 1);
        }
    }
    (est >= 10.0).then(|| Pace { factor: wall / est, runs, own })
}

/// Wall seconds of runs taking `secs` each on `jobs` workers, each free worker taking the
/// largest run left (how `run` schedules). A run is never split: one run on two jobs takes its
/// own time, not half. WSD branches that wait for their trunk can take longer.
pub fn makespan(secs: &[f64], jobs: usize) -> f64 {
    let mut order = secs.to_vec();
    order.sort_by(|a, b| b.total_cmp(a));
    let mut load = vec![0.0f64; jobs.max(1)];
    for s in order {
        let k = (0..load.len()).min_by(|&a, &b| load[a].total_cmp(&load[b])).unwrap_or(0);
        load[k] += s;
    }
    load.into_iter().fold(0.0, f64::max)
}

/// How an estimate was scaled, for the lines that print one.
pub fn pace_note(pace: Option<Pace>) -> String {
    match pace {
        Some(p) => format!(
            "at this machine's measured pace: {:.2}x the built-in model's time over {} finished run(s){}",
            p.factor,
            p.runs,
            if p.own { "" } else { " of other sweeps here" }
        ),
        None => format!("at the built-in model's {CPU_GFLOPS_PER_JOB} GFLOP/s per job; no finished run here to measure this machine by"),
    }
}

/// Every run's plan row; estimated times scale by `pace` (`measured_pace`) when there is one.
pub fn rows(sweep: &Sweep, dir: &SweepDir, pace: Option<Pace>) -> Vec<PlanRow> {
    let scale = pace.map_or(1.0, |p| p.factor);
    sweep
        .runs
        .iter()
        .map(|r| {
            let id = r.run_id();
            PlanRow {
                // A DONE run with a damaged record is trained again by `run`: pending here.
                done: matches!(dir.run(&id).check_done(r.steps), crate::store::DoneCheck::Good(_)),
                width: r.width,
                depth: r.depth,
                lr: r.lr,
                batch_size: r.batch_size,
                params: flops::params(r.width, r.depth, r.vocab),
                tokens: r.tokens,
                flops: flops::train_flops(r.width, r.depth, r.seq_len, r.vocab, r.tokens) * trained_share(r),
                est_s: estimate_s(r) * scale,
                mix: r.mix.iter().map(|(k, v)| format!("{k} {v:.3}")).collect::<Vec<_>>().join(", "),
                memory: flops::memory::run_memory(&mem_shape(r)),
                disk_kept: disk_kept(sweep, r),
                disk_training: 3.0 * flops::memory::checkpoint_bytes(r.width, r.depth, r.seq_len, r.vocab),
                id,
            }
        })
        .collect()
}

/// Disk a finished run keeps: its evals.jsonl, metrics.jsonl (at most about 51 lines) and,
/// for a WSD trunk, one snapshot per branch point.
fn disk_kept(sweep: &Sweep, r: &RunConfig) -> f64 {
    let evals = (r.steps / r.eval_every.max(1) + 1) as f64;
    let snapshots = match &r.branch {
        Some(b) if b.from.is_none() => sweep
            .runs
            .iter()
            .filter(|o| o.branch.as_ref().is_some_and(|ob| ob.family == b.family && ob.from.is_some()))
            .count(),
        _ => 0,
    } as f64;
    evals * flops::memory::eval_line_bytes(r.domains.len())
        + 51.0 * 200.0
        + snapshots * flops::memory::checkpoint_bytes(r.width, r.depth, r.seq_len, r.vocab)
}

/// The memory a run takes in the limit that `check_resources` holds it to: all of it on the
/// CPU backend; on CUDA only the host part (the device part is the GPU's, not checked yet).
fn memory_of(sweep: &Sweep, m: &flops::memory::RunMemory) -> f64 {
    match sweep.backend {
        crate::spec::config::Backend::Cpu => m.total(),
        crate::spec::config::Backend::Cuda => m.host(),
    }
}

/// What this machine can hold: memory (bytes, where the figure comes from) and free disk
/// under the results folder.
#[derive(Clone, Debug, PartialEq)]
pub struct Resources {
    pub memory: Option<(f64, String)>,
    pub disk_free: Option<(f64, String)>,
}

impl Resources {
    /// This machine's, for a sweep writing into `dir`.
    pub fn here(dir: &SweepDir) -> Resources {
        Resources {
            memory: super::sys::memory_limit(),
            disk_free: super::sys::disk_free(&dir.root)
                .map(|b| (b, format!("free on the disk of {}", dir.root.display()))),
        }
    }
}

/// Refuses (bad input, exit 2) a sweep with a pending run that cannot fit in this machine's
/// memory, or whose pending runs cannot fit their files on the results disk, saying the
/// estimate and the limit; returns a warning when `jobs` of its largest runs at once would not
/// fit in memory (each job is its own process), with the number of jobs that would.
pub fn check_resources(sweep: &Sweep, rows: &[PlanRow], jobs: usize, res: &Resources) -> Result<Option<String>> {
    use flops::memory::bytes_text;
    let pending: Vec<&PlanRow> = rows.iter().filter(|r| !r.done).collect();
    if let Some((limit, what)) = &res.memory {
        let too_big: Vec<String> = pending
            .iter()
            .filter(|r| memory_of(sweep, &r.memory) > *limit)
            .map(|r| {
                let m = &r.memory;
                format!(
                    "  run {} (width {}, depth {}): about {} (weights, gradients and AdamW state {}, activations at \
                     micro-batch {}, evaluation {}, validation ids {})",
                    r.id,
                    r.width,
                    r.depth,
                    bytes_text(memory_of(sweep, m)),
                    bytes_text(m.weights + m.grads + m.optimizer),
                    bytes_text(m.activations),
                    bytes_text(m.eval_forward),
                    bytes_text(m.eval_ids)
                )
            })
            .collect();
        if !too_big.is_empty() {
            bail!(crate::UserError(format!(
                "sweep `{}`: {} run(s) need more memory than this machine has ({}, {what}):\n{}\nmake them smaller \
                 (width, depth, seq_len, batch_size or micro_batch, eval_tokens); nothing trained",
                sweep.name,
                too_big.len(),
                bytes_text(*limit),
                too_big.join("\n")
            )));
        }
    }
    let mut sizes: Vec<(f64, f64)> = pending.iter().map(|r| (memory_of(sweep, &r.memory), r.disk_training)).collect();
    if let Some((free, what)) = &res.disk_free {
        let mut peaks: Vec<f64> = sizes.iter().map(|s| s.1).collect();
        peaks.sort_by(|a, b| b.total_cmp(a));
        let need: f64 = pending.iter().map(|r| r.disk_kept).sum::<f64>() + peaks.iter().take(jobs.max(1)).sum::<f64>();
        if need > *free {
            bail!(crate::UserError(format!(
                "sweep `{}`: its {} pending run(s) need about {} of disk (records and WSD snapshots kept, and three \
                 checkpoints of each of the {} largest while they train), but {} is {what}; free some or write the \
                 results elsewhere (--results)",
                sweep.name,
                pending.len(),
                bytes_text(need),
                jobs.max(1).min(pending.len()),
                bytes_text(*free)
            )));
        }
    }
    let Some((limit, what)) = &res.memory else { return Ok(None) };
    sizes.sort_by(|a, b| b.0.total_cmp(&a.0));
    let at_once: f64 = sizes.iter().take(jobs.max(1)).map(|s| s.0).sum();
    if at_once <= *limit || jobs <= 1 {
        return Ok(None);
    }
    let mut fit = 0;
    let mut sum = 0.0;
    for s in &sizes {
        sum += s.0;
        if sum > *limit {
            break;
        }
        fit += 1;
    }
    Ok(Some(format!(
        "warning: --jobs {jobs} trains the {jobs} largest runs at once, about {} together, more than this machine's {} \
         ({what}); --jobs {} fits\n",
        bytes_text(at_once),
        bytes_text(*limit),
        fit.max(1)
    )))
}

/// A note when the sweep file lies in a results folder other than the one its runs go to
/// (`plan rren/foo/sweep.toml --results rren` for a folder copied from `tiny`): the runs
/// finished there are not the ones this plan counts, and `run` would train them all again
/// into `dir`.
pub fn elsewhere_note(sweep: &Sweep, dir: &SweepDir) -> Option<String> {
    let file = std::path::Path::new(&sweep.path);
    let home = file.parent().map(|p| if p.as_os_str().is_empty() { std::path::Path::new(".") } else { p })?;
    if !home.join("runs").is_dir() {
        return None;
    }
    let same = match (std::fs::canonicalize(home), std::fs::canonicalize(&dir.root)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return None;
    }
    let there = SweepDir::at(home);
    let done = sweep
        .runs
        .iter()
        .filter(|r| matches!(there.run(&r.run_id()).check_done(r.steps), crate::store::DoneCheck::Good(_)))
        .count();
    (done > 0).then(|| {
        format!(
            "note: {} lies in the results folder {}, which holds {done} finished run(s) of this sweep, but its runs are \
             looked for (and trained) in {}: the folder holding a sweep's runs must be RESULTS/<sweep name> \
             (here {}/{})\n",
            file.display(),
            home.display(),
            dir.root.display(),
            home.parent().map_or(".".into(), |p| p.display().to_string()),
            sweep.name
        )
    })
}

/// Parses "I/N" (0-based I < N).
pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let bad = || crate::UserError(format!("--shard `{s}`: expected I/N with 0 <= I < N, e.g. 0/4"));
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || i >= n {
        return Err(bad().into());
    }
    Ok((i, n))
}

/// The shard from `--shard` or, when absent, from Slurm's array variables.
pub fn shard_from_env(flag: Option<&str>) -> Result<Option<(usize, usize)>> {
    if let Some(s) = flag {
        return parse_shard(s).map(Some);
    }
    match (std::env::var("SLURM_ARRAY_TASK_ID"), std::env::var("SLURM_ARRAY_TASK_COUNT")) {
        (Ok(i), Ok(n)) => {
            let min: usize = std::env::var("SLURM_ARRAY_TASK_MIN").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
            let i: usize = i.parse().unwrap_or(0);
            parse_shard(&format!("{}/{}", i.saturating_sub(min), n)).map(Some)
        }
        _ => Ok(None),
    }
}

/// Deterministic cost-balanced assignment: runs sorted by estimated cost (largest first, ties
/// by id) go greedily to the least-loaded shard. Every machine computes the same split.
pub fn shard_of(runs: &[RunConfig], n: usize) -> Vec<usize> {
    // A WSD branch family stays on one shard: its branches start from the trunk's snapshots,
    // which only exist where the trunk trains (elsewhere they would train from scratch).
    let mut groups: std::collections::BTreeMap<String, (f64, Vec<usize>)> = Default::default();
    for (k, r) in runs.iter().enumerate() {
        let key = r.branch.as_ref().map_or_else(|| r.run_id(), |b| format!("family-{}", b.family));
        let g = groups.entry(key).or_default();
        g.0 += estimate_s(r);
        g.1.push(k);
    }
    let mut order: Vec<(f64, String, Vec<usize>)> = groups.into_iter().map(|(key, (c, ks))| (c, key, ks)).collect();
    order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut load = vec![0.0f64; n];
    let mut out = vec![0; runs.len()];
    for (cost, _, ks) in order {
        let s = (0..n).min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b))).unwrap();
        load[s] += cost;
        for k in ks {
            out[k] = s;
        }
    }
    out
}

/// Renders the plan table (Markdown-compatible) with totals.
pub fn render(sweep: &Sweep, rows: &[PlanRow], jobs: usize, pace: Option<Pace>) -> String {
    let mut s = format!("plan for sweep `{}` ({} runs, backend {})\n\n", sweep.name, rows.len(), sweep.backend);
    // The mixture column only when the sweep varies it.
    let mixes = rows.iter().map(|r| r.mix.as_str()).collect::<std::collections::BTreeSet<_>>().len() > 1;
    let (mh, ml) = if mixes { (" mixture |", "---|") } else { ("", "") };
    s += &format!(
        "| # | run id | width | depth | lr | batch |{mh} params N | tokens D | FLOPs | est. time | memory | status |\n"
    );
    s += &format!("|---|---|---|---|---|---|{ml}---|---|---|---|---|---|\n");
    for (k, r) in rows.iter().enumerate() {
        let mix = if mixes { format!(" {} |", r.mix) } else { String::new() };
        s += &format!(
            "| {} | {} | {} | {} | {:.3e} | {} |{mix} {} | {} | {:.2e} | {} | {} | {} |\n",
            k + 1,
            r.id,
            r.width,
            r.depth,
            r.lr,
            r.batch_size,
            si(r.params as f64),
            si(r.tokens as f64),
            r.flops,
            hms(r.est_s),
            flops::memory::bytes_text(memory_of(sweep, &r.memory)),
            if r.done { "done" } else { "pending" }
        );
    }
    let pending: Vec<&PlanRow> = rows.iter().filter(|r| !r.done).collect();
    let total_flops: f64 = pending.iter().map(|r| r.flops).sum::<f64>() + 0.0; // + 0.0: an empty sum is -0.0
    let secs: Vec<f64> = pending.iter().map(|r| r.est_s).collect();
    let total_s: f64 = secs.iter().sum::<f64>() + 0.0;
    s += &format!(
        "\n{} of {} runs pending: {:.2e} training FLOPs, about {} of compute, about {} wall-clock with --jobs {} ({}).\n",
        pending.len(),
        rows.len(),
        total_flops,
        hms(total_s),
        hms(makespan(&secs, jobs) * 1.05),
        jobs,
        pace_note(pace)
    );
    let branches = sweep.runs.iter().filter(|r| r.branch.as_ref().is_some_and(|b| b.from.is_some())).count();
    if branches > 0 {
        let full: f64 =
            sweep.runs.iter().map(|r| flops::train_flops(r.width, r.depth, r.seq_len, r.vocab, r.tokens)).sum();
        let own: f64 = rows.iter().map(|r| r.flops).sum();
        s += &format!(
            "WSD decay branches: {branches} runs start from their family's longest run and train only their decay: \
             {own:.2e} training FLOPs instead of {full:.2e} ({:.0}% saved). FLOPs above are what each run trains itself.\n",
            100.0 * (1.0 - own / full)
        );
    }
    if let Some(w) = curve_evaluations_warning(sweep) {
        s += &w;
    }
    s
}

/// The evaluations along one run's curve: its own (every `eval_every` steps and the last), and
/// for a WSD branch also its trunk's before the branch point (the branch's curve starts there).
pub fn curve_evaluations(sweep: &Sweep, r: &RunConfig) -> u64 {
    let every = r.eval_every.max(1);
    match r.branch.as_ref().and_then(|b| b.from.map(|f| (&b.family, f))) {
        Some((family, from)) => {
            let trunk =
                sweep.runs.iter().find(|t| t.branch.as_ref().is_some_and(|b| &b.family == family && b.from.is_none()));
            let before = trunk.map_or(0, |t| from / t.eval_every.max(1));
            before + r.steps / every - from / every + 1
        }
        None => r.steps / every + 1,
    }
}

/// Fewer evaluations along half the runs' curves than this and the loss-curve law's shape is
/// poorly pinned. The default `eval_every` (steps / 8) gives a plain run 9, spread over its
/// warmup, stable phase and decay; what falls short is a WSD branch under a long trunk's
/// default spacing (realtext: 3 to 9, the shortest branches none before their decay). Denser
/// than the default did not help every figure: on the quickstart an evaluation every 10
/// steps moved the 30x check's curve error from 1.9% to 2.2%, on real text the 11.8x check's
/// from 6.0% to 7.9%, while the held-out run lengths on real text went from 7.5% to 2.4%.
pub const CURVE_MIN_EVALUATIONS: u64 = 8;

/// A warning when the sweep fits the loss-curve law from curves too sparse to show their
/// shape: on `sweeps/realtext.toml`, 3 to 9 evaluations per run (the default `eval_every`,
/// steps / 8, on WSD branches) gave 7.5% mean error predicting a held-out run length, an
/// evaluation every 30 steps (9 to 261 per run) 2.4%, at about 5% more training time.
pub fn curve_evaluations_warning(sweep: &Sweep) -> Option<String> {
    if !sweep.fit.laws.iter().any(|l| *l == crate::fit::LawName::LossCurve) || sweep.runs.is_empty() {
        return None;
    }
    let mut n: Vec<u64> = sweep.runs.iter().map(|r| curve_evaluations(sweep, r)).collect();
    n.sort_unstable();
    let median = n[n.len() / 2];
    if median >= CURVE_MIN_EVALUATIONS {
        return None;
    }
    // Sized for the median run (32 evaluations): the shortest runs may be a few steps long.
    let mut steps: Vec<u64> = sweep.runs.iter().map(|r| r.steps).collect();
    steps.sort_unstable();
    let typical = steps[steps.len() / 2];
    let suggest = (typical / (4 * CURVE_MIN_EVALUATIONS)).max(1);
    Some(format!(
        "warning: [fit] laws has loss_curve, which fits every run's whole curve, but half the runs' curves have at most {median} \
         evaluation(s) ({} to {} per run, a WSD branch counting its trunk's): too few points to pin a curve's shape, and the law's \
         held-out error grows (3 to 9 per run on real text: 7.5%, against 2.4% evaluated every 30 steps). Set [train] eval_every \
         (for example {suggest}: {} evaluations of a run of the median length, {typical} steps) or leave loss_curve out.\n",
        n[0],
        n[n.len() - 1],
        typical / suggest + 1
    ))
}

pub fn si(x: f64) -> String {
    let (v, u) = if x >= 1e9 {
        (x / 1e9, "G")
    } else if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    format!("{v:.3}{u}")
}

pub fn hms(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

pub fn check_backend(sweep: &Sweep) -> Result<()> {
    if sweep.backend == crate::spec::config::Backend::Cuda {
        if let Some(p) = crate::backend::cuda_problem() {
            bail!(crate::UserError(p));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_balance_cost_and_keep_branch_families_together() {
        let tiny = include_str!("../../sweeps/tiny.toml");
        let plain = crate::spec::parse(tiny, "tiny.toml").unwrap();
        let map = shard_of(&plain.runs, 3);
        assert_eq!(map, shard_of(&plain.runs, 3), "deterministic");
        assert!((0..3).all(|s| map.contains(&s)), "{map:?}");
        let text = tiny.replace("batch_size = 4\n", "batch_size = 4\nwsd_branches = true\n");
        let branched = crate::spec::parse(&text, "b.toml").unwrap();
        let map = shard_of(&branched.runs, 3);
        for r in &branched.runs {
            let fam = &r.branch.as_ref().unwrap().family;
            let shards: Vec<usize> = branched
                .runs
                .iter()
                .enumerate()
                .filter(|(_, o)| &o.branch.as_ref().unwrap().family == fam)
                .map(|(k, _)| map[k])
                .collect();
            assert!(shards.windows(2).all(|w| w[0] == w[1]), "family split over shards: {shards:?}");
        }
        assert!((0..3).all(|s| map.contains(&s)), "3 families over 3 shards: {map:?}");
    }

    /// The probe's oversized sweeps planned fine with only a time estimate; each is now refused
    /// with its estimate and the limit, and a --jobs that cannot fit is warned about.
    #[test]
    fn runs_the_machine_cannot_hold_are_refused_with_the_number_and_the_limit() {
        let tiny = include_str!("../../sweeps/tiny.toml");
        let gib = 1024f64.powi(3);
        let limit = |mem: f64, disk: f64| Resources {
            memory: Some((mem, "the test's limit".into())),
            disk_free: Some((disk, "the test's disk".into())),
        };
        let dir = SweepDir::new(std::path::Path::new("/nonexistent-results"), "x");
        let refused = |text: &str, res: &Resources| -> String {
            let sw = crate::spec::parse(text, "big.toml").unwrap();
            let rows = rows(&sw, &dir, None);
            let e = check_resources(&sw, &rows, 1, res).unwrap_err();
            assert!(e.downcast_ref::<crate::UserError>().is_some(), "{e:#}");
            format!("{e:#}")
        };
        let big = limit(128.0 * gib, 1e15);
        let long = tiny.replace("seq_len = 32", "seq_len = 65536").replace("batch_size = 4", "batch_size = 1");
        // (With more tokens per parameter: at the tiny sweep's, runs of 65,536-token steps round
        // to the same step count.)
        let long = long
            .replace("eval_tokens = 2048", "eval_tokens = 65537")
            .replace("tokens_per_param = [1, 2, 4]", "tokens_per_param = [1000, 2000, 4000]")
            .replace("flops = 1e12", "flops = 1e16");
        let e = refused(&long, &big);
        assert!(e.contains("need more memory than this machine has (128.0 GiB, the test's limit)"), "{e}");
        assert!(e.contains("activations at micro-batch"), "{e}");
        let e = refused(&tiny.replace("eval_tokens = 2048", "eval_tokens = 1000000000000"), &big);
        assert!(e.contains("validation ids 7.5 TiB"), "{e}");
        let wide = tiny.replace("width = [16, 32, 48]", "width = [65536, 32, 48]");
        let e = refused(&wide, &big);
        assert!(e.contains("3 run(s)") && e.contains("width 65536"), "{e}");
        // Disk: the records and three checkpoints of the largest run at once.
        let e = refused(tiny, &limit(128.0 * gib, 1000.0));
        assert!(e.contains("of disk") && e.contains("1000 B is the test's disk"), "{e}");
        // The tiny sweep fits; nine of its runs at once in a few of its runs' memory do not.
        let sw = crate::spec::parse(tiny, "tiny.toml").unwrap();
        let rows = rows(&sw, &dir, None);
        assert!(rows.iter().all(|r| r.memory.total() > 1e5 && r.memory.total() < 1e9), "{:?}", rows[0].memory);
        assert_eq!(check_resources(&sw, &rows, 9, &big).unwrap(), None);
        let largest = rows.iter().map(|r| r.memory.total()).fold(0.0, f64::max);
        let w = check_resources(&sw, &rows, 9, &limit(2.5 * largest, 1e15)).unwrap().expect("a warning");
        assert!(w.contains("--jobs 9 trains the 9 largest runs at once") && w.contains("--jobs 2 fits"), "{w}");
        assert!(render(&sw, &rows, 2, None).contains("| memory | status |"));
    }

    #[test]
    fn a_run_is_never_split_over_jobs() {
        assert_eq!(makespan(&[600.0], 2), 600.0, "one run on two jobs takes its own time");
        assert_eq!(makespan(&[5.0, 5.0, 5.0, 5.0], 2), 10.0);
        assert_eq!(makespan(&[4.0, 9.0, 5.0], 2), 9.0, "largest first: 9 | 5 + 4");
        assert_eq!(makespan(&[], 2), 0.0);
    }

    #[test]
    fn estimates_scale_by_the_pace_measured_on_this_host() {
        use crate::store::{self, RunState, Status, Summary};
        let root = std::env::temp_dir().join(format!("wt-pace-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let sweep = crate::spec::parse(include_str!("../../sweeps/tiny.toml"), "tiny.toml").unwrap();
        let (a, b) = (SweepDir::new(&root, "a"), SweepDir::new(&root, "b"));
        assert_eq!(measured_pace(&a), None, "nothing trained: no pace");
        // A run of some minutes' estimate, finished here in twice its estimate, and one that
        // another host trained in ten times its estimate.
        let mut run = sweep.runs[0].clone();
        run.tokens *= 2000;
        let est = estimate_s(&run);
        assert!(est > 10.0, "{est}");
        let finish = |id: &str, host: &str, wall_s: f64, trained: f64| {
            let rd = a.run(id);
            std::fs::create_dir_all(&rd.path).unwrap();
            store::write_json_atomic(&rd.config_json(), &run).unwrap();
            let mut summary = Summary::bare(3.0, run.steps, run.tokens, wall_s);
            summary.tokens_per_s = trained * run.tokens as f64 / wall_s;
            store::write_json_atomic(&rd.done_marker(), &summary).unwrap();
            let status = Status {
                state: RunState::Done,
                attempt: 1,
                host: host.into(),
                pid: 1,
                heartbeat: 0,
                step: run.steps,
                error: None,
            };
            store::write_json_atomic(&rd.status_json(), &status).unwrap();
        };
        finish("here", &store::hostname(), 2.0 * est, 1.0);
        finish("there", "another-node", 10.0 * est, 1.0);
        let own = measured_pace(&a).expect("a finished run here");
        assert!((own.factor - 2.0).abs() < 1e-9 && own.runs == 1 && own.own, "{own:?}");
        // A run resumed at its middle: DONE's wall time is its second half's, at the same pace.
        finish("resumed", &store::hostname(), est, 0.5);
        let own = measured_pace(&a).expect("two finished runs here");
        assert!((own.factor - 2.0).abs() < 1e-9 && own.runs == 2, "{own:?}");
        // A new sweep (or a check) beside it borrows the pace of the folders next to it.
        let beside = measured_pace(&b).expect("the sweep beside it");
        assert!((beside.factor - 2.0).abs() < 1e-9 && !beside.own, "{beside:?}");
        assert!(
            pace_note(Some(beside)).contains("2.00x the built-in model's time over 2 finished run(s) of other sweeps")
        );
        let rows = rows(&Sweep { runs: vec![run.clone()], ..sweep.clone() }, &b, Some(beside));
        assert!((rows[0].est_s / est - 2.0).abs() < 1e-9, "the plan's estimate is scaled");
        assert!(render(&sweep, &rows, 2, Some(beside)).contains("measured pace"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn sparse_curves_under_the_loss_curve_law_are_warned_about() {
        let tiny = include_str!("../../sweeps/tiny.toml");
        let base = crate::spec::parse(tiny, "tiny.toml").unwrap();
        assert!(curve_evaluations_warning(&base).is_none(), "no loss_curve law: no warning");
        let curve = |extra: &str| {
            let text = tiny
                .replace("laws = [\"chinchilla\"]", "laws = [\"chinchilla\", \"loss_curve\"]")
                .replace("batch_size = 4\n", &format!("batch_size = 4\n{extra}"));
            crate::spec::parse(&text, "c.toml").unwrap()
        };
        // The default eval_every (steps / 8) gives a plain run about 9 evaluations: enough.
        let plain = curve("");
        assert!(plain.runs.iter().all(|r| (9..=11).contains(&curve_evaluations(&plain, r))));
        assert!(curve_evaluations_warning(&plain).is_none(), "default spacing: no warning");
        let sparse = curve("eval_every = 1000000\n");
        assert!(sparse.runs.iter().all(|r| curve_evaluations(&sparse, r) == 1));
        let w = curve_evaluations_warning(&sparse).expect("1 evaluation per run: warned");
        assert!(w.contains("have at most 1 evaluation(s)") && w.contains("eval_every"), "{w}");
        // A WSD branch's curve includes its trunk's evaluations before the branch point.
        let branched = curve("wsd_branches = true\neval_every = 2\n");
        // With one eval_every throughout, a branch sees as many as a run evaluated alone.
        let mut branches = 0;
        for r in branched.runs.iter().filter(|r| r.branch.as_ref().unwrap().from.is_some_and(|f| f >= 2)) {
            assert_eq!(curve_evaluations(&branched, r), r.steps / 2 + 1, "{}", r.steps);
            branches += 1;
        }
        assert!(branches > 0);
        // The real-text sweep: WSD branches under a 7,813-step trunk. Its eval_every = 30 keeps
        // every curve above the bar; without it the default spacing leaves half at 4 or fewer.
        let rt = include_str!("../../sweeps/realtext.toml");
        let dense = crate::spec::parse(rt, "realtext.toml").unwrap();
        assert!(curve_evaluations_warning(&dense).is_none());
        assert!(dense.runs.iter().all(|r| curve_evaluations(&dense, r) >= 9));
        let line = rt.lines().find(|l| l.starts_with("eval_every = 30")).unwrap();
        let default = crate::spec::parse(&rt.replace(line, ""), "realtext.toml").unwrap();
        let w = curve_evaluations_warning(&default).expect("default spacing on branches: warned");
        assert!(w.contains("have at most 4 evaluation(s)"), "{w}");
    }
}

/// A run's shape as the memory estimate reads it (`flops::memory`, which knows no sweep files).
fn mem_shape(r: &RunConfig) -> crate::flops::memory::MemShape {
    crate::flops::memory::MemShape {
        width: r.width,
        depth: r.depth,
        heads: r.heads.max(1),
        seq_len: r.seq_len,
        vocab: r.vocab,
        batch_size: r.batch_size,
        micro_batch: r.micro_batch.filter(|&m| m >= 1).unwrap_or(r.batch_size).min(r.batch_size).max(1),
        eval_tokens: r.eval_tokens,
    }
}
