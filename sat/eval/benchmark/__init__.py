"""Reproducible benchmarks: ``sat benchmark phantom``, ``sat benchmark speed`` and ``sat benchmark gpu``.

* :mod:`.config`: typed profiles read from ``configs/benchmark/*.yaml``.
* :mod:`.cases`: held-out phantom cases and their Dice / NSD scoring.
* :mod:`.prompts`: prompt styles (canonical, synonym, definition, paraphrase, modality).
* :mod:`.universal`: training and evaluating the text-prompted model (through ``sat fit``).
* :mod:`.specialist`: per-dataset multi-class MONAI BasicUNet baselines.
* :mod:`.phantom`: the four phantom studies; :mod:`.phantom_tables`: their summary tables;
  :mod:`.phantom_report`: Markdown, plots and JSON.
* :mod:`.speed`: inference, training, data and memory timings; :mod:`.speed_report`: Markdown.
* :mod:`.gpu` (``sat benchmark gpu``): steps, MFU, text-query overhead, sliding window and data
  streaming on one GPU; :mod:`.gpu_steps`, :mod:`.gpu_io`, :mod:`.gpu_report`.
* :mod:`.cli`: the ``sat benchmark`` command.
"""
