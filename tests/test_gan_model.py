"""Shapes, losses, augmentation and EMA of models/gan.py on tiny configs."""
import pytest
import torch

from models.gan import (
    GanArch, Discriminator, Generator, PRESETS, diff_augment, ema_update, hinge_d_loss, hinge_g_loss, make_arch, truncated_noise,
)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # One thread: on a shared 2-core machine two spinning OpenMP threads run many times slower.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("res", [32, 64, 128])
def test_generator_and_discriminator_shapes(res):
    torch.manual_seed(0)
    arch = make_arch("tiny", resolution=res, cond_dim=8)
    G, D = Generator(arch), Discriminator(arch)
    z, c = torch.randn(3, arch.z_dim), torch.nn.functional.normalize(torch.randn(3, 8), dim=1)
    x = G(z, c)
    assert x.shape == (3, 3, res, res)
    assert x.min() >= -1 and x.max() <= 1
    assert D(x, c).shape == (3,)


def test_condition_changes_generator_output_and_discriminator_score():
    torch.manual_seed(0)
    arch = make_arch("tiny", resolution=32, cond_dim=8)
    G, D = Generator(arch).eval(), Discriminator(arch)
    # The affines start as the identity: perturb them so the condition path is live.
    for p in G.parameters():
        p.data += 0.1 * torch.randn_like(p)
    z = torch.randn(2, arch.z_dim)
    c1, c2 = torch.eye(8)[:2], torch.eye(8)[2:4]
    assert not torch.allclose(G(z, c1), G(z, c2))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert not torch.allclose(D(x, c1), D(x, c2))


def test_bad_arch_is_a_clear_error():
    with pytest.raises(ValueError, match="resolution 48"):
        GanArch(resolution=48)
    with pytest.raises(ValueError, match="choose one of"):
        make_arch("huge", resolution=32, cond_dim=4)
    assert set(PRESETS) >= {"tiny", "small", "base"}


def test_hinge_losses():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    # relu(1-2)=0, relu(1-0.5)=0.5 -> 0.25; relu(1-2)=0, relu(1+0)=1 -> 0.5
    assert hinge_d_loss(real, fake).item() == pytest.approx(0.75)
    mis = torch.tensor([1.0, 1.0])  # relu(2)=2 -> mean 2; fake part = (0.5 + 2) / 2
    assert hinge_d_loss(real, fake, mis).item() == pytest.approx(0.25 + 1.25)
    assert hinge_g_loss(torch.tensor([1.0, 3.0])).item() == pytest.approx(-2.0)


def test_diff_augment_keeps_shape_and_is_differentiable():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    y = diff_augment(x, "color,translation,cutout")
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(diff_augment(x, ""), x)
    cut = diff_augment(torch.ones(8, 3, 16, 16), "cutout")
    # A half-size square whose centre is uniform over the image: ~0.19 of the pixels (less than
    # a quarter because boxes near the border are cropped).
    assert (cut == 0).float().mean() == pytest.approx(0.19, abs=0.05)
    with pytest.raises(ValueError, match="unknown augmentation"):
        diff_augment(x, "flip")


def test_translation_moves_content():
    torch.manual_seed(1)
    x = torch.zeros(16, 1, 8, 8)
    x[:, :, 4, 4] = 1
    y = diff_augment(x, "translation")
    assert torch.allclose(y.sum(dim=(1, 2, 3)), torch.ones(16))  # the one bright pixel stays in view
    moved = (y[:, 0, 4, 4] == 0).sum()
    assert moved > 0


def test_ema_update_moves_towards_model():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    target = b.weight.detach().clone()
    before = (a.weight - target).abs().sum().item()
    ema_update(a, b, 0.5)
    assert (a.weight - target).abs().sum().item() == pytest.approx(before / 2, rel=1e-5)
    ema_update(a, b, 0.0)
    assert torch.allclose(a.weight, target)


def test_truncated_noise_is_bounded_and_seeded():
    z = truncated_noise(64, 16, truncation=0.5, generator=torch.Generator().manual_seed(3))
    assert z.abs().max() <= 0.5
    z2 = truncated_noise(64, 16, truncation=0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(z, z2)
    assert truncated_noise(64, 16, truncation=None).abs().max() > 1.0
