"""Emotion-FAN: shapes, attention that sums to one, masking, a tiny overfit, its weights file, and how its
held-out accuracy is summarised."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from eat.config import EMOTIONS, EmotionClassifierConfig, read_yaml
from eat.emotion.emotion_fan import FAN_MEAD_ORDER, EmotionFAN, _convert_checkpoint, load_emotion_fan
from eat.emotion.train import EmotionClip, evaluate_emotion, jitter, protocol_clips
from eat.weights import WeightsError
from tests.conftest import REPO

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cfg(**change) -> EmotionClassifierConfig:
    """The default profile's emotion_classifier section, shrunk for tests unless ``change`` says otherwise."""
    base = EmotionClassifierConfig.model_validate(read_yaml(REPO / "params.yaml")["emotion_classifier"])
    return base.model_copy(update={"input_size": 32, "base_width": 8, **change})


def test_logits_and_attention_shapes():
    torch.manual_seed(0)
    model = EmotionFAN(_cfg()).eval()
    with torch.no_grad():
        out = model.frame_attention(torch.rand(2, 5, 3, 32, 32))
        resized = model(torch.rand(2, 5, 3, 48, 48))        # other sizes are resized to input_size
    assert out.logits.shape == resized.shape == (2, len(EMOTIONS))
    assert out.alpha.shape == out.weights.shape == (2, 5)
    assert out.features.shape == (2, 5, 8 * 8)
    torch.testing.assert_close(out.alpha.sum(1), torch.ones(2))
    torch.testing.assert_close(out.weights.sum(1), torch.ones(2))
    assert (out.weights > 0).all()


def test_masked_padding_changes_nothing():
    torch.manual_seed(0)
    model = EmotionFAN(_cfg()).eval()
    clip = torch.rand(1, 3, 3, 32, 32)
    padded = torch.cat([clip, torch.rand(1, 2, 3, 32, 32)], dim=1)
    mask = torch.tensor([[True, True, True, False, False]])
    with torch.no_grad():
        plain = model.frame_attention(clip)
        masked = model.frame_attention(padded, mask)
    torch.testing.assert_close(masked.logits, plain.logits, rtol=1e-5, atol=1e-5)
    assert (masked.weights[0, 3:] == 0).all() and (masked.alpha[0, 3:] == 0).all()
    torch.testing.assert_close(masked.weights[:, :3], plain.weights, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="at least one unmasked frame"):
        model(padded, torch.zeros(1, 5, dtype=torch.bool))


def test_overfits_two_toy_clips_of_distinct_colours():
    torch.manual_seed(0)
    model = EmotionFAN(_cfg(attention_dropout=0.0, classifier_dropout=0.0))
    colours = torch.tensor([[0.9, 0.2, 0.1], [0.1, 0.3, 0.9]])
    clips = colours[:, None, :, None, None].expand(2, 3, 3, 32, 32) + 0.05 * torch.randn(2, 3, 3, 32, 32)
    labels = torch.tensor([EMOTIONS.index("angry"), EMOTIONS.index("sad")])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(12):
        loss = F.cross_entropy(model(clips), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def _box(frame: np.ndarray) -> tuple[int, int]:
    """Width and height of the bright pixels' bounding box."""
    ys, xs = np.nonzero(frame[..., 0] > 127)
    return xs.max() - xs.min() + 1, ys.max() - ys.min() + 1


def test_aspect_jitter_stretches_a_square_into_rectangles_of_both_kinds():
    square = np.zeros((2, 96, 96, 3), np.uint8)
    square[:, 28:68, 28:68] = 255
    cfg = _cfg(crop_jitter=0.0, color_jitter=0.0, aspect_jitter=0.3)
    ratios = []
    for seed in range(8):
        views = jitter(square, cfg, np.random.default_rng(seed))
        assert np.array_equal(views[0], views[1])           # one view for every frame of the clip
        width, height = _box(views[0])
        ratios.append(width / height)
    assert min(ratios) < 0.9 and max(ratios) > 1.1 and all(np.exp(-0.3) - 0.06 < r < np.exp(0.3) + 0.06 for r in ratios)


def test_no_jitter_keeps_the_frames():
    frames = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    cfg = _cfg(crop_jitter=0.0, color_jitter=0.0, aspect_jitter=0.0)
    assert np.array_equal(jitter(frames, cfg, np.random.default_rng(1)), frames)


def test_pretrained_without_the_file_names_it(tmp_path):
    with pytest.raises(WeightsError, match=rf"put self_relation-attention_61_84\.3655 in {tmp_path}/"):
        load_emotion_fan(_cfg(weights="pretrained"), tmp_path)


def test_auto_without_the_file_trains_from_scratch(tmp_path):
    model, info = load_emotion_fan(_cfg(weights="auto"), tmp_path)
    assert isinstance(model, EmotionFAN)
    assert info["weights"] == "scratch" and not info["pretrained"]
    assert "self_relation-attention_61_84.3655" in info["note"]


def test_pretrained_needs_the_official_width(tmp_path):
    (tmp_path / "self_relation-attention_61_84.3655").write_bytes(b"checkpoint")
    with pytest.raises(WeightsError, match="base_width is 8; set it to 64"):
        load_emotion_fan(_cfg(weights="pretrained"), tmp_path)


def test_official_checkpoint_keys_map_and_classes_are_reordered():
    # An Emotion-FAN checkpoint as evaluation_eat saves it: DataParallel keys, the unused ImageNet fc and
    # self-attention head, pred_fc2 rows in Emotion-FAN's MEAD order.
    torch.manual_seed(0)
    source = EmotionFAN(_cfg())
    fan_state = {f"module.{k}": v for k, v in source.backbone.state_dict().items()}   # conv1.weight, layer1…
    d = source.backbone.out_dim
    rows = torch.arange(8, dtype=torch.float32)[:, None].expand(8, 2 * d).clone()  # row r holds r
    fan_state.update({"module.alpha.0.weight": source.alpha.weight, "module.alpha.0.bias": source.alpha.bias,
                      "module.beta.0.weight": source.beta.weight, "module.beta.0.bias": source.beta.bias,
                      "module.pred_fc1.weight": torch.zeros(8, d), "module.pred_fc1.bias": torch.zeros(8),
                      "module.pred_fc2.weight": rows, "module.pred_fc2.bias": torch.arange(8.0),
                      "module.fc.weight": torch.zeros(1000, d), "module.fc.bias": torch.zeros(1000)})
    state, full = _convert_checkpoint(fan_state)
    assert full
    target = EmotionFAN(_cfg())
    target.load_state_dict(state, strict=True)
    for k, emotion in enumerate(EMOTIONS):
        assert target.classifier.bias[k] == FAN_MEAD_ORDER.index(emotion)
    assert target.classifier.bias[EMOTIONS.index("happy")] == 0        # Emotion-FAN's class 0 is happy
    torch.testing.assert_close(target.backbone.conv1.weight, source.backbone.conv1.weight)


class _FirstPixelSays(torch.nn.Module):
    """A stand-in classifier: predicts the EMOTIONS index written in a clip's first pixel."""

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return F.one_hot(frames[:, 0, 0, 0, 0].mul(255).round().long(), len(EMOTIONS)).float()


def _clip(uid: str, label: int, says: int) -> EmotionClip:
    return EmotionClip(uid, label, np.full((2, 4, 4, 3), says, np.uint8))


def test_mean_over_emotions_weighs_each_emotion_once():
    # Three angry clips right, one happy clip wrong: accuracy 3/4, but the mean over the two emotions is 1/2.
    angry, happy = EMOTIONS.index("angry"), EMOTIONS.index("happy")
    clips = [*(_clip(f"a{i}", angry, angry) for i in range(3)), _clip("h", happy, angry)]
    result = evaluate_emotion(_FirstPixelSays(), clips)
    assert result["accuracy"] == 0.75 and result["mean_over_emotions"] == 0.5
    assert result["accuracy_by_emotion"]["sad"] is None and result["confusion"][happy][angry] == 1


def test_protocol_clips_are_level_three_and_neutral():
    table = pd.DataFrame({"emotion": ["angry", "angry", "neutral", "happy"], "level": [1, 3, 1, 2]})
    clips = [_clip(str(i), 0, 0) for i in range(4)]
    assert [c.uid for c in protocol_clips(table, clips)] == ["1", "2"]
