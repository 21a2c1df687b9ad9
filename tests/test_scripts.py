"""scripts/compare_dcgan_configs.py without training: each run's environment, its copy of
the book, and the FID record read back from saved progress and from a finished model; and
scripts/make_checkpoints.sh's logs and exit status, with a stand-in interpreter."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from book_utils.checkpoint import save_pretrained
from book_utils.losses import GANTrainConfig
from book_utils.models.dcgan import DCGANConfig, DCGANGenerator
from book_utils.runtime import override
from book_utils.training import Run

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compare():
    path = ROOT / "scripts" / "compare_dcgan_configs.py"
    spec = importlib.util.spec_from_file_location("compare_dcgan_configs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["g128d64_slowD", "g256d128"])
def test_run_env_sets_the_chapter_hyperparameters(compare, monkeypatch, tmp_path, name):
    env = compare.run_env(tmp_path, compare.SETTINGS[name])
    assert env["BOOK_MODE"] == "full" and env["BOOK_RETRAIN"] == "1"
    assert env["BOOK_RUNS_DIR"] == str(tmp_path)
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(tmp_path)
    monkeypatch.setenv("BOOK_OVERRIDES", env["BOOK_OVERRIDES"])
    config, train = override(DCGANConfig(), GANTrainConfig())  # as chapter 03's cell does
    changed = {**vars(config), **vars(train)}
    assert all(changed[key] == value for key, value in compare.SETTINGS[name].items())


def test_every_setting_names_fields_of_the_chapter_configs(compare, monkeypatch):
    for setting in compare.SETTINGS.values():
        env = compare.run_env(Path("copy"), dict(setting, num_steps=10))
        monkeypatch.setenv("BOOK_OVERRIDES", env["BOOK_OVERRIDES"])
        override(DCGANConfig(), GANTrainConfig())  # raises on a field of neither


def test_copy_leaves_out_the_book_dcgan_models(compare, tmp_path):
    script = tmp_path / "03_dcgan.py"
    script.write_text("print('chapter')\n")
    copied = compare.make_copy(tmp_path / "copy", script)
    checkpoints = tmp_path / "copy" / "book_utils" / "checkpoints"
    assert copied.read_text() == script.read_text()
    assert (checkpoints / "mnist_classifier").is_dir()
    assert not (checkpoints / "dcgan").exists() and not (checkpoints / "dcgan_raw").exists()
    assert not compare.finished(tmp_path / "copy")


def test_fid_record_from_saved_progress_then_from_the_finished_model(
    compare, monkeypatch, tmp_path
):
    monkeypatch.setenv("BOOK_MODE", "full")
    monkeypatch.setenv("BOOK_RUNS_DIR", str(tmp_path))
    G = DCGANGenerator(DCGANConfig(latent_dim=4, g_channels=4, d_channels=4))
    run = Run("dcgan", {"model": G.config}, retrain=True, G=G)
    assert compare.fid_record(tmp_path) == []
    for step, value in [(0, 300.0), (10, 120.0)]:
        run.snapshot(step, lambda: torch.zeros(4, 28, 28, dtype=torch.uint8), fid=lambda v=value: v)
    run.save(11)
    rows = compare.fid_record(tmp_path)
    assert [(step, value) for step, _, value in rows] == [(0, 300.0), (10, 120.0)]
    assert compare.saved_record(run.state_path).steps == 11
    # finished: the state is gone and the record is the model's, in the copy's checkpoints
    save_pretrained(G, tmp_path / "book_utils" / "checkpoints" / "dcgan", run.record)
    run.state_path.unlink()
    assert compare.finished(tmp_path)
    assert compare.fid_record(tmp_path) == rows


def test_page_times_reads_each_executed_page_from_a_build_log():
    spec = importlib.util.spec_from_file_location("page_times", ROOT / "scripts" / "page_times.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    log = (
        "\x1b[01mreading sources... \x1b[39;49;00m[ 10%] chapters/01_minimax\n"
        "Executing notebook using local CWD [mystnb]\n"
        "Executed notebook in 21.50 seconds [mystnb]\n"
        "reading sources... [ 20%] how_to_read\n"
        "reading sources... [100%] chapters/10_likelihood\n"
        "Executed notebook in 3.25 seconds [mystnb]\n"
    )
    assert module.page_times(log) == {"chapters/01_minimax": 21.5, "chapters/10_likelihood": 3.25}


@pytest.mark.parametrize(
    ("retrain", "log_name"),
    [
        ("0", "zz_stub.log"),
        ("1", "zz_stub.log"),
        ("flow", "zz_stub.flow.log"),
        ("ddpm,Flow", "zz_stub.ddpm-Flow.log"),
    ],
)
def test_make_checkpoints_names_each_log_after_the_models_it_retrains(tmp_path, retrain, log_name):
    """One chapter's models can train side by side (BOOK_RETRAIN=ddpm, BOOK_RETRAIN=flow),
    each with its own log; a stopped run is reported as resumable."""
    stub = tmp_path / "python"  # stands in for the interpreter: prints, or stops "saved"
    stub.write_text(
        '#!/usr/bin/env bash\necho "ran $1 with BOOK_RETRAIN=$BOOK_RETRAIN"\n'
        '[ -n "${STUB_STOP:-}" ] && { echo "saved at step 5"; exit 1; }\nexit 0\n'
    )
    stub.chmod(0o755)
    logs = ROOT / "runs" / "logs"
    script = ROOT / "scripts" / "make_checkpoints.sh"
    env = {**os.environ, "PYTHON": str(stub), "SKIP_CONVERT": "1", "BOOK_RETRAIN": retrain}
    try:
        done = subprocess.run(
            ["bash", str(script), "zz_stub"], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert f"log: runs/logs/{log_name}" in done.stdout and "zz_stub: done" in done.stdout
        assert f"BOOK_RETRAIN={retrain}" in (logs / log_name).read_text()
        env["STUB_STOP"] = "1"
        stopped = subprocess.run(
            ["bash", str(script), "zz_stub"], env=env, capture_output=True, text=True
        )
        assert stopped.returncode == 1 and "stopped; its progress is saved" in stopped.stdout
    finally:
        for path in logs.glob("zz_stub*.log"):
            path.unlink()


def test_make_checkpoints_converts_a_chapter_into_a_runnable_script():
    """The conversion itself, with the real jupytext: the script replaces the old one in one
    step, leaves no temporary file, and the Colab cell's `%pip` becomes `pass`."""
    folder = ROOT / "runs" / "chapter_scripts"
    script = ROOT / "scripts" / "make_checkpoints.sh"
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(script), "--convert-only", "01_minimax"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    text = (folder / "01_minimax.py").read_text()
    assert "pass  # %pip install" in text
    compile(text, "01_minimax.py", "exec")  # valid Python
    assert sorted(p.name for p in folder.glob("01_minimax*")) == ["01_minimax.py"]
