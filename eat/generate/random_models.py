"""Model files with seeded random weights, in the layouts the pipeline writes, for benchmarks and tests.

Generation speed does not depend on what the weights learned, and the tests of ``eat generate`` check files,
shapes and errors, not quality: so both run on these instead of waiting for a training run. Written:
``latent/model.pt`` (:func:`eat.latent.train.save_inference_model`), ``pca/`` (a random orthonormal basis,
:class:`eat.latent.pca.ExpressionBasis`), ``a2et/model.pt`` (:func:`eat.a2et.train.save_model`),
``adaptation/model.pt`` (:func:`eat.adapt.checkpoint.save_model`, variant ``eat``) and
``speech_recognizer/model.pt`` (:func:`eat.features.recognizer.save_recognizer`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from eat.a2et.train import build_a2et
from eat.a2et.train import save_model as save_a2et
from eat.adapt.checkpoint import adaptation_state, build_model
from eat.adapt.checkpoint import save_model as save_adaptation
from eat.config import Params
from eat.features.recognizer import CTCRecognizer, save_recognizer
from eat.generate.audio import feature_params
from eat.latent.pca import ExpressionBasis
from eat.latent.train import save_inference_model
from eat.models.latent import LatentNetworks


def write_random_models(params: Params, root: Path | str, seed: int = 0, variant: str = "eat") -> dict[str, Path]:
    """Write every model file ``eat generate`` reads under ``root``; returns their paths."""
    root = Path(root)
    paths = {"latent_model": root / "latent" / "model.pt", "pca_dir": root / "pca",
             "a2et_model": root / "a2et" / "model.pt", "adaptation": root / "adaptation" / "model.pt",
             "recognizer": root / "speech_recognizer" / "model.pt"}
    torch.manual_seed(seed)
    nets = LatentNetworks.from_config(params.latent)
    save_inference_model({"nets": nets.state_dict(), "step": 0, "vgg": {}}, params.latent, "enhanced",
                         paths["latent_model"])
    del nets
    n = 3 * params.latent.num_kp
    axes = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))[0].astype(np.float32)
    basis = ExpressionBasis(np.zeros(n, np.float32), axes, params.latent.pca_components)
    paths["pca_dir"].mkdir(parents=True, exist_ok=True)
    basis.save(paths["pca_dir"])
    a2et = build_a2et(params)
    save_a2et({"a2et": a2et.state_dict(), "step": 0}, params, "full", paths["a2et_model"])
    chosen = params.adaptation_variants[variant]
    model = build_model(params, chosen, basis, paths["latent_model"])
    model.load_pretrained(a2et.state_dict())
    model.trainable()
    inputs = {k: str(paths[k]) for k in ("latent_model", "a2et_model", "pca_dir")}
    save_adaptation({"step": 0, "adaptation": adaptation_state(model)}, variant, chosen, params, inputs,
                    paths["adaptation"])
    cfg = params.speech_recognizer
    torch.manual_seed(seed)     # its own draw: the recogniser's weights do not depend on the other models' sizes
    save_recognizer(CTCRecognizer(cfg).eval(), cfg, params.signal.audio_rate, feature_params(params).speech_hop,
                    paths["recognizer"])
    return paths
