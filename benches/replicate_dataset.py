#!/usr/bin/env python3
"""Replicate a scored JSONL dataset K times with new article ids (for memory benchmarks).

Usage: benches/replicate_dataset.py IN.jsonl OUT.jsonl K

Copy k of article `id` becomes `id~k` (in its sentence lines and its article line); the manifest
line's counts are multiplied by K. Streams line by line.
"""
import json
import sys


def main(src: str, dst: str, k: int) -> None:
    manifest = None
    with open(dst, "w") as out:
        for copy in range(k):
            with open(src) as f:
                for line in f:
                    r = json.loads(line)
                    kind = r["record"]
                    if kind == "manifest":
                        manifest = r
                        continue
                    if kind == "sentence":
                        r["article"] = f"{r['article']}~{copy}"
                    elif kind == "article":
                        r["id"] = f"{r['id']}~{copy}"
                    elif kind == "error" and r.get("id"):
                        r["id"] = f"{r['id']}~{copy}"
                    out.write(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n")
        for key in ["articles", "sentences", "truncated_sentences", "record_errors"]:
            manifest[key] *= k
        out.write(json.dumps(manifest, separators=(",", ":"), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
