//! The one source of truth for parameter counts and training FLOPs. Nothing else in the
//! crate multiplies widths together: plan, trainer, store, fit and report all ask here, so
//! the convention stated in the report is the convention used everywhere.
//!
//! Model shape (see `model`): learned token and position embeddings, `depth` pre-norm blocks
//! of causal self-attention (q, k, v and out projections) and a 4x GELU MLP, all Linear layers
//! without bias, LayerNorm (gain + bias), a final LayerNorm and an untied output head.
//!
//! Conventions (Kaplan et al. 2020 for N, Hoffmann et al. 2022 for attention FLOPs):
//! - `params` (N, what the scaling laws use) counts every parameter except the input token
//!   and position embeddings (lookups, no FLOPs). The output head is a real matmul and is
//!   counted (Porian et al. 2024: ignoring it biases small-model laws).
//! - training FLOPs per token = 6 N + 12 · depth · seq_len · width: the 6N matmul rule for
//!   forward+backward, plus QK^T and AV (2 · 2 · seq_len · width per layer forward, ×3 for
//!   backward), counted for the full (not causally halved) attention matrix as Chinchilla does.

pub mod memory;

/// Parameters inside one transformer block: q, k, v (3d²), out proj (d²), MLP (8d²), two LayerNorms (4d).
pub fn block_params(width: usize) -> u64 {
    let d = width as u64;
    12 * d * d + 4 * d
}

/// N: non-embedding parameters (blocks + final norm + output head), the scaling-law N.
pub fn params(width: usize, depth: usize, vocab: usize) -> u64 {
    let d = width as u64;
    depth as u64 * block_params(width) + 2 * d + d * vocab as u64
}

/// Input embedding parameters (token + learned position tables).
pub fn embedding_params(width: usize, seq_len: usize, vocab: usize) -> u64 {
    (width * (vocab + seq_len)) as u64
}

/// Every trainable parameter.
pub fn params_total(width: usize, depth: usize, seq_len: usize, vocab: usize) -> u64 {
    params(width, depth, vocab) + embedding_params(width, seq_len, vocab)
}

/// Training FLOPs per token (forward + backward), see the module doc for the convention.
pub fn flops_per_token(width: usize, depth: usize, seq_len: usize, vocab: usize) -> f64 {
    6.0 * params(width, depth, vocab) as f64 + 12.0 * (depth * seq_len * width) as f64
}

/// Training FLOPs for `tokens` tokens.
pub fn train_flops(width: usize, depth: usize, seq_len: usize, vocab: usize, tokens: u64) -> f64 {
    flops_per_token(width, depth, seq_len, vocab) * tokens as f64
}

/// The compute rule the fitted laws use for the target: C = 6 N D (Chinchilla). Stated apart
/// from `flops_per_token` because a law over (N, D) cannot see sequence length.
pub fn chinchilla_flops(n: f64, d: f64) -> f64 {
    6.0 * n * d
}

/// D at compute C for a model of N parameters under C = 6 N D.
pub fn chinchilla_tokens(c: f64, n: f64) -> f64 {
    c / (6.0 * n)
}

/// The N whose compute-optimal D is `tokens_per_param` x N at compute C (C = 6 N D).
pub fn chinchilla_params_at(c: f64, tokens_per_param: f64) -> f64 {
    (c / (6.0 * tokens_per_param)).sqrt()
}

/// `params` for a continuous shape (width, depth and vocab as reals), for solving a target
/// shape from an N: the same formula, so a solved shape counts what `params` counts.
pub fn params_real(width: f64, depth: f64, vocab: f64) -> f64 {
    depth * (12.0 * width * width + 4.0 * width) + 2.0 * width + width * vocab
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_hand_arithmetic() {
        // d=64, L=2, vocab=256: blocks 2*(12*4096+256)=98816, final norm 128, head 16384.
        assert_eq!(params(64, 2, 256), 98_816 + 128 + 16_384);
        assert_eq!(params_total(64, 2, 128, 256), params(64, 2, 256) + 64 * (256 + 128));
        let f = flops_per_token(64, 2, 128, 256);
        assert_eq!(f, 6.0 * params(64, 2, 256) as f64 + 12.0 * 2.0 * 128.0 * 64.0);
    }
}
