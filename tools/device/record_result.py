#!/usr/bin/env python3
"""Wraps a bench-engine JSON result as bench/results/ records it: the device (nvidia-smi's name
and driver, or "unknown" without a GPU), the commit, the command and the result.

  python3 tools/device/record_result.py RAW.json OUT.json COMMIT "COMMAND"
"""
import json
import subprocess
import sys


def device():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True)
        return out.stdout.strip() or "unknown"
    except FileNotFoundError:
        return "unknown"


raw, out, commit, command = sys.argv[1:]
json.dump({"device": device(), "commit": commit, "command": command,
           "result": json.load(open(raw))}, open(out, "w"), indent=1)
