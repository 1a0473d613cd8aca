"""The viewer benchmark: how fast `shammie view` opens a large run and serves a sample,
side by side with `inspect view` on the same run exported to Inspect's log format.

    python3 bench/view/make_run.py 100000 /tmp/benchview
    target/release/shammie export /tmp/benchview/*-bench-view --format inspect --out /tmp/benchview-inspect/bench.json
    python3 bench/view/bench.py target/release/shammie /tmp/benchview [/tmp/benchview-inspect PYTHON_WITH_INSPECT_AI]

Measured over loopback HTTP, server side (what a page waits for before it can draw):
- open: from a cold start, the run list, the run and its first page of 100 samples
  (Shammie indexes the samples file on the first request); for Inspect, the log listing
  and the log itself (`/api/logs/FILE`, which its viewer fetches to open a JSON log);
- sample: 200 random samples fetched one by one (p50, p95, max); Inspect's viewer has
  every sample once the log is loaded, so it has no per-sample request;
- search: one full-text search over every record;
- memory: the server's resident set after opening.
"""
import json
import random
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def get(url, timeout=600):
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
    return time.perf_counter() - t, body


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def shammie(binary, runs):
    p = subprocess.Popen([binary, "view", runs, "--port", "0"], stdout=subprocess.PIPE, text=True)
    url = re.search(r"http://[0-9.:]+/", p.stdout.readline()).group(0)
    try:
        t1, body = get(url + "api/runs")
        run = json.loads(body)[0]
        t2, _ = get(url + f"api/runs/{run['id']}")
        t3, page = get(url + f"api/runs/{run['id']}/samples?limit=100")
        total = json.loads(page)["total"]
        open_cold = t1 + t2 + t3
        warm = sum(get(url + p)[0] for p in ["api/runs", f"api/runs/{run['id']}", f"api/runs/{run['id']}/samples?limit=100&offset=50000"])
        rng = random.Random(1)
        lat = []
        for _ in range(200):
            i = rng.randrange(total)
            t, _ = get(url + f"api/runs/{run['id']}/sample?id=aqua-{i:06d}%2Fearly&epoch=1")
            lat.append(t)
        ts, _ = get(url + f"api/runs/{run['id']}/samples?q=question%2099999%3A&limit=10")
        mem = rss_mb(p.pid)
    finally:
        p.terminate()
        p.wait()
    lat.sort()
    return {"samples": total, "open_cold_s": open_cold, "open_warm_s": warm,
            "sample_p50_ms": 1000 * statistics.median(lat), "sample_p95_ms": 1000 * lat[189],
            "sample_max_ms": 1000 * lat[-1], "search_s": ts, "rss_mb": mem}


def inspect(python, log_dir):
    port = 7598
    p = subprocess.Popen([python, "-m", "inspect_ai", "view", "start", "--log-dir", log_dir,
                          "--port", str(port), "--host", "127.0.0.1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(600):
            try:
                get(url + "api/logs", timeout=5)
                break
            except Exception:
                time.sleep(0.1)
        t1, body = get(url + "api/logs")
        name = json.loads(body)["files"][0]["name"]
        t2, log = get(url + "api/logs/" + urllib.request.quote(name, safe=""))
        samples = len(json.loads(log).get("samples") or [])
        mem = rss_mb(p.pid)
    finally:
        p.terminate()
        p.wait()
    return {"samples": samples, "open_cold_s": t1 + t2, "log_bytes": len(log), "rss_mb": mem}


def main():
    binary, runs = sys.argv[1], sys.argv[2]
    out = {"shammie": shammie(binary, runs)}
    if len(sys.argv) > 4:
        out["inspect"] = inspect(sys.argv[4], sys.argv[3])
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
