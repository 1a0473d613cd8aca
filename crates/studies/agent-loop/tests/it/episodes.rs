use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use shammie_core::{Cell, Event, GenerateRequest, Role, SampleRecord, StopReason, ToolRecord};
use shammie_engine::{Models, Options, RunOptions, Task};
use shammie_log::{Journal, JournalEntry, RunDir, RunMeta};
use shammie_models::Model;
use shammie_study_agent_loop::problems::{self, Problem};
use shammie_testkit::scripted::{self, ScriptedModel};

/// The task with text-tag actions unless `actions` is given (the scripted model has
/// native tool calling, which `auto` would pick).
fn task(opts: &[(&str, &str)]) -> Arc<dyn Task> {
    let mut map: BTreeMap<String, String> = opts
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    map.entry("actions".into()).or_insert_with(|| "tags".into());
    shammie_study_agent_loop::build(Options::new("agent-loop/arithmetic", map)).unwrap()
}

fn meta() -> RunMeta {
    RunMeta {
        schema_version: shammie_core::SCHEMA_VERSION,
        shammie_version: "test".into(),
        study: "agent-loop".into(),
        task: "arithmetic".into(),
        models: BTreeMap::from([("target".into(), "scripted:calc".into())]),
        options: BTreeMap::new(),
        config: serde_json::json!({}),
        seed: 0,
        epochs: 1,
        limit: None,
        limit_counts_recorded: None,
        max_connections: 4,
        created_at: "now".into(),
        cache: None,
        inputs: Default::default(),
        batch: None,
    }
}

/// The episode's own turns: the worked example (four turns) comes first.
fn own(req: &GenerateRequest) -> &[shammie_core::Message] {
    assert!(req.messages[0].content.contains("14 boxes of 23 pens"));
    &req.messages[4..]
}

fn problem_of(req: &GenerateRequest) -> Problem {
    let first = &own(req)[0].content;
    problems::builtin()
        .into_iter()
        .find(|p| first == &format!("Problem: {}", p.question))
        .expect("the first message states a built-in problem")
}

/// Odd-numbered problems: calculator, then the right answer. Even-numbered: calculator,
/// then the right answer plus one. Planted accuracy: half. Every action is followed by
/// text the model should not have written (cut by the stop sequence).
fn planted(req: &GenerateRequest) -> shammie_core::Completion {
    let p = problem_of(req);
    let n: u32 = p.id.trim_start_matches("calc-").parse().unwrap();
    if own(req).len() == 1 {
        return scripted::text(format!(
            "Let me compute. <calc>{}</calc> <output>made up</output>",
            p.expression
        ));
    }
    let last = &req.messages.last().unwrap().content;
    let got: f64 = last
        .trim_start_matches("<output exit_status=\"0\">")
        .trim_end_matches("</output>")
        .parse()
        .unwrap_or(f64::NAN);
    let answer = if n % 2 == 1 { got } else { got + 1.0 };
    scripted::text(format!("<answer>{answer}</answer> Done."))
}

async fn run(
    task: Arc<dyn Task>,
    model: Arc<dyn Model>,
    dir: &RunDir,
    limit: u64,
) -> shammie_engine::RunSummary {
    let models = Models::new(BTreeMap::from([("target".to_string(), model)]))
        .resolve(&task.roles(), "agent-loop/arithmetic")
        .unwrap();
    let dataset = task.dataset().unwrap();
    let opts = RunOptions {
        epochs: 1,
        limit: Some(limit),
        limit_counts: Default::default(),
        max_in_flight: 3,
        seed: 0,
    };
    shammie_engine::run(task, dataset, models, dir, &opts, Arc::new(()))
        .await
        .unwrap()
}

fn records(dir: &RunDir) -> HashMap<String, SampleRecord> {
    dir.records()
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (r.id.clone(), r)
        })
        .collect()
}

fn cell(summary: &shammie_engine::RunSummary, row: &str) -> Cell {
    let t = &summary.results.tables[0];
    t.rows
        .iter()
        .find(|r| r[0] == Cell::text(row))
        .unwrap_or_else(|| panic!("no row {row}"))[1]
        .clone()
}

#[tokio::test]
async fn episodes_record_tools_in_order_and_recover_the_planted_accuracy() {
    let d = tempfile::tempdir().unwrap();
    let dir = RunDir::create(d.path(), &meta()).unwrap();
    let audit = d.path().join("audit.jsonl");
    let model: Arc<dyn Model> = Arc::new(ScriptedModel::new("calc", planted));
    let s = run(task(&[("audit", audit.to_str().unwrap())]), model, &dir, 10).await;
    assert_eq!(s.solved, 10);

    let recs = records(&dir);
    let p1 = &problems::builtin()[0];
    let r = &recs[&p1.id];
    // call, tool, call: in the order they happened.
    let kinds: Vec<&str> = r
        .transcript
        .events
        .iter()
        .map(|e| match e {
            Event::Call(_) => "call",
            Event::Tool(_) => "tool",
            Event::Note(_) => "note",
        })
        .collect();
    assert_eq!(kinds, ["call", "tool", "call"]);
    let calls: Vec<_> = r.transcript.calls().collect();
    // The closing tags are stop sequences; the system prompt explains the protocol.
    assert_eq!(calls[0].request.stop, ["</calc>", "</answer>"]);
    assert!(calls[0]
        .request
        .system
        .as_deref()
        .unwrap()
        .contains("<calc>"));
    let resp0 = calls[0].response.as_ref().unwrap();
    assert_eq!(resp0.stop_reason, StopReason::StopSequence);
    // The second request carries the whole action (closing tag restored, invented
    // output cut) and the calculator's real result.
    let m = own(&calls[1].request);
    assert_eq!(m.len(), 3);
    assert_eq!(m[1].role, Role::Assistant);
    assert_eq!(
        m[1].content,
        format!("Let me compute. <calc>{}</calc>", p1.expression)
    );
    let expected = shammie_study_agent_loop::calc::format(p1.answer);
    assert_eq!(
        m[2].content,
        format!("<output exit_status=\"0\">{expected}</output>")
    );
    let tool: &ToolRecord = r.transcript.tools().next().unwrap();
    assert_eq!(tool.name, "calc");
    assert_eq!(tool.input, serde_json::json!({"text": p1.expression}));
    assert_eq!(tool.output, expected);
    assert!(!tool.replayed);
    assert_eq!(r.scores["correct"], true);
    assert_eq!(recs["calc-02"].scores["correct"], false);

    // Planted: 5 of 10 right. Wilson 95% interval for 5/10, by hand:
    // z = 1.959964, centre (5 + z²/2) / (10 + z²) = 0.5, half-width
    // z/(10+z²) · sqrt(10·0.25 + z²/4) = 0.2634.
    let Cell::Estimate {
        estimate, lo, hi, ..
    } = cell(&s, "accuracy")
    else {
        panic!()
    };
    assert_eq!(estimate, 0.5);
    assert!(
        (lo - 0.2366).abs() < 1e-3 && (hi - 0.7634).abs() < 1e-3,
        "{lo} {hi}"
    );
    match cell(&s, "calculator calls per episode") {
        Cell::Estimate { estimate, .. } => assert_eq!(estimate, 1.0),
        c => panic!("{c:?}"),
    }
    // Each calculator call really ran once: the audit has one line per episode.
    let lines = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(lines.lines().count(), 10);
}

#[tokio::test]
async fn a_resumed_episode_replays_journaled_steps_instead_of_running_them() {
    let d = tempfile::tempdir().unwrap();
    let dir = RunDir::create(d.path(), &meta()).unwrap();
    let audit = d.path().join("audit.jsonl");
    let ps = problems::builtin();
    // A killed attempt took the first step of calc-01 and calc-02. The journal holds a
    // result the calculator would never give (777), so a replay is visible. calc-02's
    // journaled step asked for something else: the episode diverged.
    {
        let (mut j, _) = Journal::open(&dir.journal_path(), &HashSet::new()).unwrap();
        for (p, input, out) in [
            (&ps[0], ps[0].expression.clone(), "777"),
            (&ps[1], "1 + 1".to_string(), "2"),
        ] {
            j.append(&JournalEntry {
                id: p.id.clone(),
                epoch: 1,
                seq: 0,
                tool: ToolRecord {
                    name: "calc".into(),
                    input: serde_json::json!({ "text": input }),
                    output: out.into(),
                    exit_status: Some(0),
                    error: None,
                    duration_ms: 5,
                    replayed: false,
                },
            })
            .unwrap();
        }
    }
    let model: Arc<dyn Model> = Arc::new(ScriptedModel::new("calc", planted));
    let s = run(task(&[("audit", audit.to_str().unwrap())]), model, &dir, 3).await;
    let recs = records(&dir);
    let r1 = &recs[&ps[0].id];
    let t1 = r1.transcript.tools().next().unwrap();
    assert!(t1.replayed);
    assert_eq!(t1.output, "777");
    assert_eq!(t1.duration_ms, 5);
    // The model saw the recorded result and answered with it (odd problem: as given).
    assert_eq!(r1.scores["answer"], 777.0);
    assert_eq!(r1.scores["replayed_tool_calls"], 1);
    // calc-02 diverged: noted, then executed for real.
    let r2 = &recs[&ps[1].id];
    assert!(
        r2.transcript.notes().any(|n| n.contains("diverged")),
        "{:?}",
        r2.transcript
    );
    assert!(!r2.transcript.tools().next().unwrap().replayed);
    // The audit lists only real executions: calc-02 and calc-03, not calc-01.
    let mut audited: Vec<String> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["sample"].as_str().unwrap().to_string()
        })
        .collect();
    audited.sort();
    assert_eq!(audited, ["calc-02", "calc-03"]);
    assert_eq!(cell(&s, "steps replayed from the journal"), Cell::Int(1));
    // Now that all three are recorded, the journal holds nothing but new steps: the
    // finished samples' entries are gone after the next open.
    let done: HashSet<(String, u32)> = recs.keys().map(|k| (k.clone(), 1)).collect();
    let (_, pending) = Journal::open(&dir.journal_path(), &done).unwrap();
    assert!(pending.is_empty());
    assert_eq!(std::fs::read_to_string(dir.journal_path()).unwrap(), "");
}

#[tokio::test]
async fn budgets_and_silence_end_episodes() {
    let d = tempfile::tempdir().unwrap();
    // Always another calculation: stopped by max_turns.
    let dir = RunDir::create(d.path(), &meta()).unwrap();
    let model: Arc<dyn Model> = Arc::new(ScriptedModel::new("loop", |_| {
        scripted::text("<calc>2*3</calc>")
    }));
    let s = run(task(&[("max_turns", "3")]), model, &dir, 2).await;
    for r in records(&dir).values() {
        assert_eq!(r.scores["stop"], "max_turns");
        assert_eq!(r.scores["turns"], 3);
        assert_eq!(r.scores["tool_calls"], 3);
        assert_eq!(r.scores["answered"], false);
    }
    assert_eq!(cell(&s, "episodes ended by"), Cell::text("max_turns 2"));
    // No action and no answer: the episode ends after one turn.
    let dir = RunDir::create(d.path(), &meta()).unwrap();
    let model: Arc<dyn Model> = Arc::new(ScriptedModel::new("mute", |_| {
        scripted::text("I think it is 12.")
    }));
    run(task(&[]), model, &dir, 1).await;
    let r = records(&dir).into_values().next().unwrap();
    assert_eq!(r.scores["stop"], "no_action");
    assert_eq!(r.scores["turns"], 1);
    // A model without stop sequences: the invented continuation is cut all the same.
    let dir = RunDir::create(d.path(), &meta()).unwrap();
    let mut caps = scripted::all_capabilities();
    caps.stop_sequences = false;
    let model: Arc<dyn Model> =
        Arc::new(ScriptedModel::new("nostop", planted).with_capabilities(caps));
    run(task(&[]), model, &dir, 1).await;
    let r = records(&dir).into_values().next().unwrap();
    let calls: Vec<_> = r.transcript.calls().collect();
    assert!(calls[0].request.stop.is_empty());
    assert!(own(&calls[1].request)[1].content.ends_with("</calc>"));
    assert_eq!(r.scores["correct"], true);
    // What it invented after each action was cut, and noted.
    let notes: Vec<&str> = r.transcript.notes().collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].contains("after its <calc> action"));
}

/// Native tool calls: the calculator is offered as a function with one string argument,
/// each call is answered by a tool-result turn carrying its id, a call to an unknown tool
/// gets an error result (and a note) instead of running anything.
fn native(req: &GenerateRequest) -> shammie_core::Completion {
    let p = problem_of(req);
    let own = own(req);
    match own.len() {
        1 => scripted::tool_calls(
            "Computing.",
            &[
                ("calc", serde_json::json!({ "expression": p.expression })),
                ("shell", serde_json::json!({ "command": "rm -rf /" })),
            ],
        ),
        _ => {
            let result = &own[own.len() - 2];
            scripted::text(format!("<answer>{}</answer>", result.content))
        }
    }
}

#[tokio::test]
async fn native_tool_calls_are_answered_by_id_and_recorded_like_tags() {
    let d = tempfile::tempdir().unwrap();
    let dir = RunDir::create(d.path(), &meta()).unwrap();
    let model: Arc<dyn Model> = Arc::new(ScriptedModel::new("native", native));
    let s = run(task(&[("actions", "auto")]), model, &dir, 2).await;
    assert_eq!(s.results.totals.failed, 0);
    let recs = records(&dir);
    let p1 = &problems::builtin()[0];
    let r = &recs[&p1.id];
    assert_eq!(r.scores["correct"], true, "{:?}", r.scores);
    let calls: Vec<_> = r.transcript.calls().collect();
    let req0 = &calls[0].request;
    assert_eq!(req0.tools.len(), 1);
    assert_eq!(req0.tools[0].name, "calc");
    assert_eq!(
        req0.tools[0].input_schema["required"],
        serde_json::json!(["expression"])
    );
    // Natively, only the final answer is a tag.
    assert_eq!(req0.stop, ["</answer>"]);
    assert!(req0.system.as_deref().unwrap().contains("`calc` tool"));
    // The worked example is a native call too, paired by id.
    assert_eq!(req0.messages[1].tool_calls[0].id, "example_call");
    assert_eq!(
        req0.messages[2].tool_result.as_ref().unwrap().call_id,
        "example_call"
    );
    let m = own(&calls[1].request);
    assert_eq!(m.len(), 4);
    assert_eq!(m[1].tool_calls.len(), 2);
    let r1 = m[2].tool_result.as_ref().unwrap();
    assert_eq!((r1.call_id.as_str(), r1.is_error), ("call_1", false));
    assert_eq!(
        m[2].content,
        shammie_study_agent_loop::calc::format(p1.answer)
    );
    let r2 = m[3].tool_result.as_ref().unwrap();
    assert_eq!((r2.call_id.as_str(), r2.is_error), ("call_2", true));
    assert!(m[3].content.contains("no tool named `shell`"));
    // One step ran (the calculator), recorded with the same input shape as tags.
    let tools: Vec<_> = r.transcript.tools().collect();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].input, serde_json::json!({"text": p1.expression}));
    assert!(r.transcript.notes().any(|n| n.contains("`shell`")));
    // A model without native calls asked for them: a clear error on the sample.
    let dir = RunDir::create(d.path(), &meta()).unwrap();
    let mut caps = scripted::all_capabilities();
    caps.native_tools = false;
    let model: Arc<dyn Model> =
        Arc::new(ScriptedModel::new("plain", planted).with_capabilities(caps));
    let s = run(task(&[("actions", "native")]), model, &dir, 1).await;
    assert_eq!(s.results.totals.failed, 1);
    let r = records(&dir).into_values().next().unwrap();
    assert!(r.error.unwrap().contains("no native tool calling"));
}
