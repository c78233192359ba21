//! Checks on a fit.json read back from disk before anything is built on it. The file is the
//! user's (it can be edited, truncated, or written by an older version), and `report` and
//! `check` print its numbers as results: a flipped `verdict.determined` printed "Recommended
//! target run" beside a 96x N_opt interval, a target loss of -3 was printed, and a deleted
//! `target` key read as "the sweep has no [target]". Every problem names its field; the caller
//! names the file.

use crate::fit::{verdict, FitReport};

/// What fit.json must agree with that it does not hold itself.
pub struct Expect<'a> {
    /// The sweep has a `[target]`, so a fitted law must come with one.
    pub target: bool,
    /// The final points (N, D) the law was fitted to, for re-judging the verdict.
    pub points: &'a [(f64, f64)],
}

/// The first problem found, as "field `x`: what is wrong", or Ok.
pub fn check(fit: &FitReport, expect: &Expect) -> Result<(), String> {
    let finite_pos = |v: f64| v.is_finite() && v > 0.0;
    let Some(law) = fit.params else {
        // No law: only the reason must be there (`skipped.chinchilla`).
        return match fit.chinchilla_skipped() {
            Some(_) => Ok(()),
            None => Err("field `params` is missing or null, and `skipped.chinchilla` gives no reason".into()),
        };
    };
    for (k, v) in [("E", law.e), ("A", law.a), ("B", law.b), ("alpha", law.alpha), ("beta", law.beta)] {
        if !v.is_finite() || (k != "alpha" && k != "beta" && v < 0.0) {
            return Err(format!(
                "field `params.{k}` = {v} is not a finite{} number",
                if k.len() == 1 { " non-negative" } else { "" }
            ));
        }
    }
    match (&fit.target, expect.target) {
        (None, true) => {
            return Err(
                "field `target` is missing, but the sweep has a [target] (refit with `windtunnel collect`)".into()
            )
        }
        (Some(t), _) => {
            for (k, v) in [
                ("flops", t.flops),
                ("n_opt", t.n_opt),
                ("d_opt", t.d_opt),
                ("tokens_per_param", t.tokens_per_param),
                ("loss", t.loss),
            ] {
                if !finite_pos(v) {
                    return Err(format!("field `target.{k}` = {v} is not a finite number > 0"));
                }
            }
            // The target is the law's own point: a hand-edited value disagrees with the law.
            let again = law.predict(t.n_opt, t.d_opt);
            if (again / t.loss - 1.0).abs() > 1e-6 {
                return Err(format!(
                    "field `target.loss` = {} is not what the file's own law predicts at its N_opt and D_opt ({again:.6})",
                    t.loss
                ));
            }
        }
        (None, false) => {}
    }
    for (k, iv) in &fit.intervals {
        if !(iv.lo.is_finite() && iv.hi.is_finite() && iv.lo <= iv.hi) {
            return Err(format!("field `intervals.{k}` = [{}, {}] is not a finite interval", iv.lo, iv.hi));
        }
    }
    for (i, p) in fit.frontier.iter().enumerate() {
        if ![p.flops, p.loss].iter().all(|v| finite_pos(*v)) {
            return Err(format!("field `frontier[{i}]` has a loss or compute that is not a finite number > 0"));
        }
    }
    // The verdict is re-judged from the file's own numbers: a recorded "determined" that its
    // intervals contradict is refused (a recorded "not determined" may carry reasons from the
    // runs' curves, which the file does not hold, so it stands).
    if let Some(v) = &fit.verdict {
        let again = verdict::judge_only(fit, expect.points, v.floor);
        if v.determined && !again.determined {
            return Err(format!(
                "field `verdict.determined` is true, but the file's own numbers say not determined: {}",
                again.reasons.join("; ")
            ));
        }
        if v.loss_determined && !again.loss_determined {
            return Err(format!(
                "field `verdict.loss_determined` is true, but the file's own numbers say not determined: {}",
                again.loss_reasons.join("; ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::{FitOptions, Interval, Obs};

    /// A fit of a known law at 25 points with a target, as `fit` writes it.
    fn known() -> (FitReport, Vec<(f64, f64)>) {
        let mut obs = Vec::new();
        for n in [1e5, 3e5, 1e6, 3e6, 1e7] {
            for tpp in [5.0, 10.0, 20.0, 40.0, 80.0] {
                let d: f64 = n * tpp;
                obs.push(Obs::final_6nd(format!("{n}-{d}"), n, d, 1.5 + 300.0 / n.powf(0.35) + 900.0 / d.powf(0.3)));
            }
        }
        let opts = FitOptions { target_flops: Some(1e21), bootstrap: 40, backtest: false, ..Default::default() };
        let fit = crate::fit::fit_all(&obs, &opts).unwrap();
        (fit, obs.iter().map(|o| (o.params, o.tokens)).collect())
    }

    /// Each tampering of the issue is refused naming its field; the untouched file passes.
    #[test]
    fn a_tampered_fit_json_is_refused_naming_the_field() {
        let (fit, points) = known();
        let e = |f: &FitReport| check(f, &Expect { target: true, points: &points });
        assert_eq!(e(&fit), Ok(()));
        let mut neg = fit.clone();
        neg.target.as_mut().unwrap().loss = -3.0;
        assert!(e(&neg).unwrap_err().contains("`target.loss` = -3"), "{:?}", e(&neg));
        let mut edited = fit.clone();
        edited.target.as_mut().unwrap().loss *= 0.9;
        assert!(e(&edited).unwrap_err().contains("not what the file's own law predicts"));
        let mut gone = fit.clone();
        gone.target = None;
        assert!(e(&gone).unwrap_err().contains("field `target` is missing"));
        assert_eq!(check(&gone, &Expect { target: false, points: &points }), Ok(()));
        let mut nan = fit.clone();
        nan.params.as_mut().unwrap().alpha = f64::NAN;
        assert!(e(&nan).unwrap_err().contains("`params.alpha`"));
        // A flipped verdict beside a 96x N_opt interval.
        let mut flipped = fit.clone();
        let t = flipped.target.unwrap();
        flipped.intervals.insert("n_opt".into(), Interval { lo: t.n_opt / 10.0, hi: t.n_opt * 9.6 });
        let v = flipped.verdict.as_mut().unwrap();
        (v.determined, v.reasons) = (true, Vec::new());
        let err = e(&flipped).unwrap_err();
        assert!(err.contains("`verdict.determined` is true") && err.contains("96x wide"), "{err}");
        let mut bad_iv = fit.clone();
        bad_iv.intervals.insert("loss".into(), Interval { lo: f64::NAN, hi: 1.0 });
        assert!(e(&bad_iv).unwrap_err().contains("`intervals.loss`"));
    }
}
