"""scripts/sweep_flow.py and scripts/sweep_gan.py: every setting builds, and a run of a
few seconds writes its curve (steps, CPU-minutes, loss, FID) and its plot."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from book_utils.models.unet import GuidedFlowUNet, UNetConfig

ROOT = Path(__file__).resolve().parent.parent


def load(name: str):
    sys.path.insert(0, str(ROOT / "scripts"))  # sweep_gan imports sweep_flow's plot
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def flow():
    return load("sweep_flow")


@pytest.fixture(scope="module")
def gan():
    return load("sweep_gan")


def test_every_flow_setting_builds(flow):
    for network, recipe in flow.SETTINGS.values():
        model = GuidedFlowUNet(UNetConfig(**{**flow.COMMON, **network}))
        assert model.config.num_classes == 10
        flow.Recipe(**recipe)


def test_every_gan_setting_builds(gan):
    for fields in gan.SETTINGS.values():
        G, D, z_dim = gan.networks(gan.Recipe(**fields))
        assert z_dim > 0 and sum(p.numel() for p in D.parameters()) > 0


@pytest.mark.parametrize("setting", ["stem14", "ddpm_stem14_minsnr5"])
def test_a_short_flow_run_writes_its_curve_and_weights(flow, monkeypatch, tmp_path, setting):
    monkeypatch.setattr(flow, "OUT", tmp_path)
    monkeypatch.setattr(flow, "WEIGHTS", tmp_path)
    flow.train(setting, minutes=0.02, eval_every=0.01, num_eval=200, eval_steps=1)
    curve = json.loads((tmp_path / f"{setting}.json").read_text())
    assert curve["setting"] == setting and len(curve["points"]) >= 1
    step, cpu, wall, loss, fid = curve["points"][-1]
    assert step >= 1 and cpu >= 0.01 and loss > 0 and fid > curve["floor"] > 0
    assert (tmp_path / f"{setting}.pt").exists()
    flow.plot(tmp_path)
    assert (tmp_path / "curves.png").exists()


def test_a_short_gan_run_writes_its_curve(gan, monkeypatch, tmp_path):
    monkeypatch.setattr(gan, "OUT", tmp_path)
    monkeypatch.setattr(gan, "WEIGHTS", tmp_path)
    gan.train("sngan_w32_ndis2", minutes=0.15, eval_every=0.05, num_eval=200)
    curve = json.loads((tmp_path / "sngan_w32_ndis2.json").read_text())
    step, cpu, wall, loss_d, fid, fid_raw = curve["points"][-1]
    assert step >= 2, "the average of G is updated, not only started"
    assert cpu >= 0.15 and fid > curve["floor"] and fid_raw > curve["floor"]
    assert set(torch.load(tmp_path / "sngan_w32_ndis2.pt", weights_only=True)) == {"G", "G_ema"}


@pytest.fixture(scope="module")
def likelihood():
    return load("sweep_likelihood")


def test_every_likelihood_setting_builds(likelihood):
    for name in likelihood.SETTINGS:
        assert sum(p.numel() for p in likelihood.build(name).parameters()) > 0


@pytest.mark.parametrize("setting", ["pixelcnn_c32_l10_k5", "realnvp_h64_b2_vardeq"])
def test_a_short_likelihood_run_writes_its_curve(likelihood, monkeypatch, tmp_path, setting):
    monkeypatch.setattr(likelihood, "OUT", tmp_path)
    likelihood.train(setting, minutes=0.02, eval_every=0.01, num_eval=20)
    curve = json.loads((tmp_path / f"{setting}.json").read_text())
    step, cpu, wall, loss, nll = curve["points"][-1]
    assert step >= 1 and cpu >= 0.01 and wall > 0
    if setting.startswith("pixelcnn"):  # nats per image; a coin per pixel: 543
        assert curve["unit"] == "nats" and 50 < nll < 600
    else:  # bits per dimension; 8 for uniform bytes
        assert curve["unit"] == "bits/dim" and 0.5 < nll < 9
    likelihood.plot(tmp_path, prefix=setting.split("_")[0], log=False)
    assert (tmp_path / f"{setting.split('_')[0]}_curves.png").exists()


def test_a_short_conditional_gan_run_records_its_accuracy(gan, monkeypatch, tmp_path):
    monkeypatch.setattr(gan, "OUT", tmp_path)
    monkeypatch.setattr(gan, "WEIGHTS", tmp_path)
    gan.train("cgan_w32_standin", minutes=0.02, eval_every=0.01, num_eval=200)
    curve = json.loads((tmp_path / "cgan_w32_standin.json").read_text())
    step, cpu, wall, loss_d, fid, fid_raw, accuracy = curve["points"][-1]
    assert step >= 1 and fid > curve["floor"] and 0 <= accuracy <= 1
