#!/usr/bin/env python3
"""Reference ceiling, NOT part of slant: how far does all-MiniLM-L6-v2 get as an attribution tagger
(SOURCE / CUE / CONTENT, flat BIO) on PolNeAR when it is fine-tuned end to end in PyTorch (GPU)?

slant's shipped tagger reads frozen token states; this script measures what fine-tuning the encoder
itself would add, on exactly slant's units: it trains on the token ids and tags that
`slant eval attribution --data DIR --dataset polnear --export-tokens EXPORT` writes (one row per
sentence of slant's splitter, the tags slant trains on, -1 where slant ignores a token), picks the
epoch on dev (token micro-F1 over non-O labels), and writes per-token probabilities for dev and test
in slant's row order. slant then decodes and scores them with its own pipeline (Viterbi, boundary
rules, sentence joining, exact/overlap F1):

    python3 eval/reference/polnear_finetune.py --export EXPORT --model DIR --out OUTDIR
    slant eval attribution --data DIR --dataset polnear --split test --probs OUTDIR/test.probs.jsonl

Variants: --freeze-below K keeps the embeddings and layers 0..K-1 frozen (0 = full fine-tuning;
4 = top 2 layers tuned). Nothing it trains is shipped.
"""

import argparse
import json
import lzma
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file
from transformers import BertConfig, BertModel

DEV = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def log(*a):
    print(*a, flush=True)


def read_jsonl(path):
    op = lzma.open if path.endswith(".xz") else open
    with op(path, "rt", encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def find(export, split):
    for p in (f"{export}/{split}.jsonl", f"{export}/{split}.jsonl.xz"):
        if os.path.exists(p):
            return p
    sys.exit(f"no {split}.jsonl[.xz] in {export}")


def encoder(model_dir):
    cfg = BertConfig.from_json_file(f"{model_dir}/config.json")
    m = BertModel(cfg, add_pooling_layer=False)
    sd = {k: v.float() if v.is_floating_point() else v for k, v in load_file(f"{model_dir}/model.safetensors").items()}
    missing, unexpected = m.load_state_dict(sd, strict=False)
    missing = [k for k in missing if "position_ids" not in k]
    unexpected = [k for k in unexpected if "position_ids" not in k and "pooler" not in k]
    if missing or unexpected:
        sys.exit(f"weights do not match BertModel: missing {missing}, unexpected {unexpected}")
    return m


class Tagger(nn.Module):
    def __init__(self, bert, n_labels):
        super().__init__()
        self.bert = bert
        self.drop = nn.Dropout(0.1)
        self.out = nn.Linear(bert.config.hidden_size, n_labels)

    def forward(self, ids, mask):
        h = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        return self.out(self.drop(h))


def batches(rows, order, bs, with_tags=True):
    for i in range(0, len(order), bs):
        idx = order[i : i + bs]
        L = max(len(rows[j]["input_ids"]) for j in idx)
        x = torch.zeros((len(idx), L), dtype=torch.long)
        m = torch.zeros((len(idx), L), dtype=torch.long)
        t = torch.full((len(idx), L), -100, dtype=torch.long)
        for r, j in enumerate(idx):
            n = len(rows[j]["input_ids"])
            x[r, :n] = torch.tensor(rows[j]["input_ids"])
            m[r, :n] = 1
            if with_tags:
                t[r, :n] = torch.tensor([g if g >= 0 else -100 for g in rows[j]["tags"]])
        yield idx, x.to(DEV), m.to(DEV), t.to(DEV)


@torch.no_grad()
def predict(model, rows):
    model.eval()
    order = sorted(range(len(rows)), key=lambda j: len(rows[j]["input_ids"]))
    out = [None] * len(rows)
    for idx, x, m, _ in batches(rows, order, 256, with_tags=False):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=DEV.type == "cuda"):
            z = model(x, m)
        p = torch.softmax(z.float(), -1).cpu().numpy()
        for r, j in enumerate(idx):
            out[j] = p[r, : len(rows[j]["input_ids"])]
    return out


def token_f1(rows, probs, outside):
    tp = fp = fn = 0
    for r, p in zip(rows, probs):
        g = np.array(r["tags"])
        k = g >= 0
        pr = p.argmax(-1)[k]
        g = g[k]
        tp += int(((pr == g) & (g != outside)).sum())
        fp += int(((pr != g) & (pr != outside)).sum())
        fn += int(((pr != g) & (g != outside)).sum())
    return 2 * tp / max(1, 2 * tp + fp + fn)


def write_probs(path, rows, probs):
    with open(path, "w") as f:
        for r, p in zip(rows, probs):
            f.write(json.dumps({"article": r["article"], "sentence": r["sentence"], "probs": np.round(p, 5).tolist()}) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", required=True, help="folder written by slant eval attribution --export-tokens")
    ap.add_argument("--model", required=True, help="encoder folder (config.json, model.safetensors)")
    ap.add_argument("--out", required=True, help="folder for {dev,test}.probs.jsonl and report.json")
    ap.add_argument("--freeze-below", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--lr-head", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--limit", type=int, default=0, help="use only N sentences per split (smoke test)")
    args = ap.parse_args()
    t0 = time.time()
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    labels = json.load(open(f"{args.export}/labels.json"))
    outside = labels.index("O")
    data = {s: read_jsonl(find(args.export, s)) for s in ("train", "dev", "test")}
    if args.limit:
        data = {s: r[: args.limit] for s, r in data.items()}
    log(f"device {DEV}; labels {labels}; sentences " + ", ".join(f"{s} {len(r)}" for s, r in data.items()))
    model = Tagger(encoder(args.model), len(labels)).to(DEV)
    for n, p in model.bert.named_parameters():
        frozen = args.freeze_below > 0 and (
            n.startswith("embeddings.") or any(n.startswith(f"encoder.layer.{l}.") for l in range(args.freeze_below))
        )
        p.requires_grad_(not frozen)
    enc = [p for p in model.bert.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": enc, "lr": args.lr}, {"params": model.out.parameters(), "lr": args.lr_head}], weight_decay=0.01)
    train = data["train"]
    steps = args.epochs * math.ceil(len(train) / args.batch)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    best = (-1.0, None, 0)
    history = []
    for ep in range(args.epochs):
        model.train()
        order = list(range(len(train)))
        rng.shuffle(order)
        for idx, x, m, t in batches(train, order, args.batch):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=DEV.type == "cuda"):
                z = model(x, m)
            loss = nn.functional.cross_entropy(z.float().reshape(-1, len(labels)), t.reshape(-1), ignore_index=-100)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        f = token_f1(data["dev"], predict(model, data["dev"]), outside)
        history.append(round(f, 4))
        log(f"epoch {ep + 1}: dev token F1 {f:.4f} ({time.time() - t0:.0f}s)")
        if f > best[0]:
            best = (f, {k: v.detach().clone() for k, v in model.state_dict().items()}, ep + 1)
    model.load_state_dict(best[1])
    os.makedirs(args.out, exist_ok=True)
    rep = {"args": vars(args), "labels": labels, "dev_token_f1_per_epoch": history, "epoch": best[2]}
    for s in ("dev", "test"):
        p = predict(model, data[s])
        rep[f"{s}_token_f1"] = token_f1(data[s], p, outside)
        write_probs(f"{args.out}/{s}.probs.jsonl", data[s], p)
    rep["seconds"] = round(time.time() - t0, 1)
    json.dump(rep, open(f"{args.out}/report.json", "w"), indent=1)
    log(json.dumps({k: v for k, v in rep.items() if k != "args"}))


if __name__ == "__main__":
    main()
