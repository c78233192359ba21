//! File-backed data end to end through the binary: text directories, compressed JSONL, llm.c
//! token shards and a Hugging Face tokenizer train and record per-domain bits/byte and
//! realised tokens; each kind of bad data input is caught by `plan` (exit 2) with the source's
//! position in the sweep file and the position in the data file.

use std::io::Write;
use std::path::Path;

mod common;
use common::{bin, text, tmp};

const WORDS: [&str; 10] = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "to", "."];

/// Deterministic word salad: `n` words from WORDS.
fn salad(seed: u64, n: usize) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            WORDS[(x % WORDS.len() as u64) as usize]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn shard(path: &Path, tokens: &[u16], magic: i32, count: i32) {
    let mut f = std::fs::File::create(path).unwrap();
    let mut header = [0i32; 256];
    (header[0], header[1], header[2]) = (magic, 1, count);
    for h in header {
        f.write_all(&h.to_le_bytes()).unwrap();
    }
    for t in tokens {
        f.write_all(&t.to_le_bytes()).unwrap();
    }
}

const HEAD: &str = r#"[sweep]
name = "files"
[model]
seq_len = 32
head_dim = 16
[train]
batch_size = 4
eval_tokens = 1024
[grid]
width = [16, 32]
depth = [1, 1]
zip = [["width", "depth"]]
lr = [1e-2]
tokens = [4096]
[target]
flops = 1e12
"#;

#[test]
fn text_jsonl_shards_and_hf_tokenizer_train() {
    let dir = tmp("datasrc");
    let d = dir.display();
    std::fs::create_dir_all(dir.join("books")).unwrap();
    for i in 0..3 {
        std::fs::write(dir.join(format!("books/{i}.txt")), salad(i, 2000)).unwrap();
    }
    let mut z =
        zstd::stream::write::Encoder::new(std::fs::File::create(dir.join("web.jsonl.zst")).unwrap(), 3).unwrap();
    for i in 0..60 {
        writeln!(z, "{{\"id\": {i}, \"body\": \"{}\"}}", salad(100 + i, 120)).unwrap();
    }
    z.finish().unwrap();
    let toks: Vec<u16> = (0..20_000u32).map(|i| (i * 7 % 251) as u16).collect();
    shard(&dir.join("toks_000.bin"), &toks, 20240520, toks.len() as i32);
    let sweep = format!(
        "{HEAD}[data]\n[[data.source]]\nname = \"books\"\nkind = \"text\"\npath = \"{d}/books\"\n\
         [[data.source]]\nname = \"web\"\nkind = \"jsonl\"\npath = \"{d}/*.jsonl.zst\"\nfield = \"body\"\n\
         [[data.source]]\nname = \"toks\"\nkind = \"shards\"\npath = \"{d}/toks_*.bin\"\n"
    );
    let path = dir.join("files.toml");
    std::fs::write(&path, &sweep).unwrap();
    let cache = dir.join("cache");
    let run = |args: &[&str]| bin().args(args).env("WINDTUNNEL_CACHE", &cache).output().unwrap();
    let p = path.to_str().unwrap();
    let o = run(&["plan", p]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("data books: text from 3 file(s)") && t.contains("tokenized in"), "{t}");
    assert!(
        t.contains("data web: jsonl from 1 file(s)") && t.contains("data toks: shards from 1 file(s), 20000 tokens"),
        "{t}"
    );
    let o = run(&["run", p, "--results", dir.join("results").to_str().unwrap(), "--no-fit", "--jobs", "2"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("data books: text from 3 file(s)") && t.contains("cached"), "a second look re-tokenized: {t}");
    let runs = dir.join("results/files/runs");
    let mut seen = 0;
    for e in std::fs::read_dir(&runs).unwrap() {
        let rd = e.unwrap().path();
        let done: serde_json::Value = serde_json::from_slice(&std::fs::read(rd.join("DONE")).unwrap()).unwrap();
        let per: u64 = done["domain_tokens"].as_array().unwrap().iter().map(|p| p[1].as_u64().unwrap()).sum();
        assert_eq!(per, done["tokens"].as_u64().unwrap(), "realised tokens add up: {done}");
        let evals = std::fs::read_to_string(rd.join("evals.jsonl")).unwrap();
        let last: serde_json::Value = serde_json::from_str(evals.lines().last().unwrap()).unwrap();
        let bpb: Vec<&str> = last["domain_bpb"].as_array().unwrap().iter().map(|p| p[0].as_str().unwrap()).collect();
        // Text knows its bytes; shards do not (no bytes_per_token given), so no mixture bpb.
        assert_eq!(bpb, ["books", "web"], "{last}");
        assert!(last["bpb"].is_null(), "{last}");
        assert_eq!(last["domain_loss"].as_array().unwrap().len(), 3);
        seen += 1;
    }
    assert_eq!(seen, 2);

    // The same text through a Hugging Face tokenizer.json (word level): the vocabulary sets the
    // model's, and bits/byte still apply.
    let vocab: Vec<String> = ["[UNK]", "<|endoftext|>"]
        .iter()
        .chain(WORDS.iter())
        .enumerate()
        .map(|(i, w)| format!("\"{w}\": {i}"))
        .collect();
    let tj = format!(
        r#"{{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
           "pre_tokenizer": {{"type": "Whitespace"}}, "post_processor": null, "decoder": null,
           "model": {{"type": "WordLevel", "vocab": {{{}}}, "unk_token": "[UNK]"}}}}"#,
        vocab.join(", ")
    );
    std::fs::write(dir.join("tokenizer.json"), tj).unwrap();
    let hf = format!(
        "{}[data]\ntokenizer = {{ hf = \"{d}/tokenizer.json\" }}\n[[data.source]]\nname = \"books\"\nkind = \"text\"\npath = \"{d}/books\"\n",
        HEAD.replace("width = [16, 32]", "width = [16]").replace("depth = [1, 1]", "depth = [1]").replace("zip = [[\"width\", \"depth\"]]\n", "")
    );
    let hp = dir.join("hf.toml");
    std::fs::write(&hp, &hf).unwrap();
    // 6,000 words tokenize to 6,000 tokens + 2 separators: under two 8192-token chunks.
    let o = run(&["plan", hp.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("hf.toml:") && t.contains("source \"books\"") && t.contains("needs at least two 8192-token chunks"),
        "{t}"
    );
    for i in 3..9 {
        std::fs::write(dir.join(format!("books/{i}.txt")), salad(i, 2000)).unwrap();
    }
    let o = run(&["run", hp.to_str().unwrap(), "--results", dir.join("results").to_str().unwrap(), "--no-fit"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    let cfg = std::fs::read_dir(dir.join("results/files/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read_to_string(p.join("config.json")).unwrap().contains("\"vocab\": 12,"));
    let rd = cfg.expect("a run with the tokenizer's vocabulary of 12");
    let evals = std::fs::read_to_string(rd.join("evals.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(evals.lines().last().unwrap()).unwrap();
    let bpb = last["bpb"].as_f64().unwrap();
    let nats = last["loss"].as_f64().unwrap();
    // Words average about 2.8 bytes + a space: bits/byte well below nats/token / ln 2.
    assert!(bpb > 0.0 && bpb < nats / std::f64::consts::LN_2 / 2.0, "bpb {bpb} loss {nats}");
}

#[test]
fn bad_data_is_caught_at_plan_time() {
    let dir = tmp("baddata");
    let d = dir.display().to_string();
    std::fs::write(dir.join("empty.txt"), "").unwrap();
    std::fs::write(dir.join("nofield.jsonl"), "{\"text\": \"ok\"}\n{\"title\": \"x\"}\n").unwrap();
    let toks: Vec<u16> = (0..20_000).map(|i| (i % 200) as u16).collect();
    shard(&dir.join("magic.bin"), &toks, 1234, toks.len() as i32);
    shard(&dir.join("short.bin"), &toks[..1000], 20240520, toks.len() as i32);
    let mut wide = toks.clone();
    wide[17_000] = 300;
    shard(&dir.join("wide.bin"), &wide, 20240520, wide.len() as i32);
    std::fs::write(dir.join("tok.json"), "{\"model\": [").unwrap();
    let src = |kind: &str, path: &str| {
        format!("[data]\n[[data.source]]\nname = \"x\"\nkind = \"{kind}\"\npath = \"{d}/{path}\"\n")
    };
    let cases: Vec<(String, &str)> = vec![
        (src("text", "missing/*.txt"), "no files match"),
        (src("text", "empty.txt"), "no text in the 1 file(s)"),
        (src("jsonl", "nofield.jsonl"), "nofield.jsonl:2: no field \"text\""),
        (src("shards", "magic.bin"), "magic.bin: wrong header at byte 0: magic 1234"),
        (src("shards", "short.bin"), "short.bin: truncated: the header announces 20000 tokens"),
        (src("shards", "wide.bin"), "token id 300 is outside the model's vocabulary of 256"),
        (
            format!("[data]\ntokenizer = {{ hf = \"{d}/tok.json\" }}\n[[data.source]]\nname = \"x\"\nkind = \"text\"\npath = \"{d}/empty.txt\"\n"),
            "not a Hugging Face tokenizer.json",
        ),
    ];
    for (i, (data, want)) in cases.iter().enumerate() {
        let p = dir.join(format!("case{i}.toml"));
        std::fs::write(&p, format!("{HEAD}{data}")).unwrap();
        let o = bin().args(["plan", p.to_str().unwrap()]).env("WINDTUNNEL_CACHE", dir.join("cache")).output().unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "case {i}: {t}");
        assert!(t.contains(want), "case {i}: wanted {want:?} in: {t}");
        // Located in the sweep file: the source (data problems) or the tokenizer key (parse).
        assert!(t.contains(&format!("case{i}.toml:")), "case {i}: no sweep position in: {t}");
        assert!(!t.contains("panicked"), "case {i}: {t}");
    }
    // Mixture weights: all zero, and negative, are errors of the grid.
    for (mix, want) in [("{ x = 0 }", "all zero"), ("{ x = -1 }", "must be >= 0")] {
        let p = dir.join("mix.toml");
        let body = format!("{HEAD}{}", src("text", "nofield.jsonl"))
            .replace("tokens = [4096]", &format!("tokens = [4096]\nmix = [{mix}]"));
        std::fs::write(&p, body).unwrap();
        let o = bin().args(["plan", p.to_str().unwrap()]).output().unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{t}");
        assert!(t.contains("mix.toml:15:") && t.contains(want), "{t}");
    }
}

/// A 1 GB llm.c shard (sparse: no disk, no write time) is checked, scanned, opened and sampled
/// without raising the process's resident memory by more than a few MB: it is memory-mapped
/// and the full vocabulary scan reads through a small buffer.
#[test]
fn a_1gb_shard_costs_a_few_mb_of_memory() {
    let dir = tmp("shardmem");
    let o = bin()
        .args(["bench-data", "--gb", "1", "--sparse", "--windows", "2000", "--dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    let mb: f64 = t.split("kB: +").nth(1).and_then(|r| r.split(" MB").next()).and_then(|v| v.parse().ok()).expect(&t);
    assert!(mb < 8.0, "resident memory grew by {mb} MB: {t}");
    assert!(t.contains("499999488 tokens"), "{t}");
}

/// `plan` with a deadline: a hang is a failure with a message, not a test that never ends.
fn plan_within(sweep: &Path, cache: &Path, secs: u64) -> std::process::Output {
    let mut child = bin()
        .args(["plan", sweep.to_str().unwrap()])
        .env("WINDTUNNEL_CACHE", cache)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed().as_secs() > secs {
            child.kill().unwrap();
            panic!("plan {} did not finish in {secs} s", sweep.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// A tokenizer or data path that is a device, a FIFO or a link to one
/// is refused at once, naming the path and what it is; links that duplicate files or loop back
/// to their own directory add no data (the same 3 files however they are reached).
#[cfg(unix)]
#[test]
fn special_files_are_refused_and_symlinks_read_once() {
    use std::os::unix::fs::symlink;
    let dir = tmp("specialsrc");
    let d = dir.display().to_string();
    std::fs::create_dir_all(dir.join("books")).unwrap();
    for i in 0..3 {
        std::fs::write(dir.join(format!("books/{i}.txt")), salad(i, 6000)).unwrap();
    }
    symlink(".", dir.join("books/self")).unwrap();
    symlink("0.txt", dir.join("books/3.txt")).unwrap();
    std::fs::create_dir_all(dir.join("pipes")).unwrap();
    std::fs::write(dir.join("pipes/a.txt"), salad(9, 6000)).unwrap();
    let fifo = std::ffi::CString::new(dir.join("pipes/b.txt").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path and touches nothing else.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    symlink("/dev/zero", dir.join("zero.txt")).unwrap();
    let text_src = |path: &str| format!("[data]\n[[data.source]]\nname = \"x\"\nkind = \"text\"\npath = \"{path}\"\n");
    let cases = [
        (
            format!("[data]\ntokenizer = {{ hf = \"/dev/zero\" }}\n[[data.source]]\nname = \"x\"\nkind = \"text\"\npath = \"{d}/books\"\n"),
            "/dev/zero is not a regular file (it is a character device)",
        ),
        (text_src(&format!("{d}/pipes")), "pipes/b.txt` is not a regular file (it is a FIFO"),
        (text_src(&format!("{d}/zero.txt")), "zero.txt` is not a regular file (it is a character device)"),
    ];
    for (i, (data, want)) in cases.iter().enumerate() {
        let p = dir.join(format!("special{i}.toml"));
        std::fs::write(&p, format!("{HEAD}{data}")).unwrap();
        let o = plan_within(&p, &dir.join("cache"), 60);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "case {i}: {t}");
        assert!(t.contains(want) && t.contains(&format!("special{i}.toml:")), "case {i}: wanted {want:?} in: {t}");
    }
    for (i, path) in [format!("{d}/books"), format!("{d}/books/**/*.txt")].iter().enumerate() {
        let p = dir.join(format!("links{i}.toml"));
        std::fs::write(&p, format!("{HEAD}{}", text_src(path))).unwrap();
        let o = plan_within(&p, &dir.join("cache"), 60);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(0), "{path}: {t}");
        assert!(t.contains("data x: text from 3 file(s)"), "{path}: {t}");
    }
}
