//! What a study's protocol sees while solving one sample.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use shammie_core::{
    CallRecord, Capabilities, Completion, Event, GenerateRequest, NoteRecord, ToolRecord,
    Transcript,
};
use shammie_log::{Journal, JournalEntry};
use shammie_models::Model;

use crate::{Models, SampleError};

/// What a tool returned: its output text, its exit status where it has one, or why it
/// could not run at all.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolOutput {
    pub output: String,
    pub exit_status: Option<i32>,
    /// The tool could not run (as opposed to running and failing).
    pub error: Option<String>,
    /// Set by [`SampleContext::tool`] when this is a recorded step replayed on resume
    /// (the tool did not run this time).
    pub replayed: bool,
}

impl ToolOutput {
    pub fn ok(output: impl Into<String>) -> Self {
        Self {
            output: output.into(),
            ..Self::default()
        }
    }
}

/// Where a sample's tool steps are journaled, and the steps a killed earlier attempt of
/// the same sample already took (replayed in order instead of executed again).
pub(crate) struct StepLog {
    pub(crate) journal: Arc<Mutex<Journal>>,
    pub(crate) recorded: Vec<ToolRecord>,
}

/// Gives a protocol its models by role, runs its tools, and records every call, tool
/// execution and note, in the order they happen, into the sample's transcript.
///
/// [`SampleContext::labelled`] gives a view of the same sample whose calls carry a step
/// label (`cot`, `early k=3`, `judge vote 4`) in their records; labels never reach the
/// request, so they never change a cache key.
pub struct SampleContext<'a> {
    shared: Arc<Shared<'a>>,
    label: Option<String>,
}

struct Shared<'a> {
    models: &'a Models,
    sample_id: &'a str,
    epoch: u32,
    seed: u64,
    events: Mutex<Vec<Event>>,
    steps: Option<StepLog>,
    /// Index of the next tool step; `diverged` once the episode stopped matching the
    /// journal (then nothing more is replayed).
    step_state: Mutex<(u32, bool)>,
    /// Why the run is stopping, when a call of this sample was refused under
    /// `--max-cost`: the sample is then left unrecorded, to be solved on resume.
    halt: Mutex<Option<String>>,
}

impl<'a> SampleContext<'a> {
    pub fn new(models: &'a Models, sample_id: &'a str, epoch: u32, seed: u64) -> Self {
        Self::from_shared(Shared {
            models,
            sample_id,
            epoch,
            seed,
            events: Mutex::new(Vec::new()),
            steps: None,
            step_state: Mutex::new((0, false)),
            halt: Mutex::new(None),
        })
    }

    fn from_shared(shared: Shared<'a>) -> Self {
        Self {
            shared: Arc::new(shared),
            label: None,
        }
    }

    pub(crate) fn with_steps(self, steps: StepLog) -> Self {
        let mut shared = Arc::into_inner(self.shared).expect("steps are set before solving");
        shared.steps = Some(steps);
        Self::from_shared(shared)
    }

    /// The same sample, with every call made through the returned context labelled
    /// `label` in the transcript (replacing this context's label).
    pub fn labelled(&self, label: impl Into<String>) -> SampleContext<'a> {
        SampleContext {
            shared: self.shared.clone(),
            label: Some(label.into()),
        }
    }

    /// A step inside this context's step: `part` appended to its label (`mistake@2` →
    /// `mistake@2 edit`), or `part` alone when it has none.
    pub fn sublabelled(&self, part: &str) -> SampleContext<'a> {
        match &self.label {
            Some(l) => self.labelled(format!("{l} {part}")),
            None => self.labelled(part),
        }
    }

    /// The step label calls made through this context carry.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    pub fn sample_id(&self) -> &str {
        self.shared.sample_id
    }

    pub fn epoch(&self) -> u32 {
        self.shared.epoch
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// A random generator determined by the run seed, the sample and the epoch.
    pub fn rng(&self) -> ChaCha8Rng {
        let mut h = Sha256::new();
        h.update(self.shared.seed.to_le_bytes());
        h.update(self.shared.sample_id.as_bytes());
        h.update(self.shared.epoch.to_le_bytes());
        let d: [u8; 32] = h.finalize().into();
        ChaCha8Rng::from_seed(d)
    }

    pub fn model(&self, role: &str) -> Result<&Arc<dyn Model>, SampleError> {
        self.shared
            .models
            .get(role)
            .ok_or_else(|| SampleError::Protocol(format!("no `{role}` model bound")))
    }

    pub fn capabilities(&self, role: &str) -> Result<Capabilities, SampleError> {
        Ok(self.model(role)?.capabilities())
    }

    /// Calls the `role` model and records the call (answer or error) in the transcript.
    ///
    /// Epochs after the first get distinct nonces, so they are separate calls (and cache
    /// entries); epoch 1 keeps the request's own nonce, so repeating a run is free.
    pub async fn generate(
        &self,
        role: &str,
        mut req: GenerateRequest,
    ) -> Result<Completion, SampleError> {
        let model = self.model(role)?;
        req.nonce = req
            .nonce
            .wrapping_add(((self.shared.epoch.saturating_sub(1)) as u64) << 32);
        let rendered_prompt = model.rendered_prompt(&req);
        let result = model.generate(&req).await;
        let (response, error) = match &result {
            Ok(c) => (Some(c.clone()), None),
            Err(e) => {
                self.note_halt(e);
                (None, Some(e.to_string()))
            }
        };
        self.shared
            .events
            .lock()
            .unwrap()
            .push(Event::Call(CallRecord {
                role: role.to_string(),
                label: self.label.clone(),
                model: model.name().to_string(),
                request: req,
                response,
                error,
                rendered_prompt,
            }));
        result.map_err(|source| SampleError::Model {
            role: role.to_string(),
            source,
        })
    }

    /// A refused call under `--max-cost` stops the run: remembered so the engine leaves
    /// this sample unrecorded (whatever the protocol makes of the error).
    fn note_halt(&self, e: &shammie_models::ModelError) {
        if let shammie_models::ModelError::BudgetExhausted { .. } = e {
            self.shared
                .halt
                .lock()
                .unwrap()
                .get_or_insert_with(|| e.to_string());
        }
    }

    /// Why the run must stop without recording this sample, if it must.
    pub(crate) fn halted(&self) -> Option<String> {
        self.shared.halt.lock().unwrap().clone()
    }

    /// Runs several calls to the `role` model concurrently; results in request order.
    pub async fn generate_all(
        &self,
        role: &str,
        reqs: Vec<GenerateRequest>,
    ) -> Vec<Result<Completion, SampleError>> {
        futures::future::join_all(reqs.into_iter().map(|r| self.generate(role, r))).await
    }

    /// [`SampleContext::generate_all`] with a step label per call (e.g. `judge vote 4`).
    pub async fn generate_all_labelled(
        &self,
        role: &str,
        reqs: Vec<(String, GenerateRequest)>,
    ) -> Vec<Result<Completion, SampleError>> {
        futures::future::join_all(
            reqs.into_iter()
                .map(|(label, r)| async move { self.labelled(label).generate(role, r).await }),
        )
        .await
    }

    /// Several samples of one request from the `role` model, one per `(label, nonce)`
    /// (the request's own nonce is replaced by each), asked for together so that a
    /// provider returning `n` choices per request sends one request
    /// ([`Model::generate_many`]; cached draws are served and only the others sent).
    /// Each draw is recorded as a call of its own with its label, and is the same call
    /// (and cache entry) as [`SampleContext::generate`] with that nonce; results in the
    /// order of `draws`.
    pub async fn generate_n(
        &self,
        role: &str,
        req: GenerateRequest,
        draws: Vec<(String, u64)>,
    ) -> Vec<Result<Completion, SampleError>> {
        let model = match self.model(role) {
            Ok(m) => m,
            Err(e) => {
                let why = e.to_string();
                return draws
                    .iter()
                    .map(|_| Err(SampleError::Protocol(why.clone())))
                    .collect();
            }
        };
        let offset = (self.shared.epoch.saturating_sub(1) as u64) << 32;
        let nonces: Vec<u64> = draws.iter().map(|(_, n)| n.wrapping_add(offset)).collect();
        let results = model.generate_many(&req, &nonces).await;
        let mut out = Vec::with_capacity(draws.len());
        for (((label, _), nonce), result) in draws.into_iter().zip(nonces).zip(results) {
            let mut r = req.clone();
            r.nonce = nonce;
            let (response, error) = match &result {
                Ok(c) => (Some(c.clone()), None),
                Err(e) => {
                    self.note_halt(e);
                    (None, Some(e.to_string()))
                }
            };
            let rendered_prompt = model.rendered_prompt(&r);
            self.shared
                .events
                .lock()
                .unwrap()
                .push(Event::Call(CallRecord {
                    role: role.to_string(),
                    label: Some(label),
                    model: model.name().to_string(),
                    request: r,
                    response,
                    error,
                    rendered_prompt,
                }));
            out.push(result.map_err(|source| SampleError::Model {
                role: role.to_string(),
                source,
            }));
        }
        out
    }

    /// Executes one tool step (`run`) and records it in the transcript and the run's step
    /// journal before returning its output.
    ///
    /// Steps are numbered in the order this is called, so a protocol runs its tools one
    /// at a time. When the sample is being resumed after a kill, a step that the earlier
    /// attempt already took (same position, same tool, same input) is *not* executed:
    /// its recorded output is returned and the event is marked `replayed`. A tool with
    /// side effects therefore runs at most once per recorded step. If the episode asks
    /// for something else at a recorded position (an uncached model call answered
    /// differently), a note says so and from there on every step is executed afresh.
    pub async fn tool<F, Fut>(
        &self,
        name: &str,
        input: serde_json::Value,
        run: F,
    ) -> Result<ToolOutput, SampleError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ToolOutput>,
    {
        let (seq, replay) = {
            let mut st = self.shared.step_state.lock().unwrap();
            let seq = st.0;
            st.0 += 1;
            let recorded = match &self.shared.steps {
                Some(s) if !st.1 => s.recorded.get(seq as usize),
                _ => None,
            };
            let replay = match recorded {
                Some(r) if r.name == name && r.input == input => Some(r.clone()),
                Some(r) => {
                    st.1 = true;
                    self.note(format!(
                        "resume: step {seq} asked for {name} {input} where the journal has {} {}; \
                         the episode diverged (an uncached model answer?), so this and later \
                         steps run afresh",
                        r.name, r.input
                    ));
                    None
                }
                None => None,
            };
            (seq, replay)
        };
        if let Some(mut rec) = replay {
            rec.replayed = true;
            let out = ToolOutput {
                output: rec.output.clone(),
                exit_status: rec.exit_status,
                error: rec.error.clone(),
                replayed: true,
            };
            self.shared.events.lock().unwrap().push(Event::Tool(rec));
            return Ok(out);
        }
        let t0 = Instant::now();
        let mut out = run().await;
        out.replayed = false;
        let rec = ToolRecord {
            name: name.to_string(),
            input,
            output: out.output.clone(),
            exit_status: out.exit_status,
            error: out.error.clone(),
            duration_ms: t0.elapsed().as_millis() as u64,
            replayed: false,
        };
        if let Some(steps) = &self.shared.steps {
            let entry = JournalEntry {
                id: self.shared.sample_id.to_string(),
                epoch: self.shared.epoch,
                seq,
                tool: rec.clone(),
            };
            steps
                .journal
                .lock()
                .unwrap()
                .append(&entry)
                .map_err(|e| SampleError::Protocol(format!("step journal: {e}")))?;
        }
        self.shared.events.lock().unwrap().push(Event::Tool(rec));
        Ok(out)
    }

    /// Adds a note to the transcript at this point.
    pub fn note(&self, text: impl Into<String>) {
        self.shared
            .events
            .lock()
            .unwrap()
            .push(Event::Note(NoteRecord { text: text.into() }));
    }

    /// The transcript so far (labelled views of this sample share it).
    pub fn into_transcript(self) -> Transcript {
        Transcript {
            events: std::mem::take(&mut *self.shared.events.lock().unwrap()),
        }
    }
}
