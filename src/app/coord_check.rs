//! The coordinate check (μP's sanity test, Yang et al.; MiniCPM ran it before trusting
//! transfer): train a few steps at each width of a sweep and measure, per activation, its RMS
//! and the RMS of its change since initialisation, on one fixed batch. Under a correct μP every
//! curve is flat in width; under standard parametrization the logits (and the updates) grow
//! with width, which is why learning rates stop transferring.

use crate::backend::Cpu;
use crate::data::Mixture;
use crate::model::GptConfig;
use crate::spec::config::{RunConfig, Sweep};
use crate::train::{loss_on, optim};
use anyhow::{bail, Result};
use burn::prelude::*;
use plotters::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

/// One activation at one width.
#[derive(Clone, Debug, Serialize)]
pub struct Coord {
    pub layer: String,
    pub width: usize,
    /// RMS of the activation at initialisation and after `steps` updates.
    pub rms_init: f64,
    pub rms_trained: f64,
    /// RMS of (activation after the updates - activation at initialisation).
    pub rms_change: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct CoordCheck {
    pub sweep: String,
    pub parametrization: String,
    pub steps: u64,
    pub lr: f64,
    pub widths: Vec<usize>,
    pub coords: Vec<Coord>,
    /// Per layer: log-log slope of (trained RMS, change RMS) against width.
    pub slopes: BTreeMap<String, (f64, f64)>,
}

/// Every activation's RMS on `ids`, by probe name.
fn activations(
    model: &crate::model::Gpt<Cpu>,
    cfg: &GptConfig,
    ids: &[i64],
    rows: usize,
) -> BTreeMap<String, Vec<f32>> {
    use burn::module::AutodiffModule;
    let dev = Default::default();
    let m = model.valid();
    let t = cfg.seq_len;
    let x = Tensor::<burn::backend::Flex, 2, Int>::from_data(TensorData::new(ids.to_vec(), [rows, t + 1]), &dev)
        .slice([0..rows, 0..t]);
    let mut out = BTreeMap::new();
    m.forward_probed(x, cfg, &mut |name, a| {
        out.insert(name.to_string(), a.clone().into_data().convert::<f32>().to_vec::<f32>().unwrap_or_default());
    });
    out
}

fn rms(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x * x, n + 1));
    (s / n.max(1) as f64).sqrt()
}

/// Least-squares slope of ln y against ln x.
pub fn loglog_slope(x: &[f64], y: &[f64]) -> f64 {
    let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    let ly: Vec<f64> = y.iter().map(|v| v.max(1e-30).ln()).collect();
    let n = lx.len() as f64;
    let (mx, my) = (lx.iter().sum::<f64>() / n, ly.iter().sum::<f64>() / n);
    let sxy: f64 = lx.iter().zip(&ly).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = lx.iter().map(|a| (a - mx).powi(2)).sum();
    sxy / sxx
}

/// Trains `steps` steps at constant learning rate `run.lr` and measures every activation.
fn check_one(run: &RunConfig, steps: u64) -> Result<Vec<Coord>> {
    let dev = Default::default();
    let cfg = GptConfig::from_run(run);
    let data = Mixture::new(run)?;
    let mut model = crate::backend::seeded_module::<Cpu, _>(&dev, run.seed, || cfg.init::<Cpu>(&dev));
    let mut opt = optim::Optim::new(run, &model, cfg.scales.hidden_lr_mult);
    // A fixed probe batch from the validation stream's key space (step u64::MAX is never trained).
    let (probe, _) = data.train_batch(u64::MAX, run.batch_size);
    let before = activations(&model, &cfg, &probe, run.batch_size);
    for step in 0..steps {
        let (ids, _) = data.train_batch(step, run.batch_size);
        let loss = loss_on(&model, &cfg, ids, run.batch_size, &dev);
        model = opt.step(model, loss, run.lr).0;
    }
    let after = activations(&model, &cfg, &probe, run.batch_size);
    Ok(before
        .iter()
        .map(|(layer, a)| {
            let b = &after[layer];
            Coord {
                layer: layer.clone(),
                width: run.width,
                rms_init: rms(a.iter().map(|&x| x as f64)),
                rms_trained: rms(b.iter().map(|&x| x as f64)),
                rms_change: rms(a.iter().zip(b).map(|(&x, &y)| (y - x) as f64)),
            }
        })
        .collect())
}

/// The coordinate check of a sweep: one run per distinct width (the first run of the grid
/// at that width), `steps` updates each at `lr` (default: the sweep's first run's).
pub fn run(sweep: &Sweep, steps: u64, lr: Option<f64>) -> Result<CoordCheck> {
    let mut per_width: BTreeMap<usize, &RunConfig> = BTreeMap::new();
    for r in &sweep.runs {
        per_width.entry(r.width).or_insert(r);
    }
    if per_width.len() < 2 {
        bail!("coord-check needs at least 2 widths in the sweep's grid, found {}", per_width.len());
    }
    let mut first = sweep.runs[0].clone();
    if let Some(lr) = lr {
        first.lr = lr;
    }
    let mut coords = Vec::new();
    for (&w, r) in &per_width {
        // Same depth, learning rate and data everywhere: only the width varies.
        let mut run = (*r).clone();
        run.depth = first.depth;
        run.lr = first.lr;
        run.heads = w / (first.width / first.heads);
        coords.extend(check_one(&run, steps)?);
    }
    let widths: Vec<usize> = per_width.keys().copied().collect();
    let mut slopes = BTreeMap::new();
    let layers: Vec<String> = coords.iter().filter(|c| c.width == widths[0]).map(|c| c.layer.clone()).collect();
    for l in &layers {
        let cs: Vec<&Coord> = coords.iter().filter(|c| &c.layer == l).collect();
        let x: Vec<f64> = cs.iter().map(|c| c.width as f64).collect();
        let t: Vec<f64> = cs.iter().map(|c| c.rms_trained).collect();
        let d: Vec<f64> = cs.iter().map(|c| c.rms_change).collect();
        slopes.insert(l.clone(), (loglog_slope(&x, &t), loglog_slope(&x, &d)));
    }
    let parametrization = match first.parametrization {
        crate::spec::config::Parametrization::Sp { .. } => "sp",
        _ => "mup",
    };
    Ok(CoordCheck {
        sweep: sweep.name.clone(),
        parametrization: parametrization.into(),
        steps,
        lr: first.lr,
        widths,
        coords,
        slopes,
    })
}

impl CoordCheck {
    /// A Markdown table: per layer, trained RMS and change RMS at each width, and the slopes.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "# Coordinate check: `{}` ({}), {} steps at lr {}\n\nRMS of each activation after the updates / RMS of its \
             change since initialisation, on one fixed batch. Slopes are d ln(RMS) / d ln(width): near 0 means the \
             layer is width-independent (what μP promises).\n\n| layer |",
            self.sweep, self.parametrization, self.steps, self.lr
        );
        for w in &self.widths {
            s += &format!(" width {w} |");
        }
        s += " slope (RMS) | slope (change) |\n|---|";
        s += &"---|".repeat(self.widths.len() + 2);
        s += "\n";
        for (layer, (st, sd)) in &self.slopes {
            s += &format!("| {layer} |");
            for w in &self.widths {
                let c = self.coords.iter().find(|c| &c.layer == layer && c.width == *w);
                s += &c.map_or(" |".into(), |c| format!(" {:.3} / {:.3} |", c.rms_trained, c.rms_change));
            }
            s += &format!(" {st:+.2} | {sd:+.2} |\n");
        }
        s
    }

    /// Log-log plot: trained RMS of every activation against width, one line per layer.
    pub fn svg(&self) -> Result<String> {
        use crate::report::chart::{color, frame, render};
        let ys = self.coords.iter().map(|c| c.rms_trained).filter(|v| *v > 0.0);
        let (lo, hi) = ys.fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
        let (wl, wh) = (self.widths[0] as f64, *self.widths.last().unwrap() as f64);
        render(860, 520, |root| {
            let mut ch = frame(root, format!("Coordinate check ({}, {} steps)", self.parametrization, self.steps))
                .build_cartesian_2d(
                    (wl * 0.9..wh * 1.1).log_scale().with_key_points(self.widths.iter().map(|&w| w as f64).collect()),
                    (lo * 0.7..hi * 1.4).log_scale(),
                )?;
            ch.configure_mesh().x_desc("width").y_desc("activation RMS after the updates").draw()?;
            for (k, layer) in self.slopes.keys().enumerate() {
                let c = color(k);
                let pts: Vec<(f64, f64)> = self
                    .coords
                    .iter()
                    .filter(|x| &x.layer == layer)
                    .map(|x| (x.width as f64, x.rms_trained.max(lo)))
                    .collect();
                ch.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?
                    .label(layer.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
                ch.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
            }
            ch.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(parametrization: &str) -> CoordCheck {
        let text = include_str!("../../sweeps/tiny.toml")
            .replace("parametrization = \"mup\"", &format!("parametrization = \"{parametrization}\""))
            .replace("depth = [1, 1, 1]", "depth = [2, 2, 2]")
            .replace("width = [16, 32, 48]", "width = [32, 64, 128]");
        let sweep = crate::spec::parse(&text, "tiny.toml").unwrap();
        run(&sweep, 5, Some(0.01)).unwrap()
    }

    #[test]
    fn mup_keeps_activations_flat_in_width_and_sp_does_not() {
        let mup = check("mup");
        assert_eq!(mup.widths, [32, 64, 128]);
        for (layer, (rms, _)) in &mup.slopes {
            if layer != "logits" {
                assert!(rms.abs() < 0.2, "mup: {layer} RMS slope {rms:+.2}\n{}", mup.markdown());
            }
        }
        let sp = check("sp");
        let (logits, _) = sp.slopes["logits"];
        assert!(logits > 0.3, "sp: logits RMS slope {logits:+.2}\n{}", sp.markdown());
        assert!(sp.slopes["block1.out"].1 > 0.5, "sp: the updates grow with width\n{}", sp.markdown());
        assert!(sp.svg().unwrap().contains("<polyline") || sp.svg().unwrap().contains("<path"));
    }
}
