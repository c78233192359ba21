//! What the report says, section by section, as a `Doc` (rendered to Markdown and HTML).

use super::chart::si;
use super::doc::{Block, Doc, Figure};
use super::facts::Facts;
use super::{g, iv, tpp};
use serde_json::Value;

/// GPU-hours, with a readable duration when under an hour.
fn hours(h: f64) -> String {
    match h * 3600.0 {
        s if !s.is_finite() => format!("{h}"),
        s if s < 60.0 => format!("{} ({s:.1} s)", g(h)),
        s if s < 3600.0 => format!("{} ({:.1} min)", g(h), s / 60.0),
        _ => format!("{h:.1}"),
    }
}

pub fn build(f: &Facts, figures: Vec<Figure>) -> Doc {
    let mut d = Doc::new(format!("windtunnel report: `{}`", f.sweep.name));
    let (n_lo, n_hi) = super::chart::bounds(f.runs.iter().map(|r| r.params)).unwrap_or((f64::NAN, f64::NAN));
    d.p(format!(
        "Sweep file `{}`: {} runs finished, {} distinct model sizes (N {} to {}), largest run C = 6ND = {:.3e} FLOPs.",
        f.sweep.path,
        f.runs.len(),
        f.sizes,
        si(n_lo),
        si(n_hi),
        f.max_c6
    ));
    headline(&mut d, f);
    trust(&mut d, f);
    lr_transfer(&mut d, f);
    data_mixture(&mut d, f);
    super::calibration::section(&mut d, f);
    d.h2("Plots");
    for fig in figures {
        d.blocks.push(Block::Figure(fig));
    }
    law(&mut d, f);
    runs(&mut d, f);
    d.blocks.push(Block::Footer(f.provenance.clone()));
    d
}

fn headline(d: &mut Doc, f: &Facts) {
    if let (Some(h), Some(v)) = (&f.headline, f.verdict.as_ref().filter(|v| !v.determined)) {
        d.h2("Target run: not determined by this sweep");
        super::verdict::undetermined(d, f, h, v);
        return;
    }
    d.h2("Recommended target run");
    let Some(h) = &f.headline else {
        d.p("No target: the sweep has no `[target]` (give `flops` or `params`), so nothing is extrapolated.");
        return;
    };
    let t = &h.target;
    let mut rows: Vec<Vec<String>> = vec![
        vec!["target compute C = 6ND".into(), format!("{:.3e} FLOPs", t.flops), String::new()],
        vec!["parameters N (non-embedding)".into(), si(t.n_opt), iv(h.n_iv, si)],
        vec!["tokens D".into(), si(t.d_opt), iv(h.d_iv, si)],
        vec!["tokens per parameter".into(), tpp(t.tokens_per_param), iv(h.tpp_iv, tpp)],
    ];
    match &h.shape {
        Some(s) => rows.push(vec![
            "shape (width / depth / heads)".into(),
            format!("{} / {} / {} (head_dim {})", s.width, s.depth, s.heads, s.head_dim),
            format!("N of this shape {}", si(s.params)),
        ]),
        None => rows.push(vec!["shape".into(), "n/a".into(), "no finite N_opt or no reference run".into()]),
    }
    rows.extend([
        vec!["sequence length".into(), h.seq_len.to_string(), "the sweep's".into()],
        vec!["learning rate".into(), g(h.lr), h.lr_source.clone()],
        vec![
            "batch size".into(),
            format!("{} sequences ({} tokens)", h.batch, h.batch * h.seq_len),
            h.batch_source.clone(),
        ],
        vec!["data mixture".into(), h.mix.clone(), "the sweep's".into()],
        super::verdict::loss_row(f, h),
        vec![
            "training FLOPs".into(),
            format!("{:.3e}", h.flops_full),
            "this shape on D tokens, attention counted (`src/flops.rs`)".into(),
        ],
        vec![
            "estimated GPU-hours".into(),
            hours(h.gpu_hours),
            format!("{} at {:.0} TFLOP/s peak, {:.0}% MFU", h.opts.accelerator, h.opts.peak_tflops, h.opts.mfu * 100.0),
        ],
    ]);
    d.blocks.push(Block::Table {
        head: vec!["quantity".into(), "value".into(), "95% interval / note".into()],
        rows,
        class: Some("headline"),
    });
    if let Some(lb) = f.mix_floor_lb.filter(|lb| t.loss < *lb) {
        d.p(format!(
            "**Not achievable as predicted:** the predicted loss {:.4} is below {lb:.4} nats/token, a lower \
             bound on the entropy of the sweep's data mixture (its Markov part alone), which no model can beat. The \
             fitted asymptote E = {} is not physical; see Trust before using these numbers.",
            t.loss,
            f.fit.params.map_or("n/a".into(), |p| g(p.e))
        ));
    }
    if let Some(s) = &h.shape {
        d.p(format!("Shape rule: {}.", s.rule));
    }
    if let Some(v) = f.verdict.as_ref().filter(|v| !v.loss_determined) {
        super::verdict::loss_undetermined(d, f, v);
    }
    d.p(format!(
        "N and D are the fitted law's compute-optimal split of C (C = 6ND); the predicted loss is L(N_opt, D_opt). \
         Extrapolation: {} the largest run's compute.",
        f.extrapolation().map_or("n/a".into(), |x| format!("**{x:.0}x**"))
    ));
}

fn trust(d: &mut Doc, f: &Facts) {
    d.h2("Trust");
    let mut rows: Vec<Vec<String>> = Vec::new();
    match &f.fit.backtest {
        Some(bt) => rows.push(vec!["Backtest ARE".into(), format!("**{:.2}%**", bt.are * 100.0), bt.protocol.clone()]),
        None => rows.push(vec!["Backtest".into(), "not run".into(), String::new()]),
    }
    rows.push(vec![
        "extrapolation factor".into(),
        f.extrapolation().map_or("n/a".into(), |x| format!("{x:.0}x")),
        "target C / largest run's 6ND".into(),
    ]);
    rows.push(vec!["distinct model sizes".into(), f.sizes.to_string(), "5 or more recommended".into()]);
    rows.push(vec![
        "bootstrap".into(),
        format!("{} of {} refits converged", f.fit.bootstrap_ok, f.fit.bootstrap_resamples),
        "95% percentile intervals".into(),
    ]);
    let floor = match f.mix_floor {
        Some(fl) => format!(
            "mixture entropy floor {fl:.4} nats/byte (an upper bound where a grammar is mixed in){}",
            f.mix_floor_lb.map_or(String::new(), |lb| format!("; at least {lb:.4}"))
        ),
        None if !f.floors.is_empty() => "floors known per domain only (see the law section)".into(),
        None => "no known floor (not built-in data)".into(),
    };
    rows.push(vec!["fitted E (irreducible loss)".into(), f.fit.params.map_or("n/a".into(), |p| g(p.e)), floor]);
    d.table(&["check", "value", "note"], rows);
    if let Some(bt) = &f.fit.backtest {
        d.p(format!(
            "Backtest ({}): refit without the held-out run(s) and predict them. **Mean absolute relative error: {:.2}%**.",
            bt.protocol,
            bt.are * 100.0
        ));
        let rows = bt
            .points
            .iter()
            .map(|p| {
                vec![
                    p.run.clone(),
                    si(p.params),
                    si(p.tokens),
                    g(p.actual),
                    g(p.predicted),
                    format!("{:+.2}%", p.rel_err * 100.0),
                ]
            })
            .collect();
        d.table(&["held-out run", "N", "D", "actual", "predicted", "error"], rows);
    }
    super::rollout::section(d, f);
    if f.warnings.is_empty() {
        d.p("No warnings.");
    } else {
        d.p("Warnings:");
        d.list(f.warnings.clone());
    }
}

/// Each width's best learning rate, in log2 units: the grid's argmin refined by a parabola
/// through it and its two neighbours (when it is not at an end of the grid).
pub(crate) fn lr_optimum(pts: &[(f64, f64)]) -> Option<(f64, bool)> {
    let mut p: Vec<(f64, f64)> = pts.iter().map(|&(lr, l)| (lr.log2(), l)).filter(|x| x.1.is_finite()).collect();
    p.sort_by(|a, b| a.0.total_cmp(&b.0));
    let k = (0..p.len()).min_by(|&i, &j| p[i].1.total_cmp(&p[j].1))?;
    if k == 0 || k + 1 == p.len() {
        return Some((p[k].0, false));
    }
    let ((x0, y0), (x1, y1), (x2, y2)) = (p[k - 1], p[k], p[k + 1]);
    let den = (x0 - x1) * (x0 - x2) * (x1 - x2);
    let a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / den;
    let b = (x2 * x2 * (y0 - y1) + x1 * x1 * (y2 - y0) + x0 * x0 * (y1 - y2)) / den;
    let x = if a > 0.0 { (-b / (2.0 * a)).clamp(x0, x2) } else { x1 };
    Some((x, true))
}

/// μP transfer: where each width's loss-vs-learning-rate curve bottoms out, and how far the
/// optimum moves from the narrowest to the widest width (MiniCPM: it should not).
fn lr_transfer(d: &mut Doc, f: &Facts) {
    use std::collections::BTreeMap;
    // Per (width, depth): the data size with the most learning rates, then the largest.
    let mut by: BTreeMap<(i64, i64, i64), Vec<(f64, f64)>> = BTreeMap::new();
    for r in f.runs.iter().filter(|r| r.lr > 0.0) {
        by.entry((r.width, r.depth, r.tokens.round() as i64)).or_default().push((r.lr, r.loss));
    }
    let mut best: BTreeMap<(i64, i64), (i64, Vec<(f64, f64)>)> = BTreeMap::new();
    for ((w, dep, t), v) in by {
        let e = best.entry((w, dep)).or_insert((t, Vec::new()));
        if (v.len(), t) > (e.1.len(), e.0) {
            *e = (t, v);
        }
    }
    best.retain(|_, (_, v)| v.len() >= 3);
    if best.len() < 2 {
        return;
    }
    d.h2("Learning-rate transfer");
    let mut rows = Vec::new();
    let mut opts = Vec::new();
    for ((w, dep), (t, v)) in &best {
        let Some((x, interior)) = lr_optimum(v) else { continue };
        let loss = v.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        opts.push((*w, x, interior));
        rows.push(vec![
            w.to_string(),
            dep.to_string(),
            si(*t as f64),
            v.len().to_string(),
            format!("{} (2^{x:.2}){}", g(x.exp2()), if interior { "" } else { ", at the grid's edge" }),
            format!("{loss:.4}"),
        ]);
    }
    d.table(&["width", "depth", "tokens D", "learning rates", "best learning rate", "best loss"], rows);
    let (Some(lo), Some(hi)) = (opts.iter().min_by_key(|o| o.0), opts.iter().max_by_key(|o| o.0)) else { return };
    let shift = hi.1 - lo.1;
    let verdict = if !(lo.2 && hi.2) {
        "an optimum sits at the edge of the learning-rate grid, so the shift is a bound only; widen the grid"
            .to_string()
    } else if shift.abs() <= 1.0 {
        "within ±1: the optimum transfers across width".to_string()
    } else {
        "more than ±1: the optimum drifts with width (expected under standard parametrization, a warning under μP)"
            .to_string()
    };
    d.p(format!(
        "Optimum shift log2(lr_opt(width {}) / lr_opt(width {})) = **{shift:+.2}**: {verdict}. Each optimum is the \
         grid's best learning rate refined by a parabola in log2(lr) through it and its neighbours.",
        hi.0, lo.0
    ));
}

fn mix_str(names: &[String], mix: &[f64]) -> String {
    names.iter().zip(mix).map(|(n, w)| format!("{n} {w:.3}")).collect::<Vec<_>>().join(", ")
}

/// The data mixing law's recommendation for the target, its baselines, and the held-out check.
fn data_mixture(d: &mut Doc, f: &Facts) {
    let Some(m) = &f.fit.laws.data_mixing else { return };
    d.h2("Data mixture");
    let obj = mix_str(&m.domains, &m.objective_weights);
    d.p(format!(
        "Data mixing law (Ye et al. 2024) nested with compute: L_i(r, C) = c_i + k_i·exp(Σ_j t_ij r_j)·(C/C_ref)^-a_i \
         (form `exp`), or its variant with a power of the domain's own share, c_i + k_i·r_i^t_0·exp(Σ_(j≠i) t_j r_j)·\
         (C/C_ref)^-a_i (form `power`, what an L(D) law implies for the domain's r_i·D tokens); each domain keeps the \
         form with the lower leave-one-mixture-out error. Fitted per domain to the runs that trained on it, of {} runs \
         ({} mixtures, {} compute scales). Objective: {obj} (weighted sum of validation losses, nats/token), \
         minimised at the target C = {:.3e} FLOPs over the weights the sweep tried ({}).",
        m.n_runs,
        m.n_mixtures,
        m.n_scales,
        m.target_flops,
        m.search
            .iter()
            .zip(&m.domains)
            .map(|(i, n)| format!("{n} {:.3} to {:.3}", i.lo, i.hi))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let ci = m
        .recommended_ci
        .iter()
        .zip(&m.domains)
        .map(|(i, n)| format!("{n} [{:.2}, {:.2}]", i.lo, i.hi))
        .collect::<Vec<_>>()
        .join(", ");
    d.p(format!(
        "**Recommended mixture: {}** (95% bootstrap range of the optimum's weights: {ci}); predicted objective {:.4}, \
         95% {}.",
        mix_str(&m.domains, &m.recommended.mix),
        m.recommended.objective,
        iv(m.recommended.objective_ci, crate::human::loss)
    ));
    let mut rows = Vec::new();
    for p in std::iter::once(&m.recommended).chain(&m.baselines) {
        let mut row = vec![p.label.clone(), mix_str(&m.domains, &p.mix)];
        row.extend(p.losses.iter().map(|l| format!("{l:.4}")));
        row.push(format!("{:.4}", p.objective));
        row.push(iv(p.objective_ci, crate::human::loss));
        rows.push(row);
    }
    let mut head: Vec<String> = vec!["mixture".into(), "weights".into()];
    head.extend(m.domains.iter().map(|n| format!("predicted loss {n}")));
    head.extend(["objective".into(), "95% interval".into()]);
    let head_ref: Vec<&str> = head.iter().map(|s| s.as_str()).collect();
    d.table(&head_ref, rows);
    let fits: Vec<String> = m
        .laws
        .iter()
        .map(|l| {
            format!(
                "{}: form `{}`, c {:.3}, k {:.3}, a {:.3}, t [{}]; RMSE of ln L {:.4}, largest error {:.1}%; \
                 leave-one-mixture-out RMSE {}",
                l.domain,
                l.form,
                l.c,
                l.k,
                l.a,
                l.t.iter().map(|t| format!("{t:.2}")).collect::<Vec<_>>().join(", "),
                l.rmse_log,
                100.0 * l.max_rel_err,
                if l.cv_rmse.is_empty() {
                    "n/a (too few mixtures)".to_string()
                } else {
                    l.cv_rmse.iter().map(|(f, v)| format!("{f} {v:.4}")).collect::<Vec<_>>().join(", ")
                }
            )
        })
        .collect();
    d.list(fits);
    if let Some(r) = &m.regmix {
        d.p(format!(
            "RegMix baseline (quadratic regression of the objective on the weights at the sweep's largest compute, \
             {:.3e} FLOPs, {} runs, leave-one-out RMSE {:.4}): best mixture {} (objective {:.4} at that scale); it \
             assumes the ranking of mixtures does not change with scale.",
            r.flops,
            r.n_runs,
            r.loo_rmse,
            mix_str(&m.domains, &r.mix),
            r.objective
        ));
    }
    if !m.warnings.is_empty() {
        d.list(m.warnings.iter().map(|w| format!("warning: {w}")).collect());
    }
    match &f.mix_check {
        None => d.p(format!(
            "Not yet checked against a larger run: `windtunnel mix-check results/{}` trains the recommended, RegMix, \
             uniform and single-domain mixtures at a size larger than any in the sweep and adds the outcome here.",
            f.sweep.name
        )),
        Some(c) => {
            d.h3("Held-out check at a larger size");
            d.p(format!(
                "{} runs at width {} depth {} (N {}, D {}, C {:.3e} FLOPs, {:.1}x the sweep's largest run), trained \
                 after the fit; objective from their final validation losses.",
                c.rows.len(),
                c.width,
                c.depth,
                si(c.params),
                si(c.tokens),
                c.flops,
                c.flops / c.sweep_max_flops
            ));
            let rows = c
                .rows
                .iter()
                .map(|r| {
                    vec![
                        r.label.clone(),
                        mix_str(&m.domains, &r.mix),
                        format!("{:.4}", r.predicted),
                        format!("{:.4}", r.actual),
                        if r.rank == 1 { "**1**".into() } else { r.rank.to_string() },
                    ]
                })
                .collect();
            d.table(&["mixture", "weights", "law's prediction", "actual objective", "rank"], rows);
            d.p(c.verdict.clone());
        }
    }
}

fn law(d: &mut Doc, f: &Facts) {
    d.h2("Fitted law (Chinchilla approach 3)");
    d.p(
        "L(N, D) = E + A / N^alpha + B / D^beta, fitted as Hoffmann et al. do: Huber loss (delta = 1e-3) on log loss, \
         log-sum-exp form, L-BFGS from a grid of starts. N counts non-embedding parameters including the output head; \
         training FLOPs per token are 6N + 12 * depth * seq_len * width (see `src/flops.rs`); the laws use C = 6ND.",
    );
    skipped_laws(d, f);
    let Some(p) = &f.fit.params else {
        aux_laws(d, f);
        return;
    };
    let rows = [("E", p.e), ("A", p.a), ("B", p.b), ("alpha", p.alpha), ("beta", p.beta)]
        .iter()
        .map(|(k, v)| vec![k.to_string(), g(*v), iv(f.fit.intervals.get(*k).copied(), g)])
        .collect();
    d.table(&["parameter", "estimate", "95% bootstrap interval"], rows);
    d.p(format!(
        "Objective {} on {} runs; {} of {} grid starts converged.",
        g(f.fit.objective),
        f.fit.n_points,
        f.fit.converged_starts,
        f.fit.starts
    ));
    if !f.floors.is_empty() {
        let each: Vec<String> = f.floors.iter().map(|(n, v)| format!("{n} {v:.4}")).collect();
        d.p(format!(
            "Known entropy floor of the built-in domains (nats/byte; exact for Markov sources, an upper bound for \
             the grammar): {}{}; the fitted E = {} should not be below the mixture's floor.",
            each.join(", "),
            f.mix_floor.map_or(String::new(), |m| format!("; the sweep's mixture: {m:.4}")),
            g(p.e)
        ));
    }
    aux_laws(d, f);
}

/// Laws that could not be fitted, with why (nothing when every law was fitted).
fn skipped_laws(d: &mut Doc, f: &Facts) {
    if f.fit.skipped.is_empty() {
        return;
    }
    d.p("**Laws not fitted** (the data cannot support them; the other laws are fitted without them):");
    let rows = f.fit.skipped.iter().map(|(k, why)| vec![format!("`{k}`"), why.clone()]).collect();
    d.table(&["law", "reason"], rows);
}

fn aux_laws(d: &mut Doc, f: &Facts) {
    for (name, law) in &f.fit.laws.as_json() {
        d.h3(format!("Law `{name}`"));
        let Some(obj) = law.as_object() else { continue };
        let mut rows = Vec::new();
        for (k, v) in obj {
            match v {
                Value::Number(n) => rows.push(vec![k.clone(), g(n.as_f64().unwrap_or(f64::NAN))]),
                Value::String(s) => rows.push(vec![k.clone(), s.clone()]),
                Value::Object(o) => {
                    let parts: Vec<String> =
                        o.iter().filter_map(|(kk, vv)| vv.as_f64().map(|x| format!("{kk} {}", g(x)))).collect();
                    if !parts.is_empty() {
                        rows.push(vec![k.clone(), parts.join(", ")]);
                    }
                }
                Value::Array(a) => rows.push(vec![k.clone(), format!("{} entries", a.len())]),
                _ => {}
            }
        }
        d.table(&["field", "value"], rows);
    }
}

fn runs(d: &mut Doc, f: &Facts) {
    d.h2("Runs");
    let rows = f
        .runs
        .iter()
        .map(|r| {
            let pred = f.fit.predict(r.params, r.tokens).unwrap_or(f64::NAN);
            vec![
                format!("`{}`", r.run_id),
                r.width.to_string(),
                r.depth.to_string(),
                format!("{:.2e}", r.lr),
                si(r.params),
                si(r.tokens),
                format!("{:.2e}", r.c6()),
                format!("{:.2e}", r.flops),
                format!("{:.4}", r.loss),
                format!("{pred:.4}"),
                format!("{:+.2}%", (r.loss / pred - 1.0) * 100.0),
            ]
        })
        .collect();
    d.table(
        &[
            "run id",
            "width",
            "depth",
            "lr",
            "N",
            "D",
            "6ND",
            "FLOPs (attn. incl.)",
            "final loss",
            "predicted",
            "residual",
        ],
        rows,
    );
    if !f.excluded.is_empty() {
        d.p(format!("Excluded (diverged): {}.", f.excluded.join(", ")));
    }
    if let Some(first) = f.fit.left_out.first() {
        let ids: Vec<String> = f.fit.left_out.iter().map(|l| format!("`{}` ({} steps)", l.run, l.steps)).collect();
        d.p(format!(
            "Left out of the final-point laws (fewer than {} optimizer steps, `[fit] min_steps`: their final loss \
             is still the initial transient, so their residuals above are out of sample): {}. Their curves still \
             count in the loss-curve law.",
            first.min_steps,
            ids.join(", ")
        ));
    }
}
