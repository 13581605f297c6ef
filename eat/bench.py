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
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2  # noqa: F401  (before decord: loaded first, decord's zlib breaks OpenCV's PNG writer)
import decord
import pandas as pd
import torch

from eat.config import load_params
from eat.io.atomic import write_text_atomic
from eat.io.media import write_audio, write_video
from eat.parallel import map_clips
from eat.paths import BENCH, POSE_TABLE
from eat.preprocess.stages import clip_work
from eat.ray_runtime import ray_session
from eat.synth.clip import render_clip
from eat.synth.generate import plan_clips


def _machine() -> dict:
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def bench_synth(params_path: str) -> dict:
    """Synthetic-data generation: render and encode throughput of one default-profile MEAD clip."""
    params = load_params(params_path)
    spec = next(s for s in plan_clips(params) if s.dataset == "MEAD" and s.emotion == "happy")
    render_clip(spec, params.seed)  # warm-up: imports, eSpeak library load
    t0 = time.perf_counter()
    clip = render_clip(spec, params.seed)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_video(Path(tmp) / "v.mp4", clip.frames, spec.fps, spec.width, spec.height, params.synth.crf,
                    preset=params.synth.preset)
        write_audio(Path(tmp) / "a.m4a", clip.samples, spec.audio_rate)
    t2 = time.perf_counter()
    n = len(clip.frames)
    return {
        "clip": spec.clip_id, "frames": n, "frame_size": [spec.width, spec.height],
        "render_fps": round(n / (t1 - t0), 1), "encode_fps": round(n / (t2 - t1), 1),
        "end_to_end_fps": round(n / (t2 - t0), 1),
    }


def bench_preprocess(params_path: str, n_clips: int = 24) -> dict:
    """Frames/s of each per-clip preprocessing stage with 1 and 2 workers, and decord's raw decode as the ceiling.

    Runs on the first ``n_clips`` MEAD clips that ``make repro`` already preprocessed; the
    2-worker runs share one Ray session started (and warmed up) before timing.
    """
    params = load_params(params_path)
    table = pd.read_parquet(POSE_TABLE)
    rows = table[table.dataset == "MEAD"].head(n_clips).to_dict("records")
    frames = sum(r["n_frames"] for r in rows)
    t0 = time.perf_counter()
    for r in rows:
        reader = decord.VideoReader(r["video_norm"], ctx=decord.cpu(0))
        reader.get_batch(range(len(reader)))
    result: dict = {"clips": len(rows), "frames": frames,
                    "decord_decode_fps": round(frames / (time.perf_counter() - t0), 1)}
    with tempfile.TemporaryDirectory() as tmp, ray_session(address="local", num_cpus=2):
        map_clips(len, [[0]] * 4, desc="warm up Ray", workers=2, address="local")  # Ray start-up is not timed
        stages = {name: partial(work, out_dir=Path(tmp)) for name, work in clip_work(params).items()}
        for name, work in stages.items():
            for workers in (1, 2):
                start = time.perf_counter()
                outcomes = map_clips(work, rows, desc=f"bench {name}", workers=workers, address="local")
                if any(o.error for o in outcomes):
                    raise RuntimeError(f"{name}: {next(o.error for o in outcomes if o.error)}")
                result[f"{name}_fps_{workers}_workers"] = round(frames / (time.perf_counter() - start), 1)
    return result


# Local imports: the three below import their benchmark when run: each pulls its own networks (1-2.5 s and their
# memory), which `make bench synth` should neither wait for nor count in its peak RSS.
def bench_audio(params_path: str) -> dict:
    from eat.features.bench import bench_audio_features  # local: see above

    return bench_audio_features(params_path)


def bench_latent(params_path: str) -> dict:
    from eat.latent.bench import bench_latent as run  # local: see above

    return run(params_path)


def bench_generate(params_path: str) -> dict:
    from eat.generate.bench import bench_generate as run  # local: see above

    return run(params_path)


BENCHMARKS: dict[str, Callable[[str], dict]] = {"synth": bench_synth, "preprocess": bench_preprocess,
                                                "audio_features": bench_audio, "latent": bench_latent,
                                                "generate": bench_generate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BENCH)
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
