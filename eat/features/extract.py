"""The ``audio_features`` stage: per clip, the paper's log-mel, MFCCs and speech features.

Reads ``data/interim/normalised.parquet`` (:mod:`eat.features.clip_audio` states the contract)
and writes, per usable clip of ``T`` video frames:

``data/features/audio/<uid>.npz`` (:func:`eat.io.arrays.write_npz`, uncompressed)
  * ``mel``    (T, signal.n_mels) float32: ``ln(1e-5 + power mel)``, frame ``i`` = the audio of
    video frame ``i`` (:mod:`eat.features.spectral`);
  * ``mfcc``   (T, audio_features.n_mfcc) float32, same framing;
  * ``speech`` (T, audio_features.speech_window, 29) float32: 50 fps logits of the speech
    backend, the window centred on video frame ``i`` (:mod:`eat.features.speech`).

``data/features/audio/<uid>.key``: the clip's resume key (:mod:`eat.features.store`).
``data/features/audio.parquet``: one row per clip with features (:data:`AUDIO_FEATURES`).
``data/features/audio_quarantine.parquet``: clips that failed, and why (``eat.schema.QUARANTINE``).

Clips run through :func:`eat.parallel.map_clips` (Ray, or in-process with ``workers: 1``); each
task holds one clip, so peak memory is the per-clip working set times the tasks in flight. A
rerun after a kill recomputes only clips whose npz or key is missing or whose key differs
(parameters, model weights, feature code or the input wav changed); features of clips no
longer in the table are deleted.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

from eat import schema
from eat.features.alphabet import N_SYMBOLS
from eat.features.clip_audio import AudioRejected, read_clip_audio, read_normalised
from eat.features.config import FeatureParams
from eat.features.spectral import log_mel, mel_power, mfcc
from eat.features.speech import make_backend, speech_windows
from eat.features.speech_backend import SpeechBackend
from eat.features.store import clip_key, is_done, mark_done
from eat.io.arrays import write_npz
from eat.io.atomic import atomic_path
from eat.io.hashing import settings_digest
from eat.parallel import map_clips

log = logging.getLogger(__name__)

STAGE = "audio_features"

AUDIO_FEATURES = pa.schema([
    ("uid", pa.string()),
    ("clip_id", pa.string()),
    ("dataset", pa.string()),
    ("split", pa.string()),
    ("n_frames", pa.int32()),          # T: rows of mel, mfcc and speech
    ("features", pa.string()),         # path of <uid>.npz
    ("speech_backend", pa.string()),   # "ctc" (substitute) | "deepspeech" (the paper's)
])


@dataclass(frozen=True)
class ClipJob:
    uid: str
    audio_norm: str
    n_frames: int


@dataclass(frozen=True)
class ClipResult:
    uid: str
    computed: bool            # False: reused from an earlier run
    rejected: str | None      # the quarantine reason, if the audio was unusable


def clip_features(samples: np.ndarray, n_frames: int, params: FeatureParams,
                  backend: SpeechBackend) -> dict[str, np.ndarray]:
    """(T · hop,) samples → {mel (T, n_mels), mfcc (T, n_mfcc), speech (T, W, 29)}, all float32.

    BLAS runs on one thread (as torch does in the backends): a matrix product's rounding depends
    on the thread count, and the bytes must not depend on whether clips run in-process or on Ray.
    """
    sig, cfg = params.signal, params.audio_features
    with threadpool_limits(limits=1):
        power = mel_power(samples, sig.audio_rate, sig.hop_length, sig.hop_length, sig.n_fft, sig.n_mels)
        speech = speech_windows(backend.logits(samples), n_frames, cfg.speech_window, params.steps_per_frame)
    out = {"mel": log_mel(power), "mfcc": mfcc(power, cfg.n_mfcc), "speech": speech}
    expected = {"mel": (n_frames, sig.n_mels), "mfcc": (n_frames, cfg.n_mfcc),
                "speech": (n_frames, cfg.speech_window, N_SYMBOLS)}
    for name, shape in expected.items():
        if out[name].shape != shape:
            raise RuntimeError(f"{name} has shape {out[name].shape}, expected {shape} (a bug in eat/features)")
    return out


@dataclass(frozen=True)
class AudioFeatureExtractor:
    """The per-clip task (picklable for Ray): check the audio, reuse or compute, write atomically."""

    params: FeatureParams
    backend: SpeechBackend
    out_dir: Path
    run_digest: str

    def __call__(self, job: ClipJob) -> ClipResult:
        npz, wav = self.out_dir / f"{job.uid}.npz", Path(job.audio_norm)
        if not wav.is_file():
            return ClipResult(job.uid, False, f"audio file missing: {wav} (re-run the normalise stage)")
        key = clip_key(self.run_digest, wav)
        if is_done(npz, key):
            return ClipResult(job.uid, False, None)
        try:
            samples = read_clip_audio(wav, job.n_frames, self.params.signal, self.params.audio_features)
        except AudioRejected as why:
            return ClipResult(job.uid, False, str(why))
        write_npz(npz, clip_features(samples, job.n_frames, self.params, self.backend))
        mark_done(npz, key)
        return ClipResult(job.uid, True, None)


def run_digest(params: FeatureParams, backend: SpeechBackend) -> str:
    """What every clip's features depend on: parameters, the model's fingerprint and this package's code."""
    settings = {"signal": params.signal.model_dump(include={"fps", "audio_rate", "n_mels", "n_fft", "hop_length"}),
                "audio_features": params.audio_features.model_dump(exclude={"workers", "deepspeech_graph"}),
                "backend": backend.fingerprint()}
    sources = sorted(Path(__file__).resolve().parent.glob("*.py"))
    return settings_digest(settings, (source.read_bytes() for source in sources))


def _write_table(path: Path, rows: list[dict], table_schema: pa.Schema) -> None:
    frame = pd.DataFrame(rows, columns=table_schema.names)
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pandas(frame, table_schema, preserve_index=False), tmp)


def _remove_stale(out_dir: Path, keep: set[str]) -> int:
    """Delete feature and key files of clips not in ``keep`` (gone from the table, or now quarantined),
    and temporaries a killed run left behind (``.<name>.<pid>.partial``, see :mod:`eat.io.atomic`)."""
    stale = [f for f in [*out_dir.glob("*.npz"), *out_dir.glob("*.key")] if f.stem not in keep]
    stale += list(out_dir.glob(".*.partial"))
    for f in stale:
        f.unlink()
    return len(stale)


def extract_audio_features(params: FeatureParams, normalised: Path | str, out_dir: Path | str,
                           index: Path | str, quarantine: Path | str, recognizer: Path | str) -> dict:
    """Run the stage; returns a summary (clip counts, frames, frames per second of computed clips)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = read_normalised(normalised)
    backend = make_backend(params, recognizer)
    extractor = AudioFeatureExtractor(params, backend, out_dir, run_digest(params, backend))
    jobs = [ClipJob(str(r.uid), str(r.audio_norm), int(r.n_frames)) for r in table.itertuples(index=False)]
    start = time.perf_counter()
    outcomes = map_clips(extractor, jobs, desc=STAGE, workers=params.audio_features.workers)
    seconds = time.perf_counter() - start
    rows, rejected, computed_frames = [], [], 0
    for clip, outcome in zip(table.itertuples(index=False), outcomes, strict=True):
        reason = outcome.error or outcome.value.rejected
        if reason:
            log.warning("%s: quarantined: %s", clip.clip_id, reason)
            rejected.append({"clip_id": clip.clip_id, "stage": STAGE, "path": str(clip.audio_norm),
                             "reason": reason.splitlines()[0]})
            continue
        computed_frames += int(clip.n_frames) * outcome.value.computed
        rows.append({"uid": clip.uid, "clip_id": clip.clip_id, "dataset": clip.dataset, "split": clip.split,
                     "n_frames": int(clip.n_frames), "features": str(out_dir / f"{clip.uid}.npz"),
                     "speech_backend": backend.name})
    removed = _remove_stale(out_dir, {r["uid"] for r in rows})
    _write_table(Path(index), rows, AUDIO_FEATURES)
    _write_table(Path(quarantine), rejected, schema.QUARANTINE)
    computed = sum(1 for o in outcomes if o.value is not None and o.value.computed)
    return {"clips": len(rows), "quarantined": len(rejected), "computed": computed,
            "reused": len(rows) - computed, "stale_files_removed": removed,
            "frames": int(sum(r["n_frames"] for r in rows)), "speech_backend": backend.name,
            "seconds": round(seconds, 1),
            "computed_frames_per_second": round(computed_frames / seconds, 1) if computed else None}
