"""Chapter 08's conditional models: the conditional VAE, classifier-free guidance for the
flow network, the conditional scores, and the committed checkpoints with ``--label``."""

import dataclasses

import pytest
import torch

from book_utils.checkpoint import CHECKPOINT_DIR, from_pretrained, save_pretrained
from book_utils.data import from_signed_unit
from book_utils.diffusion import guided_velocity
from book_utils.metrics import conditional_scores, extract, fid, load_classifier
from book_utils.models.unet import FlowUNet, GuidedFlowUNet, UNetConfig
from book_utils.models.vae import VAE, VAEConfig
from book_utils.sample import draw_samples, main

SMALL_VAE = VAEConfig(latent_dim=4, hidden=(32, 16), num_classes=10)
SMALL_UNET = UNetConfig(channels=8, time_dim=16, dropout=0.0, sample_steps=3, num_classes=10)
CONDITIONAL_MODELS = ["cvae", "cgan", "flow_cfg"]


# --------------------------------------------------------------------------- the cVAE
def test_cvae_shapes_and_labels():
    torch.manual_seed(0)
    vae = VAE(SMALL_VAE)
    x, y = torch.rand(5, 1, 28, 28), torch.tensor([0, 1, 2, 3, 9])
    mu, logvar = vae.encode(x, y)
    assert mu.shape == logvar.shape == (5, 4)
    assert vae.decode(mu, y).shape == (5, 1, 28, 28)
    assert vae.decode(torch.zeros(3, 5, 4), y).shape == (3, 5, 1, 28, 28)  # sample axis
    samples = vae.sample(4, torch.Generator().manual_seed(0), labels=torch.tensor(7))
    assert samples.shape == (4, 1, 28, 28) and 0 <= samples.min() <= samples.max() <= 1


def test_cvae_decoder_depends_on_the_label_and_seed_repeats():
    torch.manual_seed(0)
    vae = VAE(SMALL_VAE)
    a = vae.sample(3, torch.Generator().manual_seed(1), labels=torch.tensor([1, 1, 1]))
    b = vae.sample(3, torch.Generator().manual_seed(1), labels=torch.tensor([1, 1, 1]))
    c = vae.sample(3, torch.Generator().manual_seed(1), labels=torch.tensor([2, 2, 2]))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize(
    "labels", [None, torch.tensor([0, 10]), torch.tensor([-1, 0]), torch.tensor([0.5, 1])]
)
def test_cvae_refuses_missing_or_bad_labels(labels):
    vae = VAE(SMALL_VAE)
    with pytest.raises(ValueError, match="label"):
        vae.encode(torch.rand(2, 1, 28, 28), labels)


def test_unconditional_vae_is_chapter_04s_and_refuses_labels():
    plain = VAE(VAEConfig(latent_dim=4, hidden=(32, 16)))
    assert plain.encoder[0].in_features == 784 and plain.decoder[0].in_features == 4
    with pytest.raises(ValueError, match="not conditional"):
        plain.encode(torch.rand(2, 1, 28, 28), torch.tensor([0, 1]))
    saved = from_pretrained("vae")  # the committed chapter 04 model still loads
    assert saved.config.num_classes == 0


# --------------------------------------------------------------------------- guidance
def test_guided_velocity_is_the_weighted_combination():
    torch.manual_seed(0)
    net = GuidedFlowUNet(SMALL_UNET).eval()
    x, t, y = torch.randn(4, 1, 28, 28), torch.rand(4), torch.tensor([3, 1, 4, 1])
    with torch.no_grad():
        conditional, unconditional = net(x, t, y), net(x, t, torch.full((4,), 10))
        for w in (0.0, 0.5, 3.0):
            expected = (1 + w) * conditional - w * unconditional
            got = guided_velocity(net, x, t, y, w)
            assert torch.allclose(got, expected, atol=1e-5)
        assert torch.allclose(guided_velocity(net, x, t, y, -1.0), unconditional, atol=1e-5)
        assert torch.equal(net(x, t), unconditional)  # no label is the null label


def test_guided_sampling_shapes_seed_and_errors():
    torch.manual_seed(0)
    net = GuidedFlowUNet(SMALL_UNET)
    a = net.sample(4, torch.Generator().manual_seed(2), labels=torch.tensor(5), guidance=2.0)
    b = net.sample(4, torch.Generator().manual_seed(2), labels=torch.tensor(5), guidance=2.0)
    assert a.shape == (4, 1, 28, 28) and torch.equal(a, b) and a.abs().max() <= 1
    with pytest.raises(ValueError, match="labels"):
        net.sample(2, labels=torch.tensor([0, 10]))
    with pytest.raises(ValueError, match="steps"):
        net.sample(2, steps=0)
    with pytest.raises(ValueError, match="num_classes"):
        GuidedFlowUNet(UNetConfig(channels=8))


def test_unconditional_unet_is_chapter_06s():
    plain = FlowUNet(UNetConfig(channels=8, time_dim=16))
    assert not any("label" in key for key in plain.state_dict())
    with pytest.raises(ValueError, match="not conditional"):
        plain(torch.zeros(1, 1, 28, 28), torch.zeros(1), torch.tensor([1]))
    assert from_pretrained("flow").config.num_classes == 0  # chapter 06's model loads


# --------------------------------------------------------------------------- the scores
def test_conditional_scores_against_a_hand_computation():
    classifier = load_classifier()
    from book_utils.data import load_mnist

    mnist = load_mnist()
    x, y = mnist.x_test[:1500], mnist.y_test[:1500]
    asked = y.clone()
    asked[:300] = (asked[:300] + 1) % 10  # 300 samples "asked for" the wrong digit
    scores = conditional_scores(x, asked, mnist.x_test, mnist.y_test, classifier)
    features, probs = extract(x, classifier)
    reference_features, _ = extract(mnist.x_test, classifier)
    assert scores["accuracy"] == pytest.approx((probs.argmax(1) == asked).float().mean())
    assert scores["fid"] == pytest.approx(fid(reference_features, features), rel=1e-6)
    ones = asked == 1
    expected = (probs.argmax(1)[ones] == 1).float().mean().item()
    assert scores["accuracy_1"] == pytest.approx(expected)
    assert ("fid_1" in scores) == (ones.sum() > 128)
    with pytest.raises(ValueError, match="one label"):
        conditional_scores(x, asked[:10], mnist.x_test, mnist.y_test, classifier)


# --------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("name", CONDITIONAL_MODELS)
def test_committed_conditional_model_draws_the_digit_asked_for(name):
    assert (CHECKPOINT_DIR / name).is_dir(), f"book_utils/checkpoints/{name}/ is missing"
    model = from_pretrained(name)
    figures = model.record.figures
    assert 0.0 <= figures["accuracy"] <= 1.0 and figures["fid"] > 0
    images = draw_samples(name, 40, seed=0, label=3)
    again = draw_samples(name, 40, seed=0, label=3)
    assert images.shape == (40, 28, 28) and torch.equal(images, again)
    _, probs = extract(images, load_classifier())
    share = (probs.argmax(1) == 3).float().mean().item()
    assert share > 0.3, f"{name}: only {share:.0%} of the samples asked for a 3 read as 3"


def test_cli_label(tmp_path):
    out = tmp_path / "threes.npy"
    assert main(["cvae", "--n", "12", "--label", "3", "--out", str(out)]) == 0
    for args in (["cvae", "--label", "10"], ["dcgan", "--label", "3"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*args, "--out", str(tmp_path / "x.npy")])
        assert exit_info.value.code == 2
    assert not (tmp_path / "x.npy").exists()


def test_a_flow_trained_with_labels_draws_digits_and_guidance_through_draw_samples(tmp_path):
    torch.manual_seed(0)
    flow = FlowUNet(SMALL_UNET)  # chapter 06's kind: a FlowUNet with labels (and null)
    with torch.no_grad():
        for parameter in flow.parameters():  # away from the zero start: labels matter
            parameter.add_(0.05 * torch.randn_like(parameter))
    folder = save_pretrained(flow, tmp_path / "flow")
    guided = GuidedFlowUNet.from_flow(flow)
    assert type(guided) is GuidedFlowUNet and guided.config == flow.config
    assert GuidedFlowUNet.from_flow(flow, guidance=1.5).config.guidance == 1.5
    assert GuidedFlowUNet.from_flow(flow, sample_steps=3).config.sample_steps == 3
    for a, b in zip(guided.state_dict().values(), flow.state_dict().values(), strict=True):
        assert torch.equal(a, b)

    def seeded():
        return torch.Generator().manual_seed(1)

    def same(a: torch.Tensor, b: torch.Tensor) -> bool:  # up to a grey level's rounding
        return (a.int() - b.int()).abs().max().item() <= 1

    threes = torch.full((4,), 3)
    expected = from_signed_unit(guided.sample(4, seeded(), labels=threes, guidance=2.0))
    assert same(draw_samples(str(folder), 4, seed=1, label=3, guidance=2.0), expected)
    no_label = draw_samples(str(folder), 4, seed=1)  # the null label: the flow's own sample
    assert same(no_label, from_signed_unit(flow.sample(4, seeded())))
    fives = draw_samples(str(folder), 4, seed=1, label=5)
    assert not torch.equal(draw_samples(str(folder), 4, seed=1, label=3), fives)
    with pytest.raises(ValueError, match="takes no guidance"):
        draw_samples("cvae", 4, guidance=1.0)
    plain = FlowUNet(dataclasses.replace(SMALL_UNET, num_classes=0))
    with pytest.raises(ValueError, match="not a conditional model"):
        draw_samples(str(save_pretrained(plain, tmp_path / "plain")), 4, label=3)
