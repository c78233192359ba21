//! Loss against learning rate per model size.

use crate::report::chart::{self, bounds, color, figure, fmt_tick, legend, lin_range, log_range, log_ticks, mesh, si};
use crate::report::doc::Figure;
use crate::report::facts::Facts;
use crate::report::runs::RunCurve;
use anyhow::Result;
use plotters::prelude::*;
use std::collections::BTreeMap;

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
