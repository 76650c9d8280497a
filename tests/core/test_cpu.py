"""CPU feature detection and the ISA oneDNN reports."""

from __future__ import annotations

import os
import subprocess
import sys

from neurosens.core.cpu import cpu_flags, cpu_model, onednn_isa, vector_extensions

CPUINFO = """processor\t: 0
model name\t: Test CPU @ 2.0GHz
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_bf16 amx_tile amx_bf16
"""


def test_flags_and_extensions_from_cpuinfo(tmp_path):
    f = tmp_path / "cpuinfo"
    f.write_text(CPUINFO)
    flags = cpu_flags(f)
    assert {"avx2", "avx512f", "amx_tile"} <= flags and "avx" in flags
    assert cpu_model(f) == "Test CPU @ 2.0GHz"
    assert vector_extensions(flags) == {"AVX2": True, "AVX-512": True, "AMX": True, "bf16": True}
    assert vector_extensions(frozenset({"avx", "avx2"})) == {
        "AVX2": True, "AVX-512": False, "AMX": False, "bf16": False,
    }  # fmt: skip
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_onednn_isa_is_read_from_onednn_itself():
    isa = onednn_isa()
    assert isa.startswith("Intel") and "unknown" not in isa
    if not vector_extensions()["AVX-512"]:
        assert "AVX-512" not in isa


def test_onednn_isa_honours_the_isa_cap():
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    code = "from neurosens.core.cpu import onednn_isa; print(onednn_isa())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "AVX2" in out and "AVX-512" not in out
