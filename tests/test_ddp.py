"""scripts/train_ddp.py on the CPU with the gloo backend: two processes train exactly what
one process trains on the same global minibatches, and a run resumes with another number
of processes. Plus the pieces of book_utils.distributed, alone.

The processes are forked from the test (with the environment torchrun would give them), so
that they do not import PyTorch again; the appendix on faster training runs the script
with torchrun itself.
"""

import importlib.util
import multiprocessing
import os
import socket
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from book_utils.distributed import (
    RankZeroRun,
    SyncBatchNorm2d,
    average_across_processes,
    shard,
    with_synced_batch_norm,
)
from book_utils.models.dcgan import DCGANConfig, DCGANGenerator

ROOT = Path(__file__).resolve().parent.parent
TINY = [
    "--cpu",
    "--steps=8",
    "--batch-size=16",
    "--latent-dim=8",
    "--g-channels=4",
    "--d-channels=4",
    "--train-images=256",
    "--snapshots=0",
]


def _script():
    spec = importlib.util.spec_from_file_location("train_ddp", ROOT / "scripts" / "train_ddp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Imported once, before the processes are forked: the script, and what Adam imports lazily.
train_ddp = _script()
torch.optim.Adam(nn.Linear(1, 1).parameters())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, argv: list[str]) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    train_ddp.main(argv)


def launch(world_size: int, argv: list[str]) -> None:
    """Run the script on ``world_size`` forked processes, as torchrun would start it."""
    port, context = _free_port(), multiprocessing.get_context("fork")
    processes = [
        context.Process(target=_worker, args=(rank, world_size, port, argv))
        for rank in range(world_size)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=180)
    codes = [process.exitcode for process in processes]
    for process in processes:
        if process.is_alive():
            process.kill()
    assert codes == [0] * world_size, f"the processes exited with {codes}"


def saved_state(out: Path) -> dict:
    (path,) = out.glob("runs/*/state.pt")
    return torch.load(path, weights_only=True)


def assert_same_training(a: dict, b: dict, atol: float = 1e-5) -> None:
    assert a["record"]["steps"] == b["record"]["steps"]
    for part in ["G", "D", "G_ema"]:
        for key, value in a[part].items():
            torch.testing.assert_close(value, b[part][key], atol=atol, rtol=1e-4, msg=key)
    for key in ["loss_d", "loss_g"]:
        torch.testing.assert_close(a["record"]["history"][key], b["record"]["history"][key])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process to step 3; two to step 3; each resumed on the other count to step 6."""
    if sys.platform == "win32":
        pytest.skip("forked processes")
    root = tmp_path_factory.mktemp("ddp")
    one, two = root / "one", root / "two"
    states = {}
    launch(1, [*TINY, "--stop-at=3", f"--out={one}"])
    launch(2, [*TINY, "--stop-at=3", f"--out={two}"])
    states["one@3"], states["two@3"] = saved_state(one), saved_state(two)
    launch(2, [*TINY, "--stop-at=6", f"--out={one}"])  # one process, then two
    launch(1, [*TINY, "--stop-at=6", f"--out={two}"])  # two processes, then one
    states["one,two@6"], states["two,one@6"] = saved_state(one), saved_state(two)
    return states


def test_two_processes_train_what_one_trains(runs, capfd):
    a, b = runs["one@3"], runs["two@3"]
    assert b["G"]["net.0.running_mean"].abs().sum() > 0  # batch norm has seen data
    assert not torch.equal(a["G"]["project.weight"], _initial_project_weight())
    assert_same_training(a, b)
    assert a["record"]["machine"] == "1 x CPU, 1 threads"
    assert b["record"]["machine"] == "2 x CPU, 1 threads"


def test_resuming_with_another_number_of_processes(runs):
    a, b = runs["one,two@6"], runs["two,one@6"]
    assert_same_training(a, b)
    assert a["record"]["machine"] == "1 x CPU, 1 threads, then 2 x CPU, 1 threads"


@pytest.mark.parametrize("batch_norm", ["synced", "local"])
def test_the_ranks_end_with_identical_parameters(tmp_path, capfd, batch_norm):
    local = ["--local-batch-norm"] if batch_norm == "local" else []
    launch(2, [*TINY, *local, "--stop-at=2", f"--out={tmp_path}"])
    assert "parameters identical on the 2 process(es): True" in capfd.readouterr().out


def test_the_finished_run_is_a_model_folder(tmp_path, capfd):
    from book_utils.checkpoint import from_pretrained

    launch(2, [*TINY, "--steps=2", f"--out={tmp_path}"])
    G = from_pretrained(tmp_path / "dcgan_ddp")
    assert isinstance(G, DCGANGenerator) and G.record.steps == 2
    assert from_pretrained(tmp_path / "dcgan_ddp_raw").record.machine == "2 x CPU, 1 threads"
    assert not list(tmp_path.glob("runs/*/state.pt"))  # the saved progress is dropped


def _initial_project_weight() -> torch.Tensor:
    torch.manual_seed(0)
    return DCGANGenerator(DCGANConfig(8, 4, 4)).project.weight.detach()


# ------------------------------------------------------------------- the pieces, one process
def test_shard_splits_a_global_minibatch_in_order():
    batch = torch.arange(12)
    assert torch.equal(torch.cat([shard(batch, r, 3) for r in range(3)]), batch)
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        shard(batch, 0, 5)
    with pytest.raises(ValueError, match="not one of the 3 processes"):
        shard(batch, 3, 3)


def test_synced_batch_norm_alone_is_batch_norm():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3))
    synced = with_synced_batch_norm(nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3)))
    synced.load_state_dict(net.state_dict())
    assert isinstance(synced[1], SyncBatchNorm2d)
    x = torch.randn(5, 1, 6, 6)
    torch.testing.assert_close(synced(x), net(x))
    torch.testing.assert_close(synced.state_dict(), net.state_dict())
    assert average_across_processes({"a": torch.tensor(2.0)}) == {"a": torch.tensor(2.0)}


def test_the_script_says_how_to_start_it(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(SystemExit, match="torchrun"):
        train_ddp.main(["--cpu"])
    with pytest.raises(SystemExit):
        train_ddp.parse_args(["--stop-at=7", "--steps=6"])


def test_rank_zero_run_alone_is_a_run(tmp_path):
    net = nn.Linear(2, 2)
    run = RankZeroRun("toy", {"lr": 0.1}, root=tmp_path, net=net)
    assert run.writes and run.state_path.exists() and run.folder == tmp_path / "toy"
