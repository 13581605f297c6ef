"""Emotion-FAN on the supervision fixture (tests/supervision_fixture.py): it trains on Ray Train to the very weights
of the plain single-process loop it had before it, resumes after a kill to the weights of an uninterrupted run, trains
on still clips alone first and then mixed into the clips, trains on the crops Acc_emo judges, and learns the
fixture's emotion colours."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from eat.config import (
    EMOTIONS,
    EmotionClassifierConfig,
    EmotionStillsConfig,
)
from eat.emotion import train as emotion_train
from eat.emotion.emotion_fan import EmotionFAN, face_crops, load_emotion_fan
from eat.emotion.predict import video_probabilities
from eat.emotion.train import (
    EmotionClip,
    emotion_tables,
    frames_tensor,
    load_emotion_classifier,
    load_emotion_clips,
    read_face_crops,
    train_emotion_classifier,
)
from eat.io.reproducible import SUPERVISOR_THREADS, reproducible_torch
from eat.io.video import read_frames
from tests.processes import drop_newest_checkpoint, in_fresh_process
from tests.supervision_fixture import (
    FACE_COLOUR,
    FRAMES,
    JUDGED_SIZE,
    RAY,
    SIZE,
    emotion_cfg,
    log_losses,
    same_weights,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _plain_emotion_loop(cfg: EmotionClassifierConfig, clips: list, seed: int,
                        initial: dict[str, torch.Tensor] | None = None) -> torch.nn.Module:
    """The expected weights: the single-process loop the stage ran before Ray Train (seed, classifier (from
    ``initial`` weights when given), optimiser, step schedule, then steps on batches of (seed, step) with dropout
    seeded by (seed, step), on the supervisors' threads with deterministic algorithms), here."""
    torch.manual_seed(seed)
    model, _ = load_emotion_fan(cfg)
    if initial is not None:
        model.load_state_dict(initial)
    optimiser = (torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
                 if cfg.optimizer == "sgd" else
                 torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay))
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimiser, sorted({int(f * cfg.steps) for f in cfg.lr_milestones}),
                                                    gamma=cfg.lr_gamma)
    model.train()
    with reproducible_torch(threads=SUPERVISOR_THREADS, deterministic=True):
        for step in range(cfg.steps):
            frames, labels = emotion_train.make_batch(clips, cfg, seed, step)
            torch.manual_seed(seed * 1_000_003 + step)
            loss = F.cross_entropy(model(frames), labels)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
    return model


def test_emotion_classifier_trains_on_stills_then_clips_to_the_plain_loops_weights_and_resumes_bit_for_bit(
        supervision, on_ray_head):
    # Dropout on, so that the weights depend on each step's seeding; the lr drops after steps 1 and 4 (milestones).
    # The stills (the fixture's own training clips under other names, two frames each) are trained on alone for 3
    # steps first, then mixed into the clips for the stage's 6 steps.
    cfg = emotion_cfg(attention_dropout=0.5, classifier_dropout=0.5,
                      stills=EmotionStillsConfig(identities=1, frames=2, pretrain_steps=3))
    root = supervision["root"]
    out, metrics = root / "emo_whole", root / "ew" / "m.json"
    train_table, _ = emotion_tables(supervision["pose"])
    clips = load_emotion_clips(train_table, cfg.input_size)
    stills = [EmotionClip(f"still__{c.uid}", c.label, c.frames[:2]) for c in clips]
    in_fresh_process(train_emotion_classifier, cfg, 0, supervision["pose"], out, metrics, RAY, stills=stills)
    saved = json.loads(metrics.read_text())
    assert saved["steps"] == 6 and saved["weights"]["weights"] == "scratch"
    assert saved["train_clips"] == len(clips) == 6 and saved["still_clips"] == len(stills)
    assert saved["pretraining"]["steps"] == 3 and saved["pretraining"]["still_clips"] == len(stills)
    assert pd.read_csv(metrics.with_name("pretrain_log.csv")).step.tolist() == [2, 3]
    held, protocol = saved["heldout"], saved["heldout_protocol"]
    assert held["clips"] == 3 and held["chance"] == saved["acc_emo_chance"] == 0.125
    assert protocol["clips"] == 2 and [e for e, acc in protocol["accuracy_by_emotion"].items() if acc is not None] \
        == ["happy", "neutral"]                                   # level 3 and neutral: W009's angry is level 2
    assert saved["acc_emo_ground_truth"] == protocol["mean_over_emotions"]
    assert set(held["accuracy_by_emotion"]) == set(EMOTIONS)
    assert [e for e, acc in held["accuracy_by_emotion"].items() if acc is not None] == sorted(FACE_COLOUR)
    assert np.asarray(held["confusion"]).sum() == 3
    log = log_losses(metrics)
    assert log.step.tolist() == [2, 4, 6] and np.isfinite(log.total).all()

    first = load_emotion_classifier(out / "model.pt")
    pretrained = _plain_emotion_loop(cfg.model_copy(update={"steps": 3}), stills, 0)
    expected = _plain_emotion_loop(cfg, [*clips, *stills], 0, pretrained.state_dict())
    assert same_weights(first, expected), "Ray Train changed the classifier's weights"
    assert not same_weights(expected, _plain_emotion_loop(cfg, [*clips, *stills], 0))   # the stills phase counts

    # Killed after its step-4 checkpoint, before the last one: the rerun keeps the finished stills phase and
    # resumes the clips phase from step 4.
    assert drop_newest_checkpoint(out / "ray" / emotion_train.RUN_NAME) == 4
    resumed = in_fresh_process(train_emotion_classifier, cfg, 0, supervision["pose"], out, metrics, RAY,
                               stills=stills)
    assert resumed["resumed_at_step"] == 4
    assert same_weights(first, load_emotion_classifier(out / "model.pt"))
    assert {**json.loads(metrics.read_text()), "resumed_at_step": 0} == saved
    assert log_losses(metrics).equals(log)


def test_emotion_training_crops_are_the_crops_acc_emo_judges(supervision):
    # Trained on what it will judge: frames at the test videos' resolution, face box cut, resized and rounded to
    # uint8 by the function eat.emotion.predict applies to every judged video, so the stage's held-out score and the
    # Ground Truth row are one number (with unrounded crops they differed by one clip in 48).
    train, _ = emotion_tables(supervision["pose"])
    clip = load_emotion_clips(train.iloc[:1], SIZE, frame_size=JUDGED_SIZE)[0]
    video = read_frames(train.aligned.iloc[0], JUDGED_SIZE)
    judged = face_crops(frames_tensor(video), SIZE).movedim(-3, -1).numpy()
    assert clip.frames.shape == (FRAMES, SIZE, SIZE, 3) and clip.frames.dtype == np.uint8
    assert np.abs(clip.frames / 255.0 - judged).max() <= 0.5 / 255 + 1e-6
    assert not np.array_equal(clip.frames, read_face_crops(train.aligned.iloc[0], SIZE))  # the stored-size path differs
    model = EmotionFAN(emotion_cfg()).eval()
    with torch.inference_mode():
        trained_on = model(frames_tensor(clip.frames)[None]).softmax(1)[0].numpy()
    assert np.array_equal(video_probabilities(model, [video])[0], trained_on)


def test_emotion_classifier_learns_the_fixture_colours(supervision, on_ray_head):
    # The fixture's emotion is the face colour: 80 steps fit the training clips and beat chance on the
    # held-out identity (3 clips, so the held-out bar is loose); frames at half the stored size, as the
    # pipeline trains it for its 64² test videos.
    root = supervision["root"]
    cfg = emotion_cfg(steps=80, checkpoint_every=80, log_every=20)
    result = in_fresh_process(train_emotion_classifier, cfg, 0, supervision["pose"], root / "emo_long",
                              root / "el" / "m.json", RAY, frame_size=JUDGED_SIZE)
    assert result["train_loss_last"] < 0.5 * result["train_loss_first"]
    assert result["train_accuracy"] == 1.0
    assert result["heldout"]["accuracy"] >= 2 / 3 > result["acc_emo_chance"]
    assert result["acc_emo_ground_truth"] >= 1 / 2


def test_emotion_tables_take_mead_only_and_reject_unknown_emotions(supervision, tmp_path):
    train, test = emotion_tables(supervision["pose"])
    assert (train.dataset == "MEAD").all() and len(train) == 6 and len(test) == 3
    table = pd.read_parquet(supervision["pose"])
    table.loc[0, "emotion"] = "bored"
    table.to_parquet(tmp_path / "pose.parquet")
    with pytest.raises(ValueError, match="bored"):
        emotion_tables(tmp_path / "pose.parquet")
