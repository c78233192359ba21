//! The application layer: one file per workflow the CLI runs (`run`'s data preparation,
//! `fit`, `report`, `check`, `mix-check`, `coord-check`, `bench`, `slurm`, `predict-curve`,
//! `status`, `plan --precision` and `design`). Workflows compose the layers below (spec → data → model → train → runner →
//! store → fit → report); nothing below imports from here, so each layer stays usable and
//! testable on its own.

pub mod bench;
pub mod check;
pub mod cli;
pub mod coord_check;
pub mod curve;
pub mod curve_splits;
pub mod design;
pub mod design_continue;
pub mod fit;
pub mod import;
mod import_table;
#[cfg(test)]
mod import_tests;
pub mod mix_check;
pub mod predict;
pub mod report;
pub mod slurm;
pub mod status;
pub mod sweep;
