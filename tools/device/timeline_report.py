#!/usr/bin/env python3
"""Where the wall time of a forward goes, from kernel_timeline.cc's CSV.

    python3 tools/device/timeline_report.py TIMELINE.csv [--last N | --longest N] [--with NAME]
        [--json OUT.json]

Forwards start at each embedding kernel. Of the last N forwards (default 5) it reports the
median span (first kernel's start to last kernel's end), the time no kernel ran inside it
(gaps: the host, launches not yet issued), the start-to-start period (the span plus the host's
time between forwards) and, per kernel kind, the time it adds to the forward: a
kernel's end minus the later of its own start and the previous kernel's end. On one stream
those contributions sum to the span, so a kernel launched early by programmatic dependent
launch is charged only for the time it runs past its predecessor, and a gap goes to the gap
line, not to the next kernel. --longest N takes the N longest forwards in which kernels ran at
least 90% of the span instead (the prefills of a run that also decodes; forwards whose GEMMs
first time their cuBLASLt candidates wait on the host for most of theirs). --with NAME keeps
only the forwards that run a kernel whose name contains NAME (repeatable: a mixed step runs
both the decode and the prefill attention kernels).
"""
import argparse
import collections
import csv
import json
import re
import statistics


def short_name(name):
    name = re.sub(r"^void ", "", name)
    name = re.sub(r"tokenfab::cuda::(\(anonymous namespace\)|<unnamed>)::", "", name)
    name = re.sub(r"\(.*", "", name)
    return name[:60]


def load(path):
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f):
            rows.append((int(r["start_ns"]), int(r["end_ns"]), short_name(r["name"])))
    rows.sort()
    return rows


def forwards(rows):
    starts = [i for i, r in enumerate(rows) if r[2].startswith("EmbeddingKernel")] or [0]
    return [rows[a:b] for a, b in zip(starts, starts[1:] + [len(rows)])]


def attribute(fwd):
    """(span, gap, {kind: (count, added ns)}) of one forward."""
    added = collections.OrderedDict()
    gap = 0
    prev_end = fwd[0][0]
    for start, end, name in fwd:
        if start > prev_end:
            gap += start - prev_end
        c, t = added.get(name, (0, 0))
        added[name] = (c + 1, t + max(0, end - max(start, prev_end)))
        prev_end = max(prev_end, end)
    return prev_end - fwd[0][0], gap, added


def pick(fwds, last=5, longest=None, with_kernels=()):
    """(forwards to summarise, start-to-start periods in ns, forwards considered)."""
    if with_kernels:
        fwds = [f for f in fwds if all(any(w in k[2] for k in f) for w in with_kernels)]
        if not fwds:
            raise SystemExit(f"no forward runs all of {list(with_kernels)}")
    if longest:
        busy = [f for f in fwds if attribute(f)[1] <= 0.1 * attribute(f)[0]] or fwds
        return sorted(busy, key=lambda f: f[-1][1] - f[0][0])[-longest:], [], fwds
    # Start to start: the span plus the time before the next forward's first kernel (not
    # meaningful when --with skipped forwards in between).
    tail = [f[0][0] for f in fwds[-last - 1:]]
    periods = [] if with_kernels else [b - a for a, b in zip(tail, tail[1:])]
    return fwds[-last:], periods, fwds


def summarise(picked, periods, considered, label=""):
    results = [attribute(f) for f in picked]
    spans = [r[0] for r in results]
    gaps = [r[1] for r in results]
    kinds = collections.OrderedDict()
    for _, _, added in results:
        for k, (c, t) in added.items():
            kinds.setdefault(k, []).append((c, t))
    n = len(results)
    table = []
    for k, v in kinds.items():
        table.append({"kernel": k, "launches": v[0][0], "added_us": sum(t for _, t in v) / n / 1e3})
    table.sort(key=lambda x: -x["added_us"])
    return {
        "label": label,
        "forwards_seen": len(considered),
        "forwards_summarised": n,
        "span_us_median": statistics.median(spans) / 1e3,
        "span_us_each": [s / 1e3 for s in spans],
        "gap_us_median": statistics.median(gaps) / 1e3,
        "period_us_median": statistics.median(periods) / 1e3 if periods else None,
        "kernels_per_forward": len(picked[-1]),
        "added_by_kernel": table,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--last", type=int, default=5, help="forwards at the end to summarise")
    ap.add_argument("--longest", type=int, help="summarise the N longest busy forwards")
    ap.add_argument("--with", dest="with_kernels", action="append", default=[],
                    help="only forwards that run a kernel whose name contains this (repeatable)")
    ap.add_argument("--label", default="")
    ap.add_argument("--json", help="also write the summary here")
    args = ap.parse_args()
    picked, periods, considered = pick(forwards(load(args.csv)), args.last, args.longest,
                                       args.with_kernels)
    summary = summarise(picked, periods, considered, args.label)
    span_us = summary["span_us_median"]
    period = f"{summary['period_us_median']:.1f} us" if periods else "n/a"
    print(f"== {args.label}: {summary['forwards_summarised']} of {summary['forwards_seen']} "
          f"forwards, span {span_us:.1f} us median "
          f"({', '.join(f'{s:.0f}' for s in summary['span_us_each'])}), no kernel running "
          f"{summary['gap_us_median']:.1f} us, {summary['kernels_per_forward']} kernels, "
          f"start to start {period}")
    for row in summary["added_by_kernel"][:14]:
        print(f"  {row['added_us']:9.1f} us {100 * row['added_us'] / span_us:5.1f}%  "
              f"x{row['launches']:<4d} {row['kernel']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
