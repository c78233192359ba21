//! The CPU kernels against the composed reference: values on the plain backend, gradients
//! through autodiff (the fused nodes' backward against burn's autodiff of the composition).

use super::*;
use crate::backend::Cpu;
use burn::backend::Flex;
use burn::tensor::Distribution;

type Ad = Cpu;

fn close<const D: usize>(a: Tensor<Flex, D>, b: Tensor<Flex, D>, tol: f32, what: &str) {
    let (a, b) = (a.into_data().to_vec::<f32>().unwrap(), b.into_data().to_vec::<f32>().unwrap());
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!((x - y).abs() <= tol * scale, "{what}[{i}]: {x} vs {y} (scale {scale})");
    }
}

fn rand<B: Backend, const D: usize>(shape: [usize; D], seed: u64) -> Tensor<B, D> {
    crate::backend::seeded::<B, _>(&Default::default(), seed, || {
        Tensor::random(shape, Distribution::Normal(0.0, 2.0), &Default::default())
    })
}

/// Gradients of Σ w·f(inputs) with respect to each input, through autodiff.
fn grads<const D: usize, const N: usize>(
    xs: [Tensor<Flex, D>; N],
    w: Tensor<Flex, D>,
    f: impl Fn([Tensor<Ad, D>; N]) -> Tensor<Ad, D>,
) -> (Tensor<Flex, D>, [Tensor<Flex, D>; N]) {
    let xs = xs.map(|x| Tensor::<Ad, D>::from_inner(x).require_grad());
    let y = f(xs.clone());
    let g = (y.clone() * Tensor::<Ad, D>::from_inner(w)).sum().backward();
    (y.inner(), xs.map(|x| x.grad(&g).unwrap()))
}

#[test]
fn attention_matches_composition() {
    for ([b, n, d], heads, seed) in [([2, 17, 24], 3, 1), ([1, 64, 64], 2, 2), ([3, 5, 8], 1, 3)] {
        let qkv = [0, 1, 2].map(|i| rand::<Flex, 3>([b, n, d], seed * 10 + i));
        let w = rand::<Flex, 3>([b, n, d], seed * 10 + 5);
        let fused = grads(qkv.clone(), w.clone(), |[q, k, v]| attention(q, k, v, heads));
        let reference = grads(qkv, w, |[q, k, v]| t(composite::attention_fwd::<Ad>(p(q), p(k), p(v), heads).0));
        close(fused.0, reference.0, 2e-6, "y");
        for (i, (a, r)) in fused.1.into_iter().zip(reference.1).enumerate() {
            close(a, r, 2e-5, ["dq", "dk", "dv"][i]);
        }
    }
}

#[test]
fn linear_matches_burn() {
    let dev = Default::default();
    for bias in [false, true] {
        let lin = crate::backend::seeded_module::<Ad, _>(&dev, 3, || {
            burn::nn::LinearConfig::new(24, 40).with_bias(bias).init::<Ad>(&dev)
        });
        let x = rand::<Flex, 3>([2, 7, 24], 4);
        let w = rand::<Flex, 3>([2, 7, 40], 5);
        let run = |fused: bool| {
            let xa = Tensor::<Ad, 3>::from_inner(x.clone()).require_grad();
            let y = if fused { linear(&lin, xa.clone()) } else { lin.forward(xa.clone()) };
            let g = (y.clone() * Tensor::<Ad, 3>::from_inner(w.clone())).sum().backward();
            (y.inner(), xa.grad(&g).unwrap(), lin.weight.val().grad(&g).unwrap())
        };
        let (a, b) = (run(true), run(false));
        close(a.0, b.0, 1e-6, "y");
        close(a.1, b.1, 1e-6, "dx");
        close(a.2, b.2, 1e-6, "dw");
    }
}

#[test]
fn gelu_matches_burn() {
    let x = rand::<Flex, 2>([33, 70], 4);
    close(gelu(x.clone()), burn::tensor::activation::gelu(x.clone()), 1e-6, "gelu");
    let w = rand::<Flex, 2>([33, 70], 5);
    let (_, [fused]) = grads([x.clone()], w.clone(), |[x]| gelu(x));
    let (_, [reference]) = grads([x], w, |[x]| burn::tensor::activation::gelu(x));
    close(fused, reference, 1e-6, "d gelu");
}

#[test]
fn layer_norm_matches_burn() {
    let dev = Default::default();
    let mut ln = burn::nn::LayerNormConfig::new(40).init::<Ad>(&dev);
    // Non-trivial γ and β so their gradients and use are exercised.
    ln.gamma = burn::module::Param::from_tensor(Tensor::from_inner(rand::<Flex, 1>([40], 6)));
    ln.beta = Some(burn::module::Param::from_tensor(Tensor::from_inner(rand::<Flex, 1>([40], 7))));
    let x = rand::<Flex, 3>([3, 11, 40], 8).add_scalar(3.0);
    let w = rand::<Flex, 3>([3, 11, 40], 9);
    let run = |fused: bool| {
        let xa = Tensor::<Ad, 3>::from_inner(x.clone()).require_grad();
        let y = if fused { layer_norm(&ln, xa.clone()) } else { ln.forward(xa.clone()) };
        let g = (y.clone() * Tensor::<Ad, 3>::from_inner(w.clone())).sum().backward();
        let dgamma = ln.gamma.val().grad(&g).unwrap();
        let dbeta = ln.beta.as_ref().unwrap().val().grad(&g).unwrap();
        (y.inner(), xa.grad(&g).unwrap(), dgamma, dbeta)
    };
    let (a, b) = (run(true), run(false));
    close(a.0, b.0, 2e-6, "y");
    close(a.1, b.1, 2e-5, "dx");
    close(a.2, b.2, 2e-6, "dgamma");
    close(a.3, b.3, 2e-6, "dbeta");
}

#[test]
fn cross_entropy_matches_burn() {
    let dev = Default::default();
    let (n, v) = (37, 50);
    let x = rand::<Flex, 2>([n, v], 10);
    let ids: Vec<i64> = (0..n as i64).map(|i| (i * 7) % v as i64).collect();
    let targets = || Tensor::<Ad, 1, Int>::from_data(TensorData::new(ids.clone(), [n]), &dev);
    let run = |fused: bool| {
        let xa = Tensor::<Ad, 2>::from_inner(x.clone()).require_grad();
        let loss = if fused {
            cross_entropy(xa.clone(), targets())
        } else {
            burn::nn::loss::CrossEntropyLossConfig::new().init(&dev).forward(xa.clone(), targets())
        };
        let g = loss.clone().mul_scalar(3.0).backward();
        (loss.inner(), xa.grad(&g).unwrap())
    };
    let (a, b) = (run(true), run(false));
    close(a.0, b.0, 1e-6, "loss");
    close(a.1, b.1, 1e-6, "d logits");
}

#[test]
fn kernels_are_deterministic() {
    // Exact resume relies on identical results from identical inputs.
    let x = rand::<Flex, 3>([2, 40, 16], 11);
    let run = || attention(x.clone(), x.clone(), x.clone(), 2).into_data();
    assert_eq!(run(), run());
}

/// The composed backward kernels (every other backend's, e.g. CUDA's) against the CPU ones.
#[test]
fn composed_backward_kernels_match_the_cpu_ones() {
    let prim = |x: Tensor<Flex, 3>| p(x);
    let (q, k, v, dy) = (
        rand::<Flex, 3>([2, 9, 12], 20),
        rand::<Flex, 3>([2, 9, 12], 21),
        rand::<Flex, 3>([2, 9, 12], 22),
        rand::<Flex, 3>([2, 9, 12], 23),
    );
    let (_, probs) = Flex::attention_fwd(prim(q.clone()), prim(k.clone()), prim(v.clone()), 3);
    let args = || (prim(q.clone()), prim(k.clone()), prim(v.clone()), probs.clone(), prim(dy.clone()));
    let (a, b) = (args(), args());
    let cpu = Flex::attention_bwd(a.0, a.1, a.2, a.3, a.4);
    let com = composite::attention_bwd::<Flex>(b.0, b.1, b.2, b.3, b.4);
    for (i, (x, y)) in [cpu.0, cpu.1, cpu.2].into_iter().zip([com.0, com.1, com.2]).enumerate() {
        close(t::<Flex, 3>(x), t::<Flex, 3>(y), 2e-5, ["dq", "dk", "dv"][i]);
    }

    let (x, w, dy) = (rand::<Flex, 2>([10, 6], 24), rand::<Flex, 2>([6, 4], 25), rand::<Flex, 2>([10, 4], 26));
    let cpu = Flex::linear_bwd(p(x.clone()), p(w.clone()), p(dy.clone()));
    let com = composite::linear_bwd::<Flex>(p(x), p(w), p(dy));
    close(t::<Flex, 2>(cpu.0), t::<Flex, 2>(com.0), 1e-6, "linear dx");
    close(t::<Flex, 2>(cpu.1), t::<Flex, 2>(com.1), 1e-6, "linear dw");

    let (x, g, b) = (rand::<Flex, 2>([10, 20], 27), rand::<Flex, 1>([20], 28), rand::<Flex, 1>([20], 29));
    let dy = rand::<Flex, 2>([10, 20], 30);
    let (_, xhat, rstd) = Flex::layer_norm_fwd(p(x), p(g.clone()), Some(p(b)));
    let cpu = Flex::layer_norm_bwd(xhat.clone(), rstd.clone(), p(g.clone()), p(dy.clone()));
    let com = composite::layer_norm_bwd::<Flex>(xhat, rstd, p(g), p(dy));
    close(t::<Flex, 2>(cpu.0), t::<Flex, 2>(com.0), 2e-5, "ln dx");
    close(t::<Flex, 1>(cpu.1), t::<Flex, 1>(com.1), 1e-6, "ln dgamma");
    close(t::<Flex, 1>(cpu.2), t::<Flex, 1>(com.2), 1e-6, "ln dbeta");

    let logits = rand::<Flex, 2>([7, 11], 31);
    let ids = || {
        Tensor::<Flex, 1, Int>::from_data(
            TensorData::new((0..7i64).map(|i| (i * 3) % 11).collect(), [7]),
            &Default::default(),
        )
        .into_primitive()
    };
    let (_, lse) = Flex::cross_entropy_fwd(p(logits.clone()), ids());
    let g = || p(Tensor::<Flex, 1>::from_floats([2.5], &Default::default()));
    let cpu = Flex::cross_entropy_bwd(p(logits.clone()), lse.clone(), ids(), g());
    let com = composite::cross_entropy_bwd::<Flex>(p(logits), lse, ids(), g());
    close(t::<Flex, 2>(cpu), t::<Flex, 2>(com), 1e-6, "cross-entropy d logits");
}
