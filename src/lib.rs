//! windtunnel: a model wind tunnel. Train grids of small decoder-only transformers, fit
//! scaling laws to their losses, and predict the large target run with an honest error bar.
//!
//! Data flows one way: `spec` (TOML → validated RunConfigs) → `data` → `model` → `train` →
//! `runner` (plan, pool, shards) → `store` (run folders → Parquet) → `fit` → `report`, and
//! `app` holds one file per workflow the CLI runs, composing the layers below it. Imports
//! point down only (`analysis/module_graph.sh` checks it): `fit` is pure math importing only
//! the leaves, and `store`, the on-disk format, sits below its writers and readers.
//! Leaves usable by anyone: `flops` owns all parameter and FLOP accounting, `rng` is the one
//! random number generator, `kernels` holds the fused training ops, `backend` the backends.

/// `Display` for a parsed choice as the word its sweep file or command line uses (`method`
/// returns it): the enums of spec, fit and app print exactly what they parse.
macro_rules! display_as_word {
    ($t:ty, $method:ident) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.$method())
            }
        }
    };
}

pub mod app;
pub mod backend;
pub mod data;
pub mod fit;
pub mod flops;
pub mod human;
pub mod kernels;
pub mod model;
pub mod report;
pub mod rng;
pub mod runner;
pub mod spec;
pub mod store;
pub mod train;

/// When this process started (set first thing in `main`): a run's summary records how long the
/// worker took from its start to the first training step (spawn, model init, data setup).
pub static PROCESS_START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Bad input from the user (a file, a flag, a column): the CLI exits with code 2 and prints
/// the message as is. Everything else is a failure (exit 1).
#[derive(Debug)]
pub struct UserError(pub String);

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}
