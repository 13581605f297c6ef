"""``eat import-official`` (eat/generate/official.py) against checkpoints with the official key names and shapes.

Full size: every tensor of eat/models/official_shapes.json at configs/paper.yaml sizes (~250 M numbers)
as a stride-0 view of one number per key — the files hold the real names and shapes but a few bytes per tensor,
and each key's own value shows where it lands. Micro size: real random tensors of our own networks in the
official layout, converted and loaded back into the adapted model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eat.config import deep_merge, parse_params, read_yaml
from eat.generate.official import ImportError_, import_official
from eat.models.adaptation import adaptation_group
from eat.models.latent import official_manifest
from tests.conftest import REPO, micro_params

OFFICIAL_SHAPES = official_manifest()
LATENT = ("generator", "kp_detector", "he_estimator")
FINAL = ("generator", "kp_detector", "audio2kptransformer", "sidetuning", "emotionprompt")


def _official_modules() -> dict[str, dict[str, torch.Tensor]]:
    """Every official tensor as a stride-0 view; value = the key's index (int64 for BatchNorm's counters)."""
    out, i = {}, 0
    for module, shapes in OFFICIAL_SHAPES.items():
        out[module] = {}
        for name, shape in shapes.items():
            i += 1
            if name.endswith("num_batches_tracked"):
                out[module][name] = torch.tensor(0)
            else:
                out[module][name] = torch.full((1,) * len(shape), float(i)).expand(*shape) if shape \
                    else torch.tensor(float(i))
    return out


def _write_official(folder, modules, pretrain=LATENT + ("he_estimator",)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({m: modules[m] for m in dict.fromkeys(pretrain)} | {"epoch": 274}, folder / "pretrain_new_274.pth.tar")
    torch.save({"audio2kptransformer": modules["audio2kptransformer"], "epoch": 304},
               folder / "qvt_img_pca_sync_4_01_11_304.pth.tar")
    torch.save({m: modules[m] for m in FINAL} | {"optimizer_emotionprompt": {"state": {}}, "epoch": 313},
               folder / "deepprompt_eam3d_all_final_313.pth.tar")
    n = 3 * 15
    np.save(folder / "U_mead.npy", np.linalg.qr(np.random.default_rng(0).normal(size=(n, n)))[0].astype(np.float32))
    np.save(folder / "mean_mead.npy", np.zeros(n, np.float32))


@pytest.fixture(scope="module")
def paper_params():
    return parse_params(deep_merge(read_yaml(REPO / "params.yaml"), read_yaml(REPO / "configs" / "paper.yaml")))


def test_full_official_layout_converts_key_by_key(tmp_path, paper_params):
    modules = _official_modules()
    _write_official(tmp_path / "official", modules)
    report = import_official(tmp_path / "official", tmp_path / "out", paper_params)
    assert report.ok and not any(m.unexpected for m in report.modules)
    assert set(report.written) == {"latent_model", "pca_dir", "a2et_model", "adaptation", "report"}

    latent = torch.load(report.written["latent_model"], weights_only=True)
    for part in LATENT:
        assert {k: list(v.shape) for k, v in latent[part].items()} == OFFICIAL_SHAPES[part]
        name = next(iter(modules[part]))
        assert torch.equal(latent[part][name], modules[part][name])
    a2et = torch.load(report.written["a2et_model"], weights_only=True)
    assert {k: list(v.shape) for k, v in a2et["a2et"].items()} == OFFICIAL_SHAPES["audio2kptransformer"]
    adapted = torch.load(report.written["adaptation"], weights_only=True)
    wanted = {f"{m}.{n}" for m in ("generator", "audio2kptransformer", "sidetuning", "emotionprompt")
              for n in OFFICIAL_SHAPES[m] if adaptation_group(m, n) is not None}
    assert set(adapted["adaptation"]) == wanted
    assert adapted["variant"]["prompts"] == "deep" and adapted["steps"] == 313
    assert adapted["config"]["a2et"]["encoder_layers"] == 6 and adapted["config"]["latent"]["feature_channel"] == 32
    assert torch.equal(adapted["adaptation"]["emotionprompt.mappingnet.shared.0.weight"],
                       modules["emotionprompt"]["mappingnet.shared.0.weight"])


def test_missing_key_wrong_shape_and_extra_key_are_reported_per_key(tmp_path, paper_params):
    modules = _official_modules()
    del modules["kp_detector"]["predictor.down_blocks.down0.conv.bias"]
    modules["emotionprompt"]["mappingnet.shared.0.weight"] = torch.zeros(1, 1).expand(512, 17)
    modules["sidetuning"]["extra.weight"] = torch.zeros(3)
    _write_official(tmp_path / "official", modules)
    with pytest.raises(ImportError_) as err:
        import_official(tmp_path / "official", tmp_path / "out", paper_params)
    checks = {m.module: m for m in err.value.report.modules}
    assert checks["kp_detector"].missing == ["predictor.down_blocks.down0.conv.bias [64]"]
    assert checks["emotionprompt"].mismatched == [
        "mappingnet.shared.0.weight: checkpoint [512, 17], expected [512, 16]"]
    assert checks["sidetuning"].unexpected == ["extra.weight [3]"] and checks["sidetuning"].ok
    assert "missing: predictor.down_blocks.down0.conv.bias [64]" in str(err.value)
    assert not (tmp_path / "out").exists()      # nothing written when the import fails


def test_official_files_at_the_small_profile_fail_with_a_pointer_to_the_paper_profile(tmp_path):
    modules = _official_modules()
    (tmp_path / "official").mkdir()
    torch.save({m: modules[m] for m in LATENT} | {"epoch": 274}, tmp_path / "official" / "pretrain_new_274.pth.tar")
    with pytest.raises(ImportError_) as err:
        import_official(tmp_path / "official", tmp_path / "out", parse_params(read_yaml(REPO / "params.yaml")))
    assert "official release's layout" in str(err.value) and "configs/paper.yaml" in str(err.value)


def test_converted_micro_checkpoint_loads_into_the_adapted_model(tmp_path):
    """Our own random networks in the official layout (the latent file without the 3D EAM, as a backbone saved
    before adaptation) → converted → the adapted model holds exactly those tensors."""
    from eat.adapt.checkpoint import load_emotional_model
    from eat.latent.pca import ExpressionBasis
    from eat.models.adaptation import ExpressionNetworks
    from eat.models.latent import LatentNetworks

    params = micro_params({"signal": {"window_frames": 5}, "latent": {"pca_components": 8}})
    torch.manual_seed(0)
    nets, expr = LatentNetworks.from_config(params.latent), ExpressionNetworks.from_params(params)
    modules = {k: getattr(nets, k).state_dict() for k in LATENT} | {k: getattr(expr, k).state_dict()
                                                                     for k in FINAL[2:]}
    folder = tmp_path / "official"
    _write_official(folder, {**modules, "generator": {k: v for k, v in modules["generator"].items()
                                                      if not k.startswith("ea3d.")}}, pretrain=LATENT)
    torch.save({m: modules[m] for m in FINAL} | {"epoch": 1}, folder / "deepprompt_eam3d_all_final_313.pth.tar")
    report = import_official(folder, tmp_path / "out", params)
    assert report.ok and any("ea3d" in n for m in report.modules for n in m.notes)
    model = load_emotional_model(report.written["adaptation"], params,
                                 ExpressionBasis.load(report.written["pca_dir"], params.latent.pca_components))
    for key in ("emotionprompt", "sidetuning", "audio2kptransformer", "generator"):
        theirs = modules[key]
        for name, tensor in getattr(model, key).state_dict().items():
            assert torch.equal(tensor, theirs[name]), f"{key}.{name}"
