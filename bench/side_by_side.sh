#!/usr/bin/env bash
# Side-by-side engine benchmark on one GPU: tokenfab, Hugging Face transformers and llama.cpp on
# the same weights (a seeded random Llama-3.1-8B-shaped HF directory and its BF16 GGUF
# conversion) and the same workload: prefill of 512- and 4096-token prompts, decode of 1, 16
# and 64 sequences from a 512-token context for 128 steps.
#
#   bench/side_by_side.sh PEERS_DIR OUT_DIR
#
# PEERS_DIR is a copy of ../shared/peers (see its README) unpacked by its device.sh `setup`
# step, so that $DEV/llama.cpp holds convert_hf_to_gguf.py and $DEV/tokenizers the tokenizer.
# Stages (env STAGES, default all, in this order; each skips work whose output exists):
#   model        make_random_hf_model.py llama3.1-8b -> $DEV/models/l8b (16 GB, seeded)
#   gguf         convert_hf_to_gguf.py --outtype bf16 -> $DEV/models/l8b-bf16.gguf
#   tokenfab     tokenfab bench-engine --device cuda on the HF directory
#   transformers bench/transformers_bench.py on the HF directory (sdpa attention)
#   llama        llama-bench (prefill, batch-1 decode) and llama-batched-bench (decode at 1/16/64)
#   report       side_by_side.json (device, commit, commands, every number, ratios) + a table
# Env: DEV (default /root/peers-dev), TOKENFAB (binary, default build-gpu/tokenfab),
# LLAMA_BIN (directory of llama-bench / llama-batched-bench, default $DEV/llama.cpp/build/bin),
# COMMIT (recorded in the JSON, default git rev-parse).
set -euo pipefail
if [ $# -ne 2 ]; then sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi
PEERS=$(realpath "$1")
OUT=$2
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
DEV=${DEV:-/root/peers-dev}
TOKENFAB=${TOKENFAB:-build-gpu/tokenfab}
LLAMA_BIN=${LLAMA_BIN:-$DEV/llama.cpp/build/bin}
COMMIT=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
STAGES=${STAGES:-model gguf tokenfab transformers llama report}
HF=$DEV/models/l8b
GGUF=$DEV/models/l8b-bf16.gguf
has() { [[ " $STAGES " == *" $1 "* ]]; }
stamp() { echo "== $(date -u +%H:%M:%S) $*"; }
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

# The workload, identical for every engine.
PROMPTS=512,4096
BATCHES=1,16,64
CONTEXT=512
STEPS=128

if has model && [ ! -f "$HF/config.json" ]; then
  stamp "model: random Llama-3.1-8B -> $HF"
  python3 "$PEERS/make_random_hf_model.py" llama3.1-8b "$HF" --tokenizer-dir "$DEV/tokenizers/llama3.1" \
    >"$OUT/model.log" 2>&1 || { tail -20 "$OUT/model.log"; exit 1; }
fi
if has gguf && [ ! -f "$GGUF" ]; then
  stamp "gguf: $GGUF"
  python3 "$DEV/llama.cpp/convert_hf_to_gguf.py" "$HF" --outtype bf16 --outfile "$GGUF" \
    >"$OUT/gguf.log" 2>&1 || { tail -20 "$OUT/gguf.log"; exit 1; }
fi

# Every command that produced a number, recorded beside it in the report (the last run of each
# engine wins, so stages can be rerun one at a time).
record() { echo "$1: $2" >>"$OUT/commands.txt"; }

if has tokenfab; then
  stamp "tokenfab bench-engine"
  cmd="$TOKENFAB bench-engine --device cuda --model $HF --max-batch-tokens 8192 --kv-cache-gb 20
    --prompt-lens $PROMPTS --batch-sizes $BATCHES --context-lens $CONTEXT --decode-steps $STEPS
    --repeats 3 --score-len 0 --output $OUT/tokenfab.json"
  record tokenfab "$(echo $cmd)"
  $cmd >"$OUT/tokenfab.log" 2>&1 || { tail -20 "$OUT/tokenfab.log"; exit 1; }
fi
if has transformers; then
  stamp "transformers"
  cmd="python3 bench/transformers_bench.py $HF $OUT/transformers.json --prompt-lens $PROMPTS
    --batch-sizes $BATCHES --context $CONTEXT --decode-steps $STEPS --repeats 2"
  record transformers "$(echo $cmd)"
  $cmd 2>&1 | tee "$OUT/transformers.log" | grep -v Warning || true
  [ -f "$OUT/transformers.json" ] || { tail -20 "$OUT/transformers.log"; exit 1; }
fi
if has llama; then
  stamp "llama-bench"
  cmd="$LLAMA_BIN/llama-bench -m $GGUF -ngl 99 -fa 1 -p $PROMPTS -n $STEPS -r 3 -o json"
  record llama-bench "$cmd"
  $cmd >"$OUT/llama-bench.json" 2>"$OUT/llama-bench.log" || { tail -20 "$OUT/llama-bench.log"; exit 1; }
  stamp "llama-batched-bench"
  cmd="$LLAMA_BIN/llama-batched-bench -m $GGUF -ngl 99 -fa on -c 50000 -b 2048 -ub 512
    -npp $CONTEXT -ntg $STEPS -npl $BATCHES --output-format jsonl"
  record llama-batched-bench "$(echo $cmd)"
  $cmd >"$OUT/llama-batched.log" 2>&1 || { tail -20 "$OUT/llama-batched.log"; exit 1; }
  grep '^{' "$OUT/llama-batched.log" >"$OUT/llama-batched.jsonl"
fi

if has report; then
  python3 - "$OUT" "$COMMIT" <<'PY'
import json, os, subprocess, sys
out, commit = sys.argv[1:]
def load(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None
try:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip()
except OSError:
    gpu = "unknown (no nvidia-smi)"
commands = dict(l.rstrip("\n").split(": ", 1) for l in open(os.path.join(out, "commands.txt")))
rows = {}  # metric -> {engine: tok/s}
def put(metric, engine, value):
    rows.setdefault(metric, {})[engine] = value
tf = load("tokenfab.json")
ceilings = tf["ceilings"] if tf else None
if tf:
    for p in tf["prefill"]:
        put(f"prefill {p['prompt_tokens']}", "tokenfab", p["tokens_per_s"])
        put(f"prefill {p['prompt_tokens']}", "roofline", p["tokens_per_s"] / p["roofline_fraction"])
    for d in tf["decode"]:
        put(f"decode b{d['batch']}", "tokenfab", d["tokens_per_s"])
        put(f"decode b{d['batch']}", "roofline", d["roofline_tokens_per_s"])
hf = load("transformers.json")
if hf:
    for p in hf["prefill"]:
        put(f"prefill {p['prompt_tokens']}", "transformers", p["tokens_per_s"])
    for d in hf["decode"]:
        put(f"decode b{d['batch']}", "transformers", d["tokens_per_s"])
lb = load("llama-bench.json")
if lb:
    for r in lb:
        if r["n_gen"] == 0:
            put(f"prefill {r['n_prompt']}", "llama.cpp", r["avg_ts"])
        else:
            put(f"decode b1 from empty", "llama.cpp", r["avg_ts"])
jl = os.path.join(out, "llama-batched.jsonl")
if os.path.exists(jl):
    for line in open(jl):
        r = json.loads(line)
        put(f"decode b{r['pl']}", "llama.cpp", r["speed_tg"])
engines = ["tokenfab", "transformers", "llama.cpp"]
table = []
for metric, v in rows.items():
    row = {"metric": metric, **{e: v.get(e) for e in engines + ["roofline"]}}
    for e in ["transformers", "llama.cpp"]:
        if v.get("tokenfab") and v.get(e):
            row[f"tokenfab/{e}"] = v["tokenfab"] / v[e]
    table.append(row)
report = {"device": gpu, "commit": commit, "commands": commands, "ceilings": ceilings,
          "workload": "random-bf16 Llama-3.1-8B (make_random_hf_model.py, seed 0); prefill of one "
                      "prompt; decode of B sequences from a 512-token context for 128 steps",
          "table": table, "tokenfab": tf, "transformers": hf, "llama_bench": lb}
json.dump(report, open(os.path.join(out, "side_by_side.json"), "w"), indent=1)
fmt = lambda x: f"{x:9.0f}" if x is not None else "        -"
print(f"\nside by side on {gpu} ({commit}), tokens/s")
print(f"{'metric':22s} {'tokenfab':>9s} {'transf.':>9s} {'llama.cpp':>9s} {'roofline':>9s}  tf/hf  tf/llama")
for r in table:
    ratio = lambda k: f"{r[k]:6.2f}" if k in r else "     -"
    print(f"{r['metric']:22s} {fmt(r['tokenfab'])} {fmt(r['transformers'])} {fmt(r['llama.cpp'])} "
          f"{fmt(r['roofline'])} {ratio('tokenfab/transformers')} {ratio('tokenfab/llama.cpp')}")
PY
fi
