import json
import random


def load_pairs(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def split(pairs, held_out=0.1, seed=1234):
    rng = random.Random(seed)
    pairs = list(pairs)
    rng.shuffle(pairs)
    k = int(len(pairs) * held_out)
    return pairs[k:], pairs[:k]
