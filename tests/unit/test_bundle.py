"""scripts/build_pyodide_bundle.py: the hand-written Cap'n Proto encoder, the
pyodide.asm.mjs patches, the workerd/pyodide version check, and what
scripts/setup leaves behind (bundle, workerd wrapper, python_modules,
production wrangler.toml)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_builder():
    path = ROOT / "scripts" / "build_pyodide_bundle.py"
    spec = importlib.util.spec_from_file_location("build_pyodide_bundle", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses need the module registered
    spec.loader.exec_module(mod)
    return mod


bpb = _load_builder()

# `capnp eval -b` (Debian capnproto 0.9.2) of modules.capnp's Bundle with
# (name="a", src="xy", type=internal), (name="b", wasm="z", type=internal),
# (name="c", data="q", type=internal).
CAPNP_REFERENCE_HEX = (
    "00000000180000000000000000000100010000007f0000000c00000001000400"
    "0200000000000000350000001200000035000000120000000000000000000000"
    "000000000000000002000100000000002900000012000000290000000a000000"
    "0000000000000000000000000000000002000200000000001d00000012000000"
    "1d0000000a000000000000000000000000000000000000006100000000000000"
    "787900000000000062000000000000007a000000000000006300000000000000"
    "7100000000000000"
)
SMALL = [("a", "src", b"xy"), ("b", "wasm", b"z"), ("c", "data", b"q")]

PYODIDE_DIR = ROOT / "node_modules" / "pyodide"


@pytest.fixture(scope="module")
def real_bundle(tmp_path_factory):
    """A bundle built from node_modules/pyodide (installed by scripts/setup)."""
    out = tmp_path_factory.mktemp("bundle") / "pyodide_dev.capnp.bin"
    assert bpb.build(PYODIDE_DIR, bpb.DEFAULT_WORKERD, out, force=True, log=lambda *_: None)
    return out.read_bytes()


# --------------------------------------------------------------------------- encoding
def test_encoding_is_byte_identical_to_capnp_tool():
    assert bpb.encode_bundle(SMALL).hex() == CAPNP_REFERENCE_HEX


def test_decode_capnp_tool_output():
    mods = bpb.decode_bundle(bytes.fromhex(CAPNP_REFERENCE_HEX))
    assert [(m.name, m.kind, m.type, m.content) for m in mods] == [
        ("a", "src", "internal", b"xy"),
        ("b", "wasm", "internal", b"z"),
        ("c", "data", "internal", b"q"),
    ]
    assert all(m.ts_declaration is None and m.compile_cache is None for m in mods)


@pytest.mark.parametrize("sizes", [(0, 1, 7), (8, 9, 15), (16, 1000, 4097)])
def test_round_trip_with_awkward_sizes(sizes):
    mods = [(f"pyodideRuntime-internal:m{i}", kind, bytes(range(256)) * (n // 256) + b"x" * (n % 256))
            for i, (kind, n) in enumerate(zip(("src", "wasm", "data"), sizes))]
    buf = bpb.encode_bundle(mods)
    assert len(buf) % 8 == 0
    decoded = bpb.decode_bundle(buf)
    assert [(m.name, m.kind, m.content) for m in decoded] == mods


def test_decode_rejects_garbage():
    with pytest.raises(bpb.BundleError):
        bpb.decode_bundle(b"\x00\x00\x00\x00\x02\x00\x00\x00" + b"\xff" * 16)
    with pytest.raises(bpb.BundleError):
        bpb.decode_bundle(bytes.fromhex(CAPNP_REFERENCE_HEX)[:-24])  # truncated


# --------------------------------------------------------------------------- real bundle
def test_real_bundle_has_three_internal_modules(real_bundle):
    mods = bpb.decode_bundle(real_bundle)
    assert [(m.name, m.kind, m.type) for m in mods] == [
        ("pyodideRuntime-internal:pyodide.asm", "src", "internal"),
        ("pyodideRuntime-internal:pyodide.asm.wasm", "wasm", "internal"),
        ("pyodideRuntime-internal:python_stdlib.zip", "data", "internal"),
    ]
    assert mods[1].content == (PYODIDE_DIR / "pyodide.asm.wasm").read_bytes()
    assert mods[2].content == (PYODIDE_DIR / "python_stdlib.zip").read_bytes()


def test_real_bundle_asm_is_patched(real_bundle):
    asm = bpb.decode_bundle(real_bundle)[0].content.decode("utf-8")
    original = (PYODIDE_DIR / "pyodide.asm.mjs").read_text(encoding="utf-8")
    assert asm != original
    for gone in ("new WebAssembly.Module", "WebAssembly.instantiate", "Date.now",
                 "crypto.getRandomValues(", "eval(func)", "eval(data)", "eval(UTF8ToString(ptr))"):
        assert gone not in asm, gone
    # reportUndefinedSymbols() survives only inside the prelude's helper.
    assert asm.count("reportUndefinedSymbols()") == 1
    assert "Module.reportUndefinedSymbols();" in asm
    for present in (
        'from "pyodide-internal:builtin_wrappers"',
        "function reportUndefinedSymbolsPatched(Module)",
        "reportUndefinedSymbolsPatched(Module)",
        "newWasmModule", "wasmInstantiate", "monotonicDateNow", "getRandomValues(Module, ",
        "Internal Emscripten code tried to eval",
        "patchedLoadLibData(Module, libName, flags.rpath)",
        "function dummiedOutOrigLoadLibData(){",
        "Module.getMemoryPatched(Module, libName, ",
        "export default _createPyodideModule; export { _createPyodideModule };",
    ):
        assert present in asm, present
    assert asm.count("export default") == 1


def test_setup_bundle_is_current(real_bundle):
    """The bundle scripts/setup left in .cache equals a fresh build."""
    cached = bpb.DEFAULT_OUT
    assert cached.is_file(), "run scripts/setup"
    assert cached.read_bytes() == real_bundle
    bpb.verify_bundle(cached.read_bytes())


def test_build_skips_when_inputs_unchanged(tmp_path):
    out = tmp_path / "b.bin"
    assert bpb.build(PYODIDE_DIR, bpb.DEFAULT_WORKERD, out, log=lambda *_: None) is True
    mtime = out.stat().st_mtime_ns
    assert bpb.build(PYODIDE_DIR, bpb.DEFAULT_WORKERD, out, log=lambda *_: None) is False
    assert out.stat().st_mtime_ns == mtime


# --------------------------------------------------------------------------- patches
def test_missing_required_patch_fails_loudly():
    with pytest.raises(bpb.BundleError) as e:
        bpb.patch_pyodide_asm("var x = 1;")
    assert "function loadLibData(){" in str(e.value)
    assert "export default _createPyodideModule;" in str(e.value)


def test_optional_patches_may_be_absent():
    text = "".join(p.old + "\n" for p in bpb.PATCHES if p.required)
    patched, counts = bpb.patch_pyodide_asm(text)
    assert counts["function _PyEM_CountFuncParams(func){"] == 0
    assert patched.rstrip().endswith("export { _createPyodideModule };")


# --------------------------------------------------------------------------- versions
def _fake_workerd(tmp_path: Path, version: bytes) -> Path:
    path = tmp_path / "workerd"
    path.write_bytes(b"\x7fELF" + b"\x00" * 100 + b"pythonWorkers314\x00" + b"314.0.1\x00"
                     + b"dev\x00" * 3 + b"pythonWorkersDevPyodide\x00" + version + b"\x00sha256-x\x00" + b"\x00" * 64)
    return path


def _fake_pyodide(tmp_path: Path, version: str) -> Path:
    d = tmp_path / "pyodide"
    d.mkdir()
    (d / "package.json").write_text(json.dumps({"name": "pyodide", "version": version}))
    return d


def test_version_read_from_workerd(tmp_path):
    assert bpb.workerd_expected_pyodide_version(_fake_workerd(tmp_path, b"314.0.9")) == "314.0.9"


def test_version_mismatch_names_both_versions(tmp_path, capsys):
    workerd = _fake_workerd(tmp_path, b"314.0.9")
    pyodide = _fake_pyodide(tmp_path, "314.0.6")
    with pytest.raises(bpb.VersionMismatch) as e:
        bpb.check_versions(workerd, pyodide)
    msg = str(e.value)
    assert "314.0.9" in msg and "314.0.6" in msg and "package.json" in msg
    rc = bpb.main(["--workerd", str(workerd), "--pyodide-dir", str(pyodide), "--out", str(tmp_path / "o.bin")])
    assert rc == 2
    assert "314.0.9" in capsys.readouterr().err
    assert not (tmp_path / "o.bin").exists()


def test_version_match_passes(tmp_path):
    assert bpb.check_versions(_fake_workerd(tmp_path, b"314.0.6"), _fake_pyodide(tmp_path, "314.0.6")) == "314.0.6"


def test_version_marker_missing(tmp_path):
    path = tmp_path / "workerd"
    path.write_bytes(b"\x7fELF nothing here")
    with pytest.raises(bpb.BundleError, match="pythonWorkersDevPyodide"):
        bpb.workerd_expected_pyodide_version(path)


def test_installed_workerd_matches_installed_pyodide():
    expected = bpb.workerd_expected_pyodide_version(bpb.DEFAULT_WORKERD)
    assert expected == bpb.npm_pyodide_version(PYODIDE_DIR)
    pkg = json.loads((ROOT / "package.json").read_text())
    assert pkg["devDependencies"]["pyodide"] == expected


# --------------------------------------------------------------------------- setup outputs
def test_workerd_wrapper_runs_workerd_with_the_bundle_dir():
    wrapper = ROOT / ".cache" / "workerd-wrapper"
    lines = wrapper.read_text().strip().splitlines()
    assert lines[0] == "#!/bin/sh" and len(lines) == 2
    # Relative to the wrapper: .cache/../node_modules/... and .cache/pyodide
    assert str(bpb.DEFAULT_WORKERD.relative_to(ROOT)) in lines[1]
    assert '--pyodide-bundle-disk-cache-dir="$d/pyodide"' in lines[1]
    assert bpb.DEFAULT_OUT.parent == wrapper.parent / "pyodide"
    out = subprocess.run([str(wrapper), "--version"], capture_output=True, text=True, timeout=30, cwd="/")
    assert out.returncode == 0 and out.stdout.startswith("workerd "), out


def test_python_modules_is_pure_python():
    pm = ROOT / "python_modules"
    assert (pm / "jinja2" / "__init__.py").is_file()
    assert (pm / "markupsafe" / "__init__.py").is_file()
    assert (pm / "workers" / "__init__.py").is_file()
    compiled = [p for p in pm.rglob("*") if p.suffix in (".so", ".pyd", ".dylib") or ".so." in p.name]
    assert compiled == []


def test_python_modules_follow_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    installed = set()
    for p in (ROOT / "python_modules").glob("*.dist-info"):
        name, version = p.name.removesuffix(".dist-info").rsplit("-", 1)
        installed.add(f"{name.lower().replace('_', '-')}=={version}")
    assert {d.lower() for d in deps} == installed


def test_wrangler_toml_is_production_config():
    cfg = tomllib.loads((ROOT / "wrangler.toml").read_text())
    assert cfg["main"] == "src/entry.py"
    assert cfg["compatibility_flags"] == ["python_workers"]
    assert cfg["compatibility_date"] >= "2026-09-08"  # Python 3.14 / Pyodide 314
    assert cfg["durable_objects"]["bindings"] == [
        {"name": "TRACKER", "class_name": "LighterTracker"},
        {"name": "PARADEX_TRACKER", "class_name": "ParadexTracker"},
        {"name": "HUB", "class_name": "DashboardHub"},
    ]
    assert cfg["migrations"][0]["new_sqlite_classes"] == ["LighterTracker"]
    assert cfg["migrations"][1] == {"tag": "v2", "new_sqlite_classes": ["DashboardHub"]}
    assert cfg["migrations"][2] == {"tag": "v3", "new_sqlite_classes": ["ParadexTracker"]}
    # Staging binds the same classes under the same names.
    assert cfg["env"]["staging"]["durable_objects"]["bindings"] == cfg["durable_objects"]["bindings"]
    assert cfg["d1_databases"][0]["binding"] == "DB"
    assert cfg["assets"]["binding"] == "ASSETS"
    assert set(cfg["vars"]) == {
        "LIGHTER_API_URL", "LIGHTER_WS_URL", "WINDOW_SECONDS", "FLUSH_GRACE_MS",
        "SNAPSHOT_RETENTION_MINUTES", "MINUTE_RETENTION_HOURS", "HOUR_RETENTION_DAYS", "STALE_FEED_SECONDS",
        "SHARDS", "MARKET_REFRESH_SECONDS", "ENABLED_EXCHANGES", "PARADEX_API_URL", "PARADEX_WS_URL",
        "PARADEX_SHARDS", "PARADEX_ASSET_KINDS", "PARADEX_BOOK_CHANNEL", "LIVE_PUSH_SECONDS",
    }
    assert cfg["vars"]["ENABLED_EXCHANGES"] == "lighter"  # an existing deployment is unchanged until opted in
    assert all(isinstance(v, str) for v in cfg["vars"].values())
    assert "ADMIN_TOKEN" not in cfg["vars"]  # a secret, never committed
