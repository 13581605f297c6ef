"""The embedded synthetic dataset: layouts, decodability, ground truth that matches the pixels, determinism."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import re
from pathlib import Path

import decord
import numpy as np
import pandas as pd
import pytest

from eat.config import EMOTIONS
from eat.io.media import read_audio
from eat.synth import generate as gen
from tests.conftest import micro_params

LAYOUTS = {
    "MEAD": [rf"[MW]0\d\d/video/front/({'|'.join(EMOTIONS)})/level_[123]/\d{{3}}\.mp4",
             rf"[MW]0\d\d/audio/({'|'.join(EMOTIONS)})/level_[123]/\d{{3}}\.m4a"],
    "LRW": [r"lipread_mp4/(?P<w>[A-Z]+)/(train|val|test)/(?P=w)_\d{5}\.mp4"],
    "VoxCeleb2": [r"mp4/id\d{5}/[\w-]{11}/\d{5}\.mp4", r"aac/id\d{5}/[\w-]{11}/\d{5}\.m4a"],
}


def _frames(out: Path, clip_id: str) -> pd.DataFrame:
    table = pd.read_parquet(out / "groundtruth" / "frames.parquet", filters=[("clip_id", "==", clip_id)])
    return table.sort_values("frame")


def test_layout_parses(synth_dataset):
    params, out, clips = synth_dataset
    for dataset, patterns in LAYOUTS.items():
        files = [p.relative_to(out / dataset).as_posix() for p in (out / dataset).rglob("*") if p.is_file()]
        assert files, dataset
        for f in files:
            assert any(re.fullmatch(pat, f) for pat in patterns), f"{dataset}: unexpected file {f}"
    mead = clips[clips.dataset == "MEAD"]
    m = params.synth.mead
    per_identity = m.neutral_sentences + (len(m.emotions) - 1) * len(m.levels) * m.sentences_per_level
    assert len(mead) == per_identity * (len(m.train_identities) + len(m.test_identities))
    # Every emotional clip has a neutral partner of the same identity and sentence (MEAD's pairing).
    neutral_clips = mead[mead.emotion == "neutral"]
    neutral = set(zip(neutral_clips.identity, neutral_clips.sentence_id, strict=True))
    assert all(pair in neutral for pair in zip(mead.identity, mead.sentence_id, strict=True))
    assert (mead.video.str[-7:-4] == mead.audio.str[-7:-4]).all()


def test_every_video_and_audio_decodes_as_promised(synth_dataset):
    params, out, clips = synth_dataset
    for row in clips.itertuples():
        root = out / row.dataset
        reader = decord.VideoReader(str(root / row.video), ctx=decord.cpu(0))
        assert len(reader) == row.n_frames, row.clip_id
        assert reader.get_avg_fps() == pytest.approx(row.fps, abs=1e-3)
        assert reader[0].shape == (row.height, row.width, 3)
        samples, rate = read_audio(root / row.audio)
        assert rate == row.audio_rate, row.clip_id
        video_s, audio_s = row.n_frames / row.fps, len(samples) / rate
        assert abs(video_s - audio_s) < 1 / row.fps, f"{row.clip_id}: video {video_s:.3f}s audio {audio_s:.3f}s"
        assert np.sqrt(np.mean(samples ** 2)) > 0.01, f"{row.clip_id}: audio is silent"
    assert set(clips[clips.dataset == "LRW"].n_frames) == {29}
    mead = clips[clips.dataset == "MEAD"].iloc[0]
    assert (mead.fps, mead.audio_rate) != (25.0, 16000)  # MEAD must need normalising, as the real one does


def test_landmarks_lie_on_the_drawn_face(synth_dataset):
    """Pupils (eye-landmark centres) are dark, the nose bridge is skin, and a face detector agrees."""
    import mediapipe as mp

    _, out, clips = synth_dataset
    detector = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.4)
    inside, checked = 0, 0
    for row in clips.groupby("dataset").head(3).itertuples():
        reader = decord.VideoReader(str(out / row.dataset / row.video), ctx=decord.cpu(0))
        gt = _frames(out, row.clip_id)
        for i in (0, row.n_frames // 2, row.n_frames - 1):
            image = reader[i].asnumpy()
            lm = np.asarray(gt.landmarks.iloc[i]).reshape(68, 2)
            gray = image.mean(axis=2)
            for eye in (slice(36, 42), slice(42, 48)):
                x, y = np.round(lm[eye].mean(axis=0)).astype(int)
                bx, by = np.round(lm[28]).astype(int)
                pupil = gray[y - 1:y + 2, x - 1:x + 2].min()
                assert pupil < 0.7 * gray[by, bx], f"{row.clip_id} frame {i}: no pupil at the eye landmarks"
            found = detector.process(image).detections
            checked += 1
            if found:
                box = found[0].location_data.relative_bounding_box
                h, w = image.shape[:2]
                x0, y0 = box.xmin * w, box.ymin * h
                core = lm[17:]  # brows, eyes, nose, mouth
                ok = (core[:, 0] > x0 - 3) & (core[:, 0] < x0 + box.width * w + 3) & (core[:, 1] > y0 - 3) & (
                    core[:, 1] < y0 + box.height * h + 3)
                inside += ok.mean() > 0.95
    assert inside >= 0.8 * checked, f"detector agrees with ground truth on {inside}/{checked} frames"


def test_mouth_follows_the_phoneme_schedule(synth_dataset):
    _, out, clips = synth_dataset
    frames = pd.read_parquet(out / "groundtruth" / "frames.parquet", columns=["clip_id", "mouth_open_px",
                                                                              "aperture", "landmarks"])
    corrs = []
    for _, g in frames.groupby("clip_id"):
        lm = np.stack(g.landmarks.to_numpy()).reshape(len(g), 68, 2)
        measured = np.linalg.norm(lm[:, 66] - lm[:, 62], axis=1)
        np.testing.assert_allclose(measured, g.mouth_open_px, rtol=1e-5)
        if g.aperture.std() > 0.05:
            corrs.append(np.corrcoef(g.mouth_open_px, g.aperture)[0, 1])
    assert len(corrs) >= 10
    assert np.mean(corrs) > 0.8 and np.min(corrs) > 0.6, corrs
    phones = pd.read_parquet(out / "groundtruth" / "phones.parquet")
    assert (phones.end_s >= phones.start_s).all() and phones.phone.str.len().gt(0).all()


def _emotion_features(out: Path, clips: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame landmark offsets from the identity's neutral mean, after similarity alignment."""
    from skimage.transform import SimilarityTransform

    frames = pd.read_parquet(out / "groundtruth" / "frames.parquet", columns=["clip_id", "landmarks"])
    lm = frames.set_index("clip_id").landmarks
    mead = clips[clips.dataset == "MEAD"]
    feats, labels, idents = [], [], []
    for ident, group in mead.groupby("identity"):
        neutral_ids = group[group.emotion == "neutral"].clip_id
        ref = np.stack(lm.loc[neutral_ids].to_numpy()).reshape(-1, 68, 2).mean(axis=0)
        stable = np.r_[27:31, 36:48]  # nose bridge and eye corners barely move with expression
        for row in group.itertuples():
            for pts in np.stack(np.atleast_1d(lm.loc[row.clip_id]).tolist()).reshape(-1, 68, 2):
                tform = SimilarityTransform.from_estimate(pts[stable], ref[stable])
                feats.append((tform(pts) - ref)[17:48].ravel())  # brows, nose, eyes: not the speaking mouth
                labels.append(row.emotion)
                idents.append(ident)
    return np.array(feats), np.array(labels), np.array(idents)


def test_emotions_are_separable_from_landmarks(synth_dataset):
    """A linear classifier trained on one identity recognises the 8 emotions of an unseen one."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    params, out, clips = synth_dataset
    x, y, ident = _emotion_features(out, clips)
    train = ident == params.synth.mead.train_identities[0]
    scaler = StandardScaler().fit(x[train])
    clf = LogisticRegression(max_iter=2000).fit(scaler.transform(x[train]), y[train])
    accuracy = (clf.predict(scaler.transform(x[~train])) == y[~train]).mean()
    assert len(set(y)) == 8
    assert accuracy > 0.5, f"held-out identity accuracy {accuracy:.2f} (chance 0.125)"


def _digest_decoded(root: Path, row) -> str:
    h = hashlib.sha256()
    h.update(decord.VideoReader(str(root / row["video"]), ctx=decord.cpu(0))[:].asnumpy().tobytes())
    h.update(read_audio(root / row["audio"])[0].tobytes())
    return h.hexdigest()


def _write_two(out: str) -> list[str]:
    params = micro_params()
    specs = gen.plan_clips(params)
    picked = [specs[0], next(s for s in specs if s.dataset == "LRW")]
    rows = []
    for spec in picked:
        gen.write_clip(spec, params.seed, Path(out), params.synth.crf, params.synth.preset)
        rows.append(_digest_decoded(Path(out) / spec.dataset, {"video": spec.video, "audio": spec.audio}))
    return rows


def test_same_seed_gives_identical_decoded_data(tmp_path):
    first = _write_two(str(tmp_path / "a"))
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # a fresh process, as the stage's workers
        second = pool.apply(_write_two, (str(tmp_path / "b"),))
    assert first == second
    for f in (tmp_path / "a").rglob("*.mp4"):
        assert f.read_bytes() == (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes()


def test_a_different_seed_changes_the_data(tmp_path):
    params = micro_params()
    spec = gen.plan_clips(params)[0]
    other = micro_params({"seed": params.seed + 1})
    a = gen.render_clip(spec, params.seed).frame_table.landmarks.iloc[5]
    b = gen.render_clip(gen.plan_clips(other)[0], other.seed).frame_table.landmarks.iloc[5]
    assert not np.allclose(a, b)


def test_resume_renders_only_missing_clips(tmp_path, monkeypatch):
    small = {"synth": {"workers": 1, "mead": {"emotions": ["neutral"]}}}
    params = micro_params(small)
    out = tmp_path / "synth"
    clips = gen.generate(params, out)
    victim = clips.clip_id.iloc[1]
    (out / "groundtruth" / "parts" / f"{victim.replace('/', '__')}.json").unlink()  # as if killed mid-clip
    rendered = []
    real = gen.write_clip
    monkeypatch.setattr(gen, "write_clip", lambda spec, *a: rendered.append(spec.clip_id) or real(spec, *a))
    again = gen.generate(params, out)
    assert rendered == [victim]
    pd.testing.assert_frame_equal(clips, again)
    # Different parameters: everything is rendered afresh.
    rendered.clear()
    gen.generate(micro_params({**small, "seed": 7}), out)
    assert len(rendered) == len(clips)
    assert json.loads((out / "groundtruth" / "parts" / f"{victim.replace('/', '__')}.json").read_text())


def test_unknown_lrw_word_is_a_clear_error():
    params = micro_params({"synth": {"lrw": {"words": ["ZEBRA"]}}})
    with pytest.raises(ValueError, match="'ZEBRA' is not in eat.synth.corpus.LRW_WORDS"):
        gen.plan_clips(params)
