//! No sweep file, however broken, panics the parser or gets an error without a
//! position or a message. Two sources of bad files: the committed corpus `tests/fuzz_corpus/`
//! (hand-written cases, each one rejected) and a few thousand mutations of the repository's
//! sweeps from a fixed seed (each either accepted or rejected with a located error).

use super::{parse_bytes, SpecError};
use crate::rng::Rng;
use std::path::{Path, PathBuf};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Files of `dir` ending in `.toml`, sorted; panics with a clear message when there are none.
fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no .toml files in {}", dir.display());
    v
}

/// Why `e` is not a well-formed located error, if it is not.
fn defect(e: &SpecError, label: &str) -> Option<String> {
    let text = e.to_string();
    let prefix = format!("error: {label}:{}:{}: ", e.line, e.col);
    if e.line == 0 || e.col == 0 {
        Some(format!("unlocated: {text}"))
    } else if e.message.trim().is_empty() {
        Some(format!("empty message: {text}"))
    } else if !text.starts_with(&prefix) {
        Some(format!("does not start with {prefix:?}: {text}"))
    } else if text.len() > 4000 {
        Some(format!("{} bytes of message: {}", text.len(), &text[..200]))
    } else {
        None
    }
}

/// Parses `bytes`, turning a panic into a defect.
fn check(bytes: &[u8], label: &str) -> Result<bool, String> {
    match std::panic::catch_unwind(|| parse_bytes(bytes, label)) {
        Err(_) => Err(format!("{label}: panicked")),
        Ok(Ok(_)) => Ok(true),
        Ok(Err(e)) => match defect(&e, label) {
            Some(d) => Err(format!("{label}: {d}")),
            None => Ok(false),
        },
    }
}

#[test]
fn every_corpus_file_is_rejected_with_a_located_error() {
    let mut failures = Vec::new();
    let files = toml_files(&repo().join("tests/fuzz_corpus"));
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let label = f.file_name().unwrap().to_string_lossy().to_string();
        match check(&bytes, &label) {
            Ok(true) => failures.push(format!("{label}: accepted")),
            Ok(false) => {}
            Err(d) => failures.push(d),
        }
    }
    assert!(failures.is_empty(), "{} of {} corpus files:\n{}", failures.len(), files.len(), failures.join("\n"));
}

/// A 5M-character value (too big to commit) is cut in the message and the snippet.
#[test]
fn a_five_million_character_value_is_not_echoed_whole() {
    let tiny = std::fs::read_to_string(repo().join("sweeps/tiny.toml")).unwrap();
    let huge = "y".repeat(5_000_000);
    for (from, to) in [
        ("backend = \"cpu\"", format!("backend = \"{huge}\"")),
        ("tokenizer = \"bytes\"", format!("tokenizer = \"{huge}\"")),
        ("name = \"tiny\"", format!("name = \"{huge}\"")),
        ("[grid]", format!("[grid]\n{huge} = 1")),
    ] {
        let text = tiny.replacen(from, &to, 1);
        assert_ne!(text, tiny, "edit {from:?} not found");
        match check(text.as_bytes(), "huge.toml") {
            Ok(false) => {}
            Ok(true) => panic!("{from}: a 5M-character value was accepted"),
            Err(d) => panic!("{from}: {d}"),
        }
    }
}

/// Tokens spliced into the files: TOML syntax, control and non-UTF-8 bytes, extreme numbers,
/// keys and headers of the format, a long value.
const SPLICES: &[&[u8]] = &[
    b"=",
    b"[",
    b"]",
    b"{",
    b"}",
    b"\"",
    b"'",
    b"\n",
    b"#",
    b",",
    b".",
    b"\x07",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\r",
    b"\t",
    b"-1",
    b"0",
    b"1e400",
    b"nan",
    b"inf",
    b"-inf",
    b"99999999999999999999",
    b"1e-320",
    b"\"x\"",
    b"[[data.source]]\n",
    b"[sweep]\n",
    b"[grid]\n",
    b"[target]\n",
    b"zip = [[\"width\", \"lr\"]]\n",
    b"exclude = [{ width = 16 }]\n",
    b"tokens = [1e30]\n",
    b"num = 10000",
    b"\"\"\"",
    b"'''",
    b"\\u0000",
    b"mix = { dirichlet = 1e-300, count = 3 }\n",
    b"schedule = { kind = \"cosine\" }\n",
];

fn mutate(src: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = src.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(b.len() + 1);
        match rng.below(8) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = rng.next_u64() as u8;
            }
            1 => {
                let end = (at + 1 + rng.below(24)).min(b.len());
                b.drain(at.min(end)..end);
            }
            2 | 3 => {
                let s = SPLICES[rng.below(SPLICES.len())];
                b.splice(at..at, s.iter().copied());
            }
            4 => b.truncate(at),
            5 | 6 if !b.is_empty() => {
                // Duplicate or move a whole line.
                let lines: Vec<&[u8]> = b.split_inclusive(|&c| c == b'\n').collect();
                let (i, j) = (rng.below(lines.len()), rng.below(lines.len()));
                let mut out: Vec<&[u8]> = lines.clone();
                if rng.below(2) == 0 {
                    out.insert(j, lines[i]);
                } else {
                    out.swap(i, j);
                }
                b = out.concat();
            }
            _ => {
                // Replace a run of digits by an extreme number.
                if let Some(i) = (at..b.len()).find(|&i| b[i].is_ascii_digit()) {
                    let end = (i..b.len()).find(|&k| !b[k].is_ascii_digit()).unwrap_or(b.len());
                    let n: &[u8] = [&b"0"[..], b"1e308", b"18446744073709551616", b"-5", b"100000"][rng.below(5)];
                    b.splice(i..end, n.iter().copied());
                }
            }
        }
    }
    b
}

/// 4,800 mutations (800 per sweep of the repository), a fixed seed: reproducible, about a second.
#[test]
fn mutated_sweeps_never_panic_and_errors_are_located() {
    let seeds: Vec<(String, Vec<u8>)> = toml_files(&repo().join("sweeps"))
        .iter()
        .map(|p| (p.file_name().unwrap().to_string_lossy().to_string(), std::fs::read(p).unwrap()))
        .collect();
    let mut rng = Rng::from_state(0x5eed_f00d_1234_5678);
    let (mut failures, mut rejected, mut cases) = (Vec::new(), 0, 0);
    for (name, src) in &seeds {
        for k in 0..800 {
            let bytes = mutate(src, &mut rng);
            let label = format!("{name}~{k}");
            cases += 1;
            match check(&bytes, &label) {
                Ok(accepted) => rejected += !accepted as usize,
                Err(d) => failures.push(format!("{d}\n  input: {:?}", String::from_utf8_lossy(&bytes))),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} cases:\n{}",
        failures.len(),
        failures[..failures.len().min(5)].join("\n")
    );
    // The mutations must mostly break the files, or this test would test little.
    assert!(rejected * 2 > cases, "only {rejected} of {cases} mutated files were rejected");
}
