//! Loading the Chinchilla reference points (Epoch AI's digitisation of
//! Hoffmann et al.'s Figure 4) as `Obs`, through `fit::table`, and locating
//! that file for tests. The file itself lives in ../shared (beside the
//! repository) and is never copied into it; tests that need it fail, saying
//! where it was looked for, when it is absent (a skipped regression test would
//! pass without checking anything).

#[cfg(test)]
use crate::fit::chinchilla::objective::LogData;
use crate::fit::Obs;
use anyhow::Result;
use std::path::{Path, PathBuf};

const REL: &str = "shared/reference-data/chinchilla/svg_extracted_data.csv";

/// Where the reference CSV is: `../shared/...` beside the crate, if it is there.
pub fn chinchilla_csv_path() -> Option<PathBuf> {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(REL);
    beside.is_file().then_some(beside)
}

/// The reference CSV for tests; panics with where it was looked for when it is absent.
#[cfg(test)]
pub fn chinchilla_csv() -> PathBuf {
    chinchilla_csv_path().unwrap_or_else(|| {
        panic!(
            "the Chinchilla reference CSV is missing: expected {}/../{REL} (the shared/ folder beside the repository)",
            env!("CARGO_MANIFEST_DIR")
        )
    })
}

/// Parse the CSV into one final observation per row, with D = C / (6N) as
/// Epoch derive it. Columns are found by header name.
pub fn load_chinchilla_csv(path: &Path) -> Result<Vec<Obs>> {
    let rows = crate::fit::table::read_numbers(path, &["Model Size", "Training FLOP", "loss"], false)?;
    Ok(rows
        .iter()
        .enumerate()
        .map(|(row, r)| {
            let (n, c, l) = (r[0], r[1], r[2]);
            Obs {
                run: format!("chinchilla-{row}"),
                params: n,
                tokens: crate::flops::chinchilla_tokens(c, n),
                flops: c,
                loss: l,
                lr: None,
                batch: None,
                is_final: true,
            }
        })
        .collect())
}

/// Epoch's outlier rule: drop the `k` highest-loss points.
pub fn drop_highest_losses(mut obs: Vec<Obs>, k: usize) -> Vec<Obs> {
    obs.sort_by(|a, b| a.loss.total_cmp(&b.loss));
    obs.truncate(obs.len().saturating_sub(k));
    obs
}

/// The 240-point Chinchilla set as Epoch fit it (panics when the reference file is absent).
#[cfg(test)]
pub fn chinchilla_obs() -> Vec<Obs> {
    drop_highest_losses(load_chinchilla_csv(&chinchilla_csv()).expect("reference CSV parses"), 5)
}

/// The same points in the log domain.
#[cfg(test)]
pub fn chinchilla_logdata() -> LogData {
    let obs = chinchilla_obs();
    let n: Vec<f64> = obs.iter().map(|o| o.params).collect();
    let d: Vec<f64> = obs.iter().map(|o| o.tokens).collect();
    let l: Vec<f64> = obs.iter().map(|o| o.loss).collect();
    LogData::new(&n, &d, &l)
}

/// The 240-point data and its full-grid fit, computed once per test binary
/// (several tests start from the reference optimum; the grid takes seconds).
#[cfg(test)]
pub fn cached_chinchilla_fit() -> &'static (LogData, crate::fit::chinchilla::parametric::MultiFit) {
    use crate::fit::chinchilla::parametric::{hoffmann_grid, multistart};
    static CACHE: std::sync::OnceLock<(LogData, crate::fit::chinchilla::parametric::MultiFit)> =
        std::sync::OnceLock::new();
    CACHE.get_or_init(|| {
        let data = chinchilla_logdata();
        let fit = multistart(&data, &hoffmann_grid());
        (data, fit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[ignore = "needs ../shared/reference-data/chinchilla (Epoch's CSV; .ci/run runs it with --ignored)"]
    fn reference_csv_has_245_rows_and_240_after_outliers() {
        let all = load_chinchilla_csv(&chinchilla_csv()).unwrap();
        assert_eq!(all.len(), 245);
        let kept = drop_highest_losses(all, 5);
        assert_eq!(kept.len(), 240);
        let max = kept.iter().map(|o| o.loss).fold(0.0, f64::max);
        assert!(max < 5.0);
    }
}
