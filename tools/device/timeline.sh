#!/usr/bin/env bash
# Where the wall time of a forward goes as the program runs it (graphs, PDL and all, at the
# GPU's own clocks): bench-engine cases under kernel_timeline.cc's CUPTI recorder, each
# summarised by timeline_report.py (span, time with no kernel running, time each kernel kind
# adds). CSVs and JSON summaries land in $OUT. Complements profile.sh, whose ncu times are of
# kernels replayed one at a time.
#
#   BUILD=build-gpu CASES="prefill_4096 decode_b1 decode_b64 moe_decode_b1 mixed_64_256" \
#     bash tools/device/timeline.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-gpu}
OUT=${OUT:-/tmp/tokenfab-timeline}
CASES=${CASES:-"prefill_4096 decode_b1 decode_b64 moe_decode_b1"}
mkdir -p "$OUT"
CUDA=${CUDA_HOME:-/usr/local/cuda}
LIB=/tmp/libkernel_timeline.so
cupti_dir=$(dirname "$(find "$CUDA/" /usr/local/cuda*/ -name 'libcupti.so*' 2>/dev/null | head -1)")
g++ -O2 -shared -fPIC -I"$CUDA/include" tools/device/kernel_timeline.cc -L"$cupti_dir" -lcupti \
  -Wl,-rpath,"$cupti_dir" -o "$LIB" || { echo "timeline: cannot build the CUPTI recorder"; exit 1; }

BENCH=("$BUILD/tokenfab" bench-engine --device cuda --dummy-weights --no-ceilings --score-len 0
  --kv-cache-gb 8)

record() {  # name, which forwards to summarise (timeline_report.py flags), then bench-engine flags
  local name=$1 pick=$2; shift 2
  CUDA_INJECTION64_PATH=$LIB KERNEL_TIMELINE_CSV="$OUT/timeline_$name.csv" timeout 240 \
    "${BENCH[@]}" "$@" --output "$OUT/bench_$name.json" >"$OUT/timeline_$name.log" 2>&1 ||
    echo "== $name: bench-engine rc=$? (see timeline_$name.log)"
  # $pick unquoted: it is timeline_report.py's flags and their values, word by word.
  python3 tools/device/timeline_report.py "$OUT/timeline_$name.csv" $pick --label "$name" \
    --json "$OUT/timeline_$name.json"
}

llama=(--model configs/Llama-3.1-8B)
decode=(--prompt-lens 16 --context-lens 600 --decode-steps 16 --repeats 1)
for c in $CASES; do
  case $c in
    prefill_4096) record "$c" "--longest 3" "${llama[@]}" --no-warmup --max-batch-tokens 8192 \
      --prompt-lens 4096 --batch-sizes 1 --context-lens 16 --repeats 3 --decode-steps 1 ;;
    decode_b1) record "$c" "--last 8" "${llama[@]}" "${decode[@]}" --batch-sizes 1 ;;
    decode_b64) record "$c" "--last 8" "${llama[@]}" "${decode[@]}" --batch-sizes 64 ;;
    moe_decode_b1) record "$c" "--last 8" --model configs/Qwen3-30B-A3B "${decode[@]}" \
      --batch-sizes 1 ;;
    # A serving step at c=64: 64 decodes beside a 256-token prompt (bench-engine's mixed case).
    mixed_64_256) record "$c" "--with AttentionDecode --with FlashPrefill --last 2" \
      "${llama[@]}" --prompt-lens 16 --batch-sizes 64 --context-lens 600 \
      --mixed-prefill-lens 256 --decode-steps 4 --repeats 2 ;;
    *) echo "unknown case $c" ;;
  esac
done
