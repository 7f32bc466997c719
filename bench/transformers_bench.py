#!/usr/bin/env python3
"""Hugging Face transformers side of bench/side_by_side.sh: prefill and decode speed of one HF
model directory on the GPU, measured the way tokenfab bench-engine measures them.

  python3 bench/transformers_bench.py MODEL_DIR OUT.json [--prompt-lens 512,4096]
      [--batch-sizes 1,16,64] [--context 512] [--decode-steps 128] [--repeats 3]

prefill: one forward over a single prompt of N tokens (logits of the last token only), best of
--repeats after a warm-up, in prompt tokens per second.
decode: B sequences prefilled to --context tokens, then --decode-steps steps of one token each
(greedy argmax on the GPU, transformers' default dynamic KV cache), in generated tokens per
second over the timed steps: the same loop model.generate runs, without its bookkeeping.
Attention is transformers' default (sdpa); weights and activations bf16. Progress goes to stderr.
"""
import argparse
import json
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def timed(fn):
    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - start


def prefill_tokens_per_s(model, vocab, n, repeats):
    ids = torch.randint(0, vocab, (1, n), device="cuda")

    def run():
        with torch.inference_mode():
            model(input_ids=ids, use_cache=True, logits_to_keep=1)

    run()  # warm-up: kernels, allocator
    best = min(timed(run) for _ in range(repeats))
    return {"prompt_tokens": n, "seconds": best, "tokens_per_s": n / best}


def decode_tokens_per_s(model, vocab, batch, context, steps, repeats):
    ids = torch.randint(0, vocab, (batch, context), device="cuda")
    best = None
    for _ in range(repeats):
        with torch.inference_mode():
            out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
            cache = out.past_key_values
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)

            def run():
                nonlocal nxt
                for _ in range(steps):
                    o = model(input_ids=nxt, past_key_values=cache, use_cache=True)
                    nxt = o.logits[:, -1].argmax(-1, keepdim=True)

            seconds = timed(run)
        best = seconds if best is None else min(best, seconds)
        del cache, out
        torch.cuda.empty_cache()
    return {"batch": batch, "context": context, "steps": steps, "step_seconds": best / steps,
            "tokens_per_s": batch * steps / best}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("output")
    ap.add_argument("--prompt-lens", default="512,4096")
    ap.add_argument("--batch-sizes", default="1,16,64")
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--decode-steps", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)

    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.bfloat16,
                                                 device_map="cuda")
    model.eval()
    load_s = time.perf_counter() - start
    vocab = model.config.vocab_size
    log(f"transformers {transformers.__version__}: loaded in {load_s:.1f} s, "
        f"attention {model.config._attn_implementation}")

    result = {"engine": "transformers", "version": transformers.__version__,
              "torch": torch.__version__, "attention": model.config._attn_implementation,
              "load_seconds": load_s, "prefill": [], "decode": []}
    for n in [int(x) for x in args.prompt_lens.split(",")]:
        r = prefill_tokens_per_s(model, vocab, n, args.repeats)
        log(f"prefill {n:5d} tokens: {r['tokens_per_s']:9.0f} tok/s")
        result["prefill"].append(r)
    for b in [int(x) for x in args.batch_sizes.split(",")]:
        r = decode_tokens_per_s(model, vocab, b, args.context, args.decode_steps, args.repeats)
        log(f"decode batch {b:3d} @ {args.context}: {r['tokens_per_s']:9.1f} tok/s")
        result["decode"].append(r)
    json.dump(result, open(args.output, "w"), indent=1)


if __name__ == "__main__":
    main()
