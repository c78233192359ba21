//! Data-mixture figures: the loss response to each domain's weight and the fitted
//! data-mixing law.

use super::sizes::distinct_sizes;
use crate::report::chart::{self, bounds, color, figure, legend, lin_range, mesh, si};
use crate::report::doc::Figure;
use crate::report::facts::Facts;
use crate::report::runs::RunCurve;
use anyhow::Result;
use plotters::prelude::*;

/// Final loss against the first domain's mixture weight, per model size (only with 2+ mixes).
pub fn mix_response(f: &Facts) -> Result<Figure> {
    let dom = f.runs.first().and_then(|r| r.mix.keys().next().cloned()).unwrap_or_default();
    let caption = format!("Final loss against the mixture weight of `{dom}`, one line per model size.");
    let mk = |r| figure("mix_response", "Data-mixture response", caption.clone(), r);
    let mut ws: Vec<f64> = f.runs.iter().filter_map(|r| r.mix.get(&dom).copied()).collect();
    ws.sort_by(f64::total_cmp);
    ws.dedup();
    if ws.len() < 2 {
        return Ok(mk(Err("the sweep trains a single data mixture".into())));
    }
    let sizes = distinct_sizes(f);
    let (y_lo, y_hi) = bounds(f.runs.iter().map(|r| r.loss)).unwrap_or((0.0, 1.0));
    let (xr, yr) = (lin_range(ws[0], ws[ws.len() - 1]), lin_range(y_lo, y_hi));
    let svg = chart::render(860, 500, |root| {
        let mut ch = chart::frame(root, "Data-mixture response").build_cartesian_2d(xr.clone(), yr.clone())?;
        let xd = format!("mixture weight of {dom}");
        mesh!(ch, &xd, "final validation loss (nats/token)", &|v| format!("{v:.2}"), &|v| format!("{v:.2}"));
        for (k, n) in sizes.iter().enumerate() {
            let c = color(k);
            let mut pts: Vec<(f64, f64)> = f
                .runs
                .iter()
                .filter(|r| r.params == *n)
                .filter_map(|r| r.mix.get(&dom).map(|w| (*w, r.loss)))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            ch.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?
                .label(format!("N = {}", si(*n)))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
            ch.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))?;
        }
        legend!(ch, SeriesLabelPosition::UpperRight);
        Ok(())
    })?;
    Ok(mk(Ok(Some(svg))))
}

/// The data mixing law with two domains: the objective against the first domain's weight, the
/// sweep's runs (dots, by size) with the law's curve at each size's compute, the law at the target
/// (dashed) with the recommended mixture, and mix-check's held-out runs (squares) if any.
pub fn mixing_law(f: &Facts) -> Result<Figure> {
    let caption = "Data mixing law: the objective (weighted sum of per-domain validation losses) against the first \
                   domain's weight. Dots: the sweep's runs that trained on both domains, coloured by model size; lines: \
                   the fitted law at each size's compute; dashed: the law at the target compute, with the recommended \
                   mixture marked; squares: mix-check's held-out runs at a larger size, with the law's curve for them \
                   (dotted)."
        .to_string();
    let mk = |r| figure("mixing_law", "Data mixing law", caption.clone(), r);
    let Some(m) = &f.fit.laws.data_mixing else {
        return Ok(mk(Err("no data_mixing law in fit.json (`[fit] laws = [..., \"data_mixing\"]`)".into())));
    };
    if m.domains.len() != 2 {
        return Ok(mk(Err("the plot is drawn for two domains; see the table for more".into())));
    }
    let (d0, d1) = (&m.domains[0], &m.domains[1]);
    let w = &m.objective_weights;
    let objective = |r: &RunCurve| -> Option<f64> {
        let (a, b) = (r.domain_loss.get(d0)?, r.domain_loss.get(d1)?);
        Some(w[0] * a + w[1] * b)
    };
    let inner: Vec<&RunCurve> = f
        .runs
        .iter()
        .filter(|r| r.mix.get(d0).is_some_and(|x| *x > 0.0) && r.mix.get(d1).is_some_and(|x| *x > 0.0))
        .collect();
    let (lo, hi) = (m.search[0].lo, m.search[0].hi.min(1.0 - m.search[1].lo.max(0.0)).max(m.search[0].lo));
    let curve = |c: f64| -> Vec<(f64, f64)> {
        (0..=60)
            .map(|k| lo + (hi - lo) * k as f64 / 60.0)
            .map(|x| (x, crate::fit::mixing::objective(&m.laws, w, &[x, 1.0 - x], c, m.c_ref)))
            .filter(|p| p.1.is_finite())
            .collect()
    };
    let check: Vec<(f64, f64)> = f
        .mix_check
        .iter()
        .flat_map(|c| c.rows.iter())
        .filter(|r| r.mix.iter().all(|x| *x > 0.0))
        .map(|r| (r.mix[0], r.actual))
        .collect();
    let sizes = distinct_sizes(f);
    let mut ys: Vec<f64> = inner.iter().filter_map(|r| objective(r)).collect();
    ys.extend(curve(m.target_flops).iter().map(|p| p.1));
    ys.extend(check.iter().map(|p| p.1));
    let (y_lo, y_hi) = bounds(ys.into_iter()).unwrap_or((0.0, 1.0));
    // Headroom above the data for the legend.
    let y_hi = y_hi + 0.45 * (y_hi - y_lo);
    let (xr, yr) = (lin_range(lo, hi), lin_range(y_lo, y_hi));
    let svg = chart::render(860, 520, |root| {
        let mut ch = chart::frame(root, "Data mixing law").build_cartesian_2d(xr.clone(), yr.clone())?;
        let xd = format!("weight of {d0} (the rest {d1})");
        mesh!(ch, &xd, "objective (nats/token)", &|v| format!("{v:.2}"), &|v| format!("{v:.3}"));
        for (k, n) in sizes.iter().enumerate() {
            let c = color(k);
            let runs: Vec<&&RunCurve> = inner.iter().filter(|r| r.params == *n).collect();
            let Some(flops) = runs.first().map(|r| r.flops) else { continue };
            ch.draw_series(LineSeries::new(curve(flops), c.stroke_width(2)))?
                .label(format!("N = {}", si(*n)))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
            ch.draw_series(runs.iter().filter_map(|r| Some(Circle::new((r.mix[d0], objective(r)?), 4, c.filled()))))?;
        }
        let target = curve(m.target_flops);
        ch.draw_series(DashedLineSeries::new(target, 6, 4, BLACK.stroke_width(2)))?
            .label(format!("law at the target, C = {:.2e}", m.target_flops))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2)));
        let rec = (m.recommended.mix[0], m.recommended.objective);
        ch.draw_series(std::iter::once(TriangleMarker::new(rec, 8, BLACK.filled())))?
            .label(format!("recommended: {d0} {:.3}", rec.0))
            .legend(|(x, y)| TriangleMarker::new((x + 9, y), 6, BLACK.filled()));
        if let Some(c) = &f.mix_check {
            let grey = RGBColor(90, 90, 90);
            ch.draw_series(DashedLineSeries::new(curve(c.flops), 2, 4, grey.stroke_width(1)))?;
            ch.draw_series(check.iter().map(|p| {
                Rectangle::new(
                    [
                        (p.0 - (hi - lo) * 0.006, p.1 - (y_hi - y_lo) * 0.008),
                        (p.0 + (hi - lo) * 0.006, p.1 + (y_hi - y_lo) * 0.008),
                    ],
                    grey.filled(),
                )
            }))?
            .label(format!("mix-check runs, C = {:.2e}", c.flops))
            .legend(move |(x, y)| Rectangle::new([(x + 5, y - 4), (x + 13, y + 4)], grey.filled()));
        }
        legend!(ch, SeriesLabelPosition::UpperRight);
        Ok(())
    })?;
    Ok(mk(Ok(Some(svg))))
}
