//! `windtunnel check DIR`: calibrate the fitted law on runs larger than any in the sweep
//! (mix-check's idea applied to the law itself). Plans one to three models at
//! 10x to 30x (or `--factor K`) the sweep's largest compute with the sweep's own recipe (the
//! best run of the largest size as template: μP base width, schedule, learning rate, batch,
//! sequence length, mixture), sized at the law's N_opt when the fit determines it and at 20
//! tokens per parameter (Chinchilla) when it does not; records each prediction and 95% interval
//! in `DIR/check.json` BEFORE training; trains them as ordinary run folders under
//! `<results>/<sweep>-check` (DONE markers, so a second `check` resumes and retrains nothing);
//! then settles each ledger entry with the actual final loss and rewrites DIR's report.
//!
//! This is a workflow of the application layer, above `runner`: it uses the report's shape
//! rule, so it lives outside `runner/`, and the ledger's types live in `fit::calibration`
//! where the report can read them without importing upwards.

use crate::fit::calibration::{CurveCheck, Entry, Ledger};
use crate::fit::{FitReport, Interval};
use crate::report::headline::{best_largest, target_shape};
use crate::report::runs::{run_curves, RunCurve};
use crate::spec::config::{RunConfig, Sweep};
use crate::store::{self, frame, SweepDir};
use crate::{flops, runner, UserError};
use anyhow::{Context, Result};
use std::path::Path;

/// Tokens per parameter of a check model when the law does not determine N_opt (Hoffmann et
/// al.'s compute-optimal ratio).
pub const CHINCHILLA_TPP: f64 = 20.0;

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// A fixed shape (all three given, or width and depth with 20 tokens per parameter).
    pub width: Option<usize>,
    pub depth: Option<usize>,
    pub tokens_per_param: Option<f64>,
    /// Compute multiple of the sweep's largest run (the smallest one with `count` > 1).
    pub factor: Option<f64>,
    /// How many models (1 to 3).
    pub count: usize,
    pub jobs: usize,
    /// Plan and print only: train nothing, write nothing.
    pub dry_run: bool,
}

/// One planned check model.
pub struct Planned {
    pub config: RunConfig,
    pub entry: Entry,
}

/// The compute multiples of the check models: [10, 30] spread geometrically by default (one
/// model: 30x, the quickstart's calibration distance), or starting at `factor` up to 3x it.
pub fn factors(factor: Option<f64>, count: usize) -> Vec<f64> {
    let (lo, hi) = match factor {
        Some(k) => (k, 3.0 * k),
        None => (10.0, 30.0),
    };
    match count {
        0 | 1 => vec![if factor.is_some() { lo } else { hi }],
        n => (0..n).map(|i| lo * (hi / lo).powf(i as f64 / (n - 1) as f64)).collect(),
    }
}

/// A flag's number as written: plain when ordinary, in e-notation when huge or tiny (1e300
/// printed whole is 301 digits).
fn num(x: f64) -> String {
    if x != 0.0 && x.is_finite() && !(1e-3..1e6).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

fn check_options(o: &Options) -> Result<()> {
    let bad = |m: String| -> Result<()> { Err(UserError(m).into()) };
    if o.jobs == 0 {
        // As `run --jobs 0`: zero workers would train nothing and report the ledger as if.
        return bad("--jobs must be at least 1".into());
    }
    if !(1..=3).contains(&o.count) {
        return bad(format!("--count {} must be 1, 2 or 3", o.count));
    }
    if let Some(k) = o.factor {
        if !(k.is_finite() && k > 0.0) {
            return bad(format!("--factor {} must be > 0", num(k)));
        }
    }
    if o.width.is_some() && o.count != 1 {
        // A given shape is one model; the count spreads models over compute multiples.
        return bad(format!(
            "--count {} does not apply to a given shape (--width --depth is one model); drop --count, or drop the \
             shape to spread {} models over compute multiples",
            o.count, o.count
        ));
    }
    if o.width.is_some() != o.depth.is_some() {
        return bad("give --width and --depth together (and optionally --tokens-per-param)".into());
    }
    if o.tokens_per_param.is_some() && o.width.is_none() {
        return bad("--tokens-per-param needs --width and --depth".into());
    }
    if o.width.is_some() && o.factor.is_some() {
        return bad("give either a shape (--width --depth [--tokens-per-param]) or --factor, not both".into());
    }
    if let Some(t) = o.tokens_per_param {
        if !(t.is_finite() && t > 0.0 && t <= crate::spec::MAX_TOKENS_PER_PARAM) {
            return bad(format!(
                "--tokens-per-param {} must be > 0 and at most {:e} (the sweep file's own limit)",
                num(t),
                crate::spec::MAX_TOKENS_PER_PARAM
            ));
        }
    }
    Ok(())
}

/// The template run (the lowest-loss run of the largest model size) and its config.
fn template<'a>(sweep: &'a Sweep, runs: &'a [RunCurve]) -> Result<(&'a RunCurve, &'a RunConfig)> {
    let best = best_largest(runs).ok_or_else(|| UserError("the sweep has no finished runs to check".into()))?;
    let cfg = sweep
        .runs
        .iter()
        .find(|r| r.run_id() == best.run_id)
        .ok_or_else(|| UserError(format!("run {} is not in the sweep file any more", best.run_id)))?;
    Ok((best, cfg))
}

/// A run like `template` with another shape and length, in the check's results folder.
fn derive(template: &RunConfig, name: &str, width: usize, depth: usize, tokens: f64) -> RunConfig {
    let head_dim = template.width / template.heads.max(1);
    let per_step = (template.batch_size * template.seq_len) as u64;
    let steps = ((tokens / per_step as f64).ceil() as u64).max(1);
    let mut r = template.clone();
    r.sweep = name.to_string();
    (r.width, r.depth, r.heads) = (width, depth, (width / head_dim.max(1)).max(1));
    (r.steps, r.tokens, r.eval_every, r.branch) = (steps, steps * per_step, (steps / 8).max(1), None);
    r
}

/// No loss below the data's known entropy floor is possible, so an interval reaching under it
/// claims less than is known: its lower end is raised to the floor (the upper end stays).
fn clip_to_floor(i: Interval, floor: Option<f64>) -> Interval {
    match floor {
        Some(f) if i.lo < f && f < i.hi => Interval { lo: f, hi: i.hi },
        _ => i,
    }
}

/// Plan the check models and their predictions.
pub fn plan(dir: &Path, o: &Options) -> Result<(Sweep, FitReport, Vec<Planned>, f64)> {
    check_options(o)?;
    let sweep = super::sweep::sweep_of_dir(dir)?;
    let sd = SweepDir::at(dir);
    let fit: FitReport = store::read_json(&sd.fit_json()).map_err(|e| {
        UserError(format!("{}: no usable fit.json ({e:#}); run `windtunnel collect` first", dir.display()))
    })?;
    let df = frame::read_frame(&sd.runs_parquet())?;
    super::sweep::check_fit_json(&fit, &sweep, &df, &sd.fit_json())?;
    let runs = run_curves(&df)?;
    let (best, cfg) = template(&sweep, &runs)?;
    let c_max = runs.iter().map(|r| r.c6()).fold(0.0, f64::max);
    let name = check_name(&sweep.name);
    let law = fit.params.ok_or_else(|| {
        UserError(format!(
            "{}: the sweep's fit has no law to check ({})",
            dir.display(),
            fit.chinchilla_skipped().unwrap_or("chinchilla was not fitted")
        ))
    })?;
    let determined = fit.verdict.as_ref().is_some_and(|v| v.determined);
    let head_dim = cfg.width / cfg.heads.max(1);
    let mut shapes: Vec<(usize, usize, f64, String)> = Vec::new();
    if let (Some(w), Some(d)) = (o.width, o.depth) {
        if w == 0 || d == 0 || w % head_dim != 0 {
            return Err(UserError(format!(
                "--width must be a positive multiple of the head width {head_dim}, --depth > 0"
            ))
            .into());
        }
        let n = flops::params(w, d, cfg.vocab) as f64;
        let tpp = o.tokens_per_param.unwrap_or(CHINCHILLA_TPP);
        shapes.push((w, d, tpp * n, format!("given shape, {tpp} tokens per parameter")));
    } else {
        for k in factors(o.factor, o.count) {
            let c = k * c_max;
            if !(c <= crate::spec::MAX_TARGET_FLOPS) {
                return Err(UserError(format!(
                    "--factor {}: a check model of {c:.3e} FLOPs ({k:.3e}x the sweep's largest run, {c_max:.3e}) is \
                     above {:e}, the sweep file's own limit on a target",
                    num(o.factor.unwrap_or(k)),
                    crate::spec::MAX_TARGET_FLOPS
                ))
                .into());
            }
            let (n, rule) = if determined {
                (law.n_opt(c), "the law's N_opt".to_string())
            } else {
                (
                    crate::flops::chinchilla_params_at(c, CHINCHILLA_TPP),
                    format!("{CHINCHILLA_TPP} tokens per parameter: the fit does not determine N_opt"),
                )
            };
            let s = target_shape(n, best, cfg.vocab).ok_or_else(|| {
                UserError(format!("--factor {}: no model shape has N = {n:.3e} parameters (C = {c:.3e} FLOPs)", num(k)))
            })?;
            shapes.push((s.width, s.depth, crate::flops::chinchilla_tokens(c, s.params), rule));
        }
    }
    let floor = fit.verdict.as_ref().and_then(|v| v.floor);
    let mut out: Vec<Planned> = Vec::new();
    for (w, d, tokens, rule) in shapes {
        // Before `derive` casts it to whole steps: 1e30 tokens would saturate at 2^64.
        if !(tokens <= crate::spec::MAX_TOKENS) {
            return Err(UserError(format!(
                "a check model of width {w}, depth {d} would train on {tokens:.3e} tokens, above {:e} (the sweep \
                 file's own limit on a run's tokens); give a smaller --tokens-per-param or --factor",
                crate::spec::MAX_TOKENS
            ))
            .into());
        }
        let config = derive(cfg, &name, w, d, tokens);
        let id = config.run_id();
        if out.iter().any(|p| p.entry.run_id == id) {
            continue;
        }
        let (n, dd) = (flops::params(w, d, cfg.vocab) as f64, config.tokens as f64);
        let entry = Entry {
            run_id: id,
            width: w,
            depth: d,
            heads: config.heads,
            params: n,
            tokens: dd,
            tokens_per_param: dd / n,
            flops: crate::flops::chinchilla_flops(n, dd),
            factor: crate::flops::chinchilla_flops(n, dd) / c_max,
            rule,
            predicted: law.predict(n, dd),
            interval: fit.loss_interval_at(n, dd).map(|i| clip_to_floor(i, floor)),
            ln_vocab: Some((cfg.vocab as f64).ln()),
            law,
            kaplan: fit.form_check.as_ref().map(|fc| fc.kaplan.law.predict(n, dd)),
            actual: None,
            inside: None,
            rel_err: None,
            curve: None,
        };
        out.push(Planned { config, entry });
    }
    Ok((sweep, fit, out, c_max))
}

/// The sweep's curve law predicting a finished check run's whole curve (its evaluations from
/// the end of warmup, as the law is fitted), settled against them. Computed when the run
/// settles, from the sweep's fit.json (which never includes check runs), not recorded before
/// training as the final-point prediction is: a refit of the sweep in between changes it.
fn curve_check(
    law: &crate::fit::curve::CurveFit,
    rd: &crate::store::RunDir,
    cfg: &RunConfig,
) -> Result<Option<CurveCheck>> {
    let run = super::curve::curve_run(rd, cfg, 0.0)?;
    let band = crate::fit::curve::predict_curve(law, run.params, &run.lr, &run.steps, run.tokens_per_step);
    let pred: Vec<(f64, f64, f64)> = band.iter().map(|p| (p.loss, p.lo, p.hi)).collect();
    Ok(CurveCheck::of(&pred, &run.loss))
}

/// The check runs' sweep name: `<sweep>-check`.
fn check_name(sweep: &str) -> String {
    format!("{sweep}-check")
}

/// The results root and folder of the check runs: beside the sweep's, `<sweep>-check`.
/// `check .` has an empty parent, so the folder is resolved first (else the runs would land
/// inside it and be retrained from another cwd).
fn check_dir(dir: &Path, sweep: &str) -> Result<(std::path::PathBuf, SweepDir)> {
    let abs = std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
    let root = abs.parent().unwrap_or(Path::new("/")).to_path_buf();
    let cdir = SweepDir::new(&root, &check_name(sweep));
    Ok((root, cdir))
}

/// What training the planned models would take: each one's wall seconds on one job (0 when
/// already DONE) and the whole on `jobs` workers, at this machine's pace measured on the check
/// runs or the sweeps beside them (the same scaling `run` prints), with the line saying so.
/// A check model is one long run on one core, so `--jobs` does not shorten it.
pub fn estimate(dir: &Path, sweep: &str, planned: &[Planned], jobs: usize) -> Result<(Vec<f64>, f64, String)> {
    let (_, cdir) = check_dir(dir, sweep)?;
    let pace = runner::plan::measured_pace(&cdir);
    let scale = pace.map_or(1.0, |p| p.factor);
    let secs: Vec<f64> = planned
        .iter()
        .map(|p| if cdir.run(&p.entry.run_id).is_done() { 0.0 } else { runner::plan::estimate_s(&p.config) * scale })
        .collect();
    let total = runner::plan::makespan(&secs, jobs);
    Ok((secs, total, runner::plan::pace_note(pace)))
}

/// What a `check` did: the ledger's entries for its runs, and those of its runs that another
/// worker was still training (locked), which it could not settle.
pub struct Checked {
    pub entries: Vec<Entry>,
    pub in_progress: Vec<String>,
}

impl Checked {
    /// The terminal's lines: each entry, then the coverage over the entries whose interval is a
    /// claim, naming the runs still training elsewhere and the intervals that are no claim.
    pub fn summary(&self) -> String {
        let mut s: String = self.entries.iter().map(|e| format!("{}\n", e.line())).collect();
        let counted: Vec<bool> = self.entries.iter().filter_map(|e| e.counted_inside()).collect();
        let inside = counted.iter().filter(|&&x| x).count();
        let vacuous = self.entries.iter().filter(|e| e.actual.is_some() && e.counted_inside().is_none()).count();
        let mut parts = vec![format!("{inside} of {} actual losses inside their 95% interval", counted.len())];
        if vacuous > 0 {
            parts.push(format!("{vacuous} finished with no interval that is a claim (not counted)"));
        }
        if !self.in_progress.is_empty() {
            parts.push(format!(
                "{} still in progress in another worker ({}): run `windtunnel check` again once it has finished",
                self.in_progress.len(),
                self.in_progress.join(", ")
            ));
        }
        s += &format!("calibration: {}\n", parts.join("; "));
        s
    }
}

/// Plan, record, train, settle, report.
pub fn run(dir: &Path, o: &Options) -> Result<Checked> {
    let (sweep, fit, planned, c_max) = plan(dir, o)?;
    let sd = SweepDir::at(dir);
    let (root, cdir) = check_dir(dir, &sweep.name)?;
    let name = check_name(&sweep.name);
    let mut ledger: Ledger = if sd.check_json().exists() {
        store::read_json(&sd.check_json()).with_context(|| format!("reading {}", sd.check_json().display()))?
    } else {
        Ledger::default()
    };
    // Entries that their runs or their own laws contradict are left out (and said), so the
    // planned entries below are recorded afresh rather than matched to a tampered one.
    let (valid, warnings) = crate::report::facts::read_ledger(&sd, &sweep.name);
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if let Some(valid) = valid {
        ledger.entries = valid.entries;
    }
    (ledger.sweep, ledger.runs_dir, ledger.sweep_max_flops) =
        (sweep.name.clone(), cdir.root.display().to_string(), c_max);
    // Predictions are on disk before any check run trains.
    for p in &planned {
        ledger.entry(p.entry.clone());
    }
    store::write_json_atomic(&sd.check_json(), &ledger)?;
    let runs: Vec<RunConfig> = planned.iter().map(|p| p.config.clone()).collect();
    let check_sweep = Sweep { name: name.clone(), runs, ..sweep.clone() };
    let ro = runner::RunOptions {
        results: root,
        jobs: o.jobs,
        shard: None,
        max_hours: None,
        worker_exe: None,
        devices: Vec::new(),
    };
    let rep = runner::run(&check_sweep, &ro)?;
    let mut out = Vec::new();
    let mut in_progress = Vec::new();
    for p in &planned {
        let rd = cdir.run(&p.entry.run_id);
        if !rd.is_done() && rep.elsewhere.contains(&p.entry.run_id) {
            in_progress.push(p.entry.run_id.clone());
        }
        let e = ledger.entry(p.entry.clone());
        if rd.is_done() {
            let last = rd
                .read_evals()?
                .into_iter()
                .last()
                .ok_or_else(|| anyhow::anyhow!("run {} has no evaluation", rd.id))?;
            e.settle(last.loss);
            if let Some(lc) = &fit.laws.loss_curve {
                // The final-point entry is settled whatever happens here: a curve that cannot
                // be read is said, not a reason to lose the ledger.
                e.curve = curve_check(&lc.fit, &rd, &p.config).unwrap_or_else(|err| {
                    eprintln!("warning: run {}: the curve law's check is skipped: {err:#}", rd.id);
                    None
                });
            }
        }
        out.push(e.clone());
    }
    store::write_json_atomic(&sd.check_json(), &ledger)?;
    super::report::report_dir(dir, &crate::report::ReportOptions::default())?;
    if rep.interrupted || !rep.failed.is_empty() {
        anyhow::bail!(
            "check runs did not all finish (failed: {:?}); run `windtunnel check` again to resume",
            rep.failed
        );
    }
    Ok(Checked { entries: out, in_progress })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_span_ten_to_thirty_or_k_to_3k() {
        assert_eq!(factors(None, 1), vec![30.0]);
        let f = factors(None, 3);
        assert!((f[0] - 10.0).abs() < 1e-9 && (f[1] - 300f64.sqrt()).abs() < 1e-9 && (f[2] - 30.0).abs() < 1e-9);
        assert_eq!(factors(Some(2.0), 1), vec![2.0]);
        assert_eq!(factors(Some(2.0), 2), vec![2.0, 6.0]);
    }

    #[test]
    fn intervals_never_reach_below_the_floor() {
        let i = Interval { lo: 1.70, hi: 2.0 };
        assert_eq!(clip_to_floor(i, Some(1.768)), Interval { lo: 1.768, hi: 2.0 });
        assert_eq!(clip_to_floor(i, Some(1.5)), i);
        assert_eq!(clip_to_floor(i, None), i);
        // An interval wholly below the floor is left as is: the prediction itself is then
        // wrong, and the ledger should show it rather than hide it.
        assert_eq!(clip_to_floor(i, Some(2.5)), i);
    }

    /// A second `check` while the first still trains its run says so; it used to print
    /// "calibration: 0 of 1 inside". A vacuous interval is counted neither way.
    #[test]
    fn the_summary_names_runs_in_progress_and_uncounted_intervals() {
        let e = |id: &str, hi: f64, actual: Option<f64>| {
            let mut e = crate::fit::calibration::test_entry(3.2, hi, Some(256f64.ln()));
            e.run_id = id.into();
            if let Some(a) = actual {
                e.settle(a);
            }
            e
        };
        let busy = Checked { entries: vec![e("a", 3.4, None)], in_progress: vec!["a".into()] };
        let s = busy.summary();
        assert!(
            s.contains("calibration: 0 of 0 actual losses inside")
                && s.contains("1 still in progress in another worker (a)"),
            "{s}"
        );
        let vac = Checked { entries: vec![e("a", 3.4, Some(3.3)), e("b", 6.4e11, Some(3.27))], in_progress: vec![] };
        let s = vac.summary();
        assert!(
            s.contains("calibration: 1 of 1 actual losses inside") && s.contains("1 finished with no interval"),
            "{s}"
        );
        assert!(!s.contains("in progress"), "{s}");
    }

    #[test]
    fn bad_flags_are_user_errors() {
        let o = |f: fn(&mut Options)| {
            let mut x = Options { count: 1, jobs: 1, ..Default::default() };
            f(&mut x);
            check_options(&x)
        };
        assert!(o(|_| {}).is_ok());
        assert!(o(|x| x.count = 4).unwrap_err().to_string().contains("--count"));
        assert!(o(|x| x.width = Some(32)).unwrap_err().to_string().contains("--depth"));
        assert!(o(|x| x.factor = Some(0.0)).unwrap_err().to_string().contains("--factor"));
        assert!(o(|x| x.tokens_per_param = Some(20.0)).is_err());
        // As `run --jobs 0`; a count with a given shape (one model) is a conflict, not ignored;
        // tokens per parameter past the sweep file's limit (1e30 saturated a u64 cast).
        assert!(o(|x| x.jobs = 0).unwrap_err().to_string().contains("--jobs must be at least 1"));
        let e = o(|x| (x.count, x.width, x.depth) = (2, Some(32), Some(1))).unwrap_err().to_string();
        assert!(e.contains("--count 2 does not apply to a given shape"), "{e}");
        let e = o(|x| (x.width, x.depth, x.tokens_per_param) = (Some(32), Some(1), Some(1e30))).unwrap_err();
        assert!(e.to_string().contains("--tokens-per-param 1e30 must be > 0 and at most 1e4"), "{e}");
        assert!(o(|x| {
            (x.width, x.depth, x.factor) = (Some(32), Some(1), Some(2.0));
        })
        .is_err());
    }
}
