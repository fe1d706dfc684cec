#!/usr/bin/env python3
"""Write tests/data/fnmatch_cases.inc: (pattern, name, expected) cases for the C matcher
cq__fnmatchcase (src/core/fnmatch.c), every expected value from Python's own
fnmatch.fnmatchcase.

The cases are CPython's own: every check the standard library's Lib/test/test_fnmatch.py
makes (FnmatchTestCase's check_match calls and FilterTestCase's filter calls are recorded while
that test suite runs, and it must pass), plus the edge cases below (the patterns where libc
fnmatch(3) and Python disagree, module names, non-ASCII and invalid UTF-8). Bytes cases are
taken as os.fsdecode would give them (surrogateescape), which is the reading the C matcher
documents; they are written back as bytes.

Python: CPython 3.11 (3.11.7 made the committed file); the script refuses another minor
version, since fnmatch.translate's set rules changed over releases. No packages needed:

    python3.11 tools/gen_fnmatch_cases.py      # rewrites tests/data/fnmatch_cases.inc

`make test` never runs this; the output is committed. Reruns give a byte-identical file.
"""

import fnmatch
import os
import sys
import unittest

if sys.version_info[:2] != (3, 11):
    sys.exit("gen_fnmatch_cases.py: needs CPython 3.11, this is %s" % sys.version.split()[0])

from test import test_fnmatch  # noqa: E402  (CPython's Lib/test/test_fnmatch.py)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "fnmatch_cases.inc")

recorded = []  # (pattern, name) as str


def as_str(x):
    return os.fsdecode(x) if isinstance(x, bytes) else x


def record(name, pattern):
    if isinstance(name, bytes) == isinstance(pattern, bytes):  # mixed types only raise
        recorded.append((as_str(pattern), as_str(name)))


orig_check = test_fnmatch.FnmatchTestCase.check_match


def check_match(self, filename, pattern, should_match=True, fn=fnmatch.fnmatch):
    record(filename, pattern)
    orig_check(self, filename, pattern, should_match, fn)


orig_filter = test_fnmatch.filter


def filter_(names, pattern):
    for n in names:
        record(n, pattern)
    return orig_filter(names, pattern)


test_fnmatch.FnmatchTestCase.check_match = check_match
test_fnmatch.filter = filter_
suite = unittest.TestSuite()
for case in (test_fnmatch.FnmatchTestCase, test_fnmatch.FilterTestCase):
    suite.addTests(unittest.defaultTestLoader.loadTestsFromTestCase(case))
result = unittest.TextTestRunner(stream=open(os.devnull, "w")).run(suite)
if not result.wasSuccessful():
    sys.exit("gen_fnmatch_cases.py: CPython's test_fnmatch failed here")
n_cpython = len(recorded)

# Edge cases beyond CPython's: (pattern, names...).
EXTRA = [
    # libc fnmatch(3) reads '\' as an escape and may treat an unclosed '[' differently
    ("a\\*", ["a*", "a\\", "a\\b", "a\\*", "ab"]),
    ("[a-", ["[a-", "a", "-", "[a"]),
    ("a[", ["a[", "a"]), ("[", ["[", ""]), ("[!", ["[!", "!"]), ("[]", ["[]", "]"]),
    ("a\\b", ["a\\b", "ab"]), ("\\[a]", ["\\a", "[a]"]), ("[\\]]", ["\\]", "]"]),
    # sets: ']' first, '!' only first, '-' at either end or after a range, reversed ranges
    ("[]a]", ["]", "a", "b"]), ("[!]a]", ["]", "a", "b"]), ("[]-a]", ["]", "^", "a", "b", "-"]),
    ("[a!]", ["a", "!", "b"]), ("[!!]", ["!", "a"]), ("[z-a]", ["a", "z", "m", "-"]),
    ("[!z-a]", ["a", "z", "-", "?"]), ("[z-ab]", ["a", "b", "z"]), ("[b-a-]", ["a", "b", "-"]),
    ("[z-a-c]", ["-", "c", "a", "b", "z"]), ("[a--b]", ["a", "-", "b", ","]),
    ("[--z]", ["-", "a", "z", "+"]), ("[a-c-e]", ["b", "-", "e", "d"]), ("[a-bc-]", ["a", "c", "-", "d"]),
    ("[a-cz-ae-g]", ["b", "f", "z", "a", "e", "d"]), ("[!a-c-e]", ["b", "-", "e", "d"]),
    ("[^a]", ["^", "a", "b"]), ("[a^]", ["^", "a"]), ("[[]", ["["]), ("[?]", ["?", "a"]), ("[*]", ["*", "a"]),
    ("[a&&b]", ["&", "a"]), ("[a-a]", ["a", "b"]), ("[ --]", [" ", ",", "-", "."]),
    # stars and backtracking
    ("*", ["", "a", "\n"]), ("", ["", "a"]), ("**", [""]), ("a*b*c", ["abc", "aXbYc", "acb", "abcbc", "ab"]),
    ("*a*a*b", ["aab", "aaab", "abab", "aba"]), ("*a*b*c", ["xxaxxbxxc", "xxaxxcxxb"]), ("*?", ["", "a"]), ("?*?", ["a", "ab"]),
    ("a*", ["a", "a.b", "b.a"]), ("*.weight", ["x.weight", "weight", ".weight"]),
    # module names as quanto's include/exclude lists see them
    ("lm_head", ["lm_head", "lm_head.x", "model.lm_head", "LM_HEAD"]),
    ("model.layers.*.mlp.*", ["model.layers.10.mlp.down_proj", "model.layers.10.self_attn.q_proj"]),
    ("*.?_proj", ["x.q_proj", "x.up_proj"]), ("layers.[0-2].*", ["layers.1.fc", "layers.3.fc", "layers.10.fc"]),
    ("layers.[!0-2].*", ["layers.3.fc", "layers.1.fc"]), ("*layers.1[0-9]*", ["m.layers.15.fc", "m.layers.1.fc"]),
    # code points, not bytes: '?' takes one character; sets compare code points
    ("?", ["\u00e9", "e\u0301", "\u20ac", "\U0001f600", "ab"]), ("??", ["\u00e9", "e\u0301"]),
    ("[\u00e0-\u00ff]", ["\u00e9", "e", "\u0100"]), ("[!\u00e9]", ["\u00e9", "e", "\u20ac"]),
    ("caf\u00e9*", ["caf\u00e9.x", "cafe.x"]), ("*\u20ac", ["1\u20ac", "\u20ac", "\u20ac1"]),
    ("[\U0001f600-\U0001f64f]", ["\U0001f601", "\U0001f650"]),
    # invalid UTF-8 as surrogateescape reads it (bytes 0x80..0xff -> U+DC80..U+DCFF)
    ("?", [os.fsdecode(b"\xff"), os.fsdecode(b"\xc3"), os.fsdecode(b"\xe2\x82"), os.fsdecode(b"\xc0\x80")]),
    (os.fsdecode(b"a\xffb"), [os.fsdecode(b"a\xffb"), "a\u00ffb", os.fsdecode(b"a\xfeb")]),
    (os.fsdecode(b"[\x80-\xff]"), [os.fsdecode(b"\x85"), "\u0085", "a", "\u00e9"]),
    ("?" * 4, [os.fsdecode(b"\xed\xa0\x80a"), os.fsdecode(b"\xf4\x90\x80\x80")]),
    # newlines and tabs are ordinary characters
    ("a?b", ["a\nb", "a\tb"]), ("[\n]", ["\n", "n"]),
]
for pattern, names in EXTRA:
    for n in names:
        recorded.append((pattern, n))

seen, cases = set(), []
for p, n in recorded:
    if (p, n) not in seen:
        seen.add((p, n))
        cases.append((p, n, fnmatch.fnmatchcase(n, p)))


def c_string(s):
    out = []
    for b in os.fsencode(s):
        c = chr(b)
        if c in '"\\?':  # '?' escaped: no trigraphs
            out.append("\\" + c)
        elif 0x20 <= b < 0x7F:
            out.append(c)
        else:
            out.append("\\%03o" % b)
    return '"' + "".join(out) + '"'


with open(OUT, "w") as f:
    f.write("/* Generated by tools/gen_fnmatch_cases.py with CPython %s: %d checks recorded from\n"
            " * CPython's Lib/test/test_fnmatch.py plus %d edge cases, %d distinct; expected values\n"
            " * are fnmatch.fnmatchcase(name, pattern). Do not edit. */\n"
            % (sys.version.split()[0], n_cpython, len(recorded) - n_cpython, len(cases)))
    for p, n, want in cases:
        f.write("{%s, %s, %d},\n" % (c_string(p), c_string(n), int(want)))
print("wrote %s: %d cases (%d from CPython's tests)" % (os.path.relpath(OUT), len(cases), n_cpython))
