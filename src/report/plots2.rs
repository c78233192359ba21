//! The report's diagnostic figures: learning-rate sweeps, the backtest, residuals, the data
//! mixture response and WSD branches (the last two only when the results have them).

use super::chart::{self, bounds, color, fmt_tick, legend, lin_range, log_range, log_ticks, mesh, si, Area, FONT};
use super::doc::Figure;
use super::facts::{Facts, RunCurve};
use super::plots::{distinct_sizes, figure, size_index};
use anyhow::Result;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::ops::Range;

/// Final loss against learning rate, one line per (width, depth, tokens), optimum ringed.
pub fn loss_vs_lr(f: &Facts) -> Result<Figure> {
    let caption = "Final loss against peak learning rate for each model shape and data size; the ring marks each \
                   line's best learning rate."
        .to_string();
    let mk = |r| figure("loss_vs_lr", "Loss vs learning rate", caption.clone(), r);
    let mut lrs: Vec<f64> = f.runs.iter().map(|r| r.lr).filter(|x| x.is_finite() && *x > 0.0).collect();
    lrs.sort_by(f64::total_cmp);
    lrs.dedup();
    if lrs.len() < 2 {
        return Ok(mk(Err(format!("the sweep has {} learning rate(s); this plot needs 2 or more", lrs.len()))));
    }
    let mut groups: BTreeMap<(i64, i64, i64), Vec<&RunCurve>> = BTreeMap::new();
    for r in f.runs.iter().filter(|r| r.lr > 0.0) {
        groups.entry((r.width, r.depth, r.tokens.round() as i64)).or_default().push(r);
    }
    groups.retain(|_, v| v.len() >= 2);
    if groups.len() > 10 {
        // Keep, per shape, the data size with the most learning rates (then the largest).
        let mut best: BTreeMap<(i64, i64), (i64, usize)> = BTreeMap::new();
        for ((w, d, t), v) in &groups {
            let e = best.entry((*w, *d)).or_insert((*t, v.len()));
            if (v.len(), *t) > (e.1, e.0) {
                *e = (*t, v.len());
            }
        }
        groups.retain(|(w, d, t), _| best.get(&(*w, *d)).is_some_and(|b| b.0 == *t));
    }
    if groups.is_empty() {
        return Ok(mk(Err("no shape was trained at 2 or more learning rates".into())));
    }
    let all = groups.values().flatten();
    let (y_lo, y_hi) = bounds(all.map(|r| r.loss)).unwrap_or((0.0, 1.0));
    let xr = log_range(lrs[0], lrs[lrs.len() - 1]);
    let yr = lin_range(y_lo, y_hi);
    let svg = chart::render(860, 520, |root| {
        let mut ch = chart::frame(root, "Loss vs learning rate")
            .build_cartesian_2d(xr.clone().log_scale().with_key_points(log_ticks(&xr)), yr.clone())?;
        mesh!(ch, "peak learning rate", "final validation loss (nats/token)", &|v| fmt_tick(*v), &|v| format!(
            "{v:.2}"
        ));
        for (k, ((w, d, t), v)) in groups.iter().enumerate() {
            let c = color(k);
            let mut pts: Vec<(f64, f64)> = v.iter().map(|r| (r.lr, r.loss)).collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            ch.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?
                .label(format!("width {w}, depth {d}, D = {}", si(*t as f64)))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
            ch.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
            if let Some(b) = pts.iter().min_by(|a, b| a.1.total_cmp(&b.1)) {
                ch.draw_series(std::iter::once(Circle::new(*b, 8, c.stroke_width(2))))?;
            }
        }
        legend!(ch, SeriesLabelPosition::UpperMiddle);
        Ok(())
    })?;
    Ok(mk(Ok(Some(svg))))
}

/// Backtest: predicted vs actual loss of the held-out runs' observations.
pub fn backtest(f: &Facts) -> Result<Figure> {
    let caption = f.fit.backtest.as_ref().map_or(String::new(), |b| {
        format!(
            "Backtest, predicted against actual loss of the held-out observations ({}). Dashed: y = x; dotted: ±5%.",
            b.protocol
        )
    });
    let mk = |r| figure("backtest", "Backtest: predicted vs actual", caption.clone(), r);
    let Some(bt) = f.fit.backtest.as_ref().filter(|b| !b.points.is_empty()) else {
        return Ok(mk(Err("no backtest in fit.json ([fit] backtest = \"none\", or it was skipped)".into())));
    };
    let held: Vec<String> = {
        let mut v: Vec<String> = bt.points.iter().map(|p| p.run.clone()).collect();
        v.dedup();
        v
    };
    let (lo, hi) = bounds(bt.points.iter().flat_map(|p| [p.actual, p.predicted])).unwrap_or((0.0, 1.0));
    let r = lin_range(lo, hi);
    let svg = chart::render(620, 560, |root| {
        let mut ch = chart::frame(root, format!("Backtest (ARE {:.2}%)", bt.are * 100.0))
            .build_cartesian_2d(r.clone(), r.clone())?;
        mesh!(ch, "actual loss (nats/token)", "predicted loss (nats/token)", &|v| format!("{v:.2}"), &|v| format!(
            "{v:.2}"
        ));
        ch.draw_series(chart::dashes(&line(&r, 1.0, 60), 2, 1).into_iter().map(|d| PathElement::new(d, BLACK)))?;
        for m in [1.05, 0.95] {
            let seg: Vec<(f64, f64)> = line(&r, m, 120).into_iter().filter(|p| r.contains(&p.1)).collect();
            ch.draw_series(chart::dashes(&seg, 1, 1).into_iter().map(|d| PathElement::new(d, BLACK.mix(0.4))))?;
        }
        for (k, run) in held.iter().enumerate() {
            let c = color(k);
            let pts: Vec<(f64, f64)> =
                bt.points.iter().filter(|p| &p.run == run).map(|p| (p.actual, p.predicted)).collect();
            let n = bt.points.iter().find(|p| &p.run == run).map_or(0.0, |p| p.params);
            ch.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, c.filled())))?
                .label(format!("{} (N = {})", &run[..run.len().min(8)], si(n)))
                .legend(move |(x, y)| Circle::new((x + 9, y), 4, c.filled()));
        }
        legend!(ch, SeriesLabelPosition::UpperLeft);
        Ok(())
    })?;
    Ok(mk(Ok(Some(svg))))
}

fn line(r: &Range<f64>, slope: f64, n: usize) -> Vec<(f64, f64)> {
    (0..=n).map(|i| r.start + (r.end - r.start) * i as f64 / n as f64).map(|x| (x, slope * x)).collect()
}

/// Residuals of the final points against the fitted law, vs N and vs D.
pub fn residuals(f: &Facts) -> Result<Figure> {
    let caption = "Relative residual (actual / predicted - 1) of each run's final loss under the fitted law, \
                   against N (left) and D (right), coloured by model size. Structure here (a trend or curvature) \
                   means the law's form misses something the extrapolation will inherit."
        .to_string();
    let mk = |r| figure("residuals", "Residuals vs N and D", caption.clone(), r);
    if f.runs.is_empty() {
        return Ok(mk(Err("no finished runs".into())));
    }
    let Some(law) = f.fit.params else {
        return Ok(mk(Err(format!(
            "the chinchilla law was not fitted: {}",
            f.fit.chinchilla_skipped().unwrap_or("no law in fit.json")
        ))));
    };
    let sizes = distinct_sizes(f);
    let res: Vec<(usize, f64, f64, f64)> = f
        .runs
        .iter()
        .map(|r| {
            (size_index(&sizes, r.params), r.params, r.tokens, 100.0 * (r.loss / law.predict(r.params, r.tokens) - 1.0))
        })
        .filter(|x| x.3.is_finite())
        .collect();
    let (lo, hi) = bounds(res.iter().map(|x| x.3).chain([0.0])).unwrap_or((-1.0, 1.0));
    let m = lo.abs().max(hi.abs()).max(0.1);
    let yr = lin_range(-m, m);
    let svg = chart::render(1000, 440, |root| {
        let (left, right) = root.split_horizontally(500);
        let panel = |area: &Area<'_>,
                     title: &str,
                     xd: &str,
                     get: &dyn Fn(&(usize, f64, f64, f64)) -> f64|
         -> Result<()> {
            let (x_lo, x_hi) = bounds(res.iter().map(get)).unwrap_or((1.0, 10.0));
            let xr = log_range(x_lo, x_hi);
            let mut ch = ChartBuilder::on(area)
                .caption(title, (FONT, 18))
                .margin(12)
                .x_label_area_size(46)
                .y_label_area_size(58)
                .build_cartesian_2d(xr.clone().log_scale().with_key_points(log_ticks(&xr)), yr.clone())?;
            mesh!(ch, xd, "residual (%)", &|v| fmt_tick(*v), &|v| format!("{v:+.1}"));
            ch.draw_series(std::iter::once(PathElement::new(vec![(xr.start, 0.0), (xr.end, 0.0)], BLACK.mix(0.5))))?;
            ch.draw_series(res.iter().map(|x| Circle::new((get(x), x.3), 4, color(x.0).filled())))?;
            Ok(())
        };
        panel(&left, "Residuals vs N", "parameters N", &|x| x.1)?;
        panel(&right, "Residuals vs D", "tokens D", &|x| x.2)?;
        Ok(())
    })?;
    Ok(mk(Ok(Some(svg))))
}

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
    let Some(m) = crate::fit::mixing::MixingFit::of(f.fit) else {
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

/// WSD decay branches: each family's trunk (its longest run) and the runs that branched off it,
/// loss against tokens; a branch follows the trunk, then drops during its own decay.
pub fn wsd_branches(f: &Facts) -> Result<Figure> {
    let caption = "WSD decay branches: loss against tokens of each family's longest run (thick) and of the runs that \
                   branched off it at the end of their stable phase (thin, same colour), each trained only through its \
                   own decay; dots are final evaluations, the (N, D) points the laws are fitted to."
        .to_string();
    let mk = |r| figure("wsd_branches", "WSD decay branches", caption.clone(), r);
    let mut trunks: Vec<&str> =
        f.runs.iter().filter(|r| !r.branch_of.is_empty()).map(|r| r.branch_of.as_str()).collect();
    trunks.sort_unstable();
    trunks.dedup();
    let trunks: Vec<&RunCurve> = trunks.iter().filter_map(|t| f.runs.iter().find(|r| r.run_id == *t)).take(6).collect();
    if trunks.is_empty() {
        return Ok(mk(Err("the sweep has no WSD decay branches (`[train] wsd_branches = true`)".into())));
    }
    let members = |t: &RunCurve| -> Vec<&RunCurve> { f.runs.iter().filter(|r| r.branch_of == t.run_id).collect() };
    let all: Vec<&RunCurve> = trunks.iter().flat_map(|t| std::iter::once(*t).chain(members(t))).collect();
    let pts = all.iter().flat_map(|r| r.points.iter());
    let (x_lo, x_hi) = bounds(pts.clone().map(|p| p.tokens)).unwrap_or((1.0, 10.0));
    let (y_lo, y_hi) = bounds(pts.map(|p| p.loss)).unwrap_or((0.0, 1.0));
    let (xr, yr) = (log_range(x_lo, x_hi), lin_range(y_lo, y_hi));
    let svg = chart::render(860, 520, |root| {
        let mut ch = chart::frame(root, "WSD decay branches")
            .build_cartesian_2d(xr.clone().log_scale().with_key_points(log_ticks(&xr)), yr.clone())?;
        mesh!(ch, "tokens D", "validation loss (nats/token)", &|v| fmt_tick(*v), &|v| format!("{v:.2}"));
        for (k, t) in trunks.iter().enumerate() {
            let c = color(k);
            let line = |r: &RunCurve| r.points.iter().map(|p| (p.tokens, p.loss)).collect::<Vec<_>>();
            ch.draw_series(LineSeries::new(line(t), c.stroke_width(3)))?
                .label(format!("width {}, depth {}, lr {}", t.width, t.depth, super::g(t.lr)))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3)));
            for r in std::iter::once(*t).chain(members(t)) {
                ch.draw_series(LineSeries::new(line(r), c.stroke_width(1)))?;
                ch.draw_series(std::iter::once(Circle::new((r.tokens, r.loss), 4, c.filled())))?;
            }
        }
        legend!(ch, SeriesLabelPosition::UpperRight);
        Ok(())
    })?;
    Ok(mk(Ok(Some(svg))))
}
