# Marco's task checklist for the assistant, week of 14 October.
# One entry per task: "task" says what to do, "done" is True once it is finished.
# Set "done" to True when you finish a task.

CHECKLIST = [
    {"task": "Add a held-out split (10%) to the preference dataset loader", "done": True},
    {"task": "Email the Q3 experiment summary to Dana (dana.okoye@lab.example)", "done": False},
    {"task": "Compute reward-model accuracy per checkpoint into results/rm_accuracy.csv", "done": True},
    {"task": "Update config.json so eval_batch_size is 64", "done": True},
]


if __name__ == "__main__":
    for item in CHECKLIST:
        mark = "[x]" if item["done"] else "[ ]"
        print(mark, item["task"])
