"""Caption decoding: batched greedy search and beam search with a length penalty."""
from __future__ import annotations

from typing import Literal

DecodeMethod = Literal["greedy", "beam"]


def _length_penalty(length: int, alpha: float) -> float:
    # GNMT (Wu et al. 2016): ((5 + |Y|) / 6) ** alpha; alpha = 0 ranks by raw log-probability.
    return ((5.0 + length) / 6.0) ** alpha


def greedy_decode(decoder, feats, *, bos_id: int, eos_id: int, max_len: int, min_len: int = 1) -> list[list[int]]:
    """(B, N, F) features -> B token-id lists (without <bos>, up to and excluding <eos>)."""
    import torch

    decoder.eval()
    with torch.inference_mode():
        memory = decoder.memory(feats)
        B = feats.shape[0]
        tokens = torch.full((B, 1), bos_id, dtype=torch.long, device=feats.device)  # (B, 1)
        done = torch.zeros(B, dtype=torch.bool, device=feats.device)
        for t in range(max_len - 1):
            logits = decoder.logits_from_memory(memory, tokens)[:, -1]  # (B, V)
            if t < min_len:
                logits[:, eos_id] = float("-inf")  # an empty caption is never an answer
            nxt = logits.argmax(-1)  # (B,)
            nxt = torch.where(done, torch.full_like(nxt, eos_id), nxt)
            tokens = torch.cat([tokens, nxt[:, None]], dim=1)  # (B, T+1)
            done |= nxt == eos_id
            if bool(done.all()):
                break
    out = []
    for row in tokens[:, 1:].tolist():
        out.append(row[: row.index(eos_id)] if eos_id in row else row)
    return out


def beam_decode(decoder, feats, *, bos_id: int, eos_id: int, max_len: int, beam_size: int = 3,
                length_penalty: float = 0.6, min_len: int = 1) -> list[list[int]]:
    """Beam search per image; finished hypotheses are ranked by log-prob / length penalty."""
    import torch

    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    decoder.eval()
    results: list[list[int]] = []
    with torch.inference_mode():
        memory_all = decoder.memory(feats)
        for b in range(feats.shape[0]):
            mem = memory_all[b: b + 1]
            beams: list[tuple[list[int], float]] = [([bos_id], 0.0)]
            finished: list[tuple[list[int], float]] = []
            for t in range(max_len - 1):
                k = len(beams)
                tokens = torch.tensor([s for s, _ in beams], dtype=torch.long, device=feats.device)  # (k, T)
                logp = decoder.logits_from_memory(mem.expand(k, *mem.shape[1:]), tokens)[:, -1].float().log_softmax(-1)  # (k, V)
                if t < min_len:
                    logp[:, eos_id] = float("-inf")
                V = logp.shape[-1]
                total = torch.tensor([s for _, s in beams], device=logp.device)[:, None] + logp  # (k, V)
                scores, idx = total.flatten().topk(min(2 * beam_size, total.numel()))
                alive: list[tuple[list[int], float]] = []
                for score, i in zip(scores.tolist(), idx.tolist()):
                    seq = beams[i // V][0] + [i % V]
                    if i % V == eos_id:
                        finished.append((seq, score / _length_penalty(len(seq) - 1, length_penalty)))
                    else:
                        alive.append((seq, score))
                    if len(alive) == beam_size:
                        break
                beams = alive
                if not beams:
                    break
                if len(finished) >= beam_size:
                    # Log-probs only fall as a hypothesis grows; the penalty at max_len bounds what it can still reach.
                    best_alive = max(s for _, s in beams) / _length_penalty(max_len - 1, length_penalty)
                    if max(s for _, s in finished) >= best_alive:
                        break
            if not finished:
                finished = [(s, sc / _length_penalty(len(s) - 1, length_penalty)) for s, sc in beams]
            seq = max(finished, key=lambda x: x[1])[0][1:]
            results.append(seq[:-1] if seq and seq[-1] == eos_id else seq)
    return results


def decode(decoder, feats, *, bos_id: int, eos_id: int, max_len: int, method: DecodeMethod = "beam",
           beam_size: int = 3, length_penalty: float = 0.6) -> list[list[int]]:
    """Dispatch to greedy or beam search."""
    if method == "greedy":
        return greedy_decode(decoder, feats, bos_id=bos_id, eos_id=eos_id, max_len=max_len)
    if method == "beam":
        return beam_decode(decoder, feats, bos_id=bos_id, eos_id=eos_id, max_len=max_len,
                           beam_size=beam_size, length_penalty=length_penalty)
    raise ValueError(f"unknown decoding method {method!r}; choose 'greedy' or 'beam'")
