"""Set the run's parameters in ``params.yaml`` before a flow runs the stages: a profile, then overrides.

The result is the same as ``make repro PROFILE=<name>`` followed by editing keys by hand:
``params.yaml`` is rewritten (validated first), so DVC re-runs exactly the stages whose
keys changed and ``git diff params.yaml`` shows what the run used.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from dvc.exceptions import InvalidArgumentError
from dvc.utils.hydra import apply_overrides

from eat.config import ConfigError, apply_profile, parse_params, read_yaml
from eat.paths import CONFIGS


def apply_run_params(root: Path, profile: str | None = None, overrides: Sequence[str] = ()) -> list[str]:
    """Merge ``configs/<profile>.yaml`` into ``root/params.yaml``, then apply ``key=value`` overrides.

    Overrides use ``dvc exp run -S`` syntax (Hydra's: ``synth.crf=20``, ``synth.mead.levels=[1,2]``);
    an unknown key or an invalid value raises :class:`ConfigError` naming it, and leaves
    ``params.yaml`` as it was. Returns one line per change, for the run's log.
    """
    params = root / "params.yaml"
    done = []
    if profile:
        overlay = root / CONFIGS / f"{profile}.yaml"
        if not overlay.is_file():
            known = ", ".join(sorted(p.stem for p in (root / CONFIGS).glob("*.yaml"))) or "none"
            raise ConfigError(f"{overlay}: no such profile (profiles in {CONFIGS}/: {known})")
        apply_profile(overlay, params)
        done.append(f"profile {profile}: merged {overlay.relative_to(root)} into params.yaml")
    if overrides:
        fd, scratch = tempfile.mkstemp(dir=root, prefix=".params.", suffix=".yaml")
        os.close(fd)
        try:
            shutil.copyfile(params, scratch)
            try:
                apply_overrides(scratch, list(overrides))
            except InvalidArgumentError as exc:
                raise ConfigError(f"invalid override in {list(overrides)}: {exc.__cause__ or exc}") from None
            parse_params(read_yaml(scratch), f"{params.name} with {' '.join(overrides)}")  # names a bad key
            os.replace(scratch, params)
        finally:
            Path(scratch).unlink(missing_ok=True)
        done.append(f"overrides: {' '.join(overrides)}")
    return done
