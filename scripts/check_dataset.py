#!/usr/bin/env python3
"""Load a slant Parquet dataset the way a researcher would, in one call each, and check it.

Usage: check_dataset.py SENTENCES.parquet ARTICLES.parquet

pandas, polars and duckdb each read both tables; their row counts must equal the manifest's
(stored in the files' key-value metadata under `slant.manifest`), the nested columns must be
there, and the per-source loaded shares computed in SQL must match those computed in pandas.
Prints one JSON object with what it found (tests compare it with slant's own numbers).
"""
import json
import sys

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq


def main(sent_path: str, art_path: str) -> None:
    meta = pq.read_metadata(sent_path).metadata
    manifest = json.loads(meta[b"slant.manifest"])
    sentences = pd.read_parquet(sent_path)
    articles = pd.read_parquet(art_path)
    ps = pl.read_parquet(sent_path)
    pa_ = pl.read_parquet(art_path)
    n_sent_duck = duckdb.sql(f"select count(*) from '{sent_path}'").fetchall()[0][0]
    n_art_duck = duckdb.sql(f"select count(*) from '{art_path}'").fetchall()[0][0]
    assert len(sentences) == ps.height == n_sent_duck == manifest["sentences"], (
        len(sentences), ps.height, n_sent_duck, manifest["sentences"])
    assert len(articles) == pa_.height == n_art_duck == manifest["articles"], (
        len(articles), pa_.height, n_art_duck, manifest["articles"])
    for col in ["article", "source", "index", "text", "loaded", "loaded_label", "loaded_spans",
                "attributions", "unattributed"]:
        assert col in sentences.columns, col
    # Nested columns are real lists of structs, not JSON strings.
    spans = duckdb.sql(
        f"select count(*) from (select unnest(loaded_spans) as s from '{sent_path}')").fetchall()[0][0]
    cues = duckdb.sql(
        f"select count(*) from (select unnest(attributions) as a from '{sent_path}')").fetchall()[0][0]
    by_sql = dict(duckdb.sql(
        f"select source, avg(loaded_label::int) from '{sent_path}' group by source").fetchall())
    by_pd = sentences.groupby("source")["loaded_label"].mean().to_dict()
    for k, v in by_pd.items():
        assert abs(by_sql[k] - v) < 1e-12, (k, by_sql[k], v)
    print(json.dumps({
        "sentences": len(sentences),
        "articles": len(articles),
        "spans": spans,
        "attributions": cues,
        "loaded_share": {k: round(v, 6) for k, v in sorted(by_pd.items())},
        "manifest_encoder_sha256": manifest["encoder_sha256"],
    }, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
