"""Probe: which step of a synthetic clip depends on the CPU's code paths (docs/determinism.md).

    python docs/probes/cross_machine/synth_cpu_paths.py --clips 4 > default.txt
    OPENBLAS_CORETYPE=Haswell python docs/probes/cross_machine/synth_cpu_paths.py --clips 4 > haswell.txt
    diff default.txt haswell.txt

Renders the first ``--clips`` clips of each dataset of params.yaml's plan exactly as the synth stage does
(:func:`eat.synth.clip.render_clip`, :func:`eat.io.media.write_video` / ``write_audio``) and prints, per clip, the
MD5 of each intermediate: the float landmarks of the frame table, the RGB frames, the audio samples, and the
encoded files. Run it under environment variables that switch a library's CPU dispatch (OpenBLAS's
``OPENBLAS_CORETYPE``, NumPy's ``NPY_DISABLE_CPU_FEATURES``, OpenCV's ``OPENCV_CPU_DISABLE``) and diff the outputs:
the first column that changes is the step that depends on the CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path

import numpy as np
import threadpoolctl

from eat.config import load_params
from eat.io.media import write_audio, write_video
from eat.synth.clip import render_clip
from eat.synth.generate import plan_clips


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()[:12]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--clips", type=int, default=4, help="clips of each dataset")
    args = parser.parse_args()
    params = load_params(args.params)
    blas = [i.get("architecture") for i in threadpoolctl.threadpool_info() if i.get("internal_api") == "openblas"]
    print(f"# openblas core: {blas}")
    print("clip landmarks frames samples video audio")
    specs = plan_clips(params)
    chosen = [s for d in ("MEAD", "LRW", "VoxCeleb2") for s in [s for s in specs if s.dataset == d][:args.clips]]
    with tempfile.TemporaryDirectory() as tmp:
        for spec in chosen:
            clip = render_clip(spec, params.seed)
            landmarks = np.concatenate([np.asarray(v, np.float64).ravel() for v in clip.frame_table.landmarks])
            video, audio = Path(tmp) / "v.mp4", Path(tmp) / "a.m4a"
            write_video(video, clip.frames, spec.fps, spec.width, spec.height, params.synth.crf,
                        preset=params.synth.preset)
            write_audio(audio, clip.samples, spec.audio_rate)
            print(spec.clip_id, _md5(landmarks.tobytes()), _md5(np.stack(clip.frames).tobytes()),
                  _md5(np.asarray(clip.samples).tobytes()), _md5(video.read_bytes()), _md5(audio.read_bytes()),
                  flush=True)


if __name__ == "__main__":
    main()
