"""Training pairs of the latent model: same-clip pairs (osfv), neutral → emotional pairs (enhanced), determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eat.latent.data import FrameBank, PairSampler, neutral_partners


def toy_bank() -> FrameBank:
    """Two identities × (neutral, angry) of sentence 001, plus an LRW clip; 5 frames each."""
    rows = [("MEAD", "M005", "neutral", "001"), ("MEAD", "M005", "angry", "001"), ("MEAD", "W011", "neutral", "001"),
            ("MEAD", "W011", "angry", "001"), ("MEAD", "W011", "happy", "002"), ("LRW", "s01", "neutral", "ABOUT")]
    clips = pd.DataFrame(rows, columns=["dataset", "identity", "emotion", "sentence"])
    n = 5 * len(clips)
    return FrameBank(clips, np.zeros((n, 8, 8, 3), np.uint8), np.zeros((n, 68, 2), np.float32),
                     np.zeros((n, 6), np.float32), np.repeat(np.arange(len(clips)), 5).astype(np.int32),
                     np.arange(0, n + 1, 5))


def test_neutral_partner_is_same_identity_and_sentence():
    assert neutral_partners(toy_bank().clips).tolist() == [-1, 0, -1, 2, -1, -1]   # happy/002 has no neutral 002


@pytest.mark.parametrize("mode", ["osfv", "enhanced"])
def test_pairs_are_a_function_of_seed_and_step(mode):
    bank = toy_bank()
    a, b = PairSampler(bank, mode, 3), PairSampler(bank, mode, 3)
    for step in (0, 7, 1000):
        assert all(np.array_equal(x, y) for x, y in zip(a.pairs(step, 16), b.pairs(step, 16), strict=True))
    assert not np.array_equal(a.pairs(0, 16)[1], a.pairs(1, 16)[1])
    assert not np.array_equal(a.pairs(0, 16)[1], PairSampler(bank, mode, 4).pairs(0, 16)[1])


def test_osfv_pairs_stay_in_one_clip_and_enhanced_pairs_cross_to_the_neutral_partner():
    bank = toy_bank()
    partner = neutral_partners(bank.clips)
    source, driving = PairSampler(bank, "osfv", 0).pairs(0, 400)
    assert np.array_equal(bank.clip[source], bank.clip[driving])
    source, driving = PairSampler(bank, "enhanced", 0).pairs(0, 400)
    for s, d in zip(bank.clip[source], bank.clip[driving], strict=True):
        assert s == (partner[d] if partner[d] >= 0 else d)
    assert (partner[bank.clip[driving]] >= 0).any()   # the cross pairs do occur


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="osfv | enhanced"):
        PairSampler(toy_bank(), "vanilla", 0)


def test_augmentation_treats_source_and_driving_alike_and_mirrors_pose():
    import torch

    from eat.latent.data import Augmentation, Batch

    image = torch.rand(1, 3, 8, 8)
    landmarks = np.array([[[1.0, 2.0]] * 68], np.float32)
    batch = Batch(image, image.clone(), landmarks, torch.tensor([[10.0, 5.0, -3.0]]))
    flipped = Augmentation(1.0, 0, 0, 0, 0)(batch, [np.random.default_rng(0)])
    # a zero jitter still round-trips through HSV: equal to float precision, whatever kernels earlier tests chose
    assert torch.allclose(flipped.source, image.flip(-1), atol=1e-6) and torch.equal(flipped.source, flipped.driving)
    assert flipped.driving_landmarks[0, 0].tolist() == [6.0, 2.0]
    assert flipped.driving_pose.tolist() == [[-10.0, 5.0, 3.0]]
    jittered = Augmentation(0.0, 0.3, 0.3, 0.3, 0.5)(batch, [np.random.default_rng(1)])
    assert torch.allclose(jittered.source, jittered.driving) and not torch.allclose(jittered.source, image)
    again = Augmentation(0.0, 0.3, 0.3, 0.3, 0.5)(batch, [np.random.default_rng(1)])
    assert torch.equal(again.source, jittered.source)
    assert batch.driving_landmarks[0, 0].tolist() == [1.0, 2.0]   # the input batch is left untouched


def test_colour_augmentation_recolours_source_and_driving_alike_and_is_off_at_zero():
    import torch

    from eat.latent.data import Augmentation, Batch, ColourAugmentation

    pair = torch.rand(2, 3, 8, 8)
    assert torch.equal(ColourAugmentation(0.0)(pair, np.random.default_rng(0)), pair)
    out = ColourAugmentation(1.0)(pair, np.random.default_rng(3))
    assert out.shape == pair.shape and 0 <= out.min() and out.max() <= 1 and not torch.allclose(out, pair)
    # one draw for the whole stack: a pixel with the same colour in source and driving stays the same in both
    same = torch.rand(1, 3, 8, 8).expand(2, -1, -1, -1)
    recoloured = ColourAugmentation(1.0)(same, np.random.default_rng(4))
    assert torch.equal(recoloured[0], recoloured[1])
    batch = Batch(pair[:1], pair[:1].clone(), np.zeros((1, 68, 2), np.float32), torch.zeros(1, 3))
    augmented = Augmentation(0.0, 0, 0, 0, 0, ColourAugmentation(1.0))(batch, [np.random.default_rng(5)])
    assert torch.equal(augmented.source, augmented.driving) and not torch.allclose(augmented.source, pair[:1])


def test_groundtruth_head_pose_takes_the_sidecar_angle_nearest_in_time(tmp_path):
    from eat.latent.data import groundtruth_head_pose

    bank = toy_bank()
    clips = bank.clips.assign(clip_id=[f"c{i}" for i in range(len(bank.clips))], fps=25.0)
    bank = FrameBank(clips, bank.frames, bank.landmarks, bank.pose, bank.clip, bank.start)
    raw = [{"clip_id": f"c{i}", "frame": f, "yaw": float(100 * i + f), "pitch": -1.0, "roll": 2.0}
           for i in range(len(clips)) for f in range(10)]                 # 50 fps raw: two raw frames per frame
    pd.DataFrame(raw).to_parquet(tmp_path / "frames.parquet")
    pd.DataFrame({"clip_id": clips.clip_id, "fps": 50.0}).to_parquet(tmp_path / "clips.parquet")
    out = groundtruth_head_pose(bank, tmp_path / "frames.parquet")
    assert out.pose[bank.clip_frames(2), 0].tolist() == [200.0, 202.0, 204.0, 206.0, 208.0]
    assert (out.pose[:, 1] == -1).all() and (out.pose[:, 3:] == bank.pose[:, 3:]).all()
    with pytest.raises(FileNotFoundError, match="headpose_labels: groundtruth works only on the embedded"):
        groundtruth_head_pose(bank, tmp_path / "absent" / "frames.parquet")


def test_driving_roll_turns_the_driving_frame_its_landmarks_and_its_roll_together_and_leaves_the_source():
    import torch

    from eat.latent.data import Augmentation, Batch, rotate_frame

    image = torch.zeros(1, 3, 33, 33)
    image[0, :, 16, 28] = 1.0                                     # one bright pixel right of the centre (16, 16)
    landmarks = np.array([[[28.0, 16.0]] * 68], np.float32)
    batch = Batch(image, image.clone(), landmarks, torch.tensor([[10.0, 5.0, -3.0]]))
    turned = Augmentation(0.0, 0, 0, 0, 0, driving_roll=30.0)(batch, [np.random.default_rng(2)])
    angle = turned.driving_pose[0, 2].item() + 3.0
    assert 0 < abs(angle) <= 30 and turned.driving_pose[0, :2].tolist() == [10.0, 5.0]   # only the roll changes
    x, y = turned.driving_landmarks[0, 0]
    assert np.degrees(np.arctan2(y - 16, x - 16)) == pytest.approx(angle, abs=1e-3)   # clockwise on screen: +roll
    brightest = divmod(int(turned.driving[0, 0].argmax()), 33)
    assert abs(brightest[0] - y) <= 1 and abs(brightest[1] - x) <= 1      # the image turned with its landmarks
    assert torch.allclose(turned.source, image, atol=1e-6)               # the source frame does not move
    still, same = rotate_frame(image[0], landmarks[0], 0.0)
    assert torch.allclose(still, image[0], atol=1e-5) and np.allclose(same, landmarks[0])
