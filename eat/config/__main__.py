"""``python -m eat.config check | apply PROFILE | overrides PROFILE``: validate params.yaml, merge a profile into
it, or print a profile as ``dvc exp run -S`` arguments."""

from __future__ import annotations

import argparse
import json
import sys

from eat.config.base import ConfigError
from eat.config.params import apply_profile, flatten, load_params, read_yaml


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eat.config", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check", help="validate params.yaml").add_argument("--params", default="params.yaml")
    apply = sub.add_parser("apply", help="merge a profile (configs/NAME.yaml) into params.yaml")
    apply.add_argument("profile")
    apply.add_argument("--params", default="params.yaml")
    over = sub.add_parser("overrides", help="print a profile as `-S key=value` arguments for dvc exp run")
    over.add_argument("profile")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "check":
            load_params(args.params)
        elif args.cmd == "apply":
            apply_profile(args.profile, args.params)
        else:
            for key, value in flatten(read_yaml(args.profile)).items():
                print(f"-S '{key}={json.dumps(value)}'", end=" ")
            print()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
