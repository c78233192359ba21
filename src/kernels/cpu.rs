//! The fused kernels on burn's CPU backend (`Flex`): one pass over contiguous f32 rows,
//! vectorised by `simd_fn!` (see math.rs), rows (or attention heads) split across rayon's
//! pool (one thread per job in a grid); matmuls call `gemm` (burn-flex's own matmul engine)
//! directly with strides. Anything that is not f32 goes to the composed version. Every row is computed
//! the same way whatever the thread count, and the one cross-row sum (LayerNorm's dγ, dβ)
//! runs in a fixed order, so results are bit-identical from run to run (exact resume).

use super::math::{self, simd_fn};
use super::{composite, Kernels, LN_EPS};
use burn::backend::flex::{Flex, FlexTensor, Layout};
use burn::tensor::{Bytes, DType, Shape, TensorMetadata};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Rows per rayon task: at least ~32k elements, so small tensors stay on one thread.
fn rows_per_task(row_len: usize) -> usize {
    (32_768 / row_len.max(1)).max(1)
}

fn out(v: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(v), Layout::contiguous(shape), DType::F32)
}

/// The tensor as one contiguous f32 buffer (copied only if it is a strided view).
fn dense(x: &FlexTensor) -> FlexTensor {
    x.to_contiguous()
}

fn is_f32(xs: &[&FlexTensor]) -> bool {
    xs.iter().all(|x| x.dtype() == DType::F32)
}

fn token_ids(x: &FlexTensor) -> Option<Vec<usize>> {
    let x = dense(x);
    match x.dtype() {
        DType::I64 => Some(x.as_slice::<i64>()?.iter().map(|&v| v as usize).collect()),
        DType::I32 => Some(x.as_slice::<i32>()?.iter().map(|&v| v as usize).collect()),
        _ => None,
    }
}

// Softmax rows of one [t, t] score block in place: row i is query i, which sees keys 0..=i.
simd_fn!(
    fn softmax_block(s: &mut [f32], t: usize, scale: f32) {
        for (i, row) in s.chunks_exact_mut(t).enumerate() {
            let (seen, masked) = row.split_at_mut(i + 1);
            let m = math::max(seen) * scale;
            for v in seen.iter_mut() {
                *v = math::exp(*v * scale - m);
            }
            let inv = 1.0 / math::sum(seen);
            for v in seen.iter_mut() {
                *v *= inv;
            }
            masked.fill(0.0);
        }
    }
);

// d scores of one block in place over d probs: scale · p · (dp − Σ p·dp), 0 where masked.
simd_fn!(
    fn softmax_back_block(p: &[f32], dp: &mut [f32], t: usize, scale: f32) {
        for (i, (p, g)) in p.chunks_exact(t).zip(dp.chunks_exact_mut(t)).enumerate() {
            let n = i + 1;
            let dot = math::dot(&p[..n], &g[..n]);
            for (gv, &pv) in g[..n].iter_mut().zip(&p[..n]) {
                *gv = scale * pv * (*gv - dot);
            }
            g[n..].fill(0.0);
        }
    }
);

/// A raw pointer that rayon tasks may share: each task writes a disjoint set of elements
/// (one head's columns), which slices cannot express.
#[derive(Clone, Copy)]
struct Shared(*mut f32);
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

/// dst[m×n] = lhs[m×k] · rhs[k×n]; each matrix is (pointer, row stride, column stride), so
/// transposes and one head's columns of a [t, d] tensor are read in place.
///
/// # Safety
/// The pointers must cover the strided extents, and `dst` must not overlap the inputs.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    (lhs, lhs_rs, lhs_cs): (*const f32, usize, usize),
    (rhs, rhs_rs, rhs_cs): (*const f32, usize, usize),
) {
    // The same threshold as burn-flex's own matmul (below it, threads cost more than they save).
    let par = if m * n * k >= 192 * 192 * 192 { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None };
    // SAFETY: forwarded to the caller. read_dst = false: dst is written, never read.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            false,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// A buffer of `len` floats that `fill` initialises, every element (the kernels' loops and
/// `matmul` with read_dst = false cover their whole output). Not zeroed first: zeroing was 5%
/// of a step (perf), and burn-flex's matmul output is zeroed and then copied to realign it.
fn written(len: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut v = Vec::<f32>::with_capacity(len);
    fill(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: `fill` wrote all `len` elements (each caller's kernel writes its whole output).
    unsafe { v.set_len(len) };
    v
}

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

simd_fn!(
    fn gelu_slice(x: &[f32], o: &mut [MaybeUninit<f32>]) {
        for (d, &v) in o.iter_mut().zip(x) {
            d.write(0.5 * v * (1.0 + math::erf(v * FRAC_1_SQRT_2)));
        }
    }
);

simd_fn!(
    fn gelu_back_slice(x: &[f32], g: &[f32], o: &mut [MaybeUninit<f32>]) {
        for ((d, &v), &gv) in o.iter_mut().zip(x).zip(g) {
            let cdf = 0.5 * (1.0 + math::erf(v * FRAC_1_SQRT_2));
            let pdf = FRAC_1_SQRT_2PI * math::exp(-0.5 * v * v);
            d.write(gv * (cdf + v * pdf));
        }
    }
);

simd_fn!(
    fn ln_rows(
        x: &[f32],
        gamma: &[f32],
        beta: Option<&[f32]>,
        y: &mut [MaybeUninit<f32>],
        xhat: &mut [MaybeUninit<f32>],
        rstd: &mut [MaybeUninit<f32>],
    ) {
        let d = gamma.len();
        for (r, ((xr, yr), hr)) in
            x.chunks_exact(d).zip(y.chunks_exact_mut(d)).zip(xhat.chunks_exact_mut(d)).enumerate()
        {
            let mean = math::sum(xr) / d as f32;
            // Two passes (mean, then squared deviations): no cancellation for rows far from 0.
            let mut acc = [0f32; math::LANES];
            let mut it = xr.chunks_exact(math::LANES);
            for c in &mut it {
                for l in 0..math::LANES {
                    acc[l] += (c[l] - mean) * (c[l] - mean);
                }
            }
            let mut ss: f32 = acc.iter().sum();
            for &v in it.remainder() {
                ss += (v - mean) * (v - mean);
            }
            let rs = 1.0 / (ss / d as f32 + LN_EPS).sqrt();
            rstd[r].write(rs);
            match beta {
                Some(b) => {
                    for ((((o, h), &v), &g), &bv) in yr.iter_mut().zip(hr.iter_mut()).zip(xr).zip(gamma).zip(b) {
                        let hv = (v - mean) * rs;
                        h.write(hv);
                        o.write(hv * g + bv);
                    }
                }
                None => {
                    for (((o, h), &v), &g) in yr.iter_mut().zip(hr.iter_mut()).zip(xr).zip(gamma) {
                        let hv = (v - mean) * rs;
                        h.write(hv);
                        o.write(hv * g);
                    }
                }
            }
        }
    }
);

simd_fn!(
    fn ln_back_rows(xhat: &[f32], rstd: &[f32], gamma: &[f32], dy: &[f32], dx: &mut [f32]) {
        let d = gamma.len();
        for (r, ((h, g), o)) in xhat.chunks_exact(d).zip(dy.chunks_exact(d)).zip(dx.chunks_exact_mut(d)).enumerate() {
            // o holds dx̂ = dy·γ first, then dx = (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) / σ.
            for ((o, &gv), &w) in o.iter_mut().zip(g).zip(gamma) {
                *o = gv * w;
            }
            let a = math::sum(o) / d as f32;
            let b = math::dot(o, h) / d as f32;
            let rs = rstd[r];
            for (o, &hv) in o.iter_mut().zip(h) {
                *o = rs * (*o - a - hv * b);
            }
        }
    }
);

simd_fn!(
    fn ln_param_grads(xhat: &[f32], dy: &[f32], dgamma: &mut [f32], dbeta: &mut [f32]) {
        let d = dgamma.len();
        for (h, g) in xhat.chunks_exact(d).zip(dy.chunks_exact(d)) {
            for (((dg, db), &hv), &gv) in dgamma.iter_mut().zip(dbeta.iter_mut()).zip(h).zip(g) {
                *dg += gv * hv;
                *db += gv;
            }
        }
    }
);

simd_fn!(
    fn ce_rows(x: &[f32], targets: &[usize], lse: &mut [f32], loss: &mut [f32]) {
        let v = x.len() / lse.len();
        for (r, row) in x.chunks_exact(v).enumerate() {
            let m = math::max(row);
            let mut acc = [0f32; math::LANES];
            let mut it = row.chunks_exact(math::LANES);
            for c in &mut it {
                for l in 0..math::LANES {
                    acc[l] += math::exp(c[l] - m);
                }
            }
            let mut z: f32 = acc.iter().sum();
            for &u in it.remainder() {
                z += math::exp(u - m);
            }
            lse[r] = m + z.ln();
            loss[r] = lse[r] - row[targets[r]];
        }
    }
);

simd_fn!(
    fn ce_back_rows(x: &[f32], lse: &[f32], targets: &[usize], k: f32, o: &mut [f32]) {
        let v = x.len() / lse.len();
        for (r, (row, dst)) in x.chunks_exact(v).zip(o.chunks_exact_mut(v)).enumerate() {
            let l = lse[r];
            for (d, &u) in dst.iter_mut().zip(row) {
                *d = k * math::exp(u - l);
            }
            dst[targets[r]] -= k;
        }
    }
);

impl Kernels for Flex {
    fn attention_fwd(q: FlexTensor, k: FlexTensor, v: FlexTensor, heads: usize) -> (FlexTensor, FlexTensor) {
        let shape = q.shape();
        let [b, t, d] = [shape[0], shape[1], shape[2]];
        if !is_f32(&[&q, &k, &v]) || t == 0 || d % heads != 0 {
            return composite::attention_fwd::<Flex>(q, k, v, heads);
        }
        let hd = d / heads;
        let scale = 1.0 / (hd as f32).sqrt();
        let (q, k, v) = (dense(&q), dense(&k), dense(&v));
        let (qs, ks, vs) = (q.as_slice::<f32>().unwrap(), k.as_slice::<f32>().unwrap(), v.as_slice::<f32>().unwrap());
        let mut probs = Vec::<f32>::with_capacity(b * heads * t * t);
        let mut y = Vec::<f32>::with_capacity(b * t * d);
        let (yp, pp) = (Shared(y.as_mut_ptr()), Shared(probs.as_mut_ptr()));
        (0..b * heads).into_par_iter().for_each(|bh| {
            // Head h of sequence bi: columns h*hd.. of the [t, d] rows, row stride d.
            let base = (bh / heads) * t * d + (bh % heads) * hd;
            let (yp, pp) = (yp, pp);
            // SAFETY: every pointer stays inside its buffer (base + (t-1)*d + hd <= b*t*d); each
            // (bi, h) writes only its own columns of y and its own [t, t] block of probs, which
            // the first matmul fills completely before the slice over it is made.
            unsafe {
                let sp = pp.0.add(bh * t * t);
                matmul((t, t, hd), sp, t, (qs[base..].as_ptr(), d, 1), (ks[base..].as_ptr(), 1, d));
                let s = std::slice::from_raw_parts_mut(sp, t * t);
                softmax_block(s, t, scale);
                matmul((t, hd, t), yp.0.add(base), d, (s.as_ptr(), t, 1), (vs[base..].as_ptr(), d, 1));
            }
        });
        // SAFETY: the b*heads blocks together wrote every element of y and of probs.
        unsafe {
            y.set_len(b * t * d);
            probs.set_len(b * heads * t * t);
        }
        (out(y, shape), out(probs, Shape::new([b, heads, t, t])))
    }

    fn attention_bwd(
        q: FlexTensor,
        k: FlexTensor,
        v: FlexTensor,
        probs: FlexTensor,
        dy: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let shape = q.shape();
        let [b, t, d] = [shape[0], shape[1], shape[2]];
        let heads = probs.shape()[1];
        if !is_f32(&[&q, &k, &v, &probs, &dy]) || t == 0 {
            return composite::attention_bwd::<Flex>(q, k, v, probs, dy);
        }
        let hd = d / heads;
        let scale = 1.0 / (hd as f32).sqrt();
        let (q, k, v, pr, dy) = (dense(&q), dense(&k), dense(&v), dense(&probs), dense(&dy));
        let [qs, ks, vs, ps, dys] = [&q, &k, &v, &pr, &dy].map(|x| x.as_slice::<f32>().unwrap());
        let n = b * t * d;
        let (mut dq, mut dk, mut dv) =
            (Vec::<f32>::with_capacity(n), Vec::<f32>::with_capacity(n), Vec::<f32>::with_capacity(n));
        let (dqp, dkp, dvp) = (Shared(dq.as_mut_ptr()), Shared(dk.as_mut_ptr()), Shared(dv.as_mut_ptr()));
        (0..b * heads).into_par_iter().for_each_init(
            || vec![0f32; t * t],
            |ds, bh| {
                let base = (bh / heads) * t * d + (bh % heads) * hd;
                let p = &ps[bh * t * t..(bh + 1) * t * t];
                let (q, k, v, dy) =
                    (qs[base..].as_ptr(), ks[base..].as_ptr(), vs[base..].as_ptr(), dys[base..].as_ptr());
                let (dqp, dkp, dvp) = (dqp, dkp, dvp);
                // SAFETY: as in the forward; each (bi, h) writes only its own columns.
                unsafe {
                    matmul((t, t, hd), ds.as_mut_ptr(), t, (dy, d, 1), (v, 1, d)); // dP = dY·Vᵀ
                    matmul((t, hd, t), dvp.0.add(base), d, (p.as_ptr(), 1, t), (dy, d, 1)); // dV = Pᵀ·dY
                    softmax_back_block(p, ds, t, scale); // dS
                    matmul((t, hd, t), dqp.0.add(base), d, (ds.as_ptr(), t, 1), (k, d, 1)); // dQ = dS·K
                    matmul((t, hd, t), dkp.0.add(base), d, (ds.as_ptr(), 1, t), (q, d, 1));
                    // dK = dSᵀ·Q
                }
            },
        );
        // SAFETY: all b*heads blocks wrote their columns of dq, dk, dv.
        unsafe {
            dq.set_len(n);
            dk.set_len(n);
            dv.set_len(n);
        }
        (out(dq, shape.clone()), out(dk, shape.clone()), out(dv, shape))
    }

    fn linear_fwd(x: FlexTensor, w: FlexTensor) -> FlexTensor {
        let (rows, i, o) = (x.shape()[0], w.shape()[0], w.shape()[1]);
        if !is_f32(&[&x, &w]) || i == 0 {
            return composite::linear_fwd::<Flex>(x, w);
        }
        let (x, w) = (dense(&x), dense(&w));
        let (xs, ws) = (x.as_slice::<f32>().unwrap(), w.as_slice::<f32>().unwrap());
        // SAFETY: x is [rows, i] and w [i, o], contiguous; the output is [rows, o].
        let y = written(rows * o, |dst| unsafe {
            matmul((rows, o, i), dst.as_mut_ptr().cast(), o, (xs.as_ptr(), i, 1), (ws.as_ptr(), o, 1))
        });
        out(y, Shape::new([rows, o]))
    }

    fn linear_bwd(x: FlexTensor, w: FlexTensor, dy: FlexTensor) -> (FlexTensor, FlexTensor) {
        let (rows, i, o) = (x.shape()[0], w.shape()[0], w.shape()[1]);
        if !is_f32(&[&x, &w, &dy]) || i == 0 || o == 0 || rows == 0 {
            return composite::linear_bwd::<Flex>(x, w, dy);
        }
        let (x, w, dy) = (dense(&x), dense(&w), dense(&dy));
        let [xs, ws, gs] = [&x, &w, &dy].map(|t| t.as_slice::<f32>().unwrap());
        // SAFETY: shapes as in the forward; dy is [rows, o]. dx = dy·wᵀ, dw = xᵀ·dy.
        let dx = written(rows * i, |dst| unsafe {
            matmul((rows, i, o), dst.as_mut_ptr().cast(), i, (gs.as_ptr(), o, 1), (ws.as_ptr(), 1, o))
        });
        let dw = written(i * o, |dst| unsafe {
            matmul((i, o, rows), dst.as_mut_ptr().cast(), o, (xs.as_ptr(), 1, i), (gs.as_ptr(), o, 1))
        });
        (out(dx, Shape::new([rows, i])), out(dw, Shape::new([i, o])))
    }

    fn gelu_fwd(x: FlexTensor) -> FlexTensor {
        if !is_f32(&[&x]) {
            return composite::gelu_fwd::<Flex>(x);
        }
        let shape = x.shape();
        let x = dense(&x);
        let x = x.as_slice::<f32>().unwrap();
        let o = written(x.len(), |o| {
            o.par_chunks_mut(32_768).zip(x.par_chunks(32_768)).for_each(|(o, x)| gelu_slice(x, o))
        });
        out(o, shape)
    }

    fn gelu_bwd(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        if !is_f32(&[&x, &grad]) {
            return composite::gelu_bwd::<Flex>(x, grad);
        }
        let shape = x.shape();
        let (x, g) = (dense(&x), dense(&grad));
        let (x, g) = (x.as_slice::<f32>().unwrap(), g.as_slice::<f32>().unwrap());
        let o = written(x.len(), |o| {
            o.par_chunks_mut(32_768)
                .zip(x.par_chunks(32_768).zip(g.par_chunks(32_768)))
                .for_each(|(o, (x, g))| gelu_back_slice(x, g, o))
        });
        out(o, shape)
    }

    fn layer_norm_fwd(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: Option<FlexTensor>,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        if !is_f32(&[&x, &gamma]) || beta.as_ref().is_some_and(|b| b.dtype() != DType::F32) {
            return composite::layer_norm_fwd::<Flex>(x, gamma, beta);
        }
        let shape = x.shape();
        let d = shape[1];
        let (x, gamma, beta) = (dense(&x), dense(&gamma), beta.map(|b| dense(&b)));
        let (xs, gs) = (x.as_slice::<f32>().unwrap(), gamma.as_slice::<f32>().unwrap());
        let bs = beta.as_ref().map(|b| b.as_slice::<f32>().unwrap());
        let n = xs.len() / d;
        let rows = rows_per_task(d);
        let (mut y, mut xhat, mut rstd) =
            (Vec::with_capacity(xs.len()), Vec::with_capacity(xs.len()), Vec::with_capacity(n));
        y.spare_capacity_mut()[..xs.len()]
            .par_chunks_mut(rows * d)
            .zip(xhat.spare_capacity_mut()[..xs.len()].par_chunks_mut(rows * d))
            .zip(rstd.spare_capacity_mut()[..n].par_chunks_mut(rows).zip(xs.par_chunks(rows * d)))
            .for_each(|((y, h), (r, x))| ln_rows(x, gs, bs, y, h, r));
        // SAFETY: ln_rows wrote every row's y, x̂ and 1/σ.
        unsafe {
            y.set_len(xs.len());
            xhat.set_len(xs.len());
            rstd.set_len(n);
        }
        (out(y, shape.clone()), out(xhat, shape), out(rstd, Shape::new([n])))
    }

    fn layer_norm_bwd(
        xhat: FlexTensor,
        rstd: FlexTensor,
        gamma: FlexTensor,
        dy: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        if !is_f32(&[&xhat, &rstd, &gamma, &dy]) {
            return composite::layer_norm_bwd::<Flex>(xhat, rstd, gamma, dy);
        }
        let shape = xhat.shape();
        let d = shape[1];
        let (h, r, g, dyt) = (dense(&xhat), dense(&rstd), dense(&gamma), dense(&dy));
        let (hs, rs, gs, dys) = (
            h.as_slice::<f32>().unwrap(),
            r.as_slice::<f32>().unwrap(),
            g.as_slice::<f32>().unwrap(),
            dyt.as_slice::<f32>().unwrap(),
        );
        let mut dx = vec![0f32; hs.len()];
        let rows = rows_per_task(d);
        dx.par_chunks_mut(rows * d)
            .zip(hs.par_chunks(rows * d).zip(dys.par_chunks(rows * d)))
            .zip(rs.par_chunks(rows))
            .for_each(|((o, (h, dy)), r)| ln_back_rows(h, r, gs, dy, o));
        let (mut dgamma, mut dbeta) = (vec![0f32; d], vec![0f32; d]);
        ln_param_grads(hs, dys, &mut dgamma, &mut dbeta);
        (out(dx, shape), out(dgamma, Shape::new([d])), out(dbeta, Shape::new([d])))
    }

    fn cross_entropy_fwd(logits: FlexTensor, targets: FlexTensor) -> (FlexTensor, FlexTensor) {
        let ids = token_ids(&targets);
        let Some(ids) = ids.filter(|_| is_f32(&[&logits])) else {
            return composite::cross_entropy_fwd::<Flex>(logits, targets);
        };
        let [n, v] = [logits.shape()[0], logits.shape()[1]];
        assert!(ids.iter().all(|&i| i < v), "cross_entropy: a target id is outside the vocabulary ({v})");
        let x = dense(&logits);
        let xs = x.as_slice::<f32>().unwrap();
        let (mut lse, mut loss) = (vec![0f32; n], vec![0f32; n]);
        let rows = rows_per_task(v);
        lse.par_chunks_mut(rows)
            .zip(loss.par_chunks_mut(rows))
            .zip(xs.par_chunks(rows * v).zip(ids.par_chunks(rows)))
            .for_each(|((l, s), (x, t))| ce_rows(x, t, l, s));
        // The mean in f64, in row order: deterministic and free of f32 accumulation error.
        let mean = loss.iter().map(|&l| l as f64).sum::<f64>() / n as f64;
        (out(vec![mean as f32], Shape::new([1])), out(lse, Shape::new([n])))
    }

    fn cross_entropy_bwd(logits: FlexTensor, lse: FlexTensor, targets: FlexTensor, grad: FlexTensor) -> FlexTensor {
        let ids = token_ids(&targets);
        let Some(ids) = ids.filter(|_| is_f32(&[&logits, &lse, &grad])) else {
            return composite::cross_entropy_bwd::<Flex>(logits, lse, targets, grad);
        };
        let shape = logits.shape();
        let [n, v] = [shape[0], shape[1]];
        let (x, l, g) = (dense(&logits), dense(&lse), dense(&grad));
        let (xs, ls) = (x.as_slice::<f32>().unwrap(), l.as_slice::<f32>().unwrap());
        let k = g.as_slice::<f32>().unwrap()[0] / n as f32;
        let mut o = vec![0f32; xs.len()];
        let rows = rows_per_task(v);
        o.par_chunks_mut(rows * v)
            .zip(xs.par_chunks(rows * v).zip(ls.par_chunks(rows).zip(ids.par_chunks(rows))))
            .for_each(|(o, (x, (l, t)))| ce_back_rows(x, l, t, k, o));
        out(o, shape)
    }
}
