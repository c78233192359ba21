//! `mix_check.json`: the record `windtunnel mix-check` writes into a sweep's results folder
//! and the report reads (the held-out test of a data-mixture recommendation). It lives in
//! the store, beside the other files' formats, so the report reads it without depending on
//! the workflow that writes it.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MixCheck {
    pub width: usize,
    pub depth: usize,
    pub params: f64,
    pub tokens: f64,
    pub flops: f64,
    /// Compute of the sweep's largest run (the check is this many times larger).
    pub sweep_max_flops: f64,
    pub rows: Vec<CheckRow>,
    pub verdict: String,
    /// True when the recommended mixture beat the uniform and every single-domain mixture.
    pub recommended_wins: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckRow {
    pub label: String,
    pub mix: Vec<f64>,
    pub run_id: String,
    /// The law's objective for this mixture at the check run's compute.
    pub predicted: f64,
    /// The objective from the run's final validation losses.
    pub actual: f64,
    pub losses: Vec<f64>,
    /// 1 = lowest actual objective.
    pub rank: usize,
}
