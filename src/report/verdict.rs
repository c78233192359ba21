//! The headline when the fit does not determine the target: says so in
//! words instead of recommending a shape, gives what is determined (or says that is not
//! either), and names runs, as width / depth / tokens, that would narrow it: searched by their
//! linearised effect, or a fixed IsoFLOP profile as the fallback, never promised to determine
//! it (the text says which, and points to `design --continue`, which also simulates).
//! The judgement itself is fit.json's `verdict` (`crate::fit::verdict`); this only renders it.

use super::chart::si;
use super::doc::{Block, Doc};
use super::facts::Facts;
use super::headline::{best_largest, target_shape, Headline, Shape};
use super::{iv, tpp};
use crate::fit::Verdict;

/// The predicted-loss row of the headline table: the value, or "not determined" with the
/// fit's number as context only (never as the result) and the reasons.
pub(super) fn loss_row(f: &Facts, h: &Headline) -> Vec<String> {
    let t = &h.target;
    let band = iv(h.loss_iv, crate::human::loss);
    match f.verdict.as_ref().filter(|v| !v.loss_determined) {
        None => vec![
            "**predicted loss** (nats/token)".into(),
            format!("**{:.4}** ({:.4} bits/byte)", t.loss, t.loss / std::f64::consts::LN_2),
            format!("95% prediction interval {band} (bootstrap, run noise, widened by the rollout backtest)"),
        ],
        Some(_) => vec![
            "**loss at the target** (nats/token)".into(),
            "**not determined**".into(),
            format!("the fit's value {:.4} (95% prediction interval {band}) is not a result: see below", t.loss),
        ],
    }
}

/// The whole headline of an undetermined split.
pub(super) fn undetermined(d: &mut Doc, f: &Facts, h: &Headline, v: &Verdict) {
    let t = &h.target;
    // The short block first (verdict, the one action), the numbers, then the reasons.
    let loss = if v.loss_determined { "; the loss at the target is (below)" } else { ", nor the loss there" };
    let action = if v.suggest.is_empty() {
        "widen the grid towards the target (`windtunnel design --continue DIR`)".to_string()
    } else {
        format!(
            "train the {} runs listed below and rerun; `windtunnel design --continue DIR` simulates them first",
            v.suggest.len()
        )
    };
    d.p(format!(
        "**Verdict: not determined.** This sweep does not pin down the compute-optimal split of {:.3e} FLOPs{}{loss}, \
         so no model shape is recommended. **Next:** {action}.",
        t.flops,
        f.extrapolation().map_or(String::new(), |x| format!(" ({x:.0}x its largest run)")),
    ));
    let not = |x: String, i: Option<crate::fit::Interval>, fmt: fn(f64) -> String| {
        let note = format!("the fit's value {}, 95% bootstrap {}", fmt(t_val(&x, t)), iv(i, fmt));
        vec![x, "not determined".into(), note]
    };
    let rows = vec![
        vec![
            "target compute C = 6ND".into(),
            format!("{:.3e} FLOPs", t.flops),
            f.extrapolation().map_or(String::new(), |x| format!("{x:.0}x the largest run")),
        ],
        not("parameters N (non-embedding)".into(), h.n_iv, si),
        not("tokens D".into(), h.d_iv, si),
        not("tokens per parameter".into(), h.tpp_iv, tpp),
        loss_row(f, h),
    ];
    d.blocks.push(Block::Table {
        head: vec!["quantity".into(), "value".into(), "95% interval / note".into()],
        rows,
        class: Some("headline"),
    });
    d.p(format!("**Why the split is not determined:** {}.", v.reasons.join("; ")));
    if v.loss_determined {
        d.p(format!(
            "**What is determined:** the loss at the target compute, **{:.4}** nats/token (95% prediction interval {}), \
             whichever split is used near the optimum: the frontier's loss is pinned down even where its N/D split \
             is not.",
            t.loss,
            iv(h.loss_iv, crate::human::loss)
        ));
    } else {
        d.p(format!("**The loss at the target compute is not determined either:** {}.", v.loss_reasons.join("; ")));
    }
    suggestions(d, f, v);
}

/// When the split is determined but the loss is not.
pub(super) fn loss_undetermined(d: &mut Doc, f: &Facts, v: &Verdict) {
    d.p(format!("**The loss at the target is not determined by this sweep:** {}.", v.loss_reasons.join("; ")));
    suggestions(d, f, v);
}

fn t_val(row: &str, t: &crate::fit::TargetPoint) -> f64 {
    match row {
        r if r.starts_with("parameters") => t.n_opt,
        r if r.starts_with("tokens D") => t.d_opt,
        _ => t.tokens_per_param,
    }
}

/// The suggested runs as shapes of the sweep's own family (the headline's shape rule applied
/// to each suggested N), with D re-solved so each keeps its compute.
fn suggestions(d: &mut Doc, f: &Facts, v: &Verdict) {
    let (Some(reference), Some(cfg)) = (best_largest(&f.runs), f.sweep.runs.first()) else { return };
    if v.suggest.is_empty() {
        return;
    }
    let per_step = (cfg.batch_size * cfg.seq_len) as f64;
    let mut rows = Vec::new();
    let mut listed: Vec<(usize, usize, u64)> = Vec::new();
    let mut total = 0.0;
    for s in &v.suggest {
        // A suggestion at one of the sweep's own sizes keeps that size's shape; a new size
        // takes the headline's shape rule.
        let own = f.runs.iter().find(|r| (r.params / s.params - 1.0).abs() < 1e-6).map(|r| Shape {
            width: r.width as usize,
            depth: r.depth as usize,
            heads: r.heads as usize,
            head_dim: (r.width / r.heads.max(1)) as usize,
            params: r.params,
            rule: String::new(),
        });
        let Some(shape) = own.or_else(|| target_shape(s.params, reference, cfg.vocab)) else { continue };
        // A suggested WSD family keeps its token counts (the sweep's own, which its branches
        // share with the trunk); a single run keeps its compute.
        let tokens = if s.trained_flops.is_some() {
            s.tokens
        } else {
            ((crate::flops::chinchilla_tokens(s.flops, shape.params)) / per_step).ceil().max(1.0) * per_step
        };
        let c = crate::flops::chinchilla_flops(shape.params, tokens);
        // Two suggested sizes can take the same shape under the rule: that run is listed, and
        // costed, once.
        let key = (shape.width, shape.depth, tokens.to_bits());
        if listed.contains(&key) {
            continue;
        }
        listed.push(key);
        // A branch of a suggested WSD family trains only its decay.
        total += c * s.trained_flops.map_or(1.0, |t| t / s.flops);
        rows.push(vec![
            shape.width.to_string(),
            shape.depth.to_string(),
            shape.heads.to_string(),
            si(shape.params),
            si(tokens),
            format!("{:.1}", tokens / shape.params),
            format!("{c:.2e} ({:.1}x)", c / f.max_c6),
            s.why.clone(),
        ]);
    }
    let x = total / f.max_c6;
    d.p(if v.determined {
        // Only the loss is undetermined: one run on the fitted frontier measures it.
        format!(
            "**A run that would measure it** (add it to the sweep, same recipe: learning rate, schedule, μP base \
             width and sequence length; {x:.1}x the largest run's compute): on the fitted frontier at a larger budget, \
             so the law's loss there is measured instead of extrapolated."
        )
    } else {
        let searched = v.suggest.iter().any(|s| s.why.starts_with("searched"));
        let families = v.suggest.iter().any(|s| s.trained_flops.is_some());
        format!(
            "**Runs that would narrow it** (add them to the sweep, same recipe: learning rate, schedule, μP base \
             width and sequence length; {x:.1}x the largest run's compute in all). {} `windtunnel design --continue \
             DIR` also simulates a proposal's effect before you train it (for grids over width and depth, and tokens \
             per parameter or tokens):",
            if families {
                "Searched one WSD family of a new size at a time (a run at a trained size would retrain its family; \
                 a family's branches train only their decay) for the largest linearised drop of N_opt's interval \
                 per FLOP under the fit's bootstrap laws: a ranking, not a promise that they determine the split."
            } else if searched {
                "Searched one run at a time for the largest linearised drop of N_opt's interval per FLOP under the \
                 fit's bootstrap laws: a ranking, not a promise that they determine the split."
            } else {
                "A fixed recipe, not a search and not a promise: an IsoFLOP profile at 4x the largest run's compute \
                 brackets the optimum at a larger budget, but need not bring the intervals under 10x."
            }
        )
    });
    d.table(&["width", "depth", "heads", "N", "tokens D", "tokens per parameter", "C = 6ND (x largest)", "why"], rows);
}
