#!/usr/bin/env python3
"""Reference ceiling, NOT part of slant: how far does all-MiniLM-L6-v2 get on BABE SG2 when it is
fine-tuned end to end in PyTorch (on a GPU)?

slant's shipped loaded-language head reads a frozen encoder (plus the span head's evidence) and is
trained in Rust by `slant train loaded`. This script answers a different question: is the issue's
target (BABE SG2 5-fold CV macro-F1 >= 0.80) within reach of this 22.7M-parameter encoder at all,
and how much of the gap is frozen features vs. encoder capacity. Nothing it trains is shipped.

Protocol, mirroring `slant eval loaded --dataset babe --cv 5`: stratified 5-fold CV; in each fold a
seeded stratified 10% of the training folds picks the epoch and the decision threshold; metrics are
pooled over the out-of-fold predictions. The folds come from scikit-learn's StratifiedKFold (seeded),
not from slant's RNG, so every variant below is compared on the same folds within one run.

Variants (each over several seeds):
  frozen  mean-pooled frozen sentence vector (L2-normalised) + logistic regression (sklearn)
  top2    fine-tune the top 2 of the 6 layers + a linear head on the mean-pooled output
  full    fine-tune all 6 layers + head
  anno    full, but first fine-tuned one epoch on anno-lexical train (LLM labels), then per fold
  mix     full, each fold trained on the BABE training folds plus anno-lexical train
  lora, lora_top3
          anno, but only low-rank adapters (peft LoRA, rank --lora-rank, on every linear layer of all
          6 layers or of the top 3) and the head are trained: what a small shippable delta could give

Needs: torch, transformers (BertModel only; nothing is downloaded), tokenizers, safetensors,
scikit-learn, numpy. The encoder folder holds config.json, tokenizer.json and model.safetensors
(fp32 or fp16; fp16 weights are cast to fp32 before training).

    python3 eval/reference/babe_finetune.py --model DIR --babe final_labels_SG2.csv \
        --anno-train anno-lexical-train.jsonl[.xz] --out results.json
"""

import argparse
import copy
import csv
import io
import json
import lzma
import math
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from tokenizers import Tokenizer
from transformers import BertConfig, BertModel

DEV = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def log(*a):
    print(*a, flush=True)


def open_text(path):
    if path.endswith(".xz"):
        return io.TextIOWrapper(lzma.open(path), encoding="utf-8")
    return open(path, encoding="utf-8-sig")


def load_babe(path):
    texts, ys = [], []
    with open_text(path) as f:
        for row in csv.DictReader(f, delimiter=";"):
            lab = row["label_bias"]
            if lab not in ("Biased", "Non-biased"):
                continue
            texts.append(row["text"])
            ys.append(1 if lab == "Biased" else 0)
    return texts, np.array(ys)


def load_anno(path):
    texts, ys = [], []
    with open_text(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                texts.append(r["text"])
                ys.append(int(r["label"]))
    return texts, np.array(ys)


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


class Clf(nn.Module):
    def __init__(self, bert):
        super().__init__()
        self.bert = bert
        self.drop = nn.Dropout(0.1)
        self.out = nn.Linear(bert.config.hidden_size, 1)

    def forward(self, ids, mask):
        h = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1)
        return self.out(self.drop(pooled)).squeeze(-1)


def tokenize(tok, texts, max_len):
    tok.no_padding()
    tok.enable_truncation(max_len)
    return [e.ids for e in tok.encode_batch(texts)]


def batches(ids, order, bs):
    for i in range(0, len(order), bs):
        idx = order[i : i + bs]
        L = max(len(ids[j]) for j in idx)
        x = torch.zeros((len(idx), L), dtype=torch.long)
        m = torch.zeros((len(idx), L), dtype=torch.long)
        for r, j in enumerate(idx):
            x[r, : len(ids[j])] = torch.tensor(ids[j])
            m[r, : len(ids[j])] = 1
        yield idx, x.to(DEV), m.to(DEV)


@torch.no_grad()
def predict(model, ids):
    model.eval()
    order = sorted(range(len(ids)), key=lambda j: len(ids[j]))
    out = np.zeros(len(ids), dtype=np.float64)
    for idx, x, m in batches(ids, order, 256):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=DEV.type == "cuda"):
            z = model(x, m)
        out[idx] = torch.sigmoid(z.float()).cpu().numpy()
    return out


def macro_f1(y, p, t):
    return f1_score(y, (p >= t).astype(int), average="macro")


def best_threshold(y, p):
    grid = np.round(np.arange(0.05, 0.96, 0.01), 2)
    scores = [macro_f1(y, p, t) for t in grid]
    k = int(np.argmax(scores))
    return float(grid[k]), float(scores[k])


def ece(y, p, bins=10):
    e, n = 0.0, len(y)
    edges = np.linspace(0, 1, bins + 1)
    for i in range(bins):
        sel = (p >= edges[i]) & ((p < edges[i + 1]) if i < bins - 1 else (p <= 1))
        if sel.any():
            e += sel.sum() / n * abs(p[sel].mean() - y[sel].mean())
    return float(e)


def with_lora(model, rank, layers):
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.1, target_modules=["query", "key", "value", "dense"],
                     layers_to_transform=layers, layers_pattern="layer")
    model.bert = get_peft_model(model.bert, cfg)
    return model


def train(model, ids, y, dev_ids, dev_y, *, epochs, lr, lr_head, bs, seed, freeze_below):
    """Fine-tune; returns (best state, threshold, dev macro-F1, epoch). Layers below
    `freeze_below` (and the embeddings when freeze_below > 0) stay frozen; freeze_below < 0:
    leave requires_grad as it is (LoRA)."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    for n, p in model.bert.named_parameters():
        if freeze_below < 0:
            break
        if freeze_below > 0 and (n.startswith("embeddings.") or any(n.startswith(f"encoder.layer.{l}.") for l in range(freeze_below))):
            p.requires_grad_(False)
        else:
            p.requires_grad_(True)
    enc_params = [p for p in model.bert.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": enc_params, "lr": lr}, {"params": model.out.parameters(), "lr": lr_head}],
        weight_decay=0.01,
    )
    steps = epochs * math.ceil(len(ids) / bs)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    yt = torch.tensor(y, dtype=torch.float32, device=DEV)
    best = (-1.0, None, 0.5, 0)
    for ep in range(epochs):
        model.train()
        order = list(range(len(ids)))
        rng.shuffle(order)
        for idx, x, m in batches(ids, order, bs):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=DEV.type == "cuda"):
                z = model(x, m)
            loss = nn.functional.binary_cross_entropy_with_logits(z.float(), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        if dev_ids is not None:
            p = predict(model, dev_ids)
            t, f = best_threshold(dev_y, p)
            if f > best[0]:
                best = (f, copy.deepcopy(model.state_dict()), t, ep + 1)
    if dev_ids is None:
        return model.state_dict(), 0.5, float("nan"), epochs
    return best[1], best[2], best[0], best[3]


def cv_finetune(name, base_state, ids, y, folds, args, seed, freeze_below, extra=None, lora=None):
    oof = np.zeros(len(y))
    pred = np.zeros(len(y), dtype=int)
    per_fold = []
    for k, (tr, te) in enumerate(folds):
        tr_in, tr_dev = train_test_split(tr, test_size=0.1, stratify=y[tr], random_state=seed + k)
        tr_ids = [ids[j] for j in tr_in]
        tr_y = y[tr_in]
        if extra is not None:
            tr_ids = tr_ids + extra[0]
            tr_y = np.concatenate([tr_y, extra[1]])
        model = Clf(encoder(args.model))
        if lora is not None:
            model = with_lora(model, args.lora_rank, lora)
        model = model.to(DEV)
        if base_state is not None:
            model.load_state_dict(base_state)
        state, t, fdev, ep = train(
            model, tr_ids, tr_y, [ids[j] for j in tr_dev], y[tr_dev],
            epochs=args.epochs, lr=args.lora_lr if lora is not None else args.lr, lr_head=args.lr_head, bs=args.batch, seed=seed + k, freeze_below=freeze_below,
        )
        model.load_state_dict(state)
        p = predict(model, [ids[j] for j in te])
        oof[te] = p
        pred[te] = (p >= t).astype(int)
        f = f1_score(y[te], pred[te], average="macro")
        per_fold.append(round(float(f), 4))
        log(f"  {name} seed {seed} fold {k}: dev F1 {fdev:.4f} epoch {ep} threshold {t:.2f} test F1 {f:.4f}")
        del model
    return {
        "macro_f1": float(f1_score(y, pred, average="macro")),
        "per_fold": per_fold,
        "ece_raw": ece(y, oof),
    }


@torch.no_grad()
def frozen_features(model_dir, ids):
    model = Clf(encoder(model_dir)).to(DEV)
    model.eval()
    order = sorted(range(len(ids)), key=lambda j: len(ids[j]))
    out = np.zeros((len(ids), model.bert.config.hidden_size), dtype=np.float32)
    for idx, x, m in batches(ids, order, 256):
        h = model.bert(input_ids=x, attention_mask=m).last_hidden_state
        mm = m.unsqueeze(-1).float()
        v = (h * mm).sum(1) / mm.sum(1)
        v = v / v.norm(dim=-1, keepdim=True)
        out[idx] = v.cpu().numpy()
    return out


def cv_frozen(X, y, folds, seed):
    pred = np.zeros(len(y), dtype=int)
    oof = np.zeros(len(y))
    for k, (tr, te) in enumerate(folds):
        tr_in, tr_dev = train_test_split(tr, test_size=0.1, stratify=y[tr], random_state=seed + k)
        best = None
        for C in (0.3, 1, 3, 10, 30):
            lr = LogisticRegression(C=C, max_iter=2000).fit(X[tr_in], y[tr_in])
            t, f = best_threshold(y[tr_dev], lr.predict_proba(X[tr_dev])[:, 1])
            if best is None or f > best[0]:
                best = (f, C, t)
        lr = LogisticRegression(C=best[1], max_iter=2000).fit(X[tr_in], y[tr_in])
        p = lr.predict_proba(X[te])[:, 1]
        oof[te] = p
        pred[te] = (p >= best[2]).astype(int)
    return {"macro_f1": float(f1_score(y, pred, average="macro")), "ece_raw": ece(y, oof)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="encoder folder (config.json, tokenizer.json, model.safetensors)")
    ap.add_argument("--babe", required=True, help="BABE final_labels_SG2.csv")
    ap.add_argument("--anno-train", help="anno-lexical-train.jsonl[.xz] (for the anno and mix variants)")
    ap.add_argument("--variants", default="frozen,top2,full,anno,mix")
    ap.add_argument("--seeds", default="13,14,15")
    ap.add_argument("--mix-seeds", default="13", help="seeds of the (slower) mix variant")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--lr-head", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lora-rank", type=int, default=16)
    ap.add_argument("--lora-lr", type=float, default=5e-4)
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--limit", type=int, default=0, help="use only N BABE sentences (smoke test)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    t0 = time.time()
    log(f"device {DEV}, torch {torch.__version__}")
    tok = Tokenizer.from_file(f"{args.model}/tokenizer.json")
    texts, y = load_babe(args.babe)
    if args.limit:
        texts, y = texts[: args.limit], y[: args.limit]
    ids = tokenize(tok, texts, args.max_len)
    log(f"BABE SG2: {len(y)} sentences, {int(y.sum())} biased")
    anno = None
    variants = args.variants.split(",")
    if args.anno_train and ({"anno", "mix", "lora", "lora_top3"} & set(variants)):
        at, ay = load_anno(args.anno_train)
        if args.limit:
            at, ay = at[: args.limit * 4], ay[: args.limit * 4]
        anno = (tokenize(tok, at, args.max_len), ay)
        log(f"anno-lexical train: {len(ay)} sentences")
    results = {"args": vars(args), "n": int(len(y)), "variants": {}}

    def save():
        results["seconds"] = round(time.time() - t0, 1)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)

    seeds = [int(s) for s in args.seeds.split(",")]
    X = frozen_features(args.model, ids) if "frozen" in variants else None
    for v in variants:
        vs = [int(s) for s in args.mix_seeds.split(",")] if v == "mix" else seeds
        runs = []
        for seed in vs:
            folds = list(StratifiedKFold(args.folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
            t1 = time.time()
            if v == "frozen":
                r = cv_frozen(X, y, folds, seed)
            elif v == "top2":
                r = cv_finetune(v, None, ids, y, folds, args, seed, freeze_below=4)
            elif v == "full":
                r = cv_finetune(v, None, ids, y, folds, args, seed, freeze_below=0)
            elif v == "anno":
                if anno is None:
                    continue
                base = Clf(encoder(args.model)).to(DEV)
                state, _, _, _ = train(base, anno[0], anno[1], None, None, epochs=1, lr=args.lr, lr_head=args.lr_head, bs=args.batch, seed=seed, freeze_below=0)
                state = copy.deepcopy(state)
                del base
                r = cv_finetune(v, state, ids, y, folds, args, seed, freeze_below=0)
            elif v in ("lora", "lora_top3"):
                if anno is None:
                    continue
                layers = [0, 1, 2, 3, 4, 5] if v == "lora" else [3, 4, 5]
                base = with_lora(Clf(encoder(args.model)), args.lora_rank, layers).to(DEV)
                state, _, _, _ = train(base, anno[0], anno[1], None, None, epochs=1, lr=args.lora_lr, lr_head=args.lr_head, bs=args.batch, seed=seed, freeze_below=-1)
                state = copy.deepcopy(state)
                del base
                r = cv_finetune(v, state, ids, y, folds, args, seed, freeze_below=-1, lora=layers)
            elif v == "mix":
                if anno is None:
                    continue
                r = cv_finetune(v, None, ids, y, folds, args, seed, freeze_below=0, extra=anno)
            else:
                sys.exit(f"unknown variant {v}")
            r["seed"] = seed
            r["seconds"] = round(time.time() - t1, 1)
            runs.append(r)
            log(f"{v} seed {seed}: macro-F1 {r['macro_f1']:.4f} ECE {r['ece_raw']:.3f} ({r['seconds']}s)")
            results["variants"][v] = {"runs": runs, "mean_macro_f1": float(np.mean([x["macro_f1"] for x in runs]))}
            save()
    for v, r in results["variants"].items():
        log(f"{v:7s} mean macro-F1 {r['mean_macro_f1']:.4f} over {len(r['runs'])} seeds: {[round(x['macro_f1'], 4) for x in r['runs']]}")
    save()


if __name__ == "__main__":
    main()
