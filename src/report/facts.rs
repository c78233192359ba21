//! Everything the report says, gathered once from the folder's files (results frame, fit.json,
//! sweep copy) before anything is rendered: each run's evaluation curve, the recommendation,
//! the trust numbers and warnings, and the provenance line.

use super::headline::{self, Headline, ReportOptions};
use super::runs::{run_curves, RunCurve};
use crate::data;
use crate::fit::{isoflop::IsoflopFit, FitReport};
use crate::spec::config::{Builtin, Sweep};
use crate::store::SweepDir;
use anyhow::Result;
use polars::prelude::*;
use std::collections::BTreeSet;

/// Everything the report renders.
pub struct Facts<'a> {
    pub sweep: &'a Sweep,
    pub fit: &'a FitReport,
    /// Finished runs sorted by final 6ND compute.
    pub runs: Vec<RunCurve>,
    pub excluded: Vec<String>,
    pub sizes: usize,
    /// Largest run's 6ND compute.
    pub max_c6: f64,
    pub headline: Option<Headline>,
    /// Known entropy floors of the built-in domains, and the mixture's (weighted by the sweep's mix).
    pub floors: Vec<(String, f64)>,
    pub mix_floor: Option<f64>,
    /// A provable lower bound on the mixture's loss: the exact floors (Markov sources) weighted
    /// by the mix, the others counted as 0 (the grammar's floor is only an upper bound).
    pub mix_floor_lb: Option<f64>,
    pub isoflop: Option<IsoflopFit>,
    pub warnings: Vec<String>,
    pub provenance: String,
    /// `windtunnel mix-check`'s held-out runs (mix_check.json), if it was run.
    pub mix_check: Option<crate::store::mix_check::MixCheck>,
    /// Whether the sweep determines the target (fit.json's `verdict`, or judged here for a
    /// fit.json written before verdicts existed).
    pub verdict: Option<crate::fit::Verdict>,
    /// `windtunnel check`'s calibration ledger (check.json), if it was run.
    pub check: Option<crate::fit::calibration::Ledger>,
}

impl<'a> Facts<'a> {
    pub fn gather(
        dir: &SweepDir,
        sweep: &'a Sweep,
        fit: &'a FitReport,
        df: &DataFrame,
        excluded: &[String],
        opts: &ReportOptions,
    ) -> Result<Facts<'a>> {
        let runs = run_curves(df)?;
        let sizes = runs.iter().map(|r| r.params as i64).collect::<BTreeSet<_>>().len();
        let max_c6 = runs.iter().map(|r| r.c6()).fold(0.0, f64::max);
        let headline = fit.target.as_ref().map(|t| headline::recommend(t, fit, sweep, &runs, opts));
        let (floors, mix_floor, mix_floor_lb) = entropy_floors(sweep);
        let isoflop = fit.laws.isoflop.clone();
        let mix_check = crate::store::read_json(&dir.mix_check_json()).ok();
        let points: Vec<(f64, f64)> = runs.iter().map(|r| (r.params, r.tokens)).collect();
        let verdict =
            Some(fit.verdict.clone().unwrap_or_else(|| crate::fit::suggest::judge(fit, &points, mix_floor, None)));
        let (check, check_warnings) = read_ledger(dir, &sweep.name);
        let mut f = Facts {
            verdict,
            check,
            mix_check,
            sweep,
            fit,
            runs,
            excluded: excluded.to_vec(),
            sizes,
            max_c6,
            headline,
            floors,
            mix_floor,
            mix_floor_lb,
            isoflop,
            warnings: Vec::new(),
            provenance: provenance(dir, sweep),
        };
        f.warnings = f.collect_warnings();
        f.warnings.extend(check_warnings);
        Ok(f)
    }

    /// Target compute (6ND) over the largest run's 6ND.
    pub fn extrapolation(&self) -> Option<f64> {
        self.fit.target.as_ref().map(|t| t.flops / self.max_c6).filter(|x| x.is_finite())
    }

    fn collect_warnings(&self) -> Vec<String> {
        let mut w: Vec<String> = self.fit.warnings.clone();
        if let Some(iso) = &self.isoflop {
            for x in &iso.warnings {
                w.push(format!("IsoFLOP: {x}"));
            }
        }
        if self.sizes < 5 {
            w.push(format!(
                "only {} distinct model sizes; at least 5 are recommended (Choshen et al. 2024)",
                self.sizes
            ));
        }
        if let Some(bt) = &self.fit.backtest {
            if bt.are > 0.05 {
                w.push(format!(
                    "backtest error {:.1}% exceeds 5%: the law does not predict its own largest runs well",
                    bt.are * 100.0
                ));
            }
        }
        for id in &self.excluded {
            w.push(format!("run {id} diverged and is excluded from the fit"));
        }
        if let Some(why) = self.fit.chinchilla_skipped() {
            w.push(format!("the chinchilla law was not fitted ({why}): no recommendation, frontier or backtest"));
        }
        let e = self.fit.params.map_or(f64::NAN, |p| p.e);
        match (self.mix_floor_lb, self.mix_floor) {
            (Some(lb), _) if e < lb => w.push(format!(
                "fitted E = {} is below {lb:.4}, a lower bound on the mixture's entropy: the law's asymptote \
                 is not physical",
                super::g(e)
            )),
            (_, Some(fl)) if e < fl * 0.98 => w.push(format!(
                "fitted E = {} is below the mixture's entropy-floor estimate {fl:.4} (exact for Markov sources, an \
                 upper bound for the grammar)",
                super::g(e)
            )),
            _ => {}
        }
        if let (Some(lb), Some(t)) = (self.mix_floor_lb, &self.fit.target) {
            if t.loss < lb {
                w.push(format!(
                    "the predicted target loss {:.4} is below {lb:.4}, a lower bound on the mixture's \
                     entropy: not achievable",
                    t.loss
                ));
            }
        }
        if self.sweep.runs.len() > self.runs.len() + self.excluded.len() {
            w.push(format!(
                "{} of the sweep's {} runs have not finished; the fit uses the {} that have",
                self.sweep.runs.len() - self.runs.len() - self.excluded.len(),
                self.sweep.runs.len(),
                self.runs.len()
            ));
        }
        w
    }
}

/// check.json, if there is one, validated against the check runs' folders and its own laws
/// (`Ledger::validate`), with a warning per entry left out or corrected. The folder is the
/// ledger's `runs_dir`, or `<sweep>-check` beside DIR when that is gone (a moved results
/// folder). A ledger that does not parse is said, not silently dropped.
pub fn read_ledger(dir: &SweepDir, sweep: &str) -> (Option<crate::fit::calibration::Ledger>, Vec<String>) {
    use crate::fit::calibration::{Ledger, RunState};
    let path = dir.check_json();
    if !path.exists() {
        return (None, Vec::new());
    }
    let mut l: Ledger = match crate::store::read_json(&path) {
        Ok(l) => l,
        Err(e) => return (None, vec![format!("check.json is not read (no Calibration section): {e:#}")]),
    };
    if l.held_out {
        // An imported ladder's held-out runs live in checks.parquet, not in run folders: each
        // entry is validated against its run's final loss there.
        let finals: Vec<super::runs::RunCurve> = crate::store::frame::read_frame(&dir.checks_parquet())
            .ok()
            .and_then(|df| super::runs::run_curves(&df).ok())
            .unwrap_or_default();
        let warnings = l.validate(|id| match finals.iter().find(|r| r.run_id == id) {
            Some(r) => RunState::Done(r.loss),
            None => RunState::Missing,
        });
        return (Some(l), warnings);
    }
    let given = SweepDir::at(std::path::Path::new(&l.runs_dir));
    let runs = if given.runs_dir().is_dir() {
        given
    } else {
        let abs = std::path::absolute(&dir.root).unwrap_or_else(|_| dir.root.clone());
        SweepDir::new(abs.parent().unwrap_or(std::path::Path::new("/")), &format!("{sweep}-check"))
    };
    let warnings = l.validate(|id| {
        let rd = runs.run(id);
        if !rd.path.is_dir() {
            return RunState::Missing;
        }
        match rd.read_evals().ok().and_then(|e| e.last().map(|x| x.loss)) {
            Some(loss) if rd.is_done() => RunState::Done(loss),
            _ => RunState::NotDone,
        }
    });
    (Some(l), warnings)
}

/// Floors of the built-in domains, the floor of the sweep's mixture and its provable lower
/// bound (when every domain is built in and all runs share one mix).
pub(crate) fn entropy_floors(sweep: &Sweep) -> (Vec<(String, f64)>, Option<f64>, Option<f64>) {
    let Some(first) = sweep.runs.first() else { return (Vec::new(), None, None) };
    let floors: Vec<(String, f64, bool)> = first
        .domains
        .iter()
        .filter_map(|d| d.kind.builtin().map(|b| (d.name.clone(), data::entropy_floor(b), b == Builtin::Markov)))
        .collect();
    let one_mix = sweep.runs.iter().all(|r| r.mix == first.mix);
    let ok = one_mix && floors.len() == first.domains.len() && !floors.is_empty();
    let w = |n: &str| first.mix.get(n).copied().unwrap_or(0.0);
    let mix = ok.then(|| floors.iter().map(|(n, f, _)| f * w(n)).sum());
    let lb = ok.then(|| floors.iter().filter(|x| x.2).map(|(n, f, _)| f * w(n)).sum::<f64>()).filter(|v| *v > 0.0);
    (floors.into_iter().map(|(n, f, _)| (n, f)).collect(), mix, lb)
}

/// windtunnel version, git commit, sweep file hash, backend and device, date (UTC).
fn provenance(dir: &SweepDir, sweep: &Sweep) -> String {
    let git = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    if let Ok(r) = crate::store::read_json::<crate::store::imported::Record>(&dir.import_json()) {
        return format!(
            "windtunnel {} | git {git} | imported by `windtunnel import` from manifest `{}` (blake3 {}): {} run file(s) \
             trained elsewhere | generated {}",
            env!("CARGO_PKG_VERSION"),
            r.manifest,
            r.manifest_blake3,
            r.files,
            utc_date(crate::store::now_unix())
        );
    }
    let hash = std::fs::read(dir.sweep_toml())
        .map(|b| blake3::hash(&b).to_hex()[..16].to_string())
        .unwrap_or_else(|_| "unknown".into());
    let device = match sweep.backend {
        crate::spec::config::Backend::Cpu => "cpu (burn flex)".to_string(),
        crate::spec::config::Backend::Cuda => "cuda (burn cuda, device 0)".to_string(),
    };
    format!(
        "windtunnel {} | git {git} | sweep file `{}` (blake3 {hash}) | backend {device} | generated {}",
        env!("CARGO_PKG_VERSION"),
        sweep.path,
        utc_date(crate::store::now_unix())
    )
}

/// "YYYY-MM-DD HH:MM:SS UTC" from unix seconds (civil-from-days, proleptic Gregorian).
pub fn utc_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}
