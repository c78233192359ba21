//! Loss-curve figures: WSD decay branches against their trunk, and the loss-curve law
//! (fit.json `laws.loss_curve`) against every fitted run with the target's predicted curve.

use crate::report::chart::{
    self, bounds, clip, color, figure, floor_line, fmt_tick, legend, lin_range, log_range, log_ticks, mesh, si,
};
use crate::report::doc::Figure;
use crate::report::facts::Facts;
use crate::report::runs::RunCurve;
use anyhow::Result;
use plotters::prelude::*;

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
                .label(format!("width {}, depth {}, lr {}", t.width, t.depth, crate::report::g(t.lr)))
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

pub fn loss_curve(f: &Facts) -> Result<Figure> {
    let caption = "Loss-curve law (multi-power law across model sizes, fitted to every evaluation under each run's \
                   learning-rate schedule): dots are each fitted run's evaluations, thin lines the law's curve for that \
                   run, coloured by model size N; red: the target run's predicted whole curve under the sweep's schedule \
                   scaled to its steps, with its 95% band (bootstrap over runs combined with the runs' residual \
                   scatter about the law, `laws.loss_curve.residual_rms`, widened at each point by the misses the \
                   curve rollout measured at that point's distance from the sweep, `laws.loss_curve.rollout`; fit.json \
                   `laws.loss_curve.target.curve`, also `windtunnel predict-curve DIR --csv`). The target's N is the \
                   Chinchilla law's split: when the sweep does not determine it the title says so, and a predicted \
                   loss below the data's known entropy floor (grey dotted) is labelled as not a result."
        .to_string();
    let Some(law) = &f.fit.laws.loss_curve else {
        return Ok(figure(
            "loss_curve",
            "Loss-curve law",
            caption,
            Err("no loss_curve law (add \"loss_curve\" to [fit] laws)".into()),
        ));
    };
    let caption = format!("{caption} {}{}", scatter_caption(&law.fit), rollout_caption(law));
    let mk = |r| figure("loss_curve", "Loss-curve law", caption.clone(), r);
    let mut sizes: Vec<f64> = law.runs.iter().map(|r| r.params).collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    let target = law.target.as_ref().map(|t| &t.curve).filter(|c| !c.is_empty());
    let xs =
        law.runs.iter().flat_map(|r| r.tokens.iter().copied()).chain(target.into_iter().flatten().map(|p| p.tokens));
    let ys = law
        .runs
        .iter()
        .flat_map(|r| r.observed.iter().chain(&r.predicted).copied())
        .chain(target.into_iter().flatten().map(|p| p.loss));
    let (Some((x_lo, x_hi)), Some((y_lo, y_hi))) = (bounds(xs.filter(|x| *x > 0.0)), bounds(ys)) else {
        return Ok(mk(Err("no points".into())));
    };
    // The band far from the sweep can be wider than everything else together; the view takes
    // at most half the data's span more on each side (the band is clipped to it, its ends are
    // in the legend).
    let pad = 0.5 * (y_hi - y_lo);
    let band = target.into_iter().flatten();
    let y_lo = band.clone().map(|p| p.lo).fold(y_lo, f64::min).max(y_lo - pad);
    let y_hi = band.map(|p| p.hi).fold(y_hi, f64::max).min(y_hi + pad);
    // The known floor is drawn when it is in view or the target's curve goes below it.
    let floor = f.mix_floor.filter(|fl| *fl > 0.0 && *fl < y_hi);
    let y_lo = floor.map_or(y_lo, |fl| y_lo.min(fl));
    let (xr, yr) = (log_range(x_lo, x_hi), lin_range(y_lo, y_hi));
    // The target run is the Chinchilla law's compute-optimal split; when the sweep does not
    // determine it, or the curve ends below the data's known floor, the figure says so itself
    // (the curve is still drawn: it is what the law predicts, not a result to act on).
    let undetermined = f.verdict.as_ref().is_some_and(|v| !v.determined);
    let below = |l: f64| floor.is_some_and(|fl| l < fl);
    let title = if undetermined && target.is_some() {
        "Loss-curve law: target at an N/D split NOT DETERMINED by this sweep"
    } else {
        "Loss-curve law"
    };
    let svg = chart::render(860, 540, |root| {
        let mut ch = chart::frame(root, title)
            .build_cartesian_2d(xr.clone().log_scale().with_key_points(log_ticks(&xr)), yr.clone())?;
        mesh!(ch, "tokens D", "validation loss (nats/token)", &|v| fmt_tick(*v), &|v| format!("{v:.2}"));
        let mut labelled = vec![false; sizes.len()];
        for r in &law.runs {
            let k = sizes.iter().position(|s| *s == r.params).unwrap_or(0);
            let c = color(k);
            let pred: Vec<(f64, f64)> = r.tokens.iter().copied().zip(r.predicted.iter().copied()).collect();
            for seg in clip(&pred, &xr, &yr) {
                let s = ch.draw_series(LineSeries::new(seg, c.stroke_width(1)))?;
                if !labelled[k] {
                    labelled[k] = true;
                    s.label(format!("N = {}", si(sizes[k])))
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
                }
            }
            let obs = r
                .tokens
                .iter()
                .copied()
                .zip(r.observed.iter().copied())
                .filter(|p| xr.contains(&p.0) && yr.contains(&p.1));
            ch.draw_series(obs.map(|p| Circle::new(p, 2, c.mix(0.6).filled())))?;
        }
        if let Some(curve) = target {
            let red = RGBColor(214, 39, 40);
            let mut poly: Vec<(f64, f64)> = curve.iter().map(|p| (p.tokens, p.hi.min(yr.end))).collect();
            poly.extend(curve.iter().rev().map(|p| (p.tokens, p.lo.max(yr.start))));
            ch.draw_series(std::iter::once(Polygon::new(poly, red.mix(0.15).filled())))?;
            let mid: Vec<(f64, f64)> = curve.iter().map(|p| (p.tokens, p.loss)).collect();
            for seg in clip(&mid, &xr, &yr) {
                ch.draw_series(LineSeries::new(seg, red.stroke_width(2)))?;
            }
            let last = curve.last().expect("non-empty");
            ch.draw_series(std::iter::once(Circle::new((last.tokens, last.loss), 4, red.filled())))?
                .label(format!(
                    "target N = {}: {:.3} [{:.3}, {:.3}] at D = {}{}",
                    si(law.target.as_ref().map_or(0.0, |t| t.params)),
                    last.loss,
                    last.lo,
                    last.hi,
                    fmt_tick(last.tokens),
                    if below(last.loss) {
                        " (below the entropy floor: not a result)"
                    } else if law.target.as_ref().is_some_and(|t| t.decay_extrapolated) {
                        " (its decay extrapolated far past the sweep's: not a result)"
                    } else {
                        ""
                    }
                ))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], red.stroke_width(2)));
        }
        if let Some(fl) = floor {
            floor_line!(ch, xr, fl);
        }
        legend!(ch, SeriesLabelPosition::UpperRight);
        Ok(())
    })?;
    Ok(mk(Ok(Some(svg))))
}

/// How close any law could come to the fitted curves: their own scatter beside the law's
/// in-sample error (empty when the fit has no measure of it).
fn scatter_caption(fit: &crate::fit::curve::CurveFit) -> String {
    if fit.eval_scatter_rms <= 0.0 {
        return String::new();
    }
    let s = crate::fit::curve::noise::Scatter { rms: fit.eval_scatter_rms, triples: 0 };
    format!(
        "The fitted curves scatter {:.2}% per evaluation about their neighbours (`laws.loss_curve.eval_scatter_rms`): \
         no law of the schedule comes closer to them than about {:.2}% on average; the law's in-sample mean error is \
         {:.2}%. ",
        100.0 * s.rms,
        100.0 * s.floor(),
        100.0 * fit.in_sample.mean_rel
    )
}

/// The curve rollout in one sentence for the caption: what it measured and what that means at
/// the target's end.
fn rollout_caption(law: &crate::fit::curve::CurveLawReport) -> String {
    let Some(r) = &law.fit.rollout else {
        return "No curve rollout (too few runs to hold any out): the band is not widened for distance.".into();
    };
    let end = law.target.as_ref().and_then(|t| t.curve.last().map(|p| (t.params, p.tokens)));
    let at = end.map_or(String::new(), |(n, t)| {
        format!(
            " The target's last point is {:.0}x from the sweep: its band is widened by {:.1}%{}.",
            r.distance(n, t, false),
            100.0 * r.err95(n, t, false),
            if r.distance(n, t, false) > r.rollout.by_factor.last().map_or(1.0, |s| s.k) {
                ", the measured miss grown by ln(distance) / ln(k), an assumption"
            } else {
                ""
            }
        )
    });
    format!("Curve rollout (refit on the runs at most 1/k of the way in compute and in each size's tokens, predict the rest's whole curves): {}.{at}", r.summary())
}
