"""Write a language-model influence sequences file (the format `shammie influence` reads for LMs).

usage: lm_sequences.py TEXTFILE OUT.jsonl [--n N] [--max-tokens T] [--gguf PATH]
                       [--query PROMPT COMPLETION]... [--also-fit]

Each non-empty line of TEXTFILE (the first N) becomes one "train" sequence: BOS, then the line's
tokens (GGUF tokenizer through transformers, no other special tokens), truncated to T tokens in
all (BOS included), loss_from = 1 (every token after BOS is predicted). Each --query gives one
"query" sequence: BOS + tokens(PROMPT) + tokens(COMPLETION), the two parts tokenised separately,
loss_from = 1 + len(tokens(PROMPT)), so only the completion is measured. --also-fit writes every
train line a second time with set "fit" (lm_kron.py fits on the train set when there is no fit
set; this is for readers that want the fit set spelled out).

One JSON object per line: {"set": "fit"|"train"|"query", "id": STRING, "ids": [...], "loss_from": K}.
"""
import argparse
import json
import os
import sys

DEFAULT_GGUF = os.path.expanduser("~/.cache/shammie/models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf")


def load_tokenizer(gguf):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(gguf)), gguf_file=os.path.basename(gguf))


def encode(tok, text):
    return list(tok(text, add_special_tokens=False)["input_ids"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("textfile")
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=16, help="train sequences (first N non-empty lines)")
    ap.add_argument("--max-tokens", type=int, default=64, help="tokens per train sequence, BOS included")
    ap.add_argument("--gguf", default=DEFAULT_GGUF)
    ap.add_argument("--query", nargs=2, action="append", default=[], metavar=("PROMPT", "COMPLETION"))
    ap.add_argument("--also-fit", action="store_true", help="repeat the train lines as set \"fit\"")
    args = ap.parse_args()

    tok = load_tokenizer(args.gguf)
    bos = tok.bos_token_id
    if bos is None:
        sys.exit("the tokenizer has no BOS token")
    rows = []
    with open(args.textfile) as f:
        lines = [l.strip() for l in f if l.strip()]
    for i, line in enumerate(lines[: args.n]):
        ids = ([bos] + encode(tok, line))[: args.max_tokens]
        if len(ids) < 2:
            continue
        rows.append({"set": "train", "id": f"line{i}", "ids": ids, "loss_from": 1})
    if args.also_fit:
        rows += [dict(r, set="fit") for r in rows if r["set"] == "train"]
    for j, (prompt, completion) in enumerate(args.query):
        p, c = [bos] + encode(tok, prompt), encode(tok, completion)
        if not c:
            sys.exit(f"query {j}: the completion has no tokens")
        rows.append({"set": "query", "id": f"query{j}", "ids": p + c, "loss_from": len(p)})
    with open(args.out, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    counts = {s: sum(r["set"] == s for r in rows) for s in ("fit", "train", "query")}
    tokens = sum(len(r["ids"]) for r in rows if r["set"] == "train")
    print(f"wrote {args.out}: {counts}, {tokens} train tokens")


if __name__ == "__main__":
    main()
