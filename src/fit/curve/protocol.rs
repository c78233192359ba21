//! The multi-power-law paper's protocol on its published curves
//! (`../shared/reference-data/mpl`, 25M and 100M, nine schedules each): per size, fit the law
//! on three schedules (cosine_24000, constant_24000, wsdcon_9) and predict the other six
//! whole curves; report mean and worst relative error per schedule beside the errors of the
//! paper's own published parameters run through this module's predictor (a check of the
//! predictor itself) and the paper's reported range.

use super::{fit, CurveFit, CurveLaw, CurveRun, Errors, Layout};
use anyhow::{bail, Result};
use std::fmt::Write;
use std::path::Path;

pub const SIZES: [&str; 2] = ["25M", "100M"];
pub const FIT_ON: [&str; 3] = ["cosine_24000", "constant_24000", "wsdcon_9"];
pub const PREDICT: [&str; 6] =
    ["constant_72000", "cosine_72000", "wsd_20000_24000", "wsdld_20000_24000", "wsdcon_3", "wsdcon_18"];

/// The paper's fitted [L0, A, alpha, B, C, beta, gamma] (from the data's README).
pub fn published(size: &str) -> Option<CurveLaw> {
    let v = match size {
        "25M" => [3.0405, 0.5247, 0.5079, 363.79, 2.0656, 0.5828, 0.6414],
        "100M" => [2.6514, 0.6012, 0.4530, 437.95, 2.1325, 0.5979, 0.6552],
        _ => return None,
    };
    Some(CurveLaw {
        layout: Layout::PerSize,
        n_ref: 1.0,
        e: v[0],
        p: 0.0,
        p_exp: 0.0,
        a: v[1],
        a_exp: 0.0,
        alpha: v[2],
        b: v[3],
        b_exp: 0.0,
        c: v[4],
        beta: v[5],
        gamma: v[6],
        d: 0.0,
        d_exp: 0.0,
        tau: 1.0,
        tau_exp: 0.0,
        d2: 0.0,
        d2_exp: 0.0,
        tau2: 1.0,
        tau2_exp: 0.0,
    })
}

/// Reads a CSV of numbers whose header starts with `want`; errors name file, line, column
/// and field.
fn read_csv(path: &Path, want: &[&str]) -> Result<Vec<Vec<f64>>> {
    crate::fit::table::read_numbers(path, want, true)
}

/// One published curve as a `CurveRun`: the schedule's learning rate at every step and the
/// losses, where the loss logged at step s has seen the updates 0..=s (s + 1 of them).
pub fn load(dir: &Path, size: &str, schedule: &str) -> Result<CurveRun> {
    let lr: Vec<f64> = read_csv(&dir.join("lr_schedules").join(format!("{schedule}.csv")), &["step", "lr"])?
        .iter()
        .map(|r| r[1])
        .collect();
    let path = dir.join("curves").join(format!("mpl_{size}_{schedule}.csv"));
    let rows = read_csv(&path, &["step", "lr", "loss"])?;
    let steps: Vec<u64> = rows.iter().map(|r| r[0] as u64 + 1).collect();
    if let Some(s) = steps.iter().find(|&&s| s as usize > lr.len()) {
        bail!("{}: step {} is past the end of schedule {schedule} ({} steps)", path.display(), s - 1, lr.len());
    }
    let params = if size == "25M" { 25e6 } else { 100e6 };
    Ok(CurveRun {
        run: schedule.to_string(),
        params,
        tokens_per_step: 1.0,
        lr,
        steps,
        loss: rows.iter().map(|r| r[2]).collect(),
    })
}

/// One size's protocol outcome.
pub struct SizeResult {
    pub size: String,
    pub fit: CurveFit,
    /// Per predicted schedule: (name, this fit's errors, the published parameters' errors,
    /// the published parameters' errors with L0 shifted to fit the three fitted curves).
    pub rows: Vec<(String, Errors, Errors, Errors)>,
    /// That shift of the published L0 (nats).
    pub l0_shift: f64,
}

impl SizeResult {
    pub fn ours(&self) -> Errors {
        Errors::pool(&self.rows.iter().map(|r| r.1).collect::<Vec<_>>())
    }
    pub fn paper_params(&self) -> Errors {
        Errors::pool(&self.rows.iter().map(|r| r.2).collect::<Vec<_>>())
    }
    pub fn paper_shifted(&self) -> Errors {
        Errors::pool(&self.rows.iter().map(|r| r.3).collect::<Vec<_>>())
    }
}

/// Runs the protocol for every size.
pub fn run(dir: &Path) -> Result<Vec<SizeResult>> {
    if !dir.join("curves").is_dir() {
        bail!(
            "{}: no curves/ folder (the published multi-power-law curves; see shared/reference-data/mpl)",
            dir.display()
        );
    }
    SIZES
        .iter()
        .map(|&size| {
            let train: Vec<CurveRun> = FIT_ON.iter().map(|s| load(dir, size, s)).collect::<Result<_>>()?;
            let f = fit(&train, 0, 0)?;
            let paper = published(size).expect("known size");
            // The published parameters sit a near-constant offset from the published curves
            // (their A and alpha match this fit's to 1-2%, L0 does not); shifting L0 by the mean
            // residual on the three fitted curves separates that offset from the law's shape.
            let (mut sum, mut n) = (0.0, 0.0);
            for r in &train {
                for (p, a) in super::predict(&paper, r.params, &r.lr, &r.steps).iter().zip(&r.loss) {
                    sum += a - p;
                    n += 1.0;
                }
            }
            let l0_shift = sum / n;
            let shifted = CurveLaw { e: paper.e + l0_shift, ..paper };
            let mut rows = Vec::new();
            for s in PREDICT {
                let r = load(dir, size, s)?;
                let ours = super::predict(&f.law, r.params, &r.lr, &r.steps);
                let theirs = super::predict(&paper, r.params, &r.lr, &r.steps);
                let moved = super::predict(&shifted, r.params, &r.lr, &r.steps);
                rows.push((
                    s.to_string(),
                    Errors::of(&ours, &r.loss),
                    Errors::of(&theirs, &r.loss),
                    Errors::of(&moved, &r.loss),
                ));
            }
            Ok(SizeResult { size: size.to_string(), fit: f, rows, l0_shift })
        })
        .collect()
}

/// The protocol as a Markdown table.
pub fn table(results: &[SizeResult]) -> String {
    let mut out = String::new();
    let pct = |v: f64| format!("{:.3}%", 100.0 * v);
    let _ = writeln!(out, "Multi-power-law protocol: fit on {} ; predict the other six curves.\n", FIT_ON.join(", "));
    let _ = writeln!(
        out,
        "| size | predicted schedule | points | mean error | worst point | paper's parameters: mean | worst | \
         same, L0 shifted: mean | worst |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    let row = |out: &mut String, size: &str, name: &str, o: &Errors, p: &Errors, q: &Errors| {
        let _ = writeln!(
            out,
            "| {size} | {name} | {} | {} | {} | {} | {} | {} | {} |",
            o.points,
            pct(o.mean_rel),
            pct(o.max_rel),
            pct(p.mean_rel),
            pct(p.max_rel),
            pct(q.mean_rel),
            pct(q.max_rel)
        );
    };
    for r in results {
        for (s, o, p, q) in &r.rows {
            row(&mut out, &r.size, s, o, p, q);
        }
        row(&mut out, &format!("**{}**", r.size), "**all six**", &r.ours(), &r.paper_params(), &r.paper_shifted());
    }
    let shifts: Vec<String> = results.iter().map(|r| format!("{} {:+.4}", r.size, r.l0_shift)).collect();
    let _ = writeln!(
        out,
        "\n\"L0 shifted\": the published parameters with L0 moved by the mean residual on the three fitted \
         curves ({} nats). The published L0 sits a near-constant amount off the published curves, while the rest \
         of the published law (A, alpha, B, C, beta, gamma) predicts the six curves within the paper's errors.",
        shifts.join(", ")
    );
    let _ = writeln!(out, "\nPaper (Luo et al. 2025, 25M to 400M): mean 0.11% to 0.17%, worst point 0.4% to 1.0%.\n");
    let _ = writeln!(out, "| size | L0 | A | alpha | B | C | beta | gamma | fit time |");
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for r in results {
        let l = &r.fit.law;
        let _ = writeln!(
            out,
            "| {} (ours) | {:.4} | {:.4} | {:.4} | {:.2} | {:.4} | {:.4} | {:.4} | {:.2} s |",
            r.size, l.e, l.a, l.alpha, l.b, l.c, l.beta, l.gamma, r.fit.fit_seconds
        );
        if let Some(p) = published(&r.size) {
            let _ = writeln!(
                out,
                "| {} (paper) | {:.4} | {:.4} | {:.4} | {:.2} | {:.4} | {:.4} | {:.4} | |",
                r.size, p.e, p.a, p.alpha, p.b, p.c, p.beta, p.gamma
            );
        }
    }
    out
}
