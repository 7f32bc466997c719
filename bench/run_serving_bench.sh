#!/usr/bin/env bash
# Serving benchmark: `tokenfab serve --device cuda` against llama.cpp's llama-server on the
# same GPU, the same weights (HF directory for tokenfab, its GGUF conversion for llama-server)
# and the same workloads (tokenfab bench, identical seeds), writing JSON and HTML per run and
# comparison reports into OUT_DIR.
#
#   bench/run_serving_bench.sh HF_MODEL_DIR LLAMA_SERVER GGUF OUT_DIR
#
# Stages (env STAGES, default all; each fits one 10-minute device call on an H100 with an 8B
# model, so they can be run one call at a time into the same OUT_DIR):
#   fixed      512-token prompts, 128 output tokens, closed loop at concurrency 1, 16, 64, 256
#              (target: tokenfab's output tok/s at c=64 >= 8x llama-server's)
#   goodput    chat-like lengths, Poisson arrivals: the highest request rate meeting MLPerf's
#              Llama-3.1-8B server limits (p99 TTFT <= 2 s, TPOT <= 100 ms) (target >= 5x)
#   multiturn  4-turn conversations sharing a 1000-word system prompt, tokenfab with and
#              without prefix caching, and llama-server (target: median TTFT >= 5x lower with
#              prefix caching than without)
#   longctx    sessions revisiting four 3000-word documents (fits a 4096-token llama-server slot)
#   report     the comparison HTML pages and summary.json from whatever runs exist
# Other settings (env): SERVERS (which of tokenfab tokenfab-nocache llama run; default all;
#   without llama, LLAMA_SERVER and GGUF may be "-"),
# TOKENFAB (binary, default build-cuda/tokenfab or build/tokenfab), BENCH_CLIENT (the binary whose
#   `bench` drives every server, default TOKENFAB: an older server keeps today's load generator),
# SLOTS (llama-server parallel slots, default 64), CTX_PER_SLOT (default 4096),
# TOKENFAB_PORT (8000), LLAMA_PORT (8080), QUICK=1 (fewer requests, for a smoke run),
# TOKENFAB_DEVICE (cuda), TRIAL_SECONDS (goodput: seconds of arrivals per trial, default 20),
# GOODPUT_START_RATE (goodput: the search's first rate in requests/s, default 4),
# FIXED_CONCURRENCY (which of the fixed stage's concurrencies 1 16 64 256 run, default all),
# MULTITURN_CONCURRENCY (conversations at a time in the multiturn stage, default 16),
# MULTITURN_REQUESTS (conversations it runs, 4 requests each, default 64),
# EXTRA_TOKENFAB_FLAGS, EXTRA_LLAMA_FLAGS, EXTRA_BENCH_FLAGS (added to every tokenfab bench call,
# e.g. "--temperature 1 --top-p 0.95" for sampled rather than greedy requests).
set -euo pipefail
if [ $# -ne 4 ]; then
  sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
HF_MODEL=$(realpath "$1")
LLAMA_SERVER=$(realpath -m "$2")
GGUF=$(realpath -m "$3")
OUT=$4
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
OUT=$(realpath "$OUT")

TOKENFAB=${TOKENFAB:-}
if [ -z "$TOKENFAB" ]; then
  for t in build-cuda/tokenfab build/tokenfab; do [ -x "$t" ] && TOKENFAB=$(realpath "$t") && break; done
fi
[ -x "${TOKENFAB:-}" ] || { echo "no tokenfab binary: build with -DTOKENFAB_CUDA=ON or set TOKENFAB" >&2; exit 1; }
BENCH_CLIENT=$(realpath "${BENCH_CLIENT:-$TOKENFAB}")
[ -f "$HF_MODEL/config.json" ] && [ -f "$HF_MODEL/tokenizer.json" ] ||
  { echo "$HF_MODEL needs config.json, safetensors and tokenizer.json" >&2; exit 1; }

STAGES=${STAGES:-fixed goodput multiturn longctx report}
SLOTS=${SLOTS:-64}
CTX_PER_SLOT=${CTX_PER_SLOT:-4096}
TOKENFAB_PORT=${TOKENFAB_PORT:-8000}
LLAMA_PORT=${LLAMA_PORT:-8080}
QUICK=${QUICK:-0}
scale() { if [ "$QUICK" = 1 ]; then echo $(( ($1 + 7) / 8 )); else echo "$1"; fi; }

SERVER_PID=""
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 1 120); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
trap stop_server EXIT

wait_healthy() {  # wait_healthy PORT NAME: up to 15 minutes for weights to load
  for _ in $(seq 1 1800); do
    if curl -sf "http://127.0.0.1:$1/health" >/dev/null 2>&1; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "$2 exited while starting; see its log" >&2; return 1; }
    sleep 0.5
  done
  echo "$2 did not become healthy" >&2
  return 1
}

STEP_LOG=""  # the running tokenfab server's step log; empty for llama-server and old binaries
start_tokenfab() {  # start_tokenfab LOG_NAME [extra flags...]
  local log=$OUT/$1.log
  local step_log_flags=()
  STEP_LOG=""
  if "$TOKENFAB" serve --help 2>&1 | grep -q -- --step-log; then
    STEP_LOG=$OUT/$1.steps.jsonl
    step_log_flags=(--step-log "$STEP_LOG")
  fi
  shift
  "$TOKENFAB" serve --model "$HF_MODEL" --device "${TOKENFAB_DEVICE:-cuda}" --port "$TOKENFAB_PORT" \
    --served-model-name model --max-seqs 256 --max-waiting 100000 "${step_log_flags[@]}" \
    ${EXTRA_TOKENFAB_FLAGS:-} "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  wait_healthy "$TOKENFAB_PORT" tokenfab
}

start_llama() {
  STEP_LOG=""
  "$LLAMA_SERVER" -m "$GGUF" -ngl 99 -fa on -c $((SLOTS * CTX_PER_SLOT)) -np "$SLOTS" \
    --host 127.0.0.1 --port "$LLAMA_PORT" --alias model --metrics ${EXTRA_LLAMA_FLAGS:-} \
    >"$OUT/llama-server.log" 2>&1 &
  SERVER_PID=$!
  wait_healthy "$LLAMA_PORT" llama-server
}

bench() {  # bench PORT LABEL NAME [bench flags...]
  local port=$1 label=$2 name=$3
  shift 3
  echo "=== $name"
  "$BENCH_CLIENT" bench --url "http://127.0.0.1:$port" --model model --label "$label" \
    --seed "${BENCH_SEED:-1}" \
    --output-json "$OUT/$name.json" --output-html "$OUT/$name.html" --log-level warning "$@" \
    ${EXTRA_BENCH_FLAGS:-} \
    | tee "$OUT/$name.summary.jsonl" | cut -c1-160
}

# Tokens the server says it generated (its own Prometheus counter), so that requests a server
# fails still count for the work it did (llama-server's output parser used to fail random-weight
# requests after generating their tokens; tools/device/llama_cpp.sh now patches that).
server_tokens() {  # server_tokens PORT
  curl -sf "http://127.0.0.1:$1/metrics" |
    awk '/^(tokenfab_engine_generated_tokens_total|llamacpp:tokens_predicted_total) / {print $2}'
}

# bench_counted PORT LABEL NAME [bench flags...]: bench, plus NAME.server.json with the server's
# generated tokens over the wall time of the whole run (warm-up included, for every server),
# and for tokenfab NAME.steps.json: the steps of the measured run (after the warm-up) by kind
# (decode-only, mixed, prompt-only), from the server's step log.
bench_counted() {
  local port=$1 name=$3 t0 t1 s0 s1
  t0=$(server_tokens "$port"); s0=$(date +%s.%N)
  bench "$@"
  t1=$(server_tokens "$port"); s1=$(date +%s.%N)
  python3 -c "import json,sys; t0,t1,s0,s1=map(float,sys.argv[1:5]); json.dump({'generated_tokens':t1-t0,'seconds':s1-s0,'tokens_per_s':(t1-t0)/(s1-s0)},open(sys.argv[5],'w'))" \
    "${t0:-0}" "${t1:-0}" "$s0" "$s1" "$OUT/$name.server.json"
  if [ -n "$STEP_LOG" ]; then
    python3 tools/serving/step_log_summary.py "$STEP_LOG" --bench-json "$OUT/$name.json" \
      --json "$OUT/$name.steps.json" --html "$OUT/$name.steps.html" || true
  fi
}

# The workloads: the same flags for every server. Request counts keep each run short enough
# that a stage fits one 10-minute device call (QUICK=1 divides them by 8).
# fixed and goodput use the plain completions endpoint (no chat template on either side).
FIXED=(--workload fixed --endpoint completions --input-len 512 --output-len 128)
# "concurrency requests", for the concurrencies in FIXED_CONCURRENCY (default all four).
FIXED_POINTS=()
for point in "1 $(scale 16)" "16 $(scale 128)" "64 $(scale 256)" "256 $(scale 512)"; do
  if [[ " ${FIXED_CONCURRENCY:-1 16 64 256} " == *" ${point%% *} "* ]]; then FIXED_POINTS+=("$point"); fi
done
# goodput: the highest Poisson rate meeting the limits (MLPerf's server question), searched by
# doubling then bisection; each trial offers TRIAL_SECONDS of arrivals (50 requests at least).
TRIAL_SECONDS=${TRIAL_SECONDS:-$([ "$QUICK" = 1 ] && echo 8 || echo 20)}
GOODPUT=(--workload chat --endpoint completions --input-len 256 --output-len 192 --warmup 16
         --find-max-rate "${GOODPUT_START_RATE:-4}" --trial-seconds "$TRIAL_SECONDS" --rate-precision 0.1
         --num-requests 4000 --max-concurrency 1024)
MULTITURN=(--workload multi-turn --system-prompt-len 1000 --turns 4 --turn-input-len 100
           --output-len 64 --concurrency "${MULTITURN_CONCURRENCY:-16}"
           --num-requests "$(scale "${MULTITURN_REQUESTS:-64}")"
           --warmup 4)
LONGCTX=(--workload long-context --documents 4 --document-len 3000 --turns 3 --turn-input-len 30
         --output-len 64 --concurrency 8 --num-requests "$(scale 32)")

# SERVERS picks which servers a stage runs (default all): tokenfab, tokenfab-nocache (the
# multiturn stage only), llama.
SERVERS=${SERVERS:-tokenfab tokenfab-nocache llama}
wants() { [[ " $SERVERS " == *" $1 "* ]]; }
# llama-server and its GGUF are needed only when it runs (SERVERS without llama: pass "-").
if wants llama; then
  [ -x "$LLAMA_SERVER" ] || { echo "not executable: $LLAMA_SERVER" >&2; exit 1; }
  [ -f "$GGUF" ] || { echo "no such GGUF: $GGUF" >&2; exit 1; }
fi

# run_stage STAGE SERVER: starts SERVER, runs the stage's benchmark into STAGE-SERVER.json.
run_stage() {
  local stage=$1 server=$2 port label
  case $server in
    tokenfab) start_tokenfab "tokenfab-$stage"; port=$TOKENFAB_PORT; label=tokenfab ;;
    tokenfab-nocache) start_tokenfab "tokenfab-$stage-nocache" --no-prefix-caching
                      port=$TOKENFAB_PORT; label="tokenfab no prefix cache" ;;
    llama) start_llama; port=$LLAMA_PORT; label=llama-server ;;
  esac
  case $stage in
    fixed)
      local point c n
      for point in "${FIXED_POINTS[@]}"; do
        read -r c n <<<"$point"
        # A seed per point: the points run on one server, and the same prompts again would be
        # served from its prefix cache (every server sees the same prompts at a point).
        BENCH_SEED=$c bench_counted "$port" "$label" "fixed-$server-c$c" "${FIXED[@]}" --concurrency "$c" \
          --num-requests "$n" --warmup "$c"
      done
      ;;
    goodput) bench "$port" "$label" "goodput-$server" "${GOODPUT[@]}" ;;
    multiturn) bench "$port" "$label" "multiturn-$server" "${MULTITURN[@]}" ;;
    longctx) bench "$port" "$label" "longctx-$server" "${LONGCTX[@]}" ;;
  esac
  # The server's own view of the run (steps, busy time, prefix-cache hits, its TTFT histogram).
  curl -sf "http://127.0.0.1:$port/metrics" >"$OUT/$stage-$server.metrics.txt" || true
  stop_server
}

{
  date -u
  git rev-parse HEAD 2>/dev/null || true
  "$TOKENFAB" --version
  nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv 2>/dev/null || true
  echo "HF_MODEL=$HF_MODEL GGUF=$GGUF LLAMA_SERVER=$LLAMA_SERVER SLOTS=$SLOTS CTX_PER_SLOT=$CTX_PER_SLOT"
} >>"$OUT/meta.txt"

for stage in $STAGES; do
  case $stage in
    fixed|goodput|longctx)
      for server in tokenfab llama; do wants "$server" && run_stage "$stage" "$server"; done
      ;;
    multiturn)
      for server in tokenfab tokenfab-nocache llama; do wants "$server" && run_stage "$stage" "$server"; done
      ;;
    report)
      for w in fixed goodput multiturn longctx; do
        files=$( (ls "$OUT/$w"-*.json 2>/dev/null || true) |
          (grep -v -e compare -e '\.server\.json$' -e '\.steps\.json$' || true) | paste -sd, -)
        [ -n "$files" ] || continue
        "$BENCH_CLIENT" bench --merge "$files" --title "tokenfab vs llama-server: $w" \
          --output-html "$OUT/$w-compare.html" --output-json "$OUT/$w-compare.json"
      done
      if command -v python3 >/dev/null; then
        python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
def runs(name):
    path = os.path.join(out, name + ".json")
    return json.load(open(path))["runs"] if os.path.exists(path) else []
def pick(rs, key):
    return {r["label"].split(" @ ")[1]: r for r in rs}.get(key)
s = {}
t, l = pick(runs("fixed-tokenfab-c64"), "c=64"), pick(runs("fixed-llama-c64"), "c=64")
if t and l:
    s["fixed_c64_output_tok_s"] = {"tokenfab": t["output_throughput"], "llama-server": l["output_throughput"],
                                   "ratio": t["output_throughput"] / max(l["output_throughput"], 1e-9), "target": 8,
                                   "failed_requests": {"tokenfab": t["failed"], "llama-server": l["failed"]}}
def served(name):
    path = os.path.join(out, name + ".server.json")
    return json.load(open(path))["tokens_per_s"] if os.path.exists(path) else None
st, sl = served("fixed-tokenfab-c64"), served("fixed-llama-c64")
if st and sl:
    s["fixed_c64_server_generated_tok_s"] = {"tokenfab": st, "llama-server": sl, "ratio": st / sl, "target": 8}
def max_rate(name):
    path = os.path.join(out, name + ".json")
    if not os.path.exists(path):
        return None
    return json.load(open(path))["config"].get("rate_search", {}).get("max_rate_meeting_slo")
gt, gl = max_rate("goodput-tokenfab"), max_rate("goodput-llama")
if gt is not None and gl is not None:
    s["goodput_max_rate_req_s"] = {"tokenfab": gt, "llama-server": gl, "ratio": gt / max(gl, 1e-9),
                                   "target": 5}
mc, mn = runs("multiturn-tokenfab"), runs("multiturn-tokenfab-nocache")
if mc and mn:
    a, b = mc[0]["ttft_s"]["p50"], mn[0]["ttft_s"]["p50"]
    s["multiturn_median_ttft_s"] = {"prefix_cache": a, "no_prefix_cache": b, "ratio": b / max(a, 1e-9), "target": 5}
ml = runs("multiturn-llama")
if ml and mc:
    s["multiturn_median_ttft_s"]["llama-server"] = ml[0]["ttft_s"]["p50"]
json.dump(s, open(os.path.join(out, "summary.json"), "w"), indent=1)
print(json.dumps(s, indent=1))
PY
      fi
      ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done
echo "results in $OUT"
