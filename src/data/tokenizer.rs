//! Tokenizers of file-backed text: bytes (one token per UTF-8 byte, vocabulary 256, the
//! default) or a Hugging Face `tokenizer.json` through the pure-Rust `tokenizers` crate (no
//! network, no oniguruma). Documents are joined by an end-of-text token so a window that spans
//! two documents says so: the tokenizer's own (`<|endoftext|>`, `</s>`, `<eos>`, `[SEP]`, the
//! first found) or, for bytes, the NUL byte, which text does not contain.

use crate::spec::config::TokenizerSpec;
use anyhow::{anyhow, Result};
use std::path::Path;

pub enum Tokenizer {
    Bytes,
    Hf { tok: Box<tokenizers::Tokenizer>, eos: Option<u32> },
}

const EOS_NAMES: [&str; 4] = ["<|endoftext|>", "</s>", "<eos>", "[SEP]"];

impl Tokenizer {
    pub fn load(spec: &TokenizerSpec) -> Result<Tokenizer> {
        match spec {
            TokenizerSpec::Bytes => Ok(Tokenizer::Bytes),
            TokenizerSpec::Hf { path } => load_hf(Path::new(path)),
        }
    }

    pub fn vocab(&self) -> usize {
        match self {
            Tokenizer::Bytes => 256,
            Tokenizer::Hf { tok, .. } => tok.get_vocab_size(true),
        }
    }

    /// The document separator, if the tokenizer has one.
    pub fn eos(&self) -> Option<u32> {
        match self {
            Tokenizer::Bytes => Some(0),
            Tokenizer::Hf { eos, .. } => *eos,
        }
    }

    /// Appends the tokens of `text` (no special tokens added).
    pub fn encode(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        match self {
            Tokenizer::Bytes => out.extend(text.bytes().map(u32::from)),
            Tokenizer::Hf { tok, .. } => {
                let enc = tok.encode(text, false).map_err(|e| anyhow!("tokenizing: {e}"))?;
                out.extend_from_slice(enc.get_ids());
            }
        }
        Ok(())
    }
}

fn load_hf(path: &Path) -> Result<Tokenizer> {
    let bytes = std::fs::read(path).map_err(|e| anyhow!("cannot read tokenizer file {}: {e}", path.display()))?;
    let tok = tokenizers::Tokenizer::from_bytes(&bytes)
        .map_err(|e| anyhow!("{}: not a Hugging Face tokenizer.json: {e}", path.display()))?;
    let eos = EOS_NAMES.iter().find_map(|n| tok.token_to_id(n));
    Ok(Tokenizer::Hf { tok: Box::new(tok), eos })
}

/// The vocabulary size of a tokenizer file (the spec needs it for parameter counts).
pub fn vocab_of(spec: &TokenizerSpec) -> Result<usize> {
    Ok(Tokenizer::load(spec)?.vocab())
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A small word-level tokenizer.json (whitespace split, 9 words + unknown + end of text).
    pub fn word_level_json() -> String {
        let words = ["[UNK]", "<|endoftext|>", "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "."];
        let vocab: Vec<String> = words.iter().enumerate().map(|(i, w)| format!("\"{w}\": {i}")).collect();
        format!(
            r#"{{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
               "normalizer": null, "pre_tokenizer": {{"type": "Whitespace"}}, "post_processor": null,
               "decoder": null, "model": {{"type": "WordLevel", "vocab": {{{}}}, "unk_token": "[UNK]"}}}}"#,
            vocab.join(", ")
        )
    }

    #[test]
    fn bytes_and_hf_tokenizers() {
        let b = Tokenizer::Bytes;
        let mut out = Vec::new();
        b.encode("hé", &mut out).unwrap();
        assert_eq!(out, [104, 195, 169]);
        let d = std::env::temp_dir().join(format!("wt-tok-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("tokenizer.json");
        std::fs::write(&p, word_level_json()).unwrap();
        let hf = Tokenizer::load(&TokenizerSpec::Hf { path: p.display().to_string() }).unwrap();
        assert_eq!(hf.vocab(), 11);
        assert_eq!(hf.eos(), Some(1));
        out.clear();
        hf.encode("the cat sat on a zebra .", &mut out).unwrap();
        assert_eq!(out, [2, 3, 4, 5, 7, 0, 10]);
        std::fs::write(&p, "{\"model\": 3").unwrap();
        let e = format!("{:#}", Tokenizer::load(&TokenizerSpec::Hf { path: p.display().to_string() }).err().unwrap());
        assert!(e.contains("not a Hugging Face tokenizer.json"), "{e}");
    }
}
