#!/usr/bin/env python3
"""Score a JSONL corpus with slant on Spark, then merge the shards into one dataset.

    python examples/spark/score_with_spark.py CORPUS.jsonl OUT_DIR [--partitions N] [--slant PATH]

CORPUS.jsonl holds one article per line ({"id", "source", "text"}; "title", "date", "url"
optional). The job:

1. reads the corpus with ``sc.textFile`` and deals its lines round-robin into N partitions
   (N is capped at the number of articles, so that no partition is empty);
2. pipes every partition through ``slant score - --format jsonl --quiet`` (``rdd.pipe``): one
   slant process per partition, loading the encoder once and writing a complete scored dataset
   stream (sentence, article and error records, then a manifest line). A partition whose output
   does not end with a manifest (slant failed) fails its task; records slant could not read are
   error records in the stream, as in any slant run;
3. saves those streams with ``saveAsTextFile(OUT_DIR/parts)``: one ``part-NNNNN`` file per
   partition, each one complete stream;
4. runs ``slant merge OUT_DIR/parts --out OUT_DIR/scores.parquet`` on the driver. Profiles and
   comparisons of the merged dataset equal those of one unsharded ``slant score`` run.

Run directly with ``python``, it starts Spark itself in local mode (``local[2]``) bound to the
loopback interface only: ``SPARK_LOCAL_IP=127.0.0.1`` and ``SPARK_LOCAL_HOSTNAME=localhost``
are set before the JVM starts, the driver binds to and advertises 127.0.0.1, and the web UI is
off, so nothing listens on or talks to another interface.

The same job on a real cluster
------------------------------
Launch it with ``spark-submit``; the script then leaves the master and the addresses to
spark-submit's settings and only builds the job:

* Ship slant to the executors, or install it on every node. slant looks for ``models/`` (the
  heads, and ``models/encoder/all-MiniLM-L6-v2``) above its binary and above the current
  directory, so pack the binary next to the checkout's ``models/`` folder::

      mkdir -p dist && cp target/release/slant dist/ && cp -rL models dist/
      tar -czf slant.tar.gz -C dist .

  and pass ``--archives slant.tar.gz#slant``; each executor unpacks it into ``./slant/``, so
  ``--slant ./slant/slant`` finds ``./slant/models/``. (With slant installed on every node,
  pass its path, and ``--model DIR`` when the encoder is not in a ``models/`` above it.) The
  binary must be built for the nodes' OS and CPU (build it on a machine like them).
* Put the corpus where every executor can read it (HDFS, S3, ...)::

      spark-submit --master yarn --deploy-mode client \\
          --archives slant.tar.gz#slant \\
          --conf spark.task.cpus=4 \\
          examples/spark/score_with_spark.py hdfs:///corpus/articles.jsonl hdfs:///scores \\
          --partitions 200 --slant ./slant/slant --threads 4 --no-merge

* Partitions: about the number of cores the job gets (divided by ``--threads``), or a small
  multiple of it for uneven article sizes. Every partition loads the encoder once (well under a
  second), so partitions of a few hundred articles or more cost little.
* ``--threads``: slant's worker threads per partition; match ``spark.task.cpus`` so that the
  tasks running on an executor do not oversubscribe its cores.
* The merge: ``slant merge`` reads local files. Copy ``OUT_DIR/parts`` down (``hdfs dfs -get``,
  ``aws s3 cp --recursive``) and run ``slant merge parts --out scores.parquet`` on one machine,
  or run it as its own job step; on a shared filesystem the driver can merge (leave out
  ``--no-merge``; the driver then needs a slant binary too: ``--merge-slant PATH``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import warnings

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def default_slant() -> str:
    built = os.path.join(REPO, "target", "release", "slant")
    if os.access(built, os.X_OK):
        return built
    return shutil.which("slant") or "slant"


def is_uri(path: str) -> bool:
    return "://" in path


def as_uri(path: str) -> str:
    """A local path as a file:// URI (Spark resolves bare paths against its default filesystem)."""
    return path if is_uri(path) else "file://" + os.path.abspath(path)


def ending_with_manifest(lines, totals):
    """Passes a partition's slant output through; fails unless it ends with a manifest record."""
    last = None
    for line in lines:
        last = line
        yield line
    record = None
    if last is not None:
        try:
            record = json.loads(last)
        except ValueError:
            pass
    if not isinstance(record, dict) or record.get("record") != "manifest":
        raise RuntimeError(
            "slant's output for this partition does not end with a manifest record "
            "(slant failed: see its message on the executor's stderr)"
        )
    for key, acc in totals.items():
        acc.add(int(record.get(key) or 0))


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Score a JSONL corpus with slant on Spark (rdd.pipe), then slant merge.",
    )
    ap.add_argument("corpus", help="JSONL corpus, one article per line (a path or a URI)")
    ap.add_argument("out_dir", help="output folder: parts/ (Spark's shards), scores.parquet")
    ap.add_argument("--partitions", type=int, default=2, help="number of partitions (default 2)")
    ap.add_argument(
        "--slant",
        default=None,
        help="slant binary as the executors see it (default: the checkout's "
        "target/release/slant, else slant on PATH)",
    )
    ap.add_argument(
        "--merge-slant",
        default=None,
        help="slant binary for the merge on the driver (default: --slant)",
    )
    ap.add_argument(
        "--model",
        default=None,
        help="encoder folder, passed to slant as SLANT_MODEL (default: SLANT_MODEL, else slant's "
        "own search for models/encoder/all-MiniLM-L6-v2)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="slant's threads per partition (default: local mode half the cores, as 2 tasks "
        "run at once; under spark-submit spark.task.cpus)",
    )
    ap.add_argument("--no-merge", action="store_true", help="only write OUT_DIR/parts")
    ap.add_argument(
        "--force", action="store_true", help="replace an existing OUT_DIR/parts (local paths)"
    )
    args = ap.parse_args(argv)
    if args.partitions < 1:
        ap.error("--partitions must be at least 1")
    if args.threads is not None and args.threads < 1:
        ap.error("--threads must be at least 1")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # spark-submit starts the JVM first and hands the driver its gateway port; then the master
    # and addresses are spark-submit's. Otherwise this script starts Spark in local mode.
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    if not submitted:
        # Must be in the environment before the JVM starts: Spark otherwise binds to the
        # machine's external interface.
        os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
        os.environ["SPARK_LOCAL_HOSTNAME"] = "localhost"
        # The Python workers run this interpreter (the one that has pyspark).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

    # pyspark warns about pandas 3 on import; this job does not use pandas.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    from pyspark import SparkConf, SparkContext

    slant = args.slant or default_slant()
    if not submitted:
        slant = os.path.abspath(slant) if os.sep in slant else (shutil.which(slant) or slant)
    merge_slant = args.merge_slant or slant
    if not submitted and not os.access(slant, os.X_OK):
        print(f"error: no slant binary at {slant} (cargo build --release, or --slant PATH)",
              file=sys.stderr)
        return 2

    if not is_uri(args.corpus) and not os.path.isfile(args.corpus):
        print(f"error: no corpus at {args.corpus}", file=sys.stderr)
        return 2
    parts = args.out_dir.rstrip("/") + "/parts"
    if not is_uri(parts):
        if os.path.exists(parts):
            if not args.force:
                print(
                    f"error: {parts} exists (Spark will not overwrite it); remove it or pass --force",
                    file=sys.stderr,
                )
                return 2
            shutil.rmtree(parts)
        os.makedirs(args.out_dir, exist_ok=True)

    conf = SparkConf().setAppName("slant-score")
    if not submitted:
        conf = (
            conf.setMaster("local[2]")
            .set("spark.driver.host", "127.0.0.1")
            .set("spark.driver.bindAddress", "127.0.0.1")
            .set("spark.ui.enabled", "false")
            .set("spark.ui.showConsoleProgress", "false")
            .set("spark.eventLog.enabled", "false")
            .set("spark.default.parallelism", "2")
        )
    t0 = time.monotonic()
    sc = SparkContext(conf=conf)
    sc.setLogLevel("ERROR")
    try:
        threads = args.threads
        if threads is None:
            if submitted:
                threads = int(sc.getConf().get("spark.task.cpus", "1"))
            else:
                threads = max(1, (os.cpu_count() or 2) // 2)

        # rdd.pipe runs the command with exactly this environment (not the worker's), so pass
        # what slant needs. slant finds models/ above its binary or the current directory;
        # SLANT_MODEL (--model) points it at an encoder folder elsewhere.
        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")}
        model = args.model or os.environ.get("SLANT_MODEL")
        if model:
            env["SLANT_MODEL"] = model if submitted else os.path.abspath(model)
        command = shlex.join(
            [slant, "--threads", str(threads), "score", "-", "--format", "jsonl", "--quiet"]
        )

        lines = sc.textFile(as_uri(args.corpus)).filter(lambda line: line.strip() != "")
        articles = lines.count()
        n = max(1, min(args.partitions, articles))
        # Round-robin by line number: every partition gets at least one article, and the parts
        # stay even. (An empty partition would still work: slant reads an empty stdin as a
        # corpus of no articles and writes just its manifest.)
        dealt = (
            lines.zipWithIndex()
            .map(lambda pair: (pair[1], pair[0]))
            .partitionBy(n, lambda index: index)
            .values()
        )
        print(
            f"spark: {articles} articles from {args.corpus} in {n} partitions, "
            f"each piped through `{command}`",
            flush=True,
        )
        # Not checkCode=True: slant exits 1 when some records could not be read, and its
        # stream then still holds everything else, the error records and the manifest. A
        # partition whose output does not end with a manifest (slant failed, exit 2) fails its
        # task instead, which Spark retries.
        totals = {k: sc.accumulator(0) for k in ("articles", "sentences", "record_errors")}
        scored = dealt.pipe(command, env=env, checkCode=False).mapPartitions(
            lambda out: ending_with_manifest(out, totals)
        )
        scored.saveAsTextFile(as_uri(parts))
    finally:
        sc.stop()
    t1 = time.monotonic()
    print(
        f"spark: wrote {parts}/part-* in {t1 - t0:.1f}s: "
        + ", ".join(f"{k} {a.value}" for k, a in totals.items()),
        flush=True,
    )

    if args.no_merge or is_uri(args.out_dir):
        print(f"merge: run `slant merge {parts} --out scores.parquet` where the parts are local")
        return 0
    out = os.path.join(args.out_dir, "scores.parquet")
    cmd = [merge_slant, "merge", parts, "--out", out]
    print(f"merge: {shlex.join(cmd)}", flush=True)
    done = subprocess.run(cmd, env={**os.environ, **env})
    if done.returncode != 0:
        print(f"error: slant merge exited {done.returncode}", file=sys.stderr)
        return done.returncode
    print(f"done: {out} in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
