#!/usr/bin/env python3
"""Where a kernel's issue slots and stalls go, region by region of its SASS.

Reads the source page of an Nsight Compute report exported as CSV with SASS
(`ncu -i REPORT --page source --csv --print-source sass > FILE.csv`; the report needs
`--set full` or the SourceCounters section) and splits the instructions at landmarks that end
a phase of a tiled kernel: block barriers (BAR.SYNC), tensor-core waits (WARPGROUP.DEPBAR),
mbarrier waits (SYNCS.PHASECHK) and cp.async waits (DEPBAR, LDGDEPBAR). For each region it
prints the instructions a warp executes per pass of its main loop (per key tile, in an
attention kernel), the share of warp stall samples, the top stall reasons and the commonest
opcodes, so that a change's effect on one phase (the copies, the softmax) can be read off.

    python3 tools/device/sass_regions.py FILE.csv [--min-share 1.0] [--json OUT.json]
"""
import argparse
import collections
import csv
import json
import re
import sys

LANDMARKS = re.compile(r"\b(BAR\.SYNC|WARPGROUP\.DEPBAR|SYNCS\.PHASECHK|LDGDEPBAR|DEPBAR)\b")
# Landmarks executed once a pass (an mbarrier wait retries in a loop: it counts spins).
ONCE_A_PASS = re.compile(r"\b(BAR\.SYNC|WARPGROUP\.DEPBAR)\b")


def load(path):
    rows = list(csv.reader(open(path)))
    # The first row names the kernel; the header follows.
    start = next(i for i, r in enumerate(rows) if r and r[0] == "Address")
    head = rows[start]
    col = {name: i for i, name in enumerate(head)}
    for needed in ("Source", "Warp Stall Sampling (All Samples)", "Instructions Executed"):
        if needed not in col:
            sys.exit(f"{path}: no '{needed}' column (export the source page with --print-source sass)")
    stalls = [h for h in head if h.startswith("stall_") and "Not Issued" not in h]
    num = lambda r, k: int((r[col[k]] or "0").replace(",", ""))
    out = []
    for r in rows[start + 1:]:
        if len(r) < len(head):
            continue
        out.append({
            "address": r[col["Address"]],
            "sass": r[col["Source"]].strip(),
            "samples": num(r, "Warp Stall Sampling (All Samples)"),
            "executed": num(r, "Instructions Executed"),
            "stalls": {s[len("stall_"):]: num(r, s) for s in stalls},
        })
    kernel = rows[0][1] if len(rows[0]) > 1 else "?"
    return kernel, out


def mnemonic(sass):
    """The instruction without its predicate guard or operands (@!P3 LDGSTS.E [..] -> LDGSTS.E)."""
    return re.sub(r"^@!?U?P[T0-9]+\s+", "", sass).split(" ")[0]


def opcode(sass):
    """The mnemonic without its modifiers (LDGSTS.E.BYPASS.128 -> LDGSTS)."""
    return mnemonic(sass).split(".")[0]


def regions(instrs):
    """Consecutive instructions up to and including each landmark. ncu charges a block
    barrier's wait to the instruction after BAR.SYNC, so that one closes the barrier's region."""
    out, cur, close_next = [], [], False
    for ins in instrs:
        cur.append(ins)
        if close_next or (LANDMARKS.search(ins["sass"]) and "BAR.SYNC" not in ins["sass"]):
            out.append(cur)
            cur, close_next = [], False
        elif "BAR.SYNC" in ins["sass"]:
            close_next = True
    if cur:
        out.append(cur)
    return out


def summarise(instrs, passes=None):
    total = sum(i["samples"] for i in instrs) or 1
    if not passes:
        # A pass of the loop: the most executed block barrier or tensor-core wait, else the
        # hottest landmark.
        steady = [i["executed"] for i in instrs if ONCE_A_PASS.search(i["sass"])]
        landmarks = steady or [i["executed"] for i in instrs if LANDMARKS.search(i["sass"])]
        passes = max(landmarks) if landmarks else max(i["executed"] for i in instrs)
    rows = []
    for reg in regions(instrs):
        samples = sum(i["samples"] for i in reg)
        stalls = collections.Counter()
        for i in reg:
            stalls.update(i["stalls"])
        rows.append({
            "first": reg[0]["address"],
            "last": reg[-1]["address"],
            "ends_with": mnemonic(reg[-1]["sass"]),
            "instructions_per_pass": sum(i["executed"] for i in reg) / passes,
            "sample_share": 100.0 * samples / total,
            "top_stalls": [(k, round(100.0 * v / max(samples, 1), 1))
                           for k, v in stalls.most_common(3) if v],
            "opcodes": collections.Counter(
                opcode(i["sass"]) for i in reg if i["executed"]).most_common(6),
        })
    return {"passes": passes, "total_samples": total, "regions": rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv")
    ap.add_argument("--min-share", type=float, default=1.0,
                    help="print regions with at least this %% of the stall samples")
    ap.add_argument("--passes", type=int, help="executions of one pass (default: see summarise)")
    ap.add_argument("--json", help="write every region here")
    a = ap.parse_args()
    kernel, instrs = load(a.csv)
    s = summarise(instrs, a.passes)
    print(f"{kernel[:100]}\n{len(instrs)} instructions, {s['total_samples']} stall samples, "
          f"{s['passes']} passes of the loop")
    print(f"{'region':>19s} {'instr/pass':>10s} {'samples':>8s}  ends with        top stalls / opcodes")
    for r in (r for r in s["regions"] if r["sample_share"] >= a.min_share):
        stalls = ", ".join(f"{k} {v}%" for k, v in r["top_stalls"])
        ops = " ".join(f"{k}x{v}" for k, v in r["opcodes"][:4])
        print(f"{r['first'][-6:]}..{r['last'][-6:]}  {r['instructions_per_pass']:10.1f} "
              f"{r['sample_share']:7.1f}%  {r['ends_with'][:15]:15s}  {stalls}  [{ops}]")
    if a.json:
        json.dump({"kernel": kernel, **s}, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
