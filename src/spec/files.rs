//! Files a sweep names that the spec must read to resolve it: a Hugging Face tokenizer.json
//! fixes the vocabulary, which sizes the model (N, D, FLOPs), so it is read and parsed here,
//! below the data layer that later tokenizes with it.

use anyhow::{anyhow, bail, Result};
use std::io::Read;
use std::path::Path;

/// The largest tokenizer.json accepted. The biggest in common use (Gemma's 256k vocabulary)
/// are about 35 MB; 128 MiB leaves room for larger vocabularies while a wrong path (a device,
/// a corpus) fails at once instead of being read whole into memory.
pub const MAX_TOKENIZER_BYTES: u64 = 128 << 20;

/// The bytes of a tokenizer file: a regular file (after resolving links) of at most
/// `MAX_TOKENIZER_BYTES`. Checked before opening, because opening a FIFO blocks until a writer
/// comes and a device such as /dev/zero never ends; the read is bounded too, in case the file
/// grows between the check and the read.
pub fn read_tokenizer_file(path: &Path) -> Result<Vec<u8>> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| anyhow!("cannot read tokenizer file {shown}: {e}"))?;
    if !meta.is_file() {
        let what = if meta.is_dir() { "a directory" } else { kind_of_special(&meta.file_type()) };
        bail!("tokenizer file {shown} is not a regular file (it is {what}); expected a tokenizer.json");
    }
    let too_big =
        || anyhow!("tokenizer file {shown} is larger than {} MiB: not a tokenizer.json", MAX_TOKENIZER_BYTES >> 20);
    if meta.len() > MAX_TOKENIZER_BYTES {
        return Err(too_big());
    }
    let f = std::fs::File::open(path).map_err(|e| anyhow!("cannot read tokenizer file {shown}: {e}"))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.take(MAX_TOKENIZER_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow!("cannot read tokenizer file {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_TOKENIZER_BYTES {
        return Err(too_big());
    }
    Ok(bytes)
}

/// A Hugging Face tokenizer.json, read with `read_tokenizer_file`'s bounds and parsed.
pub fn parse_hf(path: &Path) -> Result<tokenizers::Tokenizer> {
    let bytes = read_tokenizer_file(path)?;
    tokenizers::Tokenizer::from_bytes(&bytes)
        .map_err(|e| anyhow!("{}: not a Hugging Face tokenizer.json: {e}", path.display()))
}

/// The vocabulary size of a tokenizer.json (the spec needs it for parameter counts).
pub fn hf_vocab(path: &Path) -> Result<usize> {
    Ok(parse_hf(path)?.get_vocab_size(true))
}

/// Names what a path that is neither a file nor a directory is, for the error.
pub fn kind_of_special(ft: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO (named pipe)";
        } else if ft.is_char_device() {
            return "a character device";
        } else if ft.is_block_device() {
            return "a block device";
        } else if ft.is_socket() {
            return "a socket";
        }
    }
    let _ = ft;
    "neither a file nor a directory"
}
