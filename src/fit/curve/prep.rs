//! A run's learning-rate schedule turned into what the curve law needs at each evaluation,
//! computed once per fit (it does not depend on the law's parameters): the summed learning rate
//! S1(t) (warmup included, so S1 + S_W of the multi-power law) and, for every stretch of
//! learning-rate decrease before t, its drop, its learning rate and the learning rate summed
//! from it to t (the annealing term's S_k(t)).
//!
//! The multi-power law's annealing term is a sum over every step of decay. Summed exactly it
//! costs (evaluations x decay steps) per objective value: about 2M power functions for one
//! 24,000-step cosine curve, too slow for a multistart fit on 2 cores. Consecutive steps are
//! therefore grouped into chunks of at most 1/48 of the decay span (never across an
//! evaluation, so a chunk lies wholly before or after each point) and each chunk is evaluated
//! at its drop-weighted centre: a midpoint rule whose error is second order in the chunk
//! width (below 1e-4 relative on the published curves, whose evaluations every 128 steps cap
//! the chunks anyway).

/// Chunks per run: the decay span is cut into at most this many pieces (plus cuts at evals).
pub const CHUNKS: u64 = 48;

/// One (evaluation, earlier decay chunk) pair of the annealing sum.
#[derive(Clone, Copy, Debug)]
pub struct Pair {
    /// The chunk's learning-rate drop eta_{k-1} - eta_k summed over its steps.
    pub drop: f64,
    /// The chunk (`Prepared::chunk_ln_eta`): its eta^-gamma is computed once per run and
    /// objective value, not per pair.
    pub chunk: usize,
    /// S_k(t): learning rate summed from the chunk's centre to the evaluation.
    pub u: f64,
}

/// A run's schedule geometry at its evaluation points.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// ln (N / n_ref) of the run's model.
    pub ln_x: f64,
    /// Per evaluation: ln S1(t).
    pub ln_s1: Vec<f64>,
    /// Per evaluation: its pairs are `pairs[off[i]..off[i + 1]]`.
    pub off: Vec<usize>,
    pub pairs: Vec<Pair>,
    /// Per decay chunk: ln of the learning rate at its centre.
    pub chunk_ln_eta: Vec<f64>,
}

/// The step after which learning-rate changes count as annealing: the end of the leading
/// strictly increasing stretch (warmup), or 0 without warmup.
pub fn warmup_end(lr: &[f64]) -> usize {
    let mut k = 0;
    while k + 1 < lr.len() && lr[k + 1] > lr[k] {
        k += 1;
    }
    k
}

/// Precomputes `lr` (the learning rate of update k, for every k) at evaluations taken after
/// `steps[i]` updates. `steps` must be increasing, each >= 1 and <= lr.len().
pub fn prepare(lr: &[f64], steps: &[u64], ln_x: f64) -> Prepared {
    debug_assert!(steps.windows(2).all(|w| w[0] < w[1]));
    debug_assert!(steps.iter().all(|&s| s >= 1 && s as usize <= lr.len()));
    let last = steps.last().map_or(0, |&s| s as usize);
    // A learning rate of 0 (a schedule decayed to nothing) would make eta^-gamma infinite;
    // the floor keeps the term finite, where G has saturated at 1 anyway.
    let peak = lr[..last].iter().cloned().fold(0.0, f64::max);
    let floor = peak.max(1e-300) * 1e-9;
    let eta = |k: usize| lr[k].max(floor);
    let mut cum = vec![0.0; last + 1];
    for k in 0..last {
        cum[k + 1] = cum[k] + lr[k].max(0.0);
    }
    let w = warmup_end(&lr[..last.max(1)]);
    let drop = |k: usize| eta(k - 1) - eta(k);
    let active: Vec<usize> = (w + 1..last).filter(|&k| drop(k) != 0.0).collect();
    let width = match (active.first(), active.last()) {
        (Some(a), Some(b)) => ((b - a + 1) as u64).div_ceil(CHUNKS).max(1) as usize,
        _ => 1,
    };
    // Chunks: (drop, centre step), in step order, cut at width, sign changes and evals.
    let mut chunks: Vec<(f64, usize, usize)> = Vec::new(); // (drop, centre, first step)
    let mut cur: Option<(f64, f64, usize)> = None; // (sum drop, sum k*drop, first k)
    let mut next_eval = 0;
    let flush = |cur: &mut Option<(f64, f64, usize)>, chunks: &mut Vec<(f64, usize, usize)>| {
        if let Some((d, kd, first)) = cur.take() {
            let c = (kd / d).round() as usize;
            chunks.push((d, c.max(first), first));
        }
    };
    for &k in &active {
        while next_eval < steps.len() && (steps[next_eval] as usize) <= k {
            next_eval += 1;
            flush(&mut cur, &mut chunks);
        }
        let d = drop(k);
        if let Some((sd, _, first)) = cur {
            if k - first >= width || (sd > 0.0) != (d > 0.0) {
                flush(&mut cur, &mut chunks);
            }
        }
        let e = cur.get_or_insert((0.0, 0.0, k));
        e.0 += d;
        e.1 += k as f64 * d;
    }
    flush(&mut cur, &mut chunks);
    let chunk_ln_eta = chunks.iter().map(|ch| eta(ch.1).ln()).collect();
    let mut out = Prepared { ln_x, ln_s1: Vec::new(), off: vec![0], pairs: Vec::new(), chunk_ln_eta };
    for &s in steps {
        let s = s as usize;
        out.ln_s1.push(cum[s].max(1e-300).ln());
        for (j, &(d, c, _)) in chunks.iter().enumerate().take_while(|(_, ch)| ch.1 < s) {
            // S_k(t) includes eta_k itself: sum over updates c..s-1.
            let u = cum[s] - cum[c];
            if u > 0.0 {
                out.pairs.push(Pair { drop: d, chunk: j, u });
            }
        }
        out.off.push(out.pairs.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_schedule_has_no_annealing_pairs() {
        let lr: Vec<f64> = (0..100).map(|k| if k < 10 { (k + 1) as f64 / 10.0 } else { 1.0 }).collect();
        let p = prepare(&lr, &[10, 50, 100], 0.0);
        assert!(p.pairs.is_empty());
        assert!((p.ln_s1[2].exp() - (5.5 + 90.0)).abs() < 1e-9);
    }

    #[test]
    fn chunks_conserve_the_total_drop_and_never_cross_an_eval() {
        // Linear decay from 1 to 0.01 over steps 50..150.
        let lr: Vec<f64> = (0..150).map(|k| if k < 50 { 1.0 } else { 1.0 - 0.99 * (k - 49) as f64 / 100.0 }).collect();
        let steps = [60, 100, 150];
        let p = prepare(&lr, &steps, 0.0);
        for i in 0..steps.len() {
            let total: f64 = p.pairs[p.off[i]..p.off[i + 1]].iter().map(|q| q.drop).sum();
            let want = 1.0 - lr[steps[i] as usize - 1];
            assert!((total - want).abs() < 1e-9, "eval {i}: {total} vs {want}");
        }
    }
}
