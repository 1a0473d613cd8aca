#!/usr/bin/env python3
"""The PyTorch + PEFT side of the LoRA SFT benchmark (`bench/train/run.sh`).

    peft_sft.py GGUF TOKENS.json BATCHES.json [--mode batch|accumulate] [--rank 8] ...

Loads the GGUF with transformers (every tensor dequantized to float32, as Shammie's
white box does), wraps it with PEFT LoRA (rank, alpha, targets, dropout 0), and runs one
optimizer step per entry of BATCHES.json (lists of example indices into TOKENS.json,
which holds Shammie's tokenisation and loss mask of the same chat data, so both sides
train on identical token sequences in identical batches). Loss: summed cross-entropy of
the trained tokens of the step divided by their count; `clip_grad_norm_`; AdamW;
transformers' linear schedule without warm-up — what `shammie train sft` does.

Modes: `batch` pads the step's examples to one tensor (right padding, attention mask),
one forward and backward pass, as the Hugging Face trainer does; `accumulate` runs each
example on its own and accumulates gradients, as Shammie does (no padding).

Prints one JSON line per step (wall and CPU seconds, tokens in the sequences, trained tokens, tokens
including padding, loss) and then a summary line. 2 threads (`torch.set_num_threads`).
"""

import argparse
import json
import os
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("tokens")
    ap.add_argument("batches")
    ap.add_argument("--mode", choices=["batch", "accumulate"], default="batch")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--targets", default="q_proj,v_proj")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, get_linear_schedule_with_warmup

    data = json.load(open(args.tokens))
    batches = json.load(open(args.batches))
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(
        os.path.dirname(os.path.abspath(args.gguf)),
        gguf_file=os.path.basename(args.gguf),
        dtype=torch.float32,
    )
    cfg = LoraConfig(
        r=args.rank,
        lora_alpha=args.alpha,
        target_modules=args.targets.split(","),
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, cfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    sched = get_linear_schedule_with_warmup(opt, 0, len(batches))
    load_secs = time.perf_counter() - t0
    print(json.dumps({"load_secs": load_secs, "attn": model.config._attn_implementation,
                      "trainable": sum(p.numel() for p in params)}), flush=True)

    def step_loss(exs, trained):
        if args.mode == "accumulate":
            total = 0.0
            for e in exs:
                ids = torch.tensor([e["ids"]])
                logits = model(input_ids=ids).logits[0, :-1]
                mask = torch.tensor(e["train"][1:])
                nll = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="none")
                loss = (nll * mask).sum() / trained
                loss.backward()
                total += loss.item()
            return total, sum(len(e["ids"]) for e in exs)
        n = max(len(e["ids"]) for e in exs)
        ids = torch.zeros((len(exs), n), dtype=torch.long)
        att = torch.zeros((len(exs), n), dtype=torch.long)
        labels = torch.full((len(exs), n), -100, dtype=torch.long)
        for i, e in enumerate(exs):
            k = len(e["ids"])
            ids[i, :k] = torch.tensor(e["ids"])
            att[i, :k] = 1
            lab = torch.tensor([t if m else -100 for t, m in zip(e["ids"], e["train"])])
            labels[i, :k] = lab
        logits = model(input_ids=ids, attention_mask=att).logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100, reduction="sum"
        ) / trained
        loss.backward()
        return loss.item(), n * len(exs)

    for s, b in enumerate(batches):
        exs = [data[i] for i in b]
        trained = sum(sum(e["train"][1:]) for e in exs)
        t, c = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        loss, padded = step_loss(exs, trained)
        norm = torch.nn.utils.clip_grad_norm_(params, args.clip).item()
        opt.step()
        sched.step()
        secs, cpu = time.perf_counter() - t, time.process_time() - c
        print(json.dumps({
            "step": s, "secs": secs, "cpu_secs": cpu, "loss": loss, "grad_norm": norm,
            "seq_tokens": sum(len(e["ids"]) for e in exs), "trained_tokens": trained, "padded_tokens": padded,
        }), flush=True)


if __name__ == "__main__":
    main()
