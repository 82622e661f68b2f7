"""Frechet distance, KID, the shapes judge and conditional accuracy."""
import numpy as np
import pytest

from core.gan.data import shapes_image_set
from core.gan.evaluate import conditional_accuracy, degrade, frechet_distance, kernel_distance, train_judge, within_group_diversity


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # One thread: on a shared 2-core machine two spinning OpenMP threads run many times slower.
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_frechet_distance_matches_closed_form_for_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, size=(4000, 4))
    b = rng.normal(0, 1, size=(4000, 4))
    assert frechet_distance(a, b) == pytest.approx(0, abs=0.05)
    # Shift the mean by 2 in every one of 4 dims: |mu1 - mu2|^2 = 16; same covariance.
    assert frechet_distance(a, b + 2) == pytest.approx(16, abs=0.3)
    # Scale by 3: trace term = 4 * (1 + 9 - 2 * 3) = 16.
    assert frechet_distance(a, b * 3) == pytest.approx(16, rel=0.05)


def test_kid_is_near_zero_for_one_distribution_and_large_for_two():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
    same, _ = kernel_distance(a, b, subset_size=100)
    diff, _ = kernel_distance(a, b + 1.5, subset_size=100)
    assert abs(same) < 0.05 and diff > 10 * max(abs(same), 1e-3)


@pytest.fixture(scope="module")
def judge():
    s, labels = shapes_image_set(540, 32, seed=0)
    return train_judge(s.images, labels, steps=250)


def test_judge_recognises_held_out_real_shapes(judge):
    test, labels = shapes_image_set(180, 32, seed=5)
    assert len(judge.classes) == 18
    assert judge.accuracy(test.images, labels) > 0.8
    noise = np.random.default_rng(0).integers(0, 255, (36, 32, 32, 3), dtype=np.uint8)
    assert judge.accuracy(noise, labels[:36]) < 0.5


def test_judge_reads_soft_edged_noisy_shapes(judge):
    # Generated images are blurred, grainy and tinted; the judge must still read them.
    import torch

    from core.gan.generate import to_uint8

    test, labels = shapes_image_set(180, 32, seed=5)
    x = torch.from_numpy(test.images).permute(0, 3, 1, 2).float() / 127.5 - 1
    d = degrade(x, torch.Generator().manual_seed(0))
    assert (d - x).abs().mean() > 0.02  # the degradation is real
    assert judge.accuracy(to_uint8(d), labels) > 0.85


class _Oracle:
    """A 'generator' that draws the real shape for a condition: one-hot class index -> image."""

    def __init__(self, labels):
        import torch

        self.torch = torch
        from core.shapes import render

        self.arch = type("A", (), {"z_dim": 2})()
        self.images = {}
        for i, l in enumerate(labels):
            c, s = l.split("_")
            self.images[i] = np.asarray(render(c, s, "large", "center", image_size=32).image)
        self.p = torch.nn.Parameter(torch.zeros(1))

    def parameters(self):
        return iter([self.p])

    def __call__(self, z, c):
        idx = c.argmax(dim=1).tolist()
        arr = np.stack([self.images[i] for i in idx]).astype(np.float32) / 127.5 - 1
        return self.torch.from_numpy(arr).permute(0, 3, 1, 2)


def test_conditional_accuracy_is_high_for_a_perfect_generator_and_low_for_a_shuffled_one(judge):
    classes = judge.classes
    cond = np.eye(len(classes), dtype=np.float32)
    oracle = _Oracle(classes)
    assert conditional_accuracy(oracle, judge, cond, classes, n_per=2) > 0.9
    shuffled = classes[1:] + classes[:1]
    assert conditional_accuracy(oracle, judge, cond, shuffled, n_per=2) < 0.2


@pytest.mark.slow
def test_effnet_distance_separates_shapes_from_noise():
    from core.gan.evaluate import distribution_metrics
    from models.efficientnet import load_efficientnet_lite0

    model = load_efficientnet_lite0("cpu")
    a, _ = shapes_image_set(12, 32, seed=0)
    b, _ = shapes_image_set(12, 32, seed=1)
    noise = np.random.default_rng(0).integers(0, 255, (12, 32, 32, 3), dtype=np.uint8)
    near = distribution_metrics(a.images, b.images, model=model)
    far = distribution_metrics(a.images, noise, model=model)
    assert "not comparable" in near["note"] or "not with published" in near["note"]
    assert far["FID-EffNet"] > 2 * near["FID-EffNet"]
    assert far["KID-EffNet"] > near["KID-EffNet"]


def test_within_group_diversity():
    rng = np.random.default_rng(0)
    same = np.repeat(rng.integers(0, 256, (1, 8, 8, 3), dtype=np.uint8), 4, axis=0)
    noise = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    assert within_group_diversity([same]) == 0.0
    assert 0.3 < within_group_diversity([noise]) < 0.37  # E|U - V| = 1/3 for uniform pixels
    assert within_group_diversity([same, noise[:1], noise]) == within_group_diversity([same, noise])  # singletons skipped
    with pytest.raises(ValueError, match="two or more"):
        within_group_diversity([noise[:1]])
