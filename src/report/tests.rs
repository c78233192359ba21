//! The report end to end on a synthetic frame and fit (no training, no fitting): every plot
//! that has data is drawn and non-empty, the HTML is self-contained, the headline is there,
//! and a comparison reads a better sweep as denser than the reference.

use super::compare::{self, Loaded};
use super::runs::run_curves;
use super::*;
use crate::fit::chinchilla::backtest::{Backtest, BacktestPoint};
use crate::fit::chinchilla::law::{Law, TargetSpec};
use crate::fit::{isoflop, Interval, Obs};
use crate::flops;
use polars::prelude::*;
use std::collections::BTreeMap;

/// E above the built-in mixture's entropy floor (about 1.77), so the verdict judges this fit
/// determined.
fn law() -> Law {
    Law { e: 1.8, a: 20.0, b: 40.0, alpha: 0.3, beta: 0.3 }
}

struct Run {
    id: String,
    width: usize,
    lr: f64,
    tokens: f64,
    scale: f64,
}

/// Three IsoFLOP budgets x five widths, plus one width at three learning rates.
fn runs(scale: f64) -> Vec<Run> {
    let mut v = Vec::new();
    for c in [2e10, 6e10, 2e11] {
        for w in [16, 24, 32, 48, 64] {
            let n = flops::params(w, 1, 256) as f64;
            v.push(Run {
                id: format!("c{c:e}-w{w}"),
                width: w,
                lr: 1e-2,
                tokens: (crate::flops::chinchilla_tokens(c, n)).round(),
                scale,
            });
        }
    }
    for lr in [3e-3, 1e-2, 3e-2] {
        let n = flops::params(32, 1, 256) as f64;
        v.push(Run {
            id: format!("lr{lr:e}"),
            width: 32,
            lr,
            tokens: crate::flops::chinchilla_tokens(1e12, n).round(),
            scale,
        });
    }
    v
}

fn loss(r: &Run, n: f64, d: f64) -> f64 {
    r.scale * (law().predict(n, d) + 0.05 * (r.lr / 1e-2).ln().powi(2))
}

fn frame(runs: &[Run]) -> DataFrame {
    let mut s: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let (mut ids, mut fin, mut ints) = (Vec::new(), Vec::new(), BTreeMap::<&str, Vec<i64>>::new());
    for r in runs {
        let n = flops::params(r.width, 1, 256) as f64;
        for k in 1..=4 {
            let d = r.tokens * k as f64 / 4.0;
            ids.push(r.id.clone());
            fin.push(k == 4);
            for (c, v) in [("width", r.width as i64), ("depth", 1), ("heads", r.width as i64 / 16), ("seq_len", 32)] {
                ints.entry(c).or_default().push(v);
            }
            ints.entry("batch_size").or_default().push(4);
            ints.entry("step").or_default().push(k);
            for (c, v) in [
                ("lr", r.lr),
                ("params", n),
                ("tokens", d),
                ("flops", crate::flops::chinchilla_flops(n, d)),
                ("loss", loss(r, n, d)),
            ] {
                s.entry(c).or_default().push(v);
            }
            s.entry("mix_markov").or_default().push(0.5);
            s.entry("mix_grammar").or_default().push(0.5);
        }
    }
    let mut cols = vec![Column::new("run_id".into(), ids), Column::new("is_final".into(), fin)];
    cols.extend(ints.into_iter().map(|(k, v)| Column::new(k.into(), v)));
    cols.extend(s.into_iter().map(|(k, v)| Column::new(k.into(), v)));
    DataFrame::new(cols[0].len(), cols).unwrap()
}

fn fit_report(df: &DataFrame) -> FitReport {
    let obs = crate::store::frame::to_obs(df, "synthetic").unwrap();
    let t = law().target(TargetSpec::Flops(1e14));
    let band = |v: f64| Interval { lo: v * 0.9, hi: v * 1.1 };
    let mut intervals = BTreeMap::new();
    for (k, v) in [("loss", t.loss), ("n_opt", t.n_opt), ("d_opt", t.d_opt), ("tokens_per_param", t.tokens_per_param)] {
        intervals.insert(k.to_string(), band(v));
    }
    // The loss is pinned down far more tightly than the split (as in real sweeps).
    intervals.insert("loss".into(), Interval { lo: t.loss * 0.98, hi: t.loss * 1.02 });
    let points: Vec<BacktestPoint> = obs
        .iter()
        .filter(|o| o.run.ends_with("w64") && o.is_final)
        .map(|o| BacktestPoint {
            run: o.run.clone(),
            params: o.params,
            tokens: o.tokens,
            actual: o.loss,
            predicted: o.loss * 1.01,
            rel_err: 0.01,
        })
        .collect();
    let finals: Vec<Obs> = obs.iter().filter(|o| o.is_final && !o.run.starts_with("lr")).cloned().collect();
    let laws = crate::fit::Laws { isoflop: Some(isoflop::fit(&finals).unwrap()), ..Default::default() };
    FitReport {
        law: "chinchilla".into(),
        params: Some(law()),
        objective: 1e-6,
        n_points: finals.len(),
        n_sizes: 5,
        starts: 1,
        converged_starts: 1,
        target: Some(t),
        intervals,
        bootstrap_resamples: 10,
        bootstrap_ok: 10,
        backtest: Some(Backtest {
            protocol: "hold out the largest model size".into(),
            held_out_runs: points.iter().map(|p| p.run.clone()).collect(),
            n_fit_points: 12,
            points,
            are: 0.01,
        }),
        warnings: vec!["synthetic".into()],
        laws,
        // A band of +-2% around the frontier, so the plot draws it.
        frontier: (0..=32)
            .map(|k| 10f64.powf(8.0 + 0.5 * k as f64))
            .map(|c| {
                let l = law().target(crate::fit::chinchilla::law::TargetSpec::Flops(c)).loss;
                crate::fit::FrontierPoint { flops: c, loss: l, lo: l * 0.98, hi: l * 1.02 }
            })
            .collect(),
        rollout: Some(rollout(&obs)),
        ..Default::default()
    }
}

/// A rollout of two factors over the synthetic runs' final points (predictions 1% high,
/// intervals +-1.5%, so most are inside).
fn rollout(obs: &[crate::fit::Obs]) -> crate::fit::Rollout {
    use crate::fit::chinchilla::rollout::{FactorStats, RolloutPoint};
    let fin: Vec<&crate::fit::Obs> = obs.iter().filter(|o| o.is_final).collect();
    let c_max = fin.iter().map(|o| crate::flops::chinchilla_flops(o.params, o.tokens)).fold(0.0, f64::max);
    let mut points = Vec::new();
    let mut by_factor = Vec::new();
    for k in [2.0, 4.0] {
        let held: Vec<RolloutPoint> = fin
            .iter()
            .filter(|o| crate::flops::chinchilla_flops(o.params, o.tokens) >= c_max / k)
            .map(|o| RolloutPoint {
                k,
                run: o.run.clone(),
                params: o.params,
                tokens: o.tokens,
                flops: crate::flops::chinchilla_flops(o.params, o.tokens),
                factor: k * crate::flops::chinchilla_flops(o.params, o.tokens) / c_max,
                predicted: o.loss * 1.01,
                lo: o.loss * 0.995,
                hi: o.loss * 1.025,
                actual: o.loss,
                rel_err: 0.01,
                inside: true,
            })
            .collect();
        by_factor.push(FactorStats {
            k,
            n: held.len(),
            n_fit: fin.len() - held.len(),
            // Small enough that, grown to the target's 100x, the expected error stays under the
            // verdict's 5%: this fixture is the well-determined case.
            mean_abs_rel_err: 0.005 * k / 2.0,
            max_abs_rel_err: 0.01 * k / 2.0,
            coverage: 1.0,
            widen95: 0.0,
            abs_err95: 0.01 * k / 2.0,
        });
        points.extend(held);
    }
    let mut r = crate::fit::Rollout {
        protocol: "synthetic".into(),
        c_max,
        points,
        points_left_out: 0,
        by_factor,
        at_target: None,
    };
    r.at_target = Some(r.at(1e14));
    r
}

fn tmp(name: &str) -> SweepDir {
    let root = std::env::temp_dir().join(format!("wt-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    SweepDir { root }
}

#[test]
fn html_report_is_self_contained_and_every_plot_has_data() {
    let sweep = crate::spec::load(std::path::Path::new("sweeps/tiny.toml")).unwrap();
    let df = frame(&runs(1.0));
    let mut fit = fit_report(&df);
    fit.left_out = vec![crate::fit::LeftOut { run: "r-short".into(), steps: 42, min_steps: 100 }];
    let dir = tmp("html");
    let w = write_report(&dir, &sweep, &fit, &df, &[], &ReportOptions::default()).unwrap();
    let names: Vec<String> = w.plots.iter().map(|p| p.file_stem().unwrap().to_string_lossy().to_string()).collect();
    for want in ["loss_vs_compute", "isoflop", "loss_vs_lr", "backtest", "rollout", "residuals"] {
        assert!(names.iter().any(|n| n == want), "{want} not drawn: {names:?}");
    }
    for p in &w.plots {
        let svg = std::fs::read_to_string(p).unwrap();
        assert!(svg.contains("<svg"), "{}", p.display());
        assert!(svg.contains("<circle") || svg.contains("<polyline") || svg.contains("<path"), "{}", p.display());
    }
    let html = std::fs::read_to_string(&w.html).unwrap();
    assert_eq!(html.matches("<svg").count(), w.plots.len());
    let lvc = std::fs::read_to_string(dir.plots_dir().join("loss_vs_compute.svg")).unwrap();
    assert!(lvc.contains("<polygon") && lvc.contains("95% bootstrap band"), "no frontier band drawn");
    let rest = html.replace("http://www.w3.org/2000/svg", "");
    assert!(!rest.contains("http") && !rest.contains("<script") && !rest.contains("src="), "external reference");
    assert!(html.contains("<table class=\"headline\">") && html.contains("predicted loss"));
    assert!(html.contains("estimated GPU-hours") && html.contains("Shape rule"));
    let md = std::fs::read_to_string(&w.md).unwrap();
    for s in [
        "Backtest",
        "Rollout backtest: error against extrapolation factor",
        "At the target (",
        "predicted loss",
        "## Runs",
        "](plots/loss_vs_compute.svg)",
        "skipped: the sweep trains a single",
        "Left out of the final-point laws (fewer than 100 optimizer steps",
        "`r-short` (42 steps)",
    ] {
        assert!(md.contains(s), "report.md lacks {s:?}:\n{md}");
    }
    let _ = std::fs::remove_dir_all(&dir.root);
}

#[test]
fn a_better_sweep_is_denser_than_the_reference() {
    let sweep = crate::spec::load(std::path::Path::new("sweeps/tiny.toml")).unwrap();
    let (a, b) = (frame(&runs(1.0)), frame(&runs(0.97)));
    let load = |df: &DataFrame, dir: SweepDir| Loaded {
        dir,
        sweep: sweep.clone(),
        fit: fit_report(df),
        runs: run_curves(df).unwrap(),
    };
    let all = [load(&a, tmp("cmp-a")), load(&b, tmp("cmp-b"))];
    let (rho, cr, used) = compare::relative(&all[0].fit.params.unwrap(), &all[1].runs);
    assert!(rho.unwrap() > 1.0 && cr.unwrap() > 1.0 && used > 0, "{rho:?} {cr:?}");
    let (rho0, _, _) = compare::relative(&all[0].fit.params.unwrap(), &all[0].runs);
    assert!(rho0.unwrap() > 0.5 && rho0.unwrap() < 2.0);
    let w = compare::write_compare(&all).unwrap();
    let html = std::fs::read_to_string(&w.html).unwrap();
    assert!(html.contains("median density") && html.matches("<svg").count() == 1);
    for l in &all {
        let _ = std::fs::remove_dir_all(&l.dir.root);
    }
}

/// A degenerate fit (N_opt's interval 10,000x wide, E below the data's known floor) yields the
/// "not determined" headline with runs that would narrow it (no promise that they determine it),
/// no shape, no loss presented as a result, and a marked frontier.
#[test]
fn a_degenerate_fit_yields_the_not_determined_headline() {
    let sweep = crate::spec::load(std::path::Path::new("sweeps/tiny.toml")).unwrap();
    let df = frame(&runs(1.0));
    let mut fit = fit_report(&df);
    let t = fit.target.unwrap();
    fit.intervals.insert("n_opt".into(), Interval { lo: t.n_opt / 100.0, hi: t.n_opt * 100.0 });
    fit.params.as_mut().expect("the test fit has a law").e = 1.0;
    // A loss-curve law whose target curve (at the undetermined split) ends below the floor.
    let curves = crate::fit::curve::synthetic_sweep(2, 0);
    let cf = crate::fit::curve::fit(&curves, 0, 0).unwrap();
    // The curves' own scatter (0.3% noise) is measured, and the figure's caption says what it
    // leaves any law.
    assert!((cf.eval_scatter_rms / 3e-3 - 1.0).abs() < 0.15, "scatter {}", cf.eval_scatter_rms);
    let mut cl = crate::fit::curve::CurveLawReport::new(cf, &curves);
    let point = |step: u64, loss: f64| crate::fit::curve::CurvePoint {
        step,
        tokens: step as f64 * 1024.0,
        lr: 1e-3,
        loss,
        lo: loss * 0.95,
        hi: loss * 1.05,
    };
    cl.target = Some(crate::fit::curve::TargetCurve {
        params: t.n_opt,
        steps: 4000,
        tokens_per_step: 1024.0,
        peak_lr: 1e-2,
        schedule: serde_json::Value::Null,
        curve: vec![point(1000, 2.5), point(4000, 1.0)],
        decay_extrapolated: false,
    });
    fit.laws.loss_curve = Some(cl);
    let dir = tmp("undetermined");
    write_report(&dir, &sweep, &fit, &df, &[], &ReportOptions::default()).unwrap();
    let lc = std::fs::read_to_string(dir.plots_dir().join("loss_curve.svg")).unwrap();
    assert!(
        lc.contains("NOT DETERMINED") && lc.contains("not a result") && lc.contains("entropy floor"),
        "the curve law's target is not marked"
    );
    let md = std::fs::read_to_string(dir.report_md()).unwrap();
    for s in [
        "## Target run: not determined by this sweep",
        "is 10000x wide",
        "below the data's known entropy floor",
        "Runs that would narrow it",
        "searched: the largest linearised drop of N_opt's interval per FLOP",
        "a ranking, not a promise",
        "design --continue",
        "The fitted curves scatter 0.",
        "no law of the schedule comes closer to them than about 0.",
    ] {
        assert!(md.contains(s), "report.md lacks {s:?}:\n{md}");
    }
    assert!(!md.contains("Shape rule") && !md.contains("Recommended target run"), "{md}");
    assert!(!md.contains("would determine it"), "suggested runs are not promised to determine the split:\n{md}");
    let lvc = std::fs::read_to_string(dir.plots_dir().join("loss_vs_compute.svg")).unwrap();
    assert!(lvc.contains("NOT DETERMINED"), "the degenerate frontier is not marked");
    // A target curve above the floor whose decay runs far past the sweep's is marked too.
    let mut far = fit.clone();
    let t = far.laws.loss_curve.as_mut().unwrap().target.as_mut().unwrap();
    t.curve[1] = point(4000, 2.0);
    t.decay_extrapolated = true;
    write_report(&dir, &sweep, &far, &df, &[], &ReportOptions::default()).unwrap();
    let lc = std::fs::read_to_string(dir.plots_dir().join("loss_curve.svg")).unwrap();
    assert!(lc.contains("decay extrapolated far past the sweep") && lc.contains("not a result"), "not marked");
    // The same fit with its floor respected and a tight N_opt is recommended as before.
    let ok = fit_report(&df);
    write_report(&dir, &sweep, &ok, &df, &[], &ReportOptions::default()).unwrap();
    let md = std::fs::read_to_string(dir.report_md()).unwrap();
    assert!(
        md.contains("Recommended target run") && md.contains("Shape rule") && !md.contains("not determined"),
        "{md}"
    );
    // A determined split with an undetermined loss: one run on the frontier measures it, and no
    // IsoFLOP profile is described.
    let mut loss_only = ok.clone();
    let t = ok.target.unwrap();
    loss_only.verdict = Some(crate::fit::Verdict {
        determined: true,
        reasons: Vec::new(),
        loss_determined: false,
        loss_reasons: vec!["its 95% interval spans 40% of the prediction".into()],
        suggest: vec![crate::fit::verdict::Suggestion {
            params: 4.0 * t.n_opt,
            tokens: 4.0 * t.n_opt * 20.0,
            tokens_per_param: 20.0,
            flops: 6.0 * 16.0 * t.n_opt * t.n_opt * 20.0,
            trained_flops: None,
            why: "on the fitted frontier".into(),
        }],
        floor: None,
    });
    write_report(&dir, &sweep, &loss_only, &df, &[], &ReportOptions::default()).unwrap();
    let md = std::fs::read_to_string(dir.report_md()).unwrap();
    assert!(md.contains("A run that would measure it") && !md.contains("Runs that would narrow it"), "{md}");
    // The fixed profile (the fallback when the fit gives no prior to search with) is called one.
    let mut profile = loss_only.clone();
    let v = profile.verdict.as_mut().unwrap();
    v.determined = false;
    v.reasons = vec!["the 95% interval of N_opt at the target is 40x wide".into()];
    v.suggest[0].why = "IsoFLOP profile at 4x the largest run's compute (the middle)".into();
    write_report(&dir, &sweep, &profile, &df, &[], &ReportOptions::default()).unwrap();
    let md = std::fs::read_to_string(dir.report_md()).unwrap();
    assert!(md.contains("Runs that would narrow it") && md.contains("A fixed recipe, not a search"), "{md}");
    // A searched WSD family keeps its token counts (the branches share the trunk's), and the
    // compute "in all" counts the branches' decays only.
    let mut family = profile.clone();
    let v = family.verdict.as_mut().unwrap();
    let n = 4.0 * t.n_opt;
    v.suggest = [1e6, 2e6, 4e6]
        .iter()
        .map(|&d| crate::fit::verdict::Suggestion {
            params: n,
            tokens: d,
            tokens_per_param: d / n,
            flops: 6.0 * n * d,
            trained_flops: Some(6.0 * n * d * if d < 4e6 { 0.2 } else { 1.0 }),
            why: "searched: a WSD family of a new size".into(),
        })
        .collect();
    write_report(&dir, &sweep, &family, &df, &[], &ReportOptions::default()).unwrap();
    let md = std::fs::read_to_string(dir.report_md()).unwrap();
    assert!(md.contains("Searched one WSD family of a new size at a time"), "{md}");
    for d in ["| 1M |", "| 2M |", "| 4M |"] {
        assert!(md.contains(d), "{d} {md}");
    }
    // A second family whose size takes the same shape under the rule is not listed twice.
    let v = family.verdict.as_mut().unwrap();
    let twin: Vec<_> =
        v.suggest.iter().map(|s| crate::fit::verdict::Suggestion { params: s.params * 1.0001, ..s.clone() }).collect();
    v.suggest.extend(twin);
    write_report(&dir, &sweep, &family, &df, &[], &ReportOptions::default()).unwrap();
    let twice = std::fs::read_to_string(dir.report_md()).unwrap();
    assert_eq!(twice.matches("| 2M |").count(), md.matches("| 2M |").count(), "{twice}");
    let total = |m: &str| m.split("compute in all").next().map(|h| h.rsplit("; ").next().unwrap().to_string());
    assert_eq!(total(&twice), total(&md));
    let _ = std::fs::remove_dir_all(&dir.root);
}

#[test]
fn lr_optimum_refines_the_grid_argmin() {
    // loss = (log2 lr + 6.3)^2 + 2 sampled at 2^-10 .. 2^-2: the optimum is 2^-6.3.
    let pts: Vec<(f64, f64)> = (2..=10).map(|k| (2f64.powi(-k), (6.3 - k as f64).powi(2) + 2.0)).collect();
    let (x, interior) = super::content::lr_optimum(&pts).unwrap();
    assert!(interior && (x + 6.3).abs() < 1e-9, "{x}");
    // Monotone: the optimum is at the edge and says so.
    let edge: Vec<(f64, f64)> = (2..=10).map(|k| (2f64.powi(-k), k as f64)).collect();
    assert_eq!(super::content::lr_optimum(&edge), Some((-2.0, false)));
}
