"""Loaders on tiny fixtures written in tmp_path in the exact on-disk formats."""
import pickle

import numpy as np
import pytest
from PIL import Image

from core.retrieval.datasets import DatasetError, load_class_folders, load_cifar10, load_dataset, load_shapes, load_voc2007, relevant


def write_cifar(root, n_per_batch=6):
    root = root / "cifar-10-batches-py"
    root.mkdir(parents=True)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(root / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": names, b"num_cases_per_batch": n_per_batch}, fh)
    rng = np.random.default_rng(0)
    for fname in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        labels = [int(x) for x in rng.integers(0, 10, size=n_per_batch)]
        with open(root / fname, "wb") as fh:
            pickle.dump({b"batch_label": fname.encode(), b"data": data, b"labels": labels, b"filenames": [b"x.png"] * n_per_batch}, fh)
    return root, data, labels


def test_cifar10_python_format(tmp_path):
    root, data, labels = write_cifar(tmp_path)
    ds = load_cifar10(tmp_path)  # parent folder works too
    assert len(ds) == 6 and ds.name == "cifar10-test"
    img = ds.items[2].load()
    assert img.size == (32, 32) and img.mode == "RGB"
    # Row-major planes: R plane first, so pixel (0,0) red = data[2][0], green = data[2][1024].
    assert img.getpixel((0, 0)) == (data[2][0], data[2][1024], data[2][2048])
    assert ds.items[2].labels == ([b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"][labels[2]].decode(),)
    train = load_cifar10(root, split="train", limit=8)
    assert len(train) == 8
    with pytest.raises(DatasetError, match="cifar-10-batches-py"):
        load_cifar10(tmp_path / "nowhere")


def write_voc(root):
    voc = root / "VOCdevkit" / "VOC2007"
    for d in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (voc / d).mkdir(parents=True)
    objs = {"000001": [("dog", 0), ("person", 0)], "000002": [("cat", 0)], "000003": [("car", 1)], "000004": [("dog", 0)]}
    for i, (stem, o) in enumerate(objs.items()):
        Image.new("RGB", (40, 30), (i * 40, 10, 10)).save(voc / "JPEGImages" / f"{stem}.jpg")
        body = "".join(f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>" for n, d in o)
        (voc / "Annotations" / f"{stem}.xml").write_text(f"<annotation><filename>{stem}.jpg</filename>{body}</annotation>")
    (voc / "ImageSets" / "Main" / "test.txt").write_text("000001\n000002\n000003\n000004\n000099\n")
    return voc


def test_voc2007_layout(tmp_path):
    write_voc(tmp_path)
    ds = load_voc2007(tmp_path)
    # 000003 has only a difficult object, 000099 has no files: both left out.
    assert [it.id for it in ds.items] == ["voc2007/000001", "voc2007/000002", "voc2007/000004"]
    assert ds.items[0].labels == ("dog", "person")
    assert relevant(ds.items[0].labels, ds.items[2].labels) and not relevant(ds.items[0].labels, ds.items[1].labels)
    assert ds.items[1].load().size == (40, 30)
    assert len(load_voc2007(tmp_path, include_difficult=True)) == 4
    with pytest.raises(DatasetError, match="split"):
        load_voc2007(tmp_path, split="val")


def test_voc_refuses_entity_declarations(tmp_path):
    voc = write_voc(tmp_path)
    (voc / "Annotations" / "000001.xml").write_text('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "dog">]><annotation><object><name>&x;</name></object></annotation>')
    with pytest.raises(DatasetError, match="DTD"):
        load_voc2007(voc)


def test_class_folders_and_bad_files(tmp_path):
    for cls, colour in (("red", (200, 0, 0)), ("blue", (0, 0, 200))):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("RGB", (16, 16), colour).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "red" / "broken.jpg").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored")
    ds = load_class_folders(tmp_path)
    assert ds.classes == ["blue", "red"] and len(ds) == 7
    broken = next(it for it in ds.items if it.id.endswith("broken.jpg"))
    from core.images import ImageError

    with pytest.raises(ImageError):
        broken.load()
    with pytest.raises(DatasetError, match="one sub-folder per class"):
        load_class_folders(tmp_path / "red")
    with pytest.raises(DatasetError, match="not a folder"):
        load_dataset("folders", tmp_path / "missing")
    with pytest.raises(DatasetError, match="choose one of"):
        load_dataset("imagenet", tmp_path)


def test_shapes_split_keeps_every_class_answerable():
    ds = load_shapes(72)
    queries, gallery = ds.split(18)
    assert len(queries) == 18 and len(gallery) == 54
    assert {q.id for q in queries}.isdisjoint({g.id for g in gallery})
    gallery_labels = {g.labels[0] for g in gallery}
    assert all(q.labels[0] in gallery_labels for q in queries)
    assert all(it.bbox is not None for it in ds.items)
