#!/usr/bin/env python3
"""Build a benchmark corpus (JSONL: id, source, text) from PolNeAR's article texts.

Usage: benches/make_corpus.py DATA_DIR OUT.jsonl [split ...]   (default split: test)

source = the publisher, i.e. the file name's prefix before the first '_' (breitbart, nyt, ...).
The texts are read by path from the data folder and never committed.
"""
import json
import os
import sys


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    data, out = sys.argv[1], sys.argv[2]
    splits = sys.argv[3:] or ["test"]
    n = 0
    with open(out, "w", encoding="utf-8") as f:
        for split in splits:
            folder = os.path.join(data, "polnear", "data", split, "text")
            for name in sorted(os.listdir(folder)):
                if not name.endswith(".txt"):
                    continue
                with open(os.path.join(folder, name), encoding="utf-8") as t:
                    text = t.read()
                stem = name[:-4]
                f.write(json.dumps({"id": f"{split}/{stem}", "source": stem.split("_", 1)[0], "text": text}) + "\n")
                n += 1
    print(f"wrote {n} articles to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
