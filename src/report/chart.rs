//! Plot plumbing shared by the report's figures: an SVG-to-string canvas (plotters' SVG
//! backend, no fonts or files needed), a colour palette, padded ranges, log-axis ticks and
//! their labels, and clipping (plotters draws outside the plot area, so lines are clipped here).

use super::doc::Figure;
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::ops::Range;

pub type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Tableau 10.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

pub const FONT: &str = "sans-serif";

/// The frame every full-size report plot shares: its title, margins and room for the axis
/// labels. Callers add the axes with `build_cartesian_2d`.
pub fn frame<'a, 'b>(root: &'a Area<'b>, title: impl AsRef<str>) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut b = ChartBuilder::on(root);
    b.caption(title, (FONT, 20)).margin(14).x_label_area_size(46).y_label_area_size(62);
    b
}

/// Draws into a fresh `w` x `h` SVG and returns its text.
pub fn render(w: u32, h: u32, draw: impl FnOnce(&Area<'_>) -> Result<()>) -> Result<String> {
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(s)
}

/// min and max of the finite values.
pub fn bounds(v: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    let mut it = v.into_iter().filter(|x| x.is_finite());
    let first = it.next()?;
    Some(it.fold((first, first), |(a, b), x| (a.min(x), b.max(x))))
}

/// A log range around [lo, hi] with a little margin (both must be > 0).
pub fn log_range(lo: f64, hi: f64) -> Range<f64> {
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo / 2.0, lo * 2.0) };
    let pad = (hi / lo).powf(0.04).max(1.08);
    lo / pad..hi * pad
}

/// A linear range around [lo, hi] with a little margin.
pub fn lin_range(lo: f64, hi: f64) -> Range<f64> {
    let span = if hi > lo { hi - lo } else { lo.abs().max(1e-3) * 0.1 };
    lo - 0.06 * span..hi + 0.06 * span
}

/// Tick positions for a log axis: powers of ten, refined with 3x, then 2x and 5x, ... until
/// there are at least three; thinned when there are too many.
pub fn log_ticks(r: &Range<f64>) -> Vec<f64> {
    let (lo, hi) = (r.start, r.end);
    let sets: [&[f64]; 4] = [&[1.0], &[1.0, 3.0], &[1.0, 2.0, 5.0], &[1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0]];
    for m in sets {
        let mut v = Vec::new();
        let mut e = lo.log10().floor() as i32 - 1;
        while 10f64.powi(e) <= hi * 1.0000001 {
            for k in m {
                let x = k * 10f64.powi(e);
                if x >= lo && x <= hi {
                    v.push(x);
                }
            }
            e += 1;
        }
        if v.len() >= 3 {
            let step = v.len().div_ceil(10);
            return v.into_iter().step_by(step).collect();
        }
    }
    (0..4).map(|i| lo * (hi / lo).powf((0.5 + i as f64) / 4.0)).collect()
}

/// Short tick label: 0.003, 2.5, 1e15, 3e-4, 2.5e9.
pub fn fmt_tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || !a.is_finite() {
        return format!("{v}");
    }
    if (1e-2..1e4).contains(&a) {
        let s = format!("{v:.3}");
        return s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    let mut e = a.log10().floor() as i32;
    let mut m = v / 10f64.powi(e);
    if (m.abs() * 100.0).round() >= 1000.0 {
        m /= 10.0;
        e += 1;
    }
    let ms = format!("{m:.2}");
    let ms = ms.trim_end_matches('0').trim_end_matches('.');
    format!("{ms}e{e}")
}

/// Splits a polyline into the runs of points inside the box (plotters does not clip).
pub fn clip(pts: &[(f64, f64)], xr: &Range<f64>, yr: &Range<f64>) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for &(x, y) in pts {
        let inside = x.is_finite() && y.is_finite() && xr.contains(&x) && yr.contains(&y);
        if inside {
            out.last_mut().expect("non-empty").push((x, y));
        } else if !out.last().expect("non-empty").is_empty() {
            out.push(Vec::new());
        }
    }
    out.retain(|s| s.len() >= 2);
    out
}

/// Dashes of a densely sampled polyline: alternating chunks of `on` points drawn, `off` skipped.
pub fn dashes(pts: &[(f64, f64)], on: usize, off: usize) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < pts.len() {
        let end = (i + on).min(pts.len() - 1);
        out.push(pts[i..=end].to_vec());
        i = end + off;
    }
    out
}

/// `n` points spaced evenly in log between lo and hi.
pub fn geomspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| lo * (hi / lo).powf(i as f64 / (n - 1).max(1) as f64)).collect()
}

/// Number with SI suffix for legends and tables: 12.3k, 4.56M, 7.8G, 1.2T, 3.4P.
pub fn si(x: f64) -> String {
    if !x.is_finite() {
        return crate::human::g(x);
    }
    let a = x.abs();
    if a >= 1e21 {
        return format!("{x:.3e}");
    }
    for (s, u) in [(1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if a >= s {
            let v = format!("{:.3}", x / s);
            return format!("{}{u}", v.trim_end_matches('0').trim_end_matches('.'));
        }
    }
    if a >= 1.0 || a == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.3e}")
    }
}

/// Axis descriptions, tick label formatters and the report's grid style, then draws the mesh.
macro_rules! mesh {
    ($ch:expr, $xd:expr, $yd:expr, $xf:expr, $yf:expr) => {
        $ch.configure_mesh()
            .x_desc($xd)
            .y_desc($yd)
            .x_label_formatter($xf)
            .y_label_formatter($yf)
            .label_style(($crate::report::chart::FONT, 13))
            .axis_desc_style(($crate::report::chart::FONT, 14))
            .light_line_style(WHITE)
            .bold_line_style(BLACK.mix(0.08))
            .draw()?
    };
}
pub(crate) use mesh;

/// The legend box at `$pos`.
macro_rules! legend {
    ($ch:expr, $pos:expr) => {
        $ch.configure_series_labels()
            .position($pos)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .label_font(($crate::report::chart::FONT, 13))
            .draw()?
    };
}
pub(crate) use legend;

/// The data mixture's known entropy floor `fl` as a grey dotted line across a chart whose x
/// range is the log-scaled `xr`, labelled once in the legend.
macro_rules! floor_line {
    ($ch:expr, $xr:expr, $fl:expr) => {{
        let fl: f64 = $fl;
        let pts: Vec<(f64, f64)> =
            $crate::report::chart::geomspace($xr.start, $xr.end, 160).into_iter().map(|x| (x, fl)).collect();
        let grey = RGBColor(110, 110, 110);
        let mut first = true;
        for d in $crate::report::chart::dashes(&pts, 1, 1) {
            let s = $ch.draw_series(LineSeries::new(d, grey.stroke_width(1)))?;
            if first {
                first = false;
                s.label(format!("entropy floor of the data mixture ({fl:.3})"))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], grey.stroke_width(1)));
            }
        }
    }};
}
pub(crate) use floor_line;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_and_labels() {
        assert_eq!(log_ticks(&(5e8..2e15)).len(), 7);
        assert!(log_ticks(&(2.0..3.0)).len() >= 3);
        assert_eq!(fmt_tick(1e15), "1e15");
        assert_eq!(fmt_tick(2.5e-4), "2.5e-4");
        assert_eq!(fmt_tick(0.003), "3e-3");
        assert_eq!(fmt_tick(0.03), "0.03");
        assert_eq!(fmt_tick(99999.99), "1e5");
        assert_eq!(si(1.5e6), "1.5M");
        assert_eq!(si(2e3), "2k");
        assert_eq!(clip(&[(1.0, 1.0), (2.0, 9.0), (3.0, 1.0), (4.0, 1.0)], &(0.0..5.0), &(0.0..5.0)).len(), 1);
    }
}

/// A report figure from a drawing: its SVG, or why it was skipped (no data, or the reason).
pub fn figure(name: &str, title: &str, caption: String, svg: Result<Option<String>, String>) -> Figure {
    let (svg, skipped) = match svg {
        Ok(Some(s)) => (Some(s), None),
        Ok(None) => (None, Some("no data".to_string())),
        Err(why) => (None, Some(why)),
    };
    Figure { name: name.into(), title: title.into(), caption, svg, skipped }
}
