"""The ``sat`` dispatcher as a new user meets it (issue 19 item 7): help, exit codes, one-line
errors with "did you mean", no Sphinx markup in --help, no third-party noise unless --verbose."""
from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from sat.cli import main


def test_bare_sat_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: sat COMMAND") and "segment" in err
    assert main(["--help"]) == 0 and "commands:" in capsys.readouterr().out


@pytest.mark.parametrize("argv, hint", [
    (["segmnet"], "did you mean 'sat segment'?"),
    (["concepts", "resolv", "liver"], "did you mean 'resolve'?"),
    (["segment", "-i", "x.nii.gz", "-o", "out", "--tat"], "did you mean --tta?"),
    (["concepts", "list", "--regoin", "abdomen"], "did you mean --region?"),
])
def test_mistakes_are_one_line_with_did_you_mean(capsys, argv, hint):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert hint in err and len(err.strip().splitlines()) == 1 and "usage:" not in err


def test_fit_with_a_missing_config_is_one_line(capsys, tmp_path):
    assert main(["fit", "--config", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"sat fit: error: --config file not found: {tmp_path / 'nope.yaml'}"


@pytest.mark.parametrize("cmd", ["segment", "concepts", "phantoms", "models", "segment-bench", "benchmark", "demo",
                                 "learning-check", "agent", "reference", "evaluate"])
def test_help_has_no_sphinx_markup(capsys, cmd):
    try:
        rc = main([cmd, "--help"])
    except SystemExit as done:  # argparse's own exit after printing help
        rc = done.code
    assert rc in (0, None)
    out = capsys.readouterr().out
    assert "usage:" in out and "``" not in out and ":class:" not in out and ":func:" not in out


def test_other_libraries_are_quiet_unless_verbose(monkeypatch):
    from sat.cli_hints import quiet_third_party

    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    monkeypatch.delenv("TRANSFORMERS_VERBOSITY", raising=False)
    quiet_third_party(verbose=True)
    assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ
    quiet_third_party(verbose=False)
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1" and os.environ["TRANSFORMERS_VERBOSITY"] == "error"
    assert logging.getLogger("highdicom").level == logging.ERROR


def test_no_loading_weights_bar_unless_verbose():
    """Loading a transformers text encoder (``hf`` backend) in a fresh process: its bar shows only with --verbose."""
    code = ("import sys; from sat.cli_hints import quiet_third_party; quiet_third_party(sys.argv[1] == 'v'); "
            "from sat.text.encoder import TextEncoderSpec, build_text_encoder, minilm_dir; "
            "build_text_encoder(TextEncoderSpec(backend='hf', path=str(minilm_dir())))")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY")}
    run = dict(capture_output=True, text=True, encoding="utf-8", errors="replace", env=env, timeout=300)
    quiet = subprocess.run([sys.executable, "-c", code, "q"], **run)
    loud = subprocess.run([sys.executable, "-c", code, "v"], **run)
    assert quiet.returncode == 0 and loud.returncode == 0, quiet.stderr[-500:]
    assert "Loading weights" in loud.stderr  # the bar this guards against exists ...
    assert "Loading weights" not in quiet.stderr and quiet.stderr.strip() == ""  # ... and is hidden by default


def test_fit_reads_shipped_configs_outside_a_checkout(tmp_path, monkeypatch):
    """``sat fit --config configs/...`` from a folder without configs/ uses the package's copies."""
    from sat.cli import _check_config_files
    from sat.errors import InputError
    from sat.resources import configs_dir

    monkeypatch.chdir(tmp_path)
    out = _check_config_files(["--config", "configs/trainer/cpu.yaml", "--trainer=configs/trainer/cpu.yaml",
                               "--trainer.max_steps", "3"])
    shipped = str(configs_dir("trainer") / "cpu.yaml")
    assert out == ["--config", shipped, f"--trainer={shipped}", "--trainer.max_steps", "3"]
    with pytest.raises(InputError, match="configs/experiment/nope.yaml"):
        _check_config_files(["--config", "configs/experiment/nope.yaml"])


def _help(argv, capsys) -> str:
    try:
        main(argv)
    except SystemExit:  # argparse's own exit after printing help
        pass
    return capsys.readouterr().out


def test_harness_subcommands_are_listed_by_core_commands(capsys):
    """``sat concepts eval|bench`` and ``sat shards bench`` live in sat.bench; the dispatcher hands
    them to the core commands, which list and parse them."""
    from sat.cli import EXTENSIONS

    assert set(EXTENSIONS) == {"concepts", "shards"}
    concepts = _help(["concepts", "--help"], capsys)
    assert all(name in concepts for name in ("resolve", "calibrate", "eval", "bench"))
    assert "--raw-only" in _help(["concepts", "eval", "--help"], capsys)
    assert "throughput" in _help(["shards", "bench", "--help"], capsys)
    assert "--phantom-scale" in _help(["shards", "bench", "throughput", "--help"], capsys)
    assert "verify" in _help(["shards", "--help"], capsys)


def test_every_command_has_a_main():
    import importlib

    from sat.cli import COMMANDS, EXTENSIONS

    for module, _ in COMMANDS.values():
        assert callable(importlib.import_module(module).main), module
    for modules in EXTENSIONS.values():
        for module in modules:
            assert importlib.import_module(module).SUBCOMMANDS, module
