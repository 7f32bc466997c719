#!/usr/bin/env python3
"""Predicts a closed-loop serving run's output tokens/s from a per-step cost model, for
scheduler settings (the per-step token budget, the cap on prompt tokens beside decodes).

The engine's scheduler is mimicked: each step runs every decoding sequence (one token each)
first, then prompt tokens in arrival order up to the budget (and up to the cap when decodes
run). Each client sends a new request when its previous one finishes.

Step cost: max(weight-read floor, tokens x GEMM cost per token) + decodes x decode attention
per sequence. Defaults are fitted to H200 measurements of Llama-3.1-8B (bench/results of
2026-12-02: decode of 64 sequences at 600 context 6.6 ms, of which attention 1.76 ms; prefill of
512 tokens 13.6 ms). It predicted 5.0k tok/s at c=64 with the 2048 budget where the GPU gave 4.3k:
use its ratios between settings, not its absolute numbers. Its ratios were refuted too: it
predicted 1.26x at a cap of 256 and 1.09x at 512, the GPU gave 0.70x and 0.78x
(bench/results/2026-12-02_h200_sampling-and-prefill-cap_c265124.json), so its mixed-step costs
are wrong; fit them to a measured mixed step before trusting it again.

  python3 tools/model/closed_loop_steps.py [--clients 64 --prompt 512 --output 128]
"""
import argparse


def run(budget, cap, clients, prompt, output, weight_floor, gemm_per_token, attn_per_seq,
        steps=20000):
    clients_state = [["prefill", prompt] for _ in range(clients)]
    t = produced = 0.0
    t0 = p0 = 0.0
    for step in range(steps):
        if step == steps // 4:  # measure after the start-up transient
            t0, p0 = t, produced
        decoding = [c for c in clients_state if c[0] == "decode"]
        room = budget - len(decoding)
        if decoding and cap > 0:
            room = min(room, cap)
        tokens = len(decoding)
        done_prefill = []
        for c in clients_state:
            if c[0] != "prefill" or room <= 0:
                continue
            take = min(c[1], room)
            c[1] -= take
            room -= take
            tokens += take
            if c[1] == 0:
                done_prefill.append(c)
        t += max(weight_floor, tokens * gemm_per_token) + len(decoding) * attn_per_seq
        for c in decoding:
            c[1] -= 1
            produced += 1
            if c[1] == 0:
                c[0], c[1] = "prefill", prompt  # the client's next request
        for c in done_prefill:  # its first token comes with the last prompt chunk
            produced += 1
            c[0], c[1] = "decode", output - 1
    return (produced - p0) / (t - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--output", type=int, default=128)
    ap.add_argument("--budget", type=int, default=2048)
    ap.add_argument("--weight-floor-ms", type=float, default=4.87)
    ap.add_argument("--gemm-us-per-token", type=float, default=26.0)
    ap.add_argument("--attention-us-per-sequence", type=float, default=27.0)
    a = ap.parse_args()
    costs = (a.weight_floor_ms * 1e-3, a.gemm_us_per_token * 1e-6, a.attention_us_per_sequence * 1e-6)
    base = run(a.budget, 0, a.clients, a.prompt, a.output, *costs)
    print(f"budget {a.budget}, no cap: {base:.0f} tok/s")
    for cap in (128, 256, 384, 512, 768, 1024):
        r = run(a.budget, cap, a.clients, a.prompt, a.output, *costs)
        print(f"budget {a.budget}, at most {cap:4d} prompt tokens beside decodes: {r:.0f} tok/s"
              f" ({r / base:.2f}x)")


if __name__ == "__main__":
    main()
