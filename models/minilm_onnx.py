"""all-MiniLM-L6-v2 on ONNX Runtime: the packaged weights exported once, run without torch.

The export is BERT plus the mean pooling and L2 normalisation of models/minilm.py in one graph
(inputs: token ids, attention mask, token types; output: the (B, 384) sentence embedding), so the
runner only tokenizes and calls it. Tokens come from the `tokenizers` library and the package's own
tokenizer.json (the same fast tokenizer transformers' AutoTokenizer wraps, without transformers
or torch). Exporting, checking and choosing the runtime: models/onnx_runtime.py.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from models.minilm import encode_by_length, max_seq_length, minilm_path
from models.onnx_runtime import OnnxFamily, RuntimeDecision, read_decision, session

DIM = 384
# Compared and timed on these: short captions, facts words, an empty text, non-ASCII, and one
# past the 256-token limit (truncated the same way).
SAMPLE = ["a cup of coffee", "a photo of a tabby cat on a sofa, with a cushion", "", "Région-based segmentation: ✓ 東京",
          "a photo with written text " * 80, "animal", "a group of people in a street at night", "sky", "two people",
          "a view of the sky and water", "black and white", "kitchen"]


class OnnxMiniLM:
    """Texts -> (N, 384) L2-normalised float32 embeddings, as models.minilm.MiniLMEncoder, on ONNX Runtime."""

    dim = DIM

    def __init__(self, path: Path, model_dir: Optional[str] = None, threads: Optional[int] = None):
        from tokenizers import Tokenizer

        model_dir = model_dir or minilm_path()
        self.max_seq_length = max_seq_length(model_dir)
        self.tokenizer = Tokenizer.from_file(str(Path(model_dir, "tokenizer.json")))
        # the file pads every text to 128 tokens and cuts at 128; the model is used at 256, padded per batch
        self.tokenizer.enable_truncation(max_length=self.max_seq_length)
        self.tokenizer.enable_padding(pad_id=self.tokenizer.token_to_id("[PAD]"), pad_token="[PAD]")
        self.session = session(path, threads)
        self.path = Path(path)

    def tokens(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        enc = self.tokenizer.encode_batch(list(texts))
        return {"input_ids": np.array([e.ids for e in enc], np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], np.int64),
                "token_type_ids": np.array([e.type_ids for e in enc], np.int64)}

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return encode_by_length(texts, batch_size, lambda batch: self.session.run(["embedding"], self.tokens(batch))[0], self.dim)


class MiniLMOnnx(OnnxFamily):
    name = "text"
    stem = "minilm-l6"
    unit = "text"
    revision = "r1"
    packages = ("torch", "transformers", "onnxruntime", "tokenizers")

    def weights(self) -> Path:
        return Path(minilm_path(), "model.safetensors")

    def load_torch(self):
        from models.minilm import MiniLMEncoder

        return MiniLMEncoder(device="cpu")

    def export(self, torch_model, path: Path) -> None:
        import torch

        from models.minilm import mean_pool

        class Pooled(torch.nn.Module):
            def __init__(self, bert):
                super().__init__()
                self.bert = bert

            def forward(self, input_ids, attention_mask, token_type_ids):
                tokens = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
                return mean_pool(tokens, attention_mask)

        enc = torch_model.tokenizer(["a photo of a cat", "a longer sentence to make padding"], padding=True, return_tensors="pt")
        inputs = (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
        names = ["input_ids", "attention_mask", "token_type_ids"]
        with torch.no_grad():
            torch.onnx.export(Pooled(torch_model.model).eval(), inputs, str(path), input_names=names, output_names=["embedding"],
                              dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "embedding": {0: "batch"}},
                              opset_version=17, dynamo=False)

    def open(self, path: Path) -> OnnxMiniLM:
        return OnnxMiniLM(path)

    def sample(self) -> list[str]:
        return SAMPLE

    def run_torch(self, torch_model, sample: list[str]):
        return [torch_model.encode(sample)]

    def run_onnx(self, runner: OnnxMiniLM, sample: list[str]):
        return [runner.encode(sample)]

    def timing_sample(self, sample: list[str]) -> tuple[list[str], int]:
        # what ingest embeds per batch: short captions and facts words, no 256-token text
        texts = [t for t in sample if len(t) < 100] * 3
        return texts, len(texts)


TEXT = MiniLMOnnx()


def read_text_decision(cache_dir: Path) -> Optional[RuntimeDecision]:
    """The text model's stored runtime decision (cheap: no model is loaded)."""
    return read_decision(TEXT, cache_dir)
