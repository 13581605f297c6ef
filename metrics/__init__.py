"""The metric suite behind the paper's tables (Tables 1, 3–8): PSNR, SSIM, FID, M-LMD / F-LMD, Sync, Acc_emo.

One module per metric, pure functions of arrays and of the models passed in; the protocol is evaluation_eat's
(docs/paper_notes.md §7). Nothing here imports eat, which imports metrics: loading networks, resolving weights,
making landmark detectors, running the emotion classifier, mapping over clips and writing files are the
pipeline's (eat/scoring.py, eat/emotion/predict.py, eat/sync/embedders.py).

- :mod:`metrics.align` — face crop and alignment (128² crops) shared by PSNR, SSIM, FID and LMD.
- :mod:`metrics.image` — PSNR and SSIM (scikit-image), frame pairing.
- :mod:`metrics.fid` — Fréchet distance on Inception features of 5 frames per video (or a labelled substitute).
- :mod:`metrics.landmarks` — M-LMD and F-LMD on mean-centred landmarks.
- :mod:`metrics.sync` — syncnet_python's offset search and confidence on a given embedder's windows.
- :mod:`metrics.emotion` — Acc_emo overall, per emotion (Table 7) and the confusion matrix.
- :mod:`metrics.table` — per-clip rows and their aggregates.
"""
