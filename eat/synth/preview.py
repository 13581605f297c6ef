"""Show what the synth stage made: a contact sheet (identities × emotions) and one sample mp4 with audio."""

from __future__ import annotations

from pathlib import Path

import cv2
import decord
import numpy as np
import pandas as pd

from eat.config import EMOTIONS
from eat.io.atomic import atomic_path
from eat.io.media import mux

_TILE = 160


def _middle_frame(path: Path) -> np.ndarray:
    reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
    return reader[len(reader) // 2].asnumpy()


def contact_sheet(clips: pd.DataFrame, frames: pd.DataFrame, root: Path, out: Path) -> None:
    """Grid PNG: one row per MEAD identity, one column per emotion (highest level, first sentence).

    Each tile is a square crop around the ground-truth face of the middle frame.
    """
    mead = clips[clips.dataset == "MEAD"]
    identities = sorted(mead.identity.unique())
    emotions = [e for e in EMOTIONS if e in set(mead.emotion)]
    sheet = np.full((len(identities) * _TILE + 24, len(emotions) * _TILE, 3), 255, np.uint8)
    for c, emotion in enumerate(emotions):
        cv2.putText(sheet, emotion, (c * _TILE + 6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for r, ident in enumerate(identities):
        for c, emotion in enumerate(emotions):
            rows = mead[(mead.identity == ident) & (mead.emotion == emotion)].sort_values(["level", "video"])
            if rows.empty:
                continue
            row = rows.iloc[-1]
            image = _middle_frame(root / "MEAD" / row.video)
            lm = np.asarray(frames[(frames.clip_id == row.clip_id) & (frames.frame == row.n_frames // 2)]
                            .landmarks.iloc[0]).reshape(-1, 2)
            cx, cy = lm[:, 0].mean(), lm[:, 1].mean() - 0.15 * np.ptp(lm[:, 1])
            half = 1.05 * np.ptp(lm[:, 0])
            x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
            crop = image[y0:int(cy + half), x0:int(cx + half)]
            tile = cv2.resize(crop, (_TILE, _TILE), interpolation=cv2.INTER_AREA)
            cv2.putText(tile, ident, (4, _TILE - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
            sheet[24 + r * _TILE:24 + (r + 1) * _TILE, c * _TILE:(c + 1) * _TILE] = tile
    with atomic_path(out) as tmp:
        ok, png = cv2.imencode(".png", sheet[:, :, ::-1])
        tmp.write_bytes(png.tobytes())


def sample_video(clips: pd.DataFrame, root: Path, out: Path) -> None:
    """Mux one emotional MEAD clip (video and its separate m4a) into a playable mp4."""
    mead = clips[(clips.dataset == "MEAD") & (clips.emotion != "neutral")].sort_values(["level", "clip_id"])
    row = (mead if not mead.empty else clips[clips.dataset == "MEAD"]).iloc[-1]
    mux(root / "MEAD" / row.video, root / "MEAD" / row.audio, out)
