"""Run chapter 03 with several hyperparameter settings side by side and compare their FID.

    python scripts/compare_dcgan_configs.py                     # all settings below
    python scripts/compare_dcgan_configs.py --only g256d128,g256d256   # some of them
    python scripts/compare_dcgan_configs.py --halve-at 220 --deadline 490

This is how chapter 03's network widths and batch size were chosen. The chapter is not
edited: each setting is a set of hyperparameter fields given to it through
``$BOOK_OVERRIDES`` (see ``book_utils.runtime.override``), e.g. ``{"g_channels": 256}``.
Each runs in its own copy of the book's package under ``runs/compare_dcgan/<name>/``, so
that the model it finishes lands in the copy's ``book_utils/checkpoints/dcgan/`` rather
than over the book's, and its progress in the copy's ``runs/`` (``$BOOK_RUNS_DIR``). The
copies run at once in full mode with retraining on, so each records the FID of its
averaged generator during training (the chapter's probe). After ``--halve-at`` seconds
the worse half, ranked by FID at the latest step all of them have reached, is
interrupted; at ``--deadline`` seconds the rest are. An interrupted run keeps its last
save (every 500 steps): rerunning its command (printed at the end) resumes it. The FID
records are written to ``runs/compare_dcgan/summary.json`` and printed.

Meant for a GPU, where a step of these small networks costs mostly the fixed price of
launching its operations, so several runs share one GPU well. Needs the chapter as a
script: ``bash scripts/make_checkpoints.sh --convert-only 03_dcgan`` makes it (with
jupytext), and this script does so if it is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this book's package, whichever copy the runs use

from book_utils.checkpoint import Record, from_pretrained  # noqa: E402

CHAPTER, MODEL = "03_dcgan", "dcgan"

# Hyperparameter fields of the chapter's configs (DCGANConfig, GANTrainConfig) per setting.
SETTINGS: dict[str, dict[str, int | float]] = {
    "g128d64": {"g_channels": 128, "d_channels": 64, "batch_size": 128},
    "g128d128": {"g_channels": 128, "d_channels": 128, "batch_size": 128},
    "g128d128b256": {"g_channels": 128, "d_channels": 128, "batch_size": 256},
    "g128d64_slowD": {"g_channels": 128, "d_channels": 64, "batch_size": 128, "lr_d": 1e-4},
    "g256d128": {"g_channels": 256, "d_channels": 128, "batch_size": 128},
    "g256d256": {"g_channels": 256, "d_channels": 256, "batch_size": 128},
}


def run_env(copy: Path, overrides: dict[str, int | float]) -> dict[str, str]:
    """The environment of the run in ``copy``: full mode, retraining, the hyperparameters
    ``overrides``, its progress in ``copy/runs/`` and the copy's package first on the path."""
    path = os.pathsep.join(filter(None, [str(copy), os.environ.get("PYTHONPATH")]))
    return dict(
        os.environ,
        PYTHONPATH=path,
        BOOK_MODE="full",
        BOOK_RETRAIN="1",
        BOOK_OVERRIDES=json.dumps(overrides),
        BOOK_RUNS_DIR=str(copy),
        MPLBACKEND="Agg",
        PYTHONUNBUFFERED="1",
    )


def make_copy(copy: Path, script: Path) -> Path:
    """A fresh copy of the book's package, chapters and the chapter's script in ``copy``,
    without the book's own DCGAN models, so a model there is the run's; returns the script."""
    shutil.rmtree(copy, ignore_errors=True)
    checkpoints = ROOT / "book_utils" / "checkpoints"

    def ignore(folder: str, names: list[str]) -> set[str]:
        ours = {MODEL, f"{MODEL}_raw"} if Path(folder) == checkpoints else set()
        return ours | {"__pycache__"} & set(names)

    for part in ("book_utils", "chapters"):
        shutil.copytree(ROOT / part, copy / part, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return Path(shutil.copy(script, copy / script.name))


def saved_record(state_path: Path) -> Record | None:
    """The record in a run's saved progress (``Run.save``); None if it cannot be read now."""
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError):  # being replaced right now
        return None
    return Record(**state["record"])


def finished(copy: Path) -> bool:
    """Whether the run in ``copy`` has finished training (the copy had no DCGAN model)."""
    return (copy / "book_utils" / "checkpoints" / MODEL / "record.json").is_file()


def fid_record(copy: Path) -> list[tuple[int, float, float]]:
    """(step, training seconds, FID) recorded so far by the run in ``copy``: from its saved
    progress, or once it has finished (and dropped that), from the model it wrote."""
    if finished(copy):
        records = [from_pretrained(copy / "book_utils" / "checkpoints" / MODEL).record]
    else:
        states = sorted((copy / "runs").glob(f"{MODEL}-*/state.pt"))
        records = [r for r in map(saved_record, states) if r is not None]
    best: list[tuple[int, float, float]] = []
    for record in records:
        scores = record.scores
        if "fid" in scores:
            rows = zip(scores["step"], scores["seconds"], scores["fid"], strict=True)
            best = max(best, [(int(a), b, c) for a, b, c in rows], key=len)
    return best


def rank(names: list[str], records: dict[str, list[tuple[int, float, float]]]) -> list[str]:
    """``names`` from best to worst FID at the latest step that every run has reached."""
    common = min((records[name][-1][0] if records[name] else 0) for name in names)

    def fid_at_common(name: str) -> float:
        rows = [row for row in records[name] if row[0] <= common]
        return rows[-1][2] if rows and common > 0 else float("inf")

    ranked = sorted(names, key=fid_at_common)
    print(f"ranking at step {common}: {[(n, round(fid_at_common(n), 2)) for n in ranked]}")
    return ranked


def progress(log: Path) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    bars = re.findall(r"DCGAN:\s+\d+%\|[^|]*\|\s*([^\r\n]*)", text)
    return bars[-1][:100] if bars else "starting"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated names from SETTINGS")
    parser.add_argument("--steps", type=int, default=0, help="training steps (0: the chapter's)")
    parser.add_argument("--halve-at", type=float, default=220.0, help="seconds")
    parser.add_argument("--deadline", type=float, default=490.0, help="seconds")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "compare_dcgan")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(SETTINGS)
    unknown = sorted(set(names) - set(SETTINGS))
    if unknown:
        raise SystemExit(f"unknown settings {unknown}; choose from {sorted(SETTINGS)}")

    script_path = ROOT / "runs" / "chapter_scripts" / f"{CHAPTER}.py"
    if not script_path.exists():
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "make_checkpoints.sh"), "--convert-only", CHAPTER],
            check=True,
            env=dict(os.environ, PYTHON=sys.executable),
        )
    # Load MNIST once, so the copies find it ready instead of preparing it all at once.
    subprocess.run(
        [sys.executable, "-c", "from book_utils.data import load_mnist; load_mnist()"],
        check=True,
        cwd=ROOT,
    )

    start = time.time()
    runs: dict[str, tuple[subprocess.Popen, Path]] = {}
    overrides = {}
    for name in names:
        overrides[name] = dict(SETTINGS[name], **({"num_steps": args.steps} if args.steps else {}))
        copy = args.out / name
        script = make_copy(copy, script_path)
        with open(copy / "run.log", "w") as log:
            process = subprocess.Popen(
                [sys.executable, str(script)],
                cwd=copy / "chapters",
                env=run_env(copy, overrides[name]),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        runs[name] = (process, copy)
        print(f"started {name}: {overrides[name]}", flush=True)

    halved = False
    while any(process.poll() is None for process, _ in runs.values()):
        time.sleep(15)
        elapsed = time.time() - start
        alive = [name for name, (process, _) in runs.items() if process.poll() is None]
        print(f"--- {elapsed:.0f} s", flush=True)
        for name, (_, copy) in runs.items():
            print(f"  {name:16s} {progress(copy / 'run.log')}", flush=True)
        if not halved and elapsed > args.halve_at and len(alive) > 2:
            halved = True
            ranked = rank(alive, {name: fid_record(runs[name][1]) for name in alive})
            for name in ranked[(len(ranked) + 1) // 2 :]:
                print(f"  interrupting {name}", flush=True)
                runs[name][0].send_signal(signal.SIGINT)
        if elapsed > args.deadline:
            for name in alive:
                print(f"  deadline: interrupting {name}", flush=True)
                runs[name][0].send_signal(signal.SIGINT)
            for process, _ in runs.values():
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()

    summary = {}
    for name, (process, copy) in runs.items():
        done = finished(copy)
        rows = fid_record(copy)
        summary[name] = {
            "setting": overrides[name],
            "finished": done,  # training; the chapter's exit code says how the rest went
            "exit_code": process.returncode,
            "fid_record": rows,
        }
        resume = (
            f"cd {copy / 'chapters'} && BOOK_MODE=full BOOK_RETRAIN=1 "
            f"BOOK_OVERRIDES='{json.dumps(overrides[name])}' BOOK_RUNS_DIR={copy} "
            f"PYTHONPATH={copy} {sys.executable} ../{CHAPTER}.py"
        )
        state = (
            f"finished training (exit code {process.returncode})"
            if done
            else f"interrupted; to resume: {resume}"
        )
        print(f"{name}: {state}")
        for step, seconds, value in rows:
            print(f"    step {step:7,d}  {seconds:7.1f} s  FID {value:8.2f}")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"records in {args.out / 'summary.json'}")


if __name__ == "__main__":
    main()
