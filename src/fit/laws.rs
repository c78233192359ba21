//! fit.json's `laws`: the auxiliary laws, one typed field per law name. A reader takes the
//! field (`report.laws.isoflop`) instead of re-parsing JSON, so a law that does not match its
//! type is an error where fit.json is read, not a law that silently disappears.

use crate::fit::chinchilla::law::Law;
use crate::fit::curve::CurveLawReport;
use crate::fit::density::DensityTable;
use crate::fit::envelope::EnvelopeFit;
use crate::fit::hyperparams::{BatchVsLoss, HyperFit};
use crate::fit::isoflop::IsoflopFit;
use crate::fit::loss_vs_compute::LossVsCompute;
use crate::fit::mixing::MixingFit;
use serde::{Deserialize, Serialize, Serializer};

/// The auxiliary laws that were fitted (an absent law is `None` and absent from fit.json).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Laws {
    pub batch_vs_compute: Option<HyperFit>,
    pub batch_vs_loss: Option<BatchVsLoss>,
    pub chinchilla_varpro: Option<VarproLaw>,
    pub data_mixing: Option<MixingFit>,
    pub density: Option<DensityTable>,
    pub envelope: Option<EnvelopeFit>,
    pub isoflop: Option<IsoflopFit>,
    pub loss_curve: Option<CurveLawReport>,
    pub loss_vs_compute: Option<LossVsCompute>,
    pub lr_vs_compute: Option<HyperFit>,
}

/// `chinchilla_varpro`: the variable-projection cross-check of the Chinchilla fit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct VarproLaw {
    pub inner_solves: usize,
    pub objective: f64,
    pub params: Law,
}

impl Laws {
    /// The fitted laws by name, in fit.json's order, as JSON: for fit.json and for displays
    /// that list every law's fields alike (the report's "Law `name`" tables).
    ///
    /// fit.json was written this way when `laws` was a map of JSON values, and keeps its bytes:
    /// the names in alphabetical order (the map's), and each law through `serde_json::Value`,
    /// whose maps sort their keys, so a law's fields are in alphabetical order too rather than
    /// in their declaration order.
    pub fn as_json(&self) -> serde_json::Map<String, serde_json::Value> {
        // Destructured, so that a new law cannot be forgotten here.
        let Laws {
            batch_vs_compute,
            batch_vs_loss,
            chinchilla_varpro,
            data_mixing,
            density,
            envelope,
            isoflop,
            loss_curve,
            loss_vs_compute,
            lr_vs_compute,
        } = self;
        let entries = [
            ("batch_vs_compute", json(batch_vs_compute)),
            ("batch_vs_loss", json(batch_vs_loss)),
            ("chinchilla_varpro", json(chinchilla_varpro)),
            ("data_mixing", json(data_mixing)),
            ("density", json(density)),
            ("envelope", json(envelope)),
            ("isoflop", json(isoflop)),
            ("loss_curve", json(loss_curve)),
            ("loss_vs_compute", json(loss_vs_compute)),
            ("lr_vs_compute", json(lr_vs_compute)),
        ];
        entries.into_iter().filter_map(|(name, v)| Some((name.to_string(), v?))).collect()
    }

    /// No auxiliary law was fitted.
    pub fn is_empty(&self) -> bool {
        self.as_json().is_empty()
    }
}

/// A law as JSON, if it was fitted.
fn json<T: Serialize>(law: &Option<T>) -> Option<serde_json::Value> {
    law.as_ref().map(|l| serde_json::to_value(l).expect("a law is plain data, serialisable as JSON"))
}

impl Serialize for Laws {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_json().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A law that does not match its type makes fit.json unreadable (it was silently dropped
    /// when readers re-parsed JSON), and an absent or unknown name is only absent.
    #[test]
    fn a_mismatched_law_is_an_error_and_an_absent_one_is_none() {
        let ok: Laws = serde_json::from_str(r#"{"some_future_law": 1}"#).unwrap();
        assert!(ok.is_empty() && ok.isoflop.is_none());
        assert!(serde_json::from_str::<Laws>(r#"{"lr_vs_compute": {"quantity": "lr"}}"#).is_err());
        assert_eq!(serde_json::to_string(&Laws::default()).unwrap(), "{}");
    }

    /// A law's fields are written in alphabetical order, as when `laws` held JSON values (not
    /// in their declaration order: `HyperFit` declares `quantity` first), and read back.
    #[test]
    fn a_law_is_written_with_its_keys_sorted_and_reads_back() {
        let law = crate::fit::regress::PowerLaw { coef: 2.0, exponent: -0.5, r2: 1.0, n_points: 2 };
        let lr = HyperFit { quantity: "lr".into(), law, n_budgets: 2, tolerance: 0.005, points: vec![(1.0, 2.0)] };
        let laws = Laws { lr_vs_compute: Some(lr.clone()), ..Default::default() };
        let text = serde_json::to_string(&laws).unwrap();
        assert!(text.starts_with(r#"{"lr_vs_compute":{"law":{"#), "{text}");
        assert!(text.find("\"n_budgets\"") < text.find("\"quantity\""), "{text}");
        let back: Laws = serde_json::from_str(&text).unwrap();
        assert_eq!(back.lr_vs_compute, Some(lr));
        assert!(!back.is_empty());
    }
}
