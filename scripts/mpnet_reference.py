#!/usr/bin/env python3
"""Reference sentence vectors of all-mpnet-base-v2 from the upstream implementation.

Runs Hugging Face transformers' own `MPNetModel` (PyTorch) on the fetched encoder folder
(`models/fetch --accurate`), offline, with sentence-transformers' pooling for this model (mean
over the tokens, then L2 normalisation), and writes the vectors to
`tests/fixtures/mpnet_reference.json`. slant's fast engine is tested against them
(`tests/mpnet.rs`), so the fixture is made once and committed; this script is how it was made:

    python3 -m venv .cache/pyref && .cache/pyref/bin/pip install torch transformers tokenizers
    .cache/pyref/bin/python scripts/mpnet_reference.py [MODEL_DIR] [OUT]

Nothing here reaches a model hub (HF_HUB_OFFLINE is set, the model is read from MODEL_DIR).
"""
import json
import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import MPNetModel  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
model_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "models", "encoder", "all-mpnet-base-v2")
out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "tests", "fixtures", "mpnet_reference.json")

# Short and long, quotes, numbers, non-ASCII, one over 128 tokens (past the bias's max distance).
SENTENCES = [
    "The senator said the bill would pass.",
    "Critics slammed the reckless, disastrous plan as a betrayal of voters.",
    '"We will not back down," the mayor told reporters on Tuesday.',
    "Officials believe the talks failed.",
    "Der Präsident sprach über die Wirtschaft — and then switched to English.",
    "Unemployment fell to 3.9% in April, the lowest since 2000.",
    "Hi.",
    " ".join(
        ["The committee reviewed the budget, the schedule, the staffing plan and the audit report"]
        * 8
    )
    + ".",
]

tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
tok.no_padding()
tok.enable_truncation(max_length=384)
model = MPNetModel.from_pretrained(model_dir, local_files_only=True).eval()
rows = []
with torch.no_grad():
    for s in SENTENCES:
        ids = tok.encode(s).ids
        x = torch.tensor([ids])
        states = model(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state[0]
        v = states.mean(dim=0)
        v = v / v.norm()
        rows.append({"text": s, "tokens": len(ids), "vector": [round(float(f), 7) for f in v]})
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as f:
    json.dump(
        {
            "model": "all-mpnet-base-v2 (model.safetensors sha256 78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658)",
            "made_with": f"transformers {transformers.__version__} MPNetModel, torch {torch.__version__}, "
            "mean pooling over all tokens, L2-normalised (sentence-transformers' modules for this model)",
            "command": ".cache/pyref/bin/python scripts/mpnet_reference.py",
            "sentences": rows,
        },
        f,
        indent=1,
    )
    f.write("\n")
print(f"wrote {out}: {len(rows)} sentences, token counts {[r['tokens'] for r in rows]}")
