"""``eat import-official``: the official EAT checkpoints → this project's model files.

The official release (docs/paper_notes.md §11) has three torch checkpoints, each a dict
of module state dicts under the module names (plus optimiser states and the epoch), and the PCA basis:

* ``pretrain_new_274.pth.tar`` — the latent backbone: ``generator``, ``kp_detector``, ``he_estimator`` (role
  *latent*: the file holding ``he_estimator``);
* ``qvt_img_pca_sync_4_01_11_304.pth.tar`` — A2ET after its second phase: ``audio2kptransformer`` (role *a2et*:
  A2ET without ``emotionprompt``);
* ``deepprompt_eam3d_all_final_313.pth.tar`` — the final model: ``generator`` (with the 3D EAM),
  ``kp_detector``, ``audio2kptransformer``, ``sidetuning`` (EDN), ``emotionprompt`` (mapper) (role *final*);
* ``U_mead.npy`` (45, 45) and ``mean_mead.npy`` (45,) — the expression PCA.

Files are recognised by what they hold, not by name. Our networks use the official parameter names and shapes
(tests/test_latent_models.py, tests/test_a2et_models.py), so conversion is a per-key check and a re-packing:
every tensor is compared with the network this project builds at the given profile (built on the ``meta``
device: nothing is allocated), and missing keys, unexpected keys and shape mismatches are reported per key.
Missing keys or wrong shapes fail the import; unexpected keys are reported and dropped.

Written under ``--out`` in the ``models/`` layout: ``latent/model.pt`` (as ``train_latent``), ``pca/``,
``a2et/model.pt`` (as ``train_a2et``), ``adaptation/model.pt`` (as ``train_adaptation``, the paper variant
``eat``: its adaptation tensors — mapper, EDN, EAMs — from the final checkpoint; A2ET's frozen body from the
*a2et* file when present, else from the final one), and ``import_report.json``.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from eat.a2et.train import save_model as save_a2et
from eat.adapt.checkpoint import save_model as save_adaptation
from eat.config import Params
from eat.io.atomic import write_text_atomic
from eat.latent.pca import ExpressionBasis
from eat.latent.train import save_inference_model
from eat.models.adaptation import ExpressionNetworks, adaptation_group
from eat.models.head_pose import HeadPoseExpressionEstimator
from eat.models.keypoint_detector import KeypointDetector
from eat.models.latent import official_manifest
from eat.models.repos_net import RePosNet

log = logging.getLogger(__name__)

LATENT_PARTS = ("kp_detector", "he_estimator", "generator")
EXPRESSION_PARTS = ("audio2kptransformer", "sidetuning", "emotionprompt")
CHECKPOINT_SUFFIXES = (".tar", ".pth", ".pt", ".ckpt")
VARIANT = "eat"


class ImportError_(ValueError):
    """The official files cannot be converted; the message (and ``report``) say which keys and files."""

    def __init__(self, message: str, report: ImportReport | None = None):
        super().__init__(message)
        self.report = report


@dataclass
class ModuleCheck:
    """How one module's tensors in a checkpoint compare with the network we build."""

    module: str
    source: str
    tensors: int = 0
    missing: list[str] = field(default_factory=list)        # "name [shape]": we need it, the file lacks it
    unexpected: list[str] = field(default_factory=list)     # "name [shape]": in the file, not in our network
    mismatched: list[str] = field(default_factory=list)     # "name: checkpoint [..], expected [..]"
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.mismatched


@dataclass
class ImportReport:
    checkpoints: dict[str, list[str]] = field(default_factory=dict)   # file → its top-level keys
    roles: dict[str, str] = field(default_factory=dict)               # latent / a2et / final → file
    modules: list[ModuleCheck] = field(default_factory=list)
    written: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.modules)

    def text(self) -> str:
        lines = [f"  {role}: {file}" for role, file in self.roles.items()]
        for m in self.modules:
            state = "ok" if m.ok and not m.unexpected else ("ok, unexpected keys dropped" if m.ok else "FAILED")
            lines.append(f"{m.module} (from {Path(m.source).name}): {m.tensors} tensors, {state}")
            lines += [f"  missing: {k}" for k in m.missing] + [f"  unexpected: {k}" for k in m.unexpected]
            lines += [f"  shape mismatch: {k}" for k in m.mismatched] + [f"  note: {n}" for n in m.notes]
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"wrote {what}: {path}" for what, path in self.written.items()]
        return "\n".join(lines)


def expected_shapes(params: Params) -> dict[str, dict[str, list[int]]]:
    """Per official module key, our state dict's names and shapes at ``params``' sizes (built on ``meta``)."""
    with torch.device("meta"):
        modules = {"generator": RePosNet(params.latent), "kp_detector": KeypointDetector(params.latent),
                   "he_estimator": HeadPoseExpressionEstimator(params.latent)}
        nets = ExpressionNetworks.from_params(params)
    modules |= {k: getattr(nets, k) for k in EXPRESSION_PARTS}
    return {k: {n: list(t.shape) for n, t in m.state_dict().items()} for k, m in modules.items()}


def official_layout(module: str, state: dict[str, torch.Tensor]) -> bool:
    """Whether ``state`` has exactly the names and shapes the official release stores under ``module``."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    return {k: list(v.shape) for k, v in state.items()} == official_manifest().get(module)


def check_module(module: str, state: dict[str, torch.Tensor], expected: dict[str, list[int]], source: str
                 ) -> tuple[ModuleCheck, dict[str, torch.Tensor]]:
    """Compare one module's tensors with ``expected``; returns the check and the tensors we keep (ours only)."""
    check = ModuleCheck(module, source)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
        check.notes.append("'module.' prefix (DataParallel) removed from every key")
    check.tensors = len(state)
    for name in sorted(set(expected) - set(state)):
        check.missing.append(f"{name} {expected[name]}")
    for name in sorted(set(state) - set(expected)):
        check.unexpected.append(f"{name} {list(state[name].shape)}")
    for name in sorted(set(state) & set(expected)):
        if list(state[name].shape) != expected[name]:
            check.mismatched.append(f"{name}: checkpoint {list(state[name].shape)}, expected {expected[name]}")
    return check, {k: v for k, v in state.items() if k in expected}


def load_checkpoint(path: Path, trust_pickle: bool = False) -> dict:
    """A checkpoint's top-level dict; tensors only (``weights_only``) unless ``trust_pickle``."""
    try:
        try:
            saved = torch.load(path, map_location="cpu", weights_only=not trust_pickle, mmap=True)
        except RuntimeError as err:     # the legacy (non-zip) format cannot be memory-mapped
            if "mmap" not in str(err):
                raise
            saved = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as err:  # noqa: BLE001 — torch raises many types for a bad file
        hint = "" if trust_pickle else (" If it is an official checkpoint holding non-tensor objects and you trust "
                                        "its source, re-run with --trust-pickle.")
        raise ImportError_(f"{path}: cannot read as a torch checkpoint: {type(err).__name__}: "
                           f"{str(err).splitlines()[0][:300]}.{hint}") from None
    if not isinstance(saved, dict):
        raise ImportError_(f"{path}: expected a dict of module state dicts, found {type(saved).__name__}")
    return saved


def find_roles(checkpoints: dict[str, dict]) -> dict[str, str]:
    """latent / a2et / final → the file that plays it (module docstring)."""
    rules = {"final": lambda keys: "emotionprompt" in keys,
             "latent": lambda keys: "he_estimator" in keys,
             "a2et": lambda keys: "audio2kptransformer" in keys and "emotionprompt" not in keys}
    roles = {}
    for role, rule in rules.items():
        found = sorted(f for f, saved in checkpoints.items() if rule(saved))
        if len(found) > 1:
            raise ImportError_(f"several checkpoints could be the {role} one: {', '.join(found)}; keep one of them "
                               "in the folder")
        if found:
            roles[role] = found[0]
    return roles


def _step(saved: dict) -> int:
    value = saved.get("epoch", saved.get("step", 0))
    return int(value) if isinstance(value, int | float) or (torch.is_tensor(value) and value.numel() == 1) else 0


def import_official(ckpt_dir: Path | str, out_dir: Path | str, params: Params, trust_pickle: bool = False
                    ) -> ImportReport:
    """Convert the official files in ``ckpt_dir`` into ``out_dir`` (module docstring); raises :class:`ImportError_`
    (with the report) on missing keys or wrong shapes, before writing any model file."""
    ckpt_dir, out_dir = Path(ckpt_dir), Path(out_dir)
    if not ckpt_dir.is_dir():
        raise ImportError_(f"{ckpt_dir}: not a folder (give the folder holding the official .pth.tar files)")
    files = sorted(p for p in ckpt_dir.iterdir() if p.is_file() and p.name.endswith(CHECKPOINT_SUFFIXES))
    if not files:
        raise ImportError_(f"{ckpt_dir}: no checkpoint files (*.pth.tar, *.pth, *.pt)")
    report = ImportReport()
    checkpoints = {str(p): load_checkpoint(p, trust_pickle) for p in files}
    report.checkpoints = {f: sorted(map(str, saved)) for f, saved in checkpoints.items()}
    report.roles = find_roles(checkpoints)
    if "latent" not in report.roles and "final" not in report.roles:
        raise ImportError_(f"{ckpt_dir}: no checkpoint holds the latent model (he_estimator) or the final model "
                           f"(emotionprompt); found top-level keys {report.checkpoints}", report)
    expected = expected_shapes(params)

    def take(module: str, *roles: str) -> dict[str, torch.Tensor] | None:
        for role in roles:
            if role in report.roles and module in checkpoints[report.roles[role]]:
                check, state = check_module(module, checkpoints[report.roles[role]][module], expected[module],
                                            report.roles[role])
                report.modules.append(check)
                return state
        return None

    latent = {m: take(m, "latent", "final") for m in LATENT_PARTS}
    final = {m: take(m, "final") for m in EXPRESSION_PARTS if "final" in report.roles}
    a2et = take("audio2kptransformer", "a2et") if "a2et" in report.roles else final.get("audio2kptransformer")
    # a latent backbone saved before adaptation has no 3D EAM: its (adaptation) tensors come from the final file
    generator_check = next((c for c in report.modules if c.module == "generator"), None)
    if generator_check and generator_check.missing and latent["generator"] is not None and "final" in report.roles:
        donor = checkpoints[report.roles["final"]].get("generator", {})
        filled = [k for k in list(generator_check.missing) if k.split(" ")[0] in donor]
        for k in filled:
            name = k.split(" ")[0]
            if list(donor[name].shape) == expected["generator"][name]:
                latent["generator"][name] = donor[name]
                generator_check.missing.remove(k)
                generator_check.notes.append(f"{name} taken from {Path(report.roles['final']).name}")
    absent = [m for m, s in latent.items() if s is None]
    if absent:
        raise ImportError_(f"{ckpt_dir}: no checkpoint holds {', '.join(absent)} (the latent model)", report)
    if not report.ok:
        if all(official_layout(m.module, checkpoints[m.source][m.module]) for m in report.modules):
            report.notes.append("every module has the official release's layout (eat/models/official_shapes.json): "
                                "the parameters differ from the paper's sizes; import with configs/paper.yaml")
        raise ImportError_("the official checkpoints do not fit this project's networks at the given profile:\n"
                           + report.text(), report)

    written = report.written
    steps = _step(checkpoints[report.roles.get("latent", report.roles.get("final"))])
    nets = {f"{part}.{k}": v for part, state in latent.items() for k, v in state.items()}
    latent_path = out_dir / "latent" / "model.pt"
    save_inference_model({"nets": nets, "step": steps, "vgg": {}}, params.latent, "official", latent_path)
    written["latent_model"] = str(latent_path)
    pca_dir = out_dir / "pca"
    if (ckpt_dir / "U_mead.npy").is_file() or (ckpt_dir / "mean_mead.npy").is_file():
        basis = ExpressionBasis.load(ckpt_dir, params.latent.pca_components)   # checks both files and shapes
        expected_size = 3 * params.latent.num_kp
        if basis.mean.shape != (expected_size,):
            raise ImportError_(f"{ckpt_dir}: PCA mean has {basis.mean.shape[0]} numbers, expected 3k = "
                               f"{expected_size}", report)
        pca_dir.mkdir(parents=True, exist_ok=True)
        for name in ("U_mead.npy", "mean_mead.npy"):
            shutil.copyfile(ckpt_dir / name, pca_dir / name)
        written["pca_dir"] = str(pca_dir)
    else:
        report.notes.append("no U_mead.npy / mean_mead.npy: A2ET and the adapted model need the official PCA basis; "
                            "copy both files into the folder and re-run")
    if a2et is not None:
        a2et_path = out_dir / "a2et" / "model.pt"
        save_a2et({"a2et": a2et, "step": _step(checkpoints[report.roles.get("a2et", report.roles.get("final"))])},
                  params, "full", a2et_path)
        written["a2et_model"] = str(a2et_path)
    if "final" in report.roles and "pca_dir" in written:
        adaptation = {f"{module}.{name}": t for module in ("generator", *EXPRESSION_PARTS)
                      for name, t in (final.get(module) or latent.get(module) or {}).items()
                      if adaptation_group(module, name) is not None}
        variant = params.adaptation_variants[VARIANT]
        if (variant.prompts, variant.edn, variant.eam) != ("deep", True, True):
            raise ImportError_(f"adaptation_variants.{VARIANT} is not the paper's model (deep prompts, EDN, EAM)")
        inputs = {k: str(Path(written[k]).resolve()) for k in ("latent_model", "a2et_model", "pca_dir")}
        adaptation_path = out_dir / "adaptation" / "model.pt"
        save_adaptation({"step": _step(checkpoints[report.roles["final"]]), "adaptation": adaptation}, "official",
                        variant, params, {**inputs, "official": str(ckpt_dir.resolve())}, adaptation_path)
        written["adaptation"] = str(adaptation_path)
        report.notes.append("the official A2ET was trained on DeepSpeech 0.1.0 logits: set audio_features."
                            "speech_backend: deepspeech (and deepspeech_graph) for its lip sync")
    elif "final" not in report.roles:
        report.notes.append("no final checkpoint (emotionprompt): no adapted model written")
    write_text_atomic(out_dir / "import_report.json",
                      json.dumps({**asdict(report), "ok": report.ok}, indent=2) + "\n")
    written["report"] = str(out_dir / "import_report.json")
    return report
