#!/usr/bin/env python3
"""Rebuild a SentencePiece tokenizer.model from a llama2.c tokenizer.bin (data/stories260K/tok512.bin).

llama.cpp's convert_hf_to_gguf.py reads SentencePiece models, not llama2.c's format, so
tools/make_gguf_fixtures.sh runs this first. llama2.c's tokenizer.bin (written by llama2.c's
tokenizer.py from a SentencePiece BPE model) is: int32 max_token_length, then per token
float32 score, int32 length, the bytes; '▁' was replaced by ' ', and BOS / EOS were written as
"\\n<s>\\n" / "\\n</s>\\n". This script undoes that: pieces with their scores, <0x00>..<0xFF> as
BYTE, <unk> UNKNOWN, <s> and </s> CONTROL; model type BPE with byte fallback; normalizer
'identity' with a dummy prefix and extra whitespace kept (llama2.c's encoder prepends " " and
never collapses spaces). The protobuf is serialized by hand, so the protobuf package is not needed
(when it is installed, sentencepiece_model_pb2 parses the result as a cross-check).

Then it checks, with the sentencepiece library, that every piece and score round-trips and that
encoding gives the same ids as llama2.c's encoder (run.c `encode`, reimplemented below: the
dummy-prefix space, one token per UTF-8 character or its bytes as <0xXX>, then repeatedly merge
the adjacent pair of highest score) on built-in texts and on the lines of any --check-file.

usage: tools/tok512_to_spm.py [TOKENIZER_BIN] [-o tokenizer.model] [--check-file TEXT]
"""
import argparse
import os
import struct
import sys

import sentencepiece as spm

SPACE = "\u2581"


def read_llama2c(path):
    data = open(path, "rb").read()
    (max_len,) = struct.unpack_from("<i", data, 0)
    off, toks = 4, []
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        toks.append((data[off:off + n], score))
        off += n
    return max_len, toks


def llama2c_encode(toks, text):
    """run.c's encode(text, bos=0, eos=0): ids without BOS."""
    index = {t: i for i, (t, _) in enumerate(toks)}
    ids = []
    if text:
        ids.append(index[b" "])
    for ch in text:
        b = ch.encode("utf-8")
        if b in index:
            ids.append(index[b])
        else:
            ids.extend(x + 3 for x in b)
    while True:
        best, best_i = -1e10, -1
        for i in range(len(ids) - 1):
            t = toks[ids[i]][0] + toks[ids[i + 1]][0]
            j = index.get(t)
            if j is not None and toks[j][1] > best:
                best, best_i = toks[j][1], i
        if best_i < 0:
            break
        t = toks[ids[best_i]][0] + toks[ids[best_i + 1]][0]
        ids[best_i:best_i + 2] = [index[t]]
    return ids


def _varint(n):
    n &= (1 << 64) - 1                      # int32 -1 is sent as ten bytes, as protobuf does
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _key(field, wire):
    return _varint(field << 3 | wire)


def _vfield(field, n):
    return _key(field, 0) + _varint(n)


def _bfield(field, b):
    return _key(field, 2) + _varint(len(b)) + b


def _ffield(field, x):
    return _key(field, 5) + struct.pack("<f", x)


# sentencepiece_model.proto: ModelProto.SentencePiece.Type and TrainerSpec.ModelType
NORMAL, UNKNOWN, CONTROL, BYTE = 1, 2, 3, 6
BPE = 2


def pieces(toks):
    """(piece, score, type) for every id, undoing llama2.c's export."""
    out = []
    for i, (raw, score) in enumerate(toks):
        if i == 0:
            assert raw == b"<unk>", raw
            out.append(("<unk>", score, UNKNOWN))
        elif i == 1:
            assert raw == b"\n<s>\n", raw
            out.append(("<s>", score, CONTROL))
        elif i == 2:
            assert raw == b"\n</s>\n", raw
            out.append(("</s>", score, CONTROL))
        elif 3 <= i < 259:
            assert raw == b"<0x%02X>" % (i - 3), raw
            out.append((raw.decode(), score, BYTE))
        else:
            out.append((raw.decode("utf-8").replace(" ", SPACE), score, NORMAL))
    return out


def build(toks):
    """The serialized ModelProto, written by hand (the protobuf package is not needed)."""
    msg = b""
    for piece, score, typ in pieces(toks):
        msg += _bfield(1, _bfield(1, piece.encode("utf-8")) + _ffield(2, score) + _vfield(3, typ))
    trainer = (_vfield(3, BPE) + _vfield(4, len(toks)) + _ffield(10, 1.0)
               + _vfield(25, 0)           # split_digits
               + _vfield(26, 1)           # allow_whitespace_only_pieces
               + _vfield(35, 1)           # byte_fallback
               + _vfield(40, 0) + _vfield(41, 1) + _vfield(42, 2) + _vfield(43, -1))  # unk bos eos pad
    normalizer = (_bfield(1, b"identity")
                  + _vfield(3, 1)         # add_dummy_prefix
                  + _vfield(4, 0)         # remove_extra_whitespaces
                  + _vfield(5, 1))        # escape_whitespaces
    return msg + _bfield(2, trainer) + _bfield(3, normalizer)


def check_with_protobuf(blob, toks):
    """When the protobuf package is there, parse the file with sentencepiece_model_pb2 too."""
    try:
        from sentencepiece import sentencepiece_model_pb2 as pb
    except ImportError:
        return False
    m = pb.ModelProto()
    m.ParseFromString(blob)
    assert [(p.piece, p.score, p.type) for p in m.pieces] == pieces(toks)
    assert m.trainer_spec.model_type == BPE and m.trainer_spec.byte_fallback
    assert m.trainer_spec.pad_id == -1 and m.normalizer_spec.name == "identity"
    assert m.normalizer_spec.add_dummy_prefix and not m.normalizer_spec.remove_extra_whitespaces
    return True


TEXTS = [
    "Once upon a time",
    "Once upon a time, there was a little girl named Lily. She loved to play outside.",
    "Tom said, \"I can't find my ball!\" His mom smiled.",
    "  two leading spaces and  double  spaces ",
    "digits 0123456789 and 3.14, 42%",
    "caf\u00e9 na\u00efve \u2014 \u201cquotes\u201d \u2026",
    "\u65e5\u672c\u8a9e and emoji \U0001F600 need byte fallback",
    "tabs\tand\nnewlines\n\nend",
    " = Valkyria Chronicles III = ",
    "a",
    " ",
]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("tokenizer_bin", nargs="?",
                    default=os.path.join(here, "..", "data", "stories260K", "tok512.bin"))
    ap.add_argument("-o", "--output", default="tokenizer.model")
    ap.add_argument("--check-file", help="also compare the ids on every line of this text file")
    ap.add_argument("--check-lines", type=int, default=2000, help="lines of --check-file (default 2000)")
    a = ap.parse_args()

    _, toks = read_llama2c(a.tokenizer_bin)
    blob = build(toks)
    tmp = a.output + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    via_pb2 = check_with_protobuf(blob, toks)

    sp = spm.SentencePieceProcessor(model_file=tmp)
    assert sp.get_piece_size() == len(toks), (sp.get_piece_size(), len(toks))
    for i, ((raw, score), (piece, _, _)) in enumerate(zip(toks, pieces(toks))):
        assert sp.id_to_piece(i) == piece, i
        assert sp.get_score(i) == score, (i, sp.get_score(i), score)
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id()) == (0, 1, 2)
    texts = list(TEXTS)
    if a.check_file:
        with open(a.check_file, encoding="utf-8", newline="") as f:
            texts += [l.rstrip("\r\n") for l in f][: a.check_lines]
    bad = 0
    for t in texts:
        got, want = sp.encode(t), llama2c_encode(toks, t)
        if got != want:
            bad += 1
            if bad <= 5:
                print("mismatch on %r:\n  sentencepiece %s\n  llama2.c      %s" % (t, got, want), file=sys.stderr)
        elif t and sp.decode(got) != t and "\t" not in t and "\n" not in t:
            print("note: decode(%r) = %r" % (t, sp.decode(got)), file=sys.stderr)
    if bad:
        os.remove(tmp)
        sys.exit("tok512_to_spm.py: %d of %d texts encode differently from llama2.c" % (bad, len(texts)))
    os.replace(tmp, a.output)
    print("wrote %s: %d pieces%s; %d texts encode as llama2.c does"
          % (a.output, len(toks), " (also parsed by sentencepiece_model_pb2)" if via_pb2 else "", len(texts)))


if __name__ == "__main__":
    main()
