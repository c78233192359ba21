//! Capability density: given a reference law and a model of N parameters
//! that reached `loss` after D tokens, the effective size N_hat is the size
//! at which the reference law reaches that loss at the same D; the density
//! is rho = N_hat / N (above 1: the model does more per parameter than the
//! reference family).

use crate::fit::chinchilla::law::Law;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Density {
    pub params: f64,
    pub tokens: f64,
    pub loss: f64,
    pub n_effective: f64,
    pub density: f64,
}

/// fit.json's `laws.density`: every run's final point against a reference law, with the
/// median density of the points the reference can reach.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DensityTable {
    pub reference: Law,
    /// NaN (null in fit.json) when no point could be placed.
    #[serde(deserialize_with = "null_as_nan")]
    pub median_density: f64,
    /// Points with a density (the unreachable ones are listed but not counted).
    pub n_points: usize,
    pub points: Vec<DensityRow>,
}

/// One run's final point: its density, or why the reference cannot reach its loss.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DensityRow {
    Placed {
        run: String,
        #[serde(flatten)]
        density: Density,
    },
    Unreachable {
        run: String,
        params: f64,
        tokens: f64,
        loss: f64,
        error: String,
    },
}

/// serde_json writes a non-finite f64 as null; read it back as NaN instead of failing.
fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Solve E + A / N_hat^alpha + B / D^beta = loss for N_hat.
pub fn density(reference: &Law, params: f64, tokens: f64, loss: f64) -> Result<Density> {
    for (name, v) in [("params", params), ("tokens", tokens), ("loss", loss)] {
        if !(v.is_finite() && v > 0.0) {
            bail!("density: {name} = {v} (must be finite and > 0)");
        }
    }
    let reducible = loss - reference.e - reference.b / tokens.powf(reference.beta);
    if reducible <= 0.0 {
        bail!(
            "density: loss {loss} is at or below what the reference law reaches with unlimited \
             parameters at D = {tokens:e} ({:.4}); N_hat is unbounded",
            loss - reducible
        );
    }
    let n_effective = (reference.a / reducible).powf(1.0 / reference.alpha);
    Ok(Density { params, tokens, loss, n_effective, density: n_effective / params })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_matching_twice_its_size_has_density_two() {
        let law = Law { e: 1.8, a: 480.0, b: 2100.0, alpha: 0.35, beta: 0.37 };
        let (n, d) = (1e8, 2e9);
        let r = density(&law, n, d, law.predict(2.0 * n, d)).unwrap();
        assert!((r.density - 2.0).abs() < 1e-9, "{r:?}");
        assert!(density(&law, n, d, 1.0).is_err());
        assert!(density(&law, f64::NAN, d, 3.0).is_err());
    }

    /// A table with no placed point (median NaN, written as null) and an unreachable row
    /// reads back.
    #[test]
    fn a_table_reads_back_with_a_null_median_and_an_unreachable_row() {
        let law = Law { e: 1.8, a: 480.0, b: 2100.0, alpha: 0.35, beta: 0.37 };
        let row = DensityRow::Unreachable { run: "r".into(), params: 1e8, tokens: 2e9, loss: 1.0, error: "low".into() };
        let t = DensityTable { reference: law, median_density: f64::NAN, n_points: 0, points: vec![row.clone()] };
        let back: DensityTable = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert!(back.median_density.is_nan());
        assert_eq!(back.points, vec![row]);
    }
}
