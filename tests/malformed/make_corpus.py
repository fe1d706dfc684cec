#!/usr/bin/env python3
"""make_corpus.py - writes the malformed safetensors corpus (tests/malformed/*.safetensors) and
expected.tsv, which says for each file the status cq_st_open must return and a fragment its
one-line message must contain. Also writes the fuzz seed corpora (fuzz/corpus/{safetensors,
qmap,config}/). Standard library only; any Python 3.8+:  python3 tests/malformed/make_corpus.py

Every file is a small variation of a valid file, so each one breaks exactly one rule of the
reference reader (huggingface/safetensors tensor.rs) or of cquanto's limits.
"""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def st(header, data=b"", n=None, pad=True):
    """A safetensors file from a header (dict, str or bytes) and data; n overrides the length."""
    if isinstance(header, dict):
        header = json.dumps(header, separators=(",", ":"))
    if isinstance(header, str):
        header = header.encode("utf-8")
    if pad:
        header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header) if n is None else n) + header + data


def t(dtype="F32", shape=(2,), offs=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offs)}


VALID = {"a": t()}
D8 = bytes(range(8))

# name -> (bytes, expected status, message fragment)
CASES = {
    "empty_file": (b"", "FORMAT", "too short for the 8-byte header length"),
    "truncated_length_field": (b"\x10\x00\x00\x00\x00", "FORMAT", "too short"),
    "header_len_over_limit": (st(VALID, D8, n=100_000_001), "FORMAT", "exceeds the limit"),
    "header_len_u64_max": (st(VALID, D8, n=2**64 - 1), "FORMAT", "exceeds the limit"),
    "header_len_past_end": (st(VALID, D8, n=4096), "FORMAT", "larger than the"),
    "header_len_cuts_json": (st(VALID, D8, n=20), "FORMAT", "not valid JSON"),
    "header_len_swallows_data": (
        st(b'{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}', b"xy", n=55, pad=False),
        "FORMAT", "not valid JSON"),
    "header_empty": (st(b"", n=0, pad=False), "FORMAT", "does not start with '{'"),
    "header_is_array": (st("[1, 2, 3]"), "FORMAT", "does not start with '{'"),
    "header_leading_space": (st(" " + json.dumps(VALID), D8), "FORMAT", "does not start with '{'"),
    "bad_utf8_byte": (st(b'{"a\xff":' + json.dumps(t()).encode() + b"}", D8), "FORMAT", "not valid UTF-8"),
    "bad_utf8_overlong": (st(b'{"a\xc0\xaf":' + json.dumps(t()).encode() + b"}", D8), "FORMAT", "not valid UTF-8"),
    "bad_utf8_surrogate": (st(b'{"a\xed\xa0\x80":' + json.dumps(t()).encode() + b"}", D8), "FORMAT", "not valid UTF-8"),
    "bad_utf8_truncated_seq": (st(b'{"a":' + json.dumps(t()).encode() + b"}\xe2\x82", D8, pad=False), "FORMAT",
                               "not valid UTF-8"),
    "bad_json_trailing_comma": (st(json.dumps(VALID)[:-1] + ",}", D8), "FORMAT", "not valid JSON"),
    "bad_json_garbage_after": (st(json.dumps(VALID) + " x", D8), "FORMAT", "not valid JSON"),
    "bad_json_nul_padding": (st(json.dumps(VALID).encode() + b"\0\0\0", D8, pad=False), "FORMAT", "not valid JSON"),
    "bad_json_escaped_nul_name": (st('{"a\\u0000b":' + json.dumps(t()) + "}", D8), "FORMAT", "not valid JSON"),
    "bad_json_deep_nesting": (st('{"a":' + "[" * 5000 + "]" * 5000 + "}"), "FORMAT", "not valid JSON"),
    "bad_json_integer_too_big": (st({"a": t(shape=[0])}).replace(b"[0]", b"[99999999999999999999]"), "FORMAT",
                                 "not valid JSON"),
    "duplicate_names": (st('{"a":' + json.dumps(t()) + ',"a":' + json.dumps(t(offs=(8, 16))) + "}", D8 + D8),
                        "FORMAT", "duplicate name"),
    "unknown_dtype": (st({"a": t(dtype="F7")}, D8), "FORMAT", "unknown dtype \"F7\""),
    "unknown_dtype_torch_name": (st({"a": t(dtype="float32")}, D8), "FORMAT", "unknown dtype"),
    "dtype_not_string": (st({"a": {"dtype": 4, "shape": [2], "data_offsets": [0, 8]}}, D8), "FORMAT",
                         "non-string \"dtype\""),
    "dtype_missing": (st({"a": {"shape": [2], "data_offsets": [0, 8]}}, D8), "FORMAT", "\"dtype\""),
    "unsupported_dtype_c64": (st({"a": t(dtype="C64", shape=[1])}, D8), "UNSUPPORTED", "not supported"),
    "unsupported_rank_9": (st({"a": t(dtype="U8", shape=[1] * 8 + [8])}, D8), "UNSUPPORTED", "rank 9"),
    "shape_missing": (st({"a": {"dtype": "F32", "data_offsets": [0, 8]}}, D8), "FORMAT", "missing \"shape\""),
    "shape_negative": (st({"a": t(shape=[-2])}, D8), "FORMAT", "not a non-negative integer"),
    "shape_float": (st({"a": t(shape=[2.0])}, D8), "FORMAT", "not a non-negative integer"),
    "shape_string": (st({"a": t(shape=["2"])}, D8), "FORMAT", "not a non-negative integer"),
    "shape_overflow": (st({"a": t(shape=[2**62, 2**62])}, D8), "FORMAT", "overflows"),
    "shape_huge_wrong_size": (st({"a": t(shape=[2**40])}, D8), "FORMAT", "needs 4398046511104 bytes"),
    "wrong_size_for_shape": (st({"a": t(shape=[3])}, D8), "FORMAT", "needs 12 bytes"),
    "offsets_past_end": (st({"a": t(shape=[250], offs=(0, 1000))}, D8), "FORMAT", "only 8 follow the header"),
    "offsets_overlap": (st({"a": t(), "b": t(offs=(4, 12))}, D8 + D8[:4]), "FORMAT", "overlap"),
    "offsets_hole": (st({"a": t(), "b": t(offs=(12, 20))}, D8 + D8 + D8[:4]), "FORMAT", "hole"),
    "offsets_not_from_zero": (st({"a": t(offs=(4, 12))}, D8 + D8[:4]), "FORMAT", "hole"),
    "offsets_reversed": (st({"a": t(shape=[0], offs=(8, 0))}, D8), "FORMAT", "end before they begin"),
    "offsets_three_numbers": (st({"a": t(offs=(0, 4, 8))}, D8), "FORMAT", "\"data_offsets\" is not two"),
    "offsets_negative": (st({"a": t(shape=[0], offs=(-8, -8))}, D8), "FORMAT", "\"data_offsets\" is not two"),
    "offsets_not_numbers": (st({"a": t(offs=("0", "8"))}, D8), "FORMAT", "\"data_offsets\" is not two"),
    "trailing_bytes": (st(VALID, D8 + b"junk"), "FORMAT", "belong to no tensor"),
    "truncated_data": (st({"a": t(shape=[4], offs=(0, 16))}, D8), "FORMAT", "truncated"),
    "metadata_value_not_string": (st({"__metadata__": {"k": 1}, **VALID}, D8), "FORMAT", "is not a string"),
    "metadata_value_nested": (st({"__metadata__": {"k": {"x": "y"}}, **VALID}, D8), "FORMAT", "is not a string"),
    "metadata_is_array": (st({"__metadata__": ["x"], **VALID}, D8), "FORMAT", "not an object of strings"),
    "tensor_entry_not_object": (st({"a": 5}, b""), "FORMAT", "entry is not an object"),
    "name_with_newline_wrong_size": (st({"a\nb\r\tc": t(shape=[3])}, D8), "FORMAT", "tensor 'a?b??c': F32 [3] needs 12"),
    "json_error_near_newline": (st(b'{"a":\n\n  tru\n}'), "FORMAT", "not valid JSON"),
}


def write_corpus():
    for f in os.listdir(HERE):
        if f.endswith(".safetensors"):
            os.remove(os.path.join(HERE, f))
    with open(os.path.join(HERE, "expected.tsv"), "w") as tsv:
        tsv.write("# file\tstatus\tmessage fragment (generated by make_corpus.py)\n")
        for name, (blob, status, fragment) in CASES.items():
            with open(os.path.join(HERE, name + ".safetensors"), "wb") as f:
                f.write(blob)
            tsv.write(f"{name}.safetensors\t{status}\t{fragment}\n")


def write_fuzz_seeds():
    seeds = {
        "safetensors": {
            "valid_one": st(VALID, D8),
            "valid_meta": st({"__metadata__": {"format": "pt"}, "b": t("U8", [2, 2], (0, 4)), "a": t("F16", [], (4, 6))},
                             b"\x01\x02\x03\x04\x00\x3c"),
            "valid_empty": st({}),
            "valid_zero_dim": st({"e": t("F32", [0, 3], (0, 0)), "s": t("I64", [], (0, 8))}, D8),
            "overlap": CASES["offsets_overlap"][0],
            "bad_utf8": CASES["bad_utf8_byte"][0],
        },
        "qmap": {
            "valid.json": json.dumps({"fc1": {"weights": "qint4", "activations": "none"},
                                      "fc2": {"weights": "qfloat8", "activations": "qint8"}}, indent=4),
            "empty.json": "{}",
            "unknown_qtype.json": '{"m": {"weights": "qint3", "activations": "none"}}',
            "missing_field.json": '{"m": {"weights": "qint8"}}',
            "not_object.json": '{"m": ["qint8", "none"]}',
        },
        "config": {
            "llama.json": json.dumps({"model_type": "llama", "vocab_size": 32000, "hidden_size": 4096,
                                      "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "tie_word_embeddings": False,
                                      "rope_scaling": None, "architectures": ["LlamaForCausalLM"]}, indent=2),
            "quantized.json": json.dumps({"model_type": "gpt2", "quantization_config": {
                "quant_method": "quanto", "weights": "int4", "activations": None,
                "modules_to_not_convert": ["lm_head"]}}, indent=2, sort_keys=True),
            "floats.json": '{"a": [0.1, 1e-300, 5e-324, 1.7976931348623157e308, -0.0, 123456789.125]}',
            "wrong_types.json": '{"vocab_size": "many", "tie_word_embeddings": 1, "model_type": 7}',
            "unicode.json": '{"name": "caf\\u00e9 \\ud83d\\ude00", "\\u20ac": true}',
        },
    }
    for target, files in seeds.items():
        d = os.path.join(ROOT, "fuzz", "corpus", target)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for name, blob in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(blob if isinstance(blob, bytes) else blob.encode("utf-8"))


if __name__ == "__main__":
    write_corpus()
    write_fuzz_seeds()
    print(f"{len(CASES)} malformed files in {HERE}")
