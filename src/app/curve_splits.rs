//! `curve-holdout DIR` without `--fit`/`--predict`: every length backtest a sweep allows, in
//! one table. The sweep's run lengths are found from its runs (tokens per parameter, or
//! training tokens on a grid over tokens such as WSD branches: whichever axis groups the runs
//! into fewer lengths), and each length from the third on is predicted, whole curves, from the
//! two lengths just below it: always an extrapolation to a longer run, the direction a
//! researcher needs (how far past its fitted runs a run's curve can be trusted), and always
//! two fitted lengths, so every split asks the same question of the law.

use super::curve::{holdout, HoldoutRow, LengthAxis, SAME_LENGTH};
use crate::fit::curve::{CurveRun, Errors};
use anyhow::Result;
use std::fmt::Write;

/// The distinct run lengths on axis `by`, ascending: runs are sorted by length and a run
/// within `SAME_LENGTH` of the first run of the current group joins it; each group is named by its
/// median run, rounded to three significant digits.
pub fn run_lengths(runs: &[(CurveRun, u64)], by: LengthAxis) -> Vec<f64> {
    let mut x: Vec<f64> =
        runs.iter().map(|(r, tokens)| by.of(r, *tokens)).filter(|v| v.is_finite() && *v > 0.0).collect();
    x.sort_by(f64::total_cmp);
    let mut groups: Vec<Vec<f64>> = Vec::new();
    for v in x {
        match groups.last_mut() {
            Some(g) if v / g[0] - 1.0 < SAME_LENGTH => g.push(v),
            _ => groups.push(vec![v]),
        }
    }
    groups.iter().map(|g| round3(g[g.len() / 2])).collect()
}

fn round3(v: f64) -> f64 {
    let scale = 10f64.powi(2 - v.log10().floor() as i32);
    (v * scale).round() / scale
}

/// The axis the sweep's grid is over: the one that groups its runs into fewer lengths (ties:
/// tokens per parameter, the Chinchilla grid's axis).
pub fn grid_axis(runs: &[(CurveRun, u64)]) -> LengthAxis {
    let tpp = run_lengths(runs, LengthAxis::TokensPerParam).len();
    let tokens = run_lengths(runs, LengthAxis::Tokens).len();
    if tokens < tpp {
        LengthAxis::Tokens
    } else {
        LengthAxis::TokensPerParam
    }
}

/// One split: two fitted lengths, the next length predicted.
pub struct Split {
    pub fit: [f64; 2],
    pub predict: f64,
    /// The held-out runs' scores, or why this split could not be fitted.
    pub result: Result<(Errors, Vec<HoldoutRow>), String>,
}

/// Every split of `runs` on axis `by`: the lengths from the third on, each from the two below.
pub fn splits(runs: &[(CurveRun, u64)], by: LengthAxis) -> Vec<Split> {
    let lengths = run_lengths(runs, by);
    lengths
        .windows(3)
        .map(|w| {
            let result =
                holdout(runs, &w[..2], &w[2..], by).map(|(_, e, rows)| (e, rows)).map_err(|e| format!("{e:#}"));
            Split { fit: [w[0], w[1]], predict: w[2], result }
        })
        .collect()
}

/// The table `curve-holdout DIR` prints: one row per split and the points of all of them
/// pooled.
pub fn table(runs: &[(CurveRun, u64)], by: LengthAxis) -> Result<String> {
    let lengths = run_lengths(runs, by);
    if lengths.len() < 3 {
        return Err(crate::UserError(format!(
            "curve-holdout: the runs have {} distinct lengths in {} ({lengths:?}); a length backtest fits two and \
             predicts a third, so it needs three (or give --fit and --predict)",
            lengths.len(),
            by.unit()
        ))
        .into());
    }
    let all = splits(runs, by);
    let label = |v: f64| by.label(v);
    let mut out = format!(
        "length backtests of the loss-curve law on {} {}: fitted on two run lengths, every run of the next length \
         predicted, whole curves, with its 95% band (`--fit A,B --predict C` prints one split in detail):\n\n\
         | fitted | predicted | runs | evaluations | mean error | worst point | inside 95% band | final losses inside |\n\
         |---|---|---|---|---|---|---|---|\n",
        by.unit(),
        lengths.iter().map(|&v| label(v)).collect::<Vec<_>>().join(", ")
    );
    let mut pooled = Vec::new();
    let (mut inside, mut finals, mut runs_n) = (0, 0, 0);
    for s in &all {
        let head = format!("| {}, {} | {} |", label(s.fit[0]), label(s.fit[1]), label(s.predict));
        match &s.result {
            Ok((e, rows)) => {
                let i: usize = rows.iter().map(HoldoutRow::inside).sum();
                let f = rows.iter().filter(|h| h.final_inside()).count();
                let _ = writeln!(
                    out,
                    "{head} {} | {} | {:.3}% | {:.3}% | {i} of {} ({:.0}%) | {f} of {} |",
                    rows.len(),
                    e.points,
                    100.0 * e.mean_rel,
                    100.0 * e.max_rel,
                    e.points,
                    100.0 * i as f64 / e.points.max(1) as f64,
                    rows.len()
                );
                pooled.push(*e);
                inside += i;
                finals += f;
                runs_n += rows.len();
            }
            Err(why) => {
                let _ = writeln!(out, "{head} not fitted: {why} | | | | | |");
            }
        }
    }
    if pooled.len() > 1 {
        let e = Errors::pool(&pooled);
        let _ = writeln!(
            out,
            "| **all** | | {runs_n} | {} | **{:.3}%** | **{:.3}%** | **{inside} of {} ({:.0}%)** | {finals} of {runs_n} |",
            e.points,
            100.0 * e.mean_rel,
            100.0 * e.max_rel,
            e.points,
            100.0 * inside as f64 / e.points.max(1) as f64
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::curve::known_law_runs;

    #[test]
    fn every_length_from_the_third_is_predicted_from_the_two_below() {
        // A grid over tokens: four lengths, the same for every size.
        let runs = known_law_runs(|_, j| 400 << j, 4, 5);
        assert_eq!(grid_axis(&runs), LengthAxis::Tokens);
        assert_eq!(run_lengths(&runs, LengthAxis::Tokens), vec![410_000.0, 819_000.0, 1_640_000.0, 3_280_000.0]);
        let all = splits(&runs, LengthAxis::Tokens);
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].fit, all[0].predict), ([410_000.0, 819_000.0], 1_640_000.0));
        assert_eq!((all[1].fit, all[1].predict), ([819_000.0, 1_640_000.0], 3_280_000.0));
        for s in &all {
            let (e, rows) = s.result.as_ref().expect("fitted");
            assert_eq!(rows.len(), 4, "one run per size at {}", s.predict);
            assert!(rows.iter().all(|h| (h.run.lr.len() as f64 * 1024.0 / s.predict - 1.0).abs() < 0.01));
            assert!(e.mean_rel < 5e-3, "{} from {:?}: {e:?}", s.predict, s.fit);
        }
        let t = table(&runs, LengthAxis::Tokens).unwrap();
        assert!(t.contains("| 819k, 1.64M | 3.28M | 4 | 120 |"), "{t}");
        assert!(t.lines().any(|l| l.starts_with("| **all** | | 8 | 240 |")), "{t}");
        // A grid over tokens per parameter (steps in proportion to N): that axis is chosen.
        let tpp = known_law_runs(|n, j| (n / 1e5) as u64 * (100 << j), 3, 5);
        assert_eq!(grid_axis(&tpp), LengthAxis::TokensPerParam);
        assert_eq!(run_lengths(&tpp, LengthAxis::TokensPerParam), vec![1.02, 2.05, 4.1]);
        // Two lengths cannot be backtested; the error says what is needed.
        let two: Vec<_> = runs.iter().filter(|(_, t)| *t < 1_000_000).cloned().collect();
        let e = table(&two, LengthAxis::Tokens).unwrap_err().to_string();
        assert!(e.contains("2 distinct lengths in tokens") && e.contains("needs three"), "{e}");
    }
}
