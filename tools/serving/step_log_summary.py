#!/usr/bin/env python3
"""Summarises a `tokenfab serve --step-log FILE` log: how the load became batches.

Steps are grouped by kind: decode-only (every chunk one token), mixed (decodes beside prompt
chunks) and prompt-only. For each kind: the steps, their share of the busy time, their mean
decodes, prompt tokens and time. A closed loop whose requests all start and end together runs
in waves (prompt-only steps, then a long run of decode-only steps); spread arrivals give mixed
steps, whose decodes ride in GEMMs the prompt tokens already make compute-bound.

  python3 tools/serving/step_log_summary.py STEPS.jsonl [--bench-json B.json | --from-t S --to-t S]
                                                       [--json OUT] [--html OUT]

--bench-json keeps the steps of a `tokenfab bench` run (its measured window, after the warm-up:
started_unix_s + duration_s of its first run); --from-t / --to-t give a window in Unix seconds
(`date +%s.%N`). Either takes one benchmark point of a server that ran several.
"""
import argparse
import json
import os
import sys


def kind(step):
    if step["prompt_tokens"] == 0:
        return "decode-only"
    return "mixed" if step["decodes"] > 0 else "prompt-only"


def summarise(steps):
    busy = sum(s["seconds"] for s in steps)
    out = {"steps": len(steps), "busy_seconds": busy,
           "span_seconds": steps[-1]["t"] - steps[0]["t"] + steps[0]["seconds"] if steps else 0,
           "decode_tokens": sum(s["decodes"] for s in steps),
           "prompt_tokens": sum(s["prompt_tokens"] for s in steps),
           "preempted": sum(s["preempted"] for s in steps), "kinds": {}}
    for k in ("decode-only", "mixed", "prompt-only"):
        group = [s for s in steps if kind(s) == k]
        if not group:
            continue
        n = len(group)
        secs = sum(s["seconds"] for s in group)
        median = sorted(s["seconds"] for s in group)[n // 2]
        # Steps over twice their kind's median: first uses (a GEMM bucket timed, a graph
        # captured) and other stalls.
        slow = [s for s in group if s["seconds"] > 2 * median]
        out["kinds"][k] = {
            "steps": n, "seconds": secs, "share_of_busy": secs / busy if busy else 0,
            "mean_decodes": sum(s["decodes"] for s in group) / n,
            "mean_prompt_tokens": sum(s["prompt_tokens"] for s in group) / n,
            "mean_running": sum(s["running"] for s in group) / n,
            "mean_step_ms": 1e3 * secs / n,
            "mean_forward_ms": 1e3 * sum(s.get("forward_seconds", 0) for s in group) / n,
            "median_step_ms": 1e3 * median,
            "slow_steps": len(slow),
            "slow_excess_seconds": sum(s["seconds"] - median for s in slow),
        }
    # Waves: the longest run of consecutive decode-only steps, and how many such runs there are.
    runs, current = [], 0
    for s in steps:
        if kind(s) == "decode-only":
            current += 1
        elif current:
            runs.append(current)
            current = 0
    if current:
        runs.append(current)
    out["decode_only_runs"] = {"count": len(runs), "longest": max(runs, default=0),
                               "mean": sum(runs) / len(runs) if runs else 0}
    return out


def timeline_html(steps, title):
    """A self-contained page (inline SVG, no script): over the run's time, the sequences running
    and decoding per step, the prompt tokens per step, and each step's milliseconds."""
    t0 = steps[0]["t"] - steps[0]["seconds"]
    span = max(steps[-1]["t"] - t0, 1e-9)
    width, height, pad = 900, 160, 40

    def panel(label, series, y_max, colors):
        rows = [f'<svg width="{width + 2 * pad}" height="{height + 2 * pad}" '
                f'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="12">',
                f'<text x="{pad}" y="16">{label} (max {y_max:g})</text>',
                f'<rect x="{pad}" y="{pad}" width="{width}" height="{height}" fill="none" '
                f'stroke="#999"/>']
        for (name, values), color in zip(series, colors):
            points = " ".join(
                f"{pad + width * (s['t'] - t0) / span:.1f},"
                f"{pad + height * (1 - v / y_max if y_max else 1):.1f}"
                for s, v in zip(steps, values))
            rows.append(f'<polyline fill="none" stroke="{color}" stroke-width="1" '
                        f'points="{points}"/>')
            rows.append(f'<text x="{pad + width - 160}" y="{pad - 6 - 14 * colors.index(color)}" '
                        f'fill="{color}">{name}</text>')
        rows.append(f'<text x="{pad}" y="{pad + height + 16}">0 s</text>'
                    f'<text x="{pad + width - 40}" y="{pad + height + 16}">{span:.2f} s</text>')
        rows.append("</svg>")
        return "\n".join(rows)

    running = [s["running"] for s in steps]
    decodes = [s["decodes"] for s in steps]
    prompt = [s["prompt_tokens"] for s in steps]
    ms = [1e3 * s["seconds"] for s in steps]
    body = [panel("sequences per step", [("running", running), ("decodes", decodes)],
                  max(running + decodes + [1]), ["#1f77b4", "#ff7f0e"]),
            panel("prompt tokens per step", [("prompt tokens", prompt)], max(prompt + [1]),
                  ["#2ca02c"]),
            panel("step time, ms", [("ms", ms)], max(ms + [1e-3]), ["#d62728"])]
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + title +
            "</title></head><body><h1>" + title + "</h1>\n" + "\n".join(body) +
            "\n</body></html>\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("log")
    ap.add_argument("--from-t", type=float, default=float("-inf"))
    ap.add_argument("--to-t", type=float, default=float("inf"))
    ap.add_argument("--bench-json", help="keep the measured window of this tokenfab bench JSON")
    ap.add_argument("--json", help="also write the summary here")
    ap.add_argument("--html", help="also write a timeline of the steps here (inline SVG)")
    a = ap.parse_args()
    if a.bench_json:
        run = json.load(open(a.bench_json))["runs"][0]
        if not run.get("started_unix_s"):
            sys.exit(f"{a.bench_json}: no started_unix_s (a bench binary older than the step log)")
        a.from_t = run["started_unix_s"]
        a.to_t = a.from_t + run["duration_s"]
    steps = []
    with open(a.log) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                s = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{a.log}:{number}: not JSON ({e})")
            if a.from_t <= s["t"] <= a.to_t:
                steps.append(s)
    if not steps:
        sys.exit(f"{a.log}: no steps in the window")
    r = summarise(steps)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=1)
    if a.html:
        with open(a.html, "w") as f:
            f.write(timeline_html(steps, "engine steps: " + os.path.basename(a.log)))
    span = r["span_seconds"]
    print(f"{r['steps']} steps over {span:.2f} s ({r['busy_seconds'] / span:.0%} busy), "
          f"{r['decode_tokens']} decode and {r['prompt_tokens']} prompt tokens, "
          f"{r['preempted']} preempted")
    print(f"{'kind':12} {'steps':>6} {'time':>6} {'decodes':>8} {'prompt':>7} {'running':>8} "
          f"{'ms/step':>8} {'forward':>8} {'median':>7} {'slow':>5} {'slow ms':>8}")
    for k, g in r["kinds"].items():
        print(f"{k:12} {g['steps']:6d} {g['share_of_busy']:6.0%} {g['mean_decodes']:8.1f} "
              f"{g['mean_prompt_tokens']:7.1f} {g['mean_running']:8.1f} {g['mean_step_ms']:8.2f} "
              f"{g['mean_forward_ms']:8.2f} "
              f"{g['median_step_ms']:7.2f} {g['slow_steps']:5d} {1e3 * g['slow_excess_seconds']:8.1f}")
    w = r["decode_only_runs"]
    print(f"decode-only runs: {w['count']}, longest {w['longest']} steps, mean {w['mean']:.1f}")


if __name__ == "__main__":
    main()
