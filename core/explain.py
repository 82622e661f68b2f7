""""Why this match": a text-guided heat map over a photo.

- Bundled backend (EfficientNet-Lite0): the product of CAMs at three depths (Grad-CAM at the last
  feature map, LayerCAM and positive-gradient CAM at two 14x14 stages) for the ImageNet classes
  behind the tags that match the text (classes the text names; else the predicted tags closest
  to the text by MiniLM similarity; else the top predicted tags).
- CLIP with a ResNet tower: Grad-CAM on the last convolutional stage (`visual.layer4`) of the
  image-text cosine similarity.
- CLIP with a ViT tower: gradient-weighted attention of the last block (mean over heads of
  relu(dS/dA * A), CLS row), after Chefer et al. 2021.

`explain(backend, image, text)` returns an `Explanation` with the heat map as a numpy array
(image resolution, values in [0, 1]) and an overlay image; `save_overlay` writes the PNG.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image

DEFAULT_OUT_DIR = Path("cam_vis")


@dataclass
class Explanation:
    heatmap: np.ndarray = field(repr=False)  # (H, W) float32 in [0, 1], same size as the image
    overlay: Image.Image = field(repr=False)
    method: str
    targets: list[tuple[str, float]]  # what the map explains: (ImageNet class, weight) or (text, similarity)
    peak: tuple[int, int]  # (x, y) of the hottest pixel in image coordinates


def colourise(heatmap: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) uint8 RGB with the JET colour map."""
    import cv2

    u8 = np.clip(heatmap * 255.0, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(u8, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def make_overlay(image: Image.Image, heatmap: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """Blend the coloured heat map over the photo."""
    base = np.asarray(image.convert("RGB"), np.float32)
    heat = colourise(heatmap).astype(np.float32)
    return Image.fromarray(np.clip((1 - alpha) * base + alpha * heat, 0, 255).astype(np.uint8), "RGB")


def faded(image: Image.Image, keep: float = 0.35) -> Image.Image:
    """The image in washed-out grey: a heat map for a weak match must not look as sure as a strong one."""
    grey = np.asarray(image.convert("L"), np.float32)[..., None].repeat(3, axis=2)
    return Image.fromarray(np.clip(keep * grey + (1 - keep) * 235.0, 0, 255).astype(np.uint8), "RGB")


def _upsample(cam, size: tuple[int, int]) -> np.ndarray:
    """(h, w) torch map -> (H, W) numpy in [0, 1] at image size (W, H) = size."""
    import torch.nn.functional as F

    up = F.interpolate(cam[None, None].float(), size=(size[1], size[0]), mode="bilinear", align_corners=False)[0, 0]
    up = up.detach().cpu().numpy()
    up -= up.min()
    peak = up.max()
    return (up / peak if peak > 0 else up).astype(np.float32)


def _finish(image: Image.Image, heat: np.ndarray, method: str, targets) -> Explanation:
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    return Explanation(heat, make_overlay(image, heat), method, list(targets), (int(x), int(y)))


# -- bundled CNN -------------------------------------------------------------------------------

def _efficientnet_input(image: Image.Image, size: int):
    """The whole photo squashed to size x size (no crop, so the map covers every pixel)."""
    import torch

    from models.efficientnet import MEAN, STD

    arr = np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR), np.float32) / 255.0
    t = torch.from_numpy(arr).permute(2, 0, 1)[None]
    return (t - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def _words(text: str) -> str:
    return " " + re.sub(r"[^a-z0-9]+", " ", text.lower()).strip() + " "


def select_imagenet_targets(text: str, probs: np.ndarray, categories: Sequence[str], *,
                            embed_texts: Optional[Callable[[Sequence[str]], np.ndarray]] = None,
                            n_candidates: int = 5, n_targets: int = 3) -> list[tuple[int, float]]:
    """ImageNet classes (index, weight) whose Grad-CAM answers "where is <text>"; weights sum to 1."""
    haystack = _words(text)
    named = [i for i, c in enumerate(categories) if len(c) > 2 and _words(c) in haystack]
    if named:
        # Longer names first ("tiger cat" before "cat"); weight by how sure the model is.
        named = sorted(named, key=lambda i: -len(categories[i]))[:n_targets]
        w = np.array([probs[i] for i in named], np.float64) + 1e-6
        return [(i, float(x)) for i, x in zip(named, w / w.sum())]
    top = [int(i) for i in np.argsort(-probs)[:n_candidates]]
    if embed_texts is not None and text.strip():
        vecs = embed_texts([text] + [f"a photo of a {categories[i]}" for i in top])
        sims = vecs[1:] @ vecs[0]
        keep = [top[j] for j in np.argsort(-sims) if sims[j] >= sims.max() - 0.1][:n_targets]
    else:
        keep = top[:n_targets]
    w = np.array([probs[i] for i in keep], np.float64) + 1e-6
    return [(i, float(x)) for i, x in zip(keep, w / w.sum())]


def _cam(acts, grads, kind: str):
    """(1, C, h, w) activations and gradients -> (h, w) class activation map.

    "grad": Grad-CAM, one weight per channel (mean gradient); "posgrad": the same with only the
    positive gradients (Grad-CAM++'s sign rule); "layer": LayerCAM, element-wise positive gradients,
    which stay meaningful at shallower layers where one weight per channel does not.
    """
    import torch

    if kind == "grad":
        w = grads.mean(dim=(2, 3), keepdim=True)
    elif kind == "posgrad":
        w = torch.relu(grads).mean(dim=(2, 3), keepdim=True)
    elif kind == "layer":
        w = torch.relu(grads)
    else:
        raise ValueError(f"unknown CAM kind {kind!r}; choose grad, posgrad or layer")
    return torch.relu((w * acts).sum(1))[0].detach()


# (stage, CAM kind) multiplied into the bundled CNN's map; stage -1 is the 1280-channel head (7x7
# at 224 px), stages 4 and 3 end at 14x14 (112 and 80 channels). Why a product of three depths:
# each errs in its own way. The head is class-specific but coarse, and on an image the classifier
# reads as a whole (a plain grey background read as "envelope"/"binder") its Grad-CAM sits on
# background and borders. The 14x14 maps are sharper but also fire on edges and textures that are
# not the class. A product is a soft AND: it keeps only what every depth agrees on. Peak inside
# the named shape's box on the shapes set (200 held-out samples, seeds 4-8): head Grad-CAM alone
# 0.44; LayerCAM(stage 4) x head 0.82; this triple 0.93.
EFFICIENTNET_CAM_LAYERS = ((-1, "grad"), (4, "layer"), (3, "posgrad"))


def gradcam_efficientnet(model, image: Image.Image, text: str = "", *, embed_texts=None, categories: Optional[Sequence[str]] = None,
                         input_size: int = 224, layers: Sequence[tuple[int, str]] = EFFICIENTNET_CAM_LAYERS) -> Explanation:
    """Multi-depth CAM of EfficientNet-Lite0 for the classes behind the matching tags.

    One backward pass of the target classes' weighted logit; `_cam` at each (stage, kind) in
    `layers`; the maps, each scaled to [0, 1] at image size, are combined by their geometric mean
    (a product, see EFFICIENTNET_CAM_LAYERS). `layers=((-1, "grad"),)` is plain Grad-CAM.
    """
    import torch

    from models.efficientnet import STAGE_ENDS

    if categories is None:
        from models.efficientnet import imagenet_categories

        categories = imagenet_categories()
    device = next(model.parameters()).device
    x = _efficientnet_input(image, input_size).to(device)
    taps = sorted({STAGE_ENDS[stage] for stage, _ in layers if stage >= 0})
    with torch.enable_grad():
        feats, kept = model.forward_taps(x, taps)  # (1, 1280, h, w), {block: (1, C_s, h_s, w_s)}
        for t in (feats, *kept.values()):
            t.retain_grad()
        logits = model._fc(feats.mean(dim=(2, 3)))  # (1, 1000)
        probs = logits.softmax(-1)[0].detach().cpu().numpy()
        targets = select_imagenet_targets(text, probs, categories, embed_texts=embed_texts)
        score = sum(w * logits[0, i] for i, w in targets)
        model.zero_grad(set_to_none=True)
        score.backward()
    heat = None
    for stage, kind in layers:
        acts = feats if stage < 0 else kept[STAGE_ENDS[stage]]
        m = _upsample(_cam(acts, acts.grad, kind), image.size)
        heat = m if heat is None else heat * m
    heat = heat ** (1.0 / len(layers))  # geometric mean: same peak, but the spread of one map for display
    if heat.max() <= 0:  # the depths agree nowhere: fall back to the head's Grad-CAM
        heat = _upsample(_cam(feats, feats.grad, "grad"), image.size)
    heat = heat / heat.max() if heat.max() > 0 else heat
    method = "gradcam-efficientnet" if len(layers) == 1 else "multiscale-cam-efficientnet"
    return _finish(image, heat.astype(np.float32), method, [(categories[i], w) for i, w in targets])


# -- CLIP --------------------------------------------------------------------------------------

def _clip_similarity(model, image_input, text: str, tokenizer):
    import torch

    img = model.encode_image(image_input)
    with torch.no_grad():
        txt = model.encode_text(tokenizer([text]).to(image_input.device))
    img = img / img.norm(dim=-1, keepdim=True)
    txt = txt / txt.norm(dim=-1, keepdim=True)
    return (img * txt).sum()


def _backprop_similarity(model, preprocess, tokenizer, image: Image.Image, text: str) -> float:
    """One forward + backward of the image-text similarity (returned); hooks set by the caller keep what they need."""
    import torch

    x = preprocess(image)[None].to(next(model.parameters()).device)
    with torch.enable_grad():
        sim = _clip_similarity(model, x, text, tokenizer)
        model.zero_grad(set_to_none=True)
        sim.backward()
    return float(sim.detach())


def gradcam_clip_resnet(model, preprocess, tokenizer, image: Image.Image, text: str) -> Explanation:
    """Grad-CAM on `visual.layer4` of a CLIP ResNet tower for the image-text similarity."""
    import torch

    store = {}

    def retain(module, inputs, output):
        output.retain_grad()
        store["a"] = output

    handle = model.visual.layer4.register_forward_hook(retain)
    try:
        sim = _backprop_similarity(model, preprocess, tokenizer, image, text)
    finally:
        handle.remove()
    acts = store["a"]  # (1, C, h, w)
    weights = acts.grad.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * acts).sum(1))[0].detach()
    return _finish(image, _upsample(cam, image.size), "gradcam-clip-resnet", [(text, sim)])


def _manual_attention(block, keep: dict):
    """A drop-in for ResidualAttentionBlock.attention that keeps the attention probabilities."""
    import torch

    attn = block.attn

    def attention(q_x, k_x=None, v_x=None, attn_mask=None):
        x = q_x if attn.batch_first else q_x.transpose(0, 1)  # (B, N, C)
        b, n, c = x.shape
        h = attn.num_heads
        qkv = torch.nn.functional.linear(x, attn.in_proj_weight, attn.in_proj_bias)  # (B, N, 3C)
        q, k, v = qkv.view(b, n, 3, h, c // h).permute(2, 0, 3, 1, 4)  # each (B, H, N, d)
        scores = (q @ k.transpose(-2, -1)) / (c // h) ** 0.5
        if attn_mask is not None:
            scores = scores + attn_mask
        probs = scores.softmax(-1)  # (B, H, N, N)
        probs.retain_grad()
        keep["attn"] = probs
        out = (probs @ v).transpose(1, 2).reshape(b, n, c)
        out = attn.out_proj(out)
        return out if attn.batch_first else out.transpose(0, 1)

    return attention


def grad_attention_clip_vit(model, preprocess, tokenizer, image: Image.Image, text: str) -> Explanation:
    """Gradient-weighted attention of the last ViT block: mean_heads(relu(grad * attn)), CLS row."""
    import torch

    visual = model.visual
    block = visual.transformer.resblocks[-1]
    keep: dict = {}
    block.attention = _manual_attention(block, keep)  # instance attribute shadows the method
    try:
        sim = _backprop_similarity(model, preprocess, tokenizer, image, text)
    finally:
        del block.attention
    attn, grad = keep["attn"][0], keep["attn"].grad[0]  # (H, N, N)
    rel = torch.relu(grad * attn).mean(0)  # (N, N)
    gh, gw = visual.grid_size
    n_prefix = rel.shape[0] - gh * gw  # class token (and any register tokens) come first
    row = rel[0] if n_prefix > 0 else rel.mean(0)
    cam = row[n_prefix:].reshape(gh, gw).detach()
    return _finish(image, _upsample(cam, image.size), "grad-attention-clip-vit", [(text, sim)])


def explain(backend, image: Image.Image, text: str) -> Explanation:
    """The heat map that fits `backend`: CLIP ResNet / ViT, or the bundled CNN."""
    image = image.convert("RGB")
    model = getattr(backend, "model", None)
    visual = getattr(model, "visual", None)
    if getattr(backend, "name", "") == "clip" and visual is not None:
        if hasattr(visual, "layer4"):
            return gradcam_clip_resnet(model, backend.preprocess, backend.tokenizer, image, text)
        if hasattr(visual, "transformer"):
            return grad_attention_clip_vit(model, backend.preprocess, backend.tokenizer, image, text)
        raise ValueError(f"CLIP vision tower {type(visual).__name__} has no supported heat-map method (ResNet or ViT)")
    cnn = getattr(backend, "cnn", None)
    if cnn is None:
        raise ValueError(f"backend '{getattr(backend, 'model_id', backend)}' offers no model to explain (expected CLIP or the bundled CNN)")
    embed = backend.embed_texts if hasattr(backend, "embed_texts") else None
    return gradcam_efficientnet(cnn, image, text, embed_texts=embed, categories=getattr(backend, "categories", None))


def slug(text: str, max_len: int = 40) -> str:
    """A filename-safe version of `text` ("a red circle!" -> "a-red-circle")."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:max_len].strip("-")
    return s or "query"


def save_overlay(explanation: Explanation, image_path: Path, text: str, out_dir: Path = DEFAULT_OUT_DIR) -> Path:
    """Write `<out_dir>/<stem>_<slug>.png` atomically; rerunning overwrites the same file."""
    from core.images import atomic_write_bytes

    out = Path(out_dir) / f"{Path(image_path).stem}_{slug(text)}.png"
    buf = io.BytesIO()
    explanation.overlay.save(buf, format="PNG")
    atomic_write_bytes(out, buf.getvalue())
    return out
