//! The Chinchilla core: the parametric law L(N, D) = E + A/N^alpha + B/D^beta (approach 3),
//! its Huber objective and multi-start fit, the variable-projection cross-check, bootstrap
//! intervals, the backtest and the rollout (predicting ever larger runs from smaller ones),
//! input checks, and the published reference points it is tested against.

pub mod backtest;
pub mod bootstrap;
pub mod fastmath;
pub mod law;
pub mod objective;
pub mod parametric;
pub mod reference;
pub mod rollout;
pub mod validate;
pub mod varpro;

#[cfg(test)]
mod recovery;
