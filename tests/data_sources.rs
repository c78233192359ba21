//! File-backed data end to end through the binary: text directories, compressed JSONL, llm.c
//! token shards, Parquet in FineWeb's layout and a Hugging Face tokenizer train and record per-domain bits/byte and
//! realised tokens; each kind of bad data input is caught by `plan` (exit 2) with the source's
//! position in the sweep file and the position in the data file.

use polars::prelude::{Column, DataFrame, NamedFrom, ParquetCompression, ParquetWriter, Series};
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

/// A FineWeb-Edu-layout Parquet file (the eleven columns of the real one, plus a list column
/// no text source needs) of `rows` rows in row groups of `group`: row i has int_score i % 5.
/// Returns each row's (text, int_score).
fn fineweb(path: &Path, first: u64, rows: usize, group: usize, compression: ParquetCompression) -> Vec<(String, i64)> {
    let text: Vec<String> = (0..rows).map(|i| salad(first + i as u64, 40 + i % 30)).collect();
    let int_score: Vec<i64> = (0..rows).map(|i| (i % 5) as i64).collect();
    let strings = |f: &dyn Fn(usize) -> String| (0..rows).map(f).collect::<Vec<String>>();
    let tags: Vec<Series> = (0..rows).map(|i| Series::new("".into(), &[i as i64, 2])).collect();
    let cols = vec![
        Column::new("text".into(), &text),
        Column::new("id".into(), strings(&|i| format!("<urn:uuid:{:08x}>", first as usize + i))),
        Column::new("dump".into(), vec!["CC-MAIN-2024-10"; rows]),
        Column::new("url".into(), strings(&|i| format!("https://example.org/{i}"))),
        Column::new("date".into(), vec!["2024-02-20T12:00:00Z"; rows]),
        Column::new("file_path".into(), vec!["s3://commoncrawl/crawl-data/CC-MAIN-2024-10/x.warc.gz"; rows]),
        Column::new("language".into(), vec!["en"; rows]),
        Column::new("language_score".into(), vec![0.95f64; rows]),
        Column::new("token_count".into(), text.iter().map(|t| t.split(' ').count() as i64).collect::<Vec<_>>()),
        Column::new("score".into(), int_score.iter().map(|&s| s as f64 + 0.25).collect::<Vec<_>>()),
        Column::new("int_score".into(), &int_score),
        Column::new("tags".into(), &tags),
    ];
    let mut df = DataFrame::new(rows, cols).unwrap();
    ParquetWriter::new(std::fs::File::create(path).unwrap())
        .with_compression(compression)
        .with_row_group_size(Some(group))
        .finish(&mut df)
        .unwrap();
    text.into_iter().zip(int_score).collect()
}

/// The byte tokenizer's token count of these documents: their bytes plus one separator
/// between consecutive documents.
fn byte_tokens<'a>(docs: impl Iterator<Item = &'a String>) -> usize {
    let (mut bytes, mut n) = (0, 0);
    for d in docs {
        bytes += d.len();
        n += 1;
    }
    bytes + n - 1
}

const ONE_RUN: &str = "width = [16]\ndepth = [1]\n";

/// A FineWeb-Edu-like download (two Parquet files, zstd and snappy, several row groups each,
/// a README beside them) plans, trains and resumes as a glob with FineWeb-Edu's
/// `int_score >= 3` filter, whose tokens are exactly the kept rows' text; the folder and the
/// unfiltered source are other cache entries holding every row.
#[test]
fn parquet_fineweb_layout_plans_trains_resumes_and_filters() {
    let dir = tmp("parquetsrc");
    let d = dir.display();
    let data = dir.join("fineweb-edu/data");
    std::fs::create_dir_all(&data).unwrap();
    let mut rows = fineweb(&data.join("train-00000-of-00002.parquet"), 0, 300, 64, ParquetCompression::Zstd(None));
    rows.extend(fineweb(&data.join("train-00001-of-00002.parquet"), 300, 300, 100, ParquetCompression::Snappy));
    std::fs::write(data.join("README.md"), "# not data\n").unwrap();
    let head = HEAD.replace("width = [16, 32]\ndepth = [1, 1]\nzip = [[\"width\", \"depth\"]]\n", ONE_RUN);
    let src = |path: &str, extra: &str| {
        format!("{head}[data]\n[[data.source]]\nname = \"edu\"\nkind = \"parquet\"\npath = \"{path}\"\n{extra}")
    };
    let cache = dir.join("cache");
    let results = dir.join("results");
    let run = |args: &[&str]| bin().args(args).env("WINDTUNNEL_CACHE", &cache).output().unwrap();

    let p = dir.join("edu.toml");
    std::fs::write(&p, src(&format!("{d}/fineweb-edu/data/train-*.parquet"), "filter = \"int_score >= 3\"\n")).unwrap();
    let kept: Vec<&String> = rows.iter().filter(|r| r.1 >= 3).map(|r| &r.0).collect();
    assert_eq!(kept.len(), 240);
    let want = format!("data edu: parquet from 2 file(s), {} tokens", byte_tokens(kept.iter().copied()));
    let o = run(&["plan", p.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains(&want) && t.contains("tokenized in") && t.contains("240 of 600 rows"), "wanted {want:?}: {t}");
    let o = run(&["run", p.to_str().unwrap(), "--results", results.to_str().unwrap(), "--no-fit"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains(&want) && t.contains("cached"), "a second look re-tokenized: {t}");
    let runs: Vec<_> = std::fs::read_dir(results.join("files/runs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(runs.len(), 1);
    let done: serde_json::Value = serde_json::from_slice(&std::fs::read(runs[0].join("DONE")).unwrap()).unwrap();
    assert_eq!(done["domain_tokens"][0][0], "edu", "{done}");
    let evals = std::fs::read_to_string(runs[0].join("evals.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(evals.lines().last().unwrap()).unwrap();
    assert!(last["bpb"].as_f64().is_some_and(|b| b > 0.0 && b < 8.0), "{last}");
    // Resuming: nothing left to train.
    let o = run(&["run", p.to_str().unwrap(), "--results", results.to_str().unwrap(), "--no-fit"]);
    let t = text(&o);
    assert!(o.status.success() && t.contains("1 already done, 0 to train"), "{t}");

    // The folder (README skipped), unfiltered: every row, a new cache entry.
    let p = dir.join("folder.toml");
    std::fs::write(&p, src(&format!("{d}/fineweb-edu/data"), "")).unwrap();
    let o = run(&["plan", p.to_str().unwrap()]);
    let t = text(&o);
    let want = format!("data edu: parquet from 2 file(s), {} tokens", byte_tokens(rows.iter().map(|r| &r.0)));
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains(&want) && t.contains("tokenized in") && t.contains("600 of 600 rows"), "wanted {want:?}: {t}");
}

/// Each kind of bad Parquet input stops `plan` (exit 2) with the source's place in the sweep
/// file and, for the data, the file and the column; none panics.
#[test]
fn bad_parquet_inputs_are_located() {
    let dir = tmp("badparquet");
    let d = dir.display().to_string();
    fineweb(&dir.join("ok.parquet"), 0, 300, 128, ParquetCompression::Zstd(None));
    fineweb(&dir.join("none.parquet"), 0, 0, 128, ParquetCompression::Zstd(None));
    std::fs::write(dir.join("empty.parquet"), "").unwrap();
    std::fs::write(dir.join("corrupt.parquet"), salad(3, 500)).unwrap();
    let good = std::fs::read(dir.join("ok.parquet")).unwrap();
    std::fs::write(dir.join("cut.parquet"), &good[..good.len() / 2]).unwrap();
    std::fs::create_dir_all(dir.join("nothing")).unwrap();
    std::fs::write(dir.join("nothing/notes.txt"), "x").unwrap();
    std::fs::write(dir.join("web.jsonl"), "{\"text\": \"a\"}\n").unwrap();
    let src = |file: &str, extra: &str| {
        format!("[data]\n[[data.source]]\nname = \"x\"\nkind = \"parquet\"\npath = \"{d}/{file}\"\n{extra}")
    };
    let ok = format!("{d}/ok.parquet");
    let cases: Vec<(String, String)> = vec![
        (
            src("ok.parquet", "column = \"body\"\n"),
            format!("{ok}: text column `body` not found; the columns are text, id, dump, url, date, file_path, language"),
        ),
        (src("ok.parquet", "column = \"int_score\"\n"), format!("{ok}: column `int_score` holds numbers (Int64), expected strings")),
        (src("ok.parquet", "column = \"tags\"\n"), format!("{ok}: column `tags` holds lists, expected strings")),
        (src("ok.parquet", "filter = \"edu >= 3\"\n"), format!("{ok}: filter column `edu` not found; the columns are text")),
        (
            src("ok.parquet", "filter = \"language == 3\"\n"),
            format!("{ok}: filter column `language` holds strings, expected numbers"),
        ),
        (src("ok.parquet", "filter = \"int_score > 10\"\n"), "the filter `int_score > 10` keeps none of the 300 rows".into()),
        (src("ok.parquet", "filter = \"int_score => 3\"\n"), "expected \"<column> <op> <number>\"".into()),
        (src("ok.parquet", "filter = \"int_score >= high\"\n"), "`high` is not a finite number".into()),
        (src("ok.parquet", "field = \"text\"\n"), "a parquet source names its `column`".into()),
        (src("ok.parquet", "invalid_utf8 = \"skip\"\n"), "UTF-8 by the format".into()),
        (src("empty.parquet", ""), format!("{d}/empty.parquet: empty file (0 bytes), not Parquet")),
        (src("none.parquet", ""), format!("no rows in the 1 Parquet file(s) of `{d}/none.parquet`")),
        (src("corrupt.parquet", ""), format!("{d}/corrupt.parquet: not a Parquet file")),
        (src("cut.parquet", ""), format!("{d}/cut.parquet: not a Parquet file")),
        (src("missing-*.parquet", ""), format!("no files match `{d}/missing-*.parquet`")),
        (src("nothing", ""), format!("directory `{d}/nothing` holds no .parquet files")),
        (
            format!("[data]\n[[data.source]]\nname = \"x\"\nkind = \"jsonl\"\npath = \"{d}/web.jsonl\"\ncolumn = \"text\"\n"),
            "`column` applies to kind = \"parquet\" only".into(),
        ),
    ];
    for (i, (data, want)) in cases.iter().enumerate() {
        let p = dir.join(format!("pq{i}.toml"));
        std::fs::write(&p, format!("{HEAD}{data}")).unwrap();
        let o = bin().args(["plan", p.to_str().unwrap()]).env("WINDTUNNEL_CACHE", dir.join("cache")).output().unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "case {i}: {t}");
        assert!(t.contains(want.as_str()), "case {i}: wanted {want:?} in: {t}");
        assert!(t.contains(&format!("pq{i}.toml:")), "case {i}: no sweep position in: {t}");
        assert!(!t.contains("panicked"), "case {i}: {t}");
    }
}
