"""Build core/facts/imagenet_words.json: each ImageNet-1k class -> plain words and WordNet parents.

Run once by a developer (needs Debian's `wordnet-base`, i.e. /usr/share/wordnet, and timm):
    .venv/bin/python scripts/build_imagenet_words.py
The app reads only the small JSON it writes, so run time needs no Debian package and no
download. WordNet 3.0 is (c) Princeton University, used under its licence (see NOTICE).

ImageNet class ids (wnids, "n02123045") are WordNet 3.0 noun offsets, listed in class order in
timm's `imagenet_synsets.txt`; we check that order against torchvision's category names.
Parents: the two nearest hypernyms (what a photo "is a kind of"), plus any further ancestor that
is an everyday category word people search with (ANCHORS below), so tabby -> cat -> animal and
four-poster -> bed -> furniture, without the taxonomists' "placental" or "instrumentality".
"""
from __future__ import annotations

import argparse
import json
from collections import deque
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "core" / "facts" / "imagenet_words.json"

# Everyday category words: an ancestor whose first lemma is one of these is kept however far up it is.
ANCHORS = {
    "animal", "bird", "fish", "dog", "cat", "insect", "reptile", "amphibian", "mammal", "snake", "lizard", "turtle",
    "monkey", "bear", "primate", "spider", "crab", "butterfly", "beetle", "shark", "fowl", "poultry",
    "plant", "flower", "tree", "fungus", "vegetable", "fruit", "food", "dish", "dessert", "bread", "beverage", "drink",
    "furniture", "bed", "seat", "chair", "table", "sofa", "cabinet", "lamp", "bedclothes", "mattress",
    "vehicle", "car", "motor vehicle", "truck", "bus", "boat", "ship", "vessel", "aircraft", "bicycle", "motorcycle",
    "train", "wheeled vehicle", "craft",
    "building", "house", "structure", "bridge", "tower", "church", "shop", "restaurant", "room", "fence", "wall",
    "tool", "box", "bag", "bottle", "cup", "glass", "pot", "kitchen utensil", "utensil", "cutlery",
    "clothing", "garment", "footwear", "shoe", "hat", "headdress", "jewelry", "accessory", "uniform",
    "musical instrument", "device", "machine", "computer", "electronic equipment", "appliance", "home appliance",
    "kitchen appliance", "toy", "ball", "sports equipment", "weapon", "gun", "screen", "display", "telephone",
    "camera", "clock", "timepiece", "plumbing fixture", "toilet", "sink", "bathtub", "shower", "mirror", "window",
    "door", "stairs", "book", "sign", "decoration", "covering", "fabric", "toiletry", "cosmetic", "equipment",
    "geological formation", "body of water", "shore", "mountain", "landscape", "rock", "instrument", "vessel",
}


def read_noun_data(wordnet_dir: Path) -> dict[str, tuple[list[str], list[str]]]:
    """offset -> (lemmas, hypernym offsets) from data.noun (WordNet's documented line format)."""
    out = {}
    with open(wordnet_dir / "data.noun", encoding="latin-1") as fh:
        for line in fh:
            if line.startswith("  "):
                continue  # licence header
            head = line.split("|", 1)[0].split()
            offset, n_words = head[0], int(head[3], 16)
            lemmas = [head[4 + 2 * i].replace("_", " ") for i in range(n_words)]
            k = 4 + 2 * n_words
            n_ptr = int(head[k])
            hypers = []
            for j in range(n_ptr):
                sym, target, pos = head[k + 1 + 4 * j: k + 4 + 4 * j]
                if sym in ("@", "@i") and pos == "n":
                    hypers.append(target)
            out[offset] = ([_plain(w) for w in lemmas], hypers)
    return out


def _plain(lemma: str) -> str:
    # WordNet marks adjective positions like "(p)"; drop them and keep a lower-case phrase.
    return lemma.split("(")[0].strip().lower()


def parents_of(offset: str, data: dict) -> list[str]:
    """Nearest two hypernym words, then anchor ancestors, nearest first, no repeats."""
    seen, out = {offset}, []
    queue = deque((h, 1) for h in data[offset][1])
    while queue:
        node, hops = queue.popleft()
        if node in seen:
            continue
        seen.add(node)
        word = data[node][0][0]
        if (hops <= 2 or word in ANCHORS) and word not in out:
            out.append(word)
        queue.extend((h, hops + 1) for h in data[node][1])
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    import timm
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    wnids = (Path(timm.__file__).parent / "data" / "_info" / "imagenet_synsets.txt").read_text().split()
    assert len(wnids) == 1000 and wnids == sorted(wnids), "timm's synset list is not the 1000 sorted ImageNet wnids"
    data = read_noun_data(args.wordnet)
    classes, mismatches = [], []
    for wnid, name in zip(wnids, _IMAGENET_CATEGORIES):
        lemmas, _ = data[wnid[1:]]
        # torchvision renamed a few duplicates ("crane" twice, "maillot"); its name must still share a word.
        if name.lower() not in lemmas and not set(name.lower().replace("-", " ").split()) & set(" ".join(lemmas).split()):
            mismatches.append((wnid, name, lemmas))
        words = [name.lower()] + [w for w in lemmas if w != name.lower()][:2]
        classes.append({"wnid": wnid, "name": name, "words": words, "parents": parents_of(wnid[1:], data)})
    if len(mismatches) > 5:
        raise SystemExit(f"class order looks wrong: {len(mismatches)} torchvision names share no word with WordNet: {mismatches[:5]}")
    used = {w for c in classes for w in c["parents"]}
    args.out.write_text(json.dumps({"source": "WordNet 3.0 (Princeton University) via ImageNet-1k wnids",
                                    "anchors": sorted(ANCHORS & used), "classes": classes}, ensure_ascii=False, indent=0) + "\n")
    print(json.dumps({"classes": len(classes), "name_mismatches": mismatches, "out": str(args.out)}))


if __name__ == "__main__":
    main()
