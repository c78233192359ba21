//! The decoder-only transformer, generic over the burn backend. `GptConfig` is plain data
//! derived from a `RunConfig`; `GptConfig::init(&device)` builds the module (burn's style).
//! Every μP multiplier lives in `mup.rs`; this file only applies them where they belong.
//!
//! Shape (counted in `flops.rs`, keep the two in sync): token + learned position embeddings,
//! `depth` pre-LayerNorm blocks (q/k/v projections, causal attention, out proj; 4x GELU MLP), all
//! Linear layers bias-free, final LayerNorm, untied output head.

pub mod mup;

use crate::spec::config::RunConfig;
use burn::module::Initializer;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::gelu;

#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    pub ln1: LayerNorm<B>,
    pub q: Linear<B>,
    pub k: Linear<B>,
    pub v: Linear<B>,
    pub proj: Linear<B>,
    pub ln2: LayerNorm<B>,
    pub fc1: Linear<B>,
    pub fc2: Linear<B>,
}

#[derive(Module, Debug)]
pub struct Gpt<B: Backend> {
    pub tok: Embedding<B>,
    pub pos: Embedding<B>,
    pub blocks: Vec<Block<B>>,
    pub lnf: LayerNorm<B>,
    pub head: Linear<B>,
}

/// Architecture and the forward-pass multipliers (plain data, not parameters).
#[derive(Clone, Debug)]
pub struct GptConfig {
    pub vocab: usize,
    pub seq_len: usize,
    pub width: usize,
    pub depth: usize,
    pub heads: usize,
    pub scales: mup::Scales,
}

impl GptConfig {
    pub fn from_run(cfg: &RunConfig) -> Self {
        GptConfig {
            vocab: cfg.vocab,
            seq_len: cfg.seq_len,
            width: cfg.width,
            depth: cfg.depth,
            heads: cfg.heads,
            scales: mup::Scales::new(&cfg.parametrization, cfg.width, cfg.depth),
        }
    }

    /// Builds the model with the parametrization's initialisation.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Gpt<B> {
        let d = self.width;
        let s = &self.scales;
        let normal = |std: f64| Initializer::Normal { mean: 0.0, std };
        let hidden = |i: usize, o: usize| {
            LinearConfig::new(i, o).with_bias(false).with_initializer(normal(s.hidden_init_std)).init(device)
        };
        let blocks = (0..self.depth)
            .map(|_| Block {
                ln1: LayerNormConfig::new(d).init(device),
                q: hidden(d, d),
                k: hidden(d, d),
                v: hidden(d, d),
                proj: hidden(d, d),
                ln2: LayerNormConfig::new(d).init(device),
                fc1: hidden(d, 4 * d),
                fc2: hidden(4 * d, d),
            })
            .collect();
        Gpt {
            tok: EmbeddingConfig::new(self.vocab, d).with_initializer(normal(s.embed_init_std)).init(device),
            pos: EmbeddingConfig::new(self.seq_len, d).with_initializer(normal(s.embed_init_std)).init(device),
            blocks,
            lnf: LayerNormConfig::new(d).init(device),
            head: LinearConfig::new(d, self.vocab)
                .with_bias(false)
                .with_initializer(normal(s.head_init_std))
                .init(device),
        }
    }
}

/// [b, h, t, t]: 0 where a query may attend (key <= query), -inf above the diagonal. Built at
/// full size (not broadcast from [1, 1, t, t]): a broadcast add takes the backend's slow
/// strided path, which cost more than the mask copy it replaced (perf).
fn causal_bias<B: Backend>(b: usize, h: usize, t: usize, device: &B::Device) -> Tensor<B, 4> {
    let v: Vec<f32> = (0..b * h * t * t).map(|i| if i % t > (i / t) % t { f32::NEG_INFINITY } else { 0.0 }).collect();
    Tensor::<B, 1>::from_floats(v.as_slice(), device).reshape([b, h, t, t])
}

/// Causal softmax(QKᵀ/√d)·V, the same operations as burn's attention fallback except that the
/// causal mask is an additive -inf bias instead of `mask_fill` with an expanded bool mask: the
/// fallback copied that mask to a contiguous [batch, heads, t, t] tensor on every call, forward
/// and backward (10% of a training step of `bench small`, perf). Scores are identical (x + 0 = x,
/// x + -inf = -inf), and so is the gradient (softmax's is already 0 where its output is 0).
fn causal_attention<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>, bias: Tensor<B, 4>) -> Tensor<B, 4> {
    let scale = 1.0 / (q.dims()[3] as f64).sqrt();
    let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale) + bias;
    // NaN-safe softmax exactly as the fallback computes it.
    let max = scores.clone().max_dim(3).clamp_min(f32::MIN);
    let num = (scores - max).exp();
    let sum = num.clone().sum_dim(3).clamp_min(f32::MIN_POSITIVE);
    (num / sum).matmul(v)
}

impl<B: Backend> Gpt<B> {
    /// Logits [batch, time, vocab] for token ids [batch, time].
    pub fn forward(&self, idx: Tensor<B, 2, Int>, cfg: &GptConfig) -> Tensor<B, 3> {
        self.forward_probed(idx, cfg, &mut |_, _| {})
    }

    /// `forward`, showing `probe` every named activation on the way (the coordinate check
    /// measures their size against width): `embed`, per block `blockI.attn` and `blockI.mlp`
    /// (the branch outputs as added to the residual) and `blockI.out`, then `logits`.
    pub fn forward_probed(
        &self,
        idx: Tensor<B, 2, Int>,
        cfg: &GptConfig,
        probe: &mut dyn FnMut(&str, &Tensor<B, 3>),
    ) -> Tensor<B, 3> {
        let [b, t] = idx.dims();
        let device = idx.device();
        let s = &cfg.scales;
        let pos = Tensor::<B, 1, Int>::arange(0..t as i64, &device).reshape([1, t]);
        let mut x = (self.tok.forward(idx) + self.pos.forward(pos)).mul_scalar(s.emb_mult);
        probe("embed", &x);
        let d = cfg.width;
        let hd = d / cfg.heads;
        let causal = causal_bias::<B>(b, cfg.heads, t, &device);
        for (i, blk) in self.blocks.iter().enumerate() {
            // Separate q/k/v projections (same parameters and FLOPs as a fused qkv): slicing a
            // fused output makes strided copies that cost more than the matmuls at this size.
            let h = blk.ln1.forward(x.clone());
            let split = |lin: &Linear<B>| lin.forward(h.clone()).reshape([b, t, cfg.heads, hd]).swap_dims(1, 2);
            let y = causal_attention(split(&blk.q), split(&blk.k), split(&blk.v), causal.clone());
            let y = blk.proj.forward(y.swap_dims(1, 2).reshape([b, t, d])).mul_scalar(s.residual_mult);
            probe(&format!("block{i}.attn"), &y);
            x = x + y;
            let h = blk.fc2.forward(gelu(blk.fc1.forward(blk.ln2.forward(x.clone())))).mul_scalar(s.residual_mult);
            probe(&format!("block{i}.mlp"), &h);
            x = x + h;
            probe(&format!("block{i}.out"), &x);
        }
        let logits = self.head.forward(self.lnf.forward(x)).mul_scalar(s.logit_mult);
        probe("logits", &logits);
        logits
    }
}
