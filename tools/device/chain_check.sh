#!/usr/bin/env bash
# The projection chain (projection_chain.cu, opt-in with TOKENFAB_CHAIN=1) in one device call:
# its op tests, the CUDA goldens with and without it, memcheck and racecheck on its tests, then
# batch-1 decode side by side in one binary (chain off = the composed ops, chain on), Llama
# twice in both orders and Qwen3-MoE once. Writes chain_check.tgz under $OUT, rewritten after
# every section so that whatever ran comes back if the call's time runs out; prints each
# section's table as it goes.
#
#   BUILD=build-gpu bash tools/device/chain_check.sh
# (Binaries built here and carried work too: BUILD names the folder holding tokenfab and
# tests/{backend/backend_ops_test,model/model_golden_test}.)
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-gpu}
OUT=${OUT:-/tmp/tokenfab-out}
T0=$(date +%s)
el() { echo $(( $(date +%s) - T0 )); }
[ -e /work/main ] || { mkdir -p /work && ln -sfn "$PWD" /work/main; }  # the goldens' data root
R=$OUT/chain; mkdir -p "$R"
pack() { rm -f "$R"/*/*.raw.json; tar czf "$OUT/chain_check.tgz" -C "$R" .; }
ops=$BUILD/tests/backend/backend_ops_test
golden=$BUILD/tests/model/model_golden_test
on=$R/tokenfab-chain
printf '#!/bin/sh\nTOKENFAB_CHAIN=1 exec %s "$@"\n' "$(realpath "$BUILD/tokenfab")" > "$on"
chmod +x "$on"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$R/gpu.txt"

section() { echo "== $1 ($(el) s)"; }
section "chain op tests"
timeout 60 $ops --gtest_filter='*ProjectionChain*/cuda*' > "$R/chain_ops.log" 2>&1
echo "rc=$?"; grep -E "PASSED|FAILED|Failure" "$R/chain_ops.log" | head -8
section "goldens, chain on"
TOKENFAB_CHAIN=1 timeout 120 $golden --gtest_filter='*cuda*' > "$R/golden_chain.log" 2>&1
echo "rc=$?"; grep -E "PASSED|FAILED" "$R/golden_chain.log" | head -5
pack
B="--no-ceilings --kv-cache-gb 8 --prompt-lens 16 --context-lens 600 --max-batch-tokens 1024
  --decode-steps 32 --repeats 3 --dummy-weights --batch-sizes 1"
section "Llama-3.1-8B batch 1"
OUT=$R/llama ROUNDS=2 timeout 240 bash tools/device/ab.sh off "$BUILD/tokenfab" on "$on" \
  --model configs/Llama-3.1-8B $B 2>&1 | tail -3
pack
section "Qwen3-30B-A3B batch 1"
OUT=$R/moe ROUNDS=1 timeout 100 bash tools/device/ab.sh off "$BUILD/tokenfab" on "$on" \
  --model configs/Qwen3-30B-A3B $B 2>&1 | tail -3
pack
for tool in memcheck racecheck; do
  section "$tool"
  timeout 90 compute-sanitizer --tool $tool $ops --gtest_filter='*ProjectionChain*/cuda*' \
    > "$R/$tool.log" 2>&1
  echo "rc=$?"; tail -2 "$R/$tool.log"
done
pack
section "every CUDA op test, goldens without the chain"
timeout 150 $ops --gtest_filter='*/cuda*' > "$R/ops.log" 2>&1
echo "rc=$?"; grep -E "PASSED|FAILED" "$R/ops.log" | head
timeout 120 $golden --gtest_filter='*cuda*' > "$R/golden.log" 2>&1
echo "rc=$?"; grep -E "PASSED|FAILED" "$R/golden.log" | head -5
pack
echo "done in $(el) s"
