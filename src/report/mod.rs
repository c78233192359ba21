//! The report: what to train and how far to trust it. Reads only files (fit.json, the results
//! frame, the sweep copy), so `windtunnel report DIR` works on any finished sweep folder, also
//! one copied from a cluster. Markdown for now; HTML and SVG plots are issue 7.

use crate::data;
use crate::runner::plan::si;
use crate::spec::config::Sweep;
use crate::store::SweepDir;
use anyhow::Result;
use polars::prelude::*;
use serde_json::Value;
use std::fmt::Write;

/// One finished run as the report lists it.
#[derive(Clone, Debug)]
pub struct RunRow {
    pub run_id: String,
    pub width: i64,
    pub depth: i64,
    pub lr: f64,
    pub params: f64,
    pub tokens: f64,
    pub flops: f64,
    pub loss: f64,
}

/// The final evaluation of every run in a results frame.
pub fn final_rows(df: &DataFrame) -> Result<Vec<RunRow>> {
    let fin = df.column("is_final")?.bool()?.clone();
    let df = df.filter(&fin)?;
    let s = |n: &str| -> Result<Vec<f64>> {
        Ok(df.column(n)?.cast(&DataType::Float64)?.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    };
    let ids: Vec<String> = df.column("run_id")?.str()?.iter().map(|v| v.unwrap_or("").to_string()).collect();
    let (w, d, lr, n, t, c, l) =
        (s("width")?, s("depth")?, s("lr")?, s("params")?, s("tokens")?, s("flops")?, s("loss")?);
    let mut rows: Vec<RunRow> = (0..ids.len())
        .map(|k| RunRow {
            run_id: ids[k].clone(),
            width: w[k] as i64,
            depth: d[k] as i64,
            lr: lr[k],
            params: n[k],
            tokens: t[k],
            flops: c[k],
            loss: l[k],
        })
        .collect();
    rows.sort_by(|a, b| a.flops.total_cmp(&b.flops));
    Ok(rows)
}

fn num(v: &Value, path: &[&str]) -> Option<f64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_f64()
}

fn interval(fit: &Value, key: &str) -> String {
    let lo = num(fit, &["intervals", key, "lo"]);
    let hi = num(fit, &["intervals", key, "hi"]);
    match (lo, hi) {
        (Some(lo), Some(hi)) => format!("[{}, {}]", g(lo), g(hi)),
        _ => "n/a".into(),
    }
}

/// Compact general-purpose number format.
pub fn g(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if (1e-3..1e5).contains(&a) {
        format!("{:.4}", x).trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{x:.3e}")
    }
}

/// Writes report.md for a sweep folder and returns its text.
pub fn write_markdown(
    dir: &SweepDir,
    sweep: &Sweep,
    fit: &Value,
    df: &DataFrame,
    excluded: &[String],
) -> Result<String> {
    let rows = final_rows(df)?;
    let mut md = String::new();
    let w = &mut md;
    writeln!(w, "# windtunnel report: `{}`\n", sweep.name)?;
    let max_c = rows.iter().map(|r| r.flops).fold(0.0, f64::max);
    let sizes: std::collections::BTreeSet<i64> = rows.iter().map(|r| r.params as i64).collect();
    writeln!(
        w,
        "Sweep file `{}`: {} runs finished, {} distinct model sizes (N {} to {}), largest run {:.3e} FLOPs.\n",
        sweep.path,
        rows.len(),
        sizes.len(),
        si(rows.iter().map(|r| r.params).fold(f64::INFINITY, f64::min)),
        si(rows.iter().map(|r| r.params).fold(0.0, f64::max)),
        max_c
    )?;

    writeln!(w, "## Target prediction\n")?;
    let tf = num(fit, &["target", "flops"]).unwrap_or(f64::NAN);
    writeln!(w, "| quantity | estimate | 95% interval |\n|---|---|---|")?;
    writeln!(w, "| target compute C (FLOPs, C = 6ND) | {:.3e} | |", tf)?;
    writeln!(w, "| extrapolation factor (C / largest run) | {:.0}x | |", tf / max_c)?;
    writeln!(
        w,
        "| compute-optimal parameters N_opt | {} | {} |",
        si(num(fit, &["target", "n_opt"]).unwrap_or(f64::NAN)),
        interval(fit, "n_opt")
    )?;
    writeln!(
        w,
        "| compute-optimal tokens D_opt | {} | {} |",
        si(num(fit, &["target", "d_opt"]).unwrap_or(f64::NAN)),
        interval(fit, "d_opt")
    )?;
    if let (Some(n), Some(d)) = (num(fit, &["target", "n_opt"]), num(fit, &["target", "d_opt"])) {
        writeln!(w, "| tokens per parameter | {:.1} | {} |", d / n, interval(fit, "tokens_per_param"))?;
    }
    writeln!(
        w,
        "| predicted loss (nats/token) | {} | {} |",
        g(num(fit, &["target", "loss"]).unwrap_or(f64::NAN)),
        interval(fit, "loss")
    )?;
    if let Some(l) = num(fit, &["target", "loss"]) {
        writeln!(w, "| predicted bits per byte | {} | |", g(l / std::f64::consts::LN_2))?;
    }

    writeln!(w, "\n## Fitted law (Chinchilla approach 3)\n")?;
    writeln!(w, "L(N, D) = E + A / N^alpha + B / D^beta, fitted as Hoffmann et al. do: Huber loss (delta = 1e-3) on log loss, log-sum-exp form, L-BFGS from a grid of starts. N counts non-embedding parameters including the output head; training FLOPs per token are 6N + 12 * depth * seq_len * width (see `src/flops.rs`).\n")?;
    writeln!(w, "| parameter | estimate | 95% bootstrap interval |\n|---|---|---|")?;
    for k in ["E", "A", "B", "alpha", "beta"] {
        writeln!(w, "| {k} | {} | {} |", g(num(fit, &["params", k]).unwrap_or(f64::NAN)), interval(fit, k))?;
    }
    writeln!(
        w,
        "\nObjective {} on {} runs.",
        g(num(fit, &["objective"]).unwrap_or(f64::NAN)),
        num(fit, &["n_points"]).unwrap_or(0.0)
    )?;
    let floors: Vec<String> = sweep
        .runs
        .first()
        .map(|r| {
            r.domains
                .iter()
                .filter_map(|d| data::entropy_floor(&d.kind).map(|f| format!("{} {:.4}", d.name, f)))
                .collect()
        })
        .unwrap_or_default();
    if !floors.is_empty() {
        writeln!(w, "Known entropy floor of the built-in domains (nats/byte): {}; the fitted E should not be below the mixture's floor.", floors.join(", "))?;
    }

    writeln!(w, "\n## Trust\n")?;
    match fit.get("backtest") {
        Some(bt) if !bt.is_null() => {
            let are = num(bt, &["are"]).unwrap_or(f64::NAN);
            writeln!(w, "Backtest ({}): refit without the held-out run(s) and predict them. **Mean absolute relative error: {:.2}%**.\n",
                bt.get("protocol").and_then(|p| p.as_str()).unwrap_or("hold out the largest-compute run"), are * 100.0)?;
            if let Some(pts) = bt.get("points").and_then(|p| p.as_array()) {
                writeln!(w, "| held-out run | N | D | actual | predicted | error |\n|---|---|---|---|---|---|")?;
                for p in pts {
                    writeln!(
                        w,
                        "| {} | {} | {} | {} | {} | {:+.2}% |",
                        p.get("run").and_then(|v| v.as_str()).unwrap_or(""),
                        si(num(p, &["params"]).unwrap_or(0.0)),
                        si(num(p, &["tokens"]).unwrap_or(0.0)),
                        g(num(p, &["actual"]).unwrap_or(f64::NAN)),
                        g(num(p, &["predicted"]).unwrap_or(f64::NAN)),
                        num(p, &["rel_err"]).unwrap_or(f64::NAN) * 100.0
                    )?;
                }
            }
        }
        _ => writeln!(w, "No backtest was run.")?,
    }
    let mut warns: Vec<String> = fit
        .get("warnings")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
        .unwrap_or_default();
    if sizes.len() < 5 {
        warns.push(format!(
            "only {} distinct model sizes; at least 5 are recommended (Choshen et al. 2024)",
            sizes.len()
        ));
    }
    for id in excluded {
        warns.push(format!("run {id} diverged and is excluded from the fit"));
    }
    if !warns.is_empty() {
        writeln!(w, "\nWarnings:\n")?;
        for x in &warns {
            writeln!(w, "- {x}")?;
        }
    }

    writeln!(w, "\n## Runs\n")?;
    writeln!(w, "| run id | width | depth | lr | N | D | FLOPs | final loss | predicted | residual |\n|---|---|---|---|---|---|---|---|---|---|")?;
    for r in &rows {
        let pred = predict(fit, r.params, r.tokens);
        writeln!(
            w,
            "| {} | {} | {} | {:.2e} | {} | {} | {:.2e} | {:.4} | {:.4} | {:+.2}% |",
            r.run_id,
            r.width,
            r.depth,
            r.lr,
            si(r.params),
            si(r.tokens),
            r.flops,
            r.loss,
            pred,
            (r.loss / pred - 1.0) * 100.0
        )?;
    }
    writeln!(
        w,
        "\n---\nwindtunnel {} | backend {} | sweep file hash {} | generated at unix time {}",
        env!("CARGO_PKG_VERSION"),
        sweep.backend,
        sweep_hash(dir),
        crate::store::now_unix()
    )?;
    crate::store::write_atomic(&dir.report_md(), md.as_bytes())?;
    Ok(md)
}

/// The fitted law's prediction at (N, D), from fit.json.
pub fn predict(fit: &Value, n: f64, d: f64) -> f64 {
    let p = |k| num(fit, &["params", k]).unwrap_or(f64::NAN);
    p("E") + p("A") / n.powf(p("alpha")) + p("B") / d.powf(p("beta"))
}

/// blake3 of the sweep file copy in the folder (provenance: which spec produced this report).
fn sweep_hash(dir: &SweepDir) -> String {
    std::fs::read(dir.sweep_toml())
        .map(|b| blake3::hash(&b).to_hex()[..16].to_string())
        .unwrap_or_else(|_| "unknown".into())
}
