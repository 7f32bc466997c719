#!/usr/bin/env python3
"""Predicts a closed-loop serving run's output tokens/s from a per-step cost model, for
scheduler settings (the per-step token budget, the cap on prompt tokens beside decodes).

The engine's scheduler is mimicked: each step runs every decoding sequence (one token each)
first, then prompt tokens in arrival order up to the budget (and up to the cap when decodes
run). Each client sends a new request when its previous one finishes. As `tokenfab bench`
measures it, every client starts at once and the run ends after --requests requests.

Step cost in ms, d decodes and p prompt tokens:
  p = 0:  decode_base + decode_per_seq * d
  p > 0:  max(that, prefill_base + gemm_per_token * (p + d) + attention_per_seq * d)
Defaults are fitted to the H100 (Llama-3.1-8B, bench/results of 2026-12-07: decode-only steps
of 16 and 64 sequences 6.9 and 8.5 ms, 64 decodes + 256 prompt tokens 12.1-12.4 ms with a
well-timed GEMM choice, 55 decodes + 1993 prompt tokens 51 ms in the server). With them it
predicts 4.58k tok/s at c=64 without a cap where the warmed-up server gave 4.44k; a cap of 256
1.03x over 256 requests, where the server gave 0.90x: its mixed steps then cost 13.9 ms against
the model's 11.5 (a GEMM choice timed at another row count of the bucket).

  python3 tools/model/closed_loop_steps.py [--clients 64 --prompt 518 --output 128 --requests 256]
"""
import argparse


def step_ms(d, p, c):
    decode = c.decode_base_ms + c.decode_per_seq_ms * d
    if p == 0:
        return decode
    return max(decode, c.prefill_base_ms + c.gemm_us_per_token * 1e-3 * (p + d)
               + c.attention_us_per_seq * 1e-3 * d)


def run(cap, c):
    """Output tokens/s of --requests requests, every client starting at once."""
    clients = [["prefill", c.prompt] for _ in range(c.clients)]
    sent, done, t = c.clients, 0, 0.0
    while done < c.requests:
        decoding = [x for x in clients if x[0] == "decode"]
        room = c.budget - len(decoding)
        if decoding and cap > 0:
            room = min(room, cap)
        prompt_tokens, finished_prompts = 0, []
        for x in clients:
            if x[0] != "prefill" or room <= 0:
                continue
            take = min(x[1], room)
            x[1] -= take
            room -= take
            prompt_tokens += take
            if x[1] == 0:
                finished_prompts.append(x)
        t += step_ms(len(decoding), prompt_tokens, c)
        for x in decoding:
            x[1] -= 1
            if x[1] == 0:
                done += 1
                if sent < c.requests:
                    x[0], x[1] = "prefill", c.prompt  # the client's next request
                    sent += 1
                else:
                    x[0] = "idle"
        for x in finished_prompts:  # its first token comes with the last prompt chunk
            x[0], x[1] = "decode", c.output - 1
    return c.requests * c.output / (t * 1e-3)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--prompt", type=int, default=518)
    ap.add_argument("--output", type=int, default=128)
    ap.add_argument("--requests", type=int, default=256)
    ap.add_argument("--budget", type=int, default=2048)
    ap.add_argument("--decode-base-ms", type=float, default=6.4)
    ap.add_argument("--decode-per-seq-ms", type=float, default=0.033)
    ap.add_argument("--prefill-base-ms", type=float, default=3.5)
    ap.add_argument("--gemm-us-per-token", type=float, default=21.5)
    ap.add_argument("--attention-us-per-seq", type=float, default=25.0)
    c = ap.parse_args()
    base = run(0, c)
    print(f"budget {c.budget}, no cap: {base:.0f} tok/s")
    for cap in (128, 256, 384, 512, 768, 1024):
        r = run(cap, c)
        print(f"budget {c.budget}, at most {cap:4d} prompt tokens beside decodes: {r:.0f} tok/s"
              f" ({r / base:.2f}x)")


if __name__ == "__main__":
    main()
