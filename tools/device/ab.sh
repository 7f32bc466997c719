#!/usr/bin/env bash
# A/B of two tokenfab binaries on the GPU machine: the same bench-engine flags, each binary in
# its own process, in the order A B, B A, A B, ... (ROUNDS rounds), so that both see the same
# GPU in the same call and neither always runs first (a GPU warmed by the run before it may
# clock lower). Writes ab_<label>_<round>.json ({device, commit, command, result}) into $OUT
# and prints decode and prefill tokens/s side by side, with B/A.
#
#   ROUNDS=2 bash tools/device/ab.sh A_LABEL A_BINARY B_LABEL B_BINARY [bench-engine flags...]
#   bash tools/device/ab.sh old build-gpu/tokenfab-old new build-gpu/tokenfab \
#     --model configs/Llama-3.1-8B --dummy-weights --prompt-lens 16 --batch-sizes 1,64
# (Build the old binary at the base commit here, copy it aside, build the new one, carry both.
# DEVICE=cpu runs it here, for a check of the script.)
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ $# -lt 4 ]; then sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi
a_label=$1 a_bin=$2 b_label=$3 b_bin=$4
shift 4
OUT=${OUT:-/tmp/tokenfab-out}
ROUNDS=${ROUNDS:-1}
mkdir -p "$OUT"
for round in $(seq 1 "$ROUNDS"); do
  order="a b"
  [ $((round % 2)) -eq 0 ] && order="b a"
  for side in $order; do
    if [ $side = a ]; then label=$a_label bin=$a_bin; else label=$b_label bin=$b_bin; fi
    cmd="$bin bench-engine --device ${DEVICE:-cuda} --score-len 0 $*"
    raw="$OUT/ab_${label}_${round}.raw.json"
    if ! $cmd --output "$raw" >/dev/null 2>"$OUT/ab_${label}_${round}.log"; then
      echo "ab: $label failed:"; tail -5 "$OUT/ab_${label}_${round}.log"; continue
    fi
    python3 tools/device/record_result.py "$raw" "$OUT/ab_${label}_${round}.json" "$label" "$cmd"
  done
done
python3 - "$OUT" "$a_label" "$b_label" "$ROUNDS" <<'PY'
import json, os, sys
out, a, b, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def cells(label):
    """Best tokens/s over the rounds, per (prefill length, cached prefix) and (batch, context)."""
    best = {}
    for r in range(1, rounds + 1):
        path = os.path.join(out, f"ab_{label}_{r}.json")
        if not os.path.exists(path):
            continue
        res = json.load(open(path))["result"]
        for d in res["prefill"]:
            key = ("prefill", d["prompt_tokens"], d.get("prefix_tokens", 0))  # context: the prefix
            best[key] = max(best.get(key, 0), d["tokens_per_s"])
        for d in res["decode"]:
            key = ("decode", d["batch"], d["context"])
            best[key] = max(best.get(key, 0), d["tokens_per_s"])
    return best
ca, cb = cells(a), cells(b)
print(f"  {'phase':8s} {'tok/batch':>9s} {'context':>7s} {a:>12s} {b:>12s}   B/A")
for key in sorted(set(ca) | set(cb)):
    va, vb = ca.get(key), cb.get(key)
    ratio = f"{vb / va:5.3f}" if va and vb else "  -  "
    fmt = lambda v: f"{v:12.1f}" if v else f"{'-':>12s}"
    print(f"  {key[0]:8s} {key[1]:>9} {key[2]:>7} {fmt(va)} {fmt(vb)}   {ratio}")
PY
