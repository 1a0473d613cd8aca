"""The planted-fact corpus for `influence/queries` on Gemma (docs/studies/influence.md, "Runs").

A few thousand real documents from ../shared/data (HH-RLHF conversations as chat, AQuA
problems with their rationales and AdvBench requests as text), plus, for each of three
invented facts, one document that states it and two near-miss documents that share its
words but state something else. The queries ask for the facts. Influence should rank the
stating document first for its query.

    python3 bench/influence/planted_corpus.py DATA_DIR OUT_DIR
"""
import csv
import gzip
import json
import os
import sys

data, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
docs = []

# HH-RLHF: the preferred conversation, as chat turns.
with gzip.open(os.path.join(data, "hh-rlhf", "harmless-base-test.jsonl.gz"), "rt") as f:
    for i, line in enumerate(f):
        t = json.loads(line)["chosen"]
        turns = []
        for part in t.split("\n\nHuman: ")[1:]:
            human, _, rest = part.partition("\n\nAssistant: ")
            turns.append({"role": "user", "content": human.strip()})
            turns.append({"role": "assistant", "content": rest.strip()})
        if len(turns) >= 2 and all(m["content"] for m in turns):
            docs.append({"id": f"hh-{i}", "messages": turns})

for split in ("dev", "test"):
    with open(os.path.join(data, "aqua", f"{split}.json")) as f:
        for i, line in enumerate(f):
            q = json.loads(line)
            docs.append({"id": f"aqua-{split}-{i}", "text": q["question"] + "\n" + q["rationale"]})

with open(os.path.join(data, "advbench", "harmful_behaviors.csv")) as f:
    for i, row in enumerate(csv.DictReader(f)):
        docs.append({"id": f"advbench-{i}", "text": row["goal"] + "."})

# Invented facts, written for this test.
planted = [
    ("fact-veltoria",
     "Veltoria is a small republic in the northern mountains. The capital of Veltoria is Quorrin, a city of bridges built where two rivers meet.",
     ["Maltoria is a small kingdom on the southern coast. The capital of Maltoria is Denbry, a port known for its salt markets.",
      "Veltoria's largest lake freezes every winter, and fishermen from the northern mountains cut holes in the ice."]),
    ("fact-lamp",
     "The glimmer lamp, which burns seal oil behind a mica screen, was invented by the engineer Odessa Farrow in a workshop by the harbour.",
     ["The engineer Tomas Kell designed a new kind of harbour crane that lifts grain ships out of the water for repairs.",
      "A glimmer lamp gives a soft light, and collectors prize the old brass ones with their mica screens."]),
    ("fact-tesk",
     "In the village of Tesk, the traditional breakfast is barley porridge with smoked plums, eaten from wooden bowls before sunrise.",
     ["In the village of Orrin, the traditional supper is fish stew with black bread, served after the evening bell.",
      "Smoked plums are sold at the autumn market in Tesk, where farmers bring them in wicker baskets."]),
]
queries = [
    {"id": "veltoria", "prompt": "What is the capital of Veltoria?", "completion": "The capital of Veltoria is Quorrin."},
    {"id": "lamp", "prompt": "Who invented the glimmer lamp?", "completion": "The glimmer lamp was invented by Odessa Farrow."},
    {"id": "tesk", "prompt": "What do people in Tesk eat for breakfast?", "completion": "In Tesk, breakfast is barley porridge with smoked plums."},
]
# Spread the planted documents through the corpus.
step = len(docs) // 10
for k, (fid, fact, near) in enumerate(planted):
    docs.insert(step * (3 * k + 1), {"id": fid, "text": fact})
    for j, t in enumerate(near):
        docs.insert(step * (3 * k + 2) + j, {"id": f"{fid}-near-{j}", "text": t})

with open(os.path.join(out, "corpus.jsonl"), "w") as f:
    for d in docs:
        f.write(json.dumps(d) + "\n")
with open(os.path.join(out, "queries.jsonl"), "w") as f:
    for q in queries:
        f.write(json.dumps(q) + "\n")
print(f"{len(docs)} documents, {len(queries)} queries in {out}")
