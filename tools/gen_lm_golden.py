#!/usr/bin/env python3
"""Writes the goldens of cquanto's Llama runtime and tokenizer (tests/data/lm/).

What it writes
  tok512_cases.json       texts and the ids llama2.c's encode() gives them with
                          data/stories260K/tok512.bin (BOS first), and the decoded text of
                          each id list. The encoder below restates llama2.c's run.c
                          encode()/decode() (MIT) line for line, quadratic merge loop included:
                          no library reads tok512.bin, and cquanto's own encoder uses a heap,
                          so this is an independent statement of the same rules.
  stories260K.safetensors transformers' LlamaForCausalLM (float32, eager attention) on
                          data/stories260K: "prompt_ids" (I32, "Once upon a time" with BOS),
                          "greedy_ids" (I32, the 64 tokens generate(do_sample=False) appends),
                          "logits" (F32 [T, vocab], one forward over prompt + greedy ids);
                          "logits_qint8", "logits_qint4", "logits_qint2", "logits_qfloat8"
                          (F32 [T, vocab]): the same forward after optimum-quanto's
                          quantize(weights=qint8 / qint4 / qint2 / qfloat8,
                          exclude="lm_head") and freeze(); metadata: the greedy text, versions,
                          and "perplexity": llama.cpp's perplexity protocol (chunks of N_CTX
                          tokens, BOS first, second half scored) on the first PPL_BYTES bytes of
                          data/wikitext-2/wiki.test.raw, for the float model and for the qint4
                          one with its KL divergence from the float one (JSON).
  stories260K_greedy_<q>.txt
                          optimum-quanto's greedy text for the same prompt (64 new tokens) for
                          q = qint8, qint4, qint2, qfloat8: tests/cli/test_generate.sh compares
                          `cquanto generate --weights <q>` with it.
  stories260K_w8a8.safetensors
                          optimum-quanto's static activation quantization: quantize(weights=
                          qint8, activations=qint8, exclude="lm_head"), then Calibration(momentum
                          0.9, streamline=False) over CALIB_CHUNKS chunks of CALIB_CTX tokens of
                          WikiText-2 (BOS first, from byte CALIB_FROM on), freeze: every module's
                          "<m>.input_scale" / "<m>.output_scale" and "logits" over prompt +
                          greedy ids ("calib_ids" holds the calibration chunks). One patch:
                          RoPE runs on the dequantized q and k. optimum-quanto 0.2.7 applies
                          rotate_half to the int8 ActivationQBytesTensor, and its negation turns
                          a -128 code into -128 again (int8 wrap-around) instead of +128, so a
                          key at the bottom of its range flips sign (docs/LM.md); cquanto
                          dequantizes before RoPE, as the float model's arithmetic says.
  tiny-qwen2/, tiny-mistral/
                          seeded random Qwen2ForCausalLM (q/k/v biases, untied lm_head, GQA,
                          rope_theta 1e6) and MistralForCausalLM (head_dim given apart from
                          hidden/heads, tied) folders in float32, with "golden.safetensors":
                          "ids" and transformers' "logits" over them.
  stories260K-bf16/       stories260K's weights rounded to bfloat16 (config torch_dtype bf16),
                          with "golden.safetensors": transformers' float32 forward of those same
                          rounded weights ("logits" over prompt + greedy ids): cquanto keeps bf16
                          weights as they are and computes in f32, so the two agree.
tests/test_lm.c and tests/cli/test_generate.sh check them. make test never runs this script.

Environment (pinned): /root/qvenv with torch 2.6.0, transformers 4.50.3, optimum-quanto 0.2.7,
safetensors 0.5.3, numpy 2.2.4:
    python3 -m venv /root/qvenv && /root/qvenv/bin/pip install torch==2.6.0 transformers==4.50.3 \
        optimum-quanto==0.2.7 safetensors==0.5.3 numpy==2.2.4
Run from the repository root:
    /root/qvenv/bin/python tools/gen_lm_golden.py
CPU, one thread, deterministic.
"""
import json
import math
import os
import struct

import optimum.quanto
import torch
import transformers
from optimum.quanto import Calibration, freeze, qfloat8, qint2, qint4, qint8, quantize
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODEL = os.path.join(ROOT, "data", "stories260K")
OUT = os.path.join(ROOT, "tests", "data", "lm")
PROMPT = "Once upon a time"
WIKI = os.path.join(ROOT, "data", "wikitext-2", "wiki.test.raw")
PPL_BYTES = 3000
CALIB_FROM = 6000  # the calibration text: 3000 bytes from here
N_CTX = 128
CALIB_CTX = 64
CALIB_CHUNKS = 4
N_NEW = 64
FORMAT_VERSION = "1"


def read_tok(path):
    """llama2.c build_tokenizer(): max_token_length, then (score, len, bytes) records."""
    data = open(path, "rb").read()
    (max_len,) = struct.unpack_from("<i", data, 0)
    at, vocab, scores = 4, [], []
    while at < len(data):
        score, n = struct.unpack_from("<fi", data, at)
        at += 8
        vocab.append(data[at:at + n])
        scores.append(score)
        at += n
    return max_len, vocab, scores


def encode(tok, text, bos=True):
    """llama2.c encode(): dummy prefix, UTF-8 characters (byte fallback at id + 3), then merge
    the best-scoring adjacent pair (first on ties) until none is in the vocabulary."""
    _, vocab, scores = tok
    lookup = {}
    for i, v in enumerate(vocab):
        lookup.setdefault(v, i)
    toks = []
    if bos:
        toks.append(1)
    if text:
        toks.append(lookup[b" "])
    raw = text.encode("utf-8")
    i = 0
    while i < len(raw):
        j = i + 1  # llama2.c: a character is a byte and the continuation bytes after it, at most 4
        while j < len(raw) and (raw[j] & 0xC0) == 0x80 and j - i < 4:
            j += 1
        ch = raw[i:j]
        if ch in lookup:
            toks.append(lookup[ch])
        else:
            toks.extend(b + 3 for b in ch)
        i = j
    while True:
        best, best_id, best_idx = -1e10, -1, -1
        for k in range(1 if bos else 0, len(toks) - 1):
            pair = vocab[toks[k]] + vocab[toks[k + 1]]
            if pair in lookup and scores[lookup[pair]] > best:
                best, best_id, best_idx = scores[lookup[pair]], lookup[pair], k
        if best_idx < 0:
            break
        toks[best_idx:best_idx + 2] = [best_id]
    return toks


def decode(tok, ids):
    """llama2.c decode(): strip the leading space after BOS; <0xXX> is the byte. BOS and EOS
    decode to nothing (SentencePiece's control tokens; llama2.c never prints them)."""
    _, vocab, _ = tok
    out, prev = b"", -1
    for t in ids:
        piece = b"" if t in (1, 2) else vocab[t]
        if prev == 1 and piece.startswith(b" "):
            piece = piece[1:]
        if len(piece) == 6 and piece.startswith(b"<0x") and piece.endswith(b">"):
            try:
                piece = bytes([int(piece[3:5], 16)])
            except ValueError:
                pass
        out += piece
        prev = t
    return out


def perplexity(models, tokens):
    """llama-perplexity: whole chunks of N_CTX tokens, the first replaced by BOS; positions
    N_CTX/2 .. N_CTX-2 scored against the next token. models[0] is scored; with two, also the
    KL divergence KL(models[1] || models[0]) per position, in float64."""
    first = N_CTX // 2
    nll, nll_b, kld, dp, same = [], [], [], [], []
    for c in range(len(tokens) // N_CTX):
        ids = list(tokens[c * N_CTX:(c + 1) * N_CTX])
        ids[0] = 1
        with torch.no_grad():
            outs = [m(torch.tensor([ids])).logits[0].double().log_softmax(-1) for m in models]
        for j in range(first, N_CTX - 1):
            t = tokens[c * N_CTX + j + 1]
            lq = outs[0][j]
            nll.append(-lq[t].item())
            if len(outs) > 1:
                lb = outs[1][j]
                nll_b.append(-lb[t].item())
                kld.append((lb.exp() * (lb - lq)).sum().item())
                dp.append(lq[t].exp().item() - lb[t].exp().item())
                same.append(int(lq.argmax().item() == lb.argmax().item()))
    n = len(nll)

    def ppl(v):
        mean = sum(v) / n
        var = sum(x * x for x in v) / n - mean * mean
        p = math.exp(mean)
        return p, p * math.sqrt(var / (n - 1))
    out = {"n_ctx": N_CTX, "chunks": len(tokens) // N_CTX, "scored": n}
    out["ppl"], out["ppl_err"] = ppl(nll)
    if kld:
        out["base_ppl"] = ppl(nll_b)[0]
        out["kld"] = sum(kld) / n
        out["same_top"] = sum(same) / n
        out["dp_rms"] = math.sqrt(sum(x * x for x in dp) / n)
        out["kld_median"] = sorted(kld)[n // 2] if n % 2 else sum(sorted(kld)[n // 2 - 1:n // 2 + 1]) / 2
    return out


def tiny_model(name, cls, cfg_cls, **kw):
    """A seeded random model saved as a Hugging Face folder, with its logits on fixed ids."""
    torch.manual_seed(7)
    cfg = cfg_cls(**kw)
    m = cls(cfg).eval()
    with torch.no_grad():
        for p in m.parameters():  # larger than the init so the logits spread
            p.copy_(torch.randn_like(p) * 0.2)
    d = os.path.join(OUT, name)
    m.save_pretrained(d, safe_serialization=True)
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(0, cfg.vocab_size, (1, 24), generator=g)
    with torch.no_grad():
        logits = m(ids).logits[0].float().contiguous()
    save_file({"ids": ids[0].to(torch.int32), "logits": logits}, os.path.join(d, "golden.safetensors"),
              metadata={"generator": "tools/gen_lm_golden.py", "transformers": transformers.__version__})
    gc = os.path.join(d, "generation_config.json")
    if os.path.exists(gc):
        os.remove(gc)


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    tok = read_tok(os.path.join(MODEL, "tok512.bin"))
    texts = ["", "a", "Once upon a time", "Once upon a time, there was a little girl named Lily.",
             "  two  spaces\tand a tab\nnew line", "Tom said: \"Hello!\" 123 4567.",
             "caf\u00e9 na\u00efve \u00fcber", "\u65e5\u672c\u8a9e \U0001F600 emoji",
             "The quick brown fox jumps over the lazy dog. " * 3, "zzzzzzzz qqqq xyzzy"]
    cases = []
    for t in texts:
        ids = encode(tok, t)
        cases.append({"text": t, "ids": ids, "decoded": decode(tok, ids).decode("utf-8", "replace")})
    with open(os.path.join(OUT, "tok512_cases.json"), "w") as f:
        json.dump({"generator": "tools/gen_lm_golden.py", "format_version": FORMAT_VERSION,
                   "rules": "llama2.c run.c encode/decode", "cases": cases}, f, indent=1, ensure_ascii=False)
        f.write("\n")

    model = transformers.LlamaForCausalLM.from_pretrained(MODEL, torch_dtype=torch.float32,
                                                          attn_implementation="eager")
    model.eval()
    prompt = encode(tok, PROMPT)
    with torch.no_grad():
        gen = model.generate(torch.tensor([prompt]), max_new_tokens=N_NEW, do_sample=False, min_new_tokens=N_NEW,
                             eos_token_id=None, pad_token_id=0)
        seq = gen[0].tolist()
        logits = model(torch.tensor([seq])).logits[0].float().contiguous()
    greedy = seq[len(prompt):]
    quantized, qmodels = {}, {}
    for name, qt in (("qint8", qint8), ("qint4", qint4), ("qint2", qint2), ("qfloat8", qfloat8)):
        qm = transformers.LlamaForCausalLM.from_pretrained(MODEL, torch_dtype=torch.float32,
                                                           attn_implementation="eager")
        qm.eval()
        quantize(qm, weights=qt, exclude="lm_head")
        freeze(qm)
        with torch.no_grad():
            quantized["logits_" + name] = qm(torch.tensor([seq])).logits[0].float().contiguous()
            qgen = qm.generate(torch.tensor([prompt]), max_new_tokens=N_NEW, do_sample=False,
                               min_new_tokens=N_NEW, eos_token_id=None, pad_token_id=0)[0].tolist()
        with open(os.path.join(OUT, "stories260K_greedy_%s.txt" % name), "w") as f:
            f.write(decode(tok, qgen).decode("utf-8", "replace"))
        qmodels[name] = qm
    wiki = open(WIKI, "rb").read()[:PPL_BYTES].decode("utf-8")
    wiki_tokens = encode(tok, wiki)
    ppl_case = {"bytes": PPL_BYTES, "tokens": len(wiki_tokens), "float": perplexity([model], wiki_tokens),
                "qint4": perplexity([qmodels["qint4"], model], wiki_tokens)}
    text = decode(tok, seq).decode("utf-8", "replace")
    save_file({"prompt_ids": torch.tensor(prompt, dtype=torch.int32),
               "greedy_ids": torch.tensor(greedy, dtype=torch.int32),
               "logits": logits, **quantized},
              os.path.join(OUT, "stories260K.safetensors"),
              metadata={"generator": "tools/gen_lm_golden.py", "format_version": FORMAT_VERSION,
                        "prompt": PROMPT, "text": text, "torch": torch.__version__,
                        "transformers": transformers.__version__,
                        "optimum-quanto": optimum.quanto.__version__,
                        "perplexity": json.dumps(ppl_case)})
    # static int8 activations, calibrated
    calib_text = open(WIKI, "rb").read()[CALIB_FROM:CALIB_FROM + 3000].decode("utf-8")
    ctoks = encode(tok, calib_text)
    chunks = []
    for c in range(CALIB_CHUNKS):
        ch = list(ctoks[c * CALIB_CTX:(c + 1) * CALIB_CTX])
        ch[0] = 1
        chunks.append(ch)
    import transformers.models.llama.modeling_llama as modeling_llama
    rope = modeling_llama.apply_rotary_pos_emb

    def rope_on_dequantized(q, k, *args, **kwargs):
        deq = (lambda t: t.dequantize() if hasattr(t, "dequantize") else t)
        return rope(deq(q), deq(k), *args, **kwargs)
    modeling_llama.apply_rotary_pos_emb = rope_on_dequantized
    am = transformers.LlamaForCausalLM.from_pretrained(MODEL, torch_dtype=torch.float32, attn_implementation="eager")
    am.eval()
    quantize(am, weights=qint8, activations=qint8, exclude="lm_head")
    with torch.no_grad(), Calibration(momentum=0.9, streamline=False):
        for ch in chunks:
            am(torch.tensor([ch]))
    freeze(am)
    w8a8 = {"calib_ids": torch.tensor(chunks, dtype=torch.int32)}
    for name, mod in am.named_modules():
        if hasattr(mod, "input_scale") and getattr(mod, "activation_qtype", None) is not None:
            w8a8[name + ".input_scale"] = mod.input_scale.float().reshape(()).contiguous()
            w8a8[name + ".output_scale"] = mod.output_scale.float().reshape(()).contiguous()
    with torch.no_grad():
        w8a8["logits"] = am(torch.tensor([seq])).logits[0].float().contiguous()
    modeling_llama.apply_rotary_pos_emb = rope
    save_file(w8a8, os.path.join(OUT, "stories260K_w8a8.safetensors"),
              metadata={"generator": "tools/gen_lm_golden.py", "optimum-quanto": optimum.quanto.__version__,
                        "calib_ctx": str(CALIB_CTX), "momentum": "0.9", "streamline": "false",
                        "patch": "RoPE on dequantized q and k (optimum-quanto int8 negation wraps -128)"})
    tiny_model("tiny-qwen2", transformers.Qwen2ForCausalLM, transformers.Qwen2Config, vocab_size=96,
               hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, max_position_embeddings=64, rope_theta=1e6, rms_norm_eps=1e-6,
               tie_word_embeddings=False, attn_implementation="eager", torch_dtype="float32")
    tiny_model("tiny-mistral", transformers.MistralForCausalLM, transformers.MistralConfig, vocab_size=80,
               hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=1, head_dim=16, max_position_embeddings=64, sliding_window=None,
               tie_word_embeddings=True, attn_implementation="eager", torch_dtype="float32")
    # stories260K with bf16 weights: transformers in f32 on the rounded weights
    bf = transformers.LlamaForCausalLM.from_pretrained(MODEL, torch_dtype=torch.float32, attn_implementation="eager")
    bf.eval()
    with torch.no_grad():
        for p in bf.parameters():
            p.copy_(p.to(torch.bfloat16).float())
        bf_logits = bf(torch.tensor([seq])).logits[0].float().contiguous()
    dbf = os.path.join(OUT, "stories260K-bf16")
    os.makedirs(dbf, exist_ok=True)
    from safetensors.torch import load_file
    sd = load_file(os.path.join(MODEL, "model.safetensors"))
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in sd.items()}, os.path.join(dbf, "model.safetensors"),
              metadata={"format": "pt"})
    cfg = json.load(open(os.path.join(MODEL, "config.json")))
    cfg["torch_dtype"] = "bfloat16"
    with open(os.path.join(dbf, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    save_file({"ids": torch.tensor(seq, dtype=torch.int32), "logits": bf_logits}, os.path.join(dbf, "golden.safetensors"),
              metadata={"generator": "tools/gen_lm_golden.py", "torch": torch.__version__})
    with open(os.path.join(OUT, "stories260K_greedy.txt"), "w") as f:
        f.write(text)
    print(text)
    print(json.dumps(ppl_case, indent=1))


if __name__ == "__main__":
    main()
