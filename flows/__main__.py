"""``python -m flows``: run the pipeline flow (see :mod:`flows.cli`)."""

from flows.cli import main

raise SystemExit(main())
