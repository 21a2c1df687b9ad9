"""Model folders: a round trip keeps the weights, and every broken folder gets a clear error."""

import json
import pickle

import pytest
import torch

from book_utils.checkpoint import (
    CheckpointError,
    Record,
    from_pretrained,
    print_differences,
    save_pretrained,
    saved_models,
    settings_differences,
    weights_digest,
)
from book_utils.models.dcgan import DCGANConfig, DCGANGenerator
from book_utils.models.vae import VAE, VAEConfig

SMALL = DCGANConfig(latent_dim=8, g_channels=4, d_channels=4)


@pytest.fixture
def folder(tmp_path):
    torch.manual_seed(0)
    G = DCGANGenerator(SMALL)
    record = Record(steps=7, seconds=1.5, machine="CPU", history={"step": [6], "loss": [0.5]})
    record.snapshot_steps, record.snapshots = (
        [0, 7],
        [torch.zeros(4, 28, 28, dtype=torch.uint8)] * 2,
    )
    save_pretrained(G, tmp_path / "g", record)
    return tmp_path / "g", G


def test_round_trip_rebuilds_the_model_with_its_config_weights_and_record(folder):
    path, G = folder
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json", "model.safetensors", "record.json", "snapshots.safetensors"
    ]  # fmt: skip
    loaded = from_pretrained(path)
    assert type(loaded) is DCGANGenerator and loaded.config == SMALL and not loaded.training
    for key, value in G.state_dict().items():  # stored in float16, read back into float32
        assert torch.equal(loaded.state_dict()[key], value.half().to(value.dtype)), key
    assert loaded.record.steps == 7 and loaded.record.history == {"step": [6], "loss": [0.5]}
    assert (
        loaded.record.snapshot_steps == [0, 7] and loaded.record.snapshots[1].dtype == torch.uint8
    )
    assert not list(path.glob(".*.tmp")), "no temporary file is left behind"


def test_a_folder_of_another_class_is_refused(folder):
    with pytest.raises(CheckpointError, match="holds a DCGANGenerator, not a VAE"):
        from_pretrained(folder[0], model_class=VAE)


def test_a_missing_weights_file_says_what_to_do(folder):
    (folder[0] / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="has no model.safetensors.*RETRAIN = True"):
        from_pretrained(folder[0])


def test_a_config_that_does_not_fit_the_weights_is_refused(folder):
    config_file = folder[0] / "config.json"
    saved = json.loads(config_file.read_text())
    saved["config"]["g_channels"] = 8  # the weights were made with 4
    config_file.write_text(json.dumps(saved))
    with pytest.raises(CheckpointError, match="do not fit the config"):
        from_pretrained(folder[0])
    saved["config"]["no_such_field"] = 1
    config_file.write_text(json.dumps(saved))
    with pytest.raises(CheckpointError, match="do not fit the config"):
        from_pretrained(folder[0])


def test_corrupt_files_and_unknown_names_are_refused(folder, tmp_path):
    weights = folder[0] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    with pytest.raises(CheckpointError, match="corrupt"):
        from_pretrained(folder[0])
    with pytest.raises(CheckpointError, match="No saved model.*dcgan"):
        from_pretrained("no_such_model")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.json").write_text(json.dumps({"class": "os.system"}))
    (tmp_path / "odd" / "model.safetensors").write_bytes(weights.read_bytes())
    with pytest.raises(CheckpointError):
        from_pretrained(tmp_path / "odd")


def test_saved_models_lists_the_folders_that_hold_a_model(tmp_path, monkeypatch):
    import book_utils.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "CHECKPOINT_DIR", tmp_path / "missing")
    assert saved_models() == []
    monkeypatch.setattr(checkpoint, "CHECKPOINT_DIR", tmp_path)
    for name in ["b_model", "a_model", "empty"]:
        (tmp_path / name).mkdir()
    save_pretrained(DCGANGenerator(SMALL), tmp_path / "b_model")
    save_pretrained(DCGANGenerator(SMALL), tmp_path / "a_model")
    (tmp_path / "notes.txt").write_text("not a folder")
    assert saved_models() == ["a_model", "b_model"]  # sorted; no config.json, no model


def test_no_file_of_a_model_folder_is_a_pickle(folder):
    for file in folder[0].iterdir():
        with pytest.raises(pickle.UnpicklingError), open(file, "rb") as handle:
            pickle.load(handle)


def test_a_model_outside_the_registry_cannot_be_saved(tmp_path):
    class Unknown(torch.nn.Linear):
        config = {}

    with pytest.raises(ValueError, match="MODEL_CLASSES"):
        save_pretrained(Unknown(2, 2), tmp_path / "u")


def test_tuples_in_configs_come_back_as_tuples(tmp_path):
    vae = VAE(VAEConfig(latent_dim=2, hidden=(8, 4)))
    assert from_pretrained(save_pretrained(vae, tmp_path / "v")).config == vae.config


def test_settings_differences_read_the_record_and_fill_the_model_group_from_the_config(
    tmp_path, capsys
):
    """A record may lack model fields added since it was written (the config.json names
    them all), and a GAN's record holds D's settings where G's config differs: the record
    wins where both name a field. Fields on one side only are differences too."""
    G = DCGANGenerator(SMALL)
    recorded = {"model": {"latent_dim": 8, "d_channels": 6}, "train": {"lr": 2e-4, "beta1": 0.5}}
    save_pretrained(G, tmp_path / "g", Record(steps=3, machine="CPU", hyperparameters=recorded))
    loaded = from_pretrained(tmp_path / "g")
    cell = {"model": SMALL, "train": {"lr": 1e-4, "batch_size": 64}}
    assert settings_differences(loaded, cell) == {
        "model.d_channels": (6, 4),  # the record's value, not G's config
        "train.lr": (2e-4, 1e-4),
        "train.batch_size": ("not recorded", 64),
        "train.beta1": (0.5, "not set"),
    }  # g_channels is not recorded but the config names it: the same, so no difference
    assert settings_differences(loaded, {"model": SMALL, "train": recorded["train"]}) == {
        "model.d_channels": (6, 4)
    }
    print_differences("g", loaded, cell)
    printed = capsys.readouterr().out
    assert printed.startswith("g: trained on CPU, 3 steps")
    assert "  train.lr: trained with 0.0002, this chapter's cell says 0.0001" in printed


def test_weights_digest_names_the_saved_weights(folder):
    """A model and its saved copy have one digest (the copy is stored in half precision);
    a changed weight changes it."""
    path, G = folder
    loaded = from_pretrained(path)
    digest = weights_digest(G)
    assert len(digest) == 12 and int(digest, 16) >= 0
    assert weights_digest(loaded) == digest
    with torch.no_grad():
        next(loaded.parameters()).view(-1)[0] += 0.5
    assert weights_digest(loaded) != digest


def test_print_differences_says_when_a_model_was_scored_but_not_trained(tmp_path, capsys):
    """A record of 0 steps with a scoring time is an evaluation-only run: the page says so
    instead of "trained ..., 0 steps"."""
    G = DCGANGenerator(SMALL)
    record = Record(machine="CPU", figures={"scoring_seconds": 90.0})
    save_pretrained(G, tmp_path / "g", record)
    print_differences("g", from_pretrained(tmp_path / "g"), {})
    assert capsys.readouterr().out == "g: not trained here; scored on CPU, 1.5 min\n"
