//! `report DIR1 DIR2 ...`: several sweeps against the first. Each sweep's final points are
//! read through the first sweep's law (capability density, `fit::density`): rho = N_hat / N,
//! where N_hat is the size at which the reference law reaches the same loss at the same D, and
//! the compute ratio C_ref(L) / 6ND, where C_ref(L) is the compute at which the reference
//! law's compute-optimal frontier reaches loss L. Above 1: the sweep does more per parameter
//! (per FLOP) than the reference. Writes DIR1/compare.md, compare.html and plots/compare_frontiers.svg.

use super::chart::figure;
use super::chart::{self, bounds, color, fmt_tick, geomspace, legend, lin_range, log_range, log_ticks, mesh, si};
use super::doc::{Block, Doc};
use super::runs::RunCurve;
use super::{g, Written};
use crate::fit::regress::median;
use crate::fit::FitReport;
use crate::fit::{density::density, Law};
use crate::spec::config::Sweep;
use crate::store::SweepDir;
use anyhow::Result;
use plotters::prelude::*;

/// One sweep folder, read.
pub struct Loaded {
    pub dir: SweepDir,
    pub sweep: Sweep,
    pub fit: FitReport,
    pub runs: Vec<RunCurve>,
}

fn frontier_loss(law: &Law, c: f64) -> f64 {
    let n = law.n_opt(c);
    law.predict(n, crate::flops::chinchilla_tokens(c, n))
}

/// Compute at which `law`'s frontier reaches `loss` (None if it never does below 1e40 FLOPs).
pub fn frontier_compute(law: &Law, loss: f64) -> Option<f64> {
    let (mut lo, mut hi) = (0.0f64, 40.0 * std::f64::consts::LN_10);
    if !(frontier_loss(law, hi.exp()) <= loss) {
        return None;
    }
    if frontier_loss(law, lo.exp()) <= loss {
        return Some(1.0);
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if frontier_loss(law, mid.exp()) > loss {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(hi.exp())
}

/// Of the runs sharing (N, D), the best: a learning-rate sweep's bad corners say nothing about
/// the architecture or data being compared (the fit uses the same rule).
fn best_per_size(runs: &[RunCurve]) -> Vec<&RunCurve> {
    crate::fit::best_per_size(runs, |r| (r.params, r.tokens), |r| r.loss, |r| r.run_id.as_str())
}

/// Median density and median compute ratio against `reference` of each (N, D)'s best run, and
/// how many runs had a finite value.
pub fn relative(reference: &Law, runs: &[RunCurve]) -> (Option<f64>, Option<f64>, usize) {
    let runs = best_per_size(runs);
    let rho: Vec<f64> =
        runs.iter().filter_map(|r| density(reference, r.params, r.tokens, r.loss).ok().map(|d| d.density)).collect();
    let cr: Vec<f64> = runs.iter().filter_map(|r| frontier_compute(reference, r.loss).map(|c| c / r.c6())).collect();
    let used = rho.len();
    (median(&rho), median(&cr), used)
}

pub fn write_compare(all: &[Loaded]) -> Result<Written> {
    let Some(first) = all.first() else { anyhow::bail!("compare: no sweeps") };
    let Some(reference) = first.fit.params else {
        return Err(crate::UserError(format!(
            "compare: the reference sweep `{}` has no chinchilla law ({}); give a fitted sweep first",
            first.sweep.name,
            first.fit.chinchilla_skipped().unwrap_or("none in fit.json")
        ))
        .into());
    };
    let names: Vec<String> = all.iter().map(|l| l.sweep.name.clone()).collect();
    let mut d = Doc::new(format!("windtunnel comparison: {}", names.join(" vs ")));
    d.p(format!(
        "Reference: `{}` (its fitted law). For every other sweep, each run's final (N, D, loss) is read through the \
         reference law: **density** rho = N_hat / N, where N_hat is the size at which the reference law reaches the same \
         loss at the same D (`fit::density`), and **compute ratio** = C_ref(loss) / 6ND, where C_ref is the compute at \
         which the reference's compute-optimal frontier reaches that loss. Medians over the sweep's runs (of runs sharing N \
         and D, only the best); above 1 means more capability per parameter (per FLOP) than the reference.",
        first.sweep.name
    ));
    let mut rows = Vec::new();
    for l in all {
        let (rho, cr, used) = relative(&reference, &l.runs);
        rows.push(vec![
            format!("`{}`", l.sweep.name),
            format!("`{}`", l.dir.root.display()),
            l.runs.len().to_string(),
            l.fit.params.map_or_else(
                || format!("not fitted: {}", l.fit.chinchilla_skipped().unwrap_or("no law in fit.json")),
                |p| format!("E {} A {} B {} alpha {} beta {}", g(p.e), g(p.a), g(p.b), g(p.alpha), g(p.beta)),
            ),
            l.fit.target.map_or("n/a".into(), |t| format!("{:.4} at C = {:.2e}", t.loss, t.flops)),
            rho.map_or("n/a".into(), g),
            cr.map_or("n/a".into(), g),
            format!("{used} of {}", best_per_size(&l.runs).len()),
        ]);
    }
    d.table(
        &[
            "sweep",
            "folder",
            "runs",
            "fitted law",
            "target loss",
            "median density rho",
            "median compute ratio",
            "runs used",
        ],
        rows,
    );
    d.p("A run is left out of the medians when its loss is at or below what the reference law reaches with unlimited \
         parameters at its D (density unbounded).");
    d.blocks.push(Block::Figure(frontiers(all)?));
    let stamp = super::facts::utc_date(crate::store::now_unix());
    d.blocks.push(Block::Footer(format!("windtunnel {} | generated {stamp}", env!("CARGO_PKG_VERSION"))));
    super::write_doc(&first.dir, &d, "compare")
}

fn frontiers(all: &[Loaded]) -> Result<super::doc::Figure> {
    let caption = "Each sweep's fitted compute-optimal frontier L(N_opt(C), D_opt(C)) (line) and its runs' final \
                   points (dots), against C = 6ND."
        .to_string();
    let runs = all.iter().flat_map(|l| l.runs.iter());
    let Some((x_lo, x_max)) = bounds(runs.clone().map(|r| r.c6())) else {
        return Ok(figure("compare_frontiers", "Frontiers", caption, Err("no finished runs".into())));
    };
    let x_hi = all.iter().filter_map(|l| l.fit.target.map(|t| t.flops)).fold(x_max, f64::max);
    let (mut y_lo, y_hi) = bounds(runs.map(|r| r.loss)).unwrap_or((0.0, 1.0));
    for l in all.iter().filter_map(|l| l.fit.params) {
        let v = frontier_loss(&l, x_hi);
        if v.is_finite() {
            y_lo = y_lo.min(v);
        }
    }
    let (xr, yr) = (log_range(x_lo, x_hi), lin_range(y_lo.max(0.0), y_hi));
    let svg = chart::render(860, 520, |root| {
        let mut ch = chart::frame(root, "Frontiers compared")
            .build_cartesian_2d(xr.clone().log_scale().with_key_points(log_ticks(&xr)), yr.clone())?;
        mesh!(ch, "training compute C = 6ND (FLOPs)", "validation loss (nats/token)", &|v| fmt_tick(*v), &|v| {
            format!("{v:.2}")
        });
        for (k, l) in all.iter().enumerate() {
            let c = color(k);
            // A sweep whose law was skipped has no frontier: its runs are still drawn.
            let line: Vec<(f64, f64)> = l.fit.params.map_or_else(Vec::new, |p| {
                geomspace(x_lo, x_hi, 200).into_iter().map(|x| (x, frontier_loss(&p, x))).collect()
            });
            let mut first = true;
            for seg in chart::clip(&line, &xr, &yr) {
                let s = ch.draw_series(LineSeries::new(seg, c.stroke_width(2)))?;
                if first {
                    first = false;
                    let mark =
                        if l.fit.verdict.as_ref().is_some_and(|v| !v.determined) { ", not determined" } else { "" };
                    s.label(format!("{} ({} runs, N up to {}{mark})", l.sweep.name, l.runs.len(), si(max_n(&l.runs))))
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
                }
            }
            ch.draw_series(
                l.runs
                    .iter()
                    .map(|r| (r.c6(), r.loss))
                    .filter(|p| xr.contains(&p.0) && yr.contains(&p.1))
                    .map(|p| Circle::new(p, 4, c.filled())),
            )?;
        }
        legend!(ch, SeriesLabelPosition::UpperRight);
        Ok(())
    })?;
    Ok(figure("compare_frontiers", "Frontiers compared", caption, Ok(Some(svg))))
}

fn max_n(runs: &[RunCurve]) -> f64 {
    runs.iter().map(|r| r.params).fold(0.0, f64::max)
}
