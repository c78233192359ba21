//! The fused kernels as single autodiff graph nodes: forward runs the inner backend's kernel
//! and keeps what the backward kernel needs (burn's custom-op pattern; the state is held
//! directly rather than recomputed, like burn's compute-bound ops).

use super::Kernels;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::TensorMetadata;

/// Registers each parent's gradient (a parent that needs none is `None`). A macro because
/// burn-autodiff does not export the parents' node type.
macro_rules! register {
    ($grads:expr, $parents:expr, $gs:expr) => {
        for (node, g) in $parents.into_iter().zip($gs) {
            if let Some(node) = node {
                $grads.register::<B>(node.id, g);
            }
        }
    };
}

#[derive(Debug)]
struct Attention;

impl<B: Kernels> Backward<B, 3> for Attention {
    /// (q, k, v, attention weights)
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<B>(&ops.node);
        let (q, k, v, probs) = ops.state;
        let (dq, dk, dv) = B::attention_bwd(q, k, v, probs, dy);
        register!(grads, ops.parents, [dq, dk, dv]);
    }
}

#[derive(Debug)]
struct Linear;

impl<B: Kernels> Backward<B, 2> for Linear {
    /// (x, w)
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<B>(&ops.node);
        let (x, w) = ops.state;
        let (dx, dw) = B::linear_bwd(x, w, dy);
        register!(grads, ops.parents, [dx, dw]);
    }
}

#[derive(Debug)]
struct Gelu;

impl<B: Kernels> Backward<B, 1> for Gelu {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |g| B::gelu_bwd(x, g));
    }
}

#[derive(Debug)]
struct LayerNorm;

impl<B: Kernels> Backward<B, 3> for LayerNorm {
    /// (x̂, 1/σ, γ)
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<B>(&ops.node);
        let (xhat, rstd, gamma) = ops.state;
        let (dx, dg, db) = B::layer_norm_bwd(xhat, rstd, gamma, dy);
        register!(grads, ops.parents, [dx, dg, db]);
    }
}

#[derive(Debug)]
struct CrossEntropy;

impl<B: Kernels> Backward<B, 1> for CrossEntropy {
    /// (logits, log-sum-exp per row, targets)
    type State = (FloatTensor<B>, FloatTensor<B>, IntTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (logits, lse, targets) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |g| B::cross_entropy_bwd(logits, lse, targets, g));
    }
}

impl<B: Kernels, C: CheckpointStrategy> Kernels for Autodiff<B, C> {
    fn attention_fwd(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        heads: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (y, probs) = B::attention_fwd(q.primitive.clone(), k.primitive.clone(), v.primitive.clone(), heads);
        let y = match Attention.prepare::<C>([q.node, k.node, v.node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((q.primitive, k.primitive, v.primitive, probs.clone()), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        (y, Self::from_inner(probs))
    }

    fn linear_fwd(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        let y = B::linear_fwd(x.primitive.clone(), w.primitive.clone());
        match Linear.prepare::<C>([x.node, w.node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((x.primitive, w.primitive), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn gelu_fwd(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let out = B::gelu_fwd(x.primitive.clone());
        match Gelu.prepare::<C>([x.node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(x.primitive, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn layer_norm_fwd(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: Option<FloatTensor<Self>>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // A missing β acts as an untracked zero (its gradient is then dropped).
        let beta = beta.unwrap_or_else(|| {
            let g = &gamma.primitive;
            Self::from_inner(B::float_zeros(g.shape(), &B::float_device(g), g.dtype().into()))
        });
        let (y, xhat, rstd) = B::layer_norm_fwd(x.primitive, gamma.primitive.clone(), Some(beta.primitive));
        let y = match LayerNorm.prepare::<C>([x.node, gamma.node, beta.node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((xhat.clone(), rstd.clone(), gamma.primitive), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        (y, Self::from_inner(xhat), Self::from_inner(rstd))
    }

    fn cross_entropy_fwd(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (loss, lse) = B::cross_entropy_fwd(logits.primitive.clone(), targets.clone());
        let loss = match CrossEntropy.prepare::<C>([logits.node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((logits.primitive, lse.clone(), targets), loss),
            OpsKind::UnTracked(prep) => prep.finish(loss),
        };
        (loss, Self::from_inner(lse))
    }

    // The backward kernels keep their composed defaults here: the nodes above call them on
    // the inner backend; on autodiff tensors they would be a second derivative (never taken).
}
