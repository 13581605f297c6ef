"""DVC stages of the user study (Table 2), eat/user_study:

  assemble  the same MEAD test clips for every method under blind names → reports/user_study/{videos/,index.html,
            key.json}; send index.html + videos/ to the raters, collect their ratings_*.json in
            reports/user_study/ratings/
  table     those files → reports/user_study/table2.{json,md} (mean ± 95 % interval per method)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from eat import paths
from eat.config import load_params
from eat.io.atomic import write_text_atomic
from eat.user_study.assemble import assemble, default_methods
from stages.cli import run_stage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("assemble", help="pick the clips, copy the videos under blind names, write the page")
    a.add_argument("--manifest", type=Path, default=paths.MANIFEST)
    a.add_argument("--videos-root", type=Path, default=paths.EVALUATE,
                   help="<root>/<model>/videos/<uid>.mp4 for ground_truth, pretrain and eat")
    a.add_argument("--baselines", type=Path, default=paths.BASELINES,
                   help="<folder>/<method>/<uid>.mp4, one method each")
    a.add_argument("--method", action="append", default=[], metavar="NAME=FOLDER",
                   help="add or replace a method's video folder (repeatable)")
    a.add_argument("--identities", type=int, default=4)
    a.add_argument("--params", default="params.yaml", help="its seed shuffles the videos")
    a.add_argument("--link", action="store_true", help="hard-link the videos instead of copying")
    a.add_argument("--out", type=Path, default=paths.USER_STUDY)
    t = sub.add_parser("table", help="collected ratings → Table 2")
    t.add_argument("--ratings", type=Path, default=paths.USER_STUDY_RATINGS)
    t.add_argument("--key", type=Path, default=paths.USER_STUDY_KEY)
    t.add_argument("--out", type=Path, default=paths.USER_STUDY)
    args = parser.parse_args()

    def body() -> None:
        if args.command == "assemble":
            methods = default_methods(args.videos_root, args.baselines)
            for spec in args.method:
                name, sep, folder = spec.partition("=")
                if not sep or not name or not folder:
                    raise ValueError(f"--method {spec!r}: expected NAME=FOLDER")
                methods[name] = Path(folder)
            s = assemble(methods, args.manifest, args.out, seed=load_params(args.params).seed,
                         identities=args.identities, link=args.link)
            print(f"user study {s['study_id']}: {len(s['methods'])} methods × {s['videos_per_method']} videos "
                  f"-> {args.out}/index.html" + "".join(f"\n  note: {n}" for n in s["notes"]))
        else:
            from eat.user_study.ratings import table2, to_markdown  # local: scipy.stats, only this subcommand

            table = table2(args.ratings, args.key)
            write_text_atomic(Path(args.out) / "table2.json", json.dumps(table, indent=2) + "\n")
            write_text_atomic(Path(args.out) / "table2.md", to_markdown(table))
            print(f"Table 2: {table['raters']} raters -> {args.out}/table2.md")

    return run_stage(body)


if __name__ == "__main__":
    raise SystemExit(main())
