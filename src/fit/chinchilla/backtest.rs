//! Backtest in the style of the Hitchhiker's Guide to scaling laws: fit
//! without the largest model, then predict that model's final loss and report
//! the mean absolute relative error (ARE). The law is a law of *final* points
//! (each run trained to the end of its own schedule), so only final points are
//! scored: a mid-run point of a WSD run sits in the stable phase, before the
//! decay, and is 2-4% above what a run stopped there would reach, an error of
//! the comparison and not of the law. Works on any `Obs` list and any fitting
//! function that returns a `Law`. (`rollout` measures the error at the
//! extrapolation distances a target needs.)

use crate::fit::chinchilla::law::Law;
use crate::fit::Obs;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BacktestPoint {
    pub run: String,
    pub params: f64,
    pub tokens: f64,
    pub actual: f64,
    pub predicted: f64,
    pub rel_err: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backtest {
    pub protocol: String,
    pub held_out_runs: Vec<String>,
    pub n_fit_points: usize,
    pub points: Vec<BacktestPoint>,
    /// Mean absolute relative error over `points`.
    pub are: f64,
}

/// Each run's final observation: the one flagged `is_final`, else the one
/// with the most tokens. Runs come back sorted by name.
pub fn final_per_run(obs: &[Obs]) -> Vec<Obs> {
    let mut by_run: BTreeMap<&str, &Obs> = BTreeMap::new();
    for o in obs {
        let e = by_run.entry(o.run.as_str()).or_insert(o);
        let better = (o.is_final && !e.is_final) || (o.is_final == e.is_final && o.tokens > e.tokens);
        if better {
            *e = o;
        }
    }
    by_run.into_values().cloned().collect()
}

/// Hold out every run of the largest model size, fit the others' final
/// points with `fit`, score the held-out runs' final points.
pub fn run(obs: &[Obs], fit: impl Fn(&[Obs]) -> Result<Law>) -> Result<Backtest> {
    let finals = final_per_run(obs);
    let max_n = finals.iter().map(|o| o.params).fold(f64::MIN, f64::max);
    let is_largest = |o: &Obs| o.params >= max_n * (1.0 - 1e-6);
    let held: Vec<&Obs> = finals.iter().filter(|o| is_largest(o)).collect();
    let train: Vec<Obs> = finals.iter().filter(|o| !is_largest(o)).cloned().collect();
    if train.is_empty() {
        bail!("backtest needs runs smaller than the largest model");
    }
    let law = fit(&train)?;
    let points: Vec<BacktestPoint> = held
        .iter()
        .map(|o| {
            let predicted = law.predict(o.params, o.tokens);
            BacktestPoint {
                run: o.run.clone(),
                params: o.params,
                tokens: o.tokens,
                actual: o.loss,
                predicted,
                rel_err: (predicted - o.loss) / o.loss,
            }
        })
        .collect();
    let mut points = points;
    points.sort_by(|a, b| a.run.cmp(&b.run).then(a.tokens.total_cmp(&b.tokens)));
    let are = points.iter().map(|p| p.rel_err.abs()).sum::<f64>() / points.len() as f64;
    Ok(Backtest {
        protocol: format!(
            "hold out the largest model size (N = {max_n:.4e}); fit the other runs' final points; \
             predict the held-out runs' final points (a law of final points is scored on final points only); \
             are = mean |predicted - actual| / actual"
        ),
        held_out_runs: held.iter().map(|o| o.run.clone()).collect(),
        n_fit_points: train.len(),
        points,
        are,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn law() -> Law {
        Law { e: 1.8, a: 480.0, b: 2100.0, alpha: 0.35, beta: 0.37 }
    }

    fn curve(run: &str, n: f64, d_final: f64, steps: usize) -> Vec<Obs> {
        (1..=steps)
            .map(|k| {
                let d = d_final * k as f64 / steps as f64;
                Obs {
                    run: run.into(),
                    params: n,
                    tokens: d,
                    flops: crate::flops::chinchilla_flops(n, d),
                    loss: law().predict(n, d),
                    lr: None,
                    batch: None,
                    is_final: k == steps,
                }
            })
            .collect()
    }

    #[test]
    fn holds_out_largest_and_scores_its_final_points_only() {
        let mut obs = curve("small", 1e7, 2e8, 10);
        obs.extend(curve("mid", 1e8, 2e9, 10));
        obs.extend(curve("big-a", 1e9, 2e10, 10));
        obs.extend(curve("big-b", 1e9, 1e10, 4));
        let bt = run(&obs, |train| {
            assert_eq!(train.len(), 2);
            assert!(train.iter().all(|o| o.params < 1e9));
            Ok(law())
        })
        .unwrap();
        assert_eq!(bt.held_out_runs, vec!["big-a".to_string(), "big-b".to_string()]);
        assert_eq!(bt.n_fit_points, 2);
        // One point per held-out run, its final one: mid-run points are not scored.
        assert_eq!(bt.points.len(), 2);
        assert_eq!((bt.points[0].tokens, bt.points[1].tokens), (2e10, 1e10));
        assert!(bt.are < 1e-12);
    }

    #[test]
    fn final_only_runs_use_their_final_point() {
        let obs: Vec<Obs> =
            [1e7, 1e8, 1e9].iter().map(|&n| curve(&format!("r{n}"), n, 20.0 * n, 1).remove(0)).collect();
        let biased = Law { e: 1.9, ..law() };
        let bt = run(&obs, |_| Ok(biased)).unwrap();
        assert_eq!(bt.points.len(), 1);
        let want = 0.1 / law().predict(1e9, 2e10);
        assert!((bt.are - want).abs() < 1e-12);
    }

    #[test]
    fn single_size_cannot_be_backtested() {
        let obs = curve("only", 1e8, 2e9, 5);
        assert!(run(&obs, |_| Ok(law())).is_err());
    }
}
