"""Sync networks: the Wav2Lip-style expert (L_sync), SyncNet v2 and syncnet_python's offset search."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eat.config import SyncExpertConfig, read_yaml
from eat.sync.syncnet_v2 import SyncNetV2, load_syncnet_v2, syncnet_mfcc, syncnet_v2_embeddings
from eat.sync.train import SyncClip, make_contrastive_batch, min_train_frames
from eat.sync.wav2lip_expert import (
    FACE_BOX,
    FULL_FRAME,
    SyncExpert,
    face_window,
    mel_window,
    sample_pair,
    standardise_channels,
    sync_bce_loss,
    sync_infonce_loss,
    sync_loss,
    sync_similarity,
)
from eat.weights import WeightsError
from metrics.sync import evaluate_offset, offset_distances
from tests.conftest import REPO

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cfg(**change) -> SyncExpertConfig:
    """The default profile's sync_expert section (params.yaml), with ``change`` applied."""
    base = SyncExpertConfig.model_validate(read_yaml(REPO / "params.yaml")["sync_expert"])
    return base.model_copy(update=change)


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True)


# ---- Wav2Lip-style expert ---------------------------------------------------------------------

def test_expert_embeddings_have_configured_shape_and_unit_norm():
    cfg = _cfg()
    torch.manual_seed(0)
    model = SyncExpert(cfg, n_mels=80).eval()
    faces = face_window(torch.rand(3, cfg.frames, 3, 48, 48), cfg.face_size)
    mel = mel_window(torch.randn(3, cfg.mel_frames, 80))
    assert faces.shape == (3, 3 * cfg.frames, cfg.face_size // 2, cfg.face_size)
    assert mel.shape == (3, 1, 80, cfg.mel_frames)
    with torch.no_grad():
        audio_emb, face_emb = model(mel, faces)
    for emb in (audio_emb, face_emb):
        assert emb.shape == (3, 16 * cfg.base_channels)
        torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
        assert (emb >= 0).all()                      # so the cosine is a probability in [0, 1]


def test_standardised_face_input_ignores_each_channels_palette_but_not_its_pattern():
    torch.manual_seed(0)
    faces = torch.rand(2, 15, 24, 48)
    recoloured = faces * (0.2 + torch.rand(2, 15, 1, 1)) + torch.rand(2, 15, 1, 1)   # colour, brightness per channel
    x = standardise_channels(faces)
    torch.testing.assert_close(x.mean(dim=(2, 3)), torch.zeros(2, 15), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.std(dim=(2, 3)), torch.ones(2, 15))
    torch.testing.assert_close(standardise_channels(recoloured), x, atol=1e-4, rtol=1e-4)
    assert (standardise_channels(faces.roll(3, dims=2)) - x).abs().max() > 1.0   # same palette, moved pattern
    with torch.no_grad():
        plain, standardised = (SyncExpert(_cfg(face_norm=norm), n_mels=80).eval() for norm in ("none", "standardise"))
        standardised.load_state_dict(plain.state_dict())
        change = {name: (model.embed_face(recoloured) - model.embed_face(faces)).abs().max()
                  for name, model in (("plain", plain), ("standardised", standardised))}
    assert change["standardised"] < 1e-6 < change["plain"]


def test_wav2lip_sizes_give_syncnet_color_exactly():
    # 96² faces, 80 × 16 mel, base 32: SyncNet_color's layers. 16,435,072 is the sum over its published
    # layer list (conv weights + biases + BatchNorm affine) of Wav2Lip's models/syncnet.py.
    model = SyncExpert(_cfg(face_size=96, mel_frames=16, base_channels=32), n_mels=80)
    assert sum(p.numel() for p in model.parameters()) == 16_435_072
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["face_encoder.0.conv_block.0.weight"] == (32, 15, 7, 7)
    assert shapes["face_encoder.15.conv_block.0.weight"] == (512, 512, 3, 3)   # covers the 3×3 map
    assert shapes["audio_encoder.12.conv_block.0.weight"] == (512, 256, 3, 3)
    assert shapes["audio_encoder.13.conv_block.0.weight"] == (512, 512, 1, 1)


def test_face_window_stacks_lower_halves_frame_major():
    frames = torch.zeros(1, 3, 3, 8, 8)
    for t in range(3):
        frames[0, t, :, 4:] = (t + 1) / 10        # lower half carries the frame number
        frames[0, t, :, :4] = 1.0                 # upper half must be cut away
    window = face_window(frames, face_size=8, box=FULL_FRAME)
    assert window.shape == (1, 9, 4, 8)
    for t in range(3):
        assert torch.all(window[0, 3 * t:3 * t + 3] == (t + 1) / 10)


def test_face_window_sees_the_mouth_half_of_the_face_box():
    # An aligned 64² crop: 1 inside the face box (where the crop rule puts the face), 0 in the loose margin
    # around it, which must not reach the window.
    frames = torch.zeros(1, 1, 3, 64, 64)
    x0, y0, x1, y1 = (round(v * 64) for v in FACE_BOX)
    frames[..., y0:y1, x0:x1] = 1.0
    window = face_window(frames, face_size=16)
    assert window.shape == (1, 3, 8, 16)
    torch.testing.assert_close(window, torch.ones_like(window))
    # the same face at 256² gives the same window: the box is in fractions of the crop
    big = torch.nn.functional.interpolate(frames[0], size=(256, 256), mode="nearest")[None]
    torch.testing.assert_close(face_window(big, face_size=16), window)


def test_bce_and_sync_loss_prefer_matching_pairs():
    gen = torch.Generator().manual_seed(0)
    audio = _unit_rows(torch.rand(8, 16, generator=gen))
    matching = audio.clone()
    shuffled = audio.roll(1, dims=0)
    ones, zeros = torch.ones(8), torch.zeros(8)
    torch.testing.assert_close(sync_similarity(audio, matching), torch.ones(8))
    assert sync_bce_loss(audio, matching, ones) < 0.01 < sync_bce_loss(audio, shuffled, ones)
    assert sync_bce_loss(audio, shuffled, zeros) < sync_bce_loss(audio, matching, zeros)
    assert sync_loss(audio, matching) < 1e-5 < sync_loss(audio, shuffled)


def test_infonce_prefers_the_diagonal_and_is_symmetric():
    gen = torch.Generator().manual_seed(0)
    audio = _unit_rows(torch.rand(8, 16, generator=gen))
    matched, shuffled = sync_infonce_loss(audio, audio, 10.0), sync_infonce_loss(audio, audio.roll(1, 0), 10.0)
    assert matched < shuffled
    face = _unit_rows(torch.rand(8, 16, generator=gen))
    torch.testing.assert_close(sync_infonce_loss(audio, face, 10.0), sync_infonce_loss(face, audio, 10.0))
    # Known answer: all cosines equal → every row is a uniform guess over the batch, log B.
    same = _unit_rows(torch.ones(8, 16))
    torch.testing.assert_close(sync_infonce_loss(same, same, 10.0), torch.tensor(np.log(8.0), dtype=torch.float32))


def test_contrastive_batch_holds_consecutive_windows_of_few_clips():
    # Frame t of clip c is filled with 10c + t (mouth half too), mel row t with 10c + t: every window
    # reads back its clip and start, in sync, and rows of one clip are consecutive starts.
    cfg = _cfg(face_size=16, frames=5, mel_frames=5, batch_size=8, windows_per_clip=4, objective="infonce")
    clips = [SyncClip(f"c{c}", "MEAD", np.full((20, 16, 16, 3), 10 * c, np.uint8) + np.arange(20, dtype=np.uint8)
                      [:, None, None, None], (10 * c + np.arange(20, dtype=np.float32))[:, None].repeat(3, 1))
             for c in range(3)]
    mel, faces = make_contrastive_batch(clips, cfg, seed=0, step=3)
    assert mel.shape == (8, 1, 3, 5) and faces.shape == (8, 15, 8, 16)
    mel_start = mel[:, 0, 0, 0].numpy()
    face_start = (faces[:, 0, 0, 0] * 255).round().numpy()
    np.testing.assert_array_equal(mel_start, face_start)                     # in sync row by row
    for group in mel_start.reshape(2, 4):
        np.testing.assert_array_equal(np.diff(group), [1, 1, 1])             # consecutive windows of one clip
    again = make_contrastive_batch(clips, cfg, seed=0, step=3)
    assert torch.equal(again[0], mel) and torch.equal(again[1], faces)
    assert min_train_frames(cfg) == 5 + 3


def test_infonce_needs_whole_clips_per_batch():
    with pytest.raises(ValueError, match="multiple of windows_per_clip"):
        SyncExpertConfig.model_validate({**_cfg().model_dump(), "batch_size": 12, "windows_per_clip": 8,
                                         "objective": "infonce"})


def test_expert_learns_a_toy_sync_task():
    # Each "clip" is a binary sequence: a bright mouth and loud mel frames where it is 1. In-sync pairs
    # share the sequence; out-of-sync pairs use another one. A few Adam steps must lower the BCE.
    cfg = _cfg(face_size=16, base_channels=2, frames=5, mel_frames=5)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    seqs = (torch.rand(8, 5, generator=gen) > 0.5).float()
    seqs[:, 0] = torch.arange(8) % 2               # no two sequences alike at random
    other = seqs.roll(1, dims=0)
    in_sync = (torch.arange(8) < 4).float()
    audio_seq = torch.where(in_sync[:, None] > 0, seqs, other)
    frames = seqs[:, :, None, None, None].expand(8, 5, 3, 16, 16).clone()
    faces = face_window(frames, cfg.face_size)
    mel = mel_window(audio_seq[:, :, None].expand(8, 5, 20) * 4 - 2)
    model = SyncExpert(cfg, n_mels=20)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = sync_bce_loss(*model(mel, faces), in_sync)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])


def test_sample_pair_respects_the_shift_range_and_the_clip():
    cfg = _cfg(frames=5, mel_frames=5, negative_min_shift=3, negative_max_shift=10)
    rng = np.random.default_rng(0)
    pairs = [sample_pair(30, cfg, rng) for _ in range(400)]
    positives = [p for p in pairs if p.in_sync]
    assert 150 < len(positives) < 250
    assert all(p.shift == 0 for p in positives)
    negatives = [p for p in pairs if not p.in_sync]
    assert all(3 <= abs(p.shift) <= 10 for p in negatives)
    assert {np.sign(p.shift) for p in negatives} == {-1, 1}
    assert all(0 <= p.start <= 25 and 0 <= p.start + p.shift <= 25 for p in pairs)
    with pytest.raises(ValueError, match="too short for sync pairs: need at least 8"):
        sample_pair(7, cfg, rng)


# ---- syncnet_python offset search -------------------------------------------------------------

def test_offset_distances_known_answer():
    # vshift 1: audio padded with zeros → [0, 1, 2, 0]; d[i, j] = |v_i − a_{i+j−1} + 1e-6|
    d = offset_distances(np.array([[1.0], [2.0]]), np.array([[1.0], [2.0]]), vshift=1)
    np.testing.assert_allclose(d, [[1 + 1e-6, 1e-6, 1 - 1e-6], [1 + 1e-6, 1e-6, 2 + 1e-6]])
    result = evaluate_offset(np.array([[1.0], [2.0]]), np.array([[1.0], [2.0]]), vshift=1)
    assert result.offset == 0
    assert result.min_dist == pytest.approx(1e-6)
    assert result.confidence == pytest.approx(1.0, abs=1e-5)     # median(1, 1e-6, 1.5) − min


@pytest.mark.parametrize("k", range(-5, 6))
def test_offset_search_recovers_an_injected_shift(k):
    rng = np.random.default_rng(k + 100)
    n, dim = 80, 32
    audio = rng.standard_normal((n, dim))
    video = rng.standard_normal((n, dim))            # windows whose audio is outside the clip: unrelated
    src = np.arange(n) - k                           # video window i shows audio window i − k
    ok = (src >= 0) & (src < n)
    video[ok] = audio[src[ok]] + 0.1 * rng.standard_normal((ok.sum(), dim))
    result = evaluate_offset(video, audio, vshift=15)
    assert result.offset == k
    assert result.mean_dist.shape == (31,)
    assert result.frame_dist.shape == result.frame_conf.shape == (n,)
    assert result.min_dist == pytest.approx(result.mean_dist.min())
    assert result.confidence == pytest.approx(np.median(result.mean_dist) - result.mean_dist.min())
    shuffled = evaluate_offset(video, audio[rng.permutation(n)], vshift=15)
    assert shuffled.confidence < 0.25 * result.confidence


# ---- SyncNet v2 (syncnet_python) --------------------------------------------------------------

def test_syncnet_v2_parameter_names_shapes_and_count():
    model = SyncNetV2()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["netcnnaud.0.weight"] == (64, 1, 3, 3)
    assert shapes["netcnnaud.18.weight"] == (512, 256, 5, 4)
    assert shapes["netcnnlip.0.weight"] == (96, 3, 5, 7, 7)
    assert shapes["netcnnlip.18.weight"] == (512, 256, 1, 6, 6)
    assert shapes["netfcaud.1.running_var"] == (512,)
    assert shapes["netfclip.3.weight"] == (1024, 512)
    # 13,631,616 = the layer list of SyncNetModel.py summed by hand (conv/linear weights and biases,
    # BatchNorm affine): audio CNN 4,875,712, lip CNN 7,177,920, two FC heads 788,992 each.
    assert sum(p.numel() for p in model.parameters()) == 13_631_616
    with torch.no_grad():
        assert model.eval().forward_aud(torch.randn(2, 1, 13, 20)).shape == (2, 1024)


def test_syncnet_v2_missing_weights_name_the_file(tmp_path):
    with pytest.raises(WeightsError, match=rf"put syncnet_v2\.model in {tmp_path}/.*syncnet_python release"):
        load_syncnet_v2(tmp_path)


def test_syncnet_v2_loads_a_state_dict_file_and_rejects_another(tmp_path):
    torch.manual_seed(0)
    reference = SyncNetV2()
    torch.save(reference.state_dict(), tmp_path / "syncnet_v2.model")
    loaded = load_syncnet_v2(tmp_path)
    assert not loaded.training
    torch.testing.assert_close(loaded.netfclip[3].weight, reference.netfclip[3].weight)
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "syncnet_v2.model")
    with pytest.raises(WeightsError, match="does not hold syncnet_python's SyncNet v2 parameters"):
        load_syncnet_v2(tmp_path)


def test_syncnet_mfcc_matches_python_speech_features():
    # Reference: python_speech_features 0.6 ``mfcc(x, 16000)`` rows 0 and 8 for a 440 Hz tone, amplitude 1000.
    x = np.round(1000 * np.sin(2 * np.pi * 440 * np.arange(1600) / 16000)).astype(np.int16)
    mfcc = syncnet_mfcc(x)
    assert mfcc.shape == (13, 9)                       # 1 + ceil((1600 − 400) / 160)
    np.testing.assert_allclose(mfcc[:, 0], [14.9024, 18.76581, 1.79565, -14.24555, -27.22542, -33.45544, -29.74884,
                                            -18.49686, -3.28504, 9.88421, 18.27531, 17.82755, 11.93286], atol=1e-4)
    np.testing.assert_allclose(mfcc[:, 8], [14.66972, 22.15553, 5.77422, -10.12327, -22.93716, -29.21365, -25.41398,
                                            -14.75061, -0.41578, 11.14958, 18.25094, 16.2787, 10.0171], atol=1e-4)
    np.testing.assert_allclose(syncnet_mfcc(x.astype(np.float32) / 32768), mfcc, atol=1e-4)


class _WindowProbe(torch.nn.Module):
    """Stands in for SyncNetV2: reports which frame / MFCC step each window starts at."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward_lip(self, x):                  # (B, 3, 5, 224, 224) BGR 0…255: first frame's value
        return x[:, 0, :, 0, 0]

    def forward_aud(self, x):                  # (B, 1, 13, 20): the MFCC window itself
        return x[:, 0, 0, :]


def test_syncnet_v2_windows_follow_syncnet_python():
    t = 12
    frames = (torch.arange(t, dtype=torch.float32) / 100).view(t, 1, 1, 1).expand(t, 3, 224, 224)
    samples = np.zeros(11 * 640, dtype=np.int16)              # audio shorter than video: 11 frames
    video, audio = syncnet_v2_embeddings(_WindowProbe(), frames, samples)
    assert video.shape == (11 - 5, 5) and audio.shape == (6, 20)   # min(T, samples // 640) − 5 windows
    torch.testing.assert_close(video[:, 0], torch.arange(6) * 2.55)                 # window i starts at frame i
    torch.testing.assert_close(video[2], torch.arange(2, 7, dtype=torch.float32) * 2.55)
    with pytest.raises(ValueError, match="16000 Hz"):
        syncnet_v2_embeddings(_WindowProbe(), frames, samples, rate=8000)
