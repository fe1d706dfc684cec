#!/usr/bin/env python3
"""Writes the goldens of cquanto's tokenizer.json reader (tests/data/tokenizers/).

No Hugging Face model can be downloaded here, so the tokenizers are trained by the `tokenizers`
library itself on data/wikitext-2/wiki.test.raw, in the three layouts Llama-family checkpoints
ship:

  spm_bytefallback.json  Llama-2 / TinyLlama / Mistral: BPE with byte_fallback and <unk>, the
                         normalizer Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer, the
                         decoder Replace + ByteFallback + Fuse + Strip, "<s> $A" template.
  bytelevel.json         GPT-2 / SmolLM / Qwen2: ByteLevel pre-tokenizer (the GPT-2 regex),
                         Digits(individual), ByteLevel decoder, <|endoftext|> special.
  llama3.json            Llama-3: Split(the Llama-3 regex, Isolated) + ByteLevel(use_regex
                         false), ignore_merges, "<|begin_of_text|> $A" template.
  metaspace.json         newer SentencePiece conversions: Metaspace(prepend_scheme "first")
                         pre-tokenizer and decoder, byte_fallback.
  cases.json             for each tokenizer and each text: encode(text).ids (with the template's
                         special tokens) and decode(ids, skip_special_tokens=True); and for the
                         whole of WikiText-2's test split (1.29 MB): the id count and the FNV-1a
                         64 hash of the ids as little-endian int32 (ids too many to commit).

tests/test_tokenizer_json.c checks them. make test never runs this script. The library's trainer
walks hash maps, so two runs can train slightly different tokenizers; each run writes the
tokenizers and their cases together, and the committed files are one run's.
Environment (pinned): /root/qvenv with tokenizers 0.21.4.
    /root/qvenv/bin/python tools/gen_tokenizer_golden.py
"""
import json
import os

# One training thread: the BPE trainer's ties otherwise depend on thread timing.
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["RAYON_RS_NUM_CPUS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import tokenizers  # noqa: E402
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "data", "tokenizers")
WIKI = os.path.join(ROOT, "data", "wikitext-2", "wiki.test.raw")
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
BYTES = ["<0x%02X>" % b for b in range(256)]

TEXTS = ["", "Hello world", " leading space", "  two  spaces\tand a tab\nnew line\n\n",
         "The quick brown fox jumps over the lazy dog.", "Numbers: 3.14159, 2024 and 1234567!",
         "caf\u00e9 na\u00efve \u00fcber se\u00f1or", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
         "emoji \U0001F600\U0001F680 and \u2603", "it's they're we've I'm you'll he'd",
         "<s> inside text </s> and <|endoftext|> too", "tabs\t\t\tand trailing   ",
         "= Valkyria Chronicles III =\n Senj\u014d no Valkyria 3 : Unrecorded Chronicles",
         "zzzzzzzzzz qqqqqq xyzzy", "\u0001\u0002 control \u007f"]


def corpus():
    text = open(WIKI, "rb").read().decode("utf-8")
    return [line for line in text.split("\n") if line.strip()]


def spm_bytefallback():
    t = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    t.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    t.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                   decoders.Strip(" ", 1, 0)])
    tr = trainers.BpeTrainer(vocab_size=1200, special_tokens=["<unk>", "<s>", "</s>"] + BYTES,
                             limit_alphabet=200, show_progress=False)
    t.train_from_iterator(corpus(), tr)
    t.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", t.token_to_id("<s>"))])
    return t


def bytelevel():
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                               pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    t.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=1200, special_tokens=["<|endoftext|>"],
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    t.train_from_iterator(corpus(), tr)
    return t


def llama3():
    t = Tokenizer(models.BPE(ignore_merges=True))
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    t.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=1200, special_tokens=["<|begin_of_text|>", "<|end_of_text|>"],
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    t.train_from_iterator(corpus(), tr)
    t.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", t.token_to_id("<|begin_of_text|>"))])
    return t


def metaspace():
    t = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
    t.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
    tr = trainers.BpeTrainer(vocab_size=1200, special_tokens=["<unk>", "<s>", "</s>"] + BYTES,
                             limit_alphabet=200, show_progress=False)
    t.train_from_iterator(corpus(), tr)
    t.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", t.token_to_id("<s>"))])
    return t


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = {"generator": "tools/gen_tokenizer_golden.py", "tokenizers": tokenizers.__version__, "files": {}}
    for name, make in (("spm_bytefallback", spm_bytefallback), ("bytelevel", bytelevel), ("llama3", llama3),
                       ("metaspace", metaspace)):
        t = make()
        t.save(os.path.join(OUT, name + ".json"))
        t = Tokenizer.from_file(os.path.join(OUT, name + ".json"))  # what cquanto reads
        rows = []
        for text in TEXTS:
            ids = t.encode(text).ids
            rows.append({"text": text, "ids": ids, "decoded": t.decode(ids, skip_special_tokens=True)})
        cases["files"][name] = rows
        wiki = t.encode(open(WIKI, "rb").read().decode("utf-8")).ids  # bytes as they are: CRLF kept
        h = 0xcbf29ce484222325
        for i in wiki:
            for b in int(i).to_bytes(4, "little", signed=True):
                h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
        cases.setdefault("wikitext", {})[name] = {"count": len(wiki), "fnv1a64": "%016x" % h}
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
