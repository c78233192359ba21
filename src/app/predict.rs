//! `windtunnel predict DIR --params N --tokens D [--json]` (or `--flops C` for the
//! compute-optimal split): a planned run's loss on every validation set the folder has a law
//! for (fit.json's primary loss; an imported folder's other sets from fit_sets.json), each
//! with its 95% interval or the reason there is none (`fit::planned`), and the fit's verdict.
//! Works on trained and imported folders alike: it reads only fit.json, fit_sets.json and
//! runs.parquet.

use crate::fit::{self, FitReport, Interval};
use crate::store::{self, frame, SweepDir};
use crate::UserError;
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A results folder (results/<sweep>, trained or imported) with its fit.json.
    pub dir: PathBuf,
    /// Parameters N of the planned run (with --tokens).
    #[arg(long)]
    pub params: Option<f64>,
    /// Training tokens D of the planned run (with --params).
    #[arg(long)]
    pub tokens: Option<f64>,
    /// Training compute C = 6ND alone: the law's compute-optimal split at C.
    #[arg(long)]
    pub flops: Option<f64>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<i32> {
    let out = predict(&args.dir, args.params, args.tokens, args.flops)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", render(&out));
    }
    Ok(0)
}

/// One validation set's prediction.
#[derive(Clone, Debug, Serialize)]
pub struct SetPrediction {
    pub set: String,
    pub primary: bool,
    #[serde(flatten)]
    pub p: fit::planned::Prediction,
    /// The fit's verdict on its own target (whether its loss there is determined, and why not).
    pub loss_determined: Option<bool>,
    pub verdict: Vec<String>,
}

/// The compute-optimal split asked for with --flops.
#[derive(Clone, Debug, Serialize)]
pub struct Split {
    pub flops: f64,
    pub n_opt: f64,
    pub d_opt: f64,
    pub n_opt_interval: Option<Interval>,
    pub d_opt_interval: Option<Interval>,
    /// Whether the fit's verdict calls the split determined, and why not.
    pub determined: Option<bool>,
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Output {
    pub dir: String,
    pub params: f64,
    pub tokens: f64,
    pub flops: f64,
    pub split: Option<Split>,
    pub predictions: Vec<SetPrediction>,
}

fn positive(x: Option<f64>, flag: &str) -> Result<Option<f64>> {
    match x {
        Some(v) if !(v.is_finite() && v > 0.0) => Err(UserError(format!("{flag} {v} must be a number > 0")).into()),
        _ => Ok(x),
    }
}

pub fn predict(dir: &Path, params: Option<f64>, tokens: Option<f64>, flops: Option<f64>) -> Result<Output> {
    let (params, tokens, flops) =
        (positive(params, "--params")?, positive(tokens, "--tokens")?, positive(flops, "--flops")?);
    let sd = SweepDir::at(dir);
    let fit: FitReport = store::read_json(&sd.fit_json()).map_err(|e| {
        UserError(format!(
            "{}: no usable fit.json ({e:#}); run `windtunnel fit {}` first",
            dir.display(),
            dir.display()
        ))
    })?;
    let law = fit.params.ok_or_else(|| {
        UserError(format!("{}: fit.json has no law ({})", dir.display(), fit.chinchilla_skipped().unwrap_or("?")))
    })?;
    let (n, d, split) = match (params, tokens, flops) {
        (Some(n), Some(d), None) => (n, d, None),
        (None, None, Some(c)) => {
            let (n, d, niv, div) = fit::planned::split(&fit, c).expect("law present");
            // Judged at this C, as the verdict judges its own target: an N_opt interval more
            // than MAX_SPREAD wide does not determine the split, and neither does a
            // degenerate law at any C.
            let scale = law.predict(n, d);
            let mut reasons = fit::planned::degenerate(&fit, scale, fit.verdict.as_ref().and_then(|v| v.floor));
            match niv {
                Some(iv) if fit::verdict::spread(&iv) > fit::verdict::MAX_SPREAD => reasons.push(format!(
                    "the 95% interval of N_opt at C = {c:.3e}, [{:.3e}, {:.3e}], is {:.1}x wide (more than {}x)",
                    iv.lo,
                    iv.hi,
                    fit::verdict::spread(&iv),
                    fit::verdict::MAX_SPREAD
                )),
                Some(_) => {}
                None => reasons.push("N_opt has no interval (no bootstrap refits in fit.json)".into()),
            }
            let s = Split {
                flops: c,
                n_opt: n,
                d_opt: d,
                n_opt_interval: niv,
                d_opt_interval: div,
                determined: Some(reasons.is_empty()),
                reasons,
            };
            (n, d, Some(s))
        }
        _ => {
            return Err(UserError(
                "give --params N with --tokens D (a planned run), or --flops C alone (the compute-optimal split)"
                    .into(),
            )
            .into())
        }
    };
    // The fitted final points (E is judged against the law's loss there).
    let obs = frame::read_frame(&sd.runs_parquet())
        .and_then(|df| frame::to_obs(&df, &sd.runs_parquet().display().to_string()));
    let finals: Vec<fit::Obs> = obs.map(|o| o.into_iter().filter(|o| o.is_final).collect()).unwrap_or_default();
    let primary =
        store::read_json::<store::imported::Record>(&sd.import_json()).map_or("loss".to_string(), |r| r.primary);
    let mut predictions = Vec::new();
    let mut one = |set: String, primary: bool, f: &FitReport, scale: f64| {
        if let Some(p) = fit::planned::predict(f, n, d, scale) {
            let v = f.verdict.as_ref();
            predictions.push(SetPrediction {
                set,
                primary,
                p,
                loss_determined: v.map(|v| v.loss_determined),
                verdict: v.map_or(Vec::new(), |v| v.loss_reasons.clone()),
            });
        }
    };
    let scale_of = |f: &FitReport| {
        let l = f.params.expect("fitted");
        let s = finals.iter().map(|o| l.predict(o.params, o.tokens)).fold(f64::INFINITY, f64::min);
        if s.is_finite() {
            s
        } else {
            l.predict(n, d)
        }
    };
    one(primary, true, &fit, scale_of(&fit));
    if let Ok(sets) = store::read_json::<BTreeMap<String, FitReport>>(&sd.fit_sets_json()) {
        for (s, f) in &sets {
            if f.params.is_some() {
                one(s.clone(), false, f, scale_of(f));
            }
        }
    }
    Ok(Output {
        dir: dir.display().to_string(),
        params: n,
        tokens: d,
        flops: crate::flops::chinchilla_flops(n, d),
        split,
        predictions,
    })
}

pub fn render(o: &Output) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if let Some(sp) = &o.split {
        let iv = |i: &Option<Interval>| i.map_or("no interval".into(), |i| format!("95% [{:.3e}, {:.3e}]", i.lo, i.hi));
        let _ = writeln!(
            s,
            "compute-optimal split at C = {:.3e}: N_opt {:.3e} ({}), D_opt {:.3e} ({})",
            sp.flops,
            sp.n_opt,
            iv(&sp.n_opt_interval),
            sp.d_opt,
            iv(&sp.d_opt_interval)
        );
        if sp.determined == Some(false) {
            let _ = writeln!(s, "  the split is NOT determined by this fit: {}", sp.reasons.join("; "));
        }
    }
    let _ = writeln!(s, "planned run: N = {:.4e}, D = {:.4e} (C = 6ND = {:.3e})", o.params, o.tokens, o.flops);
    for p in &o.predictions {
        let at = p.p.factor.map_or(String::new(), |f| format!(", {f:.1}x the largest fitted run's compute"));
        let iv = match (&p.p.interval, &p.p.withheld) {
            (Some(i), _) => format!("95% [{:.4}, {:.4}]", i.lo, i.hi),
            (None, Some(w)) => format!("NO interval: {w}"),
            (None, None) => "no interval".into(),
        };
        let _ = writeln!(s, "  {}{}: {:.4} {iv}{at}", p.set, if p.primary { " (primary)" } else { "" }, p.p.loss);
        if p.primary && p.loss_determined == Some(false) && !p.verdict.is_empty() {
            let _ = writeln!(s, "    verdict at the fit's own target: loss not determined: {}", p.verdict.join("; "));
        }
    }
    s
}
