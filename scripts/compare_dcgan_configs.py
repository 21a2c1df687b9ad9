"""Run chapter 03 with several hyperparameter settings side by side and compare their FID.

    python scripts/compare_dcgan_configs.py                     # all settings below
    python scripts/compare_dcgan_configs.py --only b256,g256    # some of them
    python scripts/compare_dcgan_configs.py --halve-at 220 --deadline 490

This is how chapter 03's network widths and batch size were chosen. Each setting gets its
own copy of the book under ``runs/compare_dcgan/<name>/`` in which the chapter's
hyperparameter cell is changed (nothing else), and the copies run at once in full mode
with retraining on, so each records the FID of its averaged generator during training
(the chapter's probe). After ``--halve-at`` seconds the worse half, ranked by FID at the
latest step all of them have reached, is interrupted; at ``--deadline`` seconds the rest
are. An interrupted copy has saved its progress: rerunning its chapter script (the
command is printed) resumes it. The FID records are written to
``runs/compare_dcgan/summary.json`` and printed.

Meant for a GPU, where a step of these small networks costs mostly the fixed price of
launching its operations, so several runs share one GPU well. Needs the chapter as a
script: ``bash scripts/make_checkpoints.sh`` makes it, or this script runs jupytext.
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
CHAPTER = "03_dcgan"

# Changes to the chapter's hyperparameter cell; every key is optional.
SETTINGS: dict[str, dict[str, str | int]] = {
    "g128d64": {"g": 128, "d": 64, "batch": 128},
    "g128d128": {"g": 128, "d": 128, "batch": 128},
    "g128d128b256": {"g": 128, "d": 128, "batch": 256},
    "g128d64_slowD": {"g": 128, "d": 64, "batch": 128, "lr_d": "1e-4"},
    "g256d128": {"g": 256, "d": 128, "batch": 128},
    "g256d256": {"g": 256, "d": 256, "batch": 128},
}
PATTERNS = {  # key -> (pattern in the cell, replacement with {value})
    "latent": (r"latent_dim=\d+", "latent_dim={}"),
    "g": (r"g_channels=\d+", "g_channels={}"),
    "d": (r"d_channels=\d+", "d_channels={}"),
    "steps": (r"num_steps=budget\(full=[\d_]+", "num_steps=budget(full={}"),
    "batch": (r"\n    batch_size=\d+,", "\n    batch_size={},"),
    "lr_g": (r"\n    lr_g=[\d.e-]+,", "\n    lr_g={},"),
    "lr_d": (r"\n    lr_d=[\d.e-]+,", "\n    lr_d={},"),
    "ema": (r"\nEMA_DECAY = [\d.]+", "\nEMA_DECAY = {}"),
}


def patch(script: str, setting: dict[str, str | int]) -> str:
    """The chapter script with its hyperparameter cell changed as ``setting`` says."""
    for key, value in setting.items():
        pattern, replacement = PATTERNS[key]
        script, count = re.subn(pattern, replacement.format(value), script)
        if count != 1:
            raise SystemExit(f"expected one match of {pattern!r} in the chapter, found {count}")
    return script


def fid_record(copy: Path, finished: bool = False) -> list[tuple[int, float, float]]:
    """(step, training seconds, FID) recorded so far by the run in ``copy``; a finished run
    has dropped its saved state, and its record is in the checkpoint it wrote."""
    files = sorted((copy / "runs").glob("dcgan-*/last.pt"))
    if finished:
        files.append(copy / "book_utils" / "checkpoints" / "dcgan.pt")
    best: list[tuple[int, float, float]] = []
    for path in files:
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError):  # being replaced right now
            continue
        extra = payload["state"].get("training", {}).get("extra", {})
        if "probes" in extra:
            fids = [probe["fid"] for probe in extra["probes"]]
            rows = list(zip(extra["probe_steps"], extra["probe_seconds"], fids, strict=True))
            best = max(best, rows, key=len)
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
        )
    script = script_path.read_text()
    # Load MNIST once, so the copies find it ready instead of preparing it all at once.
    subprocess.run(
        [sys.executable, "-c", "from book_utils.data import load_mnist; load_mnist()"],
        check=True,
        cwd=ROOT,
    )

    start = time.time()
    runs: dict[str, tuple[subprocess.Popen, Path]] = {}
    for name in names:
        setting = dict(SETTINGS[name], **({"steps": args.steps} if args.steps else {}))
        copy = args.out / name
        shutil.rmtree(copy, ignore_errors=True)
        for part in ("book_utils", "chapters"):
            shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
        target = copy / "runs" / "chapter_scripts" / f"{CHAPTER}.py"
        target.parent.mkdir(parents=True)
        target.write_text(patch(script, setting))
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(filter(None, [str(copy), os.environ.get("PYTHONPATH")])),
            BOOK_MODE="full",
            BOOK_RETRAIN="1",
            BOOK_RUNS_DIR=str(copy / "runs"),
            MPLBACKEND="Agg",
            PYTHONUNBUFFERED="1",
        )
        with open(copy / "run.log", "w") as log:
            process = subprocess.Popen(
                [sys.executable, str(target)],
                cwd=copy / "chapters",
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        runs[name] = (process, copy)
        print(f"started {name}: {setting}", flush=True)

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
        done = process.returncode == 0
        rows = fid_record(copy, finished=done)
        summary[name] = {"setting": SETTINGS[name], "finished": done, "fid_record": rows}
        resume = (
            f"cd {copy / 'chapters'} && BOOK_MODE=full BOOK_RETRAIN=1 "
            f"BOOK_RUNS_DIR={copy / 'runs'} PYTHONPATH={copy} "
            f"{sys.executable} ../runs/chapter_scripts/{CHAPTER}.py"
        )
        state = "finished" if done else f"interrupted; to resume: {resume}"
        print(f"{name}: {state}")
        for step, seconds, value in rows:
            print(f"    step {step:7,d}  {seconds:7.1f} s  FID {value:8.2f}")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"records in {args.out / 'summary.json'}")


if __name__ == "__main__":
    main()
