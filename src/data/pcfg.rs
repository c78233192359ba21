//! Built-in domain "builtin:pcfg": English-like sentences from a probabilistic grammar with
//! bounded recursion (relative clauses, prepositional phrases) over a large invented lexicon
//! (about 2,900 words spelled from syllables, fixed by a constant seed) with Zipf(1) word
//! frequencies. The grammar gives long-range structure; the lexicon gives thousands of
//! spellings to memorise in order of their heavy-tailed frequency, which is what makes the
//! loss fall as a smooth power law in parameters and data (a small lexicon is learned in one
//! sudden drop, and no law fits that). The generator reports
//! the log-probability of each derivation; per byte that is an upper bound on the entropy
//! rate (a string may have several derivations), shown in the report beside the fitted E.

use crate::rng::Rng;

const DET: &[&str] = &["the", "a", "every", "some", "this", "no"];
const PREP: &[&str] = &["near", "under", "with", "behind", "over", "beside"];
/// (category, number of invented words).
const NOUNS: usize = 1500;
const VERBS_T: usize = 450;
const VERBS_I: usize = 250;
const ADJS: usize = 500;
const ADVS: usize = 150;
const LEXICON_SEED: u64 = 0x6c65_7869_636f_6e; // "lexicon"
const MAX_DEPTH: usize = 3;

/// Zipf(1) weights over a word list, precomputed as (cumulative, log-prob).
struct Lexicon {
    words: Vec<String>,
    cum: Vec<f64>,
    logp: Vec<f64>,
}

/// `n` distinct invented words of 1–3 syllables (onset + vowel + optional coda), none of
/// them in `taken`.
fn invent(rng: &mut Rng, n: usize, taken: &mut std::collections::HashSet<String>) -> Vec<String> {
    const ONSET: &[&str] = &[
        "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "br", "st", "tr", "ch",
        "sh", "gl", "pl", "th", "kr",
    ];
    const VOWEL: &[&str] = &["a", "e", "i", "o", "u", "ai", "ou", "ea"];
    const CODA: &[&str] = &["", "", "", "n", "r", "s", "l", "t", "m", "nd"];
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let syllables = 1 + rng.below(3);
        let mut w = String::new();
        for _ in 0..syllables {
            w.push_str(ONSET[rng.below(ONSET.len())]);
            w.push_str(VOWEL[rng.below(VOWEL.len())]);
            w.push_str(CODA[rng.below(CODA.len())]);
        }
        if taken.insert(w.clone()) {
            out.push(w);
        }
    }
    out
}

impl Lexicon {
    fn new(words: Vec<String>) -> Self {
        let w: Vec<f64> = (1..=words.len()).map(|r| 1.0 / r as f64).collect();
        let total: f64 = w.iter().sum();
        let mut acc = 0.0;
        let cum = w
            .iter()
            .map(|x| {
                acc += x / total;
                acc
            })
            .collect();
        let logp = w.iter().map(|x| (x / total).ln()).collect();
        Lexicon { words, cum, logp }
    }

    fn pick<'a>(&'a self, rng: &mut Rng, nll: &mut f64) -> &'a str {
        let u = rng.uniform();
        let i = self.cum.partition_point(|&c| c <= u).min(self.words.len() - 1);
        *nll -= self.logp[i];
        &self.words[i]
    }
}

pub struct Pcfg {
    det: Lexicon,
    noun: Lexicon,
    verb_t: Lexicon,
    verb_i: Lexicon,
    adj: Lexicon,
    prep: Lexicon,
    adv: Lexicon,
}

/// A rule choice with probability p, accounting its log-probability.
fn choose(rng: &mut Rng, probs: &[f64], nll: &mut f64) -> usize {
    let i = rng.weighted(probs);
    *nll -= probs[i].ln();
    i
}

impl Pcfg {
    pub fn new() -> Self {
        let mut rng = Rng::new(LEXICON_SEED);
        let fixed = |l: &[&str]| l.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        let mut taken: std::collections::HashSet<String> = DET.iter().chain(PREP).map(|w| w.to_string()).collect();
        taken.insert("that".into());
        Pcfg {
            det: Lexicon::new(fixed(DET)),
            noun: Lexicon::new(invent(&mut rng, NOUNS, &mut taken)),
            verb_t: Lexicon::new(invent(&mut rng, VERBS_T, &mut taken)),
            verb_i: Lexicon::new(invent(&mut rng, VERBS_I, &mut taken)),
            adj: Lexicon::new(invent(&mut rng, ADJS, &mut taken)),
            prep: Lexicon::new(fixed(PREP)),
            adv: Lexicon::new(invent(&mut rng, ADVS, &mut taken)),
        }
    }

    fn np<'a>(&'a self, rng: &mut Rng, depth: usize, out: &mut Vec<&'a str>, nll: &mut f64) {
        out.push(self.det.pick(rng, nll));
        // NP -> Det N | Det Adj N | Det Adj Adj N
        match choose(rng, &[0.55, 0.35, 0.10], nll) {
            0 => {}
            1 => out.push(self.adj.pick(rng, nll)),
            _ => {
                out.push(self.adj.pick(rng, nll));
                out.push(self.adj.pick(rng, nll));
            }
        }
        out.push(self.noun.pick(rng, nll));
        if depth < MAX_DEPTH {
            // optional PP or relative clause
            match choose(rng, &[0.7, 0.2, 0.1], nll) {
                0 => {}
                1 => {
                    out.push(self.prep.pick(rng, nll));
                    self.np(rng, depth + 1, out, nll);
                }
                _ => {
                    out.push("that");
                    self.vp(rng, depth + 1, out, nll);
                }
            }
        }
    }

    fn vp<'a>(&'a self, rng: &mut Rng, depth: usize, out: &mut Vec<&'a str>, nll: &mut f64) {
        match choose(rng, &[0.6, 0.25, 0.15], nll) {
            0 => {
                out.push(self.verb_t.pick(rng, nll));
                self.np(rng, depth + 1, out, nll);
            }
            1 => out.push(self.verb_i.pick(rng, nll)),
            _ => {
                out.push(self.verb_i.pick(rng, nll));
                out.push(self.adv.pick(rng, nll));
            }
        }
    }

    /// One sentence as bytes ("the old cat sees a dog. "), with its derivation -log p.
    fn sentence(&self, rng: &mut Rng, out: &mut Vec<u8>) -> f64 {
        let mut words = Vec::with_capacity(16);
        let mut nll = 0.0;
        self.np(rng, 0, &mut words, &mut nll);
        self.vp(rng, 0, &mut words, &mut nll);
        let s = words.join(" ");
        let mut bytes = s.into_bytes();
        bytes[0] = bytes[0].to_ascii_uppercase();
        out.extend_from_slice(&bytes);
        out.extend_from_slice(b". ");
        nll
    }

    /// Appends `len` bytes: a stream of sentences entered at a random offset into the first,
    /// so windows do not always start at a sentence boundary. Returns (-log p, bytes covered)
    /// of the whole sentences generated, for the entropy estimate.
    pub fn generate(&self, rng: &mut Rng, len: usize, out: &mut Vec<u8>) -> (f64, usize) {
        let mut buf = Vec::with_capacity(len + 128);
        let (mut nll, mut covered) = (0.0, 0);
        let skip = rng.below(48);
        while buf.len() < len + skip {
            let before = buf.len();
            nll += self.sentence(rng, &mut buf);
            covered += buf.len() - before;
        }
        out.extend_from_slice(&buf[skip..skip + len]);
        (nll, covered)
    }
}
