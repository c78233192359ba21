//! The curve law recovers a known law from synthetic curves, and reproduces the multi-power
//! law's published protocol.

use super::*;
use crate::rng::Rng;
use std::path::PathBuf;

/// A schedule of `steps` updates at peak `peak`: 5% linear warmup, then `kind`.
fn schedule(kind: &str, steps: usize, peak: f64) -> Vec<f64> {
    let warm = steps / 20;
    (0..steps)
        .map(|k| {
            if k < warm {
                return peak * (k + 1) as f64 / warm as f64;
            }
            let p = (k - warm) as f64 / (steps - warm) as f64;
            peak * match kind {
                "constant" => 1.0,
                "cosine" => 0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()),
                "wsd" => {
                    if k < steps * 8 / 10 {
                        1.0
                    } else {
                        1.0 - (k - steps * 8 / 10) as f64 / (steps / 5) as f64 * 0.99
                    }
                }
                "exp" => {
                    if k < steps * 7 / 10 {
                        1.0
                    } else {
                        0.01f64.powf((k - steps * 7 / 10) as f64 / (steps * 3 / 10) as f64)
                    }
                }
                _ => unreachable!(),
            }
        })
        .collect()
}

fn truth() -> CurveLaw {
    super::known_law(3e5)
}

/// A run of `truth()` under `kind` with multiplicative Gaussian noise `sigma`.
fn synth(params: f64, kind: &str, steps: usize, sigma: f64, rng: &mut Rng) -> CurveRun {
    synth_of(&truth(), params, kind, steps, sigma, rng)
}

/// A run of `law` under `kind` with multiplicative Gaussian noise `sigma`.
fn synth_of(law: &CurveLaw, params: f64, kind: &str, steps: usize, sigma: f64, rng: &mut Rng) -> CurveRun {
    let lr = schedule(kind, steps, 1e-2);
    let evals = even_steps(steps as u64, 40);
    let clean = predict(law, params, &lr, &evals);
    let loss = clean.iter().map(|l| l * (1.0 + sigma * rng.normal())).collect();
    CurveRun { run: format!("{kind}-{params}"), params, tokens_per_step: 1024.0, lr, steps: evals, loss }
}

#[test]
fn recovers_a_known_law_from_synthetic_curves() {
    let mut rng = Rng::from_state(7);
    let mut runs = Vec::new();
    for n in [1e5, 3e5, 9e5] {
        for (kind, steps) in [("constant", 1500), ("cosine", 3000), ("wsd", 2000)] {
            runs.push(synth(n, kind, steps, 3e-4, &mut rng));
        }
    }
    let f = fit(&runs, 0, 0).expect("fit");
    let (l, t) = (f.law, truth());
    eprintln!("{l:?} in {:.2} s, in-sample {:?}", f.fit_seconds, f.in_sample);
    // Measured at 0.03% noise: amplitudes, alpha and tau within 1%, exponents within 0.001;
    // the annealing shape less closely (gamma 2%, C and beta below).
    for (name, got, want, tol) in [
        ("E", l.e, t.e, 0.02),
        ("alpha", l.alpha, t.alpha, 0.02),
        ("A", l.a * (t.n_ref / l.n_ref).powf(-l.a_exp), t.a, 0.05),
        ("B", l.b * (t.n_ref / l.n_ref).powf(-l.b_exp), t.b, 0.1),
        // C and beta trade off along a ridge of near-equal optima (C beta is what the curves
        // pin down where G is nearly linear): measured C 2.59 and beta 0.547 for the true 2
        // and 0.6, with the curves themselves within 0.03%.
        ("C", l.c, t.c, 0.35),
        ("beta", l.beta, t.beta, 0.1),
        ("gamma", l.gamma, t.gamma, 0.1),
        ("D", l.d * (t.n_ref / l.n_ref).powf(-l.d_exp), t.d, 0.1),
        ("tau", l.tau, t.tau, 0.1),
    ] {
        assert!((got / want - 1.0).abs() < tol, "{name}: fitted {got}, true {want}");
    }
    for (name, got, want) in [
        ("p_exp", l.p_exp, t.p_exp),
        ("a_exp", l.a_exp, t.a_exp),
        ("b_exp", l.b_exp, t.b_exp),
        ("d_exp", l.d_exp, t.d_exp),
        ("tau_exp", l.tau_exp, t.tau_exp),
    ] {
        assert!((got - want).abs() < 0.03, "{name}: fitted {got}, true {want}");
    }
    assert!(f.warnings.is_empty(), "{:?}", f.warnings);
    // A schedule it never saw (exponential decay), at a model 3x larger than any fitted.
    let held = synth(2.7e6, "exp", 4000, 0.0, &mut rng);
    let pred = predict(&l, held.params, &held.lr, &held.steps);
    let e = Errors::of(&pred, &held.loss);
    assert!(e.mean_rel < 2e-3 && e.max_rel < 5e-3, "held-out curve: {e:?}");
}

/// Curves with a second, slow saturation (a part of the loss that the larger models exhaust
/// within the runs, as the built-in Markov domain is): the fit finds the term, recovers its
/// amplitude, scale and size exponent, and predicts a longer run at a larger size.
#[test]
fn recovers_a_slow_saturation_and_predicts_past_it() {
    let truth = CurveLaw { d2: 0.15, d2_exp: 0.0, tau2: 15.0, tau2_exp: 0.5, ..truth() };
    let mut rng = Rng::from_state(11);
    let run =
        |n: f64, kind: &str, steps: usize, sigma: f64, rng: &mut Rng| synth_of(&truth, n, kind, steps, sigma, rng);
    let mut runs = Vec::new();
    for n in [1e5, 3e5, 9e5] {
        for (kind, steps) in [("constant", 1500), ("cosine", 3000), ("wsd", 2000)] {
            runs.push(run(n, kind, steps, 3e-4, &mut rng));
        }
    }
    let f = fit(&runs, 0, 0).expect("fit");
    let l = f.law;
    eprintln!("{l:?} in {:.2} s, in-sample {:?}", f.fit_seconds, f.in_sample);
    let d2 = l.d2 * (truth.n_ref / l.n_ref).powf(-l.d2_exp);
    let tau2 = l.tau2 * (truth.n_ref / l.n_ref).powf(-l.tau2_exp);
    // Measured at 0.03% noise: D2 and tau2 within 1%, the exponent within 0.001.
    assert!((d2 / truth.d2 - 1.0).abs() < 0.05, "D2: fitted {d2}, true {}", truth.d2);
    assert!((tau2 / truth.tau2 - 1.0).abs() < 0.05, "tau2: fitted {tau2}, true {}", truth.tau2);
    assert!((l.tau2_exp - truth.tau2_exp).abs() < 0.05, "tau2_exp: fitted {}, true {}", l.tau2_exp, truth.tau2_exp);
    assert!(f.in_sample.mean_rel < 5e-4, "in-sample {:?}", f.in_sample);
    let held = run(2.7e6, "wsd", 6000, 0.0, &mut rng);
    let e = Errors::of(&predict(&l, held.params, &held.lr, &held.steps), &held.loss);
    // Measured: 0.02% mean error.
    assert!(e.mean_rel < 1e-3, "held-out curve: {e:?}");
}

fn mpl_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference-data/mpl");
    assert!(
        d.join("curves").is_dir(),
        "{}: the published multi-power-law curves are missing; this test needs ../shared/reference-data/mpl \
         beside the repository",
        d.display()
    );
    d
}

#[test]
#[ignore = "needs ../shared/reference-data/mpl (.ci/run runs it with --ignored)"]
fn reproduces_the_multi_power_law_protocol() {
    let res = protocol::run(&mpl_dir()).expect("protocol");
    eprintln!("{}", protocol::table(&res));
    for r in &res {
        // The paper's own shape through this predictor (L0 moved onto the curves, see
        // protocol.rs): checks the predictor and the chunked annealing sum against the
        // paper's reported accuracy (mean 0.11% to 0.17%, worst 0.4% to 1.0%).
        let p = r.paper_shifted();
        assert!(p.mean_rel < 3e-3 && p.max_rel < 1.2e-2, "{}: paper's parameters {p:?}", r.size);
        // Our own fit on three curves, predicting six (measured: 25M mean 0.20%, worst 0.72%;
        // 100M 0.23%, 0.81%).
        let o = r.ours();
        assert!(o.mean_rel < 3.5e-3 && o.max_rel < 1.2e-2, "{}: our fit {o:?}", r.size);
    }
}

/// The share of the held-out runs' evaluations inside the bands `f` predicts for them.
fn coverage(f: &CurveFit, held: &[CurveRun]) -> f64 {
    let (mut inside, mut all) = (0, 0);
    for r in held {
        for (p, &y) in predict_curve(f, r.params, &r.lr, &r.steps, 1024.0).iter().zip(&r.loss) {
            inside += usize::from(p.lo <= y && y <= p.hi);
            all += 1;
        }
    }
    inside as f64 / all as f64
}

#[test]
fn predicted_bands_cover_held_out_run_lengths_whose_runs_sit_off_the_law() {
    // Real runs sit off any smooth law by a level of their own (architecture, seed, data
    // order): here 1% per run, plus 0.2% per evaluation. Fitted on two WSD lengths per size,
    // the law predicts the third; its band must hold the held-out curves about as often as it
    // claims. The refits' spread alone (the band before `residual_rms`) held about 60% to 80%
    // of such points on the development sweep.
    let mut rng = Rng::from_state(11);
    let sizes = [1e5, 1.6e5, 2.5e5, 4e5, 6.3e5, 1e6];
    let run = |n: f64, steps: usize, rng: &mut Rng| {
        let lr = schedule("wsd", steps, 1e-2);
        let evals = even_steps(steps as u64, 30);
        let level = 1.0 + 0.01 * rng.normal();
        let loss = predict(&truth(), n, &lr, &evals).iter().map(|l| l * level * (1.0 + 2e-3 * rng.normal())).collect();
        CurveRun { run: format!("wsd-{n}-{steps}"), params: n, tokens_per_step: 1024.0, lr, steps: evals, loss }
    };
    let mut train = Vec::new();
    let mut held = Vec::new();
    for &n in &sizes {
        train.push(run(n, 1000, &mut rng));
        train.push(run(n, 2000, &mut rng));
        held.push(run(n, 4000, &mut rng));
    }
    let f = fit(&train, 40, 0).expect("fit");
    assert!(
        (0.006..0.02).contains(&f.residual_rms),
        "residual RMS {} should be near the runs' 1% level scatter",
        f.residual_rms
    );
    let coverage = |f: &CurveFit| coverage(f, &held);
    let with = coverage(&f);
    let without = coverage(&CurveFit { residual_rms: 1e-12, ..f.clone() });
    eprintln!("coverage of held-out points: {with:.2} with the run-level part, {without:.2} with the refits alone");
    assert!(with >= 0.8, "band held {with:.2} of held-out points");
    assert!(without < with, "the run-level part must widen the band");
}

/// Runs whose curves leave the law's form past `flatten_at` steps: the loss stops falling as
/// fast as the law says, 8% above it per e-fold of steps past that point (on real text, fitted
/// on 0.5M to 2M tokens, the law predicted the 4M-token curves 7.5% too low with 3 to 9
/// evaluations per run, and still 2.4% with an evaluation every 30 steps). 0.2% noise per
/// evaluation.
fn flattening_run(n: f64, steps: usize, flatten_at: f64, rng: &mut Rng) -> CurveRun {
    let lr = schedule("wsd", steps, 1e-2);
    let evals = even_steps(steps as u64, 30);
    let law = predict(&truth(), n, &lr, &evals);
    let loss = law
        .iter()
        .zip(&evals)
        .map(|(l, &s)| l * (1.0 + 0.08 * (s as f64 / flatten_at).ln().max(0.0)) * (1.0 + 2e-3 * rng.normal()))
        .collect();
    CurveRun { run: format!("flat-{n}-{steps}"), params: n, tokens_per_step: 1024.0, lr, steps: evals, loss }
}

#[test]
fn the_curve_rollout_widens_bands_where_held_out_lengths_leave_the_law() {
    // Three lengths per size are fitted (500, 1,000, 2,000 steps), the fourth (4,000) is held
    // out; the curves leave the law's form from 500 steps on, more the longer they run. The
    // rollout refits on the shorter runs and predicts the longer ones, sees the misses grow,
    // and widens bands at each point's distance from the sweep: the held-out curves must then
    // sit inside about as often as claimed, while the band without the rollout (the refits
    // and the runs' scatter, both measured inside the sweep) misses their late points
    // (measured: 0.93 of the held-out points inside with the rollout, 0.56 without).
    let mut rng = Rng::from_state(5);
    let sizes = [1e5, 2e5, 4e5, 8e5];
    let mut train = Vec::new();
    let mut held = Vec::new();
    for &n in &sizes {
        for steps in [500, 1000, 2000] {
            train.push(flattening_run(n, steps, 500.0, &mut rng));
        }
        held.push(flattening_run(n, 4000, 500.0, &mut rng));
    }
    let f = fit_with_rollout(&train, 20, 0).expect("fit");
    let r = f.rollout.as_ref().expect("three lengths per size leave a rollout");
    assert!(r.rollout.by_factor.len() >= 2, "k = 2 and 4: {:?}", r.rollout.by_factor);
    assert!(r.rollout.by_factor.iter().all(|s| s.abs_err95 > 0.005), "misses measured: {:?}", r.rollout.by_factor);
    // At k = 4 only the 500-step runs are fitted, one length per size: the summary says what
    // such a fit cannot see; at k = 2 (500 and 1,000 steps) it is not said.
    assert_eq!(r.one_length, vec![4.0], "{:?}", r.rollout.by_factor);
    assert!(r.summary().contains("at k = 4, the fitted runs have one run length per model size"), "{}", r.summary());
    let coverage = |f: &CurveFit| coverage(f, &held);
    let with = coverage(&f);
    let without = coverage(&CurveFit { rollout: None, ..f.clone() });
    eprintln!("held-out length: {with:.2} of points inside with the rollout, {without:.2} without");
    assert!(with >= 0.85 && without < 0.7, "with {with:.2}, without {without:.2}");
    // Inside the sweep nothing widens: a fitted run's own points get the same band.
    let t = &train[train.len() - 1];
    let a = predict_curve(&f, t.params, &t.lr, &t.steps, 1024.0);
    let b = predict_curve(&CurveFit { rollout: None, ..f.clone() }, t.params, &t.lr, &t.steps, 1024.0);
    assert_eq!(a, b);
    // Distance: along a size's own curve relative to its longest run, and in compute.
    let longest = 2000.0 * 1024.0;
    assert!((r.distance(4e5, 2.0 * longest, false) - 2.0).abs() < 1e-9);
    assert!((r.distance(3e5, longest, false) - 1.0).abs() < 1e-9, "sizes between trained ones interpolate");
    assert!(r.distance(8e6, longest, false) > 9.9, "ten times the largest model at its longest run: 10x the compute");
    // At peak learning rate the law saw each size only up to its longest run's decay start
    // (80% of it): a point there at the longest run's length is 1.25x away.
    let stable = r.longest_at_peak.iter().find(|s| s.0 == 4e5).expect("size 4e5 has points at peak").1;
    assert!((0.75..0.85).contains(&(stable / longest)), "furthest point at peak {stable} of {longest}");
    assert!(r.distance(4e5, longest, true) > 1.15);
}

#[test]
fn a_target_decay_far_beyond_the_fitted_ones_is_stated() {
    // Fitted runs whose WSD decays lowered the loss by 5%; a predicted curve whose decay takes
    // 30% off is flagged, one taking 8% off is not (within 2x of what was seen).
    let lr = schedule("wsd", 1000, 1e-2);
    let steps: Vec<u64> = (1..=10).map(|i| i * 100).collect();
    let loss: Vec<f64> =
        steps.iter().map(|&s| if s <= 800 { 2.0 } else { 2.0 - 0.1 * (s - 800) as f64 / 200.0 }).collect();
    let runs = vec![CurveRun { run: "a".into(), params: 1e5, tokens_per_step: 1.0, lr: lr.clone(), steps, loss }];
    let curve = |gain: f64| -> Vec<CurvePoint> {
        (1..=10u64)
            .map(|i| {
                let s = i * 100;
                let l = if s <= 800 { 1.5 } else { 1.5 * (1.0 - gain * (s - 800) as f64 / 200.0) };
                CurvePoint { step: s, tokens: s as f64, lr: lr[s as usize - 1], loss: l, lo: l, hi: l }
            })
            .collect()
    };
    let w = decay_extrapolation_warning(&runs, &curve(0.3)).expect("30% against 5% is stated");
    assert!(w.contains("by 30%") && w.contains("more than 5%") && w.contains("not a result"), "{w}");
    assert!(decay_extrapolation_warning(&runs, &curve(0.08)).is_none());
    // Without a decay in the fitted runs there is nothing to compare with.
    let flat = vec![CurveRun { lr: vec![1e-2; 1000], ..runs[0].clone() }];
    assert!(decay_extrapolation_warning(&flat, &curve(0.3)).is_none());
}
