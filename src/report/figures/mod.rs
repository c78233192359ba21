//! The report's figures, grouped by topic. Each returns a `Figure`: an SVG, or the reason it
//! was skipped when its data are absent. The rollout and calibration figures live with their
//! report sections.

mod curves;
mod law_checks;
mod learning_rate;
mod mixing;
mod scaling;
mod sizes;

use crate::report::doc::Figure;
use crate::report::facts::Facts;
use anyhow::Result;

/// Every figure of the report, in order.
pub fn all(f: &Facts) -> Result<Vec<Figure>> {
    Ok(vec![
        scaling::loss_vs_compute(f)?,
        scaling::isoflop(f)?,
        learning_rate::loss_vs_lr(f)?,
        law_checks::backtest(f)?,
        crate::report::rollout::plot(f)?,
        law_checks::residuals(f)?,
        mixing::mix_response(f)?,
        mixing::mixing_law(f)?,
        curves::wsd_branches(f)?,
        crate::report::calibration::plot(f)?,
        curves::loss_curve(f)?,
    ])
}
