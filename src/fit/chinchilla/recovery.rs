//! Synthetic recovery property test: data drawn from known laws on an N x D
//! grid with seeded multiplicative noise go through `fit_all`; the point
//! estimates must be close to the truth and the bootstrap 95% intervals must
//! cover it (at most one miss across all parameters of all laws).

use crate::fit::chinchilla::law::Law;
use crate::fit::{fit_all, FitOptions, Obs};
use crate::rng::Rng;

/// Noise: L * exp(sigma * z), comparable to the Chinchilla digitisation error.
const SIGMA: f64 = 0.01;

fn truths() -> [Law; 4] {
    let l = |e, a, b, alpha, beta| Law { e, a, b, alpha, beta };
    [
        l(1.8, 480.0, 2100.0, 0.35, 0.37),
        l(1.69, 406.4, 410.7, 0.34, 0.28),
        l(2.5, 200.0, 800.0, 0.30, 0.30),
        l(1.2, 1000.0, 5000.0, 0.45, 0.40),
    ]
}

fn sample(law: &Law, seed: u64) -> Vec<Obs> {
    let mut rng = Rng::from_state(seed);
    let mut v = Vec::new();
    for i in 0..7 {
        for j in 0..7 {
            let n = 1e7 * (300f64).powf(i as f64 / 6.0);
            let d = 2e8 * (1000f64).powf(j as f64 / 6.0);
            v.push(Obs::final_6nd(format!("n{i}-d{j}"), n, d, law.predict(n, d) * (SIGMA * rng.normal()).exp()));
        }
    }
    v
}

#[test]
fn known_laws_are_recovered_and_covered() {
    let opts = FitOptions { bootstrap: 200, seed: 11, backtest: false, ..FitOptions::default() };
    let mut misses = Vec::new();
    for (k, truth) in truths().iter().enumerate() {
        let rep = fit_all(&sample(truth, 100 + k as u64), &opts).unwrap();
        let p = rep.params.expect("chinchilla fitted");
        println!("law {k}: truth {truth:?}\n        fit   {p:?}\n        warnings {:?}", rep.warnings);
        for (name, t, est) in [
            ("E", truth.e, p.e),
            ("A", truth.a, p.a),
            ("B", truth.b, p.b),
            ("alpha", truth.alpha, p.alpha),
            ("beta", truth.beta, p.beta),
        ] {
            let iv = rep.intervals[name];
            println!("        {name:<5} true {t:<8} est {est:<10.4} 95% [{:.4}, {:.4}]", iv.lo, iv.hi);
            if !iv.contains(t) {
                misses.push(format!("law {k} {name}"));
            }
        }
        assert!((p.alpha - truth.alpha).abs() < 0.05, "law {k} alpha {}", p.alpha);
        assert!((p.beta - truth.beta).abs() < 0.05, "law {k} beta {}", p.beta);
        assert!((p.e / truth.e - 1.0).abs() < 0.06, "law {k} E {}", p.e);
        // A and B trade off against the exponents; a factor 2 is "close".
        assert!((p.a / truth.a).ln().abs() < 2f64.ln(), "law {k} A {}", p.a);
        assert!((p.b / truth.b).ln().abs() < 2f64.ln(), "law {k} B {}", p.b);
    }
    assert!(misses.len() <= 1, "intervals missed the truth: {misses:?}");
}
