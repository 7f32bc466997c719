#!/usr/bin/env python3
"""tools/device/timeline_report.py on a made-up kernel timeline: what each kernel adds to a
forward when the next one was launched early (PDL) or after a gap, and which forwards the
selection flags keep."""
import csv
import os
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "device"))
import timeline_report  # noqa: E402

NS = "tokenfab::cuda::(anonymous namespace)::"
EMBED = NS + "EmbeddingKernel<float>(tokenfab::cuda::EmbeddingParams)"
GEMV = "void " + NS + "GemvKernel<1; 0; 0>(tokenfab::cuda::GemvParams; int)"


def write(rows):
    f = tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False)
    w = csv.writer(f)
    w.writerow(["start_ns", "end_ns", "graph_id", "grid", "block", "name"])
    for start, end, name in rows:
        w.writerow([start, end, 0, 1, 128, name])
    f.close()
    return f.name


def forward(t0, gemv_start, gemv_end, extra=()):
    """An embedding at t0 (1 us), a GEMV, then any extra kernels."""
    return [(t0, t0 + 1000, EMBED), (t0 + gemv_start, t0 + gemv_end, GEMV)] + \
        [(t0 + a, t0 + b, n) for a, b, n in extra]


class TimelineReportTest(unittest.TestCase):
    def load(self, rows):
        path = write(rows)
        self.addCleanup(os.remove, path)
        return timeline_report.forwards(timeline_report.load(path))

    def test_early_launch_is_charged_past_its_predecessor_and_gaps_apart(self):
        # The GEMV starts at 0.5 us (launched early, waiting) and ends at 3 us; after a 1 us gap
        # a third kernel runs 4-5 us.
        fwds = self.load(forward(0, 500, 3000, [(4000, 5000, "Tail")]))
        span, gap, added = timeline_report.attribute(fwds[0])
        self.assertEqual(span, 5000)
        self.assertEqual(gap, 1000)
        self.assertEqual(added["EmbeddingKernel<float>"], (1, 1000))
        self.assertEqual(added["GemvKernel<1; 0; 0>"], (1, 2000))
        self.assertEqual(added["Tail"], (1, 1000))
        self.assertEqual(sum(t for _, t in added.values()) + gap, span)

    def test_last_forwards_and_their_period(self):
        rows = []
        for i in range(4):
            rows += forward(10_000 * i, 1000, 3000 + 1000 * i)
        fwds = self.load(rows)
        picked, periods, considered = timeline_report.pick(fwds, last=2)
        s = timeline_report.summarise(picked, periods, considered)
        self.assertEqual(s["forwards_seen"], 4)
        self.assertEqual(s["span_us_each"], [5.0, 6.0])
        self.assertEqual(s["period_us_median"], 10.0)
        self.assertAlmostEqual(s["added_by_kernel"][0]["added_us"], 4.5)  # the GEMVs, 4 and 5 us

    def test_longest_skips_forwards_that_mostly_wait(self):
        rows = forward(0, 1000, 2000, [(50_000, 51_000, "Tuned")])  # 49 us of 51 idle
        rows += forward(100_000, 1000, 9000)
        rows += forward(200_000, 1000, 4000)
        fwds = self.load(rows)
        picked, periods, _ = timeline_report.pick(fwds, longest=1)
        self.assertEqual(periods, [])
        self.assertEqual(picked[0][0][0], 100_000)

    def test_with_keeps_forwards_running_every_named_kernel(self):
        rows = forward(0, 1000, 2000,
                       [(2000, 3000, "AttentionDecodeMma"), (3000, 4000, "FlashPrefill")])
        rows += forward(10_000, 1000, 2000, [(2000, 3000, "AttentionDecodeMma")])
        fwds = self.load(rows)
        picked, periods, considered = timeline_report.pick(
            fwds, last=5, with_kernels=["AttentionDecode", "FlashPrefill"])
        self.assertEqual(len(considered), 1)
        self.assertEqual(picked[0][0][0], 0)
        self.assertEqual(periods, [])
        with self.assertRaises(SystemExit):
            timeline_report.pick(fwds, with_kernels=["Nothing"])


if __name__ == "__main__":
    unittest.main()
