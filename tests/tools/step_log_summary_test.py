#!/usr/bin/env python3
"""tools/serving/step_log_summary.py on a made-up step log: steps grouped by kind, decode-only
runs (the waves), slow steps, and the window a tokenfab bench JSON gives."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "serving", "step_log_summary.py")
sys.path.insert(0, os.path.dirname(TOOL))
import step_log_summary  # noqa: E402


def step(t, seconds, decodes, prompt_tokens, running):
    return {"t": t, "seconds": seconds, "forward_seconds": seconds * 0.9, "decodes": decodes,
            "prompt_chunks": 1 if prompt_tokens else 0, "prompt_tokens": prompt_tokens,
            "context_tokens": 0, "admitted": 0, "preempted": 0, "running": running,
            "waiting": 0, "kv_blocks_used": 0}


def waves():
    """Two waves: a prompt-only step, two mixed steps, five decode-only steps (one slow)."""
    steps, t = [], 100.0
    for _ in range(2):
        for seconds, d, p in [(0.05, 0, 2000), (0.05, 2, 1000), (0.05, 4, 500)] + \
                [(0.01, 4, 0)] * 4 + [(0.05, 4, 0)]:
            t += seconds
            steps.append(step(t, seconds, d, p, 4))
    return steps


class StepLogSummaryTest(unittest.TestCase):
    def test_kinds_runs_and_slow_steps(self):
        r = step_log_summary.summarise(waves())
        self.assertEqual(r["steps"], 16)
        self.assertEqual(r["prompt_tokens"], 2 * 3500)
        self.assertEqual(r["decode_tokens"], 2 * (2 + 4 + 5 * 4))
        k = r["kinds"]
        self.assertEqual((k["prompt-only"]["steps"], k["mixed"]["steps"],
                          k["decode-only"]["steps"]), (2, 4, 10))
        self.assertAlmostEqual(k["mixed"]["mean_prompt_tokens"], 750)
        self.assertAlmostEqual(k["decode-only"]["median_step_ms"], 10)
        self.assertEqual(k["decode-only"]["slow_steps"], 2)  # the 50 ms ones, over twice 10
        self.assertAlmostEqual(k["decode-only"]["slow_excess_seconds"], 2 * 0.04)
        self.assertAlmostEqual(k["decode-only"]["mean_forward_ms"], 0.9 * 1e3 * 0.18 / 10)
        self.assertEqual(r["decode_only_runs"], {"count": 2, "longest": 5, "mean": 5})

    def test_the_bench_window_keeps_only_its_steps(self):
        steps = waves()
        with tempfile.TemporaryDirectory() as d:
            log = os.path.join(d, "steps.jsonl")
            with open(log, "w") as f:
                f.writelines(json.dumps(s) + "\n" for s in steps)
            bench = os.path.join(d, "bench.json")
            # The second wave only: it starts after the first wave's last step ended.
            start = steps[7]["t"] + 1e-3
            with open(bench, "w") as f:
                json.dump({"runs": [{"started_unix_s": start, "duration_s": 10.0}]}, f)
            out = os.path.join(d, "summary.json")
            html = os.path.join(d, "steps.html")
            subprocess.run([sys.executable, TOOL, log, "--bench-json", bench, "--json", out,
                            "--html", html], check=True, capture_output=True)
            with open(out) as f:
                self.assertEqual(json.load(f)["steps"], 8)
            with open(html) as f:
                page = f.read()
            self.assertEqual(page.count("<svg"), 3)
            self.assertEqual(page.count("<polyline"), 4)  # running, decodes, prompt tokens, ms
            self.assertNotIn("<script", page)
            with open(bench, "w") as f:
                json.dump({"runs": [{"duration_s": 10.0}]}, f)  # an older bench: no window
            p = subprocess.run([sys.executable, TOOL, log, "--bench-json", bench],
                               capture_output=True, text=True)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("no started_unix_s", p.stderr)


if __name__ == "__main__":
    unittest.main()
