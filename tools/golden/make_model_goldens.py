#!/usr/bin/env python3
"""Build small random-weight checkpoints of every supported architecture with Hugging Face
transformers, and record what transformers computes on them (the goldens tokenfab's tests check).

Run on the GPU machine (transformers is installed there; nothing here needs a GPU):
    python3 tools/golden/make_model_goldens.py --out tests/data
writes, per checkpoint NAME:
    OUT/models/NAME/{config.json, *.safetensors[, model.safetensors.index.json]}
    OUT/golden/NAME.json
Every checkpoint is saved in bf16 (one in f16, one in f32), reloaded from disk in float32 with
eager attention, and that reload is the reference: fp32 math on the stored weights. Each golden
also records what transformers computes in bf16 (bf16_next_logprob), the floor of what any
bf16 engine can reach, and for MoE models each token's smallest routing margin (gap between the
k-th and (k+1)-th expert probability): where it is tiny, bf16 may legitimately pick another
expert. Since such a flip at one position also moves every later one, MoE goldens record per
position how far any single near-tie flip moves next_logprob (flip_sensitivity) and where one
changes the argmax (flip_argmax_changes), computed by re-running transformers with that choice
flipped; the CUDA golden test leaves those positions out. `--update-flips NAME...` adds them to
existing goldens.

Awkward on purpose: GQA ratios 1, 2 and 4; head_dim != hidden / heads; odd vocabularies;
llama3 and linear RoPE scaling; a sliding window shorter than the sequences; tied and untied
embeddings; attention and MLP biases; a sharded checkpoint; both MoE weight layouts (the fused
in-memory layout of transformers 5, written with save_file(model.state_dict()), and the
per-expert layout of hub checkpoints, which transformers 5.17's save_pretrained writes; each
verified by reloading with transformers); configs in the transformers-5 format
and rewritten in the classic hub format (verified the same way).
"""
import argparse
import json
import os
import re
import shutil
import sys
import traceback

import torch
import transformers
from safetensors.torch import load_file, save_file

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

SEQ_LENS = [1, 2, 7, 17, 64, 200]
GREEDY_PROMPT_LENS = [5, 120]
GREEDY_STEPS = 24


def spec(name, arch, **kw):
    return {"name": name, "arch": arch, **kw}


# Each entry: config kwargs plus how to save. Sizes keep every checkpoint under 2 MB.
SPECS = [
    spec("llama_gqa4_llama3rope_classic", "llama", config_format="classic",
         cfg=dict(vocab_size=1003, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                  max_position_embeddings=512, rms_norm_eps=1e-5,
                  rope={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0,
                        "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                        "original_max_position_embeddings": 32},
                  tie_word_embeddings=False)),
    spec("llama_bias_tied_f16", "llama", dtype="float16",
         cfg=dict(vocab_size=997, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                  num_attention_heads=3, num_key_value_heads=3, head_dim=16,
                  max_position_embeddings=512, attention_bias=True, mlp_bias=True,
                  rope={"rope_type": "default", "rope_theta": 500000.0},
                  tie_word_embeddings=True)),
    spec("llama_headdim24_linear_sharded", "llama", shard="60KB",
         cfg=dict(vocab_size=1024, hidden_size=64, intermediate_size=112, num_hidden_layers=3,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=24,
                  max_position_embeddings=512,
                  rope={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0},
                  tie_word_embeddings=False)),
    spec("mistral_sliding40_f32", "mistral", dtype="float32",
         cfg=dict(vocab_size=1009, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                  max_position_embeddings=512, sliding_window=40,
                  rope={"rope_type": "default", "rope_theta": 10000.0},
                  tie_word_embeddings=False)),
    spec("qwen2_qkvbias_tied", "qwen2",
         cfg=dict(vocab_size=1021, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=512,
                  rope={"rope_type": "default", "rope_theta": 1000000.0},
                  tie_word_embeddings=True)),
    spec("qwen3_qknorm_headdim24_classic", "qwen3", config_format="classic",
         cfg=dict(vocab_size=1013, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
                  num_attention_heads=4, num_key_value_heads=1, head_dim=24,
                  max_position_embeddings=512,
                  rope={"rope_type": "default", "rope_theta": 1000000.0},
                  tie_word_embeddings=False)),
    spec("qwen3_moe_fused", "qwen3_moe", moe_layout="fused",
         cfg=dict(vocab_size=1019, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                  max_position_embeddings=512, num_experts=8, num_experts_per_tok=2,
                  moe_intermediate_size=32, norm_topk_prob=True, decoder_sparse_step=1,
                  mlp_only_layers=[1],
                  rope={"rope_type": "default", "rope_theta": 1000000.0},
                  tie_word_embeddings=False)),
    spec("qwen3_moe_per_expert", "qwen3_moe", moe_layout="per_expert",
         cfg=dict(vocab_size=1031, hidden_size=64, intermediate_size=80, num_hidden_layers=4,
                  num_attention_heads=4, num_key_value_heads=4, head_dim=16,
                  max_position_embeddings=512, num_experts=6, num_experts_per_tok=3,
                  moe_intermediate_size=24, norm_topk_prob=False, decoder_sparse_step=2,
                  mlp_only_layers=[],
                  rope={"rope_type": "default", "rope_theta": 10000.0},
                  tie_word_embeddings=True)),
    spec("mixtral_fused", "mixtral", moe_layout="fused",
         cfg=dict(vocab_size=1007, hidden_size=64, intermediate_size=48, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                  max_position_embeddings=512, num_local_experts=4, num_experts_per_tok=2,
                  rope={"rope_type": "default", "rope_theta": 1000000.0},
                  tie_word_embeddings=False)),
    spec("mixtral_per_expert_sharded", "mixtral", moe_layout="per_expert", shard="80KB",
         cfg=dict(vocab_size=1000, hidden_size=48, intermediate_size=40, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=12,
                  max_position_embeddings=512, num_local_experts=5, num_experts_per_tok=2,
                  rope={"rope_type": "default", "rope_theta": 1000000.0},
                  tie_word_embeddings=False)),
    # Llama-3.1-8B's attention shape (head_dim 128, 4 query heads per KV head), so the goldens
    # reach the CUDA backend's tensor-core decode and prefill attention kernels too.
    spec("llama_headdim128_gqa4", "llama",
         cfg=dict(vocab_size=512, hidden_size=128, intermediate_size=192, num_hidden_layers=2,
                  num_attention_heads=8, num_key_value_heads=2, head_dim=128,
                  max_position_embeddings=512,
                  rope={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                        "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                        "original_max_position_embeddings": 64},
                  tie_word_embeddings=True)),
]

CLASSES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM"),
    "mistral": ("MistralConfig", "MistralForCausalLM"),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM"),
    "qwen3_moe": ("Qwen3MoeConfig", "Qwen3MoeForCausalLM"),
    "mixtral": ("MixtralConfig", "MixtralForCausalLM"),
}


def log(*args):
    print(*args, flush=True)


def make_config(s):
    cfg_cls = getattr(transformers, CLASSES[s["arch"]][0])
    kw = dict(s["cfg"])
    rope = kw.pop("rope")
    try:  # transformers 5
        config = cfg_cls(**kw, rope_parameters=dict(rope))
    except TypeError:  # older: rope_theta + rope_scaling
        scaling = None if rope["rope_type"] == "default" else dict(rope)
        config = cfg_cls(**kw, rope_theta=rope["rope_theta"], rope_scaling=scaling)
    config.bos_token_id = 1
    config.eos_token_id = 2
    config.pad_token_id = None
    return config


# Random weights have std WEIGHT_SCALE / sqrt(fan_in). 0.5 keeps logits peaked enough for
# greedy comparisons while transformers' own bf16 inference stays within ~0.01 of its f32
# (measured: at 1.2 transformers-bf16 itself was 0.015-0.05 off on average, so no bf16 engine
# could meet a 0.01 tolerance; each golden records that transformers-bf16 error).
WEIGHT_SCALE = 0.5


@torch.no_grad()
def randomize(model, seed):
    """Weights with enough spread that logits are peaked and every parameter matters."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if name.endswith("norm.weight") or "layernorm" in name:
            p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
        elif name.endswith("bias"):
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
        else:
            fan_in = p.shape[-1]
            p.copy_(torch.randn(p.shape, generator=g) * (WEIGHT_SCALE / fan_in ** 0.5))


def load_reference(path):
    cls = getattr(transformers, CLASSES_BY_DIR[path])
    model = cls.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    return model


CLASSES_BY_DIR = {}


def to_classic_config(path):
    """Rewrites config.json in the classic hub spelling: rope_theta / rope_scaling, torch_dtype."""
    cfg_path = os.path.join(path, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    rope = cfg.pop("rope_parameters", None)
    if rope is not None:
        rope = dict(rope)
        cfg["rope_theta"] = rope.pop("rope_theta", cfg.get("rope_theta", 10000.0))
        cfg["rope_scaling"] = None if rope.get("rope_type", "default") == "default" else rope
    if "dtype" in cfg:
        cfg["torch_dtype"] = cfg.pop("dtype")
    cfg.pop("layer_types", None)
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2)


def per_expert_key_names(arch):
    if arch == "mixtral":
        return "block_sparse_moe", ("w1", "w3", "w2")
    return "mlp", ("gate_proj", "up_proj", "down_proj")


def to_per_expert_layout(path, arch):
    """Rewrites a fused-expert checkpoint (experts.gate_up_proj [E, 2I, H], experts.down_proj
    [E, H, I]) into the per-expert layout of hub checkpoints, as one or more shards."""
    files = sorted(f for f in os.listdir(path) if f.endswith(".safetensors"))
    state = {}
    for f in files:
        state.update(load_file(os.path.join(path, f)))
        os.remove(os.path.join(path, f))
    index = os.path.join(path, "model.safetensors.index.json")
    sharded = os.path.exists(index)
    if sharded:
        os.remove(index)
    block, (gate_name, up_name, down_name) = per_expert_key_names(arch)
    expert_re = re.compile(r"^(model\.layers\.\d+)\.(?:mlp|block_sparse_moe)\.experts\.(gate_up_proj|down_proj)$")
    router_re = re.compile(r"^(model\.layers\.\d+)\.(?:mlp|block_sparse_moe)\.(?:gate|router)\.weight$")
    out = {}
    for key, value in state.items():
        m = expert_re.match(key)
        r = router_re.match(key)
        if m and m.group(2) == "gate_up_proj":
            inter = value.shape[1] // 2
            for e in range(value.shape[0]):
                p = f"{m.group(1)}.{block}.experts.{e}."
                out[p + gate_name + ".weight"] = value[e, :inter].contiguous()
                out[p + up_name + ".weight"] = value[e, inter:].contiguous()
        elif m:
            for e in range(value.shape[0]):
                out[f"{m.group(1)}.{block}.experts.{e}.{down_name}.weight"] = value[e].contiguous()
        elif r:
            out[f"{r.group(1)}.{block}.gate.weight"] = value
        else:
            out[key] = value
    if not any(".experts.0." in k for k in out):
        raise RuntimeError("no fused expert tensors found to convert: " + ", ".join(sorted(state)[:20]))
    if not sharded:
        save_file(out, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
        return
    names = sorted(out)
    half = (len(names) + 1) // 2
    shards = [names[:half], names[half:]]
    weight_map = {}
    for i, shard in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file({k: out[k] for k in shard}, os.path.join(path, fname), metadata={"format": "pt"})
        for k in shard:
            weight_map[k] = fname
    total = sum(v.numel() * v.element_size() for v in out.values())
    with open(index, "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


@torch.no_grad()
def to_fused_layout(path, model, dtype):
    """transformers 5 keeps experts fused in memory (experts.gate_up_proj [E, 2I, H],
    experts.down_proj [E, H, I]) but save_pretrained converts them back to the per-expert hub
    layout; save_file(model.state_dict()) writes the fused layout as it is in memory."""
    for f in os.listdir(path):
        if f.endswith(".safetensors") or f == "model.safetensors.index.json":
            os.remove(os.path.join(path, f))
    state = {k: v.detach().to(dtype).contiguous().clone() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    save_file(state, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})


def layout_of(path):
    names = [k for f in os.listdir(path) if f.endswith(".safetensors")
             for k in load_file(os.path.join(path, f)).keys()]
    if any(".experts.gate_up_proj" in k for k in names):
        return "fused"
    if any(".experts.0." in k for k in names):
        return "per_expert"
    return "dense"


@torch.no_grad()
def logits_of(model, ids):
    return model(torch.tensor([ids])).logits[0].float()


def top2_gap(row):
    top = torch.topk(row, 2).values
    return float(top[0] - top[1])


def router_gates(model):
    """(layer, gate module, top_k) of every MoE router in the model."""
    gates = []
    for name, module in model.named_modules():
        if name.endswith(".gate") and hasattr(module, "weight") and module.weight.dim() == 2:
            if ".experts" in name:
                continue
            gates.append(module)
    return gates


def routing_top(gate, inputs, k):
    """The k + 1 largest routing probabilities (and their experts) per token, in float64, from
    a forward hook's view of a router."""
    x = inputs[0].reshape(-1, inputs[0].shape[-1]).double()
    return torch.topk(torch.softmax(x @ gate.weight.double().T, dim=-1), k + 1, dim=-1)


@torch.no_grad()
def router_margins(model, ids):
    """Per token, the smallest gap over MoE layers between the k-th and (k+1)-th routing
    probability: where it is tiny, bf16 rounding can legitimately pick another expert."""
    gates = router_gates(model)
    if not gates:
        return None
    k = model.config.num_experts_per_tok
    margins = torch.full((len(ids),), float("inf"), dtype=torch.float64)
    handles = []

    def hook(module, inputs, _output):
        top = routing_top(module, inputs, k).values
        margins.copy_(torch.minimum(margins, top[:, k - 1] - top[:, k]))

    for gate in gates:
        handles.append(gate.register_forward_hook(hook))
    logits_of(model, ids)
    for h in handles:
        h.remove()
    return [float(m) for m in margins]


# Routing choices whose k-th and (k+1)-th expert probabilities are this close are coin flips
# for a bf16 engine (its router logits carry ~1e-3 relative error; the flips measured on the
# CUDA backend were at gaps of 1.2e-4 to 2.1e-4, tools/golden/moe_flip_diag.py).
FLIP_TIE = 1e-3


@torch.no_grad()
def routing_ties(model, ids):
    """(gate, position, k-th expert, (k+1)-th expert, gap) of every routing choice of `ids`
    whose gap is below FLIP_TIE."""
    gates = router_gates(model)
    k = model.config.num_experts_per_tok
    ties, handles = [], []

    def hook_for(gate):
        def hook(module, inputs, _output):
            top = routing_top(module, inputs, k)
            gap = top.values[:, k - 1] - top.values[:, k]
            for pos in (gap < FLIP_TIE).nonzero().flatten().tolist():
                ties.append((gate, pos, int(top.indices[pos, k - 1]), int(top.indices[pos, k]),
                             float(gap[pos])))
        return hook

    for gate in gates:
        handles.append(gate.register_forward_hook(hook_for(gate)))
    logits_of(model, ids)
    for h in handles:
        h.remove()
    return ties


@torch.no_grad()
def flipped_logits(model, ids, gate, pos, expert_a, expert_b):
    """The logits of `ids` with one routing choice flipped: the router logits of experts a and
    b swapped at `pos` in `gate`, so the (k+1)-th expert is chosen instead of the k-th (with its
    probability, within FLIP_TIE of the other's). Patches F.linear for the router's weight only,
    which works whether the router is an nn.Linear or calls F.linear itself."""
    linear = torch.nn.functional.linear

    def swapped(x, weight, bias=None):
        y = linear(x, weight, bias)
        if weight is gate.weight:
            y = y.clone()
            flat = y.view(-1, y.shape[-1])
            flat[pos, [expert_a, expert_b]] = flat[pos, [expert_b, expert_a]]
        return y

    torch.nn.functional.linear = swapped
    try:
        return logits_of(model, ids)
    finally:
        torch.nn.functional.linear = linear


@torch.no_grad()
def flip_sensitivity(model, ids, lsm):
    """What single near-tie routing flips (gap < FLIP_TIE) do to `ids`: a flip at position j
    changes every later position too, so positions it moves beyond the test's tolerance measure
    a coin flip, not the engine. Returns, per position, the most any flip moves next_logprob;
    the positions whose argmax some flip changes; and the ties, as [MoE layer ordinal,
    position, gap]."""
    gates = router_gates(model)
    sens = [0.0] * (len(ids) - 1)
    argmax_changes, found = set(), []
    reference_argmax = lsm.argmax(-1)
    for gate, pos, a, b, gap in routing_ties(model, ids):
        flipped = torch.log_softmax(flipped_logits(model, ids, gate, pos, a, b).double(), dim=-1)
        moved = [abs(float(flipped[i, ids[i + 1]] - lsm[i, ids[i + 1]]))
                 for i in range(len(ids) - 1)]
        changed = float((flipped[pos] - lsm[pos]).abs().max())
        assert changed > 0.0, "a routing flip changed nothing: the router no longer calls F.linear"
        sens = [max(x, y) for x, y in zip(sens, moved)]
        argmax_changes.update((flipped.argmax(-1) != reference_argmax).nonzero().flatten().tolist())
        found.append([gates.index(gate), pos, gap])
    return [round(x, 7) for x in sens], sorted(argmax_changes), found


def add_flip_fields(seq, model, ids, lsm):
    (seq["flip_sensitivity"], seq["flip_argmax_changes"],
     seq["routing_ties"]) = flip_sensitivity(model, ids, lsm)


@torch.no_grad()
def record(model, vocab, seed, bf16_model=None):
    g = torch.Generator().manual_seed(seed + 1)
    out = {"sequences": [], "greedy": []}
    for n in SEQ_LENS:
        ids = torch.randint(0, vocab, (n,), generator=g).tolist()
        logits = logits_of(model, ids)
        lsm = torch.log_softmax(logits.double(), dim=-1)
        seq = {
            "tokens": ids,
            "next_logprob": [float(lsm[i, ids[i + 1]]) for i in range(n - 1)],
            "argmax": [int(x) for x in logits.argmax(-1)],
            "top2_gap": [top2_gap(logits[i]) for i in range(n)],
        }
        margins = router_margins(model, ids)
        if margins is not None:
            seq["router_margin"] = margins
            add_flip_fields(seq, model, ids, lsm)
        if bf16_model is not None:  # what transformers itself computes in bf16, for reference
            dev = next(bf16_model.parameters()).device
            b = bf16_model(torch.tensor([ids], device=dev)).logits[0].double().cpu()
            blsm = torch.log_softmax(b, dim=-1)
            seq["bf16_next_logprob"] = [float(blsm[i, ids[i + 1]]) for i in range(n - 1)]
        out["sequences"].append(seq)
    for n in GREEDY_PROMPT_LENS:
        ids = torch.randint(0, vocab, (n,), generator=g).tolist()
        prompt = list(ids)
        cont, gaps = [], []
        for _ in range(GREEDY_STEPS):  # full forward each step: no cache in the reference
            row = logits_of(model, ids)[-1]
            tok = int(row.argmax())
            cont.append(tok)
            gaps.append(top2_gap(row))
            ids.append(tok)
        out["greedy"].append({"prompt": prompt, "continuation": cont, "top2_gap": gaps})
    return out


def build(s, out_dir, seed):
    name = s["name"]
    path = os.path.join(out_dir, "models", name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    config = make_config(s)
    torch.manual_seed(seed)
    model = getattr(transformers, CLASSES[s["arch"]][1])(config)
    randomize(model, seed)
    dtype = getattr(torch, s.get("dtype", "bfloat16"))
    model = model.to(dtype)
    kwargs = {"max_shard_size": s["shard"]} if "shard" in s else {}
    model.save_pretrained(path, **kwargs)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(path, extra)):
            os.remove(os.path.join(path, extra))
    CLASSES_BY_DIR[path] = CLASSES[s["arch"]][1]
    checks = {}
    reference = load_reference(path)
    probe = torch.randint(0, config.vocab_size, (1, 33), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        base_logits = reference(probe).logits
    if s.get("moe_layout") == "fused":
        to_fused_layout(path, model, dtype)
        reloaded = load_reference(path)
        with torch.no_grad():
            diff = float((reloaded(probe).logits - base_logits).abs().max())
        checks["fused_reload_max_abs_diff"] = diff
        assert diff == 0.0, f"{name}: fused checkpoint reloads differently ({diff})"
        reference = reloaded
    if s.get("moe_layout") == "per_expert" and layout_of(path) != "per_expert":
        to_per_expert_layout(path, s["arch"])
        reloaded = load_reference(path)
        with torch.no_grad():
            diff = float((reloaded(probe).logits - base_logits).abs().max())
        checks["per_expert_reload_max_abs_diff"] = diff
        assert diff == 0.0, f"{name}: per-expert checkpoint reloads differently ({diff})"
        reference = reloaded
    if s.get("config_format") == "classic":
        to_classic_config(path)
        reloaded = load_reference(path)
        with torch.no_grad():
            diff = float((reloaded(probe).logits - base_logits).abs().max())
        checks["classic_config_reload_max_abs_diff"] = diff
        assert diff == 0.0, f"{name}: classic config reloads differently ({diff})"
        reference = reloaded
    if "moe_layout" in s:
        checks["layout"] = layout_of(path)
        assert checks["layout"] == s["moe_layout"], f"{name}: wrote {checks['layout']} layout"
    bf16_model = getattr(transformers, CLASSES[s["arch"]][1]).from_pretrained(
        path, dtype=torch.bfloat16, attn_implementation="eager").eval()
    if torch.cuda.is_available():
        bf16_model = bf16_model.cuda()
    golden = record(reference, config.vocab_size, seed, bf16_model)
    if any("routing_ties" in q for q in golden["sequences"]):
        checks["routing_ties_below_flip_tie"] = sum(len(q.get("routing_ties", []))
                                                    for q in golden["sequences"])
    errs = [abs(a - b) for q in golden["sequences"]
            for a, b in zip(q["next_logprob"], q.get("bf16_next_logprob", []))]
    if errs:
        checks["transformers_bf16_max_abs_diff"] = max(errs)
        checks["transformers_bf16_mean_abs_diff"] = sum(errs) / len(errs)
    golden.update({
        "name": name,
        "architecture": CLASSES[s["arch"]][1],
        "stored_dtype": s.get("dtype", "bfloat16"),
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "seed": seed,
        "checks": checks,
        "weight_scale": WEIGHT_SCALE,
        "tensor_names": sorted(k for f in os.listdir(path) if f.endswith(".safetensors")
                               for k in load_file(os.path.join(path, f)).keys())[:40],
    })
    os.makedirs(os.path.join(out_dir, "golden"), exist_ok=True)
    with open(os.path.join(out_dir, "golden", name + ".json"), "w") as f:
        json.dump(golden, f)
    size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    log(f"{name}: {size / 1e6:.2f} MB, checks {checks}")
    assert size <= 2_000_000, f"{name} is {size} bytes"


def update_flips(out_dir, name):
    """Adds the flip fields to an existing MoE golden without rebuilding its checkpoint, after
    checking that transformers still computes the recorded next_logprob on it."""
    path = os.path.join(out_dir, "models", name)
    golden_path = os.path.join(out_dir, "golden", name + ".json")
    with open(golden_path) as f:
        golden = json.load(f)
    CLASSES_BY_DIR[path] = golden["architecture"]
    model = load_reference(path)
    ties = 0
    for seq in golden["sequences"]:
        if "router_margin" not in seq:
            continue
        ids = seq["tokens"]
        lsm = torch.log_softmax(logits_of(model, ids).double(), dim=-1)
        now = [float(lsm[i, ids[i + 1]]) for i in range(len(ids) - 1)]
        drift = max((abs(a - b) for a, b in zip(now, seq["next_logprob"])), default=0.0)
        assert drift < 1e-5, f"{name}: transformers now computes next_logprob {drift} away"
        add_flip_fields(seq, model, ids, lsm)
        ties += len(seq["routing_ties"])
    golden["checks"]["routing_ties_below_flip_tie"] = ties
    with open(golden_path, "w") as f:
        json.dump(golden, f)
    worst = max(max(q.get("flip_sensitivity", [0.0]) or [0.0]) for q in golden["sequences"])
    log(f"{name}: {ties} routing ties below {FLIP_TIE}, largest flip effect {worst:.4f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--only", nargs="*", help="names to build (default: all)")
    ap.add_argument("--weight-scale", type=float, default=WEIGHT_SCALE,
                    help="std of random weights times sqrt(fan_in)")
    ap.add_argument("--update-flips", nargs="*", metavar="NAME",
                    help="only add flip_sensitivity to these existing MoE goldens")
    args = ap.parse_args()
    globals()["WEIGHT_SCALE"] = args.weight_scale
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    log(f"transformers {transformers.__version__}, torch {torch.__version__}")
    if args.update_flips:
        for name in args.update_flips:
            update_flips(args.out, name)
        return
    failures = 0
    for i, s in enumerate(SPECS):
        if args.only and s["name"] not in args.only:
            continue
        try:
            build(s, args.out, args.seed + 101 * i)
        except Exception:
            failures += 1
            log(f"FAILED {s['name']}:\n{traceback.format_exc()}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
