"""Run: a loop written as the chapters write it saves, resumes exactly, and stops on NaN."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.animation import FuncAnimation  # noqa: E402
from torch.optim.swa_utils import AveragedModel  # noqa: E402

import book_utils.training as training  # noqa: E402
from book_utils import override, retrain_requested  # noqa: E402
from book_utils.animation import animate_grids  # noqa: E402
from book_utils.checkpoint import from_pretrained  # noqa: E402
from book_utils.data import minibatches  # noqa: E402
from book_utils.losses import GANTrainConfig  # noqa: E402
from book_utils.training import Run, ema_with_warmup  # noqa: E402

# A chapter-style loop on chapter 01's toy GAN: the script that the resume test kills.
LOOP = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import torch
    import book_utils.training as training
    from book_utils import set_seed
    from book_utils.data import minibatches
    from book_utils.losses import discriminator_loss, generator_loss_nonsaturating
    from book_utils.models.toy_mlp import ToyDiscriminator, ToyGenerator, ToyMLPConfig

    training.CHECKPOINT_DIR = Path(sys.argv[1])  # where the finished model goes
    kill_at = int(os.environ.get("KILL_AT", -1))
    signals = [int(n) for n in os.environ.get("SIGNALS", "9").split(",")]
    set_seed(0)
    x_train = torch.randn(96, 2)
    config = ToyMLPConfig(hidden_dim=16)
    G, D = ToyGenerator(config), ToyDiscriminator(config)
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    run = training.Run("toy", {"model": config}, G=G, D=D, opt_g=opt_g, opt_d=opt_d)
    print(run, flush=True)
    batches = minibatches(len(x_train), 16, seed=3, start=run.step)
    for step in range(run.step, 40):
        if step == kill_at:  # as kill -9 (or kill, or Ctrl-C) would, between two saves
            for number in signals:
                os.kill(os.getpid(), number)
        x = x_train[next(batches)]
        z = torch.randn(len(x), 2)
        loss_d = discriminator_loss(D(x), D(G(z).detach()))
        opt_d.zero_grad(); loss_d.backward(); opt_d.step()
        loss_g = generator_loss_nonsaturating(D(G(z)))
        opt_g.zero_grad(); loss_g.backward(); opt_g.step()
        run.log(step, {"loss_d": loss_d, "loss_g": loss_g})
        if (step + 1) % 10 == 0:
            run.save(step + 1)
    run.finish(G)
    import signal
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "finished: handlers released"
    torch.save(G.state_dict(), Path(sys.argv[1]) / "G_float32.pt")
    """
)


def run_loop(tmp_path, name: str, **env: str) -> subprocess.CompletedProcess:
    script = tmp_path / "loop.py"
    script.write_text(LOOP)
    environment = {**os.environ, "BOOK_MODE": "full", "BOOK_RUNS_DIR": str(tmp_path / name)}
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path / name)],
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    """The folder of a run of LOOP that was never stopped: its model and final weights."""
    root = tmp_path_factory.mktemp("loop")
    done = run_loop(root, "whole")
    assert done.returncode == 0, done.stderr
    return root / "whole"


def final_weights(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / "G_float32.pt", weights_only=True)


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[key], b[key]) for key in a)


def test_a_killed_run_resumes_from_its_last_save_and_ends_with_the_same_weights(tmp_path, whole):
    killed = run_loop(tmp_path, "killed", KILL_AT="25")
    assert killed.returncode == -9, killed.stderr
    resumed = run_loop(tmp_path, "killed")
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming toy from step 20" in resumed.stdout
    assert same_weights(final_weights(whole), final_weights(tmp_path / "killed"))
    record_a = from_pretrained(whole / "toy").record
    record_b = from_pretrained(tmp_path / "killed" / "toy").record
    assert record_a.history == record_b.history and record_a.steps == record_b.steps == 40
    assert not list((tmp_path / "killed").glob("runs/toy-*/state.pt")), "progress is dropped"


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_run_saves_after_its_step_and_resumes_with_the_same_weights(
    tmp_path, whole, number
):
    stopped = run_loop(tmp_path, "stopped", KILL_AT="25", SIGNALS=str(int(number)))
    assert stopped.returncode != 0 and "saved at step 26" in stopped.stderr, stopped.stderr
    resumed = run_loop(tmp_path, "stopped")
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming toy from step 26" in resumed.stdout
    assert same_weights(final_weights(whole), final_weights(tmp_path / "stopped"))


def test_a_second_signal_stops_the_run_at_once_from_its_last_save(tmp_path):
    both = f"{int(signal.SIGTERM)},{int(signal.SIGTERM)}"
    stopped = run_loop(tmp_path, "twice", KILL_AT="25", SIGNALS=both)
    assert stopped.returncode == -signal.SIGTERM, stopped.stderr
    resumed = run_loop(tmp_path, "twice")
    assert resumed.returncode == 0 and "Resuming toy from step 20" in resumed.stdout


def test_a_signal_long_after_the_last_step_is_not_held_back(full_mode, monkeypatch):
    run, _ = make_run()
    run.log(0, {"loss": 1.0})
    assert signal.getsignal(signal.SIGINT) == run._on_signal
    run._busy_since -= run.quiet_after + 1  # the loop ended (an error) a while ago
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_minibatches_replay_the_same_order_from_any_step():
    whole = minibatches(50, 8, seed=1)  # 6 steps per epoch
    first = [next(whole).tolist() for _ in range(20)]
    resumed = minibatches(50, 8, seed=1, start=13)
    assert [next(resumed).tolist() for _ in range(7)] == first[13:]
    epoch = sorted(i for batch in first[:6] for i in batch)
    assert len(set(epoch)) == 48, "an epoch draws each example at most once"
    with pytest.raises(ValueError, match="batch_size"):
        next(minibatches(4, 8, seed=0))


@pytest.fixture
def full_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_MODE", "full")
    monkeypatch.setenv("BOOK_RUNS_DIR", str(tmp_path))
    monkeypatch.delenv("BOOK_RETRAIN", raising=False)
    monkeypatch.setattr(training, "CHECKPOINT_DIR", tmp_path / "models")
    return tmp_path


def make_run(retrain=None):
    torch.manual_seed(0)
    net = torch.nn.Linear(2, 1)
    return Run("toy", {"lr": 0.1}, retrain, net=net), net


def test_a_nan_loss_stops_the_run_naming_the_step(full_mode):
    run, _ = make_run()
    for step in range(10):
        run.log(step, {"loss": torch.tensor(1.0), "gap": 2.0})
    run.log(10, {"loss": torch.tensor(float("nan")), "gap": 2.0})
    with pytest.raises(FloatingPointError, match="diverged at step 10: loss is nan"):
        run.save(11)
    saved = torch.load(run.state_path, weights_only=True)["record"]
    assert saved["steps"] == 0, "a diverged run is not saved (the save at the start stays)"


def test_scalars_are_kept_as_means_of_25_steps(full_mode):
    run, _ = make_run()
    for step in range(50):
        run.log(step, {"loss": float(step)})
    assert run.record.history == {"step": [24, 49], "loss": [12.0, 37.0]}


def test_a_run_stopped_before_its_first_save_restarts_from_its_start(full_mode):
    run, net = make_run()
    start = {key: value.clone() for key, value in net.state_dict().items()}
    with torch.no_grad():
        net.weight.add_(1.0)  # trained a little, then interrupted before step 500
    again = Run("toy", {"lr": 0.1}, net=net)
    assert again.step == 0 and torch.equal(net.weight, start["weight"])


def test_snapshots_and_scores_are_kept_once_with_training_seconds(full_mode):
    run, _ = make_run()
    images = torch.zeros(4, 28, 28, dtype=torch.uint8)
    run.snapshot(0, lambda: images, fid=lambda: 50.0)
    run.snapshot(0, lambda: images, fid=lambda: 1.0)  # a resumed run comes back here
    run.snapshot(5, lambda: images, fid=lambda: 40.0)
    assert run.record.snapshot_steps == [0, 5]
    assert run.record.scores["fid"] == [50.0, 40.0] and run.record.scores["step"] == [0, 5]


def test_a_finished_model_is_loaded_not_trained_unless_asked(full_mode):
    run, net = make_run()
    assert not run.done and "training from step 0" in repr(run)
    run.log(0, {"loss": 1.0})
    run.save(1)
    assert run.state_path.exists()
    with pytest.raises(ValueError, match="MODEL_CLASSES"):  # a Linear is no model of the book
        run.finish(net)
    assert make_run()[0].step == 1, "a new Run resumes from the save"
    from book_utils.models.toy_mlp import ToyGenerator, ToyMLPConfig

    run.finish(ToyGenerator(ToyMLPConfig()))
    assert (full_mode / "models" / "toy" / "config.json").exists()
    assert not run.state_path.exists()
    assert make_run()[0].done and "loading the trained model" in repr(make_run()[0])
    assert not make_run(retrain=True)[0].done


def test_smoke_mode_never_touches_the_book_models(full_mode, monkeypatch):
    monkeypatch.setenv("BOOK_MODE", "smoke")
    (full_mode / "models" / "toy").mkdir(parents=True)
    run, _ = make_run()
    assert not run.done and not str(run.folder).startswith(str(full_mode))


def test_new_hyperparameters_start_a_new_run(full_mode):
    a = Run("toy", GANTrainConfig(batch_size=64))
    b = Run("toy", GANTrainConfig(batch_size=128))
    assert a.state_path != b.state_path
    assert a.record.hyperparameters["batch_size"] == 64


def test_retrain_switch(monkeypatch):
    for value, expected in [("1", True), ("yes", True), ("0", False), ("", False)]:
        monkeypatch.setenv("BOOK_RETRAIN", value)
        assert retrain_requested() is expected
    assert retrain_requested(True) is True
    monkeypatch.setenv("BOOK_RETRAIN", "maybe!")
    with pytest.raises(ValueError, match="BOOK_RETRAIN"):
        retrain_requested()


def test_retrain_names_choose_the_models(full_mode, monkeypatch):
    for name in ["toy", "other"]:  # a finished model of each name
        (full_mode / "models" / name).mkdir(parents=True)
        (full_mode / "models" / name / "config.json").write_text("{}")
    monkeypatch.setenv("BOOK_RETRAIN", "toy")
    assert retrain_requested() is True  # some model is retrained: quoted figures may not hold
    assert retrain_requested(False, "toy") is True  # the list wins over the chapter's flag
    assert retrain_requested(True, "other") is False
    assert not Run("toy", GANTrainConfig(), retrain_requested()).done
    assert Run("other", GANTrainConfig(), retrain_requested()).done
    monkeypatch.setenv("BOOK_RETRAIN", "toy,ture")  # a typo is refused, not ignored
    with pytest.raises(ValueError, match="ture, which is not a model"):
        Run("toy", GANTrainConfig(), retrain_requested())


def test_overrides_change_the_named_fields_and_refuse_a_typo(monkeypatch):
    from book_utils.models.dcgan import DCGANConfig

    monkeypatch.setenv("BOOK_OVERRIDES", '{"batch_size": 128, "g_channels": 256}')
    model, train = override(DCGANConfig(), GANTrainConfig())
    assert (model.g_channels, train.batch_size, train.num_steps) == (256, 128, 10_000)
    monkeypatch.setenv("BOOK_OVERRIDES", '{"batch_sise": 128}')
    with pytest.raises(ValueError, match="batch_sise"):
        override(DCGANConfig(), GANTrainConfig())
    monkeypatch.delenv("BOOK_OVERRIDES")
    assert override(GANTrainConfig()) == GANTrainConfig()


def test_animate_grids_makes_an_animation():
    grids = [torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8) for _ in range(3)]
    anim = animate_grids(grids, ["a", "b", "c"], nrow=2)
    assert isinstance(anim, FuncAnimation)
    html = anim.to_jshtml()
    assert "<img" in html or "data:image/png" in html
    with pytest.raises(ValueError, match="labels"):
        animate_grids(grids, ["a"])


def test_ema_with_warmup_follows_its_decay_rule_by_hand():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    ema = AveragedModel(model, multi_avg_fn=ema_with_warmup(0.99, warmup=10))
    expected = [p.detach().clone() for p in model.parameters()]  # the first update copies
    ema.update_parameters(model)
    for n in range(1, 400):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        ema.update_parameters(model)
        d = min(0.99, (1 + n) / (10 + n))
        current = model.parameters()
        expected = [d * e + (1 - d) * p.detach() for e, p in zip(expected, current, strict=True)]
    averaged = list(ema.module.parameters())
    assert all(torch.allclose(a, e, atol=1e-5) for a, e in zip(averaged, expected, strict=True))
    assert (1 + 1) / (10 + 1) < 0.99 and (1 + 399) / (10 + 399) > 0.97  # it warmed up
    with pytest.raises(ValueError, match="decay"):
        ema_with_warmup(1.5)


def test_ema_with_warmup_averages_batch_norm_statistics_and_copies_its_counter():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    ema = AveragedModel(model, multi_avg_fn=ema_with_warmup(0.9), use_buffers=True)
    for _ in range(5):
        model(torch.randn(8, 3))  # updates the running statistics and the counter
        ema.update_parameters(model)
    norm, averaged = model[1], ema.module[1]
    assert averaged.num_batches_tracked.item() == norm.num_batches_tracked.item() == 5
    assert averaged.running_mean.abs().sum() > 0
    assert not torch.equal(averaged.running_mean, norm.running_mean), "averaged, not copied"
