"""Probe data: the stage's still clips (eat/synth/stills.py) of identities ``--first`` … ``--first + --identities - 1``
saved as one npz (images (N, frames, S, S, 3), labels, identities) for pretrain_probe.py.

    python docs/probes/emotion_fan/stills/render_stills.py --identities 200 --out /tmp/stills_a.npz
    python docs/probes/emotion_fan/stills/render_stills.py --identities 200 --first 200 --out /tmp/stills_b.npz

The probes of this folder ran an earlier copy of this renderer that drew the same stills (same names, random
streams and steps); eat/synth/stills.py is that code moved into the pipeline.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from eat.config import load_params
from eat.synth.stills import StillSettings, identity_still_clips, still_identity_names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--identities", type=int, default=400)
    parser.add_argument("--first", type=int, default=0, help="index of the first identity (to render in parts)")
    parser.add_argument("--seed", type=int, default=None, help="params' seed unless given (the stage renders at it)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    params = load_params(args.params)
    settings = StillSettings.of(params if args.seed is None else params.model_copy(update={"seed": args.seed}))
    start = time.perf_counter()
    names = still_identity_names(args.first + args.identities)[args.first:]
    clips = [(k, clip) for k, name in enumerate(names, start=args.first)
             for clip in identity_still_clips(name, settings)]
    np.savez(args.out, images=np.stack([c.frames for _, c in clips]), labels=np.array([c.label for _, c in clips]),
             identities=np.array([k for k, _ in clips]))
    print(f"{len(clips)} still clips in {time.perf_counter() - start:.1f} s -> {args.out}")


if __name__ == "__main__":
    main()
