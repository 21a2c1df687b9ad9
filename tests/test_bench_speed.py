"""benchmarks/bench_speed.py: every option it measures on the CPU runs the chapter's step,
and its figures come out as JSON for the appendix (tiny networks, a step or two)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("bench_speed", ROOT / "benchmarks" / "bench_speed.py")
bench_speed = sys.modules["bench_speed"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_speed)


def test_the_cpu_options_run_and_are_written_as_json(tmp_path, capsys):
    out = tmp_path / "speed.json"
    argv = ["--device=cpu", "--width=4", "--warmup=1", "--steps=1", "--rounds=2", f"--json={out}"]
    results = bench_speed.main([*argv, "--variants=eager,channels_last,bf16,batch-512"])
    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    rows = {row["name"]: row for row in results["speed"]}
    assert list(rows) == ["eager", "channels_last", "bf16", "batch-512"]
    assert rows["batch-512"]["images_per_second"] == pytest.approx(
        512 * rows["batch-512"]["steps_per_second"]
    )
    assert all(len(row["rounds"]) == 2 for row in results["speed"])
    assert results["machine"].startswith("CPU") and results["quality"] == []
    assert "eager" in capsys.readouterr().out


def test_cuda_graphs_are_offered_only_on_cuda():
    names = [v.name for v in bench_speed.variants(torch.device("cpu"))]
    assert "compile-ro" not in names and names[0] == "eager"
    assert "compile-ro" in [v.name for v in bench_speed.variants(torch.device("cuda"))]


def test_unknown_options_are_named(capsys):
    with pytest.raises(SystemExit):
        bench_speed.main(["--device=cpu", "--variants=eager,turbo"])
    assert "turbo" in capsys.readouterr().err


def test_fid_runs_are_skipped_off_the_gpu(capsys):
    bench_speed.main(["--device=cpu", "--width=4", "--warmup=1", "--steps=1", "--rounds=1",
                      "--variants=eager", "--fid-steps=100"])  # fmt: skip
    assert "FID runs skipped off the GPU" in capsys.readouterr().out


def test_seconds_to_target():
    curve = {"seconds": [1.0, 2.0, 3.0], "fid": [90.0, 55.0, 40.0]}
    assert bench_speed.seconds_to(curve, 60.0) == 2.0
    assert bench_speed.seconds_to(curve, 10.0) is None
