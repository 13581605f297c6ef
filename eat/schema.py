"""Layouts of every table and array the pipeline writes: the one place to look them up.

Coordinates are pixels of the frame as written (x right, y down, origin at the
top-left pixel corner). Head pose is (yaw, pitch, roll) in degrees — positive
yaw turns the face towards the image right, positive pitch looks up, positive
roll tilts the head clockwise on screen — and (tx, ty, tz) in millimetres in
the camera frame (tz towards the camera). Landmarks follow iBUG-68 order (jaw
0–16, brows 17–26, nose 27–35, eyes 36–47, outer lip 48–59, inner lip 60–67).
"""

from __future__ import annotations

import pyarrow as pa

N_LANDMARKS = 68

# data/synth/groundtruth/clips.parquet — one row per synthetic clip.
SYNTH_CLIPS = pa.schema([
    ("dataset", pa.string()),          # "MEAD" | "LRW" | "VoxCeleb2"
    ("clip_id", pa.string()),          # unique over all datasets, e.g. "MEAD/M003/angry/level_3/001"
    ("identity", pa.string()),         # M003, W009 / lrw_s01 / id00017
    ("gender", pa.string()),           # "male" | "female"
    ("emotion", pa.string()),          # one of eat.config.EMOTIONS (LRW and VoxCeleb2: "neutral")
    ("level", pa.int8()),              # MEAD intensity 1–3 (neutral: 1)
    ("sentence_id", pa.int16()),       # index into eat.synth.corpus.SENTENCES (-1 for LRW)
    ("text", pa.string()),             # what is said
    ("word", pa.string()),             # LRW target word, else ""
    ("split", pa.string()),            # "train" | "val" | "test": the identity split planned by params
    ("video", pa.string()),            # path relative to the dataset root
    ("audio", pa.string()),            # path relative to the dataset root (LRW: same as video)
    ("fps", pa.float32()),
    ("n_frames", pa.int32()),
    ("width", pa.int16()),
    ("height", pa.int16()),
    ("audio_rate", pa.int32()),
    ("n_samples", pa.int64()),         # audio samples as synthesised, = round(n_frames * audio_rate / fps)
])

# data/synth/groundtruth/frames.parquet — one row per video frame.
SYNTH_FRAMES = pa.schema([
    ("clip_id", pa.string()),
    ("frame", pa.int32()),
    ("landmarks", pa.list_(pa.float32(), 2 * N_LANDMARKS)),  # x0, y0, x1, y1, … x67, y67 in frame pixels
    ("yaw", pa.float32()), ("pitch", pa.float32()), ("roll", pa.float32()),
    ("tx", pa.float32()), ("ty", pa.float32()), ("tz", pa.float32()),
    ("mouth_open_px", pa.float32()),   # distance of inner-lip midpoints 62–66 in pixels
    ("aperture", pa.float32()),        # viseme aperture driving the jaw, in [0, 1]
    ("blink", pa.float32()),           # eyelid closure in [0, 1]
])

# data/synth/groundtruth/phones.parquet — one row per phoneme.
SYNTH_PHONES = pa.schema([
    ("clip_id", pa.string()),
    ("phone", pa.string()),            # eSpeak NG mnemonic
    ("start_s", pa.float32()),         # seconds from the clip start
    ("end_s", pa.float32()),
])
