//! AdamW with parameter groups and a global-norm gradient clip, on top of burn 0.21 (which
//! has neither). Groups are chosen by module path (see `model::mup`):
//! - hidden matrices: lr × hidden_lr_mult (μP's lr/m), weight decay;
//! - embeddings and head: lr, weight decay;
//! - norm gains/biases: lr, no weight decay.
//!
//! Splitting is exact: burn's optimizer updates only the parameters present in the
//! `GradientsParams` it is given and keeps Adam state per parameter id, so stepping each
//! group separately equals one grouped step (checked in the burn 0.21 probe in ../shared).
//! burn clips each tensor separately; the global-norm clip (clip the whole gradient vector to
//! norm c) is what the scaling-law literature uses, so it is written here.

use crate::model::{mup, Gpt};
use crate::spec::config::RunConfig;
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

pub type Adam<B> = OptimizerAdaptor<AdamW, Gpt<B>, B>;

/// Parameter ids per group, plus every id with its rank (for the global norm).
#[derive(Clone, Debug, Default)]
pub struct Groups {
    pub hidden: Vec<ParamId>,
    pub no_decay: Vec<ParamId>,
    pub all: Vec<(ParamId, usize)>,
}

struct GroupVisitor {
    stack: Vec<String>,
    groups: Groups,
}

impl<B: Backend> ModuleVisitor<B> for GroupVisitor {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.stack.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.stack.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let path = self.stack.join(".");
        if mup::is_hidden_matrix(&path) {
            self.groups.hidden.push(param.id);
        } else if mup::is_norm(&path) {
            self.groups.no_decay.push(param.id);
        }
        self.groups.all.push((param.id, D));
    }
}

pub fn groups<B: Backend>(model: &Gpt<B>) -> Groups {
    let mut v = GroupVisitor { stack: Vec::new(), groups: Groups::default() };
    model.visit(&mut v);
    v.groups
}

/// The two AdamW instances (with and without weight decay) that together form the optimizer.
pub struct Optim<B: AutodiffBackend> {
    pub decay: Adam<B>,
    pub no_decay: Adam<B>,
    pub groups: Groups,
    pub hidden_lr_mult: f64,
    pub clip: f64,
}

pub fn adamw(cfg: &RunConfig, weight_decay: f64) -> AdamWConfig {
    AdamWConfig::new()
        .with_beta_1(cfg.beta1 as f32)
        .with_beta_2(cfg.beta2 as f32)
        .with_epsilon(1e-8)
        .with_weight_decay(weight_decay as f32)
}

impl<B: AutodiffBackend> Optim<B> {
    pub fn new(cfg: &RunConfig, model: &Gpt<B>, hidden_lr_mult: f64) -> Self {
        Optim {
            decay: adamw(cfg, cfg.weight_decay).init(),
            no_decay: adamw(cfg, 0.0).init(),
            groups: groups(model),
            hidden_lr_mult,
            clip: cfg.grad_clip,
        }
    }

    /// Backward, clip, and one AdamW step per group. Returns (model, pre-clip grad norm).
    pub fn step(&mut self, model: Gpt<B>, loss: Tensor<B, 1>, lr: f64) -> (Gpt<B>, f64) {
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        self.apply(model, grads, lr)
    }

    /// Gradient accumulation: adds `more` into `acc` parameter by parameter, so a step's
    /// batch can be processed as several micro-batches (each backward frees its graph).
    pub fn accumulate(&self, acc: Option<GradientsParams>, mut more: GradientsParams) -> GradientsParams {
        let Some(mut acc) = acc else { return more };
        for &(id, rank) in &self.groups.all {
            if rank == 1 {
                match (acc.remove::<B::InnerBackend, 1>(id), more.remove::<B::InnerBackend, 1>(id)) {
                    (Some(a), Some(b)) => acc.register(id, a + b),
                    (Some(g), None) | (None, Some(g)) => acc.register(id, g),
                    (None, None) => {}
                }
            } else {
                match (acc.remove::<B::InnerBackend, 2>(id), more.remove::<B::InnerBackend, 2>(id)) {
                    (Some(a), Some(b)) => acc.register(id, a + b),
                    (Some(g), None) | (None, Some(g)) => acc.register(id, g),
                    (None, None) => {}
                }
            }
        }
        acc
    }

    /// Clip and one AdamW step per group, from gradients already computed. Returns (model,
    /// pre-clip grad norm).
    pub fn apply(&mut self, model: Gpt<B>, mut grads: GradientsParams, lr: f64) -> (Gpt<B>, f64) {
        let norm = global_norm::<B>(&grads, &self.groups.all);
        if self.clip > 0.0 && norm > self.clip {
            scale_grads::<B>(&mut grads, &self.groups.all, self.clip / norm);
        }
        let hidden = take::<B>(&mut grads, &self.groups.hidden);
        let no_decay = take::<B>(&mut grads, &self.groups.no_decay);
        let model = self.decay.step(lr * self.hidden_lr_mult, model, hidden);
        let model = self.decay.step(lr, model, grads);
        let model = self.no_decay.step(lr, model, no_decay);
        (model, norm)
    }
}

/// Moves the gradients of `ids` out of `grads` into a new set. The container stores
/// rank-erased primitives of the inner backend, so the rank used to move them is irrelevant.
fn take<B: AutodiffBackend>(grads: &mut GradientsParams, ids: &[ParamId]) -> GradientsParams {
    let mut out = GradientsParams::new();
    for &id in ids {
        if let Some(g) = grads.remove::<B::InnerBackend, 1>(id) {
            out.register::<B::InnerBackend, 1>(id, g);
        }
    }
    out
}

/// L2 norm of the whole gradient vector, with a single device sync.
fn global_norm<B: AutodiffBackend>(grads: &GradientsParams, all: &[(ParamId, usize)]) -> f64 {
    let mut total: Option<Tensor<B::InnerBackend, 1>> = None;
    for &(id, rank) in all {
        let sq = match rank {
            1 => grads.get::<B::InnerBackend, 1>(id).map(|g| (g.clone() * g).sum()),
            _ => grads.get::<B::InnerBackend, 2>(id).map(|g| (g.clone() * g).sum()),
        };
        if let Some(sq) = sq {
            total = Some(match total {
                Some(t) => t + sq,
                None => sq,
            });
        }
    }
    total.map_or(0.0, |t| t.into_scalar().elem::<f64>().sqrt())
}

fn scale_grads<B: AutodiffBackend>(grads: &mut GradientsParams, all: &[(ParamId, usize)], k: f64) {
    for &(id, rank) in all {
        if rank == 1 {
            if let Some(g) = grads.remove::<B::InnerBackend, 1>(id) {
                grads.register(id, g.mul_scalar(k));
            }
        } else if let Some(g) = grads.remove::<B::InnerBackend, 2>(id) {
            grads.register(id, g.mul_scalar(k));
        }
    }
}
