//! Tests of the public API (`fit_all`, `FitReport`, fit.json) end to end:
//! the Chinchilla reference fit, the shape of the JSON, target modes, input
//! errors, and the auxiliary laws.

use crate::fit::chinchilla::law::Law;
use crate::fit::chinchilla::reference::chinchilla_obs;
use crate::fit::{fit_all, FitOptions, FitReport, LawName, Obs};

fn obs(run: &str, n: f64, d: f64, l: f64) -> Obs {
    Obs::final_6nd(run, n, d, l)
}

fn quick() -> FitOptions {
    FitOptions { bootstrap: 0, backtest: false, ..FitOptions::default() }
}

#[test]
fn defaults_are_documented_ones() {
    let o = FitOptions::default();
    assert_eq!((o.bootstrap, o.backtest, o.seed), (1000, true, 0));
    let parsed: FitOptions = serde_json::from_str("{\"target_flops\": 1e21}").unwrap();
    assert_eq!(parsed.bootstrap, 1000);
}

#[test]
#[ignore = "needs ../shared/reference-data/chinchilla (Epoch's CSV; .ci/run runs it with --ignored)"]
fn chinchilla_report_has_every_field() {
    let points = chinchilla_obs();
    let opts = FitOptions { target_flops: Some(5.88e23), bootstrap: 200, seed: 1, ..FitOptions::default() };
    let rep = fit_all(&points, &opts).unwrap();
    assert!((rep.params.unwrap().alpha / 0.3473 - 1.0).abs() < 0.01);
    assert!(rep.objective <= 1.01830e-3);
    assert_eq!((rep.n_points, rep.law.as_str()), (240, "chinchilla"));
    let t = rep.target.unwrap();
    assert!((6.0 * t.n_opt * t.d_opt / t.flops - 1.0).abs() < 1e-12);
    assert!((rep.predict(t.n_opt, t.d_opt).unwrap() - t.loss).abs() < 1e-12);
    for k in ["E", "A", "B", "alpha", "beta", "n_opt", "d_opt", "tokens_per_param", "loss"] {
        let iv = rep.intervals[k];
        assert!(iv.lo < iv.hi, "{k} {iv:?}");
    }
    let bt = rep.backtest.as_ref().unwrap();
    assert_eq!(bt.points.len(), bt.held_out_runs.len());
    assert!(bt.are < 0.05, "backtest ARE {}", bt.are);
    let json = serde_json::to_value(&rep).unwrap();
    for k in
        ["law", "params", "objective", "n_points", "target", "intervals", "backtest", "warnings", "laws", "n_sizes"]
    {
        assert!(json.get(k).is_some(), "fit.json lacks {k}");
    }
    for k in ["E", "A", "B", "alpha", "beta"] {
        assert!(json["params"].get(k).is_some(), "params lacks {k}");
    }
    for k in ["flops", "n_opt", "d_opt", "loss"] {
        assert!(json["target"].get(k).is_some(), "target lacks {k}");
    }
    assert!(json["intervals"]["E"].get("lo").is_some());
    let back: FitReport = serde_json::from_value(json).unwrap();
    assert_eq!(back.params, rep.params);
}

/// Noise-free points from a law on a 4 x 4 grid.
fn grid_points(law: &Law) -> Vec<Obs> {
    let mut v = Vec::new();
    for i in 0..4 {
        for j in 0..4 {
            let n = 1e7 * 10f64.powi(i);
            let d = 1e9 * 5f64.powi(j);
            v.push(obs(&format!("r{i}{j}"), n, d, law.predict(n, d)));
        }
    }
    v
}

#[test]
fn target_params_gives_the_compute_optimal_data() {
    let law = Law { e: 1.8, a: 480.0, b: 2100.0, alpha: 0.35, beta: 0.37 };
    let opts = FitOptions { target_params: Some(7e10), ..quick() };
    let rep = fit_all(&grid_points(&law), &opts).unwrap();
    let t = rep.target.unwrap();
    assert_eq!(t.n_opt, 7e10);
    assert!((t.flops / (6.0 * 7e10 * t.d_opt) - 1.0).abs() < 1e-12);
    let fitted_n = rep.params.unwrap().n_opt(t.flops);
    assert!((fitted_n / 7e10 - 1.0).abs() < 1e-9);
    assert!((rep.params.unwrap().alpha - 0.35).abs() < 1e-4, "{:?}", rep.params);
}

#[test]
fn bad_requests_are_errors() {
    let law = Law { e: 1.8, a: 480.0, b: 2100.0, alpha: 0.35, beta: 0.37 };
    let pts = grid_points(&law);
    let both = FitOptions { target_flops: Some(1e21), target_params: Some(1e9), ..quick() };
    assert!(fit_all(&pts, &both).is_err());
    let neg = FitOptions { target_flops: Some(-1.0), ..quick() };
    assert!(fit_all(&pts, &neg).is_err());
    let e = "isoflops".parse::<LawName>().unwrap_err();
    assert!(
        e.contains("chinchilla, chinchilla_varpro, isoflop, envelope, loss_vs_compute, lr_vs_compute, batch_vs_compute, batch_vs_loss"),
        "{e}"
    );
    let mut nan = pts.clone();
    nan[3].loss = f64::NAN;
    assert!(fit_all(&nan, &quick()).unwrap_err().to_string().contains("loss"));
}

/// Data that cannot support the chinchilla law (one size, too few runs, no final points) is
/// not an error: the law is skipped with its reason, and the other laws are still fitted.
#[test]
fn an_unfittable_chinchilla_is_skipped_not_fatal() {
    let law = Law { e: 1.8, a: 480.0, b: 2100.0, alpha: 0.35, beta: 0.37 };
    let pts = grid_points(&law);
    let one_n: Vec<Obs> = (0..6).map(|j| obs(&format!("n{j}"), 1e7, 1e9 * (j + 1) as f64, 3.0)).collect();
    let few: Vec<Obs> = pts.iter().take(4).cloned().collect();
    let mut none_final = pts.clone();
    none_final.iter_mut().for_each(|o| o.is_final = false);
    let opts = FitOptions { laws: vec![LawName::LossVsCompute], target_flops: Some(1e21), ..FitOptions::default() };
    for (data, why) in [(&one_n, "distinct model sizes"), (&few, "at least 5"), (&none_final, "is_final")] {
        let rep = fit_all(data, &opts).unwrap();
        let reason = rep.chinchilla_skipped().unwrap_or_else(|| panic!("not skipped: {rep:?}"));
        assert!(reason.contains(why), "{reason}");
        assert!(rep.params.is_none() && rep.target.is_none() && rep.intervals.is_empty() && rep.backtest.is_none());
        assert!(rep.predict(1e9, 2e10).is_none());
        // The other law is still there (or skipped with its own reason), and fit.json round-trips.
        assert!(rep.laws.loss_vs_compute.is_some() || rep.skipped.contains_key("loss_vs_compute"));
        let json = serde_json::to_string(&rep).unwrap();
        let back: FitReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back.skipped, rep.skipped);
    }
    // A fit.json written before `skipped` existed still reads.
    let mut old = serde_json::to_value(fit_all(&pts, &quick()).unwrap()).unwrap();
    old.as_object_mut().unwrap().remove("skipped");
    let back: FitReport = serde_json::from_value(old).unwrap();
    assert!(back.params.is_some() && back.skipped.is_empty());
}

#[test]
fn auxiliary_laws_land_in_the_report() {
    // Training curves (all points) of 14 sizes plus an lr/batch per run.
    let mut pts = crate::fit::envelope::tests::curves();
    for o in pts.iter_mut() {
        o.lr = Some(1e-3);
        o.batch = Some(256.0);
    }
    let opts = FitOptions {
        laws: vec![LawName::Chinchilla, LawName::Envelope, LawName::LossVsCompute, LawName::Isoflop],
        ..quick()
    };
    let rep = fit_all(&pts, &opts).unwrap();
    assert!(rep.laws.envelope.is_some() && rep.laws.loss_vs_compute.is_some());
    assert!(!rep.laws.as_json().contains_key("chinchilla"));
    assert!(rep.laws.envelope.as_ref().unwrap().n_opt.exponent.is_finite());
    // All final points share one budget here, so isoflop cannot fit: that is
    // a warning, not a failure of the whole report.
    assert!(rep.laws.isoflop.is_none());
    assert!(rep.warnings.iter().any(|w| w.starts_with("law isoflop")), "{:?}", rep.warnings);
}

#[test]
fn varpro_cross_check_agrees_with_the_grid_fit() {
    let law = Law { e: 1.8, a: 480.0, b: 2100.0, alpha: 0.35, beta: 0.37 };
    let opts = FitOptions { laws: vec![LawName::ChinchillaVarpro], ..quick() };
    let rep = fit_all(&grid_points(&law), &opts).unwrap();
    let v = rep.laws.chinchilla_varpro.unwrap().params;
    for (a, b) in
        [(v.e, rep.params.unwrap().e), (v.alpha, rep.params.unwrap().alpha), (v.beta, rep.params.unwrap().beta)]
    {
        assert!((a / b - 1.0).abs() < 1e-3, "varpro {v:?} vs L-BFGS {:?}", rep.params);
    }
}

#[test]
fn a_learning_rate_sweep_is_fitted_on_each_sizes_best_run() {
    // Every (N, D) trained at three learning rates; two of them land 5% and 20% worse.
    let law = Law { e: 1.8, a: 480.0, b: 2100.0, alpha: 0.35, beta: 0.37 };
    let mut pts = Vec::new();
    for o in grid_points(&law) {
        for (k, worse) in [(0, 1.05), (1, 1.0), (2, 1.2)] {
            let mut p = o.clone();
            p.run = format!("{}-lr{k}", o.run);
            p.loss *= worse;
            p.lr = Some(10f64.powi(-k - 2));
            pts.push(p);
        }
    }
    let opts = FitOptions { backtest: true, ..quick() };
    let rep = fit_all(&pts, &opts).unwrap();
    assert_eq!(rep.n_points, 16);
    assert!(
        (rep.params.unwrap().alpha - 0.35).abs() < 1e-4 && (rep.params.unwrap().e - 1.8).abs() < 1e-3,
        "{:?}",
        rep.params
    );
    assert!(rep.warnings.iter().any(|w| w.starts_with("32 run(s) share their (N, D)")), "{:?}", rep.warnings);
    assert!(rep.backtest.unwrap().are < 1e-3);
}

/// data_mixing is fitted by `fit_all` from the per-domain data in `FitOptions::mixing`; without
/// it (a CSV's rows), or when the caller could not read it, the law is skipped with the reason.
#[test]
fn data_mixing_without_its_per_domain_data_is_skipped() {
    let law = Law { e: 1.8, a: 480.0, b: 2100.0, alpha: 0.35, beta: 0.37 };
    let opts = FitOptions { laws: vec![LawName::DataMixing], ..quick() };
    let rep = fit_all(&grid_points(&law), &opts).unwrap();
    assert!(rep.laws.data_mixing.is_none() && rep.params.is_some());
    assert!(rep.skipped["data_mixing"].contains("per-domain"), "{:?}", rep.skipped);
    let unread = FitOptions { mixing: Some(Err("runs.parquet has no column loss_a".into())), ..opts };
    let rep = fit_all(&grid_points(&law), &unread).unwrap();
    assert_eq!(rep.skipped["data_mixing"], "runs.parquet has no column loss_a");
}
