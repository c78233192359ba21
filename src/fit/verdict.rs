//! Whether a fit determines what the report's headline would recommend.
//! A five-parameter law fitted to a small grid can reproduce every run and still leave the
//! compute-optimal split N/D at a far target undetermined: an exponent that ran to the edge of
//! its plausible range, E collapsing to 0 or below the data's known entropy floor, an N_opt or
//! tokens-per-parameter interval wider than 10x, or an N_opt below every trained model. This
//! module judges that from the `FitReport` alone (plus the final points' N and D and a known
//! floor passed in by the caller, since fit/ knows nothing of the data) and says why in words;
//! `suggest` adds the runs that would narrow it. It changes no fitted number.

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

/// The fewest tokens per parameter a suggested run (and a run `design` or `design --continue`
/// proposes) gets. On both real corpora, searched WSD families at 0.5 to 4 tokens per parameter
/// narrowed N_opt but left a larger model's predicted loss 15% off its actual; kept at this
/// floor, 0.2% and 4.4%.
pub const MIN_TPP: f64 = 2.5;

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
    /// Runs that would narrow what is not determined (empty when everything is): searched, or a
    /// fixed IsoFLOP profile as the fallback; a ranking, never a promise that they determine it
    /// (`suggestions`).
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
    /// What it trains itself when less than C: a WSD branch of a suggested family trains only
    /// its decay, from the family's trunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained_flops: Option<f64>,
    pub why: String,
}

/// What a new WSD branch family may hold, from the sweep's schedule (which fit/ does not know).
/// A sweep of branches grows by whole families of new sizes: a run at a trained size would
/// lengthen or re-branch its family's trunk, and so retrain the family. A family's runs share
/// one trunk, so it costs its longest run plus the others' decays.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Families {
    /// The largest ratio of a family's longest run to its shortest: (1 - decay) / warmup.
    pub span: f64,
    /// The fraction of its tokens a branch trains itself (its decay).
    pub decay: f64,
    /// The sweep's data values: token counts, or tokens per parameter when `per_param`. A new
    /// family takes contiguous sets of three or more of these and 2x and 4x the largest.
    pub values: Vec<f64>,
    pub per_param: bool,
}

/// A 95% interval as a spread hi/lo (infinite when it reaches 0).
pub fn spread(iv: &Interval) -> f64 {
    if iv.lo > 0.0 {
        iv.hi / iv.lo
    } else {
        f64::INFINITY
    }
}

/// `judge` without the runs to suggest (`suggest` empty): what a simulated sweep needs, which
/// counts verdicts by the hundred and must not pay for a search each time.
pub fn judge_only(fit: &FitReport, points: &[(f64, f64)], floor: Option<f64>) -> Verdict {
    judged(fit, points, floor)
}

fn judged(fit: &FitReport, points: &[(f64, f64)], floor: Option<f64>) -> Verdict {
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
                    crate::human::si(iv.lo),
                    crate::human::si(iv.hi),
                    crate::human::ratio(spread(iv))
                )),
                Some(_) => {}
                None => reasons.push(format!("{what} has no interval (no bootstrap): its uncertainty is unmeasured")),
            }
        }
        if t.n_opt < n_min {
            reasons.push(format!(
                "N_opt = {} is below the smallest trained model (N = {}): the law is extrapolated downwards in N",
                crate::human::si(t.n_opt),
                crate::human::si(n_min)
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
                "its 95% interval {} spans {} of the prediction (more than {:.0}%)",
                crate::human::loss_interval(iv.lo, iv.hi),
                crate::human::percent(iv.width() / t.loss, 0),
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
    Verdict { determined, reasons, loss_determined, loss_reasons, suggest: Vec::new(), floor }
}
