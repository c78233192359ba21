//! `windtunnel bench-parquet`: what tokenizing a FineWeb-sized Parquet file costs. Writes a
//! FineWeb-Edu-layout file (the eleven columns, zstd, row groups of `--rows-per-group`) of
//! pseudo-English text until it is at least `--mb` MB, then times, each from a fresh cache:
//! reading the text column alone (decode MB/s), and the whole `prepare` path (read, tokenize,
//! write cache shards) with the byte tokenizer and a Hugging Face tokenizer.json. Each pass
//! reports MB/s of text and the process's peak resident memory during the pass (VmHWM, reset
//! between passes through /proc/self/clear_refs), which must follow the row group and the
//! tokenizer's batch, not the file.

use crate::app::bench::data::rss_kb;
use crate::data::prepare::{self, Manifest};
use crate::data::tokenizer::Tokenizer;
use crate::rng::Rng;
use crate::spec::config::{DomainConfig, FileSource, RowFilter, SourceKind, TokenizerSpec, Utf8Policy};
use anyhow::{Context, Result};
use polars::io::parquet::write::BatchedWriter;
use polars::prelude::{Column, DataFrame, ParquetCompression, ParquetWriter};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Size of the generated Parquet file in MB (zstd-compressed); it is written until at least this big.
    #[arg(long, default_value_t = 200.0)]
    mb: f64,
    /// Rows per row group of the generated file.
    #[arg(long, default_value_t = 2000)]
    rows_per_group: usize,
    /// Folder for the generated file and the token caches (deleted afterwards unless --keep).
    #[arg(long, default_value = "/tmp")]
    dir: PathBuf,
    /// A tokenizer.json to time. Default: a byte-level BPE (vocabulary 8192) trained here on
    /// the first 4 MB of the generated text.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Keep the generated file; a later run with the same --mb and --rows-per-group reuses it.
    #[arg(long)]
    keep: bool,
}

pub fn run(args: Args) -> Result<i32> {
    if !(args.mb > 0.0 && args.mb <= 20_000.0) || args.rows_per_group == 0 {
        return Err(crate::UserError("--mb must be in (0, 20000] and --rows-per-group at least 1".into()).into());
    }
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    let file = args.dir.join(format!("fineweb-bench-{}mb-{}.parquet", args.mb, args.rows_per_group));
    if !(args.keep && file.exists()) {
        let t = Instant::now();
        let (rows, groups, text) = write_fineweb(&file, args.mb, args.rows_per_group)?;
        let size = std::fs::metadata(&file)?.len();
        println!(
            "file: {} ({:.0} MB zstd, {rows} rows in {groups} row groups, {:.0} MB of text: {:.2}x), written in {:.1} s",
            file.display(),
            size as f64 / 1e6,
            text as f64 / 1e6,
            text as f64 / size as f64,
            t.elapsed().as_secs_f64()
        );
    } else {
        println!("file: {} (kept from an earlier run)", file.display());
    }
    let out = measure(&args, &file);
    let cache = args.dir.join(format!("bench-parquet-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    if !args.keep {
        let _ = std::fs::remove_file(&file);
    }
    out?;
    Ok(0)
}

fn measure(args: &Args, file: &Path) -> Result<()> {
    let cache = args.dir.join(format!("bench-parquet-cache-{}", std::process::id()));
    let tok_path = match &args.tokenizer {
        Some(p) => p.clone(),
        None => {
            let p = args.dir.join(format!("bench-bpe-{}.json", std::process::id()));
            let t = Instant::now();
            train_bpe(file, &p)?;
            println!(
                "tokenizer: byte-level BPE, vocabulary 8192, trained on 4 MB of the text in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            p
        }
    };
    let (_, base) = reset_peak();
    let (t, cpu0) = (Instant::now(), cpu_seconds());
    let (mut bytes, mut rows) = (0u64, 0u64);
    crate::data::parquet::docs(file, "text", None, &mut |s| {
        bytes += s.len() as u64;
        rows += 1;
        Ok(())
    })?;
    let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    println!(
        "read the text column only: {rows} rows, {:.0} MB of text in {secs:.1} s ({cpu:.1} CPU s): {:.0} MB/s; peak resident {}",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs,
        peak_line(base)
    );
    let filter = RowFilter::parse("int_score >= 3").expect("a valid filter");
    let cases = [
        ("bytes", TokenizerSpec::Bytes, None),
        ("bytes, int_score >= 3", TokenizerSpec::Bytes, Some(filter)),
        ("tokenizer.json", TokenizerSpec::Hf { path: tok_path.display().to_string() }, None),
    ];
    for (name, spec, filter) in cases {
        let _ = std::fs::remove_dir_all(&cache);
        let tok = Tokenizer::load(&spec)?;
        let (_, base) = reset_peak();
        let (t, cpu0) = (Instant::now(), cpu_seconds());
        let m = tokenize(file, &tok, filter, &cache)?;
        let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
        let text = m.text_bytes.unwrap_or(0) as f64;
        println!(
            "tokenize ({name}, vocabulary {}): {} of {} rows, {:.0} MB of text -> {} tokens in {secs:.1} s ({cpu:.1} CPU s on {} threads): {:.1} MB/s, {:.2} M tokens/s; peak resident {}",
            tok.vocab(),
            m.documents,
            m.rows.unwrap_or(0),
            text / 1e6,
            m.tokens,
            rayon::current_num_threads(),
            text / 1e6 / secs,
            m.tokens as f64 / 1e6 / secs,
            peak_line(base)
        );
    }
    let _ = std::fs::remove_dir_all(&cache);
    if args.tokenizer.is_none() {
        let _ = std::fs::remove_file(&tok_path);
    }
    Ok(())
}

/// The `prepare` path of one parquet domain, exactly as `plan` runs it.
fn tokenize(file: &Path, tok: &Tokenizer, filter: Option<RowFilter>, cache: &Path) -> Result<Manifest> {
    let src = FileSource {
        path: file.display().to_string(),
        field: None,
        invalid_utf8: Utf8Policy::Replace,
        val_fraction: 0.02,
        bytes_per_token: None,
        column: Some("text".into()),
        filter,
    };
    let d =
        DomainConfig { name: "bench".into(), kind: SourceKind::Parquet, source: Some(src.clone()), fingerprint: None };
    prepare::build(&d, &src, Some(tok), cache, "bench")
}

/// CPU time of this process so far (user + system), so a figure measured on a busy machine can
/// be read per CPU second as well as per wall second.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes one rusage struct and reads nothing.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return f64::NAN;
    }
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Resets the peak resident set to the current one (Linux: `5` > /proc/self/clear_refs) and
/// returns (whether that worked, current resident kB).
fn reset_peak() -> (bool, u64) {
    let ok = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let (a, f) = rss_kb();
    (ok, a + f)
}

fn peak_line(base: u64) -> String {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm: u64 = s
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    format!("{:.0} MB ({:.0} MB before the pass)", hwm as f64 / 1024.0, base as f64 / 1024.0)
}

/// Pseudo-English: Zipf-distributed words (20,000 of them, made of common English letter
/// pairs) in sentences and paragraphs, so zstd compresses it about as much as web text and a
/// BPE tokenizer finds real merges.
struct Prose {
    words: Vec<String>,
    cdf: Vec<f64>,
}

impl Prose {
    fn new() -> Prose {
        const PARTS: [&str; 40] = [
            "th", "e", "an", "re", "in", "on", "at", "er", "es", "or", "ti", "al", "st", "ou", "ng", "ed", "is", "it",
            "ar", "le", "to", "ha", "en", "de", "se", "a", "o", "i", "u", "me", "co", "ly", "ve", "ch", "pr", "ma",
            "ri", "ne", "ca", "s",
        ];
        let mut rng = Rng::new(0x9a7);
        let mut seen = std::collections::HashSet::new();
        let mut words = Vec::new();
        while words.len() < 20_000 {
            let n = 1 + rng.below(4);
            let w: String = (0..n).map(|_| PARTS[rng.below(PARTS.len())]).collect();
            if seen.insert(w.clone()) {
                words.push(w);
            }
        }
        let mut acc = 0.0;
        let cdf = (0..words.len())
            .map(|k| {
                acc += 1.0 / (k as f64 + 1.0);
                acc
            })
            .collect::<Vec<_>>();
        let total = acc;
        Prose { words, cdf: cdf.into_iter().map(|c| c / total).collect() }
    }

    /// One document of about `len` bytes.
    fn doc(&self, rng: &mut Rng, len: usize, out: &mut String) {
        out.clear();
        while out.len() < len {
            let words = 6 + rng.below(20);
            for i in 0..words {
                let u = rng.uniform();
                let w = &self.words[self.cdf.partition_point(|&c| c < u).min(self.words.len() - 1)];
                if i == 0 {
                    let mut c = w.chars();
                    out.extend(c.next().map(|f| f.to_ascii_uppercase()));
                    out.push_str(c.as_str());
                } else {
                    out.push(if rng.below(12) == 0 { ',' } else { ' ' });
                    if out.ends_with(',') {
                        out.push(' ');
                    }
                    out.push_str(w);
                }
            }
            out.push_str(if rng.below(6) == 0 { ".\n\n" } else { ". " });
        }
    }
}

/// Writes the FineWeb-Edu layout, one row group per batch, until the file holds `mb` MB.
/// Returns (rows, row groups, text bytes).
fn write_fineweb(path: &Path, mb: f64, group: usize) -> Result<(u64, u64, u64)> {
    let prose = Prose::new();
    let mut rng = Rng::new(0xf1e);
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let (mut rows, mut groups, mut text_bytes) = (0u64, 0u64, 0u64);
    let mut writer: Option<BatchedWriter<std::fs::File>> = None;
    let mut file = Some(file);
    let mut buf = String::new();
    while std::fs::metadata(path)?.len() < (mb * 1e6) as u64 {
        let mut text = Vec::with_capacity(group);
        for _ in 0..group {
            // FineWeb-Edu's documents: a few hundred bytes to tens of kB, most a few kB.
            let len = 300 + (rng.uniform().powi(3) * 20_000.0) as usize;
            prose.doc(&mut rng, len, &mut buf);
            text_bytes += buf.len() as u64;
            text.push(buf.clone());
        }
        let score: Vec<f64> = (0..group).map(|_| rng.uniform() * 5.0).collect();
        let first = rows as usize;
        let n = |i: usize| first + i;
        let cols = vec![
            Column::new("id".into(), (0..group).map(|i| format!("<urn:uuid:{:012x}>", n(i))).collect::<Vec<_>>()),
            Column::new("dump".into(), vec!["CC-MAIN-2024-10"; group]),
            Column::new(
                "url".into(),
                (0..group).map(|i| format!("https://example.org/page/{}", n(i))).collect::<Vec<_>>(),
            ),
            Column::new("date".into(), vec!["2024-02-20T12:00:00Z"; group]),
            Column::new(
                "file_path".into(),
                (0..group)
                    .map(|i| format!("s3://commoncrawl/crawl-data/CC-MAIN-2024-10/segments/{}.warc.gz", n(i) / 1000))
                    .collect::<Vec<_>>(),
            ),
            Column::new("language".into(), vec!["en"; group]),
            Column::new("language_score".into(), (0..group).map(|_| 0.9 + rng.uniform() / 10.0).collect::<Vec<_>>()),
            Column::new("token_count".into(), text.iter().map(|t| (t.len() / 4) as i64).collect::<Vec<_>>()),
            Column::new("int_score".into(), score.iter().map(|s| s.round() as i64).collect::<Vec<_>>()),
            Column::new("score".into(), score),
            Column::new("text".into(), text),
        ];
        // FineWeb's column order: text first.
        let mut df = DataFrame::new(group, cols)?.select([
            "text",
            "id",
            "dump",
            "url",
            "date",
            "file_path",
            "language",
            "language_score",
            "token_count",
            "score",
            "int_score",
        ])?;
        if writer.is_none() {
            let w = ParquetWriter::new(file.take().expect("one file"))
                .with_compression(ParquetCompression::Zstd(None))
                .with_row_group_size(Some(group));
            writer = Some(w.batched(df.schema())?);
        }
        writer.as_mut().expect("created above").write_batch(&mut df)?;
        rows += group as u64;
        groups += 1;
    }
    if let Some(w) = writer {
        w.finish()?;
    }
    Ok((rows, groups, text_bytes))
}

/// A byte-level BPE like GPT-2's (vocabulary 8192, `<|endoftext|>`), trained on the first
/// 4 MB of the file's text.
fn train_bpe(file: &Path, out: &Path) -> Result<()> {
    use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
    use tokenizers::models::TrainerWrapper;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::{AddedToken, Tokenizer as HfTokenizer};
    let mut sample = Vec::new();
    let mut size = 0;
    let _ = crate::data::parquet::docs(file, "text", None, &mut |s| {
        if size < 4 << 20 {
            size += s.len();
            sample.push(s.to_string());
            Ok(())
        } else {
            anyhow::bail!("enough")
        }
    });
    let trainer = BpeTrainerBuilder::new()
        .vocab_size(8192)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from("<|endoftext|>", true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut trainer: TrainerWrapper = trainer.into();
    let mut tok = HfTokenizer::new(BPE::default());
    tok.with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)));
    tok.with_decoder(Some(ByteLevel::default()));
    tok.train(&mut trainer, sample.iter()).map_err(|e| anyhow::anyhow!("training the BPE: {e}"))?;
    tok.save(out, false).map_err(|e| anyhow::anyhow!("saving {}: {e}", out.display()))?;
    Ok(())
}
