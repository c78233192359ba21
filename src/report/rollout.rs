//! The rollout backtest in the report (fit.json `rollout`): a table of error and interval
//! coverage against extrapolation factor, what it implies at the target, and a plot of the
//! error against the factor with the envelope that widens the intervals.

use super::chart::figure;
use super::chart::{self, bounds, color, fmt_tick, legend, lin_range, log_range, log_ticks, mesh};
use super::doc::{Doc, Figure};
use super::facts::Facts;
use anyhow::Result;
use plotters::prelude::*;

/// The "Rollout backtest" section (nothing when fit.json has no rollout).
pub fn section(d: &mut Doc, f: &Facts) {
    let Some(r) = &f.fit.rollout else { return };
    d.h3("Rollout backtest: error against extrapolation factor");
    d.p(format!(
        "Protocol: {}. Coverage is the share of actual final losses inside their 95% interval (honest intervals give \
         about 95%); widen95 is the relative margin that would have made it 95%. Intervals of predictions \
         (`loss_interval_at`, the target's loss) are widened by it at their own factor.",
        r.protocol
    ));
    let rows = r
        .by_factor
        .iter()
        .map(|s| {
            vec![
                format!("{:.0}x", s.k),
                s.n_fit.to_string(),
                s.n.to_string(),
                format!("{:.2}%", 100.0 * s.mean_abs_rel_err),
                format!("{:.2}%", 100.0 * s.max_abs_rel_err),
                format!("{:.0}%", 100.0 * s.coverage),
                format!("{:.2}%", 100.0 * s.widen95),
            ]
        })
        .collect();
    d.table(&["factor k", "runs fitted", "runs predicted", "mean |error|", "max |error|", "coverage", "widen95"], rows);
    if let Some(a) = &r.at_target {
        d.p(format!(
            "**At the target ({:.0}x the largest run): expected |error| {:.2}%, interval widened by {:.2}%.** {}.",
            a.factor,
            100.0 * a.expected_rel_err,
            100.0 * a.widen,
            a.note
        ));
    }
}

/// |relative error| of every rollout prediction against its extrapolation factor, the mean
/// per factor k, and the envelope (carried to the target) that the intervals are widened by.
pub fn plot(f: &Facts) -> Result<Figure> {
    let caption = "Rollout backtest: |relative error| of each held-out run's predicted final loss against its \
                   extrapolation factor (its C over the largest C the law was fitted on); filled: inside its 95% \
                   interval, open: outside. Line: mean |error| per factor k; dashed: the expected error carried to \
                   the target (fit.json `rollout`)."
        .to_string();
    let mk = |r| figure("rollout", "Rollout backtest", caption.clone(), r);
    let Some(r) = f.fit.rollout.as_ref().filter(|r| !r.points.is_empty()) else {
        return Ok(mk(Err("no rollout backtest in fit.json (backtests off, or too few runs)".into())));
    };
    let pts: Vec<(f64, f64, bool)> =
        r.points.iter().map(|p| (p.factor, 100.0 * p.rel_err.abs(), p.inside)).filter(|p| p.0 > 0.0).collect();
    let target = r.at_target.as_ref().map(|a| a.factor).filter(|x| x.is_finite() && *x > 1.0);
    let (x_lo, x_hi) =
        bounds(pts.iter().map(|p| p.0).chain(r.by_factor.iter().map(|s| s.k)).chain(target)).unwrap_or((1.0, 10.0));
    let env: Vec<(f64, f64)> =
        chart::geomspace(x_lo.max(1.0001), x_hi, 80).into_iter().map(|x| (x, 100.0 * r.expected_err_at(x))).collect();
    let (_, y_hi) = bounds(pts.iter().map(|p| p.1).chain(env.iter().map(|p| p.1))).unwrap_or((0.0, 1.0));
    let xr = log_range(x_lo, x_hi);
    let yr = lin_range(0.0, y_hi.max(0.1));
    let svg = chart::render(760, 480, |root| {
        let mut ch = chart::frame(root, "Rollout: error vs extrapolation factor")
            .build_cartesian_2d(xr.clone().log_scale().with_key_points(log_ticks(&xr)), yr.clone())?;
        mesh!(ch, "extrapolation factor (C / largest fitted C)", "|relative error| (%)", &|v| fmt_tick(*v), &|v| {
            format!("{v:.1}")
        });
        let c = color(0);
        ch.draw_series(pts.iter().filter(|p| p.2).map(|p| Circle::new((p.0, p.1), 3, c.filled())))?
            .label("inside its 95% interval")
            .legend(move |(x, y)| Circle::new((x + 9, y), 3, c.filled()));
        let red = RGBColor(200, 60, 50);
        ch.draw_series(pts.iter().filter(|p| !p.2).map(|p| Circle::new((p.0, p.1), 4, red.stroke_width(1))))?
            .label("outside")
            .legend(move |(x, y)| Circle::new((x + 9, y), 4, red.stroke_width(1)));
        let means: Vec<(f64, f64)> = r.by_factor.iter().map(|s| (s.k, 100.0 * s.mean_abs_rel_err)).collect();
        ch.draw_series(LineSeries::new(means, BLACK.stroke_width(2)))?
            .label("mean |error| at factor k")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2)));
        let grey = RGBColor(110, 110, 110);
        ch.draw_series(chart::dashes(&env, 2, 1).into_iter().map(|d| PathElement::new(d, grey.stroke_width(1))))?;
        if let Some(t) = target.filter(|t| xr.contains(t)) {
            ch.draw_series(std::iter::once(PathElement::new(vec![(t, yr.start), (t, yr.end)], grey.stroke_width(1))))?
                .label(format!("target ({t:.0}x)"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], grey.stroke_width(1)));
        }
        legend!(ch, SeriesLabelPosition::UpperLeft);
        Ok(())
    })?;
    Ok(mk(Ok(Some(svg))))
}
