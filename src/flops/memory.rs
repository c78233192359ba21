//! What one training run holds in memory at its peak, and what it writes to disk, from its
//! shape alone: beside the parameter and FLOP accounting because it is the same accounting
//! (the same tensors, counted in bytes instead of multiply-adds), and so that `plan`, `run`
//! and any later device placement (packing runs per GPU) use one estimate.
//!
//! Parts are split by where they live: `device` is what a GPU backend would hold on the GPU
//! (weights, gradients, optimizer state, activations, the evaluation's forward pass), `host`
//! what stays in the process's own memory whatever the backend (the validation token ids and
//! the training batch's). On the CPU backend both are host memory.
//!
//! The counts follow the model as written (see `model` and `kernels`): f32 everywhere, and per
//! block the tensors autodiff keeps for the backward pass: LayerNorm inputs and outputs (4d per
//! token), q, k, v (3d), the attention weights [heads, t, t] (the fused attention saves them),
//! its output (d), the output projection's result (d), the MLP's input, hidden pre- and
//! post-GELU and output (d + 4d + 4d + d); at the head the final LayerNorm (2d) and the logits
//! with their softmax and gradient (3V). Token ids are i64. It is an estimate of the peak (one
//! more block's worth is added for the gradients of the backward pass in flight), meant to
//! refuse what cannot fit, not to size a machine to the last megabyte.

/// Bytes of one float (f32).
const F32: f64 = 4.0;
/// Bytes of one token id (i64: burn's Int tensors here).
const ID: f64 = 8.0;
/// Rows of the validation forward pass (`train::evaluate`'s chunk).
pub const EVAL_CHUNK_ROWS: usize = 16;
/// The worker process itself (code, allocator arenas, burn's state), whatever its model: the
/// tiny sweep's largest worker peaked at 18.7 MB resident (GNU time), 2.3 MiB of it the
/// tensors counted here.
pub const PROCESS_BYTES: f64 = 16.0 * 1024.0 * 1024.0;

/// The shape of one run as memory sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemShape {
    pub width: usize,
    pub depth: usize,
    pub heads: usize,
    pub seq_len: usize,
    pub vocab: usize,
    pub batch_size: usize,
    /// Sequences per forward/backward pass (the batch, unless accumulated in micro-batches).
    pub micro_batch: usize,
    /// Validation tokens per domain (`train.eval_tokens`).
    pub eval_tokens: u64,
}

/// Peak memory of one run by part, in bytes (f64: a typo'd shape must not overflow).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunMemory {
    /// Every trainable weight, embeddings included.
    pub weights: f64,
    /// One gradient per weight, plus the accumulated sum when the batch is split.
    pub grads: f64,
    /// AdamW's two moments per weight.
    pub optimizer: f64,
    /// Activations kept for the backward pass of one micro-batch.
    pub activations: f64,
    /// The validation forward pass over `EVAL_CHUNK_ROWS` rows (no autodiff: one block's
    /// tensors at a time, plus the logits).
    pub eval_forward: f64,
    /// Host: one domain's validation windows as token ids (built whole, scored in chunks).
    pub eval_ids: f64,
    /// Host: the training batch's token ids and its micro-batch copy.
    pub batch_ids: f64,
}

impl RunMemory {
    /// What a GPU backend would hold on the device.
    pub fn device(&self) -> f64 {
        self.weights + self.grads + self.optimizer + self.activations.max(self.eval_forward)
    }
    /// What stays in host memory on any backend (the process itself included).
    pub fn host(&self) -> f64 {
        self.eval_ids + self.batch_ids + PROCESS_BYTES
    }
    /// The whole run on the CPU backend. Training and evaluation alternate, so their
    /// activations are not held together.
    pub fn total(&self) -> f64 {
        self.device() + self.host()
    }
}

/// Floats one block keeps per token for the backward pass, besides the attention weights.
const BLOCK_FLOATS_PER_WIDTH: f64 = 18.0;

/// The peak memory of a run of this shape (see the module doc for what is counted).
pub fn run_memory(s: &MemShape) -> RunMemory {
    let (d, l, h, t, v) = (s.width as f64, s.depth as f64, s.heads as f64, s.seq_len as f64, s.vocab as f64);
    let p = super::params_total(s.width, s.depth, s.seq_len, s.vocab) as f64;
    let micro = s.micro_batch.max(1) as f64;
    let accumulating = s.micro_batch < s.batch_size;
    // Per token of one block: the saved tensors and the attention weights (a t-long row per head).
    let block_per_token = BLOCK_FLOATS_PER_WIDTH * d + h * t;
    let head_per_token = 2.0 * d + 3.0 * v;
    let tokens = micro * t;
    // The embedding output, every block, the head, and one more block in flight backward.
    let activations = F32 * tokens * (d + (l + 1.0) * block_per_token + head_per_token);
    let eval_rows = EVAL_CHUNK_ROWS as f64;
    let eval_forward = F32 * eval_rows * t * (2.0 * BLOCK_FLOATS_PER_WIDTH / 3.0 * d + h * t + 2.0 * v);
    let rows = (s.eval_tokens as f64 / t.max(1.0)).ceil().max(1.0);
    RunMemory {
        weights: F32 * p,
        grads: F32 * p * if accumulating { 2.0 } else { 1.0 },
        optimizer: 2.0 * F32 * p,
        activations,
        eval_forward,
        eval_ids: ID * rows * (t + 1.0),
        batch_ids: ID * (s.batch_size as f64 + micro) * (t + 1.0),
    }
}

/// Bytes of one checkpoint on disk: the weights and both AdamW moments, f32.
pub fn checkpoint_bytes(width: usize, depth: usize, seq_len: usize, vocab: usize) -> f64 {
    3.0 * F32 * super::params_total(width, depth, seq_len, vocab) as f64
}

/// Bytes of a line of evals.jsonl (its fixed fields, and a name and two numbers per domain).
pub fn eval_line_bytes(domains: usize) -> f64 {
    220.0 + 90.0 * domains as f64
}

/// Binary units for messages: "17.2 GiB".
pub fn bytes_text(b: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = b.max(0.0);
    let mut k = 0;
    while v >= 1024.0 && k + 1 < units.len() {
        v /= 1024.0;
        k += 1;
    }
    if !v.is_finite() {
        return "an unbounded amount".into();
    }
    if k == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", units[k])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(width: usize, depth: usize, seq_len: usize, batch: usize, eval_tokens: u64) -> MemShape {
        MemShape {
            width,
            depth,
            heads: (width / 16).max(1),
            seq_len,
            vocab: 256,
            batch_size: batch,
            micro_batch: batch,
            eval_tokens,
        }
    }

    #[test]
    fn parts_follow_the_tensors_the_run_holds() {
        // Width 64, 2 blocks, 4 heads, t = 128, batch 8: counted by hand.
        let s = shape(64, 2, 128, 8, 16384);
        let m = run_memory(&s);
        let p = crate::flops::params_total(64, 2, 128, 256) as f64;
        assert_eq!((m.weights, m.grads, m.optimizer), (4.0 * p, 4.0 * p, 8.0 * p));
        let per_token = 64.0 + 3.0 * (18.0 * 64.0 + 4.0 * 128.0) + (2.0 * 64.0 + 3.0 * 256.0);
        assert_eq!(m.activations, 4.0 * 8.0 * 128.0 * per_token);
        assert_eq!(m.eval_ids, 8.0 * 128.0 * 129.0);
        assert_eq!(m.total(), m.device() + m.host());
        // Half the micro-batch: half the activations, one more gradient buffer.
        let half = run_memory(&MemShape { micro_batch: 4, ..s });
        assert_eq!(half.activations, m.activations / 2.0);
        assert_eq!(half.grads, 2.0 * m.grads);
    }

    #[test]
    fn the_probes_oversized_runs_are_measured_in_what_they_hold() {
        // seq_len 65,536 at batch 1: the attention weights alone are heads * t^2 floats a block.
        let long = run_memory(&shape(64, 1, 65536, 1, 65537));
        assert!(long.activations > 4.0 * 4.0 * 65536f64.powi(2), "{}", bytes_text(long.activations));
        // eval_tokens = 1e12: 8 TB of validation ids (8 bytes each, plus a token a window).
        let evals = run_memory(&shape(64, 1, 32, 4, 1_000_000_000_000));
        assert!((evals.eval_ids / 8.25e12 - 1.0).abs() < 1e-6, "{}", evals.eval_ids);
        // Width 65,536: 51.5 G weights per block, 16 bytes each with gradient and moments.
        let wide = run_memory(&shape(65536, 1, 32, 4, 2048));
        assert!(wide.weights + wide.grads + wide.optimizer > 16.0 * 12.0 * 65536f64.powi(2));
        assert_eq!(bytes_text(17.0 * 1024f64.powi(3)), "17.0 GiB");
        assert_eq!(bytes_text(512.0), "512 B");
        assert_eq!(bytes_text(f64::INFINITY), "an unbounded amount");
    }
}
