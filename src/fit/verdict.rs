//! Whether a fit determines what the report's headline would recommend.
//! A five-parameter law fitted to a small grid can reproduce every run and still leave the
//! compute-optimal split N/D at a far target undetermined: an exponent that ran to the edge of
//! its plausible range, E collapsing to 0 or below the data's known entropy floor, an N_opt or
//! tokens-per-parameter interval wider than 10x, or an N_opt below every trained model. This
//! module judges that from the `FitReport` alone (plus the final points' N and D and a known
//! floor passed in by the caller, since fit/ knows nothing of the data), says why in words, and
//! names the runs whose addition would pin the split down. It changes no fitted number.

use crate::fit::{FitReport, Interval};
use serde::{Deserialize, Serialize};

/// An interval whose upper end is more than this many times its lower end does not determine
/// the quantity: a 10x range in N_opt is a different model family, not an error bar.
pub const MAX_SPREAD: f64 = 10.0;

/// The loss at the target counts as determined when its 95% interval is at most this wide
/// relative to the prediction (about ±5%; the Hitchhiker's Guide's best ARE is ~4%).
pub const MAX_LOSS_WIDTH: f64 = 0.10;

/// Exponents outside this range are at the edge of what a language-model law can mean: below
/// 0.1 the power term is nearly constant and trades off against E (a real-text sweep gave
/// alpha = beta = 0.100 with E = 1e-43); above 2 (the edge of Hoffmann's start grid) it vanishes within the
/// grid and says nothing beyond it.
pub const EXPONENT_RANGE: (f64, f64) = (0.1, 2.0);

/// The Kaplan form counts as fitting "about as well" as the Chinchilla law when its Huber
/// objective per point is at most this multiple of the Chinchilla fit's.
pub const FORM_FIT_RATIO: f64 = 2.0;

/// How much more compute than the sweep's largest run the suggested IsoFLOP runs use: enough
/// to add a new budget, little enough that a sweep can afford three of them.
pub const SUGGEST_FACTOR: f64 = 4.0;

/// The verdict as it appears in fit.json (`verdict`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The compute-optimal split (N_opt, D_opt) at the target is pinned down by the sweep.
    pub determined: bool,
    /// Why not (empty when determined).
    pub reasons: Vec<String>,
    /// The loss at the target compute is: its interval is narrow and the prediction is not
    /// below the data's known entropy floor.
    pub loss_determined: bool,
    pub loss_reasons: Vec<String>,
    /// Runs whose addition would determine what is not (empty when everything is).
    pub suggest: Vec<Suggestion>,
    /// The entropy floor the verdict was judged against, if one was known.
    pub floor: Option<f64>,
}

/// One run to add: a model of `params` N trained on `tokens` D (the report turns N into a
/// width and depth with the sweep's own shape rule).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    pub params: f64,
    pub tokens: f64,
    pub tokens_per_param: f64,
    /// C = 6ND.
    pub flops: f64,
    pub why: String,
}

fn spread(iv: &Interval) -> f64 {
    if iv.lo > 0.0 {
        iv.hi / iv.lo
    } else {
        f64::INFINITY
    }
}

/// Judge `fit`. `points` are the final (N, D) the law was fitted to; `floor` is the data's
/// known entropy floor in nats/token (built-in domains), if any.
pub fn judge(fit: &FitReport, points: &[(f64, f64)], floor: Option<f64>) -> Verdict {
    let floor = floor.filter(|f| f.is_finite() && *f > 0.0);
    let Some(p) = fit.params.as_ref() else {
        let why = format!("no law was fitted: {}", fit.chinchilla_skipped().unwrap_or("the chinchilla law is absent"));
        return Verdict {
            determined: false,
            reasons: vec![why.clone()],
            loss_determined: false,
            loss_reasons: vec![why],
            suggest: Vec::new(),
            floor,
        };
    };
    let mut reasons = Vec::new();
    for (name, v) in [("alpha", p.alpha), ("beta", p.beta)] {
        if !(EXPONENT_RANGE.0..=EXPONENT_RANGE.1).contains(&v) {
            reasons.push(format!(
                "{name} = {v:.3} is at the edge of its range ({} to {}): that term is confounded with E",
                EXPONENT_RANGE.0, EXPONENT_RANGE.1
            ));
        }
    }
    // The law's own loss at its smallest-loss point sets the scale E is compared with.
    let scale = points.iter().map(|&(n, d)| p.predict(n, d)).fold(f64::INFINITY, f64::min);
    if p.e < 1e-3 * scale.min(1.0) {
        reasons.push(format!("the irreducible loss E = {:.3e} collapsed towards 0", p.e));
    } else if let Some(fl) = floor.filter(|fl| p.e < *fl) {
        reasons.push(format!(
            "the irreducible loss E = {:.4} is below the data's known entropy floor {fl:.4} (exact for a Markov source, the derivation entropy for a grammar)",
            p.e
        ));
    }
    let n_min = points.iter().map(|x| x.0).fold(f64::INFINITY, f64::min);
    let mut loss_reasons = Vec::new();
    if let Some(t) = &fit.target {
        for (key, what) in [("n_opt", "N_opt"), ("tokens_per_param", "tokens per parameter")] {
            match fit.intervals.get(key) {
                Some(iv) if spread(iv) > MAX_SPREAD => reasons.push(format!(
                    "the 95% interval of {what} at the target, [{}, {}], is {} wide (more than {MAX_SPREAD}x)",
                    short(iv.lo),
                    short(iv.hi),
                    ratio(spread(iv))
                )),
                Some(_) => {}
                None => reasons.push(format!("{what} has no interval (no bootstrap): its uncertainty is unmeasured")),
            }
        }
        if t.n_opt < n_min {
            reasons.push(format!(
                "N_opt = {} is below the smallest trained model (N = {}): the law is extrapolated downwards in N",
                short(t.n_opt),
                short(n_min)
            ));
        }
        if let Some(fl) = floor.filter(|fl| t.loss < *fl) {
            loss_reasons.push(format!(
                "the predicted loss {:.4} is below the data's known entropy floor {fl:.4}: not achievable, so it is \
                 not a result",
                t.loss
            ));
        }
        match fit.intervals.get("loss") {
            Some(iv) if iv.width() > MAX_LOSS_WIDTH * t.loss => loss_reasons.push(format!(
                "its 95% interval [{:.4}, {:.4}] spans {:.0}% of the prediction (more than {:.0}%)",
                iv.lo,
                iv.hi,
                100.0 * iv.width() / t.loss,
                100.0 * MAX_LOSS_WIDTH
            )),
            Some(_) => {}
            None => loss_reasons.push("it has no interval (no bootstrap)".into()),
        }
        // The rollout backtest measured how far this law's predictions miss at growing
        // distances inside the sweep; at the target's distance that error is the honest
        // expectation, whatever the bootstrap says.
        if let Some(a) = fit.rollout.as_ref().and_then(|r| r.at_target.as_ref()) {
            if a.expected_rel_err > MAX_LOSS_WIDTH / 2.0 {
                loss_reasons.push(format!(
                    "the rollout backtest (fit the smaller runs, predict the larger) misses by {:.1}% on average at \
                     the target's distance ({:.0}x the largest run){}",
                    100.0 * a.expected_rel_err,
                    a.factor,
                    if a.note.contains("assumption") {
                        ", extrapolated from the distances it could measure"
                    } else {
                        ""
                    }
                ));
            }
        }
        // Model-form uncertainty: a second law form that fits the same points about as well
        // but lands elsewhere at the target means the sweep does not decide the extrapolation.
        if let Some(fc) = &fit.form_check {
            if let Some(at) = fc.at_target {
                // Per point: the Kaplan fit may use a thinned subset of a large fit's points.
                let per = |obj: f64, n: usize| obj / n.max(1) as f64;
                let comparable = per(fc.kaplan.objective, fc.kaplan.n_points)
                    <= FORM_FIT_RATIO * per(fit.objective, fit.n_points).max(1e-15);
                if comparable && at.rel_diff.abs() > MAX_LOSS_WIDTH / 2.0 {
                    loss_reasons.push(format!(
                        "two law forms that fit the sweep about equally well disagree by {:.1}% at the target: \
                         Chinchilla's additive form predicts {:.4}, Kaplan's form (parameter and data terms inside \
                         one power) {:.4}; the sweep does not decide between them",
                        100.0 * at.rel_diff.abs(),
                        at.chinchilla,
                        at.kaplan
                    ));
                }
            }
        }
    }
    let (determined, loss_determined) = (reasons.is_empty(), loss_reasons.is_empty());
    let suggest = if determined && loss_determined { Vec::new() } else { suggestions(fit, p, points, determined) };
    Verdict { determined, reasons, loss_determined, loss_reasons, suggest, floor }
}

/// The runs that would determine the split: an IsoFLOP profile (Chinchilla's approach 2) at
/// `SUGGEST_FACTOR` times the largest run's compute, three sizes whose tokens per parameter
/// span the plausible range (the fit's interval, clipped to 1 to 1,000, and at least 5 to 80):
/// the budget's loss minimum then lies inside the profile or at a named end of it, and the new
/// budget lengthens the lever arm on E. When only the loss is undetermined, one run on the
/// fitted frontier at that budget measures the extrapolated loss directly.
fn suggestions(fit: &FitReport, p: &crate::fit::Law, points: &[(f64, f64)], split_determined: bool) -> Vec<Suggestion> {
    let c_max = points.iter().map(|(n, d)| crate::flops::chinchilla_flops(*n, *d)).fold(0.0, f64::max);
    if !(c_max > 0.0 && c_max.is_finite()) {
        return Vec::new();
    }
    let c = SUGGEST_FACTOR * c_max;
    let at = |tpp: f64, why: String| {
        let n = crate::flops::chinchilla_params_at(c, tpp);
        Suggestion { params: n, tokens: tpp * n, tokens_per_param: tpp, flops: c, why }
    };
    if split_determined {
        let n = p.n_opt(c);
        let tpp = c / (crate::flops::chinchilla_flops(n, n));
        return vec![at(
            tpp,
            format!(
                "on the fitted frontier at {SUGGEST_FACTOR}x the largest run's compute: measures the extrapolated loss"
            ),
        )];
    }
    let iv = fit.intervals.get("tokens_per_param").copied();
    let lo = iv.map_or(5.0, |i| i.lo).clamp(1.0, 5.0);
    let hi = iv.map_or(80.0, |i| i.hi).clamp(80.0, 1000.0);
    let mid = (lo * hi).sqrt();
    [(lo, "few tokens per parameter"), (mid, "the middle"), (hi, "many tokens per parameter")]
        .into_iter()
        .map(|(tpp, end)| {
            at(
                tpp,
                format!(
                    "IsoFLOP profile at {SUGGEST_FACTOR}x the largest run's compute ({end}): brackets the budget's optimal N"
                ),
            )
        })
        .collect()
}

/// Three significant digits with an SI suffix (k, M, G, T).
fn short(x: f64) -> String {
    let a = x.abs();
    for (s, m) in [("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)] {
        if a >= m && a.is_finite() {
            return format!("{:.3}{s}", x / m);
        }
    }
    format!("{x:.3}")
}

fn ratio(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.0}x")
    } else {
        "unboundedly".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::{fit_all, FitOptions, Obs};

    fn obs(n: f64, d: f64, l: f64) -> Obs {
        Obs::final_6nd(format!("n{n:.0}-d{d:.0}"), n, d, l)
    }

    /// Deterministic multiplicative noise of about ±`amp` (a fixed pseudo-random sequence).
    fn noise(i: usize, amp: f64) -> f64 {
        let u = ((i as f64 + 1.0) * 12.9898).sin() * 43758.5453;
        1.0 + amp * (2.0 * (u - u.floor()) - 1.0)
    }

    fn law_loss(n: f64, d: f64) -> f64 {
        1.8 + 400.0 / n.powf(0.34) + 400.0 / d.powf(0.28)
    }

    /// A grid that spans 1.5x in N and 2x in D with 1% noise cannot split a budget 1,000x away:
    /// the verdict says so, with reasons, and suggests runs beyond the grid.
    #[test]
    fn a_narrow_noisy_grid_is_not_determined() {
        let mut pts = Vec::new();
        for (i, n) in [1.0e5, 1.2e5, 1.5e5].into_iter().enumerate() {
            for (j, tpp) in [10.0, 14.0, 20.0].into_iter().enumerate() {
                pts.push(obs(n, tpp * n, law_loss(n, tpp * n) * noise(3 * i + j, 0.01)));
            }
        }
        let c_max = pts.iter().map(|o| o.flops).fold(0.0, f64::max);
        let opts = FitOptions { target_flops: Some(1e3 * c_max), bootstrap: 60, backtest: false, ..Default::default() };
        let rep = fit_all(&pts, &opts).unwrap();
        let v = rep.verdict.clone().expect("fit_all fills the verdict");
        assert!(!v.determined, "{v:?}\n{:?}", rep.intervals);
        assert!(!v.reasons.is_empty());
        assert_eq!(v.suggest.len(), 3, "{v:?}");
        assert!(v.suggest.iter().all(|s| (s.flops / (SUGGEST_FACTOR * c_max) - 1.0).abs() < 1e-9));
        assert!(v.suggest[0].tokens_per_param < v.suggest[2].tokens_per_param);
    }

    /// The same law on a wide, exact grid (100x in N, 1 to 100 tokens per parameter) is
    /// determined: the test can fail both ways.
    #[test]
    fn a_wide_exact_grid_is_determined() {
        let mut pts = Vec::new();
        for n in [1e5, 3e5, 1e6, 3e6, 1e7] {
            for tpp in [1.0, 4.0, 16.0, 64.0] {
                pts.push(obs(n, tpp * n, law_loss(n, tpp * n)));
            }
        }
        let c_max = pts.iter().map(|o| o.flops).fold(0.0, f64::max);
        let opts = FitOptions { target_flops: Some(1e2 * c_max), bootstrap: 60, backtest: false, ..Default::default() };
        let v = fit_all(&pts, &opts).unwrap().verdict.unwrap();
        assert!(v.determined && v.loss_determined, "{v:?}");
        assert!(v.suggest.is_empty());
    }

    /// A known floor above the fitted E and above the prediction: neither the split nor the
    /// loss is determined, and the loss reason says the prediction is not achievable.
    #[test]
    fn a_prediction_below_the_known_floor_is_not_a_result() {
        let mut pts = Vec::new();
        for n in [1e5, 3e5, 1e6, 3e6, 1e7] {
            for tpp in [1.0, 4.0, 16.0, 64.0] {
                pts.push(obs(n, tpp * n, law_loss(n, tpp * n)));
            }
        }
        let opts = FitOptions {
            target_flops: Some(1e22),
            bootstrap: 0,
            backtest: false,
            entropy_floor: Some(2.5),
            ..Default::default()
        };
        let v = fit_all(&pts, &opts).unwrap().verdict.unwrap();
        assert!(!v.determined && !v.loss_determined, "{v:?}");
        assert!(v.reasons.iter().any(|r| r.contains("below the data's known entropy floor 2.5000")), "{v:?}");
        assert!(v.loss_reasons.iter().any(|r| r.contains("not achievable")), "{v:?}");
        assert_eq!(v.floor, Some(2.5));
    }
}
