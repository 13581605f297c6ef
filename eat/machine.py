"""The machine a number was measured on: its CPU's instruction-set class and core count.

Model steps on a CPU differ 3–5× between instruction-set classes (AVX2 only, AVX512-BF16, AMX), so every
timing the project records carries this class (benchmarks, ``reports/timings.json``, the report's provenance).
"""

from __future__ import annotations

import functools
import os


@functools.cache
def cpu_kind() -> str:
    """The instruction-set class that sets a CPU step's speed: AMX, AVX512-BF16, AVX512, AVX2 or other.

    Read once per process: every video write asks (:func:`eat.io.media.x264_args`)."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = set(next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), []))
    except OSError:
        return "unknown"
    for kind, flag in (("AMX", "amx_bf16"), ("AVX512-BF16", "avx512_bf16"), ("AVX512", "avx512f"), ("AVX2", "avx2")):
        if flag in flags:
            return kind
    return "other"


def describe() -> str:
    """E.g. ``"2-core AVX512-BF16 CPU"``."""
    return f"{os.cpu_count()}-core {cpu_kind()} CPU"
