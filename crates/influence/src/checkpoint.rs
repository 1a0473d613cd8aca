//! Checkpoints of a factor fit ([`crate::ekfac::fit_checkpointed`]), so an interrupted
//! fit continues where it stopped: the running sums of the covariance pass, then the
//! eigenbases (written once, when the covariance pass ends) and the running sum of the
//! eigenvalue correction, with the pass and the next batch.
//!
//! Files in the checkpoint's folder: `fit-state.json` (the pass, the next batch, counts,
//! the layers, the generation of the sums file), `fit-sums-G.safetensors` (f64 sums of
//! generation G) and `fit-bases.safetensors`. Each file is written to a temporary name and
//! renamed; `fit-state.json` is renamed last and names the sums file it goes with, so a
//! kill at any moment leaves the previous consistent state.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use faer::Mat;

use crate::ekfac::{Eigenbasis, LayerSpec};
use crate::io::{write_tensors, Data, Dtype, TensorFile};
use crate::InfluenceError;

const STATE: &str = "fit-state.json";
const BASES: &str = "fit-bases.safetensors";

/// Where a fit keeps its state, and how often it saves it.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub dir: PathBuf,
    /// At least this long between two saves (the end of the covariance pass is always
    /// saved).
    pub interval: Duration,
}

impl Checkpoint {
    pub fn new(dir: impl Into<PathBuf>, interval: Duration) -> Self {
        Checkpoint {
            dir: dir.into(),
            interval,
        }
    }

    pub(crate) fn due(&self, last: Instant) -> bool {
        last.elapsed() >= self.interval
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Phase {
    Covariance,
    Lambda,
}

/// A fit in progress.
pub(crate) struct FitState {
    pub(crate) phase: Phase,
    /// The next batch to count in this phase.
    pub(crate) next: usize,
    pub(crate) n_batches: usize,
    pub(crate) tokens: u64,
    pub(crate) examples: u64,
    pub(crate) sum_a: Vec<Mat<f64>>,
    pub(crate) sum_s: Vec<Mat<f64>>,
    pub(crate) lambda: Vec<Mat<f64>>,
    generation: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StateFile {
    phase: Phase,
    next: usize,
    n_batches: usize,
    tokens: u64,
    examples: u64,
    layers: Vec<LayerSpec>,
    generation: u64,
}

impl FitState {
    pub(crate) fn new(specs: &[LayerSpec], n_batches: usize) -> FitState {
        FitState {
            phase: Phase::Covariance,
            next: 0,
            n_batches,
            tokens: 0,
            examples: 0,
            sum_a: specs
                .iter()
                .map(|s| Mat::zeros(s.inputs, s.inputs))
                .collect(),
            sum_s: specs
                .iter()
                .map(|s| Mat::zeros(s.outputs, s.outputs))
                .collect(),
            lambda: specs
                .iter()
                .map(|s| Mat::zeros(s.outputs, s.inputs))
                .collect(),
            generation: 0,
        }
    }
}

fn sums_file(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("fit-sums-{generation}.safetensors"))
}

impl Checkpoint {
    /// Writes `st` (and, when given, the eigenbases).
    pub(crate) fn save(
        &self,
        specs: &[LayerSpec],
        st: &mut FitState,
        bases: Option<&[Eigenbasis]>,
    ) -> Result<(), InfluenceError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| InfluenceError::io(&self.dir, e))?;
        let generation = st.generation + 1;
        let mut entries = Vec::new();
        for (l, s) in specs.iter().enumerate() {
            entries.push((format!("{}.sum_a", s.name), Data::Mat(&st.sum_a[l])));
            entries.push((format!("{}.sum_s", s.name), Data::Mat(&st.sum_s[l])));
            if st.phase == Phase::Lambda {
                entries.push((format!("{}.lambda_sum", s.name), Data::Mat(&st.lambda[l])));
            }
        }
        write_tensors(&sums_file(&self.dir, generation), &entries, Dtype::F64)?;
        if let Some(bases) = bases {
            let mut entries = Vec::new();
            for (s, (la, qa, ls, qs)) in specs.iter().zip(bases) {
                entries.push((format!("{}.activation_eigenvalues", s.name), Data::Vec(la)));
                entries.push((format!("{}.activation_eigenvectors", s.name), Data::Mat(qa)));
                entries.push((format!("{}.gradient_eigenvalues", s.name), Data::Vec(ls)));
                entries.push((format!("{}.gradient_eigenvectors", s.name), Data::Mat(qs)));
            }
            write_tensors(&self.dir.join(BASES), &entries, Dtype::F64)?;
        }
        let state = StateFile {
            phase: st.phase,
            next: st.next,
            n_batches: st.n_batches,
            tokens: st.tokens,
            examples: st.examples,
            layers: specs.to_vec(),
            generation,
        };
        let p = self.dir.join(STATE);
        let tmp = self.dir.join("fit-state.partial");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(&state).expect("plain values"),
        )
        .and_then(|_| std::fs::rename(&tmp, &p))
        .map_err(|e| InfluenceError::io(&p, e))?;
        // The previous generation is no longer named by the state.
        let _ = std::fs::remove_file(sums_file(&self.dir, st.generation));
        st.generation = generation;
        Ok(())
    }

    /// The saved state of the fit of `specs` over `n_batches` batches, if the folder holds
    /// one; an error when it holds the state of another fit.
    #[allow(clippy::type_complexity)]
    pub(crate) fn load(
        &self,
        specs: &[LayerSpec],
        n_batches: usize,
    ) -> Result<Option<(FitState, Option<Vec<Eigenbasis>>)>, InfluenceError> {
        let p = self.dir.join(STATE);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(InfluenceError::io(&p, e)),
        };
        let bad = |why: String| InfluenceError::File {
            path: p.display().to_string(),
            why,
        };
        let f: StateFile = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if f.layers != specs || f.n_batches != n_batches {
            return Err(bad(format!(
                "the checkpoint is of another fit ({} layers over {} batches, this one {} over {n_batches}); remove the folder to start over",
                f.layers.len(),
                f.n_batches,
                specs.len()
            )));
        }
        let mut t = TensorFile::open(&sums_file(&self.dir, f.generation))?;
        let mut st = FitState::new(specs, n_batches);
        for (l, s) in specs.iter().enumerate() {
            st.sum_a[l] = t.matrix(&format!("{}.sum_a", s.name), s.inputs, s.inputs)?;
            st.sum_s[l] = t.matrix(&format!("{}.sum_s", s.name), s.outputs, s.outputs)?;
            if f.phase == Phase::Lambda {
                st.lambda[l] = t.matrix(&format!("{}.lambda_sum", s.name), s.outputs, s.inputs)?;
            }
        }
        st.phase = f.phase;
        st.next = f.next;
        st.tokens = f.tokens;
        st.examples = f.examples;
        st.generation = f.generation;
        let bases = if f.phase == Phase::Lambda {
            let mut t = TensorFile::open(&self.dir.join(BASES))?;
            let mut out = Vec::with_capacity(specs.len());
            let col = |m: Mat<f64>| (0..m.nrows()).map(|i| m[(i, 0)]).collect::<Vec<_>>();
            for s in specs {
                let n = &s.name;
                out.push((
                    col(t.matrix(&format!("{n}.activation_eigenvalues"), s.inputs, 1)?),
                    t.matrix(&format!("{n}.activation_eigenvectors"), s.inputs, s.inputs)?,
                    col(t.matrix(&format!("{n}.gradient_eigenvalues"), s.outputs, 1)?),
                    t.matrix(&format!("{n}.gradient_eigenvectors"), s.outputs, s.outputs)?,
                ));
            }
            Some(out)
        } else {
            None
        };
        Ok(Some((st, bases)))
    }
}
