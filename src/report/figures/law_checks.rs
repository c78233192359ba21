//! How well the law holds on the sweep itself: the backtest (fit on small compute, predict
//! the large) and the residuals of the fit.

use super::sizes::{distinct_sizes, size_index};
use crate::report::chart::{
    self, bounds, color, figure, fmt_tick, legend, lin_range, log_range, log_ticks, mesh, si, Area, FONT,
};
use crate::report::doc::Figure;
use crate::report::facts::Facts;
use anyhow::Result;
use plotters::prelude::*;
use std::ops::Range;

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
