"""The harness: demo, benchmarks, reports, learning check, speed tables and phantom-only baselines.

It sits above every core package (it may import any of them; no core module imports it). The
``sat`` dispatcher reaches it through these commands and subcommands:

* :mod:`.demo` (``sat demo``): the end-to-end phantom pipeline of ``make demo``.
* :mod:`.cli` (``sat benchmark phantom|speed|gpu|real``) with :mod:`.config` (typed profiles read
  from ``configs/benchmark/*.yaml``), :mod:`.phantom_cases` (held-out phantom cases and their
  Dice / NSD), :mod:`.prompt_styles` (canonical, synonym, definition, paraphrase, modality),
  :mod:`.universal`, :mod:`.specialist`, :mod:`.phantom` / :mod:`.phantom_tables` /
  :mod:`.phantom_report`, :mod:`.speed` / :mod:`.speed_report`, :mod:`.gpu` / :mod:`.gpu_steps` /
  :mod:`.gpu_io` / :mod:`.gpu_report`, and the real-patient study (:mod:`.real` and ``real_*``).
* :mod:`.segment_speed` and :mod:`.segment_speed_text` (``sat segment-bench``), :mod:`.tta_check`
  (``sat tta-check``), :mod:`.learning_check` (``sat learning-check``), :mod:`.train_overhead`
  (``sat train-bench``), :mod:`.model_table` (``sat models``).
* Subcommands of core commands, handed to them by the dispatcher: :mod:`.concepts_eval`
  (``sat concepts eval``), :mod:`.resolver_speed` (``sat concepts bench``), :mod:`.data_pipeline`
  (``sat shards bench``).
* :mod:`.intensity_baseline`: the intensity-window baseline that shows the phantoms need context.
"""
