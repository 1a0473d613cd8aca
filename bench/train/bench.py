#!/usr/bin/env python3
"""Driver of the LoRA SFT benchmark (`bench/train/run.sh` calls it; plain python3).

    bench.py SHAMMIE PYREF TORCH_PYTHON GGUF DATA.jsonl WORKDIR [--steps 9] [--batch 8] ...

1. `shammie train sft` on DATA (rank, alpha, targets, batch, steps as given; learning
   rate 2e-4, linear decay, clip 1.0) under `/usr/bin/time -v`, with a progress line per
   step (`SHAMMIE_PROGRESS_SECS=0`) time-stamped here as it arrives;
2. the batches Shammie drew, read from its final checkpoint (`state.json`'s `order`: one
   pass over the data when steps × batch = examples), and Shammie's tokenisation of DATA
   (`pyref tokens`);
3. `peft_sft.py` (PyTorch + PEFT) on the same token sequences in the same batches, in
   its `batch` (padded) and `accumulate` modes, each under `/usr/bin/time -v`;
4. a table: steady-state throughput over steps 2..N (step 1 is the warm-up), in tokens of
   the sequences and in trained tokens per wall-clock second and per CPU-second of the
   process (all threads; Shammie's read from /proc at each progress line, PyTorch's from
   `time.process_time`), and the peak RSS of each process. On a loaded machine the
   per-CPU-second figures are the steadier ones.
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time


def uptime():
    return open("/proc/loadavg").read().split()[:3]


def max_rss_mb(path):
    text = open(path).read()
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024


def cpu_secs(pid):
    """User + system CPU seconds of a running process (all its threads)."""
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def child(pid):
    """The one child of `pid` (shammie under /usr/bin/time)."""
    for _ in range(200):
        try:
            kids = open(f"/proc/{pid}/task/{pid}/children").read().split()
        except OSError:
            kids = []
        if kids:
            return int(kids[0])
        time.sleep(0.05)
    sys.exit("no shammie process under /usr/bin/time")


def run_shammie(a, w):
    tf = os.path.join(w, "shammie.time")
    cmd = ["/usr/bin/time", "-v", "-o", tf, a.shammie, "train", "sft", "--model", f"local:{a.gguf}",
           "--data", a.data, "--rank", str(a.rank), "--alpha", str(a.alpha), "--targets", a.targets,
           "--batch", str(a.batch), "--steps", str(a.steps), "--lr", "2e-4", "--checkpoint-every", "0",
           "--pack-tokens", str(a.pack_tokens), "--log-dir", os.path.join(w, "runs")]
    env = dict(os.environ, SHAMMIE_PROGRESS_SECS="0", RAYON_NUM_THREADS=str(a.threads))
    load = uptime()
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    sh_pid = child(p.pid)
    stamps, cpu, run_dir, err = {}, {}, None, []
    for line in p.stderr:
        err.append(line)
        m = re.match(r"step (\d+)/\d+", line)
        if m:
            stamps[int(m.group(1))] = time.monotonic() - t0
            cpu[int(m.group(1))] = cpu_secs(sh_pid)
        m = re.match(r"run directory: (.*) \(\d+ examples", line)
        if m:
            run_dir = m.group(1)
    out = p.stdout.read()
    if p.wait() != 0:
        sys.exit("shammie failed:\n" + "".join(err) + out)
    records = [json.loads(l) for l in open(os.path.join(run_dir, "train.jsonl"))]
    ck = sorted(os.listdir(os.path.join(run_dir, "checkpoints")))[-1]
    state = json.load(open(os.path.join(run_dir, "checkpoints", ck, "state.json")))
    order = state["order"]
    batches = [order[s * a.batch:(s + 1) * a.batch] for s in range(a.steps)]
    assert len(order) == a.steps * a.batch and state["cursor"] == len(order), "one pass expected"
    return {"stamps": stamps, "cpu": cpu, "records": records, "batches": batches, "rss": max_rss_mb(tf),
            "load": load, "total": time.monotonic() - t0}


def run_torch(a, w, tokens, batches_path, mode):
    tf = os.path.join(w, f"torch-{mode}.time")
    cmd = ["/usr/bin/time", "-v", "-o", tf, a.torch_python, os.path.join(os.path.dirname(__file__), "peft_sft.py"),
           a.gguf, tokens, batches_path, "--mode", mode, "--rank", str(a.rank), "--alpha", str(a.alpha),
           "--targets", a.targets, "--threads", str(a.threads)]
    load = uptime()
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    if p.returncode != 0:
        sys.exit(f"peft_sft.py ({mode}) failed:\n{p.stderr[-3000:]}")
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    return {"steps": [l for l in lines if "step" in l], "head": lines[0], "rss": max_rss_mb(tf), "load": load,
            "total": time.monotonic() - t0}


def main():
    ap = argparse.ArgumentParser()
    for k in ["shammie", "pyref", "torch_python", "gguf", "data", "work"]:
        ap.add_argument(k)
    ap.add_argument("--steps", type=int, default=9)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--targets", default="q_proj,v_proj")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--modes", default="batch,accumulate")
    ap.add_argument("--pack-tokens", type=int, default=0,
                    help="Shammie packs a step's examples into sequences of up to this many tokens")
    a = ap.parse_args()
    w = a.work
    os.makedirs(w, exist_ok=True)
    tokens = os.path.join(w, "tokens.json")
    subprocess.run([a.pyref, "tokens", a.gguf, a.data, tokens], check=True)
    data = json.load(open(tokens))
    assert max(len(e["ids"]) for e in data) <= 128, "sequences must be at most 128 tokens"
    info = open("/proc/cpuinfo").read()
    field = lambda k: re.search(r"^" + k + r"\s*:\s*(.*)$", info, re.M).group(1)
    avx512 = ", AVX-512" if " avx512f" in info else ""
    cpu = f"{field('model name')} (family {field('cpu family')}, model {field('model')}{avx512}, {os.cpu_count()} CPUs)"

    sh = run_shammie(a, w)
    batches_path = os.path.join(w, "batches.json")
    json.dump(sh["batches"], open(batches_path, "w"))
    measured = sh["batches"][1:]
    seq = sum(len(data[i]["ids"]) for b in measured for i in b)
    trained = sum(sum(data[i]["train"][1:]) for b in measured for i in b)
    assert trained == sum(r["tokens"] for r in sh["records"][1:]), "Shammie's trained tokens differ"
    sh_secs = sh["stamps"][a.steps] - sh["stamps"][1]
    sh_cpu = sh["cpu"][a.steps] - sh["cpu"][1]
    rows = [("shammie", sh_secs, sh_cpu, sh["rss"], sh["load"], sh["records"][0]["loss"], None)]
    for mode in a.modes.split(","):
        t = run_torch(a, w, tokens, batches_path, mode)
        assert [s["trained_tokens"] for s in t["steps"]] == [r["tokens"] for r in sh["records"]]
        secs = sum(s["secs"] for s in t["steps"][1:])
        cpu = sum(s["cpu_secs"] for s in t["steps"][1:])
        padded = sum(s["padded_tokens"] for s in t["steps"][1:])
        rows.append((f"pytorch+peft ({mode})", secs, cpu, t["rss"], t["load"], t["steps"][0]["loss"], padded))
    print(f"\n{datetime.date.today()}  CPU: {cpu}  threads: {a.threads}")
    print(f"{len(data)} examples, batch {a.batch}, {a.steps} steps (step 1 warm-up, excluded), rank {a.rank}, "
          f"alpha {a.alpha:g}, targets {a.targets}")
    print(f"measured steps 2..{a.steps}: {seq} tokens in the sequences, {trained} trained tokens\n")
    print("| side | wall s per step | sequence tok/s | trained tok/s | CPU-s per step | sequence tok per CPU-s "
          "| trained tok per CPU-s | tokens computed (with padding) | peak RSS (MB) | step-1 loss | load avg at start |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, secs, cpu, rss, load, loss, padded in rows:
        n = len(measured)
        print(f"| {name} | {secs / n:.2f} | {seq / secs:.1f} | {trained / secs:.1f} | {cpu / n:.2f} | {seq / cpu:.1f} "
              f"| {trained / cpu:.1f} | {padded or seq} | {rss:.0f} | {loss:.4f} | {' '.join(load)} |")
    print()
    for name, secs, cpu, rss, *_ in rows[1:]:
        print(f"Shammie / {name}: throughput {secs / sh_secs:.2f}x (wall), {cpu / sh_cpu:.2f}x (per CPU-second); "
              f"peak memory {sh['rss'] / rss:.2f}x")
    print(f"load average at the end: {' '.join(uptime())}")


if __name__ == "__main__":
    main()
