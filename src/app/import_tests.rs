//! `windtunnel import` and `predict` on a small ladder written here from a known Chinchilla
//! law (W&B-style column names, one CSV per run, a sizes JSON), with malformed runs beside the
//! good ones; and, ignored unless ../shared is present, the OLMo ladder's manifest.

use super::import::import;
use super::predict::predict;
use crate::fit::{FitReport, Law};
use crate::store::{self, SweepDir};
use std::path::{Path, PathBuf};

/// The law the fixture's runs follow exactly (C4) and a second set 10% above it.
const LAW: Law = Law { e: 1.8, a: 400.0, b: 410.0, alpha: 0.34, beta: 0.28 };
const SIZES: [(&str, f64); 6] = [("s1", 2e7), ("s2", 4e7), ("s3", 8e7), ("s4", 1.6e8), ("s5", 3.2e8), ("s6", 6.4e8)];
const TPP: [f64; 5] = [5.0, 10.0, 20.0, 40.0, 80.0];
const HEADER: &str = "_step,throughput/total_tokens,eval/c4/CrossEntropyLoss,eval/pile/CrossEntropyLoss";

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("wt-import-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(p.join("runs")).unwrap();
    p
}

/// A small deterministic noise, +-0.2%, so the bootstrap has something to resample.
fn noise(i: usize) -> f64 {
    1.0 + 0.002 * ((i as f64 * 12.9898).sin() * 43758.5453).fract().abs().mul_add(2.0, -1.0)
}

/// Rows of a run of N params and D tokens: four evaluations at a quarter of D each.
fn rows(n: f64, d: f64, salt: usize) -> Vec<(i64, f64, f64)> {
    (1..=4)
        .map(|q| {
            let t = d * q as f64 / 4.0;
            (q as i64 * 100, t, LAW.predict(n, t) * noise(salt * 7 + q))
        })
        .collect()
}

fn csv(rows: &[(i64, f64, f64)]) -> String {
    let mut s = format!("{HEADER}\n");
    for (step, t, l) in rows {
        s += &format!("{step},{t},{l},{}\n", l * 1.1);
    }
    s
}

/// The fixture: 25 fitted runs (s1 to s5 at 5 to 80 tokens per parameter), two checks (s6) and
/// three malformed runs; returns the manifest path.
fn ladder(root: &Path) -> PathBuf {
    let sizes: serde_json::Map<String, serde_json::Value> =
        SIZES.iter().map(|(k, n)| (k.to_string(), serde_json::json!({ "n": n, "d_model": 64 }))).collect();
    std::fs::write(root.join("sizes.json"), serde_json::Value::Object(sizes).to_string()).unwrap();
    let mut salt = 0;
    for (k, n) in &SIZES[..5] {
        for tpp in TPP {
            salt += 1;
            std::fs::write(root.join(format!("runs/{k}-{tpp}.csv")), csv(&rows(*n, tpp * n, salt))).unwrap();
        }
    }
    for tpp in [10.0, 20.0] {
        let n = SIZES[5].1;
        std::fs::write(root.join(format!("runs/s6-{tpp}.csv")), csv(&rows(n, tpp * n, 99))).unwrap();
    }
    // Malformed: a NaN loss, a repeated step, tokens that go backwards.
    let mut r = rows(4e7, 4e8, 1);
    r[2].2 = f64::NAN;
    std::fs::write(root.join("runs/s2-nan.csv"), csv(&r)).unwrap();
    let mut r = rows(8e7, 8e8, 2);
    r[2].0 = r[1].0;
    std::fs::write(root.join("runs/s3-dup.csv"), csv(&r)).unwrap();
    let mut r = rows(1.6e8, 1.6e9, 3);
    r[3].1 = r[1].1 * 0.5;
    std::fs::write(root.join("runs/s4-back.csv"), csv(&r)).unwrap();
    let m = root.join("ladder.toml");
    let text = format!(
        r#"[import]
name = "fixture"
files = "{}/runs/*.csv"
name_pattern = "<size>-<k>"

[columns]
step = "_step"
tokens = "throughput/total_tokens"
loss = "eval/c4/CrossEntropyLoss"
losses = "eval/*/CrossEntropyLoss"

[params]
sizes = "{}/sizes.json"
width_field = "d_model"

[runs]
checks = ["s6-*"]

[fit]
bootstrap = 100
bootstrap_other = 50
"#,
        root.display(),
        root.display()
    );
    std::fs::write(&m, text).unwrap();
    m
}

#[test]
fn a_fixture_ladder_imports_with_its_bad_runs_named_and_predicts_the_known_law() {
    let root = tmp("ladder");
    let m = ladder(&root);
    let out = import(&m, &root.join("results")).unwrap();
    let r = &out.record;
    assert_eq!((r.imported.len(), r.files), (25, 30));
    assert_eq!(r.checks, vec!["s6-10".to_string(), "s6-20".to_string()]);
    assert_eq!((r.primary.as_str(), r.names.losses.clone()), ("c4", vec!["pile".to_string()]));
    let ex: Vec<(&str, &str)> = r.excluded.iter().map(|x| (x.run.as_str(), x.reason.as_str())).collect();
    assert_eq!(
        ex,
        vec![
            ("s2-nan", "NaN loss at step 300 (row 3 (line 4), column `eval/c4/CrossEntropyLoss`)"),
            ("s3-dup", "step 200 appears twice (row 2 (line 3) and row 3 (line 4))"),
            (
                "s4-back",
                "tokens go backwards at step 400 (row 4 (line 5), column `throughput/total_tokens`): 400000000 after \
                 1200000000 at step 300"
            ),
        ]
    );
    assert!(out.summary.contains("excluded s3-dup"), "{}", out.summary);
    // runs.parquet has every evaluation of the fitted runs, in the trained frame's columns.
    let dir = SweepDir::at(&out.dir.root);
    let df = store::frame::read_frame(&dir.runs_parquet()).unwrap();
    assert_eq!(df.height(), 25 * 4);
    for c in ["run_id", "step", "params", "tokens", "flops", "loss", "is_final", "loss_pile", "width"] {
        assert!(df.column(c).is_ok(), "no column {c}");
    }
    // The fit recovers the law from 25 final points with 0.2% noise.
    let p = out.fit.params.unwrap();
    let (n, d) = (1e9, 2e10);
    assert!((p.predict(n, d) / LAW.predict(n, d) - 1.0).abs() < 0.01, "{p:?}");
    assert!(
        out.fit.warnings.iter().any(|w| w.contains("run s2-nan") && w.contains("NaN loss")),
        "{:?}",
        out.fit.warnings
    );
    // The checks are scored in check.json and the report's Calibration section.
    let l: crate::fit::calibration::Ledger = store::read_json(&dir.check_json()).unwrap();
    assert!(l.held_out && l.entries.len() == 2);
    for e in &l.entries {
        assert!(e.rel_err.unwrap().abs() < 0.01 && e.inside == Some(true), "{}", e.line());
    }
    let md = std::fs::read_to_string(dir.report_md()).unwrap();
    assert!(md.contains("## Calibration") && md.contains("`s6-20`") && md.contains("held out of the fit"), "{md}");
    assert!(md.contains("imported by `windtunnel import`"));
    // predict: both sets, near the known law, each inside its interval.
    let o = predict(&dir.root, Some(n), Some(d), None).unwrap();
    let sets: Vec<&str> = o.predictions.iter().map(|p| p.set.as_str()).collect();
    assert_eq!(sets, vec!["c4", "pile"]);
    for (sp, scale) in o.predictions.iter().zip([1.0, 1.1]) {
        let truth = scale * LAW.predict(n, d);
        let iv = sp.p.interval.expect("a sound fit has an interval");
        assert!((sp.p.loss / truth - 1.0).abs() < 0.01 && iv.contains(truth), "{sp:?} vs {truth}");
    }
    // --flops alone: the law's compute-optimal split.
    let o = predict(&dir.root, None, None, Some(1e21)).unwrap();
    let s = o.split.unwrap();
    assert!((s.n_opt / p.n_opt(1e21) - 1.0).abs() < 1e-9 && s.n_opt_interval.is_some());
    assert_eq!(s.determined, Some(s.reasons.is_empty()));
    // `fit DIR` and `report DIR` read the imported folder as a sweep folder.
    let (sweep, _, _, _) = super::sweep::load_dir(&dir.root).unwrap();
    assert_eq!((sweep.name.as_str(), sweep.runs.len()), ("fixture", 0));
    super::report::report_dir(&dir.root, &crate::report::ReportOptions::default()).unwrap();
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn files_the_manifest_does_not_describe_are_errors_naming_file_row_and_column() {
    let root = tmp("bad");
    let m = ladder(&root);
    let f = root.join("runs/s1-5.csv");
    let good = std::fs::read_to_string(&f).unwrap();
    // A missing column.
    std::fs::write(&f, good.replace(",eval/c4/CrossEntropyLoss", ",eval/c4/loss")).unwrap();
    let e = format!("{:#}", import(&m, &root.join("results")).err().unwrap());
    let want = format!(
        "{}: missing column `eval/c4/CrossEntropyLoss` (named by the manifest); columns present: _step, \
         throughput/total_tokens, eval/c4/loss, eval/pile/CrossEntropyLoss",
        f.display()
    );
    assert_eq!(e, want);
    // A cell that is not a number.
    let mut lines: Vec<String> = good.lines().map(str::to_string).collect();
    let mut cells: Vec<String> = lines[2].split(',').map(str::to_string).collect();
    cells[1] = "abc".into();
    lines[2] = cells.join(",");
    std::fs::write(&f, lines.join("\n")).unwrap();
    let e = format!("{:#}", import(&m, &root.join("results")).err().unwrap());
    assert_eq!(
        e,
        format!("{}: column `throughput/total_tokens`, row 2 (line 3): \"abc\" is not a number", f.display())
    );
    std::fs::write(&f, good).unwrap();
    // A manifest error is located like a sweep file's.
    let text = std::fs::read_to_string(&m).unwrap().replace("step = \"_step\"", "step = 3");
    std::fs::write(&m, text).unwrap();
    let e = import(&m, &root.join("results")).err().unwrap().to_string();
    assert!(e.contains("ladder.toml:7:8") && e.contains("field `columns.step`"), "{e}");
    let _ = std::fs::remove_dir_all(&root);
}

/// A folder whose fit is degenerate (beta at its bound, the real-text failure): `predict`
/// prints the value, no interval, and why.
#[test]
fn predict_from_a_degenerate_fit_prints_no_interval() {
    let root = tmp("degenerate");
    let law = Law { e: 0.9, a: 30.0, b: 9.0, alpha: 0.3, beta: 0.1 };
    let fit = FitReport {
        params: Some(law),
        bootstrap_laws: (0..40).map(|i| Law { e: 0.9 + 0.001 * i as f64, ..law }).collect(),
        residual_quantiles: vec![0.0; 101],
        ..Default::default()
    };
    store::write_json_atomic(&SweepDir::at(&root).fit_json(), &fit).unwrap();
    let o = predict(&root, Some(1e6), Some(2e7), None).unwrap();
    let p = &o.predictions[0].p;
    assert!(p.interval.is_none() && (p.loss - law.predict(1e6, 2e7)).abs() < 1e-12, "{p:?}");
    let text = super::predict::render(&o);
    assert!(text.contains("NO interval: the fit is degenerate: beta = 0.100 is at the edge of its range"), "{text}");
    assert!(!text.contains("95% ["), "{text}");
    let json = serde_json::to_value(&o).unwrap();
    assert!(json["predictions"][0]["interval"].is_null(), "{json}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
#[ignore = "needs ../shared/reference-data/olmo-ladder"]
fn the_olmo_ladder_imports_and_scores_its_3b_checks() {
    let root = tmp("olmo");
    let out = import(Path::new("sweeps/olmo_ladder.toml"), &root).unwrap();
    let r = &out.record;
    assert_eq!((r.files, r.imported.len(), r.excluded.len()), (30, 20, 0));
    // In file order: `3B-1xC-rerun.csv` sorts before `3B-1xC.csv`.
    assert_eq!(r.checks, vec!["3B-10xC", "3B-1xC-rerun", "3B-1xC", "3B-2xC", "3B-5xC"]);
    let l: crate::fit::calibration::Ledger = store::read_json(&out.dir.check_json()).unwrap();
    assert_eq!(l.entries.len(), 5);
    for e in &l.entries {
        assert!(e.actual.is_some() && e.rel_err.unwrap().abs() < 0.05, "{}", e.line());
    }
    let md = std::fs::read_to_string(out.dir.report_md()).unwrap();
    assert!(md.contains("`3B-10xC`") && md.contains("held out of the fit"));
    println!("{}", out.summary);
    let _ = std::fs::remove_dir_all(&root);
}
