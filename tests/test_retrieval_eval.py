"""Evaluation harness on the generated shapes set, and the CLI commands end to end."""
import argparse
import csv
import json

import pytest

from core.retrieval.classical import ClassicalConfig
from core.retrieval.datasets import load_shapes
from core.retrieval.evaluate import EvalConfig, run_evaluation

FAST_CLASSICAL = ClassicalConfig(vocab_size=32, n_clusters=6, pca_dim=24, image_size=96, dense_step=12)


@pytest.mark.slow
def test_both_methods_clearly_beat_chance_on_shapes(tmp_path):
    import torch

    from core.retrieval.deep import EfficientNetEmbedder

    torch.set_num_threads(2)
    ds = load_shapes(108, seed=0)
    config = EvalConfig(methods=("classical", "deep", "random"), n_queries=18, depth=40, classical=FAST_CLASSICAL)
    report = run_evaluation(ds, config, backend=EfficientNetEmbedder())
    maps = {r.method: r.metrics["mAP"] for r in report.results}
    # 18 classes: a random ranking scores about 0.1; both methods must clear it by a wide margin.
    assert maps["random"] < 0.2
    assert maps["classical"] > maps["random"] + 0.08, maps
    assert maps["deep"] > maps["random"] + 0.08, maps
    deep = next(r for r in report.results if r.method == "deep")
    for key in ("P@1", "R@10", "accuracy", "balanced_accuracy", "build_s", "query_p50_ms", "query_p95_ms", "index_mb", "build_peak_rss_mb"):
        assert key in deep.metrics
    assert deep.metrics["query_p95_ms"] >= deep.metrics["query_p50_ms"] > 0
    assert deep.n_queries == 18 and len(deep.curve) == 40
    json_path, csv_path = report.write(tmp_path)
    assert json.loads(json_path.read_text())["results"][1]["method"] == "deep"
    assert [row["method"] for row in csv.DictReader(csv_path.open())] == ["classical", "deep", "random"]


def test_curves_stop_at_the_gallery_size():
    """Past the gallery size every method has returned everything: curves there would coincide and hide each other."""
    ds = load_shapes(36, seed=0)
    report = run_evaluation(ds, EvalConfig(methods=("classical", "random"), n_queries=6, depth=40, classical=FAST_CLASSICAL))
    for result in report.results:
        assert result.n_gallery == 30
        assert [pt["k"] for pt in result.curve] == list(range(1, 31)), result.method


def test_eval_config_errors():
    with pytest.raises(ValueError, match="choose from"):
        EvalConfig(methods=("bm25",)).validate()
    with pytest.raises(ValueError, match="depth"):
        EvalConfig(ks=(1, 100), depth=50).validate()
    with pytest.raises(ValueError, match="needs a backend"):
        run_evaluation(load_shapes(12), EvalConfig(methods=("deep",)))


def _parser():
    from core.retrieval.cli import register

    parser = argparse.ArgumentParser(prog="python -m core")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_eval_build_query(tmp_path, capsys):
    parser = _parser()
    out = tmp_path / "results"
    args = parser.parse_args(["retrieval", "eval", "--n", "36", "--queries", "6", "--methods", "classical,random", "--vocab-size", "16",
                              "--clusters", "3", "--pca-dim", "8", "--depth", "20", "--out", str(out)])
    assert args.func(args) == 0
    rows = list(csv.DictReader((out / "retrieval_eval.csv").open()))
    assert [r["method"] for r in rows] == ["classical", "random"] and float(rows[0]["mAP"]) > 0
    assert json.loads((out / "retrieval_eval.json").read_text())["dataset"] == "shapes-36"

    idx = tmp_path / "idx"
    args = parser.parse_args(["retrieval", "build", "--n", "24", "--vocab-size", "16", "--clusters", "3", "--pca-dim", "8", "--index", str(idx)])
    assert args.func(args) == 0
    query_img = tmp_path / "q.png"
    load_shapes(24).items[5].load().save(query_img)
    capsys.readouterr()
    args = parser.parse_args(["retrieval", "query", str(idx), str(query_img), "-k", "3", "--json"])
    assert args.func(args) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["id"] == "shapes/000005" and hits[0]["match"]

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    args = parser.parse_args(["retrieval", "query", str(idx), str(bad)])
    assert args.func(args) == 2
    args = parser.parse_args(["retrieval", "eval", "--dataset", "cifar10", "--path", str(tmp_path / "nope")])
    assert args.func(args) == 2
    assert "cifar-10-batches-py" in capsys.readouterr().err
