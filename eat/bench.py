"""``make bench``: speed and memory benchmarks, one JSON file per benchmark under ``reports/bench/``.

Targets live here, not in timed tests. Each benchmark records the machine it
ran on so numbers from a laptop CPU and a lent GPU are never mixed up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path

from eat.config import load_params
from eat.io.atomic import write_text_atomic


def _machine() -> dict:
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def bench_synth(params_path: str) -> dict:
    """Synthetic-data generation: render and encode throughput of one default-profile MEAD clip."""
    import tempfile

    from eat.io.media import write_audio, write_video
    from eat.synth.clip import render_clip
    from eat.synth.generate import plan_clips

    params = load_params(params_path)
    spec = next(s for s in plan_clips(params) if s.dataset == "MEAD" and s.emotion == "happy")
    render_clip(spec, params.seed)  # warm-up: imports, eSpeak library load
    t0 = time.perf_counter()
    clip = render_clip(spec, params.seed)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_video(Path(tmp) / "v.mp4", clip.frames, spec.fps, spec.width, spec.height, params.synth.crf)
        write_audio(Path(tmp) / "a.m4a", clip.samples, spec.audio_rate)
    t2 = time.perf_counter()
    n = len(clip.frames)
    return {
        "clip": spec.clip_id, "frames": n, "frame_size": [spec.width, spec.height],
        "render_fps": round(n / (t1 - t0), 1), "encode_fps": round(n / (t2 - t1), 1),
        "end_to_end_fps": round(n / (t2 - t0), 1),
    }


BENCHMARKS: dict[str, Callable[[str], dict]] = {"synth": bench_synth}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="reports/bench")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("names", nargs="*", default=list(BENCHMARKS), help=f"any of {', '.join(BENCHMARKS)}")
    args = parser.parse_args()
    machine = _machine()
    for name in args.names:
        result = BENCHMARKS[name](args.params)
        result |= {"benchmark": name, "machine": machine,
                   "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
        path = Path(args.out) / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(result, indent=2) + "\n")
        print(f"{name}: {json.dumps({k: v for k, v in result.items() if k != 'machine'})}")


if __name__ == "__main__":
    main()
