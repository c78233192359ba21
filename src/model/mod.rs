//! The decoder-only transformer, generic over the burn backend. `GptConfig` is plain data
//! derived from a `RunConfig`; `GptConfig::init(&device)` builds the module (burn's style).
//! Every μP multiplier lives in `mup.rs`; this file only applies them where they belong.
//!
//! Shape (counted in `flops.rs`, keep the two in sync): token + learned position embeddings,
//! `depth` pre-LayerNorm blocks (q/k/v projections, causal attention, out proj; 4x GELU MLP), all
//! Linear layers bias-free, final LayerNorm, untied output head.

pub mod mup;

use crate::kernels::{self, Kernels};
use crate::spec::config::RunConfig;
use burn::module::Initializer;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;

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

/// x · m, skipped when m is 1 (the standard parametrization): exact either way.
fn scaled<B: Backend, const D: usize>(x: Tensor<B, D>, m: f64) -> Tensor<B, D> {
    if m == 1.0 {
        x
    } else {
        x.mul_scalar(m)
    }
}

impl<B: Kernels> Gpt<B> {
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
        let t = idx.dims()[1];
        let device = idx.device();
        let s = &cfg.scales;
        let pos = Tensor::<B, 1, Int>::arange(0..t as i64, &device).reshape([1, t]);
        let mut x = scaled(self.tok.forward(idx) + self.pos.forward(pos), s.emb_mult);
        probe("embed", &x);
        for (i, blk) in self.blocks.iter().enumerate() {
            // Separate q/k/v projections (same parameters and FLOPs as a fused qkv), and the
            // attention reads each head's columns of them in place (kernels::attention).
            let h = kernels::layer_norm(&blk.ln1, x.clone());
            let (q, k, v) =
                (kernels::linear(&blk.q, h.clone()), kernels::linear(&blk.k, h.clone()), kernels::linear(&blk.v, h));
            let y = scaled(kernels::linear(&blk.proj, kernels::attention(q, k, v, cfg.heads)), s.residual_mult);
            probe(&format!("block{i}.attn"), &y);
            x = x + y;
            let h = kernels::gelu(kernels::linear(&blk.fc1, kernels::layer_norm(&blk.ln2, x.clone())));
            let h = scaled(kernels::linear(&blk.fc2, h), s.residual_mult);
            probe(&format!("block{i}.mlp"), &h);
            x = x + h;
            probe(&format!("block{i}.out"), &x);
        }
        let logits = scaled(kernels::linear(&self.head, kernels::layer_norm(&self.lnf, x)), s.logit_mult);
        probe("logits", &logits);
        logits
    }
}
