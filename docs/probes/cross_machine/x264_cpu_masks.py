"""Does libx264 write the same bytes on every CPU kind? Encode clips with x264's own CPU mask set to each kind.

ffmpeg's ``-cpuflags`` does not reach libx264, which detects the CPU itself; x264's ``asm`` option takes the
instruction sets to use instead. This re-encodes decoded frames of a few embedded clips, as the synth
(640x360 and 224², yuv420p, crf 18) and crop_align (256², yuv444p, crf 12) stages do, under the masks of an
AVX512 machine (auto, on this one), an AVX2-only machine, an SSSE3 machine, SSE2 only and plain C, and prints
one MD5 per (clip, setting, mask), then how many clips differ between the masks. Run from the repository root of
a checkout with data:

    .venv/bin/python docs/probes/cross_machine/x264_cpu_masks.py --every 40 --masks "auto (this CPU),AVX2-only CPU"

``--x264-params mbtree=0`` adds options to every encode (here: without the macroblock tree, the one float SIMD
routine of x264's analysis, whose AVX2 code divides by ``rcpps``, an estimate AMD and Intel round differently).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import tempfile
from pathlib import Path

from eat.io.media import PORTABLE, ffmpeg_exe
from eat.io.video import read_frames

MASKS = {
    "auto (this CPU)": None,
    "AVX2-only CPU": "MMX2,SSE,SSE2,SSE3,SSSE3,SSE4.1,SSE4.2,AVX,LZCNT,BMI1,BMI2,FMA3,AVX2",
    "SSSE3": "MMX2,SSE,SSE2,SSE3,SSSE3",
    "SSE2 only": "MMX2,SSE,SSE2",
    "plain C": "0",
}
SETTINGS = {   # name: (preset, crf, pix_fmt), as the stages write
    "synth (medium, crf 18, 4:2:0)": ("medium", 18, "yuv420p"),
    "synth at veryfast (tried)": ("veryfast", 18, "yuv420p"),
    "normalise (veryfast, crf 16, 4:2:0)": ("veryfast", 16, "yuv420p"),
    "crop_align (veryfast, crf 12, 4:4:4)": ("veryfast", 12, "yuv444p"),
}


def encode(frames, preset: str, crf: int, pix_fmt: str, mask: str | None, out: Path, extra: str = "") -> str:
    h, w = frames.shape[1:3]
    x264_params = ":".join(p for p in (f"asm={mask}" if mask else "", extra) if p)
    cmd = [ffmpeg_exe(), "-v", "error", "-y", *PORTABLE, "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
           "-r", "25", "-i", "pipe:0", "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", pix_fmt,
           "-threads", "1", *(["-x264-params", x264_params] if x264_params else []),
           "-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1", "-f", "mp4", str(out)]
    subprocess.run(cmd, input=frames.tobytes(), check=True)
    return hashlib.md5(out.read_bytes()).hexdigest()[:10]


def sample_clips(every: int) -> list[Path]:
    """Every ``every``-th synthetic clip of each dataset, in path order."""
    root = Path("data/synth")
    return [c for ds in ("MEAD", "LRW", "VoxCeleb2") for c in sorted((root / ds).rglob("*.mp4"))[::every]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=40, help="take every N-th clip of each dataset")
    parser.add_argument("--masks", default=",".join(MASKS), help="comma-separated names of MASKS to compare")
    parser.add_argument("--x264-params", default="", help="more x264 options for every encode, e.g. mbtree=0")
    args = parser.parse_args()
    masks = {name: MASKS[name] for name in args.masks.split(",")}
    differ = {setting: 0 for setting in SETTINGS}
    clips = sample_clips(args.every)
    with tempfile.TemporaryDirectory() as tmp:
        for clip in clips:
            frames = read_frames(clip)
            for setting, (preset, crf, pix_fmt) in SETTINGS.items():
                digests = {name: encode(frames, preset, crf, pix_fmt, mask, Path(tmp) / "v.mp4", args.x264_params)
                           for name, mask in masks.items()}
                differ[setting] += len(set(digests.values())) > 1
                shown = "  ".join(f"{k}: {v}" for k, v in digests.items())
                print(f"{clip.relative_to('data/synth')}  {setting}  {shown}", flush=True)
    for setting, n in differ.items():
        print(f"{setting}: {n} of {len(clips)} clips differ between {' / '.join(masks)}")


if __name__ == "__main__":
    main()
