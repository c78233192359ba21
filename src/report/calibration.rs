//! The report's "Calibration" section and plot: `windtunnel check`'s ledger (check.json), the
//! law's predictions for runs 10x to 30x beyond the sweep, with their 95% intervals, against
//! what those runs reached.

use super::chart::figure;
use super::chart::{self, bounds, fmt_tick, legend, lin_range, log_range, log_ticks, mesh, si};
use super::doc::{Doc, Figure};
use super::facts::Facts;
use anyhow::Result;
use plotters::prelude::*;

pub(super) fn section(d: &mut Doc, f: &Facts) {
    d.h2("Calibration");
    let Some(l) = f.check.as_ref().filter(|l| !l.entries.is_empty()) else {
        d.p(format!(
            "Not yet checked against a larger run: `windtunnel check results/{}` trains one to three models at 10x to \
             30x the sweep's largest compute (its own recipe) and records the law's prediction, its 95% interval and \
             the actual loss here.",
            f.sweep.name
        ));
        return;
    };
    let rows = l
        .entries
        .iter()
        .map(|e| {
            vec![
                format!("`{}`", e.run_id),
                format!("{} / {}", e.width, e.depth),
                si(e.params),
                si(e.tokens),
                format!("{:.1}", e.tokens_per_param),
                format!("{:.1}x", e.factor),
                format!("{:.4}", e.predicted),
                e.interval.map_or("n/a".into(), |i| crate::human::loss_interval(i.lo, i.hi)),
                e.actual.map_or("not trained".into(), |a| format!("{a:.4}")),
                e.rel_err.map_or(String::new(), |r| format!("{:+.2}%", 100.0 * r)),
                match (e.counted_inside(), e.actual.is_some() && e.no_claim().is_some()) {
                    (Some(true), _) => "yes".into(),
                    (Some(false), _) => "**no**".into(),
                    (None, true) => "no claim".into(),
                    (None, false) => String::new(),
                },
            ]
        })
        .collect();
    let (settled, inside) = l.coverage();
    let uncounted = match l.uncounted() {
        0 => String::new(),
        k => format!(
            " {k} more finished with an interval that is no claim (its upper end above ln(vocabulary), or more than \
             10x its lower end): \"no claim\" below, counted neither inside nor outside."
        ),
    };
    if l.held_out {
        d.p(format!(
            "These runs were imported and held out of the fit (`runs.checks` of the manifest): each is predicted from \
             the law fitted to the other runs, with the 95% interval `windtunnel predict` gives (none from a degenerate \
             fit), against its actual final loss. They were trained elsewhere, not planned from this law. **{inside} of \
             {settled}** actual final losses lie inside their interval.{uncounted}"
        ));
    } else {
        d.p(format!(
        "Each run was planned from the fitted law before it trained (its size by {}; everything else by the sweep's \
         recipe), its prediction and 95% interval recorded in `check.json`, then trained in `{}`. **{inside} of \
         {settled}** actual final losses lie inside their interval.{uncounted}",
        l.entries.first().map_or("n/a".to_string(), |e| e.rule.clone()),
        l.runs_dir
    ));
    }
    d.table(
        &[
            "run",
            "width / depth",
            "N",
            "D",
            "tokens/param",
            "C / largest",
            "predicted",
            "95% interval",
            "actual",
            "error",
            "inside",
        ],
        rows,
    );
    curve_rows(d, l);
}

/// The loss-curve law on the same runs' whole curves, when the sweep fits it.
fn curve_rows(d: &mut Doc, l: &crate::fit::calibration::Ledger) {
    let rows: Vec<Vec<String>> = l
        .entries
        .iter()
        .filter_map(|e| e.curve.as_ref().map(|c| (e, c)))
        .map(|(e, c)| {
            vec![
                format!("`{}`", e.run_id),
                format!("{:.1}x", e.factor),
                c.points.to_string(),
                format!("{:.2}%", 100.0 * c.mean_rel),
                format!("{:.2}%", 100.0 * c.max_rel),
                format!("{} of {}", c.inside, c.points),
                format!(
                    "{} {}",
                    crate::human::loss(c.final_predicted),
                    crate::human::loss_interval(c.final_lo, c.final_hi)
                ),
                format!("{:.4}", c.final_actual),
                if c.final_inside() { "yes".into() } else { "**no**".into() },
            ]
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    d.p("The loss-curve law (`laws.loss_curve`, fitted on the sweep's runs only) predicting each check run's whole \
         curve, every evaluation from the end of warmup, with its 95% band (widened by the curve rollout at each \
         point's distance from the sweep):"
        .to_string());
    d.table(
        &[
            "run",
            "C / largest",
            "evaluations",
            "mean error",
            "worst",
            "inside band",
            "final: predicted [95%]",
            "actual",
            "inside",
        ],
        rows,
    );
}

/// Predicted loss with its interval (bar) and the actual loss (dot) of each check run against
/// compute, with the sweep's final points for scale.
pub(super) fn plot(f: &Facts) -> Result<Figure> {
    let caption = "Calibration (`windtunnel check`): for each run beyond the sweep, the law's prediction (cross) with \
                   its 95% interval (bar) and the actual final loss (filled dot); grey: the sweep's own final points."
        .to_string();
    let mk = |r| figure("calibration", "Calibration", caption.clone(), r);
    let Some(l) = f.check.as_ref().filter(|l| !l.entries.is_empty()) else {
        return Ok(mk(Err("no check runs yet (`windtunnel check DIR`)".into())));
    };
    let xs = f.runs.iter().map(|r| r.c6()).chain(l.entries.iter().map(|e| e.flops));
    let mut ys: Vec<f64> = f.runs.iter().map(|r| r.loss).collect();
    for e in &l.entries {
        ys.push(e.predicted);
        ys.extend(e.actual);
        if let Some(i) = e.interval {
            ys.extend([i.lo, i.hi]);
        }
    }
    let (Some((x_lo, x_hi)), Some((y_lo, y_hi))) = (bounds(xs), bounds(ys)) else {
        return Ok(mk(Err("no finite values".into())));
    };
    let (xr, yr) = (log_range(x_lo / 1.5, x_hi * 1.5), lin_range(y_lo.max(0.0), y_hi));
    let svg = chart::render(860, 480, |root| {
        let mut ch = chart::frame(root, "Calibration: predicted vs actual beyond the sweep")
            .build_cartesian_2d(xr.clone().log_scale().with_key_points(log_ticks(&xr)), yr.clone())?;
        mesh!(ch, "training compute C = 6ND (FLOPs)", "final validation loss (nats/token)", &|v| fmt_tick(*v), &|v| {
            format!("{v:.2}")
        });
        let grey = RGBColor(150, 150, 150);
        ch.draw_series(f.runs.iter().map(|r| Circle::new((r.c6(), r.loss), 3, grey.filled())))?
            .label("sweep runs (final)")
            .legend(move |(x, y)| Circle::new((x + 9, y), 3, grey.filled()));
        let blue = RGBColor(40, 80, 200);
        for (k, e) in l.entries.iter().enumerate() {
            let x = e.flops;
            if let Some(i) = e.interval {
                let (lo, hi) = (i.lo.clamp(yr.start, yr.end), i.hi.clamp(yr.start, yr.end));
                let cap = |y| PathElement::new(vec![(x / 1.1, y), (x * 1.1, y)], RED.stroke_width(2));
                let s =
                    ch.draw_series([PathElement::new(vec![(x, lo), (x, hi)], RED.stroke_width(2)), cap(lo), cap(hi)])?;
                if k == 0 {
                    s.label("95% interval of the prediction")
                        .legend(|(x, y)| PathElement::new(vec![(x + 9, y - 5), (x + 9, y + 5)], RED.stroke_width(2)));
                }
            }
            let s = ch.draw_series(std::iter::once(Cross::new((x, e.predicted), 6, RED.stroke_width(2))))?;
            if k == 0 {
                s.label("predicted").legend(|(x, y)| Cross::new((x + 9, y), 5, RED.stroke_width(2)));
            }
            if let Some(a) = e.actual {
                let s = ch.draw_series(std::iter::once(Circle::new((x, a), 5, blue.filled())))?;
                if k == 0 {
                    s.label("actual").legend(move |(x, y)| Circle::new((x + 9, y), 4, blue.filled()));
                }
            }
        }
        legend!(ch, SeriesLabelPosition::UpperRight);
        Ok(())
    })?;
    Ok(mk(Ok(Some(svg))))
}
