# Usage: python3 tools/device/sampling_smoke.py PORT (a `tokenfab serve --served-model-name model` on PORT).
# Sampled requests on the CUDA server: seeded requests repeat alone (and how far they agree inside a busy batch),
# host-path rows (penalties, logit_bias) work beside device rows, and the device counted them.
import json, sys, threading, urllib.request
port = int(sys.argv[1])
base = f"http://127.0.0.1:{port}"
def post(body):
    req = urllib.request.Request(base + "/v1/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)
def metric(name):
    text = urllib.request.urlopen(base + "/metrics").read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None
seeded = {"model": "model", "prompt": "The quick brown fox", "max_tokens": 48, "temperature": 1.0,
          "top_p": 0.9, "seed": 7}
greedy = dict(seeded, temperature=0, seed=None)
res = {}
d0 = metric("tokenfab_engine_device_sampled_tokens_total")
a = post(seeded)["choices"][0]["text"]; b = post(seeded)["choices"][0]["text"]
res["seeded_repeat_alone"] = a == b
g_alone = post(greedy)["choices"][0]["text"]
# The host Sampler (top_logprobs sends a row there) must draw what the device Sample op drew
# from the same logits.
top3 = dict(seeded, top_p=1.0, top_k=3)
k_alone = post(top3)["choices"][0]["text"]
k_host = post(dict(top3, logprobs=1))["choices"][0]["text"]
res["seeded_top_k3_host_equals_device"] = k_host == k_alone
outs = {}
def worker(i):
    body = {"model": "model", "prompt": f"Request number {i} says", "max_tokens": 64,
            "temperature": 0.8, "top_k": 40}
    if i % 4 == 1: body["presence_penalty"] = 0.5
    if i % 4 == 2: body["logit_bias"] = {"1000": 5}
    if i % 4 == 3: body.update(temperature=1.0, top_p=0.95, min_p=0.05)
    outs[i] = post(body)["choices"][0]
threads = [threading.Thread(target=worker, args=(i,)) for i in range(15)]
for t in threads: t.start()
c = post(seeded)["choices"][0]["text"]; k_busy = post(top3)["choices"][0]["text"]
g_busy = post(greedy)["choices"][0]["text"]
for t in threads: t.join()
# Not an invariant: batched GEMMs round differently from a lone row's GEMVs, which can move a
# draw near a boundary (vLLM does not promise it either). How far the texts agree says whether
# the seed and step reach the row (a divergence at the first token would be a bug).
def agree(x, y):
    n = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
    return f"{n}/{len(y)} chars"
res["seeded_same_in_busy_batch"] = c == a
res["seeded_busy_agrees_for"] = agree(c, a)
res["seeded_top_k3_same_in_busy_batch"] = k_busy == k_alone
res["seeded_top_k3_busy_agrees_for"] = agree(k_busy, k_alone)
res["greedy_same_in_busy_batch"] = g_busy == g_alone
res["busy_requests_ok"] = sum(1 for o in outs.values() if o["finish_reason"] in ("length", "stop"))
d1 = metric("tokenfab_engine_device_sampled_tokens_total")
res["device_sampled_tokens"] = (d1 or 0) - (d0 or 0)
print(json.dumps(res))
