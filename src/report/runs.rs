//! The finished runs of a results frame, each with its evaluation curve: what every report
//! section, figure and `windtunnel check` reads.

use anyhow::Result;
use polars::prelude::*;
use std::collections::BTreeMap;

/// One evaluation point of a run.
#[derive(Clone, Copy, Debug)]
pub struct Point {
    pub tokens: f64,
    pub loss: f64,
}

/// One finished run: its shape, hyperparameters, final point and evaluation curve.
#[derive(Clone, Debug)]
pub struct RunCurve {
    pub run_id: String,
    pub width: i64,
    pub depth: i64,
    pub heads: i64,
    pub seq_len: i64,
    pub lr: f64,
    pub batch_size: i64,
    pub params: f64,
    /// Final tokens, loss and FLOPs (the trainer's count, attention included).
    pub tokens: f64,
    pub loss: f64,
    pub flops: f64,
    /// Mixture weights by domain name.
    pub mix: BTreeMap<String, f64>,
    /// Final validation loss per domain (nats/token).
    pub domain_loss: BTreeMap<String, f64>,
    /// Every evaluation, in token order.
    pub points: Vec<Point>,
    /// A WSD decay branch: its trunk's run id (empty otherwise).
    pub branch_of: String,
}

impl RunCurve {
    /// C = 6ND, the compute convention of the fitted laws.
    pub fn c6(&self) -> f64 {
        crate::flops::chinchilla_flops(self.params, self.tokens)
    }
}

fn col(df: &DataFrame, name: &str) -> Vec<f64> {
    df.column(name)
        .ok()
        .and_then(|c| c.cast(&DataType::Float64).ok())
        .and_then(|c| c.f64().ok().map(|v| v.iter().map(|x| x.unwrap_or(f64::NAN)).collect()))
        .unwrap_or_else(|| vec![f64::NAN; df.height()])
}

/// Every finished run of a results frame with its evaluation curve, sorted by final 6ND.
pub fn run_curves(df: &DataFrame) -> Result<Vec<RunCurve>> {
    let ids: Vec<String> = df.column("run_id")?.str()?.iter().map(|v| v.unwrap_or("").to_string()).collect();
    let fin: Vec<bool> = match df.column("is_final") {
        Ok(c) => c.bool()?.iter().map(|v| v.unwrap_or(false)).collect(),
        Err(_) => vec![true; df.height()],
    };
    let [w, d, h, s, lr, b, n, t, l, c] =
        ["width", "depth", "heads", "seq_len", "lr", "batch_size", "params", "tokens", "loss", "flops"]
            .map(|k| col(df, k));
    let mixes: Vec<(String, Vec<f64>)> = df
        .get_column_names()
        .iter()
        .filter_map(|k| k.strip_prefix("mix_").map(|d| (d.to_string(), col(df, k.as_str()))))
        .collect();
    let domain_losses: Vec<(String, Vec<f64>)> =
        mixes.iter().map(|(d, _)| (d.clone(), col(df, &format!("loss_{d}")))).collect();
    let branch_of: Vec<String> = match df.column("branch_of") {
        Ok(c) => c.str()?.iter().map(|v| v.unwrap_or("").to_string()).collect(),
        Err(_) => vec![String::new(); df.height()],
    };
    let mut by_id: BTreeMap<&str, RunCurve> = BTreeMap::new();
    for k in 0..ids.len() {
        let r = by_id.entry(ids[k].as_str()).or_insert_with(|| RunCurve {
            run_id: ids[k].clone(),
            width: w[k] as i64,
            depth: d[k] as i64,
            heads: h[k] as i64,
            seq_len: s[k] as i64,
            lr: lr[k],
            batch_size: b[k] as i64,
            params: n[k],
            tokens: f64::NAN,
            loss: f64::NAN,
            flops: f64::NAN,
            mix: mixes.iter().map(|(name, v)| (name.clone(), v[k])).collect(),
            domain_loss: BTreeMap::new(),
            points: Vec::new(),
            branch_of: branch_of[k].clone(),
        });
        if t[k] > 0.0 && l[k].is_finite() {
            r.points.push(Point { tokens: t[k], loss: l[k] });
        }
        if fin[k] {
            (r.tokens, r.loss, r.flops) = (t[k], l[k], c[k]);
            r.domain_loss = domain_losses.iter().map(|(name, v)| (name.clone(), v[k])).collect();
        }
    }
    let mut runs: Vec<RunCurve> = by_id.into_values().filter(|r| r.loss.is_finite() && r.tokens > 0.0).collect();
    for r in &mut runs {
        r.points.sort_by(|a, b| a.tokens.total_cmp(&b.tokens));
    }
    runs.sort_by(|a, b| a.c6().total_cmp(&b.c6()));
    Ok(runs)
}
