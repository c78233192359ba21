//! The loss-curve law's glue: turns finished run folders into curves with
//! their learning rate at every update (from each run's resolved schedule, `train::schedule`),
//! fits `fit::curve` to every evaluation, predicts the target run's whole curve under the
//! sweep's schedule scaled to the target's step count, and serves `predict-curve` and the
//! hidden `mpl-protocol` command. The law itself lives in `fit::curve` and knows nothing of
//! run folders or schedules.

use crate::fit::curve::{self, CurveLawReport, CurveRun, TargetCurve};
use crate::fit::FitReport;
use crate::spec::config::{RunConfig, Schedule, Sweep};
use crate::store::{self, RunDir, SweepDir};
use crate::train::schedule::lr_mult;
use crate::{flops, UserError};
use anyhow::{Context, Result};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// The name in `[fit] laws` and in fit.json's `laws`.
pub const LAW: &str = "loss_curve";

/// Points of the target's predicted curve.
pub const TARGET_POINTS: usize = 128;

/// Bootstrap refits behind the target curve's band: each is an L-BFGS run over every
/// evaluation (about 0.06 s for a 100-run sweep on 2 cores), so far fewer than the Chinchilla
/// law's 1,000; 40, with the curve rollout, keep a 100-run sweep's curve fit under 10 s (8.6 s
/// measured), and their 2.5% and 97.5% percentiles are interpolated between the two most
/// extreme refits on each side.
pub const MAX_BOOTSTRAP: usize = 40;

/// Learning rate of every update of a run of `steps` steps.
pub fn schedule_lr(schedule: &Schedule, peak: f64, steps: u64) -> Vec<f64> {
    (0..steps).map(|s| peak * lr_mult(schedule, s, steps)).collect()
}

/// A finished run's evaluations (deduplicated by step: a run resumed after a kill between an
/// evaluation and its checkpoint evaluates that step twice; the later record wins) with its
/// schedule.
/// `skip` (a fraction of the run's steps, 0 by default) also leaves out the evaluations before
/// it (the length backtest's `--skip-frac`).
pub fn curve_run(dir: &RunDir, cfg: &RunConfig, skip: f64) -> Result<CurveRun> {
    let mut evals = dir.read_evals().with_context(|| format!("run {}: reading evals", dir.id))?;
    evals.sort_by_key(|e| e.step);
    let mut steps: Vec<u64> = Vec::new();
    let mut loss: Vec<f64> = Vec::new();
    let lr = schedule_lr(&cfg.schedule, cfg.lr, cfg.steps);
    // Evaluations during warmup are left out, as in the multi-power-law paper (its curves
    // start where warmup ends): there the loss falls from its untrained value as fast as the
    // rising learning rate allows, a transient no law of the summed learning rate describes.
    let warm = curve::prep::warmup_end(&lr) as u64 + 1;
    let warm = warm.max((skip * cfg.steps as f64) as u64);
    for e in evals.iter().filter(|e| e.step >= warm.max(1) && e.step <= cfg.steps) {
        if steps.last() == Some(&e.step) {
            *loss.last_mut().expect("same length") = e.loss;
        } else {
            steps.push(e.step);
            loss.push(e.loss);
        }
    }
    Ok(CurveRun {
        run: dir.id.clone(),
        params: flops::params(cfg.width, cfg.depth, cfg.vocab) as f64,
        tokens_per_step: (cfg.batch_size * cfg.seq_len) as f64,
        lr,
        steps,
        loss,
    })
}

/// The verdict's reason from the finished runs' whole curves (`curve::shape::loss_reason`):
/// why a law of their final points would extrapolate badly, if the curves say so.
pub fn turning(done: &[(RunDir, RunConfig)]) -> Option<String> {
    let runs: Vec<CurveRun> = curve_runs(done, 0.0).ok()?.into_iter().map(|x| x.0).collect();
    curve::shape::loss_reason(&runs)
}

/// The runs the law is fitted to: of the runs sharing (N, D), the best final loss (as for the
/// Chinchilla law: a learning-rate sweep's bad corners are not the law), with their configs.
pub fn curve_runs(done: &[(RunDir, RunConfig)], skip: f64) -> Result<Vec<(CurveRun, RunConfig)>> {
    let all: Vec<(CurveRun, RunConfig)> =
        done.iter().map(|(d, c)| Ok((curve_run(d, c, skip)?, c.clone()))).collect::<Result<_>>()?;
    let all: Vec<(CurveRun, RunConfig)> = all.into_iter().filter(|(r, _)| !r.steps.is_empty()).collect();
    let best = crate::fit::best_per_size(
        &all,
        |(r, c)| (r.params, c.tokens as f64),
        |(r, _)| *r.loss.last().expect("non-empty"),
        |(r, _)| r.run.as_str(),
    );
    Ok(best.into_iter().cloned().collect())
}

/// What replicates of a run share: its config without the seed, the sweep's name and the
/// branch family (a hash that includes the seed).
pub fn replicate_key(c: &RunConfig) -> String {
    let mut k = c.clone();
    (k.seed, k.sweep) = (0, String::new());
    if let Some(b) = k.branch.as_mut() {
        b.family.clear();
    }
    serde_json::to_string(&k).expect("RunConfig serialises")
}

/// The mean curve of each run over its replicates (the same config under other seeds: the same
/// sweep run with another `[sweep] seed`), one set per results folder, the first set's runs in
/// its order. A law predicts a run's expected curve; one seed's curve wanders about it (on
/// `curve_law` about 0.3% per point), so a held-out length scored against seed means measures
/// the law, not the seed. Every run must have a replicate in every set, evaluated at the same
/// steps.
pub fn average_replicates(sets: &[Vec<(CurveRun, String)>], names: &[String]) -> Result<Vec<CurveRun>> {
    let Some((first, rest)) = sets.split_first() else { return Ok(Vec::new()) };
    let mut out = Vec::with_capacity(first.len());
    for (run, key) in first {
        let mut sum = run.loss.clone();
        for (set, name) in rest.iter().zip(names.iter().skip(1)) {
            let Some((rep, _)) = set.iter().find(|(_, k)| k == key) else {
                return Err(UserError(format!(
                    "replicates: {name} has no run with the config of run {} (N {:.0}, {} steps) but another seed",
                    run.run,
                    run.params,
                    run.lr.len()
                ))
                .into());
            };
            if rep.steps != run.steps {
                return Err(UserError(format!(
                    "replicates: run {} of {name} is evaluated at other steps than its replicate {} ({} against {} \
                     evaluations): the mean curve needs the same steps",
                    rep.run,
                    run.run,
                    rep.steps.len(),
                    run.steps.len()
                ))
                .into());
            }
            sum.iter_mut().zip(&rep.loss).for_each(|(a, b)| *a += b);
        }
        let n = sets.len() as f64;
        out.push(CurveRun { loss: sum.into_iter().map(|v| v / n).collect(), ..run.clone() });
    }
    Ok(out)
}

/// Fits the law to `done`'s runs and predicts the target's curve (when fit.json has a target).
pub fn fit_curve_law(
    report: &FitReport,
    done: &[(RunDir, RunConfig)],
    bootstrap: usize,
    seed: u64,
) -> Result<CurveLawReport> {
    let runs = curve_runs(done, 0.0)?;
    let curves: Vec<CurveRun> = runs.iter().map(|(r, _)| r.clone()).collect();
    let fit = curve::fit_with_rollout(&curves, bootstrap.min(MAX_BOOTSTRAP), seed)?;
    let mut out = CurveLawReport::new(fit, &curves);
    if let Some(t) = &report.target {
        // The target trains like the sweep's largest model's longest run (the WSD trunk when
        // branched, whose schedule fractions are the sweep's own), scaled to the target's steps.
        let (_, refc) = runs
            .iter()
            .max_by(|a, b| a.0.params.total_cmp(&b.0.params).then(a.1.steps.cmp(&b.1.steps)))
            .expect("fit needs runs");
        let tps = (refc.batch_size * refc.seq_len) as f64;
        let steps = (t.d_opt / tps).round().max(1.0) as u64;
        let mut tc = target_curve(&out, t.n_opt, &refc.schedule, refc.lr, steps, tps);
        if let Some(w) = curve::decay_extrapolation_warning(&curves, &tc.curve) {
            out.fit.warnings.push(w);
            tc.decay_extrapolated = true;
        }
        out.target = Some(tc);
    }
    Ok(out)
}

/// The law's curve for a model of `params` trained `steps` steps under `schedule` at `peak`.
pub fn target_curve(
    law: &CurveLawReport,
    params: f64,
    schedule: &Schedule,
    peak: f64,
    steps: u64,
    tps: f64,
) -> TargetCurve {
    let lr = schedule_lr(schedule, peak, steps);
    let warm = curve::prep::warmup_end(&lr) as u64 + 1;
    let evals: Vec<u64> = curve::even_steps(steps, TARGET_POINTS).into_iter().filter(|&s| s >= warm).collect();
    TargetCurve {
        params,
        steps,
        tokens_per_step: tps,
        peak_lr: peak,
        schedule: serde_json::to_value(schedule).expect("serialisable"),
        curve: curve::predict_curve(&law.fit, params, &lr, &evals, tps),
        decay_extrapolated: false,
    }
}

/// Adds `laws.loss_curve` to a report when the sweep asks for it; a fit the runs cannot support
/// becomes a warning, like the other laws.
pub fn add_curve_law(sweep: &Sweep, done: &[(RunDir, RunConfig)], report: &mut FitReport) {
    if !sweep.fit.laws.iter().any(|l| l == LAW) {
        return;
    }
    let seed = sweep.runs.first().map_or(0, |r| r.seed);
    match fit_curve_law(report, done, sweep.fit.bootstrap, seed) {
        Ok(c) => {
            report.warnings.extend(c.fit.warnings.iter().map(|w| format!("law {LAW}: {w}")));
            report.laws.loss_curve = Some(c);
        }
        Err(e) => report.warnings.push(format!("law {LAW} not fitted: {e:#}")),
    }
}

/// The `loss_curve` law of a results folder's fit.json.
pub fn law_of_dir(dir: &Path) -> Result<CurveLawReport> {
    let fit: FitReport = store::read_json(&SweepDir::at(dir).fit_json())
        .map_err(|e| UserError(format!("{}: no fit.json ({e:#}); run the sweep first", dir.display())))?;
    Ok(fit.laws.loss_curve.ok_or_else(|| {
        UserError(format!(
            "{}: fit.json has no {LAW} law; add \"{LAW}\" to [fit] laws and run `collect`",
            dir.display()
        ))
    })?)
}

/// A `step,lr` CSV (the learning rate of every update from 0), e.g. exported from the large
/// run's launcher; errors name file, line and column.
pub fn read_schedule_csv(path: &Path) -> Result<Vec<f64>> {
    let text = std::fs::read_to_string(path).map_err(|e| UserError(format!("{}: {e}", path.display())))?;
    // A UTF-8 byte order mark (spreadsheet exports write one) is no part of the header, as
    // `fit` reads its CSVs.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut lr = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || (i == 0 && l.starts_with("step")) {
            continue;
        }
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        let bad = |col: usize, what: &str| UserError(format!("{}:{}:{col}: {what}", path.display(), i + 1));
        if f.len() != 2 {
            return Err(bad(1, &format!("expected two fields `step,lr`, got {}", f.len())).into());
        }
        let step: u64 =
            f[0].parse().map_err(|_| bad(1, &format!("field step: expected an integer, got {:?}", f[0])))?;
        let v: f64 = f[1].parse().map_err(|_| bad(2, &format!("field lr: expected a number, got {:?}", f[1])))?;
        if step != lr.len() as u64 {
            return Err(
                bad(1, &format!("field step: expected {} (one row per update from 0), got {step}", lr.len())).into()
            );
        }
        if !(v.is_finite() && v >= 0.0) {
            return Err(bad(2, &format!("field lr: expected a number >= 0, got {v}")).into());
        }
        lr.push(v);
    }
    if lr.is_empty() {
        return Err(UserError(format!("{}: no `step,lr` rows", path.display())).into());
    }
    Ok(lr)
}

/// What `predict-curve` asks for; absent fields come from fit.json's target.
#[derive(Clone, Debug, Default)]
pub struct CurveRequest {
    pub params: Option<f64>,
    pub steps: Option<u64>,
    pub peak_lr: Option<f64>,
    pub schedule_csv: Option<std::path::PathBuf>,
    pub points: usize,
    pub csv: bool,
}

/// The largest learning rate `predict-curve --lr` takes: the sweep file's own bound on `lr`.
pub const MAX_LR: f64 = 1.0;

/// `predict-curve`'s flags on their own, before fit.json is read: a learning rate of 0, NaN
/// or below 0 gave a loss of 1.564e184 (exit 0); a size of 100 parameters, inf.
fn check_request(req: &CurveRequest) -> Result<()> {
    let bad = |m: String| -> Result<()> { Err(UserError(m).into()) };
    if req.schedule_csv.is_some() {
        // The schedule file gives every update's learning rate and its length is the run's.
        for (given, flag) in [(req.steps.is_some(), "--steps"), (req.peak_lr.is_some(), "--lr")] {
            if given {
                return bad(format!(
                    "{flag} conflicts with --schedule: the schedule file gives the learning rate of every update and \
                     the number of steps; give one or the other"
                ));
            }
        }
    }
    if let Some(lr) = req.peak_lr {
        if !(lr.is_finite() && lr > 0.0 && lr <= MAX_LR) {
            return bad(format!("--lr {lr} must be a number in (0, {MAX_LR}] (the sweep file's own bound)"));
        }
    }
    if let Some(n) = req.params {
        let max = crate::spec::MAX_TARGET_PARAMS;
        if !(n.is_finite() && (1.0..=max).contains(&n)) {
            return bad(format!("--params {n} must be a number of parameters from 1 to {max:e}"));
        }
    }
    if req.steps == Some(0) || req.points == 0 {
        return bad("--steps and --points must be > 0".into());
    }
    Ok(())
}

/// ln(vocabulary) of the sweep's data (the loss of a uniform guess), if its sweep file reads.
fn ln_vocab_of_dir(dir: &Path) -> Option<f64> {
    let sw = super::sweep::sweep_of_dir(dir).ok()?;
    sw.runs.first().map(|r| (r.vocab as f64).ln()).filter(|v| v.is_finite() && *v > 0.0)
}

/// Longest curve `predict-curve` computes: the learning rate of every step is held (8 bytes
/// each, and as much again for the law's sums over it), so a typo'd `--steps 1000000000` would
/// allocate gigabytes and abort. 10^8 steps is about 1.6 GB, and 50 times the longest runs
/// trained today (about 2 x 10^6 steps).
pub const MAX_CURVE_STEPS: u64 = 100_000_000;

fn too_long(n: u64, whose: &str) -> anyhow::Error {
    UserError(format!(
        "{n} steps{whose}: predict-curve computes at most {MAX_CURVE_STEPS} steps (it holds every step's learning \
         rate; the longest runs trained today have about 2e6)"
    ))
    .into()
}

/// `predict-curve DIR`: the law's curve with its 95% band, as CSV or a table.
pub fn predict_curve(dir: &Path, req: &CurveRequest) -> Result<String> {
    check_request(req)?;
    // Checked before anything is laid out step by step: `--steps` here, fit.json's own target
    // (its step count comes from D_opt, which an extreme target makes astronomical) below.
    if let Some(n) = req.steps.filter(|&n| n > MAX_CURVE_STEPS) {
        return Err(too_long(n, ""));
    }
    let law = law_of_dir(dir)?;
    predict_curve_of(&law, ln_vocab_of_dir(dir), &dir.display().to_string(), req)
}

/// `predict_curve` on a fitted law. A curve that is not finite, or whose point prediction
/// anywhere lies above `ln_vocab` (a uniform guess: no trained model is worse), is refused
/// (exit 2): the law does not hold there. Where only the band reaches above it, or the law
/// sits at the bounds of its search (`solve::at_bounds`), the band is printed as "no interval"
/// (CSV: empty lo and hi), never as if it held, with the reason on a note line (on stderr with
/// --csv).
pub fn predict_curve_of(
    law: &CurveLawReport,
    ln_vocab: Option<f64>,
    origin: &str,
    req: &CurveRequest,
) -> Result<String> {
    check_request(req)?;
    let t = law.target.as_ref();
    if let Some(n) =
        t.map(|t| t.steps).filter(|&n| req.steps.is_none() && req.schedule_csv.is_none() && n > MAX_CURVE_STEPS)
    {
        return Err(too_long(n, " (fit.json's target; give --steps)"));
    }
    let need = |what: &str| UserError(format!("{origin}: fit.json has no target; give {what}"));
    let params = req.params.or(t.map(|t| t.params)).ok_or_else(|| need("--params"))?;
    let tps = t.map_or(1.0, |t| t.tokens_per_step);
    let lr: Vec<f64> = match &req.schedule_csv {
        Some(p) => read_schedule_csv(p)?,
        None => {
            let t = t.ok_or_else(|| need("--schedule"))?;
            let sched: Schedule = serde_json::from_value(t.schedule.clone()).context("fit.json target schedule")?;
            schedule_lr(&sched, req.peak_lr.unwrap_or(t.peak_lr), req.steps.unwrap_or(t.steps))
        }
    };
    let steps = req.steps.unwrap_or(lr.len() as u64).min(lr.len() as u64);
    if !(params > 0.0 && params.is_finite()) || steps == 0 || req.points == 0 {
        return Err(UserError("--params, --steps and --points must be > 0".into()).into());
    }
    if !lr[..steps as usize].iter().any(|&v| v > 0.0) {
        return Err(UserError(format!(
            "the learning rate is 0 at every one of the {steps} steps: nothing trains, and the law (a function of \
             the summed learning rate) does not describe an untrained model"
        ))
        .into());
    }
    // From the end of warmup, like the fitted curves (see `curve_run`).
    let warm = curve::prep::warmup_end(&lr[..steps as usize]) as u64 + 1;
    let evals: Vec<u64> = curve::even_steps(steps, req.points).into_iter().filter(|&s| s >= warm).collect();
    let pts = curve::predict_curve(&law.fit, params, &lr, &evals, tps);
    let lv = ln_vocab.filter(|v| v.is_finite() && *v > 0.0);
    if let Some(p) = pts.iter().find(|p| !p.loss.is_finite() || lv.is_some_and(|v| p.loss > v)) {
        let why = match lv {
            Some(v) if p.loss.is_finite() => {
                format!("above ln(vocabulary) = {v:.4}, the loss of a uniform guess, which any trained model beats")
            }
            _ => "not a finite number".to_string(),
        };
        let bounds = curve::solve::at_bounds(&law.fit.law);
        return Err(UserError(format!(
            "{origin}: the loss-curve law predicts {} at step {} for N = {params:.4e}: {why}. The law does not hold \
             this far from the fitted runs{}",
            p.loss,
            p.step,
            if bounds.is_empty() { String::new() } else { format!(" (it sits at its bounds: {})", bounds.join("; ")) }
        ))
        .into());
    }
    let mut notes: Vec<String> = Vec::new();
    let bounds = curve::solve::at_bounds(&law.fit.law);
    if !bounds.is_empty() {
        notes.push(format!(
            "no interval: the fitted law sits at the bounds of its search ({}), so its 95% band says what the bounds \
             allow, not what the data determine",
            bounds.join("; ")
        ));
    }
    if let Some(p) = pts.iter().find(|p| !(p.lo.is_finite() && p.hi.is_finite()) || lv.is_some_and(|v| p.hi > v)) {
        notes.push(format!(
            "no interval: the 95% band reaches {} at step {}{}",
            p.hi,
            p.step,
            lv.map_or(String::new(), |v| format!(", above ln(vocabulary) = {v:.4}, so it excludes nothing"))
        ));
    }
    let band = notes.is_empty();
    let mut out = String::new();
    if req.csv {
        out.push_str("step,tokens,lr,loss,lo,hi\n");
        for p in &pts {
            let (lo, hi) = if band { (format!("{:.6}", p.lo), format!("{:.6}", p.hi)) } else { Default::default() };
            let _ = writeln!(out, "{},{},{:e},{:.6},{lo},{hi}", p.step, p.tokens, p.lr, p.loss);
        }
        for n in &notes {
            eprintln!("warning: {n}");
        }
    } else {
        for n in &notes {
            let _ = writeln!(out, "warning: {n}");
        }
        let _ = writeln!(
            out,
            "loss curve of N = {params:.4e} over {steps} steps ({:.4e} tokens), {}:",
            steps as f64 * tps,
            if band { "95% band" } else { "no interval" }
        );
        let _ = writeln!(out, "{:>10} {:>12} {:>10} {:>8} {:>8} {:>8}", "step", "tokens", "lr", "loss", "lo", "hi");
        for p in &pts {
            let (lo, hi) =
                if band { (format!("{:.4}", p.lo), format!("{:.4}", p.hi)) } else { ("n/a".into(), "n/a".into()) };
            let _ = writeln!(out, "{:>10} {:>12.4e} {:>10.3e} {:>8.4} {lo:>8} {hi:>8}", p.step, p.tokens, p.lr, p.loss);
        }
    }
    Ok(out)
}

/// `mpl-protocol [DIR]`: the published-curve protocol's table.
pub fn mpl_protocol(dir: &Path) -> Result<String> {
    let res = curve::protocol::run(dir).map_err(|e| UserError(format!("{e:#}")))?;
    Ok(curve::protocol::table(&res))
}

/// `fit DIR --laws ...,loss_curve`: the curve law of a results folder's finished runs.
pub fn add_curve_law_dir(
    dir: &Path,
    laws: &[crate::fit::LawName],
    bootstrap: usize,
    seed: u64,
    report: &mut FitReport,
) -> Result<()> {
    if !laws.iter().any(|l| l == LAW) {
        return Ok(());
    }
    let sw = super::sweep::sweep_of_dir(dir)?;
    let (done, _) = crate::runner::finished(&sw, &SweepDir::at(dir));
    match fit_curve_law(report, &done, bootstrap, seed) {
        Ok(c) => {
            report.warnings.extend(c.fit.warnings.iter().map(|w| format!("law {LAW}: {w}")));
            report.laws.loss_curve = Some(c);
        }
        Err(e) => report.warnings.push(format!("law {LAW} not fitted: {e:#}")),
    }
    Ok(())
}

/// What a length backtest's run lengths are measured in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LengthAxis {
    TokensPerParam,
    Tokens,
}

/// Runs whose lengths differ by less than this fraction are one length: a run trains whole
/// steps, ceil(tpp N / tokens per step) of them, within one step of tpp N.
pub const SAME_LENGTH: f64 = 0.15;

impl LengthAxis {
    /// A run's length on this axis, from its training tokens.
    pub fn of(self, r: &CurveRun, tokens: u64) -> f64 {
        match self {
            LengthAxis::TokensPerParam => tokens as f64 / r.params,
            LengthAxis::Tokens => tokens as f64,
        }
    }

    /// A length as the tables print it: tokens in SI units, tokens per parameter as they are.
    pub fn label(self, v: f64) -> String {
        match self {
            LengthAxis::Tokens => crate::report::chart::si(v),
            LengthAxis::TokensPerParam => format!("{v}"),
        }
    }

    pub(crate) fn unit(self) -> &'static str {
        match self {
            LengthAxis::TokensPerParam => "tokens per parameter",
            LengthAxis::Tokens => "tokens",
        }
    }
}

/// One predicted run of a length backtest: its errors and its predicted curve with the 95% band.
pub struct HoldoutRow {
    pub run: CurveRun,
    pub errors: curve::Errors,
    pub band: Vec<curve::CurvePoint>,
}

impl HoldoutRow {
    /// Evaluations whose actual loss lies inside the band.
    pub fn inside(&self) -> usize {
        self.band.iter().zip(&self.run.loss).filter(|(p, &y)| p.lo <= y && y <= p.hi).count()
    }

    /// Whether the run's final loss lies inside the band.
    pub fn final_inside(&self) -> bool {
        match (self.band.last(), self.run.loss.last()) {
            (Some(p), Some(&y)) => p.lo <= y && y <= p.hi,
            _ => false,
        }
    }
}

/// A length backtest of the curve law: fit on the runs whose length (`by`, from each run's
/// training tokens) is one of `fit_len` (with `MAX_BOOTSTRAP` refits behind the band, as `run`
/// fits it), predict the whole curves of the runs at `predict_len` with their 95% bands. A
/// prediction is scored by its error and by whether the band holds the actual loss (coverage,
/// not only error).
pub fn holdout(
    runs: &[(CurveRun, u64)],
    fit_len: &[f64],
    predict_len: &[f64],
    by: LengthAxis,
) -> Result<(curve::CurveFit, curve::Errors, Vec<HoldoutRow>)> {
    let is = |(r, tokens): &(CurveRun, u64), set: &[f64]| length_in(r, *tokens, by, set).is_some();
    let train: Vec<CurveRun> = runs.iter().filter(|x| is(x, fit_len)).map(|x| x.0.clone()).collect();
    let test: Vec<CurveRun> = runs.iter().filter(|x| is(x, predict_len)).map(|x| x.0.clone()).collect();
    if train.is_empty() || test.is_empty() {
        return Err(UserError(format!(
            "holdout: {} runs at {} {fit_len:?} and {} at {predict_len:?}; need some of each",
            train.len(),
            by.unit(),
            test.len()
        ))
        .into());
    }
    let fit = curve::fit_with_rollout(&train, MAX_BOOTSTRAP, 0)?;
    let rows: Vec<HoldoutRow> = test
        .into_iter()
        .map(|run| {
            let band = curve::predict_curve(&fit, run.params, &run.lr, &run.steps, run.tokens_per_step);
            let mid: Vec<f64> = band.iter().map(|p| p.loss).collect();
            HoldoutRow { errors: curve::Errors::of(&mid, &run.loss), run, band }
        })
        .collect();
    Ok((fit, curve::Errors::pool(&rows.iter().map(|r| r.errors).collect::<Vec<_>>()), rows))
}

/// The entry of `set` that a run's length (on axis `by`) matches, if any, within `SAME_LENGTH`.
fn length_in(r: &CurveRun, tokens: u64, by: LengthAxis, set: &[f64]) -> Option<f64> {
    let x = by.of(r, tokens);
    set.iter().copied().find(|v| (x / v - 1.0).abs() < SAME_LENGTH)
}

/// The decay gains of a length backtest (the relative fall of each run's loss over its
/// learning-rate decay, actual and the law's) by model size and run length, fitted and held-out
/// lengths side by side: whether a held-out length's miss is in how much its decay takes off
/// or in the level the decay starts from. On `curve_law` (fit 5 and 10 tokens per parameter,
/// predict 20) the law expects the longest runs' decays to take 3.3% off where they took 4.1%;
/// on `realtext` (0.5M, 1M, 2M tokens to 4M) it gets the decays about right (15.7% against
/// 14.9%) and misses the level: its stable phase keeps falling where the text's flattens.
pub fn decay_gain_table(
    fit: &curve::CurveFit,
    runs: &[(CurveRun, u64)],
    fit_len: &[f64],
    predict_len: &[f64],
    by: LengthAxis,
) -> String {
    let lengths: Vec<f64> = {
        let mut l: Vec<f64> = fit_len.iter().chain(predict_len).copied().collect();
        l.sort_by(f64::total_cmp);
        l.dedup();
        l
    };
    let mut sizes: Vec<f64> = runs.iter().map(|(r, _)| r.params).collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    // (size, length) -> (actual gain, law's gain); a size with several runs of one length
    // (seeds) shows the first.
    let mut cells = std::collections::BTreeMap::new();
    let (mut held_actual, mut held_law) = (Vec::new(), Vec::new());
    for (r, tokens) in runs {
        let Some(len) = length_in(r, *tokens, by, &lengths) else { continue };
        let pred = curve::predict(&fit.law, r.params, &r.lr, &r.steps);
        let (Some(a), Some(l)) = (curve::run_decay_gain(r, &r.loss), curve::run_decay_gain(r, &pred)) else {
            continue;
        };
        let si = sizes.iter().position(|&n| n == r.params).expect("listed");
        let li = lengths.iter().position(|&v| v == len).expect("listed");
        cells.entry((si, li)).or_insert((a, l));
        if predict_len.contains(&len) {
            held_actual.push(a);
            held_law.push(l);
        }
    }
    if cells.is_empty() {
        return "decay gains: no run has an evaluation at peak learning rate before its decay".into();
    }
    let label = |v: f64| by.label(v);
    let mut out = format!(
        "decay gains (the relative fall of the loss over each run's learning-rate decay: actual / the law's), by \
         model size and {}; * = held out:\n\n| N |",
        by.unit()
    );
    for &v in &lengths {
        let _ = write!(out, " {}{} |", label(v), if predict_len.contains(&v) { "*" } else { "" });
    }
    let _ = write!(out, "\n|---|{}\n", "---|".repeat(lengths.len()));
    for (si, n) in sizes.iter().enumerate() {
        if !(0..lengths.len()).any(|li| cells.contains_key(&(si, li))) {
            continue;
        }
        let _ = write!(out, "| {n:.0} |");
        for li in 0..lengths.len() {
            match cells.get(&(si, li)) {
                Some((a, l)) => {
                    let _ = write!(out, " {:.1}% / {:.1}% |", 100.0 * a, 100.0 * l);
                }
                None => out.push_str(" - |"),
            }
        }
        out.push('\n');
    }
    if !held_actual.is_empty() {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let _ = writeln!(
            out,
            "\nheld-out runs' decays: actual gain {:.1}% on average, the law's {:.1}%",
            100.0 * mean(&held_actual),
            100.0 * mean(&held_law)
        );
    }
    out
}

/// One line on a curve fit's rollout backtest: by factor, the error, coverage and widening of
/// the held-out evaluations (what widens the fit's predicted bands).
pub fn rollout_summary(fit: &curve::CurveFit) -> String {
    let Some(r) = &fit.rollout else {
        return "rollout backtest over curves: none (too few runs below half the largest compute and tokens); bands \
                are not widened for distance"
            .into();
    };
    format!(
        "rollout backtest over curves (bands widen by its 95th-percentile miss beyond the fitted runs): {}",
        r.summary()
    )
}

/// A results folder's finished runs as curves with their training tokens, for the length
/// backtests: each run's evaluations from `skip` of its steps on, only model size `params` if
/// given, and each run's mean curve over the `replicates` folders (other seeds) if any.
pub fn holdout_runs(
    dir: &Path,
    skip: f64,
    params: Option<f64>,
    replicates: &[PathBuf],
) -> Result<Vec<(CurveRun, u64)>> {
    let mut sets = Vec::new();
    let mut names = Vec::new();
    for d in std::iter::once(&dir.to_path_buf()).chain(replicates) {
        let sw = super::sweep::sweep_of_dir(d)?;
        let (done, _) = crate::runner::finished(&sw, &SweepDir::at(d));
        let runs: Vec<(CurveRun, RunConfig)> =
            curve_runs(&done, skip)?.into_iter().filter(|(r, _)| params.is_none_or(|n| r.params == n)).collect();
        sets.push(runs.into_iter().map(|(r, c)| (r, replicate_key(&c), c.tokens)).collect::<Vec<_>>());
        names.push(d.display().to_string());
    }
    let tokens: Vec<u64> = sets[0].iter().map(|x| x.2).collect();
    let keyed: Vec<Vec<(CurveRun, String)>> =
        sets.into_iter().map(|s| s.into_iter().map(|(r, k, _)| (r, k)).collect()).collect();
    Ok(average_replicates(&keyed, &names)?.into_iter().zip(tokens).collect())
}

/// `curve-holdout DIR --fit 5,10 --predict 20`: `holdout` on a results folder, as a table.
/// `skip` leaves out each run's evaluations before that fraction of its steps; `params`, if
/// given, keeps only the runs of that model size (a per-size fit, as the paper's).
pub fn holdout_table(
    dir: &Path,
    fit_tpp: &[f64],
    predict_tpp: &[f64],
    by: LengthAxis,
    skip: f64,
    params: Option<f64>,
    replicates: &[PathBuf],
) -> Result<String> {
    let runs = holdout_runs(dir, skip, params, replicates)?;
    let (fit, all, rows) = holdout(&runs, fit_tpp, predict_tpp, by)?;
    let mut out = String::new();
    if !replicates.is_empty() {
        let _ = writeln!(
            out,
            "curves: each run's mean over {} seeds (this folder and {}), fitted and scored as one curve\n",
            replicates.len() + 1,
            replicates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let _ = write!(
        out,
        "loss_curve fitted on {} {fit_tpp:?}, whole curves predicted at {predict_tpp:?}; 95% band: {} \
         bootstrap refits with the runs' residual scatter about the law (RMS {:.2}%):\n\n\
         | run | N | steps | evaluations | mean error | worst point | inside 95% band | final loss: predicted [95%] | actual |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        by.unit(),
        fit.bootstrap.len(),
        100.0 * fit.residual_rms
    );
    for h in &rows {
        let (r, last) = (&h.run, h.band.last().expect("runs have evaluations"));
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {} | {:.3}% | {:.3}% | {} of {} | {:.4} [{:.4}, {:.4}] | {:.4} ({}) |",
            &r.run[..r.run.len().min(12)],
            r.params,
            r.steps.last().unwrap_or(&0),
            h.errors.points,
            100.0 * h.errors.mean_rel,
            100.0 * h.errors.max_rel,
            h.inside(),
            h.errors.points,
            last.loss,
            last.lo,
            last.hi,
            r.loss.last().expect("runs have evaluations"),
            if h.final_inside() { "inside" } else { "outside" }
        );
    }
    let inside: usize = rows.iter().map(HoldoutRow::inside).sum();
    let finals_in = rows.iter().filter(|h| h.final_inside()).count();
    let _ = writeln!(
        out,
        "| **all** | | | {} | **{:.3}%** | **{:.3}%** | **{inside} of {} ({:.0}%)** | final losses inside: {finals_in} of {} | |",
        all.points,
        100.0 * all.mean_rel,
        100.0 * all.max_rel,
        all.points,
        100.0 * inside as f64 / all.points.max(1) as f64,
        rows.len()
    );
    // The same errors by phase of the predicted runs' schedules: the first tenth of a run's
    // steps (the end of warmup and the early fall), the rest at peak learning rate, the rest below it.
    let mut phases: [Vec<curve::Errors>; 3] = Default::default();
    // The signed mean of pred / actual - 1 by phase: whether the law runs above or below.
    let mut signed = [(0.0, 0usize); 3];
    for h in &rows {
        let r = &h.run;
        let pred: Vec<f64> = h.band.iter().map(|p| p.loss).collect();
        let peak = r.lr.iter().cloned().fold(0.0, f64::max);
        let total = r.lr.len() as f64;
        for (i, &s) in r.steps.iter().enumerate() {
            // The first tenth first: under a cosine schedule every point is past the peak.
            let k = if (s as f64) < 0.1 * total {
                0
            } else if r.lr[s as usize - 1] < peak {
                2
            } else {
                1
            };
            phases[k].push(curve::Errors::of(&pred[i..=i], &r.loss[i..=i]));
            signed[k].0 += pred[i] / r.loss[i] - 1.0;
            signed[k].1 += 1;
        }
    }
    let _ = write!(out, "\nby phase:");
    for ((name, e), (sum, n)) in
        ["first 10% of steps", "stable", "decay (below peak lr)"].iter().zip(&phases).zip(signed)
    {
        let e = curve::Errors::pool(e);
        if e.points == 0 {
            let _ = write!(out, " {name} no points;");
            continue;
        }
        let _ = write!(
            out,
            " {name} {} points, mean {:.3}% (signed {:+.3}%: the law {}), worst {:.3}%;",
            e.points,
            100.0 * e.mean_rel,
            100.0 * sum / n.max(1) as f64,
            if sum > 0.0 { "above" } else { "below" },
            100.0 * e.max_rel
        );
    }
    let _ = writeln!(out);
    let held: Vec<&CurveRun> = rows.iter().map(|h| &h.run).collect();
    if let Some(sc) = curve::noise::scatter(&held) {
        let _ = writeln!(
            out,
            "\nthe held-out curves' own scatter: {:.2}% RMS per evaluation about its neighbours (second differences at peak \
             learning rate past each run's first fifth, {} triples): a law that knew each run's expected curve would still \
             miss these points by about {:.2}% on average, more where a whole curve drifts (seed, data order)",
            100.0 * sc.rms,
            sc.triples,
            100.0 * sc.floor()
        );
    }
    let _ = writeln!(out, "\n{}", decay_gain_table(&fit, &runs, fit_tpp, predict_tpp, by));
    let _ = writeln!(out, "{}", rollout_summary(&fit));
    for w in &fit.warnings {
        let _ = writeln!(out, "\nwarning: {w}");
    }
    let _ = writeln!(out, "\nfitted law: {}", serde_json::to_string(&fit.law).expect("serialisable"));
    Ok(out)
}

/// Test curves: a known law's (`curve::known_law`) at sizes 1e5 to 8e5, `lengths` WSD runs
/// each (20% linear decay, `steps_of(N, j)` steps, 1,024 tokens a step, 30 evaluations), with
/// 0.2% noise per evaluation drawn from `seed`; each with its training tokens.
#[cfg(test)]
pub(crate) fn known_law_runs(steps_of: impl Fn(f64, usize) -> u64, lengths: usize, seed: u64) -> Vec<(CurveRun, u64)> {
    let law = curve::known_law(3e5);
    let s = Schedule::Wsd { warmup: 0.05, decay: 0.2, decay_shape: crate::spec::config::DecayShape::Linear };
    let mut rng = crate::rng::Rng::from_state(seed);
    let mut runs = Vec::new();
    for n in [1e5, 2e5, 4e5, 8e5] {
        for j in 0..lengths {
            let steps = steps_of(n, j);
            let lr = schedule_lr(&s, 1e-2, steps);
            let evals = curve::even_steps(steps, 30);
            let loss = curve::predict(&law, n, &lr, &evals).iter().map(|l| l * (1.0 + 2e-3 * rng.normal())).collect();
            let run =
                CurveRun { run: format!("{n}-{steps}"), params: n, tokens_per_step: 1024.0, lr, steps: evals, loss };
            runs.push((run, steps * 1024));
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_csv_errors_name_the_line_column_and_field() {
        let dir = std::env::temp_dir().join(format!("wt-curvelaw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("s.csv");
        std::fs::write(&p, "step,lr\n0,0.001\n1,0.002\n").unwrap();
        assert_eq!(read_schedule_csv(&p).unwrap(), vec![0.001, 0.002]);
        for (text, want) in [
            ("step,lr\n0,0.001\n2,0.002\n", ":3:1: field step: expected 1"),
            ("step,lr\n0,abc\n", ":2:2: field lr: expected a number"),
            ("step,lr\n0,-1\n", ":2:2: field lr: expected a number >= 0"),
            ("step,lr\n0\n", ":2:1: expected two fields"),
        ] {
            std::fs::write(&p, text).unwrap();
            let e = read_schedule_csv(&p).unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} lacks {want:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_schedule_csv_with_a_byte_order_mark_reads_like_one_without() {
        let dir = std::env::temp_dir().join(format!("wt-curvebom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bom.csv");
        std::fs::write(&p, "\u{feff}step,lr\n0,0.001\n1,0.002\n").unwrap();
        assert_eq!(read_schedule_csv(&p).unwrap(), vec![0.001, 0.002]);
        // Without a header, the BOM sits before the first step.
        std::fs::write(&p, "\u{feff}0,0.001\n").unwrap();
        assert_eq!(read_schedule_csv(&p).unwrap(), vec![0.001]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `--steps 1000000000` used to allocate 8 GB of learning rates and abort (exit 134).
    #[test]
    fn a_curve_longer_than_the_bound_is_refused_before_anything_is_allocated() {
        let req = CurveRequest { steps: Some(1_000_000_000), points: 10, ..Default::default() };
        let e = predict_curve(Path::new("/nonexistent-results"), &req).unwrap_err();
        assert!(e.downcast_ref::<UserError>().is_some(), "{e:#}");
        assert!(e.to_string().contains("1000000000 steps: predict-curve computes at most 100000000"), "{e}");
    }

    #[test]
    fn replicates_average_into_one_curve_per_config_and_mismatches_are_named() {
        // Three seeds of two configs: each seed's curve is the expected one with 0.5% noise;
        // the mean over the seeds sits nearer the expected curve than any one seed.
        let law = curve::known_law(3e5);
        let s = Schedule::Wsd { warmup: 0.05, decay: 0.2, decay_shape: crate::spec::config::DecayShape::Linear };
        let mut rng = crate::rng::Rng::from_state(11);
        let expected: Vec<(CurveRun, String)> = [(1e5, 800u64), (2e5, 1600)]
            .iter()
            .map(|&(n, steps)| {
                let lr = schedule_lr(&s, 1e-2, steps);
                let evals = curve::even_steps(steps, 40);
                let loss = curve::predict(&law, n, &lr, &evals);
                (
                    CurveRun { run: format!("{n}"), params: n, tokens_per_step: 1024.0, lr, steps: evals, loss },
                    format!("k{n}"),
                )
            })
            .collect();
        // The replicate sets list the configs in another order: matching is by config.
        let sets: Vec<Vec<(CurveRun, String)>> = (0..3)
            .map(|seed| {
                let mut set: Vec<(CurveRun, String)> = expected
                    .iter()
                    .map(|(r, k)| {
                        let loss = r.loss.iter().map(|l| l * (1.0 + 5e-3 * rng.normal())).collect();
                        (CurveRun { run: format!("{}-s{seed}", r.run), loss, ..r.clone() }, k.clone())
                    })
                    .collect();
                if seed == 1 {
                    set.reverse();
                }
                set
            })
            .collect();
        let names: Vec<String> = (0..3).map(|i| format!("results/s{i}")).collect();
        let mean = average_replicates(&sets, &names).unwrap();
        assert_eq!(mean.len(), 2);
        for (m, (e, _)) in mean.iter().zip(&expected) {
            assert_eq!((m.run.as_str(), m.params), (format!("{}-s0", e.run).as_str(), e.params));
            let want: Vec<f64> = (0..m.loss.len())
                .map(|i| {
                    sets.iter().flatten().filter(|(r, _)| r.params == m.params).map(|(r, _)| r.loss[i]).sum::<f64>()
                        / 3.0
                })
                .collect();
            assert!(m.loss.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-12), "the mean of the three seeds");
            let one = curve::Errors::of(&sets[0].iter().find(|(r, _)| r.params == m.params).unwrap().0.loss, &e.loss);
            let avg = curve::Errors::of(&m.loss, &e.loss);
            assert!(avg.mean_rel < 0.8 * one.mean_rel, "mean {avg:?} against one seed {one:?}");
        }
        // A replicate folder without one of the configs: the error names the folder and the run.
        let mut missing = sets.clone();
        missing[2].pop();
        let e = average_replicates(&missing, &names).unwrap_err().to_string();
        assert!(e.contains("results/s2 has no run with the config of run 200000-s0"), "{e}");
        // Evaluated at other steps: named, not averaged point by point.
        let mut other = sets.clone();
        other[1][0].0.steps[3] += 1;
        let e = average_replicates(&other, &names).unwrap_err().to_string();
        assert!(e.contains("of results/s1 is evaluated at other steps"), "{e}");
    }

    #[test]
    fn the_length_backtest_scores_error_and_coverage_of_held_out_lengths() {
        // Curves of a known law (0.2% noise per evaluation) at three WSD lengths per size.
        let runs = known_law_runs(|_, j| 800 << j, 3, 3);
        let (fit, all, rows) = holdout(&runs, &[819_200.0, 1_638_400.0], &[3_276_800.0], LengthAxis::Tokens).unwrap();
        assert_eq!(rows.len(), 4, "one held-out run per size");
        assert!(rows.iter().all(|h| h.run.lr.len() == 3200 && h.band.len() == h.run.loss.len()));
        assert!(all.mean_rel < 5e-3, "held-out length error {all:?} (law {:?})", fit.law);
        let inside: usize = rows.iter().map(HoldoutRow::inside).sum();
        assert!(inside as f64 >= 0.9 * all.points as f64, "{inside} of {} inside", all.points);
        // The decay gains: a row per size, the held-out length starred, and under a known law
        // the law's held-out gains match the actual ones.
        let fit_len = [819_200.0, 1_638_400.0];
        let table = decay_gain_table(&fit, &runs, &fit_len, &[3_276_800.0], LengthAxis::Tokens);
        assert!(table.contains("| N | 819.2k | 1.638M | 3.277M* |"), "{table}");
        assert_eq!(table.lines().filter(|l| l.starts_with("| ") && l.contains(" / ")).count(), 4, "{table}");
        let held = table.lines().find(|l| l.starts_with("held-out runs' decays")).expect("summary");
        let pct: Vec<f64> =
            held.split_whitespace().filter_map(|w| w.trim_end_matches([',', '%']).parse().ok()).collect();
        assert!(pct.len() == 2 && pct[0] > 1.0 && (pct[0] - pct[1]).abs() < 0.1 * pct[0], "{held}");
        assert!(rows.iter().all(HoldoutRow::final_inside));
        // A band that excludes the actual losses counts none of them inside.
        let mut off = rows.into_iter().next().unwrap();
        off.band.iter_mut().for_each(|p| (p.lo, p.hi) = (p.loss * 2.0, p.loss * 3.0));
        assert_eq!((off.inside(), off.final_inside()), (0, false));
        // The same lengths as tokens per parameter select nothing: the error names the axis.
        let e = holdout(&runs, &[819_200.0], &[3_276_800.0], LengthAxis::TokensPerParam).err().unwrap().to_string();
        assert!(e.contains("0 runs at tokens per parameter") && e.contains("need some of each"), "{e}");
    }

    /// A known law with a band of 12 refits, and the target the sweep would have given it.
    fn known_report(law: curve::CurveLaw) -> CurveLawReport {
        let runs: Vec<CurveRun> = known_law_runs(|_, j| 800 << j, 2, 1).into_iter().map(|r| r.0).collect();
        let mut fit = curve::fit(&runs, 0, 0).unwrap();
        fit.law = law;
        fit.bootstrap =
            (0..12).map(|i| curve::CurveLaw { e: law.e * (1.0 + 0.002 * (i as f64 - 5.5)), ..law }).collect();
        fit.residual_rms = 2e-3;
        fit.rollout = None;
        let mut rep = CurveLawReport::new(fit, &runs);
        let s = Schedule::Wsd { warmup: 0.05, decay: 0.2, decay_shape: crate::spec::config::DecayShape::Linear };
        rep.target = Some(target_curve(&rep, 4e5, &s, 1e-2, 3200, 1024.0));
        rep
    }

    /// `predict-curve` refuses what would extrapolate into nonsense (a learning rate of 0, NaN
    /// or -1 gave 1.564e184; --params 1e6 gave 19.76 above ln 256 = 5.55), rejects --steps and
    /// --lr beside --schedule, and prints no band as if it held when the law sits at its bounds.
    #[test]
    fn predict_curve_refuses_nonsense_and_says_when_no_interval_holds() {
        let law = curve::known_law(3e5);
        let rep = known_report(law);
        let req = CurveRequest { points: 16, ..Default::default() };
        let ln256 = Some(256f64.ln());
        let ok = predict_curve_of(&rep, ln256, "d", &req).unwrap();
        assert!(ok.contains("95% band:") && !ok.contains("warning") && !ok.contains("n/a"), "{ok}");
        let e = |r: CurveRequest, lv: Option<f64>| predict_curve_of(&rep, lv, "d", &r).unwrap_err();
        for lr in [0.0, f64::NAN, -1.0, 2.0] {
            let err = e(CurveRequest { peak_lr: Some(lr), ..req.clone() }, ln256);
            assert!(err.downcast_ref::<UserError>().is_some() && err.to_string().contains("--lr"), "{lr}: {err}");
        }
        for n in [0.0, -5.0, f64::NAN, f64::INFINITY, 1e30] {
            let err = e(CurveRequest { params: Some(n), ..req.clone() }, ln256).to_string();
            assert!(err.contains("--params"), "{n}: {err}");
        }
        let dir = std::env::temp_dir().join(format!("wt-predict-nonsense-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let zero = dir.join("zero.csv");
        std::fs::write(&zero, (0..100).map(|i| format!("{i},0\n")).collect::<String>()).unwrap();
        let sched = CurveRequest { schedule_csv: Some(zero.clone()), ..req.clone() };
        assert!(e(sched.clone(), ln256).to_string().contains("learning rate is 0 at every one of the 100 steps"));
        for (r, flag) in [
            (CurveRequest { steps: Some(50), ..sched.clone() }, "--steps conflicts with --schedule"),
            (CurveRequest { peak_lr: Some(1e-3), ..sched }, "--lr conflicts with --schedule"),
        ] {
            assert!(e(r, ln256).to_string().contains(flag), "{flag}");
        }
        std::fs::remove_dir_all(&dir).ok();
        // A prediction above ln(vocabulary) is refused (here: a vocabulary of 4, ln 4 = 1.39).
        let err = e(req.clone(), Some(4f64.ln())).to_string();
        assert!(err.contains("above ln(vocabulary) = 1.3863") && err.contains("does not hold"), "{err}");
        // The law at its bounds (alpha 2, p_exp -2, a_exp 168 on the tiny sweep): no band.
        let bounded = known_report(curve::CurveLaw { alpha: 2.0, a_exp: 168.0, ..law });
        let out = predict_curve_of(&bounded, ln256, "d", &CurveRequest { params: Some(3e5), ..req.clone() }).unwrap();
        assert!(out.contains("warning: no interval: the fitted law sits at the bounds"), "{out}");
        assert!(out.contains("alpha = 2.0000 is at the end") && out.contains("a_exp = 168.0000 is past"), "{out}");
        assert!(out.contains("no interval:\n") && out.contains("n/a"), "{out}");
        let csv = CurveRequest { params: Some(3e5), csv: true, ..req };
        let out = predict_curve_of(&bounded, ln256, "d", &csv).unwrap();
        assert!(out.lines().skip(1).all(|l| l.ends_with(",,")), "{out}");
    }

    #[test]
    fn the_schedule_is_the_trainers() {
        use crate::spec::config::DecayShape;
        let s = Schedule::Wsd { warmup: 0.1, decay: 0.2, decay_shape: DecayShape::Linear };
        let lr = schedule_lr(&s, 0.01, 100);
        assert_eq!(lr.len(), 100);
        assert!((lr[0] - 0.001).abs() < 1e-12 && lr[50] == 0.01 && lr[99] < 0.001);
        // Warmup ends where the trainer's multiplier first reaches 1.
        assert_eq!(curve::prep::warmup_end(&lr), 9);
    }
}
