"""``eat generate`` (eat/generate): a real photo and an audio file → a playable mp4 with sound, T frames for T audio
frames; chunked generation equals one pass; the errors a user can act on; batch mode keeps going past a bad row.

Models are seeded random weights at micro sizes (eat/generate/random_models.py): these tests check files, shapes,
timing and errors, not what a trained model draws.
"""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pandas as pd
import pytest
import skimage.data
import soundfile as sf
import torch

from eat.config import EMOTIONS
from eat.generate.audio import AudioError, feature_params, prepare_audio
from eat.generate.batch import BatchJob, run_batch
from eat.generate.emotion import emotion_mix, parse_mix
from eat.generate.face import FaceError, PasteBack, prepare_face
from eat.generate.pipeline import PHASES, Generator, generate, make_request
from eat.generate.pose import natural_motion
from eat.generate.random_models import write_random_models
from eat.preprocess.probe import probe_media
from tests.conftest import micro_params

AUDIO_RATE = 22050          # not 16 kHz: generation resamples
AUDIO_SECONDS = 0.48        # 7,680 samples at 16 kHz = 12 frames of 640
FRAMES = 12


def _write_image(path, image: np.ndarray) -> str:
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return str(path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)      # one thread: much faster than two on a shared 2-core machine
    root = tmp_path_factory.mktemp("generate")
    params = micro_params({"signal": {"window_frames": 5}, "latent": {"pca_components": 8}})
    paths = write_random_models(params, root / "models")
    astronaut = skimage.data.astronaut()
    t = np.arange(int(AUDIO_SECONDS * AUDIO_RATE)) / AUDIO_RATE
    speech = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 4 * t)) / 2
    sf.write(root / "speech.wav", speech.astype(np.float32), AUDIO_RATE)
    generator = Generator(params, paths["adaptation"], recognizer=paths["recognizer"], device="cpu")
    yield {"root": root, "params": params, "paths": paths, "generator": generator,
           "image": _write_image(root / "astronaut.png", astronaut),
           "two": _write_image(root / "two.png", np.concatenate([astronaut, astronaut], axis=1)),
           "blank": _write_image(root / "blank.png", np.tile(np.linspace(0, 255, 256, dtype=np.uint8)[None, :, None],
                                                               (256, 1, 3))),
           "audio": str(root / "speech.wav")}
    torch.set_num_threads(threads)


def test_generate_writes_a_playable_mp4_with_audio_of_t_frames(setup):
    out = setup["root"] / "happy.mp4"
    result = generate(setup["generator"], make_request(setup["image"], setup["audio"], str(out), {"happy": 1.0}),
                      keep_frames=True)
    info = probe_media(out)
    size = setup["params"].signal.image_size
    assert result.n_frames == FRAMES and len(result.frames) == FRAMES
    assert info.has_video and info.has_audio and info.n_frames == FRAMES and info.fps == 25.0
    assert (info.width, info.height) == (size, size) and info.audio_rate == 16000
    assert abs(info.duration_s - AUDIO_SECONDS) < 0.05
    assert set(result.seconds) == set(PHASES) and all(v >= 0 for v in result.seconds.values())
    setup["frames"] = np.stack(result.frames)


def test_chunked_generation_equals_one_pass(setup):
    generator = setup["generator"]
    generator.chunk_frames = 5        # three chunks, each needing the window's neighbours from the next
    try:
        result = generate(generator, make_request(setup["image"], setup["audio"], str(setup["root"] / "chunked.mp4"),
                                                  {"happy": 1.0}), keep_frames=True)
    finally:
        generator.chunk_frames = 500
    assert np.abs(np.stack(result.frames).astype(int) - setup["frames"].astype(int)).max() <= 1


def test_paste_back_and_natural_pose_give_the_photo_sized_video(setup):
    out = setup["root"] / "pasted.mp4"
    result = generate(setup["generator"], make_request(setup["image"], setup["audio"], str(out),
                                                       emotion_mix("angry", 0.5), pose="natural", paste_back=True))
    info = probe_media(out)
    assert (info.width, info.height) == (512, 512) and info.n_frames == FRAMES and info.has_audio
    assert result.size == (512, 512)


def test_face_is_cropped_by_the_training_rule(setup):
    face = prepare_face(setup["image"], setup["params"])
    assert face.frame.shape == (32, 32, 3) and face.n_faces == 1
    lm = face.landmarks
    assert face.box[2] == pytest.approx(2.1 * np.ptp(lm[:, 0]), rel=1e-4)
    assert face.box[0] + face.box[2] / 2 == pytest.approx((lm[:, 0].min() + lm[:, 0].max()) / 2, abs=1e-3)
    # pasting the crop of the photo itself back gives the photo again (up to resampling)
    crop = cv2.resize(face.image[int(face.box[1]):int(face.box[1] + face.box[2]),
                                 int(face.box[0]):int(face.box[0] + face.box[2])], (32, 32))
    pasted = PasteBack(face)(crop)
    assert pasted.shape == face.image.shape
    assert np.abs(pasted.astype(int) - face.image.astype(int)).mean() < 12


def test_no_face_fails_naming_the_file(setup):
    with pytest.raises(FaceError, match=r"blank\.png: no face found"):
        prepare_face(setup["blank"], setup["params"])
    with pytest.raises(FaceError, match="image file not found"):
        prepare_face(setup["root"] / "missing.jpg", setup["params"])


def test_two_faces_take_the_largest_with_a_warning_or_fail_by_flag(setup, caplog):
    with caplog.at_level(logging.WARNING):
        face = prepare_face(setup["two"], setup["params"], on_multiple="largest")
    assert face.n_faces == 2 and "2 faces found" in caplog.text and "using the largest" in caplog.text
    with pytest.raises(FaceError, match=r"two\.png: 2 faces found"):
        prepare_face(setup["two"], setup["params"], on_multiple="fail")


def test_unreadable_audio_fails_naming_the_file(setup, tmp_path):
    bad = tmp_path / "speech.wav"
    bad.write_text("not audio at all")
    with pytest.raises(AudioError, match=r"speech\.wav: cannot decode audio"):
        prepare_audio(bad, setup["params"], tmp_path)
    with pytest.raises(AudioError, match="audio file not found"):
        prepare_audio(tmp_path / "none.mp3", setup["params"], tmp_path)


def test_unknown_emotion_lists_the_valid_ones(setup, capsys):
    with pytest.raises(ValueError, match="unknown emotion 'furious'") as err:
        emotion_mix("furious")
    assert all(e in str(err.value) for e in EMOTIONS)
    from eat.cli import main

    rc = main(["generate", "--image", setup["image"], "--audio", setup["audio"], "--emotion", "furious", "-o",
               str(setup["root"] / "x.mp4")])
    assert rc == 2 and ", ".join(EMOTIONS) in capsys.readouterr().err


def test_emotion_mixes():
    assert parse_mix("angry:0.5, surprised:0.5") == {"angry": 0.5, "surprised": 0.5}
    assert emotion_mix("happy", 0.7) == pytest.approx({"happy": 0.7, "neutral": 0.3})
    assert emotion_mix("sad") == {"sad": 1.0}
    with pytest.raises(ValueError, match="not both"):
        emotion_mix("sad", mix="angry:1")
    with pytest.raises(ValueError, match="outside"):
        emotion_mix("sad", 1.5)


def test_natural_motion_is_gentle_and_chunk_independent():
    whole = natural_motion(0, 500, 25.0, seed=3)
    assert np.array_equal(whole, np.concatenate([natural_motion(0, 123, 25.0, 3), natural_motion(123, 500, 25.0, 3)]))
    assert np.all(np.sqrt((whole[:, :3] ** 2).mean(0)) < 5) and np.abs(np.diff(whole[:, :3], axis=0)).max() < 1
    assert not np.array_equal(whole, natural_motion(0, 500, 25.0, seed=4))


def test_long_audio_features_in_chunks_match_one_pass(setup, tmp_path):
    rng = np.random.default_rng(0)
    samples = (0.1 * rng.normal(size=16000 * 8)).astype(np.float32)       # 200 frames
    sf.write(tmp_path / "long.flac", samples, 16000)
    audio = prepare_audio(tmp_path / "long.flac", setup["params"], tmp_path)
    from eat.features.speech import make_backend

    fp = feature_params(setup["params"])
    backend = make_backend(fp, setup["paths"]["recognizer"])
    assert audio.n_frames == 200
    whole = audio.features(0, 200, fp, backend)
    parts = [audio.features(a, min(a + 60, 200), fp, backend) for a in range(0, 200, 60)]
    np.testing.assert_allclose(np.concatenate([p["mel"] for p in parts]), whole["mel"], atol=1e-4)
    # the recogniser standardises its input over what it is given: chunks differ slightly, not in kind
    speech = np.concatenate([p["speech"] for p in parts])
    assert np.abs(speech - whole["speech"]).max() < 0.1 * np.abs(whole["speech"]).max()
    assert np.corrcoef(speech.ravel(), whole["speech"].ravel())[0, 1] > 0.99


def test_batch_reports_a_bad_row_and_runs_the_rest(setup):
    root = setup["root"]
    rows = pd.DataFrame([
        {"image": "astronaut.png", "audio": "speech.wav", "emotion": "sad", "intensity": "", "output": "b1.mp4"},
        {"image": "nobody.png", "audio": "speech.wav", "emotion": "happy", "intensity": "0.5", "output": "b2.mp4"},
        {"image": "astronaut.png", "audio": "speech.wav", "emotion": "surprised", "intensity": "0.8",
         "output": "b3.mp4"}])
    rows.to_csv(root / "rows.csv", index=False)
    p = setup["paths"]
    job = BatchJob(setup["params"].model_dump_json(), str(p["adaptation"]), str(p["recognizer"]), None, "static", 0,
                   False, "largest", 1, "cpu", str(root))
    table = run_batch(root / "rows.csv", job, workers=1)
    status = pd.read_csv(root / "rows.status.csv")
    assert list(status.status) == ["ok", "error", "ok"] and list(table.status) == list(status.status)
    assert "nobody.png: image file not found" in status.error[1]
    assert probe_media(root / "b3.mp4").n_frames == FRAMES
    assert [r["status"] for r in json.loads((root / "rows.status.json").read_text())] == ["ok", "error", "ok"]
