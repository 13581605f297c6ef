"""plateau.py with the face windows changed before the expert sees them (a probe; the stage is unchanged).

    VARIANT=std python docs/probes/sync_expert/plateau_face_variant.py 20231002

``std`` (the only variant): each window's channels (frame t, colour k) standardised over their pixels, so a face's
colours and brightness cannot carry the embedding.
"""
import os
import sys

import eat.sync.train as st
from eat.sync import wav2lip_expert as we

if os.environ.get("VARIANT") != "std":
    raise SystemExit("VARIANT=std is the only face-window variant")
base = we.face_window


def changed(frames, face_size, box=we.FACE_BOX):
    x = base(frames, face_size, box)
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = x.std(dim=(2, 3), keepdim=True).clamp_min(1e-3)
    return (x - mean) / std


st.face_window = changed
sys.path.insert(0, "docs/probes/sync_expert")
import plateau  # noqa: E402

plateau.main()
