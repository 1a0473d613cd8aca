import json
import sys


def dedup(src, dst):
    seen = set()
    n_in = n_out = 0
    with open(src) as fin, open(dst, "w") as fout:
        for line in fin:
            n_in += 1
            key = json.loads(line)["episode_id"]
            if key in seen:
                continue
            seen.add(key)
            fout.write(line)
            n_out += 1
    print(f"dedup: {n_in} rows in, {n_out} rows out", file=sys.stderr)


if __name__ == "__main__":
    dedup(sys.argv[1], sys.argv[2])
