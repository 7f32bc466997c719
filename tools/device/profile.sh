#!/usr/bin/env bash
# Where the GPU time of one forward goes: runs short bench-engine cases under Nsight Compute
# (kernels serialised, graphs off) and prints, for the last forward of each case, the time of
# every kernel kind and its share. CSVs land in $OUT.
#
#   BUILD=/root/build-gpu CASES="decode_b1 prefill_4096" bash tools/device/profile.sh [model-config-dir]
#   CASES="prefill_attention_metrics decode_attention_metrics" ...   # one kernel's counters
#   CASES=decode_b1_counters ... configs/Qwen3-30B-A3B   # every batch-1 decode kernel, a line each
#   CASES=prefill_attention_sass ...   # the 4096 prefill's attention kernel, region by SASS region
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-gpu}
OUT=${OUT:-/tmp/tokenfab-prof}
MODEL=${1:-configs/Llama-3.1-8B}
mkdir -p "$OUT"
# The forward every case profiles: one short bench-engine run on dummy weights, without the
# warm-up (its passes at every row bucket would be the longest forwards and take most of the
# profiling time); each case adds its shape flags.
BENCH=("$BUILD/tokenfab" bench-engine --device cuda --model "$MODEL" --dummy-weights --no-ceilings
  --no-warmup --score-len 0 --repeats 1 --decode-steps 1 --kv-cache-gb 8)

profile() {  # name, which forward (last | longest | longest_warm | after_longest), then flags
  local name=$1 pick=$2; shift 2
  TOKENFAB_NO_GRAPHS=1 ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
    "${BENCH[@]}" "$@" \
    >"$OUT/prof_$name.csv" 2>"$OUT/prof_$name.log"
  python3 - "$OUT/prof_$name.csv" "$name" "$pick" <<'PY'
import csv, collections, re, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head = rows[0]; rows = rows[1:]
ki, vi = head.index("Kernel Name"), head.index("Metric Value")
names = [r[ki] for r in rows]
times = [float(r[vi].replace(",", "")) for r in rows]
# Forwards start at embedding launches; take the last one, or the longest.
starts = [i for i, n in enumerate(names) if "EmbeddingKernel" in n] or [0]
bounds = list(zip(starts, starts[1:] + [len(names)]))
spans = [sum(times[b[0]:b[1]]) for b in bounds]
if sys.argv[3] == "longest":
    first, last = bounds[spans.index(max(spans))]
elif sys.argv[3] == "longest_warm":  # not the first forward, whose GEMMs time their candidates
    rest = spans[1:] or spans
    first, last = bounds[spans.index(max(rest), 1 if len(spans) > 1 else 0)]
elif sys.argv[3] == "after_longest":  # a prefill after its (longer) cached prefix
    i = len(spans) - 1 - spans[::-1].index(max(spans))
    first, last = bounds[min(i + 1, len(bounds) - 1)]
else:
    first, last = bounds[-1]
agg = collections.OrderedDict()
for n, t in zip(names[first:last], times[first:last]):
    short = re.sub(r"\(.*", "", n)
    short = re.sub(r"^void ", "", short)
    short = re.sub(r"tokenfab::cuda::(\(anonymous namespace\)|<unnamed>)::", "", short)[:60]
    c, s = agg.get(short, (0, 0.0))
    agg[short] = (c + 1, s + t)
total = sum(s for c, s in agg.values())
print(f"== {sys.argv[2]}: last forward {total / 1e3:.1f} us in {sum(c for c, s in agg.values())} kernels")
for k, (c, s) in sorted(agg.items(), key=lambda kv: -kv[1][1])[:14]:
    print(f"  {s / 1e3:9.1f} us {100 * s / total:5.1f}%  x{c:<4d} {k}")
PY
}

# Why one kernel is slow: two of its launches under ncu's hardware counters (launch and
# occupancy limits, speed of light, warp stall reasons, memory workload).
kernel_metrics() {  # name, kernel-name regex, then bench-engine flags
  local name=$1 kernel=$2; shift 2
  TOKENFAB_NO_GRAPHS=1 ncu --clock-control none -k "regex:$kernel" --launch-skip 4 --launch-count 2 \
    --section LaunchStats --section Occupancy --section SpeedOfLight --section WarpStateStats \
    --section MemoryWorkloadAnalysis --csv --print-units base \
    "${BENCH[@]}" "$@" \
    >"$OUT/metrics_$name.csv" 2>"$OUT/metrics_$name.log"
  python3 - "$OUT/metrics_$name.csv" "$name" <<'PY'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
if not rows:
    sys.exit(print(f"== {sys.argv[2]}: no kernel matched"))
head = rows[0]
ni, vi, ki = head.index("Metric Name"), head.index("Metric Value"), head.index("Kernel Name")
ii = head.index("ID")
print(f"== {sys.argv[2]}: {rows[1][ki][:80]} (all launches in the CSV)")
for r in rows[1:]:
    if r[ii] == rows[1][ii]:  # the first launch
        print(f"  {r[ni]:60s} {r[vi]}")
PY
}

# Why each kernel of a batch-1 decode step takes its time: a line per launch with its duration,
# DRAM throughput, grid, how long the SMs held a block against the kernel's span (ncu's SM active
# cycles are a mean over all SMs: with fewer blocks than SMs, a busy SM's share is that mean x
# SMs / blocks) and the top warp stall reasons (cycles per issued instruction). The kernels of
# the prefill before the decode steps are left out by name (the GEMVs and the small-batch MoE
# kernels run at one or two rows only; RMSNorm and PrepareQkv, which the prefill shares, are not
# listed) and by skipping the first launches (the prefill's lm_head GEMV among them).
decode_counters() {  # name, kernel-name regex, launches to skip, launches
  local name=$1 kernel=$2 skip=$3 count=$4
  TOKENFAB_NO_GRAPHS=1 ncu --clock-control none -k "regex:$kernel" --launch-skip "$skip" \
    --launch-count "$count" --section LaunchStats --section SpeedOfLight --section SchedulerStats \
    --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio' --csv \
    --print-units base "${BENCH[@]}" --prompt-lens 16 --batch-sizes 1 --context-lens 600 --max-batch-tokens 1024 \
    >"$OUT/counters_$name.csv" 2>"$OUT/counters_$name.log"
  python3 - "$OUT/counters_$name.csv" "$name" <<'PY'
import collections, csv, re, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
if not rows:
    sys.exit(print(f"== {sys.argv[2]}: no kernel matched"))
head = rows[0]
ni, vi, ki, ii = (head.index(k) for k in ("Metric Name", "Metric Value", "Kernel Name", "ID"))
launches = collections.OrderedDict()
for r in rows[1:]:
    launches.setdefault((r[ii], r[ki]), {})[r[ni]] = r[vi]
print(f"== {sys.argv[2]}: us, DRAM %, grid, SM-active / elapsed cycles, top stalls")
for (_, kernel), m in launches.items():
    num = lambda k: float(m.get(k, "0").replace(",", ""))
    stalls = {k[len("smsp__average_warps_issue_stalled_"):-len("_per_issue_active.ratio")]: num(k)
              for k in m if k.startswith("smsp__average_warps_issue_stalled_")}
    top = ", ".join(f"{k} {v:.1f}" for k, v in sorted(stalls.items(), key=lambda kv: -kv[1])[:3])
    short = re.sub(r"^.*::", "", re.sub(r"\(.*", "", kernel))[:34]
    print(f"  {short:34s} {num('Duration') / 1e3:7.1f} {num('DRAM Throughput'):5.1f} "
          f"{num('Grid Size'):6.0f} {num('SM Active Cycles'):8.0f} / {num('Elapsed Cycles'):<8.0f} {top}")
PY
}

# Which phase of one kernel's loop its issue slots and stalls go to: a launch under ncu's full
# set with source counters, its SASS source page, split into regions by sass_regions.py.
kernel_sass() {  # name, kernel-name regex, then bench-engine flags
  local name=$1 kernel=$2; shift 2
  TOKENFAB_NO_GRAPHS=1 ncu --clock-control none -k "regex:$kernel" --launch-skip 40 --launch-count 1 \
    --set full --import-source yes -o "$OUT/sass_$name" -f \
    "${BENCH[@]}" "$@" \
    >"$OUT/sass_$name.log" 2>&1
  ncu -i "$OUT/sass_$name.ncu-rep" --page source --csv --print-source sass >"$OUT/sass_$name.csv"
  ncu -i "$OUT/sass_$name.ncu-rep" --page details --csv >"$OUT/details_$name.csv"
  rm -f "$OUT/sass_$name.ncu-rep"
  echo "== $name"
  python3 tools/device/sass_regions.py "$OUT/sass_$name.csv" --json "$OUT/regions_$name.json"
}

CASES=${CASES:-"decode_b1 decode_b64 prefill_4096"}
for c in $CASES; do
  case $c in
    decode_b1) profile decode_b1 last --prompt-lens 16 --batch-sizes 1 --context-lens 600 \
                 --max-batch-tokens 1024 ;;
    decode_b8) profile decode_b8 last --prompt-lens 16 --batch-sizes 8 --context-lens 600 \
                 --max-batch-tokens 4096 ;;
    decode_b64) profile decode_b64 last --prompt-lens 16 --batch-sizes 64 --context-lens 600 \
                  --max-batch-tokens 8192 --kv-cache-gb 12 ;;
    prefill_4096) profile prefill_4096 longest_warm --prompt-lens 4096 --batch-sizes 1 \
                    --context-lens 16 --max-batch-tokens 8192 ;;
    extend_156) profile extend_156 after_longest --prompt-lens 156 --prefix-lens 1224 \
                  --batch-sizes 1 --context-lens 16 --max-batch-tokens 2048 ;;
    prefill_156) profile prefill_156 longest --prompt-lens 156 --batch-sizes 1 \
                   --context-lens 16 --max-batch-tokens 2048 ;;
    prefill_attention_metrics)
      kernel_metrics prefill_attention FlashPrefill --prompt-lens 4096 --batch-sizes 1 \
        --context-lens 16 --max-batch-tokens 8192 ;;
    prefill_attention_sass)
      kernel_sass prefill_attention FlashPrefill --prompt-lens 4096 --batch-sizes 1 \
        --context-lens 16 --max-batch-tokens 8192 ;;
    decode_b1_counters)
      decode_counters decode_b1 '^(RouterKernel|GateUpKernel|DownKernel|AttentionDecodeMma|GemvKernel)' \
        6 12 ;;
    decode_attention_metrics)
      kernel_metrics decode_attention AttentionDecode --prompt-lens 16 --batch-sizes 64 \
        --context-lens 600 --max-batch-tokens 8192 --kv-cache-gb 12 ;;
  esac
done
