#!/usr/bin/env python3
"""gen_gguf_golden.py - writes the GGUF reader's fixtures in tests/data/gguf_golden/ with the gguf
Python package (llama.cpp's gguf-py), which tests/test_gguf.c reads back.

What it writes (about 60 KB, committed; `make test` never runs this):
  quants.gguf          GGUF v3, default alignment 32: one tensor per type cquanto dequantizes
                       (F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K), 1 to 4
                       dimensions, random block bytes whose f16 scales are random finite values
                       (every magnitude, subnormals and zeros included); F32/F16/BF16 hold
                       random bits, so infinities and NaNs with payloads too. Metadata: a scalar
                       of every value type, an array of every element type, a 100-element array.
  quants_dequant.gguf  the same names and shapes in F32: gguf.quants.dequantize of each tensor,
                       the goldens cq_ggml_dequantize must match bit for bit
  v2_align64.gguf      version 2 (the writer's version field patched; v2 and v3 differ only in
                       byte order rules) with general.alignment 64
  align1.gguf          general.alignment 1: an I8[3] tensor, so the F32 tensor after it is at an
                       odd offset (the tensor source copies it to aligned memory)
  layout.tsv           what gguf.GGUFReader reads from each file: version, alignment, data
                       offset, and per tensor its name, type, ne[] (ggml order), element count,
                       byte count and offset from the data region, for the C reader to agree with

Environment (pinned): /root/qvenv with gguf==0.17.1 and numpy==2.2.4
    /root/qvenv/bin/python tools/gen_gguf_golden.py
"""
import importlib.metadata
import os
import struct

import numpy as np

import gguf
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "gguf_golden")
SEED = 20250605

# (type, Hugging Face shape) -- the last dimension is ggml's ne[0], a multiple of the block.
TENSORS = [
    (T.F32, (512,)),
    (T.F16, (2, 256)),
    (T.BF16, (2, 256)),
    (T.Q4_0, (2, 2, 2, 64)),
    (T.Q4_1, (4, 128)),
    (T.Q5_0, (4, 128)),
    (T.Q5_1, (4, 128)),
    (T.Q8_0, (2, 4, 64)),
    (T.Q2_K, (2, 512)),
    (T.Q3_K, (2, 512)),
    (T.Q4_K, (2, 512)),
    (T.Q5_K, (2, 512)),
    (T.Q6_K, (2, 512)),
]

# Byte offsets of the f16 scales inside one block (ggml-common.h), made finite below.
SCALES = {
    T.Q4_0: (0,), T.Q4_1: (0, 2), T.Q5_0: (0,), T.Q5_1: (0, 2), T.Q8_0: (0,),
    T.Q2_K: (80, 82), T.Q3_K: (108,), T.Q4_K: (0, 2), T.Q5_K: (0, 2), T.Q6_K: (208,),
}

# Special 16-bit patterns placed first in the F16 and BF16 tensors: zeros, the smallest
# subnormals, the largest finite, infinities, quiet and signalling NaNs with payloads.
F16_SPECIALS = [0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x7bff, 0xfbff, 0x7c00, 0xfc00,
                0x7e00, 0xfe00, 0x7c01, 0xfc01, 0x7d55, 0x3c00]
BF16_SPECIALS = [0x0000, 0x8000, 0x0001, 0x807f, 0x7f7f, 0x7f80, 0xff80, 0x7fc0, 0x7f81, 0xffff, 0x3f80]


def check_versions():
    want = {"gguf": "0.17.1", "numpy": "2.2.4"}
    for pkg, v in want.items():
        have = importlib.metadata.version(pkg)
        if have != v:
            raise SystemExit(f"{pkg} {have} installed; the fixtures are pinned to {v}")


def raw_tensor(rng, qtype, shape):
    """The tensor's bytes as gguf stores them: (*shape[:-1], bytes per row) uint8."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    byte_shape = gguf.quant_shape_to_byte_shape(shape, qtype)
    data = rng.integers(0, 256, size=byte_shape, dtype=np.uint8)
    if qtype in SCALES:
        blocks = data.reshape(-1, size)
        for off in SCALES[qtype]:
            h = rng.integers(0, 0x10000, size=blocks.shape[0], dtype=np.uint32)
            h = np.where((h & 0x7C00) == 0x7C00, h ^ 0x4000, h).astype(np.uint16)  # never inf/NaN
            blocks[:, off:off + 2] = h.view(np.uint8).reshape(-1, 2)
    elif qtype in (T.F16, T.BF16):
        specials = np.array(F16_SPECIALS if qtype == T.F16 else BF16_SPECIALS, dtype=np.uint16)
        flat = data.reshape(-1).view(np.uint16)
        flat[:len(specials)] = specials
    return data


def dequantize(data, qtype):
    return np.ascontiguousarray(gguf.quants.dequantize(data, qtype), dtype=np.float32)


def add_metadata(w):
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.1)
    w.add_bool("test.bool", True)
    w.add_bool("test.bool_false", False)
    w.add_string("test.str", "h\u00e9llo w\u00f6rld")
    w.add_uint64("test.u64", 2**64 - 1)
    w.add_uint64("test.u64_small", 12345)
    w.add_int64("test.i64", -(2**62))
    w.add_float64("test.f64", 1.0 / 3.0)
    arrays = [
        ("u8", V.UINT8, [0, 1, 255]),
        ("i8", V.INT8, [-128, 0, 127]),
        ("u16", V.UINT16, [0, 65535]),
        ("i16", V.INT16, [-32768, 32767]),
        ("u32", V.UINT32, [0, 4294967295]),
        ("i32", V.INT32, [-2147483648, 2147483647]),
        ("f32", V.FLOAT32, [1.5, -0.25, 3.0e38]),
        ("bool", V.BOOL, [True, False, True]),
        ("str", V.STRING, ["a", "", "\u00fcn\u00efc\u00f6de", "two\nlines"]),
        ("u64", V.UINT64, [0, 2**64 - 1]),
        ("i64", V.INT64, [-(2**63), 2**63 - 1]),
        ("f64", V.FLOAT64, [2.5, -1.0e300]),
    ]
    for name, sub, vals in arrays:
        w.add_key_value(f"test.arr_{name}", vals, V.ARRAY, sub_type=sub)
    w.add_key_value("test.arr_long", list(range(100)), V.ARRAY, sub_type=V.UINT32)


def write(path, tensors, alignment=None, metadata=None, version=None):
    w = gguf.GGUFWriter(path, "cqtest")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    if metadata:
        metadata(w)
    for name, data, qtype, shape in tensors:
        if qtype == T.F32 and data.dtype == np.float32:
            w.add_tensor(name, data)
        elif qtype == T.I8:
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, data, raw_shape=data.shape, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if version is not None:
        with open(path, "r+b") as f:
            f.seek(4)
            f.write(struct.pack("<I", version))


def layout_rows(path):
    r = gguf.GGUFReader(path)
    base = os.path.basename(path)
    rows = [f"file\t{base}\t{int(r.fields['GGUF.version'].parts[0][0])}\t{int(r.alignment)}\t{r.data_offset}"]
    for t in r.tensors:
        ne = ",".join(str(int(d)) for d in t.shape)
        rows.append(f"tensor\t{base}\t{t.name}\t{t.tensor_type.name}\t{ne}\t{t.n_elements}\t{t.n_bytes}"
                    f"\t{t.data_offset - r.data_offset}")
    return rows


def main():
    check_versions()
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(SEED)
    quants, goldens = [], []
    for qtype, shape in TENSORS:
        name = qtype.name.lower()
        data = raw_tensor(rng, qtype, shape)
        deq = dequantize(data, qtype).reshape(shape)
        quants.append((name, data, qtype, shape))
        goldens.append((name, deq, T.F32, shape))
    files = {
        "quants.gguf": dict(tensors=quants, metadata=add_metadata),
        "quants_dequant.gguf": dict(tensors=goldens),
        "v2_align64.gguf": dict(tensors=[("a", np.arange(5, dtype=np.float32), T.F32, (5,)),
                                         ("b", quants[4][1], T.Q4_1, TENSORS[4][1])],
                                alignment=64, version=2,
                                metadata=lambda w: w.add_string("general.name", "version two")),
        "align1.gguf": dict(tensors=[("i8", np.array([-1, 2, -3], dtype=np.int8), T.I8, (3,)),
                                     ("f32", np.array([[1.5, -2.0], [0.25, 8.0]], dtype=np.float32), T.F32, (2, 2))],
                            alignment=1),
    }
    rows = ["# kind\tfile\t... (generated by tools/gen_gguf_golden.py from gguf.GGUFReader)"]
    for fname, spec in files.items():
        path = os.path.join(OUT, fname)
        write(path, **spec)
        rows += layout_rows(path)
    with open(os.path.join(OUT, "layout.tsv"), "w") as f:
        f.write("\n".join(rows) + "\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(files)} GGUF files and layout.tsv to {OUT} ({total} bytes)")


if __name__ == "__main__":
    main()
