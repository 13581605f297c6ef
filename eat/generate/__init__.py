"""``eat generate`` and friends: the emotional talking-head product built on the trained pipeline.

* :mod:`eat.generate.face` — any portrait photo → the aligned source crop (the training crop rule);
* :mod:`eat.generate.audio` — any audio file → 16 kHz, featurised chunk by chunk (bounded memory);
* :mod:`eat.generate.pose` — head pose: static, natural (seeded motion) or from a driving video;
* :mod:`eat.generate.emotion` — ``--emotion`` / ``--intensity`` / ``--mix`` → an emotion mix;
* :mod:`eat.generate.pipeline` — :class:`Generator` (models loaded once) and :func:`generate` (one mp4);
* :mod:`eat.generate.batch` — a CSV of rows on Ray, with a status table;
* :mod:`eat.generate.official` — the official EAT checkpoints → this project's model files;
* :mod:`eat.generate.random_models` — model files with random weights (benchmarks, tests).

The command line is :mod:`eat.cli`.
"""
