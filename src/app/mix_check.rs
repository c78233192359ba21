//! `windtunnel mix-check DIR`: the held-out test of a data-mixture recommendation. After a
//! sweep's `data_mixing` fit, trains one larger model (by default twice the width of the
//! sweep's largest-compute run, same depth, same tokens per parameter and settings) on each of
//! the recommended mixture, RegMix's choice, the uniform mixture and every single-domain
//! mixture, then compares the objective they actually reach with what the law predicted.
//! The runs live in their own results folder (`<sweep>-mixcheck`), so they never enter the
//! sweep's own fits; the outcome goes to `DIR/mix_check.json` and the sweep's report.

use crate::fit::mixing::{self, MixingFit};
use crate::spec::config::{RunConfig, Sweep};
use crate::store::mix_check::{CheckRow, MixCheck};
use crate::store::{self, SweepDir};
use crate::{flops, UserError};
use anyhow::Result;
use std::path::Path;

pub struct Options {
    pub width: Option<usize>,
    pub depth: Option<usize>,
    pub jobs: usize,
}

pub fn run(dir: &Path, opts: &Options) -> Result<MixCheck> {
    let sweep = super::sweep::sweep_of_dir(dir)?;
    let m: MixingFit = super::fit::mixing_of_dir(dir)?;
    let run_flops = |r: &RunConfig| flops::flops_per_token(r.width, r.depth, r.seq_len, r.vocab) * r.tokens as f64;
    let template =
        sweep.runs.iter().max_by(|a, b| run_flops(a).total_cmp(&run_flops(b))).expect("a sweep has runs").clone();
    let head_dim = template.width / template.heads;
    let width = opts.width.unwrap_or(template.width * 2);
    let depth = opts.depth.unwrap_or(template.depth);
    if width == 0 || depth == 0 || width % head_dim != 0 {
        return Err(UserError(format!(
            "--width must be a positive multiple of the head width {head_dim}, --depth positive"
        ))
        .into());
    }
    let mut mixes: Vec<(String, Vec<f64>)> = vec![("recommended (mixing law)".into(), m.recommended.mix.clone())];
    if let Some(r) = &m.regmix {
        mixes.push(("RegMix".into(), r.mix.clone()));
    }
    for b in &m.baselines {
        mixes.push((b.label.clone(), b.mix.clone()));
    }
    // A baseline equal to an earlier mixture is the same run: keep the first label.
    let mut unique: Vec<(String, Vec<f64>)> = Vec::new();
    for (l, x) in mixes {
        match unique.iter_mut().find(|(_, y)| y.iter().zip(&x).all(|(a, b)| (a - b).abs() < 1e-9)) {
            Some(u) => u.0 = format!("{} = {l}", u.0),
            None => unique.push((l, x)),
        }
    }
    let n_old = flops::params(template.width, template.depth, template.vocab) as f64;
    let n_new = flops::params(width, depth, template.vocab) as f64;
    let per_step = (template.batch_size * template.seq_len) as u64;
    let steps = ((template.tokens as f64 / n_old * n_new / per_step as f64).ceil() as u64).max(1);
    let name = format!("{}-mixcheck", sweep.name);
    let runs: Vec<RunConfig> = unique
        .iter()
        .map(|(_, mix)| {
            let mut r = template.clone();
            r.sweep = name.clone();
            (r.width, r.depth, r.heads) = (width, depth, width / head_dim);
            (r.steps, r.tokens, r.eval_every, r.branch) = (steps, steps * per_step, (steps / 8).max(1), None);
            r.mix = m.domains.iter().cloned().zip(mix.iter().copied()).collect();
            r
        })
        .collect();
    let check_sweep = Sweep { name: name.clone(), runs: runs.clone(), ..sweep.clone() };
    // The runs live beside the sweep's folder; `mix-check .` has an empty parent, so resolve
    // the folder first (else they would land inside it).
    let abs = std::path::absolute(dir).map_err(|e| anyhow::anyhow!("resolving {}: {e}", dir.display()))?;
    let root = abs.parent().unwrap_or(Path::new("/")).to_path_buf();
    let ro = crate::runner::RunOptions {
        results: root.clone(),
        jobs: opts.jobs,
        shard: None,
        max_hours: None,
        worker_exe: None,
        devices: Vec::new(),
    };
    let rep = crate::runner::run(&check_sweep, &ro)?;
    if rep.interrupted || !rep.failed.is_empty() {
        anyhow::bail!("mix-check runs did not all finish (failed: {:?}); run mix-check again to resume", rep.failed);
    }
    let cdir = SweepDir::new(&root, &name);
    let mut rows = Vec::new();
    for ((label, mix), r) in unique.iter().zip(&runs) {
        let rd = cdir.run(&r.run_id());
        let last =
            rd.read_evals()?.into_iter().last().ok_or_else(|| anyhow::anyhow!("run {} has no evaluation", rd.id))?;
        let losses: Vec<f64> =
            m.domains.iter().map(|d| last.domain_loss.iter().find(|(n, _)| n == d).map_or(f64::NAN, |x| x.1)).collect();
        let actual = losses.iter().zip(&m.objective_weights).map(|(l, w)| l * w).sum();
        let predicted = mixing::objective(&m.laws, &m.objective_weights, mix, run_flops(r), m.c_ref);
        rows.push(CheckRow {
            label: label.clone(),
            mix: mix.clone(),
            run_id: rd.id.clone(),
            predicted,
            actual,
            losses,
            rank: 0,
        });
    }
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| rows[a].actual.total_cmp(&rows[b].actual));
    for (rank, &i) in order.iter().enumerate() {
        rows[i].rank = rank + 1;
    }
    let rec = &rows[0];
    let others: Vec<&CheckRow> = rows
        .iter()
        .filter(|r| r.label.contains("uniform") || r.label.contains("only "))
        .filter(|r| r.run_id != rec.run_id)
        .collect();
    let wins = others.iter().all(|o| rec.actual < o.actual);
    let best_other = others.iter().map(|o| o.actual).fold(f64::INFINITY, f64::min);
    let verdict = if wins {
        format!(
            "The recommended mixture ranks {} of {} and beats the uniform and every single-domain mixture (by {:.4} \
             nats over the best of them).",
            rec.rank,
            rows.len(),
            best_other - rec.actual
        )
    } else {
        format!(
            "The recommended mixture ranks {} of {}: it does NOT beat every baseline (best baseline {:.4} vs {:.4}); \
             treat the recommendation with caution.",
            rec.rank,
            rows.len(),
            best_other,
            rec.actual
        )
    };
    let check = MixCheck {
        width,
        depth,
        params: n_new,
        tokens: runs[0].tokens as f64,
        flops: run_flops(&runs[0]),
        sweep_max_flops: run_flops(&template),
        rows,
        verdict,
        recommended_wins: wins,
    };
    store::write_json_atomic(&SweepDir::at(dir).mix_check_json(), &check)?;
    super::report::report_dir(dir, &crate::report::ReportOptions::default())?;
    Ok(check)
}
