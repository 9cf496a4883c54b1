"""Reproducible benchmarks: ``sat benchmark phantom`` and ``sat benchmark speed``.

* :mod:`.config`: typed profiles read from ``configs/benchmark/*.yaml``.
* :mod:`.cases`: held-out phantom cases and their Dice / NSD scoring.
* :mod:`.prompts`: prompt styles (canonical, synonym, definition, paraphrase, modality).
* :mod:`.universal`: training and evaluating the text-prompted model (through ``sat fit``).
* :mod:`.specialist`: per-dataset multi-class MONAI BasicUNet baselines.
* :mod:`.phantom`: the four phantom studies; :mod:`.phantom_tables`: their summary tables;
  :mod:`.phantom_report`: Markdown, plots and JSON.
* :mod:`.speed`: inference, training, data and memory timings; :mod:`.speed_report`: Markdown.
* :mod:`.cli`: the ``sat benchmark`` command.
"""
