#!/usr/bin/env python3
"""make_corpus.py - writes the malformed safetensors and GGUF corpus (tests/malformed/*.safetensors,
*.gguf) and expected.tsv, which says for each file the status cq_st_open (cq_gguf_open for .gguf)
must return and a fragment its one-line message must contain. Also writes the fuzz seed corpora
(fuzz/corpus/{safetensors,gguf,qmap,config}/). Standard library only; any Python 3.8+:
python3 tests/malformed/make_corpus.py

Every file is a small variation of a valid file, so each one breaks exactly one rule of the
reference reader (huggingface/safetensors tensor.rs; for GGUF, llama.cpp's gguf.cpp, the gguf
Python package and llama.cpp's model loader) or of cquanto's limits.
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


# ---- GGUF (llama.cpp's format): each case breaks one rule of src/io/gguf.c, which follows
# ggml/src/gguf.cpp, the gguf Python package's reader, and llama.cpp's model loader ----------

# gguf value types and ggml tensor types used below
U8, I32, U32, STR, ARR, U64 = 0, 5, 4, 8, 9, 10
F32, Q4_0 = 0, 2


def gstr(b):
    if isinstance(b, str):
        b = b.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def gkv(key, vtype, payload):
    """One key-value: key, u32 type, the value's bytes as given."""
    return gstr(key) + struct.pack("<I", vtype) + payload


def ginfo(name, ne, gtype=F32, offset=0):
    return gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne) + \
        struct.pack("<IQ", gtype, offset)


ARCH = gkv("general.architecture", STR, gstr("cqtest"))
T4 = struct.pack("<4f", 1.0, 2.0, 3.0, 4.0)  # one F32 [4] tensor's bytes


def gguf(kvs=(ARCH,), infos=None, data=T4, version=3, n_tensors=None, n_kv=None, align=32, pad=True,
         magic=b"GGUF"):
    """A GGUF file: header, key-values, tensor infos, padding to align, data. The counts default
    to the lists' lengths; infos default to one F32 [4] tensor "t" at offset 0."""
    if infos is None:
        infos = [ginfo("t", [4])]
    head = magic + struct.pack("<I", version)
    head += struct.pack("<QQ", len(infos) if n_tensors is None else n_tensors, len(kvs) if n_kv is None else n_kv)
    body = head + b"".join(kvs) + b"".join(infos)
    if pad:
        body += b"\0" * (-len(body) % align)
    return body + data


VALID_GGUF = gguf()
TWO = [ginfo("a", [4]), ginfo("b", [4], offset=32)]  # each 16 bytes, padded to 32
TWO_DATA = T4 + b"\0" * 16 + T4
NO_PAD = gguf(pad=False, data=b"")  # ends right after the tensor infos

GGUF_CASES = {
    "gguf_empty_file": (b"", "FORMAT", "too short for the magic"),
    "gguf_bad_magic": (gguf(magic=b"GGUG"), "FORMAT", 'not a GGUF file: it starts with "GGUG"'),
    "gguf_safetensors_named_gguf": (st(VALID, D8), "FORMAT", "not a GGUF file"),
    "gguf_truncated_header": (VALID_GGUF[:14], "FORMAT", "ends inside the header"),
    "gguf_version_0": (gguf(version=0), "FORMAT", "bad GGUF version 0"),
    "gguf_version_1": (gguf(version=1), "UNSUPPORTED", "GGUF version 1 is not supported"),
    "gguf_version_4": (gguf(version=4), "UNSUPPORTED", "GGUF version 4 is newer"),
    "gguf_big_endian": (gguf(version=3 << 24), "UNSUPPORTED", "byte-swapped (big-endian)"),
    "gguf_huge_tensor_count": (gguf(n_tensors=2**62), "FORMAT", "tensor count 4611686018427387904 is more than"),
    "gguf_huge_kv_count": (gguf(n_kv=2**63), "FORMAT", "key-value count 9223372036854775808 is more than"),
    "gguf_key_length_past_eof": (gguf(kvs=[struct.pack("<Q", 1000) + b"general"], infos=[], data=b""), "FORMAT",
                                 "key 0: string length 1000 runs past the end of the file"),
    "gguf_key_length_over_limit": (gguf(kvs=[struct.pack("<Q", 2**63) + b"k"], infos=[], data=b""), "FORMAT",
                                   "exceeds gguf's limit of 1073741824 bytes"),
    "gguf_string_value_past_eof": (gguf(kvs=[gkv("general.name", STR, struct.pack("<Q", 5000) + b"abc")], infos=[],
                                        data=b""), "FORMAT",
                                   "the value of key 'general.name': string length 5000 runs past the end"),
    "gguf_key_empty": (gguf(kvs=[gkv("", U8, b"\1")]), "FORMAT", "key 0 is empty"),
    "gguf_key_not_utf8": (gguf(kvs=[gkv(b"a\xffb", U8, b"\1")]), "FORMAT", "key 0 is not valid UTF-8 (byte 1)"),
    "gguf_key_with_nul": (gguf(kvs=[gkv(b"a\0b", U8, b"\1")]), "FORMAT", "key 0 holds a NUL byte"),
    "gguf_duplicate_key": (gguf(kvs=[ARCH, ARCH]), "FORMAT", "duplicate key 'general.architecture' (keys 0 and 1)"),
    "gguf_invalid_value_type": (gguf(kvs=[gkv("k", 13, b"\1")]), "FORMAT", "key 'k': unknown value type 13"),
    "gguf_invalid_array_type": (gguf(kvs=[gkv("k", ARR, struct.pack("<IQ", 99, 1) + b"\1")]), "FORMAT",
                                "key 'k': unknown array element type 99"),
    "gguf_array_of_arrays": (gguf(kvs=[gkv("k", ARR, struct.pack("<IQ", ARR, 1) + struct.pack("<IQ", U8, 1) + b"\1")]),
                             "UNSUPPORTED", "key 'k' holds an array of arrays"),
    "gguf_array_huge_length": (gguf(kvs=[gkv("k", ARR, struct.pack("<IQ", U8, 2**31))]), "FORMAT",
                               "an array of 2147483648 elements exceeds gguf's limit"),
    "gguf_array_past_eof": (gguf(kvs=[gkv("k", ARR, struct.pack("<IQ", U32, 1000) + b"\0" * 40)], infos=[], data=b""),
                            "FORMAT", "1000 u32 values need 4000 bytes but only"),
    "gguf_string_array_past_eof": (gguf(kvs=[gkv("k", ARR, struct.pack("<IQ", STR, 10**6) + gstr("x"))], infos=[],
                                        data=b""), "FORMAT", "1000000 strings need at least 8000000 bytes"),
    "gguf_truncated_in_value": (gguf(kvs=[gkv("k", U64, b"\1\2\3")], infos=[], data=b"", pad=False), "FORMAT",
                                "ends inside the value of key 'k'"),
    "gguf_alignment_zero": (gguf(kvs=[gkv("general.alignment", U32, struct.pack("<I", 0))]), "FORMAT",
                            "general.alignment 0 is not a power of two"),
    "gguf_alignment_not_power_of_two": (gguf(kvs=[gkv("general.alignment", U32, struct.pack("<I", 48))], align=48),
                                        "FORMAT", "general.alignment 48 is not a power of two"),
    "gguf_alignment_wrong_type": (gguf(kvs=[gkv("general.alignment", I32, struct.pack("<i", 32))]), "FORMAT",
                                  "general.alignment has type i32 (u32 required)"),
    "gguf_alignment_array": (gguf(kvs=[gkv("general.alignment", ARR, struct.pack("<IQI", U32, 1, 32))]), "FORMAT",
                             "general.alignment has type arr[u32]"),
    "gguf_tensor_name_too_long": (gguf(infos=[ginfo("n" * 64, [4])]), "FORMAT",
                                  "the name of tensor 0 is 64 bytes, longer than ggml's limit of 63"),
    "gguf_tensor_name_not_utf8": (gguf(infos=[ginfo(b"w\xc0\xaf", [4])]), "FORMAT",
                                  "the name of tensor 0 is not valid UTF-8"),
    "gguf_duplicate_tensor": (gguf(infos=[ginfo("a", [4]), ginfo("a", [4], offset=32)], data=TWO_DATA), "FORMAT",
                              "duplicate tensor name 'a' (tensors 0 and 1)"),
    "gguf_ndim_0": (gguf(infos=[ginfo("t", [])]), "FORMAT", "tensor 't' has 0 dimensions (1 to 4 allowed)"),
    "gguf_ndim_5": (gguf(infos=[ginfo("t", [4, 1, 1, 1, 1])]), "FORMAT", "tensor 't' has 5 dimensions"),
    "gguf_dimension_0": (gguf(infos=[ginfo("t", [4, 0])]), "FORMAT", "tensor 't': dimension 1 is 0"),
    "gguf_dimension_negative": (gguf(infos=[ginfo("t", [2**64 - 4])]), "FORMAT",
                                "dimension 0 is 18446744073709551612, above INT64_MAX"),
    "gguf_element_count_overflow": (gguf(infos=[ginfo("t", [2**32, 2**32])]), "FORMAT",
                                    "the element count overflows int64"),
    "gguf_byte_size_overflow": (gguf(infos=[ginfo("t", [2**61, 2])]), "FORMAT", "tensor 't': the byte size overflows"),
    "gguf_unknown_ggml_type": (gguf(infos=[ginfo("t", [4], gtype=4)]), "FORMAT", "tensor 't': unknown ggml type 4"),
    "gguf_ggml_type_out_of_range": (gguf(infos=[ginfo("t", [4], gtype=2**31 + 1)]), "FORMAT",
                                    "unknown ggml type 2147483649"),
    "gguf_row_not_block_multiple": (gguf(infos=[ginfo("t", [48], gtype=Q4_0)], data=b"\0" * 27), "FORMAT",
                                    "rows of 48 elements are not a multiple of Q4_0's block of 32"),
    "gguf_truncated_tensor_info": (NO_PAD[:-1], "FORMAT", "ends inside the info of tensor 't'"),
    "gguf_offset_misaligned": (gguf(infos=[ginfo("t", [4], offset=4)], data=b"\0" * 4 + T4), "FORMAT",
                               "tensor 't': offset 4 is not a multiple of the alignment 32"),
    "gguf_offset_not_zero": (gguf(infos=[ginfo("t", [4], offset=32)], data=b"\0" * 32 + T4), "FORMAT",
                             "leaves a hole after the start of the data region (expected 0"),
    "gguf_offset_hole": (gguf(infos=[ginfo("a", [4]), ginfo("b", [4], offset=64)], data=TWO_DATA + b"\0" * 32),
                         "FORMAT", "tensor 'b': offset 64 leaves a hole after tensor 'a' (expected 32"),
    "gguf_offset_overlap": (gguf(infos=[ginfo("a", [4]), ginfo("b", [4], offset=0)], data=TWO_DATA), "FORMAT",
                            "tensor 'b': offset 0 overlaps tensor 'a', which ends at 32"),
    "gguf_tensor_past_eof": (gguf(data=T4[:8]), "FORMAT", "tensor 't' needs data bytes [0, 16) but the data region holds 8"),
    "gguf_data_region_truncated": (NO_PAD, "FORMAT", "the data region would start at byte"),
}


def write_corpus():
    for f in os.listdir(HERE):
        if f.endswith(".safetensors") or f.endswith(".gguf"):
            os.remove(os.path.join(HERE, f))
    with open(os.path.join(HERE, "expected.tsv"), "w") as tsv:
        tsv.write("# file\tstatus\tmessage fragment (generated by make_corpus.py)\n")
        for ext, cases in ((".safetensors", CASES), (".gguf", GGUF_CASES)):
            for name, (blob, status, fragment) in cases.items():
                with open(os.path.join(HERE, name + ext), "wb") as f:
                    f.write(blob)
                tsv.write(f"{name}{ext}\t{status}\t{fragment}\n")


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
    q4k = struct.pack("<2e", 0.5, 0.25) + bytes(range(140))  # one Q4_K block: d, dmin, scales, nibbles
    seeds["gguf"] = {
        "valid_one": VALID_GGUF,
        "valid_two": gguf(infos=TWO, data=TWO_DATA),
        "valid_blocks": gguf(kvs=[ARCH, gkv("general.alignment", U32, struct.pack("<I", 16))],
                             infos=[ginfo("q", [256], gtype=12), ginfo("h", [2, 2], gtype=1, offset=144),
                                    ginfo("z", [32], gtype=8, offset=160)],
                             data=q4k + struct.pack("<4e", 1, -2, 0.5, 65504) + b"\0" * 8 + b"\x00\x3c" + bytes(32),
                             align=16),
        "valid_metadata": gguf(kvs=[ARCH, gkv("u8", U8, b"\7"), gkv("i32", I32, struct.pack("<i", -5)),
                                    gkv("f32", 6, struct.pack("<f", 0.5)), gkv("b", 7, b"\1"),
                                    gkv("u64", U64, struct.pack("<Q", 2**64 - 1)), gkv("f64", 12, struct.pack("<d", 0.1)),
                                    gkv("strs", ARR, struct.pack("<IQ", STR, 3) + gstr("a") + gstr("") + gstr("\u00e9")),
                                    gkv("empty", ARR, struct.pack("<IQ", U32, 0)),
                                    gkv("i16s", ARR, struct.pack("<IQ3h", 3, 3, -1, 0, 1))], infos=[], data=b""),
        "no_tensors": gguf(infos=[], data=b""),
        "overlap": GGUF_CASES["gguf_offset_overlap"][0],
        "nested_array": GGUF_CASES["gguf_array_of_arrays"][0],
        "bad_utf8": GGUF_CASES["gguf_key_not_utf8"][0],
        "truncated": GGUF_CASES["gguf_tensor_past_eof"][0],
    }
    # The gguf-py fixtures (tools/gen_gguf_golden.py): every dequantized type, version 2, alignment 1.
    golden = os.path.join(ROOT, "tests", "data", "gguf_golden")
    for name in ("quants.gguf", "v2_align64.gguf", "align1.gguf"):
        with open(os.path.join(golden, name), "rb") as f:
            seeds["gguf"]["golden_" + name[:-5]] = f.read()
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
    print(f"{len(CASES) + len(GGUF_CASES)} malformed files in {HERE}")
