#!/usr/bin/env python3
# Builds a ~64 MB JSONL corpus of text (lines of the repo's own sources and README as
# seed text, shuffled into documents) and trains a byte-level BPE tokenizer.json (vocab 8192)
# with the Python `tokenizers` package, for the tokenization throughput figures.
import glob, json, os, random, sys
from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
random.seed(0)
out_dir = sys.argv[1] if len(sys.argv) > 1 else '/tmp/wt-text-bench'
os.makedirs(out_dir, exist_ok=True)
repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
lines = []
for f in sorted(glob.glob(repo + '/src/**/*.rs', recursive=True)) + [repo + '/README.md']:
    lines += [l for l in open(f).read().splitlines() if l.strip()]
with open(out_dir + '/corpus.jsonl', 'w') as out:
    size = 0
    while size < 64e6:
        doc = "\n".join(random.choice(lines) for _ in range(40))
        s = json.dumps({"text": doc}) + "\n"
        out.write(s); size += len(s)
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
tr = trainers.BpeTrainer(vocab_size=8192, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
tok.train_from_iterator(lines, trainer=tr)
tok.save(out_dir + '/tokenizer.json')
print("ok", tok.get_vocab_size())
