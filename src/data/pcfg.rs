//! Built-in domain "builtin:pcfg": English-like sentences from a small probabilistic grammar
//! with Zipf-distributed word choices and bounded recursion (relative clauses, prepositional
//! phrases). Unlike the Markov source it has long-range structure (agreement of the sentence
//! frame, nesting), so bigger models keep improving on it for longer. The generator reports
//! the log-probability of each derivation; per byte that is an upper bound on the entropy
//! rate (a string may have several derivations), shown in the report beside the fitted E.

use super::rng::Rng;

const DET: &[&str] = &["the", "a", "every", "some", "this", "no"];
const NOUN: &[&str] = &[
    "cat", "dog", "model", "river", "teacher", "engine", "garden", "child", "market", "window", "signal", "farmer",
    "city", "song", "planet", "letter", "bridge", "doctor", "forest", "idea", "storm", "ladder", "painter", "machine",
    "village", "number", "mirror", "sailor", "tower", "winter",
];
const VERB_T: &[&str] = &[
    "sees", "likes", "builds", "finds", "follows", "paints", "trains", "moves", "answers", "carries", "watches",
    "breaks", "measures", "forgets", "helps", "predicts",
];
const VERB_I: &[&str] = &["sleeps", "runs", "waits", "falls", "sings", "grows", "stops", "smiles"];
const ADJ: &[&str] =
    &["small", "large", "red", "quiet", "old", "bright", "strange", "happy", "cold", "green", "heavy", "fast"];
const PREP: &[&str] = &["near", "under", "with", "behind", "over", "beside"];
const ADV: &[&str] = &["slowly", "often", "never", "quickly", "again"];
const MAX_DEPTH: usize = 3;

/// Zipf(1) weights over a word list, precomputed as (cumulative, log-prob).
struct Lexicon {
    words: &'static [&'static str],
    cum: Vec<f64>,
    logp: Vec<f64>,
}

impl Lexicon {
    fn new(words: &'static [&'static str]) -> Self {
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

    fn pick(&self, rng: &mut Rng, nll: &mut f64) -> &'static str {
        let u = rng.uniform();
        let i = self.cum.iter().position(|&c| u < c).unwrap_or(self.words.len() - 1);
        *nll -= self.logp[i];
        self.words[i]
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
        Pcfg {
            det: Lexicon::new(DET),
            noun: Lexicon::new(NOUN),
            verb_t: Lexicon::new(VERB_T),
            verb_i: Lexicon::new(VERB_I),
            adj: Lexicon::new(ADJ),
            prep: Lexicon::new(PREP),
            adv: Lexicon::new(ADV),
        }
    }

    fn np(&self, rng: &mut Rng, depth: usize, out: &mut Vec<&'static str>, nll: &mut f64) {
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

    fn vp(&self, rng: &mut Rng, depth: usize, out: &mut Vec<&'static str>, nll: &mut f64) {
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
