#!/usr/bin/env python3
"""Write the golden fixtures in tests/data/golden/ from the real PyTorch and optimum-quanto.

Every expected value the C tests compare against bit for bit comes from here: dtype casts
(torch's .to()), quanto's optimizers (AbsmaxOptimizer, MaxOptimizer, HqqOptimizer), its
quantize ops and tensor classes (quantize_symmetric, WeightQBytesTensor, WeightQBitsTensor,
ActivationQBytesTensor, PackedTensor, group/ungroup) and whole modules frozen by
quantize()+freeze(). `make test` never runs this; the fixtures are committed.

Environment (pinned; a CPU build of torch is enough, and everything runs on the CPU):

    python3.11 -m venv /root/qvenv
    /root/qvenv/bin/pip install --index-url https://download.pytorch.org/whl/cpu torch==2.6.0
    /root/qvenv/bin/pip install optimum-quanto==0.2.7 safetensors==0.5.3 numpy==2.2.4
    /root/qvenv/bin/python tools/gen_golden.py            # writes tests/data/golden/*.safetensors

Conventions of the files (read by tests/test_quant_golden.c and tests/test_dtype.c):
- Each file holds a U8 tensor "_cases": text lines "<case> key=value key=value ..."
  describing each case (dtype, qtype, axis, group size, input tensor, ...).
- Tensors of a case are named "<case>.<what>". float8_e4m3fnuz has no safetensors dtype, so
  those tensors are stored as their U8 bit patterns (metadata says fnuz_u8=1).
- HQQ fixtures were produced on a CPU where torch.backends.cpu.get_cpu_capability() is
  "AVX512" (recorded in the "generator" metadata); the C side replays that summation order.
- Reruns give byte-identical files.

Keep fixtures small: all files together stay far below 1 MB.
"""

import math
import os
import struct
import sys

import numpy as np
import torch
from safetensors.torch import save_file

import optimum.quanto as oq
from optimum.quanto import (
    ActivationQBytesTensor,
    AbsmaxOptimizer,
    HqqOptimizer,
    MaxOptimizer,
    freeze,
    quantize,
)
from optimum.quanto.tensor import group, ungroup
from optimum.quanto.tensor.packed import PackedTensor
from optimum.quanto.tensor.weights import quantize_weight

PINS = {"torch": "2.6.0", "optimum-quanto": "0.2.7", "safetensors": "0.5.3", "numpy": "2.2.4"}

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "golden")

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
QTYPES8 = ["qint8", "qfloat8_e4m3fn", "qfloat8_e5m2", "qfloat8_e4m3fnuz"]
QTYPES_AFFINE = ["qint2", "qint4"]


def check_versions():
    import importlib.metadata as md

    bad = []
    for pkg, want in PINS.items():
        have = md.version(pkg)
        if not have.startswith(want):
            bad.append(f"{pkg} {have} (want {want})")
    if bad:
        sys.exit("gen_golden.py: wrong versions: " + ", ".join(bad))


def storable(t):
    """safetensors cannot hold float8_e4m3fnuz: store its bit patterns as U8."""
    t = t.detach().contiguous()
    if t.dtype == torch.float8_e4m3fnuz:
        return t.view(torch.uint8)
    return t


class Fixture:
    def __init__(self, name):
        self.name = name
        self.tensors = {}
        self.meta = {}

    def add(self, name, t):
        assert name not in self.tensors, name
        self.tensors[name] = storable(t).clone()

    def case(self, name, **kv):
        assert name not in self.meta, name
        self.meta[name] = " ".join(f"{k}={v}" for k, v in kv.items())

    def write(self):
        path = os.path.join(OUT, self.name + ".safetensors")
        # The case list is a U8 tensor of text lines ("<case> key=value ...") rather than
        # __metadata__, whose key order safetensors does not keep (files would differ per run).
        lines = [f"{k} {v}\n" for k, v in self.meta.items()]
        self.tensors["_cases"] = torch.tensor(list("".join(lines).encode()), dtype=torch.uint8)
        meta = {"generator": "tools/gen_golden.py " + " ".join(f"{k}=={v}" for k, v in PINS.items())
                + " cpu_capability=" + torch.backends.cpu.get_cpu_capability()}
        save_file(self.tensors, path, metadata=meta)
        print(f"{path}: {len(self.tensors)} tensors, {os.path.getsize(path)} bytes")


def axis_name(axis):
    return "none" if axis is None else str(axis)


def f32_from_bits(u):
    return struct.unpack("<f", struct.pack("<I", u & 0xFFFFFFFF))[0]


def next_up(x):
    return float(np.nextafter(np.float32(x), np.float32(np.inf)))


def next_down(x):
    return float(np.nextafter(np.float32(x), np.float32(-np.inf)))


# ---- dtype casts -------------------------------------------------------------------------


def cast_inputs(gen):
    """f32 values that exercise every rounding edge of the narrow float formats."""
    vals = [0.0, -0.0, math.inf, -math.inf, f32_from_bits(0x7FC00000), f32_from_bits(0xFFC00000),
            f32_from_bits(0x7F800001), f32_from_bits(0x7FC02001), f32_from_bits(0xFF812345),
            3.4028234663852886e38, -3.4028234663852886e38, 1.1754943508222875e-38, 1e-45, -1e-45, 1e10, -1e10]
    # Every fp8 code, the midpoints between neighbours (ties) and one f32 ulp either side.
    for dt in (torch.float8_e4m3fn, torch.float8_e5m2, torch.float8_e4m3fnuz):
        codes = torch.arange(256, dtype=torch.int32).to(torch.uint8).view(dt).float()
        pos = sorted({float(v) for v in codes if math.isfinite(float(v)) and float(v) >= 0})
        for a, b in zip(pos, pos[1:] + [pos[-1] + (pos[-1] - pos[-2])]):
            m = (a + b) / 2
            for v in (a, m, next_up(m), next_down(m)):
                vals += [v, -v]
    # f16 and bf16: around a sample of codes, densely at the subnormal/normal boundary and
    # the top of the range.
    for dt, top in ((torch.float16, 0x7C00), (torch.bfloat16, 0x7F80)):
        codes = list(range(0, 8)) + list(range(0x3F8, 0x408)) + list(range(0x7F8, 0x808))
        codes += list(range(top - 8, top)) + [0x3BFF, 0x3C00, 0x3C01, 0x3F7F, 0x3F80, 0x3F81]
        codes += gen.integers(0, top, 150).tolist()
        t = torch.tensor(codes, dtype=torch.int32).to(torch.int16).view(dt).float()
        for c, v in zip(codes, t.tolist()):
            nxt = torch.tensor([c + 1], dtype=torch.int32).to(torch.int16).view(dt).float().item()
            m = (v + nxt) / 2 if math.isfinite(nxt) else v + (v - torch.tensor([c - 1], dtype=torch.int32)
                                                             .to(torch.int16).view(dt).float().item()) / 2
            vals += [v, m, next_up(m), next_down(m), -m]
    vals += (gen.standard_normal(300) * 10.0 ** gen.integers(-8, 6, 300)).tolist()
    return torch.tensor(vals, dtype=torch.float32)


def gen_dtype_casts(gen):
    fx = Fixture("dtype_casts")
    x = cast_inputs(gen)
    fx.add("cast.in", x)
    fx.add("cast.f16", x.to(torch.float16))
    fx.add("cast.bf16", x.to(torch.bfloat16))
    fx.add("cast.f8_e4m3fn", x.to(torch.float8_e4m3fn))
    fx.add("cast.f8_e5m2", x.to(torch.float8_e5m2))
    fx.add("cast.f8_e4m3fnuz", x.to(torch.float8_e4m3fnuz))
    fx.case("cast", n=x.numel(), fnuz_u8=1)
    for name, dt in (("f8_e4m3fn", torch.float8_e4m3fn), ("f8_e5m2", torch.float8_e5m2),
                     ("f8_e4m3fnuz", torch.float8_e4m3fnuz)):
        fx.add("decode." + name, torch.arange(256, dtype=torch.int32).to(torch.uint8).view(dt).float())
    # A sample of f16 decodes (every 61st code; the C test also checks all 65,536 exhaustively
    # against the compiler's _Float16).
    codes16 = torch.arange(0, 65536, 61, dtype=torch.int32).to(torch.int16)
    fx.add("decode.f16.codes", codes16)
    fx.add("decode.f16", codes16.view(torch.float16).float())
    fx.add("decode.bf16", codes16.view(torch.bfloat16).float())

    # cq_convert: doubles and integers into narrow floats (torch goes through f32), float to
    # int truncation in range, int narrowing (wraps).
    d = [1 + 2**-11 + 2**-40, 1 + 2**-8 + 2**-40, 1 + 2**-24 + 2**-60, -(1 + 2**-11 + 2**-40), 1e300, -1e300,
         1e-300, 65519.99999, 65520.0, 3.0e38, 3.5e38, 0.1, 1 / 3, 448.0, 464.0000001, 2.0**-150, 2.0**-149]
    d += (gen.standard_normal(100) * 10.0 ** gen.integers(-30, 30, 100)).tolist()
    xd = torch.tensor(d, dtype=torch.float64)
    fx.add("conv.f64", xd)
    for name, dt in (("f32", torch.float32), ("f16", torch.float16), ("bf16", torch.bfloat16),
                     ("f8_e4m3fn", torch.float8_e4m3fn), ("f8_e5m2", torch.float8_e5m2)):
        fx.add("conv.f64_to_" + name, xd.to(dt))
    i = [0, 1, -1, 2**24 + 1, 2**24 + 3, 2**24 + 2**16 + 1, -(2**24 + 2**16 + 1), 65504, 65519, 65520, 100000,
         2**31 - 1, -(2**31), 2**53 + 1, 2**62 + 2**38 + 1, -(2**63), 2**63 - 1, 123456789012345]
    xi = torch.tensor(i, dtype=torch.int64)
    fx.add("conv.i64", xi)
    for name, dt in (("f64", torch.float64), ("f32", torch.float32), ("f16", torch.float16),
                     ("bf16", torch.bfloat16), ("i32", torch.int32), ("i16", torch.int16), ("i8", torch.int8),
                     ("u8", torch.uint8)):
        fx.add("conv.i64_to_" + name, xi.to(dt))
    # Ordered so that each integer type's prefix is in range (out of range is undefined in torch).
    xf = torch.tensor([0.0, 0.5, 0.99, 1.0, 1.5, 2.5, -0.5, -1.5, -2.7, 100.9, 127.9, -128.9, -3.2e4, 3.3e4,
                       2.0e9, -2.1e9, 8.0e18], dtype=torch.float32)
    fx.add("conv.f32i", xf)
    fx.add("conv.f32i_to_i64", xf.to(torch.int64))
    fx.add("conv.f32i_to_i32", xf[:16].to(torch.int32))
    fx.add("conv.f32i_to_i16", xf[:13].to(torch.int16))
    fx.add("conv.f32i_to_i8", xf[:12].to(torch.int8))
    fx.add("conv.f32i_to_u8", xf[:6].to(torch.uint8))
    fx.add("conv.f32i_to_bool", xf.to(torch.bool))
    xb = torch.tensor(gen.standard_normal(200) * 10.0 ** gen.integers(-9, 6, 200), dtype=torch.bfloat16)
    fx.add("conv.bf16", xb)
    fx.add("conv.bf16_to_f16", xb.to(torch.float16))
    fx.add("conv.bf16_to_f8_e4m3fn", xb.to(torch.float8_e4m3fn))
    xh = torch.tensor(gen.standard_normal(200) * 10.0 ** gen.integers(-7, 4, 200), dtype=torch.float16)
    fx.add("conv.f16", xh)
    fx.add("conv.f16_to_bf16", xh.to(torch.bfloat16))
    fx.add("conv.f16_to_f8_e5m2", xh.to(torch.float8_e5m2))
    fx.write()


# ---- symmetric (8-bit) -------------------------------------------------------------------


def spread_input(gen, shape, dtype):
    """Normal values with per-row magnitudes over several decades."""
    x = torch.tensor(gen.standard_normal(shape), dtype=torch.float32)
    rows = torch.tensor(10.0 ** gen.uniform(-3, 2, (shape[0],) + (1,) * (len(shape) - 1)), dtype=torch.float32)
    return (x * rows).to(dtype)


def gen_symmetric(gen):
    fx = Fixture("quant_symmetric")
    for dname, dt in DTYPES.items():
        inputs = {
            "x2d": spread_input(gen, (9, 24), dt),
            "x4d": spread_input(gen, (4, 3, 3, 5), dt),
            "x1row": spread_input(gen, (1, 17), dt),
        }
        for iname, x in inputs.items():
            fx.add(f"{dname}.{iname}", x)
        plan = [("x2d", None), ("x2d", 0), ("x2d", -1), ("x4d", 0), ("x4d", -1), ("x4d", None), ("x1row", 0)]
        for qname in QTYPES8:
            qt = oq.qtypes[qname]
            for iname, axis in plan:
                x = inputs[iname]
                case = f"{dname}.{qname}.{iname}.{axis_name(axis)}"
                scale = AbsmaxOptimizer()(x, qt, axis)
                if axis is None or scale.ndim == 0:
                    q = ActivationQBytesTensor.quantize(x, qt, scale)
                else:
                    q = quantize_weight(x, qt, axis, scale, optimized=False)
                fx.add(case + ".scale", scale)
                fx.add(case + ".data", q._data)
                fx.add(case + ".deq", q.dequantize())
                fx.case(case, dtype=dname, qtype=qname, input=f"{dname}.{iname}", axis=axis_name(axis),
                        fnuz_u8=int(qname == "qfloat8_e4m3fnuz"))
        # Ties and clamping with a given scale: x/scale lands on .5 and beyond [-128, 127].
        x = (torch.arange(-264, 264, dtype=torch.float32) / 2).to(dt).reshape(8, 66)
        scale = torch.tensor(1.0, dtype=dt)
        fx.add(f"{dname}.ties.x", x)
        fx.add(f"{dname}.ties.scale", scale)
        for qname in QTYPES8:
            qt = oq.qtypes[qname]
            s = scale * (1.0 if qt.bits == 8 and not qt.is_floating_point else 0.5 ** 6)
            case = f"{dname}.ties.{qname}"
            fx.add(case + ".scale", s)
            fx.add(case + ".data", torch.ops.quanto.quantize_symmetric(x, qt.dtype, None, s))
            fx.case(case, dtype=dname, qtype=qname, input=f"{dname}.ties.x", axis="none", given_scale=1,
                    fnuz_u8=int(qname == "qfloat8_e4m3fnuz"))
    fx.write()


# ---- affine (2/4-bit) ------------------------------------------------------------------


def gen_affine(gen):
    fx = Fixture("quant_affine")
    for dname, dt in DTYPES.items():
        inputs = {
            "a2d": spread_input(gen, (3, 256), dt),
            "a96": spread_input(gen, (3, 288), dt),
            "a2dt": spread_input(gen, (192, 3), dt),
            "a4d": spread_input(gen, (5, 4, 3, 3), dt),
            "a1row": spread_input(gen, (1, 40), dt),
        }
        for iname, x in inputs.items():
            fx.add(f"{dname}.{iname}", x)
        plan = [("a2d", 0, gs) for gs in (None, 32, 128)] + [("a96", 0, 96)]
        plan += [("a2dt", -1, gs) for gs in (None, 64, 96)]
        plan += [("a4d", 0, None), ("a4d", 0, 12), ("a4d", -1, None), ("a1row", 0, None)]
        for qname in QTYPES_AFFINE:
            qt = oq.qtypes[qname]
            for iname, axis, gs in plan:
                x = inputs[iname]
                case = f"{dname}.{qname}.{iname}.{axis_name(axis)}.{gs or 0}"
                scale, shift = MaxOptimizer()(x, qt, axis, gs)
                q = quantize_weight(x, qt, axis, scale, shift, group_size=gs, optimized=False)
                assert isinstance(q._data, PackedTensor)
                fx.add(case + ".scale", scale)
                fx.add(case + ".shift", shift)
                fx.add(case + ".packed", q._data._data)  # the codes are its unpacking
                if qname == "qint4":  # the dequantization formula does not depend on bits
                    fx.add(case + ".deq", q.dequantize())
                fx.case(case, dtype=dname, qtype=qname, input=f"{dname}.{iname}", axis=axis_name(axis),
                        group_size=gs or 0)
        # group/ungroup on their own (integer-valued so any dtype round-trips).
        for iname, axis, gs in (("a2d", 0, 64), ("a2dt", -1, 32), ("a4d", 0, 12), ("a4d", -1, 12)):
            x = inputs[iname]
            g = group(x, axis, gs)
            assert torch.equal(ungroup(g, axis, x.shape), x)
            case = f"{dname}.group.{iname}.{axis_name(axis)}.{gs}"
            fx.add(case + ".grouped", g)
            fx.case(case, dtype=dname, input=f"{dname}.{iname}", axis=axis_name(axis), group_size=gs)
    # PackedTensor on its own, odd row counts, trailing dims.
    for bits in (2, 4):
        for n in (1, 2, 3, 5, 7, 9, 13):
            codes = torch.tensor(gen.integers(0, 2**bits, (n, 3, 2)), dtype=torch.uint8)
            p = PackedTensor.pack(codes, bits)
            case = f"pack.{bits}.{n}"
            fx.add(case + ".codes", codes)
            fx.add(case + ".packed", p._data)
            fx.case(case, bits=bits, rows=n)
    fx.write()


# ---- HQQ -----------------------------------------------------------------------------------


def gen_hqq(gen):
    fx = Fixture("quant_hqq")
    for dname, dt in DTYPES.items():
        inputs = {"h2d": spread_input(gen, (4, 256), dt), "h2dt": spread_input(gen, (96, 5), dt),
                  "hsmall": spread_input(gen, (7, 40), dt)}
        for iname, x in inputs.items():
            fx.add(f"{dname}.{iname}", x)
        plan = [("h2d", 0, 64), ("h2d", 0, 128), ("h2dt", -1, 32), ("hsmall", 0, None), ("hsmall", -1, None)]
        for qname in QTYPES_AFFINE:
            qt = oq.qtypes[qname]
            for iname, axis, gs in plan:
                x = inputs[iname]
                case = f"{dname}.{qname}.{iname}.{axis_name(axis)}.{gs or 0}"
                scale, shift = HqqOptimizer()(x, qt, axis, gs)
                q = quantize_weight(x, qt, axis, scale, shift, group_size=gs, optimized=False)
                fx.add(case + ".scale", scale)
                fx.add(case + ".shift", shift)
                fx.add(case + ".codes", q._data.unpack())
                fx.case(case, dtype=dname, qtype=qname, input=f"{dname}.{iname}", axis=axis_name(axis),
                        group_size=gs or 0)
    # ATen's float summation order, which the HQQ means depend on: sums and means of rows
    # (inner), of columns (outer) and of whole tensors.
    for n in (5, 16, 33, 100, 257, 1000):
        x = torch.tensor(gen.standard_normal((2, n)) * 10.0 ** gen.integers(-3, 4, (2, n)), dtype=torch.float32)
        fx.add(f"sum.inner.{n}.x", x)
        fx.add(f"sum.inner.{n}.sum", x.sum(-1))
        fx.add(f"sum.inner.{n}.mean", x.mean(-1, keepdim=True))
        fx.case(f"sum.inner.{n}", kind="inner", rows=2, cols=n)
    for rows, cols in ((48, 3), (48, 7), (33, 16), (33, 40), (20, 100)):
        x = torch.tensor(gen.standard_normal((rows, cols)) * 10.0 ** gen.integers(-3, 4, (rows, cols)),
                         dtype=torch.float32)
        fx.add(f"sum.outer.{rows}x{cols}.x", x)
        fx.add(f"sum.outer.{rows}x{cols}.sum", x.sum(0))
        fx.add(f"sum.outer.{rows}x{cols}.mean", x.mean(0, keepdim=True))
        fx.case(f"sum.outer.{rows}x{cols}", kind="outer", rows=rows, cols=cols)
    for n in (7, 3000):
        x = torch.tensor(gen.standard_normal(n) * 10.0 ** gen.integers(-3, 4, n), dtype=torch.float32)
        fx.add(f"sum.full.{n}.x", x)
        fx.add(f"sum.full.{n}.mean", x.reshape(10, -1).mean() if n % 10 == 0 else x.mean())
        fx.case(f"sum.full.{n}", kind="full", n=n)
    fx.write()


# ---- whole modules: quantize() + freeze() ----------------------------------------------


def gen_modules(gen):
    fx = Fixture("quant_modules")
    torch.manual_seed(int(gen.integers(0, 2**31)))
    specs = [
        ("lin288x3", lambda: torch.nn.Linear(288, 3), "qint4", None),   # group size 96, 9 groups
        ("lin160x3", lambda: torch.nn.Linear(160, 3), "qint4", None),   # 32
        ("lin256x3", lambda: torch.nn.Linear(256, 3), "qint2", None),   # 128, 6 groups
        ("lin100x7", lambda: torch.nn.Linear(100, 7), "qint4", None),   # none, odd rows
        ("lin200x3", lambda: torch.nn.Linear(200, 3), "qint2", None),   # none: no divisor
        ("conv24x3", lambda: torch.nn.Conv2d(24, 3, 4), "qint4", None), # 384 -> 128, 9 groups
        ("conv3x6", lambda: torch.nn.Conv2d(3, 6, 3), "qint2", None),   # 27 -> none, 4-D packing
        ("lin40x7", lambda: torch.nn.Linear(40, 7), "qint8", None),
        ("lin40x1", lambda: torch.nn.Linear(40, 1), "qint8", None),     # per tensor
        ("lin40x7f8", lambda: torch.nn.Linear(40, 7), "qfloat8_e4m3fn", None),
        ("lin40x7e5", lambda: torch.nn.Linear(40, 7), "qfloat8_e5m2", None),
        ("lin40x7uz", lambda: torch.nn.Linear(40, 7), "qfloat8_e4m3fnuz", None),
        ("conv4x3f8", lambda: torch.nn.Conv2d(4, 3, 3), "qfloat8_e4m3fn", None),
        ("hqq192x5", lambda: torch.nn.Linear(192, 5), "qint4", "hqq"),  # 96
    ]
    # quanto freezes bf16 qint4 group-128 Linear weights on the CPU through TinyGemm, which
    # rounds the shift through another representation (it needs out % 16 == 0).
    bf16_only = [("lin256x16", lambda: torch.nn.Linear(256, 16), "qint4", None)]
    for dname, dt in DTYPES.items():
        for name, make, qname, opt in specs + (bf16_only if dname == "bf16" else []):
            model = torch.nn.Sequential(make()).to(dt)
            with torch.no_grad():
                w = model[0].weight
                w.copy_(spread_input(gen, tuple(w.shape), dt))
            weight = model[0].weight.detach().clone()
            kwargs = {"optimizer": HqqOptimizer()} if opt == "hqq" else {}
            quantize(model, weights=oq.qtypes[qname], **kwargs)
            freeze(model)
            sd = model.state_dict()
            case = f"{dname}.{name}"
            fx.add(case + ".w", weight)
            keys = []
            for k, v in sd.items():
                if k.startswith("0.weight."):
                    fx.add(case + "." + k[2:], v)
                    keys.append(k[2:])
            qw = model[0].weight
            fx.case(case, dtype=dname, qtype=qname, optimizer=opt or "default", keys=",".join(sorted(keys)),
                    group_size=model[0].weight_group_size or 0, kind=type(qw).__name__,
                    fnuz_u8=int(qname == "qfloat8_e4m3fnuz"))
    fx.write()


def main():
    check_versions()
    torch.set_num_threads(1)  # torch's reductions then run in one pass; the C side replays it
    os.makedirs(OUT, exist_ok=True)
    gen = np.random.default_rng(20250307)
    gen_dtype_casts(gen)
    gen_symmetric(gen)
    gen_affine(gen)
    gen_hqq(gen)
    gen_modules(gen)


if __name__ == "__main__":
    main()
