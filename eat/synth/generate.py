"""The ``synth`` stage: write the embedded MEAD / LRW / VoxCeleb2 miniature and its ground truth.

Output (``out``, default ``data/synth``)::

    MEAD/<M0xx|W0xx>/video/front/<emotion>/level_<n>/<nnn>.mp4   video only, frame size and fps of params
    MEAD/<M0xx|W0xx>/audio/<emotion>/level_<n>/<nnn>.m4a         AAC at synth.mead.audio_rate
    LRW/lipread_mp4/<WORD>/<train|val|test>/<WORD>_<nnnnn>.mp4    256², 25 fps, 29 frames, AAC inside
    VoxCeleb2/mp4/<idNNNNN>/<video id>/<nnnnn>.mp4                224², 25 fps, AAC inside
    VoxCeleb2/aac/<idNNNNN>/<video id>/<nnnnn>.m4a               the same audio alone
    groundtruth/{clips,frames,phones}.parquet                   layouts in eat.schema

Each clip is written atomically and recorded in ``groundtruth/parts``; a rerun
with the same parameters and code skips finished clips (resume after a kill); a
run with different parameters or generator code starts afresh.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from eat import schema
from eat.config import Params, SynthConfig
from eat.io.atomic import atomic_path, write_text_atomic
from eat.io.hashing import settings_digest
from eat.io.media import write_audio, write_video
from eat.synth.clip import ClipSpec, render_clip
from eat.synth.corpus import LRW_WORDS, SENTENCES, lrw_phrase
from eat.synth.identities import make_identity, stable_rng

log = logging.getLogger(__name__)
_VOX_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"


def _mead_specs(cfg: SynthConfig, seed: int) -> list[ClipSpec]:
    m = cfg.mead
    specs = []
    roles = [(name, "train") for name in m.train_identities] + [(name, "test") for name in m.test_identities]
    for k, (name, split) in enumerate(roles):
        ident = make_identity(seed, name, female=name.startswith("W"), centred=False)
        sentences = [(k * 5 + j) % len(SENTENCES) for j in range(m.neutral_sentences)]
        plan = [("neutral", 1, j) for j in range(m.neutral_sentences)] if "neutral" in m.emotions else []
        # As MEAD's common sentences, emotional clip nnn says what neutral clip nnn says (the pairing).
        for emotion in (e for e in m.emotions if e != "neutral"):
            plan += [(emotion, level, j) for level in m.levels for j in range(m.sentences_per_level)]
        for emotion, level, j in plan:
            sid = sentences[j]
            rel = f"{name}/video/front/{emotion}/level_{level}/{j + 1:03d}.mp4"
            specs.append(ClipSpec(
                dataset="MEAD", clip_id=f"MEAD/{name}/{emotion}/level_{level}/{j + 1:03d}", identity=ident,
                emotion=emotion, level=level, sentence_id=sid, text=SENTENCES[sid], split=split, video=rel,
                audio=f"{name}/audio/{emotion}/level_{level}/{j + 1:03d}.m4a", fps=m.fps, width=m.frame.width,
                height=m.frame.height, audio_rate=m.audio_rate, face_half_width_px=m.face_half_width_px))
    return specs


def _lrw_specs(cfg: SynthConfig, seed: int) -> list[ClipSpec]:
    c = cfg.lrw
    speakers = [make_identity(seed, f"lrw_s{i:02d}", female=bool(i % 2), centred=True) for i in range(c.identities)]
    specs = []
    for w, word in enumerate(c.words):
        n = 0
        for split, count in c.clips_per_split.items():
            for _ in range(count):
                n += 1
                ident = speakers[(w + n) % len(speakers)]
                rel = f"lipread_mp4/{word}/{split}/{word}_{n:05d}.mp4"
                specs.append(ClipSpec(
                    dataset="LRW", clip_id=f"LRW/{word}/{split}/{word}_{n:05d}", identity=ident, emotion="neutral",
                    level=1, sentence_id=-1, text=lrw_phrase(word, w + n), split=split, video=rel, audio=rel,
                    fps=c.fps, width=c.frame.width, height=c.frame.height, audio_rate=c.audio_rate,
                    face_half_width_px=c.face_half_width_px, n_frames=c.frames, word=word))
    return specs


def _vox_specs(cfg: SynthConfig, seed: int) -> list[ClipSpec]:
    v = cfg.voxceleb2
    specs = []
    for i in range(v.identities):
        name = f"id{10001 + 17 * i:05d}"
        ident = make_identity(seed, name, female=bool(i % 2), centred=True)
        rng = stable_rng(seed, "vox-videos", name)
        for _ in range(v.videos_per_identity):
            video_id = "".join(rng.choice(list(_VOX_ALPHABET), 11))
            for u in range(v.utterances_per_video):
                sid = int(rng.integers(len(SENTENCES)))
                stem = f"{name}/{video_id}/{u + 1:05d}"
                specs.append(ClipSpec(
                    dataset="VoxCeleb2", clip_id=f"VoxCeleb2/{stem}", identity=ident, emotion="neutral", level=1,
                    sentence_id=sid, text=SENTENCES[sid], split="train", video=f"mp4/{stem}.mp4",
                    audio=f"aac/{stem}.m4a", fps=v.fps, width=v.frame.width, height=v.frame.height,
                    audio_rate=v.audio_rate, face_half_width_px=v.face_half_width_px, n_frames=v.frames))
    return specs


def plan_clips(params: Params) -> list[ClipSpec]:
    """Every clip the stage writes, in a fixed order."""
    cfg = params.synth
    for word in cfg.lrw.words:
        if word not in LRW_WORDS:
            raise ValueError(f"synth.lrw.words: {word!r} is not in eat.synth.corpus.LRW_WORDS")
    return _mead_specs(cfg, params.seed) + _lrw_specs(cfg, params.seed) + _vox_specs(cfg, params.seed)


def _part_name(clip_id: str) -> str:
    return clip_id.replace("/", "__")


def _clip_row(spec: ClipSpec, n_frames: int, n_samples: int) -> dict:
    return {
        "dataset": spec.dataset, "clip_id": spec.clip_id, "identity": spec.identity.name,
        "gender": spec.identity.gender, "emotion": spec.emotion, "level": spec.level,
        "sentence_id": spec.sentence_id, "text": spec.text, "word": spec.word, "split": spec.split,
        "video": spec.video, "audio": spec.audio, "fps": spec.fps, "n_frames": n_frames, "width": spec.width,
        "height": spec.height, "audio_rate": spec.audio_rate, "n_samples": n_samples,
    }


def write_clip(spec: ClipSpec, seed: int, out: Path, crf: int, preset: str) -> str:
    """Render and write one clip (H.264 at ``crf`` and x264 ``preset``) with its ground-truth part; returns the
    clip id."""
    clip = render_clip(spec, seed)
    root = out / spec.dataset
    if spec.dataset == "MEAD":
        write_video(root / spec.video, clip.frames, spec.fps, spec.width, spec.height, crf, preset=preset)
        write_audio(root / spec.audio, clip.samples, spec.audio_rate)
    else:
        write_video(root / spec.video, clip.frames, spec.fps, spec.width, spec.height, crf,
                    audio=(clip.samples, spec.audio_rate), preset=preset)
        if spec.audio != spec.video:
            write_audio(root / spec.audio, clip.samples, spec.audio_rate)
    parts = out / "groundtruth" / "parts"
    name = _part_name(spec.clip_id)
    with atomic_path(parts / f"{name}.frames.parquet") as tmp:
        pq.write_table(pa.Table.from_pandas(clip.frame_table, schema.SYNTH_FRAMES, preserve_index=False), tmp)
    with atomic_path(parts / f"{name}.phones.parquet") as tmp:
        pq.write_table(pa.Table.from_pandas(clip.phone_table, schema.SYNTH_PHONES, preserve_index=False), tmp)
    # The clip record is written last: its presence marks the clip complete.
    write_text_atomic(parts / f"{name}.json", json.dumps(_clip_row(spec, len(clip.frames), len(clip.samples))))
    return spec.clip_id


def _run_digest(params: Params) -> str:
    """What finished clips depend on: the parameters and the generator's own code.

    A rerun reuses a finished clip only when both are unchanged, so a code change
    can never leave stale clips behind.
    """
    package = Path(__file__).resolve().parent
    sources = sorted([*package.glob("*.py"), package.parent / "io" / "media.py"])
    return settings_digest({"seed": params.seed, "synth": params.synth.model_dump(exclude={"workers"})},
                           (source.read_bytes() for source in sources))


def _prepare_out(out: Path, digest: str) -> None:
    stamp = out / "groundtruth" / "run.sha256"
    if out.exists() and (not stamp.exists() or stamp.read_text() != digest):
        log.info("parameters or generator code changed: removing %s", out)
        shutil.rmtree(out)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(stamp, digest)


def _merge_parts(specs: list[ClipSpec], out: Path) -> pd.DataFrame:
    parts = out / "groundtruth" / "parts"
    names = [_part_name(s.clip_id) for s in specs]
    clips = pd.DataFrame([json.loads((parts / f"{n}.json").read_text()) for n in names])
    tables = {"clips": pa.Table.from_pandas(clips, schema.SYNTH_CLIPS, preserve_index=False)}
    for kind, sch in (("frames", schema.SYNTH_FRAMES), ("phones", schema.SYNTH_PHONES)):
        tables[kind] = pa.concat_tables([pq.read_table(parts / f"{n}.{kind}.parquet", schema=sch) for n in names])
    for kind, table in tables.items():
        with atomic_path(out / "groundtruth" / f"{kind}.parquet") as tmp:
            pq.write_table(table, tmp)
    return clips


def generate(params: Params, out: Path | str) -> pd.DataFrame:
    """Write the whole miniature under ``out``; returns the clip table."""
    out = Path(out)
    specs = plan_clips(params)
    _prepare_out(out, _run_digest(params))
    parts = out / "groundtruth" / "parts"
    todo = [s for s in specs if not (parts / f"{_part_name(s.clip_id)}.json").exists()]
    log.info("synth: %d clips planned, %d to render", len(specs), len(todo))
    cfg = params.synth
    if cfg.workers == 1:
        for spec in tqdm(todo, desc="synth", unit="clip", mininterval=10):
            write_clip(spec, params.seed, out, cfg.crf, cfg.preset)
    else:
        with ProcessPoolExecutor(cfg.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(write_clip, s, params.seed, out, cfg.crf, cfg.preset) for s in todo]
            for fut in tqdm(futures, desc="synth", unit="clip", mininterval=10):
                fut.result()
    return _merge_parts(specs, out)
