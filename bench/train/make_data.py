#!/usr/bin/env python3
"""Chat JSONL for the LoRA SFT benchmark and the PEFT check, from Anthropic's hh-rlhf
(`/work/shared/data/hh-rlhf/harmless-base-test.jsonl.gz`, MIT): the first human turn and
the first assistant reply of each `chosen` transcript, in order, each cut at a word
boundary (prompt at most 200 characters, reply at most 260), skipping transcripts whose
first turn is longer. `bench/train/run.sh` keeps the first 64 whose rendered sequence is
at most 128 tokens (checked with Shammie's tokenizer).

    python3 bench/train/make_data.py /work/shared/data/hh-rlhf/harmless-base-test.jsonl.gz 96 > OUT.jsonl
"""

import gzip
import json
import re
import sys


def cut(text, limit):
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip()


def main():
    path, n = sys.argv[1], int(sys.argv[2])
    out = 0
    with gzip.open(path, "rt") as fh:
        for line in fh:
            turns = re.split(r"\n\n(Human|Assistant): ", json.loads(line)["chosen"])
            # ['', 'Human', text, 'Assistant', text, ...]
            if len(turns) < 5 or turns[1] != "Human" or turns[3] != "Assistant":
                continue
            prompt, reply = turns[2].strip(), cut(turns[4], 260)
            if not prompt or len(prompt) > 200 or len(reply) < 20:
                continue
            msgs = [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}]
            print(json.dumps({"messages": msgs}))
            out += 1
            if out == n:
                break


if __name__ == "__main__":
    main()
