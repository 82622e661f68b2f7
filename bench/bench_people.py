"""Which people detector is right more often on the evaluation photos: mediapipe or OpenCV?

    python bench/bench_people.py

Runs each available detector of models/faces.py on tests/data/eval/photos (mediapipe's faces
alone and with BlazePose's person detector, models/pose.py) and compares "has people" and the
count (0, 1, 2, 3 or more) with the hand labels (photos.csv `people`). Prints one JSON object: accuracy, false
positives, misses and seconds per photo per detector, measured in the same run. OpenCV 5 (our pin)
has no Haar/HOG detectors; to compare, put an OpenCV 4 on PYTHONPATH
(`pip install --target /tmp/cv4 --no-deps opencv-python-headless==4.14.0.94`).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> dict:
    from PIL import Image

    from bench.evalset import load_eval_photos
    from models.faces import MediapipePeople, OpenCVPeople

    photos = load_eval_photos()
    images = [Image.open(p.path).convert("RGB") for p in photos]
    out: dict = {"bench": "people", "photos": len(photos), "with_people": sum(p.people > 0 for p in photos)}
    variants = (("mediapipe", MediapipePeople), ("mediapipe_with_pose", lambda: MediapipePeople(bodies=True)),
                ("opencv", OpenCVPeople))
    for name, factory in variants:
        try:
            det = factory()
        except (ImportError, AttributeError) as exc:
            out[name] = {"unavailable": f"{type(exc).__name__}: {exc}"}
            continue
        right, counted, seconds, false_pos, missed = 0, 0, 0.0, [], []
        for p, img in zip(photos, images):
            t0 = time.perf_counter()
            n = det.detect(img).people
            seconds += time.perf_counter() - t0
            found = n > 0
            counted += min(n, 3) == min(p.people, 3)  # 0, 1, 2, "3 or more", as bench_understand buckets them
            if found == (p.people > 0):
                right += 1
            else:
                (false_pos if found else missed).append(p.filename)
        out[name] = {"accuracy": round(right / len(photos), 3), "count_accuracy": round(counted / len(photos), 3),
                     "false_positives": false_pos, "missed": missed,
                     "seconds_per_photo": round(seconds / len(photos), 3)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
