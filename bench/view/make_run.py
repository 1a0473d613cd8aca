"""Writes a synthetic run directory of N samples for the viewer benchmark.

Each sample is shaped like a reasoning-study record: a multiple-choice question, one
model call with a system prompt, the question, a ~120-word chain of thought as the
response with per-token logprobs for its first 8 tokens, a note, and four scores; every
50th sample failed. About 2 KB per record, like the runs the studies write.

    python3 bench/view/make_run.py N OUT_DIR
"""
import json
import random
import sys
from pathlib import Path

WORDS = ("the answer depends on which of the options matches the premise so we compare "
         "each choice carefully and note that the second statement follows from the first "
         "while the third contradicts it therefore").split()


def main() -> None:
    n, out = int(sys.argv[1]), Path(sys.argv[2])
    run = out / "20261206T120000Z-bench-view"
    run.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    (run / "run.json").write_text(json.dumps({
        "schema_version": 2, "shammie_version": "0.1.0", "study": "cot-faithfulness",
        "task": "interventions", "models": {"target": "openai:gpt-bench"}, "options": {},
        "config": {}, "seed": 0, "epochs": 1, "max_connections": 32,
        "created_at": "2026-12-06T12:00:00Z"}))
    with open(run / "samples.jsonl", "w") as f:
        for i in range(n):
            q = f"Question {i}: " + " ".join(rng.choice(WORDS) for _ in range(30)) + "?"
            cot = " ".join(rng.choice(WORDS) for _ in range(120))
            toks = cot.split(" ")[:8]
            rec = {
                "id": f"aqua-{i:06d}/early", "epoch": 1,
                "input": {"dataset": ["aqua", "logiqa", "mmlu"][i % 3], "question": q,
                          "choices": ["(A) 1", "(B) 2", "(C) 3", "(D) 4"]},
                "transcript": {"events": [
                    {"type": "call", "role": "target", "label": "cot", "model": "openai:gpt-bench",
                     "request": {"system": "Answer step by step.", "messages": [{"role": "user", "content": q}],
                                 "max_tokens": 400, "temperature": 1.0, "top_logprobs": 5},
                     "response": {"text": cot, "logprobs": [
                         {"token": (" " if k else "") + t, "logprob": -rng.random(),
                          "top": [{"token": t, "logprob": -0.1}, {"token": "x", "logprob": -3.0}]}
                         for k, t in enumerate(toks)],
                         "stop_reason": "end_turn", "usage": {"input_tokens": 80, "output_tokens": 160}}},
                    {"type": "note", "text": "early answering at k = 3 of 7 sentences"}]},
                "scores": {"correct": rng.random() < 0.6, "same_answer": rng.random() < 0.8,
                           "aoc": rng.random(), "path": "logprobs"},
                "usage": {"input_tokens": 80, "output_tokens": 160},
                "started_at": "2026-12-06T12:00:00Z", "duration_ms": 900,
            }
            if i % 50 == 49:
                rec["error"] = "target model: HTTP 529 overloaded after 6 attempts"
                rec["scores"] = {}
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")
    print(run)


if __name__ == "__main__":
    main()
