#!/usr/bin/env python3
"""Build the Pyodide "dev" bundle that workerd loads for local Python Workers.

workerd does not ship the Python runtime; it downloads a released
``pyodide_<version>.capnp.bin`` at start, which is impossible offline, and a
local copy of a released bundle fails its integrity check. With the compat
flag ``python_workers_development`` workerd instead asks for the version
"dev", which it reads -- without any integrity check -- from
``<--pyodide-bundle-disk-cache-dir>/pyodide_dev.capnp.bin``.

This script makes that file from the npm package ``pyodide`` (stdlib only, the
Cap'n Proto message is encoded by hand). The message's root is a ``Bundle`` of
workerd's ``src/workerd/jsg/modules.capnp``::

    struct Bundle { modules @0 :List(Module); }
    struct Module {
      name @0 :Text;
      union { src @1 :Data; wasm @4 :Data; data @5 :Data; json @6 :Text; }
      tsDeclaration @3 :Text;
      type @2 :ModuleType;
      compileCache @7 :Data;
    }
    enum ModuleType { bundle @0; builtin @1; internal @2; }

Layout of a ``Module`` (as capnp lays it out): 1 data word, 4 pointers.
``type`` occupies data bits 0-15 and the union discriminant bits 16-31; the
discriminant is the member's index in the union in ordinal order: src=0,
wasm=1, data=2, json=3. Pointers: 0 name, 1 the union member, 2 tsDeclaration,
3 compileCache.

It holds three ``internal`` modules:

    pyodideRuntime-internal:pyodide.asm        src   pyodide.asm.mjs, patched as workerd's build does
    pyodideRuntime-internal:pyodide.asm.wasm   wasm  pyodide.asm.wasm as is
    pyodideRuntime-internal:python_stdlib.zip  data  python_stdlib.zip as is

Usage:
    build_pyodide_bundle.py [--pyodide-dir DIR] [--workerd BIN] [--out FILE] [--force]
    build_pyodide_bundle.py --check-version      # only compare versions
    build_pyodide_bundle.py --verify FILE        # decode FILE and list its modules

Exit status: 0 ok, 2 version mismatch, 1 any other failure.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import mmap
import re
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PYODIDE_DIR = ROOT / "node_modules" / "pyodide"
DEFAULT_WORKERD = ROOT / "node_modules" / "@cloudflare" / "workerd-linux-64" / "bin" / "workerd"
DEFAULT_OUT = ROOT / ".cache" / "pyodide" / "pyodide_dev.capnp.bin"

# ---------------------------------------------------------------------------
# Cap'n Proto constants for modules.capnp
# ---------------------------------------------------------------------------
MODULE_TYPES = {"bundle": 0, "builtin": 1, "internal": 2}
MODULE_TYPE_NAMES = {v: k for k, v in MODULE_TYPES.items()}
# Union discriminants: index of the member within the union, by ordinal.
UNION_KINDS = {"src": 0, "wasm": 1, "data": 2, "json": 3}
UNION_KIND_NAMES = {v: k for k, v in UNION_KINDS.items()}
MODULE_DATA_WORDS = 1
MODULE_PTR_WORDS = 4

MODULE_PREFIX = "pyodideRuntime-internal:"
BUNDLE_FILES = [
    # (module name, union kind, file in the npm package, patched?)
    (MODULE_PREFIX + "pyodide.asm", "src", "pyodide.asm.mjs", True),
    (MODULE_PREFIX + "pyodide.asm.wasm", "wasm", "pyodide.asm.wasm", False),
    (MODULE_PREFIX + "python_stdlib.zip", "data", "python_stdlib.zip", False),
]

# ---------------------------------------------------------------------------
# pyodide.asm.mjs patches (workerd src/pyodide/helpers.bzl: common + 3.14 set)
# ---------------------------------------------------------------------------
PRELUDE = """
import {
    addEventListener,
    getRandomValues,
    location,
    monotonicDateNow,
    newWasmModule,
    patchedApplyFunc,
    patchedLoadLibData,
    wasmInstantiate,
    patched_PyEM_CountFuncParams,
} from "pyodide-internal:builtin_wrappers";

function reportUndefinedSymbolsPatched(Module) {
    Module.reportUndefinedSymbols();
}
"""

_EVAL_THROW = (
    "(() => {throw new Error('Internal Emscripten code tried to eval, this should not happen, "
    "please file a bug report with your requirements.txt file\\'s contents')})()"
)

_LOAD_LIB_DATA = """
        function loadLibData(){
            var libData = patchedLoadLibData(Module, libName, flags.rpath);
            return flags.loadAsync ? Promise.resolve(libData) : libData;
        }
        function dummiedOutOrigLoadLibData(){
        """


@dataclass(frozen=True)
class Patch:
    old: str
    new: str
    required: bool  # must occur at least once, else the build fails


# Applied in order, each to the whole text (like Bazel's expand_template). The
# prelude goes last so no other patch touches it.
PATCHES: list[Patch] = [
    Patch("new WebAssembly.Module", "newWasmModule", True),
    Patch("WebAssembly.instantiate", "wasmInstantiate", True),
    Patch("Date.now", "monotonicDateNow", True),
    Patch("reportUndefinedSymbols()", "reportUndefinedSymbolsPatched(Module)", True),
    Patch("crypto.getRandomValues(", "getRandomValues(Module, ", True),
    Patch("eval(func)", _EVAL_THROW, False),
    Patch("eval(data)", _EVAL_THROW, False),
    Patch("eval(UTF8ToString(ptr))", _EVAL_THROW, False),
    Patch("function loadLibData(){", _LOAD_LIB_DATA, True),
    Patch("getMemory(", "Module.getMemoryPatched(Module, libName, ", True),
    Patch(
        "function _PyEM_CountFuncParams(func){",
        "function _PyEM_CountFuncParams(func){ return patched_PyEM_CountFuncParams(Module, func);",
        False,  # absent from pyodide 314.0.6's build
    ),
    Patch(
        "export default _createPyodideModule;",
        PRELUDE + "export default _createPyodideModule; export { _createPyodideModule };",
        True,
    ),
]


class BundleError(Exception):
    """Any failure building the bundle (exit status 1)."""


class VersionMismatch(BundleError):
    """workerd expects a different Pyodide than node_modules has (exit status 2)."""


def patch_pyodide_asm(text: str) -> tuple[str, dict[str, int]]:
    """Apply PATCHES in order; returns the text and how often each matched."""
    counts: dict[str, int] = {}
    missing = []
    for p in PATCHES:
        n = text.count(p.old)
        counts[p.old] = n
        if n == 0 and p.required:
            missing.append(p.old)
        text = text.replace(p.old, p.new)
    if missing:
        raise BundleError(
            "pyodide.asm.mjs does not contain the text these required patches replace: "
            + ", ".join(repr(m) for m in missing)
            + ". The pyodide package changed shape: compare with workerd's src/pyodide/helpers.bzl "
            "for the workerd version in node_modules."
        )
    return text, counts


# ---------------------------------------------------------------------------
# Versions
# ---------------------------------------------------------------------------
_DEV_MARKER = b"pythonWorkersDevPyodide\x00"
_VERSION_RE = re.compile(rb"(\d+\.\d+\.\d+(?:[ab]\d+|\.dev\d+|rc\d+)?)\x00")


def workerd_expected_pyodide_version(workerd: Path) -> str:
    """The Pyodide version workerd's "dev" bundle must be built from.

    In workerd's release table the entry named ``pythonWorkersDevPyodide`` is
    followed by a NUL and the real Pyodide version it was built against.
    """
    workerd = Path(workerd)
    if not workerd.is_file():
        raise BundleError(f"workerd binary not found: {workerd} (did `npm ci` install @cloudflare/workerd-linux-64?)")
    with open(workerd, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        pos = m.find(_DEV_MARKER)
        found = []
        while pos != -1:
            start = pos + len(_DEV_MARKER)
            match = _VERSION_RE.match(m[start : start + 32])
            if match:
                found.append(match.group(1).decode())
            pos = m.find(_DEV_MARKER, pos + 1)
    if not found:
        raise BundleError(
            f"could not find the Pyodide version near 'pythonWorkersDevPyodide' in {workerd}; "
            "this workerd may have changed how it names the dev bundle"
        )
    if len(set(found)) > 1:
        raise BundleError(f"{workerd} names several dev Pyodide versions: {sorted(set(found))}")
    return found[0]


def npm_pyodide_version(pyodide_dir: Path) -> str:
    pkg = Path(pyodide_dir) / "package.json"
    if not pkg.is_file():
        raise BundleError(f"{pkg} not found (run `npm ci`)")
    return json.loads(pkg.read_text())["version"]


def workerd_package_version(workerd: Path) -> str:
    pkg = Path(workerd).resolve().parent.parent / "package.json"
    try:
        return json.loads(pkg.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "unknown"


def check_versions(workerd: Path, pyodide_dir: Path) -> str:
    expected = workerd_expected_pyodide_version(workerd)
    have = npm_pyodide_version(pyodide_dir)
    if expected != have:
        raise VersionMismatch(
            f"Pyodide version mismatch: workerd {workerd_package_version(workerd)} ({workerd}) "
            f"expects Pyodide {expected} for its dev bundle, but node_modules/pyodide is {have}.\n"
            f'Fix: set "pyodide": "{expected}" in package.json devDependencies and run '
            f"`npm install` to refresh package-lock.json (or pin a wrangler whose workerd "
            f"expects Pyodide {have})."
        )
    return expected


# ---------------------------------------------------------------------------
# Cap'n Proto encoding (single segment, no far pointers)
# ---------------------------------------------------------------------------
def _words(nbytes: int) -> int:
    return (nbytes + 7) // 8


def _struct_ptr(offset: int, data_words: int, ptr_words: int) -> bytes:
    lo = ((offset << 2) & 0xFFFFFFFF) | 0  # kind 0 = struct
    return struct.pack("<IHH", lo, data_words, ptr_words)


def _list_ptr(offset: int, elem_size: int, count: int) -> bytes:
    lo = ((offset << 2) & 0xFFFFFFFF) | 1  # kind 1 = list
    if count >= 1 << 29:
        raise BundleError("list too long for a Cap'n Proto list pointer")
    return struct.pack("<II", lo, elem_size | (count << 3))


_ELEM_BYTE = 2
_ELEM_COMPOSITE = 7


def encode_bundle(modules: list[tuple[str, str, bytes]], module_type: str = "internal") -> bytes:
    """Encode a Bundle message. ``modules``: (name, kind in src|wasm|data, content)."""
    n = len(modules)
    elem_words = MODULE_DATA_WORDS + MODULE_PTR_WORDS
    # Word layout: 0 root ptr | 1 Bundle (0 data, 1 ptr) | 2 list tag | 3.. elements | blobs
    first_elem = 3
    blobs_start = first_elem + n * elem_words
    blobs: list[bytes] = []
    blob_word = blobs_start
    seg = bytearray(blobs_start * 8)
    seg[0:8] = _struct_ptr(0, 0, 1)
    seg[8:16] = _list_ptr(2 - (1 + 1), _ELEM_COMPOSITE, n * elem_words)
    seg[16:24] = _struct_ptr(n, MODULE_DATA_WORDS, MODULE_PTR_WORDS)  # tag: offset field = count
    tcode = MODULE_TYPES[module_type]
    for i, (name, kind, content) in enumerate(modules):
        if kind not in ("src", "wasm", "data"):
            raise BundleError(f"unsupported module kind {kind!r}")
        base = first_elem + i * elem_words
        seg[base * 8 : base * 8 + 8] = struct.pack("<HHI", tcode, UNION_KINDS[kind], 0)
        ptr0 = base + MODULE_DATA_WORDS
        name_bytes = name.encode("utf-8") + b"\x00"  # Text: NUL-terminated byte list
        for slot, payload in ((0, name_bytes), (1, bytes(content))):
            pw = ptr0 + slot
            seg[pw * 8 : pw * 8 + 8] = _list_ptr(blob_word - (pw + 1), _ELEM_BYTE, len(payload))
            padded = payload + b"\x00" * (_words(len(payload)) * 8 - len(payload))
            blobs.append(padded)
            blob_word += _words(len(payload))
        # pointers 2 (tsDeclaration) and 3 (compileCache) stay null
    body = bytes(seg) + b"".join(blobs)
    assert len(body) == blob_word * 8
    nwords = len(body) // 8
    if nwords >= 1 << 32:
        raise BundleError("message too large for one segment")
    return struct.pack("<II", 0, nwords) + body


# ---------------------------------------------------------------------------
# Cap'n Proto decoding (enough to verify what we and `capnp eval` write)
# ---------------------------------------------------------------------------
@dataclass
class DecodedModule:
    name: str
    kind: str
    type: str
    content: bytes
    ts_declaration: bytes | None
    compile_cache: bytes | None


class _Reader:
    def __init__(self, buf: bytes):
        buf = memoryview(buf)
        (nseg_minus_1,) = struct.unpack_from("<I", buf, 0)
        nseg = nseg_minus_1 + 1
        sizes = struct.unpack_from(f"<{nseg}I", buf, 4)
        header = 4 + 4 * nseg
        header += (8 - header % 8) % 8
        if nseg != 1:
            raise BundleError(f"expected a single-segment message, got {nseg} segments")
        self.seg = buf[header : header + sizes[0] * 8]
        if len(self.seg) != sizes[0] * 8:
            raise BundleError("message shorter than its segment table says")
        self.nwords = sizes[0]

    def word(self, i: int) -> int:
        if not 0 <= i < self.nwords:
            raise BundleError(f"pointer target {i} out of bounds")
        return struct.unpack_from("<Q", self.seg, i * 8)[0]

    @staticmethod
    def _offset(w: int) -> int:
        off = (w & 0xFFFFFFFF) >> 2
        if off & (1 << 29):
            off -= 1 << 30
        return off

    def struct_at(self, ptr_index: int) -> tuple[int, int, int] | None:
        w = self.word(ptr_index)
        if w == 0:
            return None
        if w & 3 != 0:
            raise BundleError(f"word {ptr_index} is not a struct pointer")
        start = ptr_index + 1 + self._offset(w)
        return start, (w >> 32) & 0xFFFF, (w >> 48) & 0xFFFF

    def bytes_at(self, ptr_index: int) -> bytes | None:
        w = self.word(ptr_index)
        if w == 0:
            return None
        if w & 3 != 1 or (w >> 32) & 7 != _ELEM_BYTE:
            raise BundleError(f"word {ptr_index} is not a byte-list pointer")
        start = ptr_index + 1 + self._offset(w)
        count = w >> 35
        if start * 8 + count > len(self.seg):
            raise BundleError("byte list out of bounds")
        return bytes(self.seg[start * 8 : start * 8 + count])

    def composite_list_at(self, ptr_index: int) -> tuple[int, int, int, int]:
        w = self.word(ptr_index)
        if w & 3 != 1 or (w >> 32) & 7 != _ELEM_COMPOSITE:
            raise BundleError(f"word {ptr_index} is not a composite-list pointer")
        tag_index = ptr_index + 1 + self._offset(w)
        total_words = w >> 35
        tag = self.word(tag_index)
        count = (tag & 0xFFFFFFFF) >> 2
        dw, pw = (tag >> 32) & 0xFFFF, (tag >> 48) & 0xFFFF
        if count * (dw + pw) != total_words:
            raise BundleError("composite list tag disagrees with the list pointer's word count")
        return tag_index + 1, count, dw, pw


def decode_bundle(buf: bytes) -> list[DecodedModule]:
    r = _Reader(buf)
    root = r.struct_at(0)
    if root is None:
        raise BundleError("null root")
    bstart, bdw, bpw = root
    if bpw < 1:
        raise BundleError("Bundle has no pointer section")
    first, count, dw, pw = r.composite_list_at(bstart + bdw)
    if dw < 1 or pw < 2:
        raise BundleError(f"Module elements too small ({dw} data words, {pw} pointers)")
    out = []
    for i in range(count):
        base = first + i * (dw + pw)
        data = r.word(base)
        tcode, disc = data & 0xFFFF, (data >> 16) & 0xFFFF
        pbase = base + dw
        name = r.bytes_at(pbase)
        if name is None or not name.endswith(b"\x00"):
            raise BundleError(f"module {i}: name is not NUL-terminated Text")
        kind = UNION_KIND_NAMES.get(disc, f"unknown({disc})")
        content = r.bytes_at(pbase + 1) or b""
        if kind == "json":
            content = content[:-1]
        out.append(
            DecodedModule(
                name=name[:-1].decode("utf-8"),
                kind=kind,
                type=MODULE_TYPE_NAMES.get(tcode, f"unknown({tcode})"),
                content=content,
                ts_declaration=r.bytes_at(pbase + 2) if pw > 2 else None,
                compile_cache=r.bytes_at(pbase + 3) if pw > 3 else None,
            )
        )
    return out


# ---------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------
def bundle_modules(pyodide_dir: Path) -> list[tuple[str, str, bytes]]:
    mods = []
    for name, kind, fname, patched in BUNDLE_FILES:
        path = Path(pyodide_dir) / fname
        if not path.is_file():
            raise BundleError(f"{path} not found in the pyodide npm package")
        content = path.read_bytes()
        if patched:
            text, _ = patch_pyodide_asm(content.decode("utf-8"))
            content = text.encode("utf-8")
        mods.append((name, kind, content))
    return mods


def verify_bundle(buf: bytes, expected: list[tuple[str, str, bytes]] | None = None) -> list[DecodedModule]:
    mods = decode_bundle(buf)
    want = [(n, k) for n, k, _, _ in BUNDLE_FILES]
    got = [(m.name, m.kind) for m in mods]
    if got != want:
        raise BundleError(f"bundle holds {got}, expected {want}")
    for m in mods:
        if m.type != "internal":
            raise BundleError(f"{m.name}: type {m.type}, expected internal")
    if expected is not None:
        for m, (_, _, content) in zip(mods, expected):
            if m.content != content:
                raise BundleError(f"{m.name}: decoded content differs from what was encoded")
    asm = mods[0].content.decode("utf-8")
    if 'from "pyodide-internal:builtin_wrappers"' not in asm or "new WebAssembly.Module" in asm:
        raise BundleError("pyodide.asm module is not patched")
    if not mods[1].content.startswith(b"\x00asm"):
        raise BundleError("pyodide.asm.wasm module is not WebAssembly")
    if not mods[2].content.startswith(b"PK"):
        raise BundleError("python_stdlib.zip module is not a zip file")
    return mods


def _inputs_digest(pyodide_dir: Path, expected_version: str) -> str:
    h = hashlib.sha256()
    h.update(Path(__file__).read_bytes())
    h.update(expected_version.encode())
    for _, _, fname, _ in BUNDLE_FILES:
        h.update(fname.encode())
        h.update((Path(pyodide_dir) / fname).read_bytes())
    return h.hexdigest()


def build(pyodide_dir: Path, workerd: Path, out: Path, force: bool = False, log=print) -> bool:
    """Build ``out`` unless its stamp says the inputs are unchanged. Returns True if built."""
    version = check_versions(workerd, pyodide_dir)
    stamp = Path(str(out) + ".stamp")
    digest = _inputs_digest(pyodide_dir, version)
    if not force and out.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        log(f"pyodide dev bundle up to date ({out})")
        return False
    mods = bundle_modules(pyodide_dir)
    buf = encode_bundle(mods)
    verify_bundle(buf, mods)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(buf)
    tmp.replace(out)
    stamp.write_text(digest + "\n")
    log(f"built {out} ({len(buf) / 1e6:.1f} MB, Pyodide {version})")
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pyodide-dir", type=Path, default=DEFAULT_PYODIDE_DIR)
    ap.add_argument("--workerd", type=Path, default=DEFAULT_WORKERD)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--force", action="store_true", help="rebuild even if the stamp matches")
    ap.add_argument("--check-version", action="store_true", help="only compare the Pyodide versions")
    ap.add_argument("--verify", type=Path, metavar="FILE", help="decode FILE and list its modules")
    args = ap.parse_args(argv)
    try:
        if args.verify:
            for m in verify_bundle(args.verify.read_bytes()):
                print(f"{m.type:8} {m.kind:4} {len(m.content):>10}  {m.name}")
            return 0
        if args.check_version:
            print(check_versions(args.workerd, args.pyodide_dir))
            return 0
        build(args.pyodide_dir, args.workerd, args.out, force=args.force)
        return 0
    except VersionMismatch as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BundleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
