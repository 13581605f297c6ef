"""Outside inputs to ``eat generate``, ``eat batch`` and preprocessing (issue 19, item 3): every input ends in a
valid video or in one line on stderr naming the file and the reason, exit status 2, no traceback.

The corpus is generated here (nothing binary is committed), one group per failure class found by outside inputs:

* missed face — a 100–260 px face anywhere in a 3840×2160 photo (``skimage.data.astronaut`` pasted into a
  canvas), and a small face in a large video frame for preprocessing's Face Mesh;
* silent garbage — audio of one sample, audio one sample short of an A2ET window, a batch row with such audio,
  a batch CSV without rows, a "driving video" with no video stream;
* no progress on long work — the frame bar (with ETA) of ``eat generate`` and the bars of ``eat batch``;
* driving-video edge cases — a one-frame video, a still image and a three-frame video as ``--pose`` (warned:
  held, or played back and forth), videos with a display rotation (read upright by ``eat generate`` and by the
  ``normalise`` stage).

Models are seeded random weights at micro sizes (eat/generate/random_models.py), as in tests/test_generate.py.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys

import cv2
import decord
import numpy as np
import pandas as pd
import pytest
import skimage.data
import soundfile as sf
import torch
import yaml

from eat.cli import main
from eat.generate.audio import AudioError, prepare_audio
from eat.generate.batch import BatchJob, run_batch
from eat.generate.face import FaceError, prepare_face
from eat.generate.pipeline import Generator, InputError, blame, frame_bar, generate, make_request
from eat.generate.pose import PoseError, ping_pong, video_pose
from eat.generate.random_models import write_random_models
from eat.io.media import open_video, read_video, run_ffmpeg, write_video
from eat.preprocess.landmarks import MediaPipeDetector, search_tiles
from eat.preprocess.normalise import normalise_clip
from eat.preprocess.probe import probe_media
from tests.conftest import REPO, micro_params

RATE = 16000
HOP = 640
WINDOW = 5                   # signal.window_frames of the fixture's model
FRAMES = 12                  # the speech clip: 12 frames of 640 samples
CANVAS = (2160, 3840)        # 4K UHD, height × width


def _png(path, image: np.ndarray) -> str:
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return str(path)


def _speech(n_samples: int, seed: int = 0) -> np.ndarray:
    t = np.arange(n_samples) / RATE
    noise = np.random.default_rng(seed).normal(scale=0.01, size=n_samples)
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 4 * t)) / 2 + noise).astype(np.float32)


def _in_canvas(image: np.ndarray, scale: float, x: int, y: int, shape=CANVAS) -> np.ndarray:
    """``image`` resized by ``scale`` and pasted at (x, y) into a grey canvas."""
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    canvas = np.full((*shape, 3), 96, np.uint8)
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    return canvas


def _rotated_video(path, upright: list[np.ndarray], rotation: int, fps: float = 25.0) -> str:
    """An mp4 whose stored frames are ``upright`` turned by −``rotation``° and whose display matrix turns them back
    (a phone's ``rotate=90`` tag is ``rotation`` −90: ffmpeg's counter-clockwise sign)."""
    stored = [np.ascontiguousarray(np.rot90(f, -rotation // 90)) for f in upright]
    raw = path.with_name(f"raw_{path.name}")
    write_video(raw, stored, fps, stored[0].shape[1], stored[0].shape[0], crf=12)
    run_ffmpeg(["-display_rotation", str(rotation), "-i", str(raw), "-c", "copy", str(path)], path)
    return str(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("inputs")
    params = micro_params({"signal": {"window_frames": WINDOW}, "latent": {"pca_components": 8}})
    paths = write_random_models(params, root / "models")
    generator = Generator(params, paths["adaptation"], recognizer=paths["recognizer"], device="cpu")
    astronaut = skimage.data.astronaut()
    sf.write(root / "speech.wav", _speech(FRAMES * HOP), RATE)
    sf.write(root / "one_sample.wav", _speech(1), RATE)
    sf.write(root / "short.wav", _speech(WINDOW * HOP - 1), RATE)
    sf.write(root / "window.wav", _speech(WINDOW * HOP), RATE)
    sf.write(root / "long.wav", _speech(60 * HOP), RATE)
    (root / "garbage.jpg").write_bytes(b"\xff\xd8\xff this is not a JPEG")
    (root / "garbage.mp4").write_text("not a video")
    (root / "notes.wav").write_text("not audio")
    run_ffmpeg(["-i", str(root / "speech.wav"), "-c:a", "aac", "-f", "mp4", str(root / "audio_only.mp4")],
               root / "audio_only.mp4")
    # a landscape frame, so that a quarter turn changes its shape: the astronaut at the left of a 640×512 frame
    wide = np.full((512, 640, 3), 60, np.uint8)
    wide[:, :512] = astronaut
    upright = [np.roll(wide, 4 * i, axis=1) for i in range(6)]
    write_video(root / "upright.mp4", upright, 25.0, 640, 512, crf=12)
    write_video(root / "as_long.mp4", upright * 2, 25.0, 640, 512, crf=12)            # as many frames as the audio
    write_video(root / "one_frame.mp4", upright[:1], 25.0, 640, 512, crf=12)
    write_video(root / "three_frames.mp4", upright[:3], 25.0, 640, 512, crf=12)
    write_video(root / "faceless.mp4", [np.full((512, 640, 3), 60, np.uint8)] * 3, 25.0, 640, 512)
    for rotation in (-90, 90, 180):
        _rotated_video(root / f"rotated_{rotation}.mp4", upright, rotation)
    yield {"root": root, "params": params, "paths": paths, "generator": generator, "upright": np.stack(upright),
           "image": _png(root / "astronaut.png", astronaut),
           "face": prepare_face(_png(root / "astronaut.png", astronaut), params),
           "uhd_small": _png(root / "uhd_small.png", _in_canvas(astronaut, 1.1, 3200, 1500)),
           "uhd_large": _png(root / "uhd_large.png", _in_canvas(astronaut, 2.5, 150, 700)),
           "uhd_none": _png(root / "uhd_none.png", np.random.default_rng(1).integers(70, 130, (*CANVAS, 3),
                                                                                      dtype=np.uint8)),
           "still": _png(root / "still.png", wide)}
    torch.set_num_threads(threads)


def _run(corpus, monkeypatch, *args: str) -> int:
    """``eat generate`` in-process on the fixture's generator (the command line's own code otherwise)."""
    import eat.cli

    monkeypatch.setattr(eat.cli, "_generator", lambda args: corpus["generator"])
    return main(["generate", *args])


def _error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    return lines[0]


# --- missed face ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, scale, x, y", [("uhd_small", 1.1, 3200, 1500), ("uhd_large", 2.5, 150, 700)])
def test_a_face_of_100_to_300_px_anywhere_in_a_4k_photo_is_found(corpus, name, scale, x, y):
    face = prepare_face(corpus[name], corpus["params"])
    alone = corpus["face"]
    assert face.n_faces == 1
    expected = alone.landmarks * scale + [x, y]            # the astronaut's own landmarks, moved into the canvas
    width = np.ptp(expected[:, 0])
    assert 100 <= width <= 300
    assert np.abs(face.landmarks.mean(0) - expected.mean(0)).max() < 0.1 * width
    assert np.ptp(face.landmarks[:, 0]) == pytest.approx(width, rel=0.15)


def test_a_4k_photo_without_a_face_still_says_no_face(corpus):
    with pytest.raises(FaceError, match=r"uhd_none\.png: no face found"):
        prepare_face(corpus["uhd_none"], corpus["params"])


def test_tiles_cover_a_large_frame_coarse_to_fine_and_leave_small_frames_alone():
    assert search_tiles(180, 320) == [] and search_tiles(360, 640) == [] and search_tiles(512, 512) == []
    levels = search_tiles(*CANVAS)
    assert [lv[0][2] for lv in levels] == [2160, 1080, 540]
    for level in levels:
        side = level[0][2]
        xs, ys = sorted({t[0] for t in level}), sorted({t[1] for t in level})
        assert xs[0] == 0 and ys[0] == 0 and xs[-1] + side == CANVAS[1] and ys[-1] + side == CANVAS[0]
        assert max(np.diff(xs, prepend=0).max(), np.diff(ys, prepend=0).max()) <= side // 2   # half-tile overlap


def test_preprocessing_face_mesh_finds_a_small_face_in_a_large_frame_through_the_tiles(corpus):
    frames = [_in_canvas(skimage.data.astronaut(), 0.6, 1200 + 3 * i, 500, shape=(1080, 1920)) for i in range(3)]
    expected = corpus["face"].landmarks * 0.6 + [1200, 500]
    alone = MediaPipeDetector(fallback=False)
    try:
        assert alone(frames[0]).landmarks is None          # Face Mesh's own detector misses a 60 px face in 1080p
    finally:
        alone.close()
    detector = MediaPipeDetector()
    try:
        found = [detector(f) for f in frames]
    finally:
        detector.close()
    for i, det in enumerate(found):
        assert det.landmarks is not None and det.n_faces == 1
        assert np.abs(det.landmarks.mean(0) - expected.mean(0) - [3 * i, 0]).max() < 8


# --- silent garbage: shorter than the model needs --------------------------------------------------------------------

def test_audio_shorter_than_one_a2et_window_is_an_error_one_window_is_enough(corpus, tmp_path):
    params = corpus["params"]
    for name, seconds in (("one_sample.wav", "0.000"), ("short.wav", "0.200")):
        with pytest.raises(AudioError, match=rf"{name}: the audio is {seconds} s long .* at least 0\.20 s, one A2ET "
                                             rf"window of {WINDOW} frames"):
            prepare_audio(corpus["root"] / name, params, tmp_path)
    assert prepare_audio(corpus["root"] / "window.wav", params, tmp_path).n_frames == WINDOW


def test_one_sample_of_audio_exits_2_with_one_line_and_no_video(corpus, monkeypatch, capsys, tmp_path):
    out = tmp_path / "out.mp4"
    rc = _run(corpus, monkeypatch, "--image", corpus["image"], "--audio", str(corpus["root"] / "one_sample.wav"),
              "--emotion", "happy", "-o", str(out))
    line = _error_line(capsys)
    assert rc == 2 and not out.exists()
    assert re.fullmatch(r"eat generate: error: .*one_sample\.wav: the audio is 0\.000 s long \(1 sample at 16000 "
                        r"Hz\); generation needs at least 0\.20 s.*", line)


def test_the_real_command_prints_one_line_and_exits_2(corpus, tmp_path):
    """As a user runs it: a separate process, stderr at the file-descriptor level (native libraries included)."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(corpus["params"].model_dump(mode="json")))
    proc = subprocess.run([sys.executable, "-m", "eat.cli", "generate", "--image", corpus["image"], "--audio",
                           str(corpus["root"] / "one_sample.wav"), "--emotion", "sad", "-o", str(tmp_path / "o.mp4"),
                           "--params", str(params), "--checkpoint", str(corpus["paths"]["adaptation"]),
                           "--recognizer", str(corpus["paths"]["recognizer"]), "--device", "cpu", "--threads", "1"],
                          check=False, cwd=REPO, capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "one_sample.wav: the audio is 0.000 s long" in lines[0], proc.stderr


def test_batch_row_with_too_short_audio_is_an_error_row_and_an_empty_csv_an_error(corpus, monkeypatch, capsys):
    root = corpus["root"]
    pd.DataFrame([
        {"image": "astronaut.png", "audio": "speech.wav", "emotion": "sad", "intensity": "", "output": "r1.mp4"},
        {"image": "astronaut.png", "audio": "one_sample.wav", "emotion": "happy", "intensity": "", "output": "r2.mp4"},
        {"image": "astronaut.png", "audio": "speech.wav", "emotion": "happy", "intensity": "", "output": "r3.mp4",
         "pose": "audio_only.mp4"},
    ]).to_csv(root / "rows.csv", index=False)
    p = corpus["paths"]
    job = BatchJob(corpus["params"].model_dump_json(), str(p["adaptation"]), str(p["recognizer"]), None, "static", 0,
                   False, "largest", 1, "cpu", str(root))
    monkeypatch.chdir(root)                  # the in-process row changes into job.cwd; restored after the test
    table = run_batch(root / "rows.csv", job, workers=1)
    assert list(table.status) == ["ok", "error", "error"]
    assert re.fullmatch(r"AudioError: .*one_sample\.wav: the audio is 0\.000 s long .*", table.error[1])
    assert re.fullmatch(r"PoseError: .*audio_only\.mp4: cannot read the driving video: no video stream.*",
                        table.error[2])
    assert probe_media(root / "r1.mp4").n_frames == FRAMES and not (root / "r2.mp4").exists()
    err = capsys.readouterr().err
    assert "eat batch: 100%" in err and "3/3" in err and f"r1.mp4:   0%|          | 0/{FRAMES}" in err  # rows, frames

    (root / "empty.csv").write_text("image,audio,emotion,intensity,output\n")
    rc = main(["batch", str(root / "empty.csv"), "--workers", "1", "--params", str(REPO / "params.yaml")])
    assert rc == 2 and re.fullmatch(r"eat batch: error: .*empty\.csv: no rows; .*", _error_line(capsys))


# --- progress on long work -----------------------------------------------------------------------------------------

def test_generate_shows_a_frame_bar_with_an_eta(corpus, monkeypatch, capsys, tmp_path):
    rc = _run(corpus, monkeypatch, "--image", corpus["image"], "--audio", str(corpus["root"] / "long.wav"),
              "--emotion", "angry", "-o", str(tmp_path / "long.mp4"))
    out = capsys.readouterr()
    assert rc == 0 and "wrote" in out.out
    assert re.search(r"long\.mp4: 100%.*\| 60/60 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+frame/s\]", out.err), out.err


def test_the_bar_follows_the_frames_and_closes_on_failure(corpus, tmp_path):
    bars = []

    def progress(total, label):
        bars.append(frame_bar(total, label))
        return bars[-1]

    generate(corpus["generator"], make_request(corpus["image"], corpus["root"] / "speech.wav",
                                               str(tmp_path / "a.mp4"), {"sad": 1.0}), progress=progress)
    assert bars[0].total == FRAMES and bars[0].n == FRAMES
    with pytest.raises(PoseError):
        generate(corpus["generator"], make_request(corpus["image"], corpus["root"] / "speech.wav",
                                                   str(tmp_path / "b.mp4"), {"sad": 1.0},
                                                   pose=str(corpus["root"] / "faceless.mp4")), progress=progress)
    assert len(bars) == 1            # a pose error comes before the bar: the error stays the only line


# --- driving-video edge cases --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, warning", [
    ("one_frame.mp4", r"one_frame\.mp4: the driving video has one frame; its head pose is held still for all 12 "
                      r"frames \(0\.48 s\)"),
    ("still.png", r"still\.png: the driving video has one frame; its head pose is held still"),
    ("three_frames.mp4", r"three_frames\.mp4: the driving video \(3 frames, 0\.12 s\) is shorter than the audio "
                         r"\(0\.48 s\); its head pose is played forwards, then backwards"),
    ("as_long.mp4", None)])
def test_a_short_driving_video_says_how_its_pose_is_extended(corpus, caplog, name, warning, tmp_path):
    out = tmp_path / "posed.mp4"
    with caplog.at_level(logging.WARNING):
        result = generate(corpus["generator"], make_request(corpus["image"], corpus["root"] / "speech.wav", str(out),
                                                            {"happy": 1.0}, pose=str(corpus["root"] / name)))
    assert result.n_frames == FRAMES and probe_media(out).n_frames == FRAMES
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    if warning is None:
        assert not messages
    else:
        assert any(re.search(warning, m) for m in messages), messages


def test_ping_pong_plays_forwards_then_backwards():
    assert list(ping_pong(np.arange(10), 3)) == [0, 1, 2, 1, 0, 1, 2, 1, 0, 1]
    assert list(ping_pong(np.arange(4), 1)) == [0, 0, 0, 0]


@pytest.mark.parametrize("rotation", [-90, 90, 180])
def test_a_video_with_a_display_rotation_is_read_upright(corpus, rotation):
    path = corpus["root"] / f"rotated_{rotation}.mp4"
    stream = open_video(path)
    assert stream.rotation % 360 == rotation % 360 and (stream.width, stream.height) == (640, 512)
    frames = read_video(path)
    assert frames.shape == corpus["upright"].shape
    assert np.abs(frames.astype(int) - corpus["upright"]).mean() < 3
    assert len(list(stream.frames(limit=2))) == 2


def test_generate_follows_a_rotated_driving_video_as_an_upright_one(corpus, monkeypatch):
    """The aligned crops the head-pose estimator sees: the same for the upright and the rotated video, not for the
    same stored frames without their display matrix (random weights give near-constant poses: compare crops)."""
    import eat.generate.pose as pose

    seen: list[np.ndarray] = []
    original = pose.image_pose
    monkeypatch.setattr(pose, "image_pose", lambda nets, frames: seen.append(frames) or original(nets, frames))
    nets, params = corpus["generator"].nets, corpus["generator"].params

    def crops(name: str) -> np.ndarray:
        seen.clear()
        poses = video_pose(corpus["root"] / name, nets, params, FRAMES)
        assert poses.shape == (FRAMES, 6)
        return np.concatenate(seen).astype(int)

    upright = crops("upright.mp4")
    for rotation in (-90, 90):
        assert np.abs(crops(f"rotated_{rotation}.mp4") - upright).mean() < 4
    assert np.abs(crops("raw_rotated_-90.mp4") - upright).mean() > 20          # sideways, as stored


def test_preprocessing_normalises_a_rotated_clip_upright(corpus, tmp_path):
    """The ``normalise`` stage re-encodes through ffmpeg, which applies the display matrix: the normalised video
    that crop_align reads with decord is upright and carries no rotation."""
    upright = corpus["upright"]
    phone = _rotated_video(tmp_path / "phone.mp4", list(upright) * 4, -90)
    sf.write(tmp_path / "phone.wav", _speech(24 * HOP), RATE)
    row = {"uid": "phone", "video_path": phone, "audio_path": str(tmp_path / "phone.wav")}
    fields = normalise_clip(row, tmp_path, corpus["params"].signal, corpus["params"].normalise)
    assert fields["n_frames"] == 24 and open_video(fields["video_norm"]).rotation == 0
    frames = decord.VideoReader(fields["video_norm"], ctx=decord.cpu(0))
    first = frames[0].asnumpy()
    assert first.shape == (512, 640, 3) and np.abs(first.astype(int) - upright[0]).mean() < 4


def test_ingest_probe_reports_the_displayed_size_of_a_rotated_video(corpus):
    info = probe_media(corpus["root"] / "rotated_-90.mp4")
    assert (info.width, info.height) == (640, 512)


# --- every input: a valid video or one line, exit 2 ----------------------------------------------------------------

GOOD = {   # name → extra command-line arguments (paths relative to the corpus root)
    "4k_photo_small_face": ["--image", "uhd_small.png"],
    "4k_photo_large_face": ["--image", "uhd_large.png"],
    "still_image_as_pose": ["--pose", "still.png", "--paste-back"],
    "exactly_one_window": ["--audio", "window.wav"],
    "one_frame_pose": ["--pose", "one_frame.mp4"],
    "rotated_pose": ["--pose", "rotated_-90.mp4"],
}

BAD = {    # name → (extra arguments, the file the error names, its reason)
    "garbage_image": (["--image", "garbage.jpg"], "garbage.jpg", "cannot read the image"),
    "4k_without_face": (["--image", "uhd_none.png"], "uhd_none.png", "no face found"),
    "one_sample": (["--audio", "one_sample.wav"], "one_sample.wav", "the audio is 0.000 s long"),
    "short_of_a_window": (["--audio", "short.wav"], "short.wav", "generation needs at least 0.20 s"),
    "text_as_audio": (["--audio", "notes.wav"], "notes.wav", "cannot decode audio"),
    "missing_audio": (["--audio", "absent.wav"], "absent.wav", "audio file not found"),
    "text_as_pose_video": (["--pose", "garbage.mp4"], "garbage.mp4", "cannot read the driving video"),
    "audio_as_pose_video": (["--pose", "audio_only.mp4"], "audio_only.mp4", "no video stream"),
    "faceless_pose_video": (["--pose", "faceless.mp4"], "faceless.mp4", "no face in the first frame"),
    "not_mp4_output": (["-o", "out.avi"], "out.avi", "the output is an mp4 file"),
}


def _args(corpus, extra: list[str], out) -> list[str]:
    args = {"--image": corpus["image"], "--audio": str(corpus["root"] / "speech.wav"), "--emotion": "surprised",
            "-o": str(out)}
    flags = []
    for i, a in enumerate(extra):
        if a.startswith("-") and i + 1 < len(extra) and not extra[i + 1].startswith("-"):
            args[a] = extra[i + 1] if a == "-o" else str(corpus["root"] / extra[i + 1])
        elif a.startswith("-"):
            flags.append(a)
    return [x for kv in args.items() for x in kv] + flags


@pytest.mark.parametrize("case", list(GOOD))
def test_good_input_gives_a_playable_video(corpus, monkeypatch, capsys, tmp_path, case):
    out = tmp_path / f"{case}.mp4"
    rc = _run(corpus, monkeypatch, *_args(corpus, GOOD[case], out))
    assert rc == 0, capsys.readouterr().err
    info = probe_media(out)
    frames = WINDOW if case == "exactly_one_window" else FRAMES
    assert info.has_video and info.has_audio and info.n_frames == frames


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_gives_one_line_naming_the_file_and_exit_2(corpus, monkeypatch, capsys, tmp_path, case):
    extra, name, reason = BAD[case]
    out = tmp_path / "out.mp4"
    rc = _run(corpus, monkeypatch, *_args(corpus, extra, out))
    line = _error_line(capsys)
    assert rc == 2 and line.startswith("eat generate: error: ") and name in line and reason in line, line
    assert not out.exists()


def test_an_unexpected_failure_on_an_input_names_the_file(corpus, monkeypatch, capsys, tmp_path):
    with pytest.raises(InputError, match=r"photo\.jpg: cannot use this image \(RuntimeError: odd bytes\)"):
        with blame("photo.jpg", "image"):
            raise RuntimeError("odd\nbytes")

    def broken(*args, **kwargs):
        raise cv2.error("OpenCV(4.11) resize.cpp:4208: error: (-215:Assertion failed) !ssize.empty()")

    monkeypatch.setattr("eat.generate.pipeline.prepare_face", broken)
    rc = _run(corpus, monkeypatch, *_args(corpus, [], tmp_path / "x.mp4"))
    line = _error_line(capsys)
    assert rc == 2 and re.fullmatch(r"eat generate: error: .*astronaut\.png: cannot use this image \(error: .*\)",
                                    line)
