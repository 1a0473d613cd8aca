"""Reads the exports of the fixture runs (crates/export/tests/it/fixture.rs) as researchers
do and asserts their known values: the CSV and Parquet files with pandas AND polars, the
Inspect log with inspect_ai (read_eval_log, its header-only streaming read,
samples_df, evals_df).

Usage: read_exports.py ROOT, where ROOT/single and ROOT/staged are the fixture runs, each
exported in every format to its default place (RUN/export/, the Inspect log under the
name Inspect gives logs, CREATED_TASK_ID.json).

Exit status 3: a package is missing (scripts/test installs them).
"""

import math
import sys
from pathlib import Path

try:
    import pandas as pd
    import polars as pl
    import pyarrow  # noqa: F401  (pandas' Parquet engine)
    from inspect_ai.analysis import evals_df, samples_df
    from inspect_ai.log import read_eval_log
except ImportError as e:
    print(f"missing Python package: {e}", file=sys.stderr)
    sys.exit(3)

SCRIPT = '<script>alert("x")</script>, ünïcödé 日本語\nsecond line'
SAMPLE_COLUMNS = [
    "id", "epoch", "stage",
    "input.choices", "input.meta", "input.question", "input.lang",
    "score.correct", "score.detail.a", "score.detail.b", "score.detail.c",
    "score.label", "score.mixed", "score.p",
    "input_tokens", "output_tokens", "calls", "error", "started_at", "duration_ms",
]


def is_null(v):
    return v is None or (isinstance(v, float) and math.isnan(v))


def inspect_log(folder):
    logs = list(folder.glob("*.json"))
    assert len(logs) == 1, logs
    return str(logs[0])


def check_pandas(df, kind):
    assert list(df.columns) == SAMPLE_COLUMNS, (kind, list(df.columns))
    assert len(df) == 4, (kind, len(df))
    assert list(df["id"]) == ["q1", "q2", "q3", "q1"], kind
    assert list(df["epoch"]) == [1, 1, 1, 2], kind
    assert all(is_null(v) for v in df["stage"]), kind
    assert df["input.question"][1] == SCRIPT, (kind, df["input.question"][1])
    assert df["input.lang"][1] == "日本語", kind
    assert df["input.meta"][0] == '{"level":1,"source":"arith"}', kind
    correct = list(df["score.correct"])
    assert correct[0] is True or correct[0] == True, (kind, correct)  # noqa: E712
    assert correct[1] == False and correct[3] == False, (kind, correct)  # noqa: E712
    assert is_null(correct[2]), (kind, correct)
    p = list(df["score.p"])
    assert p[0] == 0.75 and p[1] == 0.5 and is_null(p[2]) and p[3] == 0.25, (kind, p)
    assert df["score.detail.a"][0] == 1, kind
    assert list(df["input_tokens"]) == [10, 24, 0, 0], kind
    assert list(df["calls"]) == [1, 3, 1, 0], kind
    assert df["error"][2] == "provider error: HTTP 500: overloaded", kind
    assert is_null(df["error"][0]), kind
    assert list(df["duration_ms"]) == [1500, 2500, 300, 10], kind


def check_polars(df, kind):
    assert df.columns == SAMPLE_COLUMNS, (kind, df.columns)
    assert df.height == 4, kind
    assert df["id"].to_list() == ["q1", "q2", "q3", "q1"], kind
    assert df["epoch"].to_list() == [1, 1, 1, 2], kind
    assert df["score.correct"].dtype == pl.Boolean, (kind, df["score.correct"].dtype)
    assert df["score.correct"].to_list() == [True, False, None, False], kind
    assert df["score.p"].dtype == pl.Float64, kind
    assert df["score.p"].to_list() == [0.75, 0.5, None, 0.25], kind
    assert df["input_tokens"].dtype == pl.Int64, kind
    assert df["input_tokens"].to_list() == [10, 24, 0, 0], kind
    assert df["input.question"][1] == SCRIPT, kind
    assert df["error"].to_list() == [None, None, "provider error: HTTP 500: overloaded", None], kind
    assert df["stage"].null_count() == 4, kind


def check_tables(root):
    single = root / "single" / "export"
    # CSV.
    acc = pd.read_csv(single / "table.accuracy.csv")
    assert list(acc.columns) == ["dataset", "accuracy", "accuracy.lo", "accuracy.hi", "accuracy.n", "samples"]
    assert list(acc["accuracy.lo"]) == [0.1, 0.2] and list(acc["accuracy.hi"]) == [0.9, 0.8]
    assert acc["accuracy.n"][0] == 2 and is_null(acc["accuracy.n"][1])
    acc = pl.read_csv(single / "table.accuracy.csv")
    assert acc["accuracy"].dtype == pl.Float64 and acc["accuracy"].to_list() == [0.5, 0.5]
    # Parquet: typed.
    acc = pd.read_parquet(single / "table.accuracy.parquet")
    assert str(acc["accuracy.hi"].dtype) == "float64"
    assert list(acc["samples"]) == [2, 3] and str(acc["samples"].dtype) == "int64"
    acc = pl.read_parquet(single / "table.accuracy.parquet")
    assert acc.schema["accuracy.n"] == pl.Int64 and acc["accuracy.n"].to_list() == [2, None]
    mixed = pl.read_parquet(single / "table.by_model.parquet")
    assert mixed.schema["score"] == pl.String and mixed["score"].to_list() == ["0.25", '"n/a"']


def check_staged(root):
    out = root / "staged" / "export"
    for df in (pd.read_csv(out / "samples.csv"), pd.read_parquet(out / "samples.parquet")):
        assert list(df["stage"]) == ["gen", "eval"], list(df["stage"])
    df = pl.read_parquet(out / "samples.parquet")
    assert df["stage"].to_list() == ["gen", "eval"]
    assert df["score.ok"].to_list() == [None, True]
    log = read_eval_log(inspect_log(out))
    assert [s.id for s in log.samples] == ["gen/p1", "eval/p1"]
    assert log.samples[1].metadata["shammie_stage"] == "eval"


def check_inspect(root):
    path = inspect_log(root / "single" / "export")
    log = read_eval_log(path)
    assert log.status == "success", log.status
    assert log.eval.task == "fixture/task", log.eval.task
    assert log.eval.model == "openai:gpt-test", log.eval.model
    assert log.eval.created.startswith("2025-03-01T09:59:00"), log.eval.created
    assert log.eval.task_args == {"max_tokens": 50, "prompt": "plain"}, log.eval.task_args
    assert log.eval.dataset.samples == 3
    assert log.eval.config.epochs == 2
    assert log.results.total_samples == 4 and log.results.completed_samples == 3
    acc = log.results.scores[0]
    assert acc.name == "accuracy"
    assert acc.metrics["arith: accuracy"].value == 0.5
    assert acc.metrics["arith: accuracy"].metadata == {"lo": 0.1, "hi": 0.9, "n": 2}
    usage = log.stats.model_usage["openai:gpt-test"]
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (27, 9, 36)
    assert log.stats.role_usage["judge"].total_tokens == 8

    samples = log.samples
    assert len(samples) == 4
    q1, q2, q3, q1e2 = samples
    assert (q1.id, q1.epoch, q1e2.epoch) == ("q1", 1, 2)
    assert [m.role for m in q1.input] == ["system", "user"]
    assert q1.input[1].text == "What is 2+2?"
    assert q1.output.completion == "The answer is 4"
    assert q1.output.stop_reason == "stop"
    assert q1.output.choices[0].logprobs.content[0].top_logprobs[1].token == " 5"
    assert q1.output.usage.total_tokens == 12
    assert q1.scores["correct"].value is True
    assert q1.scores["p"].value == 0.75
    assert q1.scores["detail"].value == {"a": 1, "b": "x", "c": "[1,2]"}
    assert q1.metadata["question"] == "What is 2+2?"
    assert q1.total_time == 1.5

    assert [m.role for m in q2.messages] == [
        "system", "user", "assistant", "tool", "assistant", "user", "assistant"
    ], [m.role for m in q2.messages]
    assert q2.messages[1].text == SCRIPT
    assert q2.messages[2].tool_calls[0].function == "calc"
    assert q2.messages[2].tool_calls[0].arguments == {"expr": "2+2"}
    assert q2.messages[3].tool_call_id == "call_1" and q2.messages[3].text == "4"
    assert q2.messages[4].text == "It is 4 \u2713"
    assert q2.output.completion == "yes"
    assert q2.scores["correct"].value is False
    assert "label" not in q2.scores

    assert q3.error is not None and q3.error.message == "provider error: HTTP 500: overloaded"
    assert q3.output.error == "HTTP 500: overloaded"
    assert q3.metadata["shammie_error"] == "provider error: HTTP 500: overloaded"

    # The header alone, read by streaming up to the samples.
    head = read_eval_log(path, header_only=True)
    assert head.samples is None and head.results.total_samples == 4

    # Inspect lists the log, alone and in its folder.
    from inspect_ai.log import list_eval_logs

    listed = list_eval_logs(str(Path(path).parent))
    assert [Path(i.name).name for i in listed] == [Path(path).name], listed
    assert listed[0].task == "fixture-task", listed[0].task

    # Inspect's dataframes.
    sdf = samples_df(path)
    assert len(sdf) == 4, len(sdf)
    assert list(sdf["id"]) == ["q1", "q2", "q3", "q1"], list(sdf["id"])
    assert list(sdf["score_p"][:2]) == [0.75, 0.5], list(sdf["score_p"])
    # samples_df reads sample summaries, whose metadata text Inspect thins (newlines
    # become spaces); the full sample keeps it (checked above).
    thinned = sdf["metadata_question"][1]
    assert thinned == SCRIPT.replace("\n", " "), repr(thinned)
    assert sdf["error"][2] == "provider error: HTTP 500: overloaded", sdf["error"][2]
    edf = evals_df(path)
    assert len(edf) == 1
    assert edf["model"][0] == "openai:gpt-test"
    assert edf["total_samples"][0] == 4
    assert edf["task_arg_prompt"][0] == "plain"


def main():
    root = Path(sys.argv[1])
    out = root / "single" / "export"
    check_pandas(pd.read_csv(out / "samples.csv"), "pandas csv")
    check_pandas(pd.read_parquet(out / "samples.parquet"), "pandas parquet")
    check_polars(pl.read_csv(out / "samples.csv"), "polars csv")
    check_polars(pl.read_parquet(out / "samples.parquet"), "polars parquet")
    # The Parquet types, as pandas sees them.
    df = pd.read_parquet(out / "samples.parquet")
    assert str(df["score.p"].dtype) == "float64" and str(df["epoch"].dtype) == "int64"
    check_tables(root)
    check_staged(root)
    check_inspect(root)
    print("all exports read")


if __name__ == "__main__":
    main()
