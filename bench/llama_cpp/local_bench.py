"""The llama.cpp side of `shammie-bench local`: the same measurements as Shammie's local
engine, on the same GGUF with the same thread count, printed as one JSON line.

    /work/.venv-llama/bin/python bench/llama_cpp/local_bench.py MODEL.gguf WORKLOAD.json THREADS

WORKLOAD.json (written by shammie-bench): {"prompts": [ids...], "decode_prompt": ids,
"decode_tokens": n, "workload": bool, "gen_prompts": [ids...], "gen_tokens": n,
"score_prompts": [ids...], "score_options": [[ids...], ...]}. Token ids come from Shammie's tokenizer, which is
identical to llama.cpp's on the fixtures, so both engines see the same tokens.
"""
import json
import sys
import time

import llama_cpp
import numpy as np
from llama_cpp import Llama


def last_logprobs(m):
    logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(m._ctx.ctx, -1), shape=(m.n_vocab(),))
    mx = logits.max()
    return logits - mx - np.log(np.exp(logits - mx).sum())


def main(path, workload_path, threads):
    w = json.load(open(workload_path))
    out = {}
    t0 = time.perf_counter()
    m = Llama(model_path=path, n_threads=threads, n_threads_batch=threads, n_ctx=2048, n_batch=512,
              logits_all=False, verbose=False)
    out["load_s"] = time.perf_counter() - t0

    def prefill(ids):
        m.reset()
        t = time.perf_counter()
        m.eval(ids)
        return time.perf_counter() - t

    # Prompt speed (best of 3) at each length.
    out["prompt_tok_s"] = [len(ids) / min(prefill(ids) for _ in range(3)) for ids in w["prompts"]]

    # Single-sequence greedy decode speed.
    m.reset()
    m.eval(w["decode_prompt"])
    n = w["decode_tokens"]
    t = time.perf_counter()
    for _ in range(n):
        tok = m.sample(temp=0.0, top_k=1)
        m.eval([tok])
    out["decode_tok_s"] = n / (time.perf_counter() - t)
    if not w["workload"]:
        print(json.dumps(out))
        return

    # Study-shaped workload: generations, then continuation scorings (prompt evaluated
    # once per question, its state saved and restored for each option).
    t = time.perf_counter()
    for ids in w["gen_prompts"]:
        m.reset()
        m.eval(ids)
        for _ in range(w["gen_tokens"]):
            tok = m.sample(temp=0.0, top_k=1)
            m.eval([tok])
    gen_s = time.perf_counter() - t
    t = time.perf_counter()
    scores = []
    for ids, options in zip(w["score_prompts"], w["score_options"]):
        m.reset()
        m.eval(ids)
        # The prompt's next-token distribution is read here: a restored state brings back
        # the keys and values, not the last logits.
        first = last_logprobs(m)
        state = m.save_state()
        for opt in options:
            m.load_state(state)
            lp = float(first[opt[0]])
            m.eval([opt[0]])
            for tok in opt[1:]:
                lp += float(last_logprobs(m)[tok])
                m.eval([tok])
            scores.append(lp)
    score_s = time.perf_counter() - t
    out["workload_gen_s"] = gen_s
    out["workload_score_s"] = score_s
    out["workload_s"] = gen_s + score_s
    out["scores_head"] = scores[:4]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
