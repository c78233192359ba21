//! Model sizes as the figures colour them.

use crate::report::facts::Facts;

/// Index of `n` among the sorted distinct sizes (the colour of a model size).
pub fn size_index(sizes: &[f64], n: f64) -> usize {
    sizes.iter().position(|s| *s == n).unwrap_or(0)
}

pub fn distinct_sizes(f: &Facts) -> Vec<f64> {
    let mut s: Vec<f64> = f.runs.iter().map(|r| r.params).collect();
    s.sort_by(f64::total_cmp);
    s.dedup();
    s
}
