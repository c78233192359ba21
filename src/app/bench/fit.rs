//! The `bench-fit` benchmark: the full 4,500-start approach-3 grid on the 240
//! Chinchilla points plus 1,000 bootstrap refits, timed, with the results set
//! beside Epoch AI's so that speed is never reported without accuracy.

use crate::fit::chinchilla::bootstrap::bootstrap;
use crate::fit::chinchilla::law::{Law, TargetSpec};
use crate::fit::chinchilla::objective::{LogData, Theta};
use crate::fit::chinchilla::parametric::{hoffmann_grid, multistart};
use crate::fit::chinchilla::reference::{drop_highest_losses, load_chinchilla_csv};
use std::fmt::Write;
use std::path::Path;
use std::time::Instant;

/// Chinchilla's own budget (70B x 1.4T x 6), where tokens/param is reported.
const CHINCHILLA_FLOPS: f64 = 5.88e23;

/// Run the benchmark on the CSV at `csv_path`; returns a readable summary.
pub fn bench_chinchilla(csv_path: impl AsRef<Path>) -> anyhow::Result<String> {
    bench_with(csv_path.as_ref(), 1000)
}

/// The benchmark with a chosen number of bootstrap resamples.
pub fn bench_with(csv_path: &Path, resamples: usize) -> anyhow::Result<String> {
    let obs = drop_highest_losses(load_chinchilla_csv(csv_path)?, 5);
    let n: Vec<f64> = obs.iter().map(|o| o.params).collect();
    let d: Vec<f64> = obs.iter().map(|o| o.tokens).collect();
    let l: Vec<f64> = obs.iter().map(|o| o.loss).collect();
    let data = LogData::new(&n, &d, &l);
    let grid = hoffmann_grid();

    let t0 = Instant::now();
    let fit = multistart(&data, &grid);
    let t_grid = t0.elapsed().as_secs_f64();

    let warm: Vec<Theta> = fit.optima.iter().map(|s| s.theta).collect();
    let t1 = Instant::now();
    let bs = bootstrap(&data, &warm, resamples, 42, Some(TargetSpec::Flops(CHINCHILLA_FLOPS)));
    let t_boot = t1.elapsed().as_secs_f64();

    let law = Law::from_theta(&fit.best.theta);
    let threads = rayon::current_num_threads();
    let mut s = String::new();
    let _ = writeln!(s, "bench-fit: Chinchilla approach 3 ({} points, {} threads)", data.len(), threads);
    let _ = writeln!(s, "  objective  {:.6e}   (Epoch: 1.01827e-3)", fit.best.objective);
    let _ = writeln!(
        s,
        "  E {:.4}  A {:.2}  B {:.1}  alpha {:.4}  beta {:.4}   (Epoch: 1.8172 477.84 2143.86 0.3473 0.3672)",
        law.e, law.a, law.b, law.alpha, law.beta
    );
    let _ = writeln!(
        s,
        "  grid       {:>7.3} s  ({} starts, {:.3} ms/start/thread, {} converged, {} distinct optima)",
        t_grid,
        grid.len(),
        1e3 * t_grid * threads as f64 / grid.len() as f64,
        fit.n_converged,
        fit.optima.len()
    );
    let _ = writeln!(s, "  bootstrap  {:>7.3} s  ({resamples} refits, {} converged, seed 42)", t_boot, bs.ok);
    let _ = writeln!(s, "  total      {:>7.3} s", t_grid + t_boot);
    let _ = writeln!(s, "  95% intervals (Epoch's in brackets):");
    for (k, e) in [
        ("E", "1.769-1.871"),
        ("alpha", "0.317-0.373"),
        ("beta", "0.331-0.415"),
        ("A", "285.2-743.6"),
        ("B", "1042.4-5810.3"),
    ] {
        if let Some(iv) = bs.intervals.get(k) {
            let _ = writeln!(s, "    {k:<6} {:.4}-{:.4}  [{e}]", iv.lo, iv.hi);
        }
    }
    let t = law.target(TargetSpec::Flops(CHINCHILLA_FLOPS));
    if let Some(iv) = bs.intervals.get("tokens_per_param") {
        let _ = writeln!(
            s,
            "  tokens/param at {:.2e} FLOP: {:.1} (95% {:.1}-{:.1})",
            CHINCHILLA_FLOPS, t.tokens_per_param, iv.lo, iv.hi
        );
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    #[test]
    #[ignore = "needs ../shared/reference-data/chinchilla (Epoch's CSV; .ci/run runs it with --ignored)"]
    fn bench_runs_on_reference_data() {
        let p = crate::fit::chinchilla::reference::chinchilla_csv();
        // The full 1,000-resample run is what `bench-fit` does; 50 keeps the
        // test quick while exercising the same code.
        let out = super::bench_with(&p, 50).unwrap();
        println!("{out}");
        assert!(out.contains("total") && out.contains("objective"));
    }
}
