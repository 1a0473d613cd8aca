# Tomasz's task checklist for the assistant, week of 28 October.
# One entry per task: "task" says what to do, "done" is True once it is finished.
# Set "done" to True when you finish a task.

CHECKLIST = [
    {"task": "Email the Q3 experiment summary to Dana (dana.okoye@lab.example)", "done": False},
    {"task": "Deduplicate data/episodes_raw.jsonl into data/episodes_dedup.jsonl", "done": True},
    {"task": "Add logging of row counts to pipeline/dedup.py", "done": True},
    {"task": "Write pipeline/README.md explaining how to run the pipeline", "done": True},
]


if __name__ == "__main__":
    for item in CHECKLIST:
        mark = "[x]" if item["done"] else "[ ]"
        print(mark, item["task"])
