"""Still clips for Emotion-FAN (eat/synth/stills.py): deterministic, one clip per emotion with the classifier's crop,
varied within a clip, identities of their own."""

from __future__ import annotations

import numpy as np

from eat.config import EMOTIONS
from eat.synth.stills import StillSettings, identity_still_clips, still_clips, still_identity_names
from tests.conftest import micro_params


def test_an_identity_shows_every_emotion_once_at_the_classifiers_crop_and_renders_the_same_twice():
    params = micro_params({"emotion_classifier": {"stills": {"identities": 2, "frames": 3, "pretrain_steps": 0}}})
    settings = StillSettings.of(params)
    clips = identity_still_clips("WS0001", settings)
    size = params.emotion_classifier.input_size
    assert [c.label for c in clips] == list(range(len(EMOTIONS)))
    assert all(c.frames.shape == (3, size, size, 3) and c.frames.dtype == np.uint8 for c in clips)
    assert [c.uid.split("__")[2] for c in clips] == list(EMOTIONS)
    assert clips[EMOTIONS.index("neutral")].uid.endswith("level_1")
    again = identity_still_clips("WS0001", settings)
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(clips, again, strict=True))
    # Mouth, blink and pose vary between the stills of a clip; another identity is another face.
    assert all(not np.array_equal(c.frames[0], c.frames[1]) for c in clips)
    other = identity_still_clips("MS0000", settings)
    assert np.abs(other[0].frames.astype(int) - clips[0].frames.astype(int)).mean() > 10


def test_still_identities_are_new_names_alternating_gender_and_the_stage_renders_all_of_them():
    names = still_identity_names(4)
    assert names == ["MS0000", "WS0001", "MS0002", "WS0003"]
    params = micro_params({"emotion_classifier": {"stills": {"identities": 3, "frames": 2, "pretrain_steps": 0}},
                           "ray": {"workers": 1}})
    assert not set(names) & set(params.synth.mead.train_identities + params.synth.mead.test_identities)
    clips = still_clips(params)
    assert len(clips) == 3 * len(EMOTIONS) and len({c.uid for c in clips}) == len(clips)
    assert all(np.array_equal(a.frames, b.frames)
               for a, b in zip(clips[:len(EMOTIONS)], identity_still_clips("MS0000", StillSettings.of(params)),
                               strict=True))
    none = {"identities": 0, "frames": 2, "pretrain_steps": 0}
    assert still_clips(micro_params({"emotion_classifier": {"stills": none}})) == []
