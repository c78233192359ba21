//! Every μP multiplier, in one place (MiniCPM's recipe, Hu et al. 2024; Yang et al. 2022).
//! With width multiplier m = width / base_width:
//! - embedding output × scale_emb;
//! - each block's residual branch × scale_depth / √depth;
//! - hidden matrices (q, k, v, proj, fc1, fc2) initialised with std init_std / √m and trained
//!   with learning rate lr / m (the optimizer applies `hidden_lr_mult`);
//! - output logits ÷ m, so the untied head is treated like the embedding (std init_std,
//!   full learning rate), as MiniCPM's tied head is.
//!
//! Standard parametrization (`sp`) sets every multiplier to 1 and every std to init_std.

use crate::spec::config::Parametrization;

#[derive(Clone, Debug, PartialEq)]
pub struct Scales {
    pub emb_mult: f64,
    pub residual_mult: f64,
    pub logit_mult: f64,
    pub hidden_init_std: f64,
    pub embed_init_std: f64,
    pub head_init_std: f64,
    /// Learning-rate multiplier of the hidden matrices (1/m under μP).
    pub hidden_lr_mult: f64,
}

impl Scales {
    pub fn new(p: &Parametrization, width: usize, depth: usize) -> Scales {
        match *p {
            Parametrization::Mup { base_width, scale_emb, scale_depth, init_std } => {
                let m = width as f64 / base_width as f64;
                Scales {
                    emb_mult: scale_emb,
                    residual_mult: scale_depth / (depth as f64).sqrt(),
                    logit_mult: 1.0 / m,
                    hidden_init_std: init_std / m.sqrt(),
                    embed_init_std: init_std,
                    head_init_std: init_std,
                    hidden_lr_mult: 1.0 / m,
                }
            }
            Parametrization::Sp { init_std } => Scales {
                emb_mult: 1.0,
                residual_mult: 1.0,
                logit_mult: 1.0,
                hidden_init_std: init_std,
                embed_init_std: init_std,
                head_init_std: init_std,
                hidden_lr_mult: 1.0,
            },
        }
    }
}

/// Is this parameter (by module path, e.g. `blocks.3.fc1.weight`) a μP hidden matrix?
/// Selected by path, not rank: embeddings and the head are rank 2 too.
pub fn is_hidden_matrix(path: &str) -> bool {
    path.starts_with("blocks.")
        && ["q", "k", "v", "proj", "fc1", "fc2"].iter().any(|m| path.ends_with(&format!(".{m}.weight")))
}

/// Norm gains and biases get no weight decay (decay would pull gains toward 0).
pub fn is_norm(path: &str) -> bool {
    path.contains("ln1.") || path.contains("ln2.") || path.starts_with("lnf.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mup_scales_with_width() {
        let p = Parametrization::Mup { base_width: 64, scale_emb: 12.0, scale_depth: 1.4, init_std: 0.1 };
        let s = Scales::new(&p, 256, 4);
        assert_eq!(s.hidden_lr_mult, 0.25);
        assert_eq!(s.logit_mult, 0.25);
        assert!((s.hidden_init_std - 0.05).abs() < 1e-12);
        assert!((s.residual_mult - 0.7).abs() < 1e-12);
        assert!(is_hidden_matrix("blocks.0.fc1.weight"));
        assert!(!is_hidden_matrix("tok.weight"));
        assert!(!is_hidden_matrix("head.weight"));
        assert!(is_norm("blocks.1.ln2.gamma") && is_norm("lnf.beta"));
    }
}
