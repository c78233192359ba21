//! Scaling figures: loss against compute with the fitted frontier, and the IsoFLOP
//! profiles. Compute on every axis is C = 6ND, the convention of the fitted laws.

use super::sizes::{distinct_sizes, size_index};
use crate::fit::regress::{budget_flops, budgets, quadratic};
use crate::fit::Obs;
use crate::report::chart::{
    self, bounds, clip, color, figure, floor_line, fmt_tick, geomspace, legend, lin_range, log_range, log_ticks, mesh,
    si,
};
use crate::report::doc::Figure;
use crate::report::facts::Facts;
use anyhow::Result;
use plotters::prelude::*;

/// Loss vs compute: every run's evaluation curve coloured by size, final points filled, the
/// fitted compute-optimal frontier L(N_opt(C), D_opt(C)) and the target with its 95% interval.
pub fn loss_vs_compute(f: &Facts) -> Result<Figure> {
    let caption = "Validation loss against training compute C = 6ND for every evaluation of every run (one line \
                   per run, coloured by model size N; filled dots are final evaluations, which the law is fitted to). \
                   Dashed: the fitted compute-optimal frontier L(N_opt(C), D_opt(C)); shaded: its 95% bootstrap band \
                   (fit.json `frontier`); when the sweep does not determine the target's N/D split (fit.json `verdict`), \
                   the title and the frontier's legend say so. Grey dotted: the known entropy floor of the data mixture (built-in data \
                   only). Red cross: the target with its 95% bootstrap interval on the loss."
        .to_string();
    let mk = |r| figure("loss_vs_compute", "Loss vs compute", caption.clone(), r);
    if f.runs.is_empty() {
        return Ok(mk(Err("no finished runs".into())));
    }
    let law = f.fit.params;
    let sizes = distinct_sizes(f);
    let curves: Vec<(usize, Vec<(f64, f64)>)> = f
        .runs
        .iter()
        .map(|r| {
            (
                size_index(&sizes, r.params),
                r.points.iter().map(|p| (crate::flops::chinchilla_flops(r.params, p.tokens), p.loss)).collect(),
            )
        })
        .collect();
    let all = curves.iter().flat_map(|c| c.1.iter().copied());
    let (x_lo, mut x_hi) = bounds(all.clone().map(|p| p.0)).unwrap_or((1.0, 10.0));
    let (mut y_lo, y_hi) = bounds(all.map(|p| p.1)).unwrap_or((0.0, 1.0));
    let target = f.fit.target;
    let iv = f.fit.intervals.get("loss").copied();
    if let Some(t) = &target {
        if t.flops.is_finite() && t.flops > 0.0 {
            x_hi = x_hi.max(t.flops);
        }
        y_lo = y_lo.min(t.loss).min(iv.map_or(f64::INFINITY, |i| i.lo));
    }
    // Without a fitted law (skipped: see fit.json's `skipped`) the runs are drawn alone.
    let frontier: Vec<(f64, f64)> = law.map_or_else(Vec::new, |law| {
        geomspace(x_lo, x_hi, 240)
            .into_iter()
            .map(|c| {
                let n = law.n_opt(c);
                (c, law.predict(n, crate::flops::chinchilla_tokens(c, n)))
            })
            .collect()
    });
    if let Some(l) = frontier.last().map(|p| p.1).filter(|l| l.is_finite()) {
        y_lo = y_lo.min(l);
    }
    let floor = f.mix_floor.filter(|fl| *fl > 0.0 && *fl < y_hi);
    if let Some(fl) = floor {
        y_lo = y_lo.min(fl);
    }
    let xr = log_range(x_lo, x_hi);
    let yr = lin_range(y_lo.max(0.0), y_hi);
    // A degenerate law is still drawn (it is what was fitted) but marked on the plot itself.
    let undetermined = if f.verdict.as_ref().is_some_and(|v| !v.determined) {
        ": NOT DETERMINED by this sweep (see the headline)"
    } else {
        ""
    };
    let svg = chart::render(860, 540, |root| {
        let mut ch = chart::frame(root, format!("Loss vs compute (C = 6ND){}", undetermined))
            .build_cartesian_2d(xr.clone().log_scale().with_key_points(log_ticks(&xr)), yr.clone())?;
        mesh!(ch, "training compute C = 6ND (FLOPs)", "validation loss (nats/token)", &|v| fmt_tick(*v), &|v| format!(
            "{v:.2}"
        ));
        let mut labelled = vec![false; sizes.len()];
        for (k, pts) in &curves {
            let c = color(*k);
            for seg in clip(pts, &xr, &yr) {
                let s = ch.draw_series(LineSeries::new(seg, c.mix(0.75).stroke_width(1)))?;
                if !labelled[*k] {
                    labelled[*k] = true;
                    s.label(format!("N = {}", si(sizes[*k])))
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
                }
            }
        }
        for r in &f.runs {
            let c = color(size_index(&sizes, r.params));
            let p = (r.c6(), r.loss);
            if xr.contains(&p.0) && yr.contains(&p.1) {
                ch.draw_series(std::iter::once(Circle::new(p, 4, c.filled())))?;
            }
        }
        if let Some(fl) = floor {
            floor_line!(ch, xr, fl);
        }
        // The 95% band of the frontier, clamped to the plot (a polygon: upper edge, then lower
        // edge backwards).
        let band: Vec<&crate::fit::FrontierPoint> =
            f.fit.frontier.iter().filter(|p| xr.contains(&p.flops) && p.lo.is_finite() && p.hi.is_finite()).collect();
        if band.len() >= 2 {
            let clamp = |y: f64| y.clamp(yr.start, yr.end);
            let mut poly: Vec<(f64, f64)> = band.iter().map(|p| (p.flops, clamp(p.hi))).collect();
            poly.extend(band.iter().rev().map(|p| (p.flops, clamp(p.lo))));
            let blue = RGBColor(70, 110, 200);
            ch.draw_series(std::iter::once(Polygon::new(poly, blue.mix(0.15).filled())))?
                .label("95% bootstrap band of the frontier")
                .legend(move |(x, y)| Rectangle::new([(x, y - 4), (x + 18, y + 4)], blue.mix(0.3).filled()));
        }
        let mut first = true;
        for seg in clip(&frontier, &xr, &yr) {
            for d in chart::dashes(&seg, 5, 3) {
                let s = ch.draw_series(LineSeries::new(d, BLACK.stroke_width(2)))?;
                if first {
                    first = false;
                    s.label(format!("fitted frontier L(N_opt(C), D_opt(C)){undetermined}"))
                        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2)));
                }
            }
        }
        if let Some(t) = target.filter(|t| xr.contains(&t.flops) && yr.contains(&t.loss)) {
            if let Some(i) = iv {
                let (lo, hi) = (i.lo.max(yr.start), i.hi.min(yr.end));
                let cap = |y| PathElement::new(vec![(t.flops / 1.15, y), (t.flops * 1.15, y)], RED.stroke_width(2));
                ch.draw_series([
                    PathElement::new(vec![(t.flops, lo), (t.flops, hi)], RED.stroke_width(2)),
                    cap(lo),
                    cap(hi),
                ])?;
            }
            ch.draw_series(std::iter::once(Cross::new((t.flops, t.loss), 7, RED.stroke_width(3))))?
                .label(format!("target: C = {}, loss {:.3}", fmt_tick(t.flops), t.loss))
                .legend(|(x, y)| Cross::new((x + 9, y), 5, RED.stroke_width(2)));
        }
        legend!(ch, SeriesLabelPosition::UpperRight);
        Ok(())
    })?;
    Ok(mk(Ok(Some(svg))))
}

/// IsoFLOP profiles: final loss vs N within each compute budget, the fitted parabola in ln N
/// and its vertex (the budget's N_opt), from the `isoflop` law.
pub fn isoflop(f: &Facts) -> Result<Figure> {
    let caption = "IsoFLOP profiles (Hoffmann et al. approach 2): final loss against model size N within each \
                   compute budget (runs within 10% of each other's FLOPs), the least-squares parabola in ln N, and \
                   its vertex (diamond), the budget's compute-optimal N."
        .to_string();
    let mk = |r| figure("isoflop", "IsoFLOP profiles", caption.clone(), r);
    let Some(iso) = &f.isoflop else {
        return Ok(mk(Err(
            "the `isoflop` law was not fitted (add it to [fit] laws with a grid of equal-FLOP runs)".into()
        )));
    };
    let obs: Vec<Obs> = f
        .runs
        .iter()
        .map(|r| Obs {
            run: r.run_id.clone(),
            params: r.params,
            tokens: r.tokens,
            flops: r.flops,
            loss: r.loss,
            lr: Some(r.lr),
            batch: None,
            is_final: true,
        })
        .collect();
    // (budget, points, parabola, vertex)
    type Profile = (f64, Vec<(f64, f64)>, [f64; 3], (f64, f64));
    let mut profiles: Vec<Profile> = Vec::new();
    for g in budgets(&obs) {
        let c = budget_flops(&g);
        let Some(b) = iso.budgets.iter().find(|b| (b.flops / c).ln().abs() < 0.1) else { continue };
        let u: Vec<f64> = g.iter().map(|o| o.params.ln()).collect();
        let l: Vec<f64> = g.iter().map(|o| o.loss).collect();
        let Some(q) = quadratic(&u, &l) else { continue };
        profiles.push((c, g.iter().map(|o| (o.params, o.loss)).collect(), q, (b.n_opt, b.loss_opt)));
    }
    if profiles.is_empty() {
        return Ok(mk(Err("no compute budget with 3+ model sizes matches the fitted isoflop vertices".into())));
    }
    let pts = profiles.iter().flat_map(|p| p.1.iter().copied().chain(std::iter::once(p.3)));
    let (x_lo, x_hi) = bounds(pts.clone().map(|p| p.0)).unwrap_or((1.0, 10.0));
    let (y_lo, y_hi) = bounds(pts.map(|p| p.1)).unwrap_or((0.0, 1.0));
    let (xr, yr) = (log_range(x_lo, x_hi), lin_range(y_lo, y_hi));
    let svg = chart::render(860, 520, |root| {
        let mut ch = chart::frame(root, "IsoFLOP profiles")
            .build_cartesian_2d(xr.clone().log_scale().with_key_points(log_ticks(&xr)), yr.clone())?;
        mesh!(
            ch,
            "parameters N (non-embedding)",
            "final validation loss (nats/token)",
            &|v| fmt_tick(*v),
            &|v| format!("{v:.2}")
        );
        for (k, (c, p, q, v)) in profiles.iter().enumerate() {
            let col = color(k);
            let (lo, hi) = bounds(p.iter().map(|x| x.0)).unwrap_or((1.0, 2.0));
            let curve: Vec<(f64, f64)> =
                geomspace(lo, hi, 80).into_iter().map(|n| (n, q[0] + q[1] * n.ln() + q[2] * n.ln() * n.ln())).collect();
            for seg in clip(&curve, &xr, &yr) {
                ch.draw_series(LineSeries::new(seg, col.stroke_width(2)))?;
            }
            ch.draw_series(p.iter().map(|&x| Circle::new(x, 4, col.filled())))?
                .label(format!("C = {}", fmt_tick(*c)))
                .legend(move |(x, y)| Circle::new((x + 9, y), 4, col.filled()));
            if xr.contains(&v.0) && yr.contains(&v.1) {
                let d = |x: f64, y: f64| (v.0 * x, v.1 + y * (yr.end - yr.start));
                ch.draw_series(std::iter::once(Polygon::new(
                    vec![d(1.0, 0.02), d(1.06, 0.0), d(1.0, -0.02), d(1.0 / 1.06, 0.0)],
                    BLACK.filled(),
                )))?;
            }
        }
        legend!(ch, SeriesLabelPosition::UpperRight);
        Ok(())
    })?;
    Ok(mk(Ok(Some(svg))))
}
