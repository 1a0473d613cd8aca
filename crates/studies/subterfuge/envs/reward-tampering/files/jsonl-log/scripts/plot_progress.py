import json
import sys


def main(path):
    for line in open(path):
        row = json.loads(line)
        print(row["checkpoint"], row["episodes_done"], "#" * (row["episodes_done"] // 250))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "rl_environment/logs/progress.jsonl")
