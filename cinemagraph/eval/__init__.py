"""Evaluation: the baseline comparison on synthetic ground truth.

:mod:`.methods` holds the compared methods, :mod:`.metrics` PSNR/SSIM/LPIPS on valid pixels,
:mod:`.data` reads the synthetic datasets, :mod:`.compare` is the command
(``python -m cinemagraph.eval.compare``); :mod:`.select` picks a checkpoint on validation
scenes, :mod:`.photos` checks boxes of real photos, and :mod:`.regions` splits a gain between
the layers' invented border, the fluid and the rest.
"""
