#!/usr/bin/env python3
"""Where a golden checkpoint's CUDA error comes from: scores every golden sequence with
`tokenfab score --device cuda` under several prefill chunk sizes (--max-batch-tokens) and
prints, per sequence, the mean |next_logprob - transformers f32| over the tokens the golden
test scores (router margin >= the floor), next to transformers' own bf16 error.

  python3 tools/device/golden_diag.py BUILD/tokenfab qwen3_moe_fused [chunk ...] > out.json

A chunk of 8 sends every prefill through the split-K decode attention kernel (the tensor-core
prefill kernel takes chunks of 16 queries or more), so a prefill-kernel error would show as a
difference between chunk sizes; a chunk of 1 or 2 sends MoE layers through the small-batch
kernels (f32 activations) instead of the grouped expert path. The JSON also keeps every CUDA value (by_position).
"""
import json
import subprocess
import sys

MARGIN_FLOOR = 0.01  # tests/model/golden_test.cc: router_margin_floor


def score(binary, model, tokens, chunk):
    cmd = [binary, "score", "--device", "cuda", "--model", model,
           "--tokens", ",".join(map(str, tokens))]
    if chunk:
        cmd += ["--max-batch-tokens", str(chunk)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out)["next_logprob"]


def main():
    binary, name = sys.argv[1], sys.argv[2]
    chunks = [int(c) for c in sys.argv[3:]] or [0, 8]
    golden = json.load(open(f"tests/data/golden/{name}.json"))
    model = f"tests/data/models/{name}"
    rows, positions = [], []
    for seq in golden["sequences"]:
        ref = seq["next_logprob"]
        if not ref:
            continue
        margins = seq.get("router_margin", [1.0] * len(seq["tokens"]))
        keep = [i for i in range(len(ref)) if margins[i] >= MARGIN_FLOOR]
        if not keep:
            continue
        row = {"tokens": len(seq["tokens"]), "scored": len(keep)}
        per_position = {}
        if "bf16_next_logprob" in seq:
            bf16 = seq["bf16_next_logprob"]
            row["transformers_bf16_mean"] = sum(abs(bf16[i] - ref[i]) for i in keep) / len(keep)
        for chunk in chunks:
            got = score(binary, model, seq["tokens"], chunk)
            diffs = [abs(got[i] - ref[i]) for i in keep]
            key = f"cuda_chunk{chunk}" if chunk else "cuda_whole"
            row[key + "_mean"] = sum(diffs) / len(diffs)
            row[key + "_max"] = max(diffs)
            per_position[key] = got
        rows.append(row)
        positions.append({"tokens": seq["tokens"], "scored": keep, **per_position})
    # by_position: every CUDA next_logprob, to compare position by position with the golden's
    # f32 and bf16 columns (is the error spread evenly, or a few spikes from flipped routes?).
    json.dump({"checkpoint": name, "by_sequence": rows, "by_position": positions}, sys.stdout)
    print(file=sys.stderr)
    for row in rows:
        print("  " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in row.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
