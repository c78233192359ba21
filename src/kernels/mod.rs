//! Fused training kernels: causal attention, bias-free linear, GELU, LayerNorm and
//! cross-entropy, each with its own backward. Why (perf of `bench small`): composed from
//! burn's ops, the causal softmax alone was ~7 full passes over a [batch, heads, t, t] tensor
//! forward and ~15 backward, each allocating; splitting heads made strided copies forward and
//! backward (~11%); every matmul output was zeroed and then copied to realign it (~11%);
//! `exp`/`erf` were libm scalar calls. Fused, each is one pass forward and one backward, with
//! the attention's matmuls reading the heads in place.
//!
//! `Kernels` is a backend extension (burn's pattern for custom ops): the default methods
//! compose the same maths from burn tensor ops, so every backend (CUDA included) works
//! unchanged; the CPU backend (`cpu.rs`) overrides them with vectorised loops, and
//! `Autodiff<B>` (`autodiff.rs`) records them as single graph nodes whose backward calls the
//! matching backward kernel. Tests check the CPU kernels against the defaults and the
//! gradients against burn's autodiff of the composed ops.

mod autodiff;
mod cpu;
pub mod math;

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::TensorPrimitive;

/// LayerNorm's epsilon: burn's `LayerNormConfig` default, which the model uses.
pub const LN_EPS: f32 = 1e-5;

fn t<B: Backend, const D: usize>(x: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(x))
}

fn p<B: Backend, const D: usize>(x: Tensor<B, D>) -> FloatTensor<B> {
    x.into_primitive().tensor()
}

/// A backend with the fused kernels. Shapes: attention inputs and output [b, t, d], its saved
/// weights [b, heads, t, t]; row-wise ops take [rows, d]; `targets` [rows] token ids.
pub trait Kernels: Backend {
    /// Causal multi-head attention: q, k, v [b, t, d] with `heads` heads of d/heads, as the
    /// model's projections produce them → (y [b, t, d], attention weights [b, heads, t, t]).
    fn attention_fwd(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        heads: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        composite::attention_fwd::<Self>(q, k, v, heads)
    }

    /// (dq, dk, dv) from the inputs, the saved weights and dy.
    fn attention_bwd(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        probs: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        composite::attention_bwd::<Self>(q, k, v, probs, dy)
    }

    /// x [rows, i] · w [i, o] (a bias-free Linear layer).
    fn linear_fwd(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        composite::linear_fwd::<Self>(x, w)
    }

    /// (dx, dw) = (dy · wᵀ, xᵀ · dy).
    fn linear_bwd(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        composite::linear_bwd::<Self>(x, w, dy)
    }

    /// Exact (erf) GELU.
    fn gelu_fwd(x: FloatTensor<Self>) -> FloatTensor<Self> {
        composite::gelu_fwd::<Self>(x)
    }

    fn gelu_bwd(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        composite::gelu_bwd::<Self>(x, grad)
    }

    /// LayerNorm of [rows, d] over d: (y, x̂, 1/σ per row).
    fn layer_norm_fwd(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: Option<FloatTensor<Self>>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        composite::layer_norm_fwd::<Self>(x, gamma, beta)
    }

    /// (dx, dγ, dβ) from x̂, 1/σ, γ and dy.
    fn layer_norm_bwd(
        xhat: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        composite::layer_norm_bwd::<Self>(xhat, rstd, gamma, dy)
    }

    /// Mean cross-entropy (nats) of [rows, vocab] logits: (loss [1], log-sum-exp per row).
    fn cross_entropy_fwd(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        composite::cross_entropy_fwd::<Self>(logits, targets)
    }

    /// d logits = (softmax − onehot(target)) · grad / rows.
    fn cross_entropy_bwd(
        logits: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        targets: IntTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        composite::cross_entropy_bwd::<Self>(logits, lse, targets, grad)
    }
}

/// The kernels composed from burn tensor ops: every backend's default, the CPU kernels'
/// fallback for non-f32 tensors, and the tests' reference.
pub mod composite {
    use super::*;

    /// [b, t, d] → [b, heads, t, d/heads]
    fn split<B: Backend>(x: FloatTensor<B>, heads: usize) -> Tensor<B, 4> {
        let x = t::<B, 3>(x);
        let [b, n, d] = x.dims();
        x.reshape([b, n, heads, d / heads]).swap_dims(1, 2)
    }

    fn merge<B: Backend>(x: Tensor<B, 4>) -> FloatTensor<B> {
        let [b, h, n, hd] = x.dims();
        p(x.swap_dims(1, 2).reshape([b, n, h * hd]))
    }

    fn scale(hd: usize) -> f32 {
        1.0 / (hd as f32).sqrt()
    }

    pub fn attention_fwd<B: Backend>(
        q: FloatTensor<B>,
        k: FloatTensor<B>,
        v: FloatTensor<B>,
        heads: usize,
    ) -> (FloatTensor<B>, FloatTensor<B>) {
        let (q, k, v) = (split::<B>(q, heads), split::<B>(k, heads), split::<B>(v, heads));
        let [b, h, n, hd] = q.dims();
        let s = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale(hd));
        let mask = Tensor::<B, 2, Bool>::tril_mask([n, n], 0, &s.device()).reshape([1, 1, n, n]).expand([b, h, n, n]);
        let probs = burn::tensor::activation::softmax(s.mask_fill(mask, f32::NEG_INFINITY), 3);
        (merge(probs.clone().matmul(v)), p(probs))
    }

    pub fn attention_bwd<B: Backend>(
        q: FloatTensor<B>,
        k: FloatTensor<B>,
        v: FloatTensor<B>,
        probs: FloatTensor<B>,
        dy: FloatTensor<B>,
    ) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
        let pr = t::<B, 4>(probs);
        let heads = pr.dims()[1];
        let (q, k, v, dy) = (split::<B>(q, heads), split::<B>(k, heads), split::<B>(v, heads), split::<B>(dy, heads));
        let sc = scale(q.dims()[3]);
        let dv = pr.clone().swap_dims(2, 3).matmul(dy.clone());
        let dp = dy.matmul(v.swap_dims(2, 3));
        let ds = (pr.clone() * (dp.clone() - (pr * dp).sum_dim(3))).mul_scalar(sc);
        let dq = ds.clone().matmul(k);
        let dk = ds.swap_dims(2, 3).matmul(q);
        (merge(dq), merge(dk), merge(dv))
    }

    pub fn linear_fwd<B: Backend>(x: FloatTensor<B>, w: FloatTensor<B>) -> FloatTensor<B> {
        p(t::<B, 2>(x).matmul(t::<B, 2>(w)))
    }

    pub fn linear_bwd<B: Backend>(
        x: FloatTensor<B>,
        w: FloatTensor<B>,
        dy: FloatTensor<B>,
    ) -> (FloatTensor<B>, FloatTensor<B>) {
        let (x, w, dy) = (t::<B, 2>(x), t::<B, 2>(w), t::<B, 2>(dy));
        (p(dy.clone().matmul(w.transpose())), p(x.transpose().matmul(dy)))
    }

    pub fn gelu_fwd<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
        B::gelu(x)
    }

    pub fn gelu_bwd<B: Backend>(x: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
        B::gelu_backward(x, grad)
    }

    pub fn layer_norm_fwd<B: Backend>(
        x: FloatTensor<B>,
        gamma: FloatTensor<B>,
        beta: Option<FloatTensor<B>>,
    ) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
        let x = t::<B, 2>(x);
        let xc = x.clone() - x.mean_dim(1);
        let rstd = (xc.clone() * xc.clone()).mean_dim(1).add_scalar(LN_EPS).sqrt().recip();
        let xhat = xc * rstd.clone();
        let mut y = xhat.clone() * t::<B, 1>(gamma).unsqueeze::<2>();
        if let Some(b) = beta {
            y = y + t::<B, 1>(b).unsqueeze::<2>();
        }
        let n = rstd.dims()[0];
        (p(y), p(xhat), p(rstd.reshape([n])))
    }

    pub fn layer_norm_bwd<B: Backend>(
        xhat: FloatTensor<B>,
        rstd: FloatTensor<B>,
        gamma: FloatTensor<B>,
        dy: FloatTensor<B>,
    ) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
        let (xhat, dy) = (t::<B, 2>(xhat), t::<B, 2>(dy));
        let n = xhat.dims()[0];
        let rstd = t::<B, 1>(rstd).reshape([n, 1]);
        let dgamma = (dy.clone() * xhat.clone()).sum_dim(0).squeeze_dim::<1>(0);
        let dbeta = dy.clone().sum_dim(0).squeeze_dim::<1>(0);
        let dxhat = dy * t::<B, 1>(gamma).unsqueeze::<2>();
        let proj = (dxhat.clone() * xhat.clone()).mean_dim(1);
        let dx = (dxhat.clone() - dxhat.mean_dim(1) - xhat * proj) * rstd;
        (p(dx), p(dgamma), p(dbeta))
    }

    pub fn cross_entropy_fwd<B: Backend>(
        logits: FloatTensor<B>,
        targets: IntTensor<B>,
    ) -> (FloatTensor<B>, FloatTensor<B>) {
        let x = t::<B, 2>(logits);
        let n = x.dims()[0];
        let m = x.clone().max_dim(1);
        let lse = (x.clone() - m.clone()).exp().sum_dim(1).log() + m;
        let tg = Tensor::<B, 1, Int>::from_primitive(targets).reshape([n, 1]);
        let picked = x.gather(1, tg);
        (p((lse.clone() - picked).mean()), p(lse.reshape([n])))
    }

    pub fn cross_entropy_bwd<B: Backend>(
        logits: FloatTensor<B>,
        lse: FloatTensor<B>,
        targets: IntTensor<B>,
        grad: FloatTensor<B>,
    ) -> FloatTensor<B> {
        let x = t::<B, 2>(logits);
        let [n, v] = x.dims();
        let soft = (x - t::<B, 1>(lse).reshape([n, 1])).exp();
        let onehot = Tensor::<B, 1, Int>::from_primitive(targets).one_hot::<2>(v).float();
        let g = t::<B, 1>(grad).reshape([1, 1]).div_scalar(n as f32);
        p((soft - onehot) * g)
    }
}

/// CUDA runs the composed defaults (no hand-written GPU kernels).
#[cfg(feature = "cuda")]
impl Kernels for burn::backend::cuda::Cuda {}

/// A training backend: autodiff with the kernels, and the kernels on its inner backend too
/// (evaluation runs without autodiff).
pub trait TrainBackend: AutodiffBackend<InnerBackend: Kernels> + Kernels {}

impl<B: AutodiffBackend<InnerBackend: Kernels> + Kernels> TrainBackend for B {}

/// Causal multi-head attention of the projections q, k, v [b, t, d] → [b, t, d].
pub fn attention<B: Kernels>(q: Tensor<B, 3>, k: Tensor<B, 3>, v: Tensor<B, 3>, heads: usize) -> Tensor<B, 3> {
    t(B::attention_fwd(p(q), p(k), p(v), heads).0)
}

/// A burn `Linear` applied to [b, t, i] (the model's are bias-free; a bias is added apart).
pub fn linear<B: Kernels>(lin: &burn::nn::Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [b, n, i] = x.dims();
    let mut y = t::<B, 2>(B::linear_fwd(p(x.reshape([b * n, i])), p(lin.weight.val())));
    if let Some(bias) = &lin.bias {
        y = y + bias.val().unsqueeze::<2>();
    }
    let o = y.dims()[1];
    y.reshape([b, n, o])
}

pub fn gelu<B: Kernels, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    t(B::gelu_fwd(p(x)))
}

/// LayerNorm over the last axis with burn's `LayerNorm` parameters (and its epsilon).
pub fn layer_norm<B: Kernels>(ln: &burn::nn::LayerNorm<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [b, n, d] = x.dims();
    let beta = ln.beta.as_ref().map(|b| p(b.val()));
    let (y, _, _) = B::layer_norm_fwd(p(x.reshape([b * n, d])), p(ln.gamma.val()), beta);
    t::<B, 2>(y).reshape([b, n, d])
}

/// Mean cross-entropy (nats/token) of [rows, vocab] logits against [rows] targets.
pub fn cross_entropy<B: Kernels>(logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    t(B::cross_entropy_fwd(p(logits), targets.into_primitive()).0)
}

#[cfg(test)]
mod tests;
