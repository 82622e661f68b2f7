"""The captioner model: encoders, both decoders, greedy/beam decoding, checkpoints, BLEU."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from core.captioning.decode import beam_decode, decode, greedy_decode
from core.captioning.evaluate import bleu_scores
from models.captioner import (CaptionDecoder, CaptionerConfig, Checkpoint, build_encoder, load_checkpoint,
                              save_checkpoint)

V, N, FD = 12, 4, 24


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny models: one thread avoids oversubscription on a shared 2-core machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _cfg(kind: str, **kw) -> CaptionerConfig:
    base = dict(decoder=kind, vocab_size=V, n_layer=1, n_head=2, n_embd=16, dropout=0.0, max_len=8, feat_dim=FD, n_feat=N)
    base.update(kw)
    return CaptionerConfig(**base)


@pytest.mark.parametrize("kind", ["transformer", "lstm"])
def test_decoder_shapes_and_causality(kind):
    torch.manual_seed(0)
    dec = CaptionDecoder(_cfg(kind, n_layer=2)).eval()
    feats, tokens = torch.randn(3, N, FD), torch.randint(0, V, (3, 6))
    logits = dec(feats, tokens)
    assert logits.shape == (3, 6, V)
    # A later token must not change earlier predictions (teacher forcing relies on it).
    changed = tokens.clone()
    changed[:, 4:] = (changed[:, 4:] + 1) % V
    assert torch.allclose(dec(feats, changed)[:, :4], logits[:, :4], atol=1e-5)
    # The image matters.
    assert not torch.allclose(dec(torch.randn(3, N, FD), tokens), logits)


def test_decoder_config_errors():
    with pytest.raises(ValueError, match="divisible"):
        CaptionDecoder(_cfg("transformer", n_embd=15, n_head=2))
    with pytest.raises(ValueError, match="decoder"):
        CaptionDecoder(_cfg("gru"))
    with pytest.raises(ValueError, match="vocab_size"):
        CaptionDecoder(_cfg("lstm", vocab_size=4))


def _seq_logprob(dec, feats, seq, bos, eos):
    toks = torch.tensor([[bos, *seq]])
    logp = dec(feats, toks).log_softmax(-1)[0]
    target = [*seq, eos]
    return float(sum(logp[i, t] for i, t in enumerate(target)))


@pytest.mark.parametrize("kind", ["transformer", "lstm"])
def test_beam_of_one_is_greedy_and_wider_beam_scores_at_least_as_well(kind):
    torch.manual_seed(1)
    dec = CaptionDecoder(_cfg(kind)).eval()
    feats = torch.randn(5, N, FD)
    kw = dict(bos_id=1, eos_id=2, max_len=8)
    greedy = greedy_decode(dec, feats, **kw)
    assert beam_decode(dec, feats, beam_size=1, length_penalty=0.0, **kw) == greedy
    wide = beam_decode(dec, feats, beam_size=4, length_penalty=0.0, **kw)
    for b in range(5):
        f = feats[b: b + 1]
        if len(greedy[b]) < 7 and len(wide[b]) < 7:  # both finished with <eos>: comparable full log-probs
            assert _seq_logprob(dec, f, wide[b], 1, 2) >= _seq_logprob(dec, f, greedy[b], 1, 2) - 1e-4
    assert decode(dec, feats, method="greedy", **kw) == greedy
    with pytest.raises(ValueError, match="greedy"):
        decode(dec, feats, method="sample", **kw)


def test_effnet_encoder_grid_and_finetune_head():
    enc = build_encoder("effnet-lite0", image_size=64)
    assert enc.n_feat == 4 and enc.feat_dim == 1280
    assert not any(p.requires_grad for p in enc.parameters())
    x = enc.preprocess([Image.new("RGB", (80, 50), (200, 30, 30))])
    assert x.shape == (1, 3, 64, 64)
    assert enc(x).shape == (1, 4, 1280)
    ft = build_encoder("effnet-lite0", image_size=64, finetune=True)
    trainable = {n.split(".")[1] for n, p in ft.named_parameters() if p.requires_grad}
    assert trainable == {"_blocks", "_conv_head", "_bn1"}
    ft.train()
    assert not ft.training  # BatchNorm statistics stay frozen


@pytest.mark.slow
def test_resnet18_encoder_from_local_weights_only(tmp_path):
    from torchvision.models import resnet18

    with pytest.raises(ValueError, match="local weights"):
        build_encoder("resnet18")
    with pytest.raises(FileNotFoundError, match="resnet18"):
        build_encoder("resnet18", resnet_weights=tmp_path / "none.pth")
    path = tmp_path / "r18.pth"
    torch.save(resnet18(weights=None).state_dict(), path)
    enc = build_encoder("resnet18", image_size=64, resnet_weights=path)
    assert enc(enc.preprocess([Image.new("RGB", (64, 64))])).shape == (1, 4, 512)


def test_clip_encoder_uses_the_given_model():
    import open_clip

    with pytest.raises(ValueError, match="ClipBackend"):
        build_encoder("clip")
    model = open_clip.model.CLIP(embed_dim=16, vision_cfg=dict(image_size=32, layers=1, width=32, patch_size=16, head_width=16),
                                 text_cfg=dict(context_length=8, vocab_size=100, width=32, heads=2, layers=1))
    enc = build_encoder("clip", clip_model=model)
    assert enc.feat_dim == 16 and enc.n_feat == 1
    with pytest.raises(ValueError, match="fine-tuning"):
        build_encoder("clip", clip_model=model, finetune=True)
    with pytest.raises(ValueError, match="unknown encoder"):
        build_encoder("vgg")


def test_checkpoint_roundtrip_and_encoder_mismatch(tmp_path):
    cfg = _cfg("transformer")
    dec = CaptionDecoder(cfg)
    path = save_checkpoint(Checkpoint(config=cfg, vocab=["<pad>", "<bos>", "<eos>", "<unk>", *"abcdefgh"],
                                      decoder_state=dec.state_dict(), epoch=3, best_val_loss=0.5), tmp_path / "best.pt")
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temp file
    ck = load_checkpoint(path, expect_encoder="effnet-lite0")
    assert ck.epoch == 3 and ck.config == cfg and ck.best_val_loss == 0.5
    again = CaptionDecoder(ck.config)
    again.load_state_dict(ck.decoder_state)
    with pytest.raises(ValueError, match="trained on encoder 'effnet-lite0'"):
        load_checkpoint(path, expect_encoder="clip")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable captioner checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_bleu_uses_all_references_and_is_sacrebleu():
    refs = [["a red circle in the top left", "there is a red circle in the top left of the image"],
            ["a small blue square in the center"]]
    perfect = bleu_scores(["there is a red circle in the top left of the image", "a small blue square in the center"], refs)
    assert perfect["bleu4"] == pytest.approx(1.0)
    wrong = bleu_scores(["a green triangle at the bottom", "a large yellow circle on the right"], refs)
    assert wrong["bleu4"] < 0.2 and wrong["bleu1"] > wrong["bleu4"]
    import sacrebleu

    hyp = ["a red circle in the top right", "a small blue square in the middle"]
    ours = bleu_scores(hyp, refs)["bleu4"]
    theirs = sacrebleu.corpus_bleu(hyp, [[r[0] for r in refs], [refs[0][1], None]]).score / 100
    assert ours == pytest.approx(theirs)
    with pytest.raises(ValueError):
        bleu_scores(["x"], [])
