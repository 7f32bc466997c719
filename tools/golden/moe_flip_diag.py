#!/usr/bin/env python3
"""Whether an engine's golden error on a Qwen3-MoE checkpoint comes from expert choices at
routing near-ties, where any bf16 engine may legitimately pick the other expert.

The golden test skips the positions whose own routing margin is tiny, but a flipped choice at
position j also changes every later position that attends to j. This script runs the checkpoint
in float64 numpy (its logprobs match the golden's f32 transformers reference to ~1e-6; checked
first), then, per sequence, greedily flips the near-tie routing choices (k-th and (k+1)-th
expert swapped, margin < 0.01) that bring the f64 model closest to the engine's logprobs, and
reports how much engine error is left once those flips are accounted for.

  python3 tools/golden/moe_flip_diag.py qwen3_moe_fused ENGINE.json > flips.json

ENGINE.json: tools/device/golden_diag.py output (by_position[].cuda_whole), or any JSON with
"by_position": [{"tokens": [...], "cuda_whole": [next_logprob...]}]. Needs numpy only.
Qwen3-MoE layouts of transformers 5 (fused experts.gate_up_proj / down_proj) only.
"""
import json
import struct
import sys

import numpy as np

MARGIN_FLOOR = 0.01  # tests/model/golden_test.cc: router_margin_floor
MAX_FLIPS = 6


class Qwen3Moe:
    def __init__(self, model_dir):
        self.cfg = json.load(open(f"{model_dir}/config.json"))
        assert self.cfg["model_type"] == "qwen3_moe", "Qwen3-MoE checkpoints only"
        self.w = self._load(f"{model_dir}/model.safetensors")

    @staticmethod
    def _load(path):
        data = open(path, "rb").read()
        n = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8:8 + n])
        weights = {}
        for name, t in header.items():
            if name == "__metadata__":
                continue
            a, b = t["data_offsets"]
            raw = data[8 + n + a:8 + n + b]
            if t["dtype"] == "BF16":
                v = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
            elif t["dtype"] == "F16":
                v = np.frombuffer(raw, np.float16)
            else:
                v = np.frombuffer(raw, np.float32)
            weights[name] = v.astype(np.float64).reshape(t["shape"])
        return weights

    def _rms(self, x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.cfg["rms_norm_eps"]) * w

    def _rope(self, x, pos):  # x [T, heads, D], rotate-half convention, default rope only
        d = x.shape[-1]
        theta = (self.cfg.get("rope_parameters") or {}).get("rope_theta",
                                                            self.cfg.get("rope_theta", 10000.0))
        ang = pos[:, None] * (1.0 / theta ** (np.arange(0, d, 2) / d))[None, :]
        cos = np.concatenate([np.cos(ang)] * 2, -1)[:, None, :]
        sin = np.concatenate([np.sin(ang)] * 2, -1)[:, None, :]
        rot = np.concatenate([-x[..., d // 2:], x[..., :d // 2]], -1)
        return x * cos + rot * sin

    def forward(self, ids, force=None):
        """next_logprob[T-1] and, per (MoE layer, position), (margin, top-(k+1) experts).
        force {(layer, position): [experts]} overrides those routing choices."""
        c, w = self.cfg, self.w
        t_len = len(ids)
        hq, hkv = c["num_attention_heads"], c["num_key_value_heads"]
        d = c.get("head_dim") or c["hidden_size"] // hq
        k = c["num_experts_per_tok"]
        pos = np.arange(t_len, dtype=np.float64)
        mask = np.triu(np.full((t_len, t_len), -np.inf), 1)
        x = w["model.embed_tokens.weight"][ids]
        routes = {}
        for layer in range(c["num_hidden_layers"]):
            p = f"model.layers.{layer}."
            h = self._rms(x, w[p + "input_layernorm.weight"])
            q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(t_len, hq, d)
            kk = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(t_len, hkv, d)
            v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(t_len, hkv, d)
            q = self._rope(self._rms(q, w[p + "self_attn.q_norm.weight"]), pos)
            kk = self._rope(self._rms(kk, w[p + "self_attn.k_norm.weight"]), pos)
            out = np.zeros((t_len, hq, d))
            for head in range(hq):
                kv = head // (hq // hkv)
                s = q[:, head] @ kk[:, kv].T / np.sqrt(d) + mask
                s = np.exp(s - s.max(-1, keepdims=True))
                out[:, head] = (s / s.sum(-1, keepdims=True)) @ v[:, kv]
            x = x + out.reshape(t_len, hq * d) @ w[p + "self_attn.o_proj.weight"].T
            h = self._rms(x, w[p + "post_attention_layernorm.weight"])
            sparse = (layer not in c.get("mlp_only_layers", []) and
                      (layer + 1) % c.get("decoder_sparse_step", 1) == 0)
            if not sparse:
                g = h @ w[p + "mlp.gate_proj.weight"].T
                u = h @ w[p + "mlp.up_proj.weight"].T
                x = x + (g / (1 + np.exp(-g)) * u) @ w[p + "mlp.down_proj.weight"].T
                continue
            logits = h @ w[p + "mlp.gate.weight"].T
            probs = np.exp(logits - logits.max(-1, keepdims=True))
            probs /= probs.sum(-1, keepdims=True)
            order = np.argsort(-probs, -1)
            gate_up, down = w[p + "mlp.experts.gate_up_proj"], w[p + "mlp.experts.down_proj"]
            inter = down.shape[2]
            for t in range(t_len):
                top = probs[t, order[t]]
                routes[(layer, t)] = (float(top[k - 1] - top[k]), [int(e) for e in order[t, :k + 1]])
                chosen = (force or {}).get((layer, t), list(order[t, :k]))
                weights = probs[t, chosen]
                if c.get("norm_topk_prob", False):
                    weights = weights / weights.sum()
                for e, wt in zip(chosen, weights):
                    a = gate_up[e] @ h[t]
                    g, u = a[:inter], a[inter:]
                    x[t] = x[t] + wt * (down[e] @ (g / (1 + np.exp(-g)) * u))
        x = self._rms(x, w["model.norm.weight"])
        logits = x @ w["lm_head.weight"].T
        top = logits.max(-1)
        lse = np.log(np.exp(logits - top[:, None]).sum(-1)) + top
        return np.array([logits[i, ids[i + 1]] - lse[i] for i in range(t_len - 1)]), routes


def explain(model, seq, engine):
    ids = np.array(seq["tokens"])
    ref = np.array(seq["next_logprob"])
    keep = [i for i, m in enumerate(seq["router_margin"][:len(ref)]) if m >= MARGIN_FLOOR]
    base, routes = model.forward(ids)
    engine_diff = (engine - ref)[keep]
    row = {"tokens": len(ids), "scored": len(keep),
           "numpy_f64_vs_reference_max": float(np.abs(base - ref).max()),
           "engine_mean": float(np.abs(engine_diff).mean())}
    if "bf16_next_logprob" in seq:
        row["transformers_bf16_mean"] = float(
            np.abs(np.array(seq["bf16_next_logprob"]) - ref)[keep].mean())
    ties = [(lt, r) for lt, r in routes.items() if r[0] < MARGIN_FLOOR]
    force, best = {}, np.abs(engine_diff).sum()
    while len(force) < MAX_FLIPS:
        pick = None
        for (lt, (margin, top)) in ties:
            if lt in force:
                continue
            trial = dict(force)
            trial[lt] = top[:-2] + [top[-1]]  # the k-th expert swapped for the (k+1)-th
            nl, _ = model.forward(ids, trial)
            dist = np.abs((nl - ref)[keep] - engine_diff).sum()
            # A flip counts only if it explains at least 1% of what is left.
            if dist < 0.99 * best and (pick is None or dist < pick[0]):
                pick = (dist, lt, trial[lt], margin)
        if pick is None:
            break
        best, force[pick[1]] = pick[0], pick[2]
    flipped, _ = model.forward(ids, force)
    left = np.abs((flipped - ref)[keep] - engine_diff)
    row["flips"] = [{"layer": l, "position": t, "margin": routes[(l, t)][0]} for (l, t) in force]
    row["flips_only_mean"] = float(np.abs(flipped - ref)[keep].mean())
    row["engine_minus_flips_mean"] = float(left.mean())
    row["engine_minus_flips_max"] = float(left.max())
    return row


def main():
    name, engine_path = sys.argv[1], sys.argv[2]
    model = Qwen3Moe(f"tests/data/models/{name}")
    golden = json.load(open(f"tests/data/golden/{name}.json"))
    engine = {tuple(p["tokens"]): np.array(p["cuda_whole"])
              for p in json.load(open(engine_path))["by_position"]}
    rows = []
    for seq in golden["sequences"]:
        key = tuple(seq["tokens"])
        if not seq["next_logprob"] or key not in engine:
            continue
        if not any(m >= MARGIN_FLOOR for m in seq["router_margin"][:len(seq["next_logprob"])]):
            continue
        rows.append(explain(model, seq, engine[key]))
        r = rows[-1]
        print(f"  {r['tokens']:4d} tokens: engine mean {r['engine_mean']:.4f}, "
              f"{len(r['flips'])} flips explain it down to mean "
              f"{r['engine_minus_flips_mean']:.4f} (max {r['engine_minus_flips_max']:.4f})",
              file=sys.stderr)
    json.dump({"checkpoint": name, "margin_floor": MARGIN_FLOOR, "by_sequence": rows},
              sys.stdout, indent=1)


if __name__ == "__main__":
    main()
