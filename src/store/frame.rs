//! The results frame: all finished runs' evaluation points as one Polars DataFrame, written as
//! `runs.parquet` (rebuilt from the run folders each time, never appended), and the reader
//! that turns a frame (our Parquet, or anyone's CSV/Parquet) into fit observations, so `fit`
//! reads its own output exactly the way it reads published data.

use super::{RunDir, SweepDir};
use crate::fit::Obs;
use crate::spec::config::RunConfig;
use crate::{flops, UserError};
use anyhow::Result;
use polars::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// One row per (finished run, evaluation point).
pub fn build(runs: &[(RunDir, RunConfig)]) -> Result<DataFrame> {
    let mut s: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut i: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    let mut f: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut b: Vec<bool> = Vec::new();
    let domains: Vec<String> =
        runs.first().map(|(_, c)| c.domains.iter().map(|d| d.name.clone()).collect()).unwrap_or_default();
    // WSD decay branches link to their trunk (the family's longest run): `branch_of` is its run
    // id and `branch_from` the step the branch left it (empty / -1 for other runs).
    let trunks: std::collections::HashMap<&str, String> = runs
        .iter()
        .filter_map(|(_, c)| c.branch.as_ref().filter(|b| b.from.is_none()).map(|b| (b.family.as_str(), c.run_id())))
        .collect();
    for (dir, cfg) in runs {
        let evals = dir.read_evals()?;
        let from = cfg.branch.as_ref().and_then(|b| b.from);
        let trunk = match (&cfg.branch, from) {
            (Some(b), Some(_)) => trunks.get(b.family.as_str()).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        let last_step = evals.iter().map(|e| e.step).max().unwrap_or(0);
        let params = flops::params(cfg.width, cfg.depth, cfg.vocab) as f64;
        let realised = dir.read_summary().map(|s| s.domain_tokens).unwrap_or_default();
        let total = flops::params_total(cfg.width, cfg.depth, cfg.seq_len, cfg.vocab) as f64;
        for e in &evals {
            s.entry("run_id").or_default().push(dir.id.clone());
            s.entry("sweep").or_default().push(cfg.sweep.clone());
            s.entry("parametrization").or_default().push(param_name(cfg).into());
            s.entry("branch_of").or_default().push(trunk.clone());
            i.entry("branch_from").or_default().push(from.map_or(-1, |f| f as i64));
            for (k, v) in [
                ("width", cfg.width),
                ("depth", cfg.depth),
                ("heads", cfg.heads),
                ("seq_len", cfg.seq_len),
                ("batch_size", cfg.batch_size),
            ] {
                i.entry(k).or_default().push(v as i64);
            }
            i.entry("step").or_default().push(e.step as i64);
            i.entry("run_tokens").or_default().push(cfg.tokens as i64);
            let mut put = |k: &str, v: f64| f.entry(k.to_string()).or_default().push(v);
            put("lr", cfg.lr);
            put("params", params);
            put("params_total", total);
            put("tokens", e.tokens as f64);
            put("flops", e.flops);
            put("loss", e.loss);
            put("bpb", e.bpb.unwrap_or(f64::NAN));
            for d in &domains {
                let v = e.domain_loss.iter().find(|(n, _)| n == d).map_or(f64::NAN, |x| x.1);
                put(&format!("loss_{d}"), v);
                let v = e.domain_bpb.iter().find(|(n, _)| n == d).map_or(f64::NAN, |x| x.1);
                put(&format!("bpb_{d}"), v);
                put(&format!("mix_{d}"), cfg.mix.get(d).copied().unwrap_or(0.0));
                // Realised training tokens of the domain over the whole run (NaN if unrecorded).
                let v = realised.iter().find(|(n, _)| n == d).map_or(f64::NAN, |x| x.1 as f64);
                put(&format!("trained_tokens_{d}"), v);
            }
            b.push(e.step == last_step);
        }
    }
    let height = b.len();
    let mut cols: Vec<Column> = Vec::new();
    for (k, v) in s {
        cols.push(Column::new(k.into(), v));
    }
    for (k, v) in i {
        cols.push(Column::new(k.into(), v));
    }
    for (k, v) in f {
        cols.push(Column::new(k.as_str().into(), v));
    }
    cols.push(Column::new("is_final".into(), b));
    Ok(DataFrame::new(height, cols)?)
}

fn param_name(cfg: &RunConfig) -> &'static str {
    match cfg.parametrization {
        crate::spec::config::Parametrization::Mup { .. } => "mup",
        crate::spec::config::Parametrization::Sp { .. } => "sp",
    }
}

/// Rebuilds `runs.parquet` from every finished run folder (atomically).
pub fn write_parquet(dir: &SweepDir, runs: &[(RunDir, RunConfig)]) -> Result<DataFrame> {
    let mut df = build(runs)?;
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes).finish(&mut df)?;
    super::write_atomic(&dir.runs_parquet(), &bytes)?;
    Ok(df)
}

/// Reads a CSV or Parquet results file.
pub fn read_frame(path: &Path) -> Result<DataFrame> {
    if !path.exists() {
        return Err(UserError(format!("{}: no such file", path.display())).into());
    }
    let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
    let df = if ext == "parquet" {
        let file = std::fs::File::open(path)?;
        ParquetReader::new(file).finish()
    } else {
        CsvReadOptions::default()
            .with_has_header(true)
            .try_into_reader_with_file_path(Some(path.to_path_buf()))?
            .finish()
    };
    df.map_err(|e| {
        UserError(format!(
            "{}: cannot read as {}: {e}",
            path.display(),
            if ext == "parquet" { "Parquet" } else { "CSV" }
        ))
        .into()
    })
}

fn col_f64(df: &DataFrame, names: &[&str]) -> Result<Option<Vec<f64>>> {
    for n in names {
        if let Ok(c) = df.column(n) {
            let c = c.cast(&DataType::Float64)?;
            return Ok(Some(c.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect()));
        }
    }
    Ok(None)
}

/// Turns a frame into fit observations. Needs `params`, `loss`, and `tokens` or `flops`
/// (then D = C / 6N, as Epoch AI did for Chinchilla). Optional: `run_id`, `step`/`is_final`
/// (otherwise every row is its own finished run), `lr`, `batch_size`. The Chinchilla table's
/// own headers (`Model Size`, `Training FLOP`) are accepted as aliases.
pub fn to_obs(df: &DataFrame, origin: &str) -> Result<Vec<Obs>> {
    let have: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    let missing =
        |what: &str| UserError(format!("{origin}: missing column {what} (columns present: {})", have.join(", ")));
    let params = col_f64(df, &["params", "Model Size"])?.ok_or_else(|| missing("`params`"))?;
    let loss = col_f64(df, &["loss"])?.ok_or_else(|| missing("`loss`"))?;
    let flops_c = col_f64(df, &["flops", "Training FLOP"])?;
    let tokens = match col_f64(df, &["tokens"])? {
        Some(t) => t,
        None => {
            let c = flops_c.clone().ok_or_else(|| missing("`tokens` or `flops`"))?;
            c.iter().zip(&params).map(|(c, n)| c / (6.0 * n)).collect()
        }
    };
    let flops_v = flops_c.unwrap_or_else(|| params.iter().zip(&tokens).map(|(n, d)| 6.0 * n * d).collect());
    let lr = col_f64(df, &["lr"])?;
    let batch = col_f64(df, &["batch_size", "batch"])?;
    let run: Vec<String> = match df.column("run_id") {
        Ok(c) => c.cast(&DataType::String)?.str()?.iter().map(|v| v.unwrap_or("").to_string()).collect(),
        Err(_) => (0..df.height()).map(|i| format!("row{i}")).collect(),
    };
    let is_final: Vec<bool> = match df.column("is_final") {
        Ok(c) => c.bool()?.iter().map(|v| v.unwrap_or(false)).collect(),
        Err(_) => vec![true; df.height()],
    };
    Ok((0..df.height())
        .map(|k| Obs {
            run: run[k].clone(),
            params: params[k],
            tokens: tokens[k],
            flops: flops_v[k],
            loss: loss[k],
            lr: lr.as_ref().map(|v| v[k]),
            batch: batch.as_ref().map(|v| v[k]),
            is_final: is_final[k],
        })
        .collect())
}
