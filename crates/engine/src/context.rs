//! What a study's protocol sees while solving one sample.

use std::sync::{Arc, Mutex};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use shammie_core::{CallRecord, Capabilities, Completion, GenerateRequest, Transcript};
use shammie_models::Model;

use crate::{Models, SampleError};

/// Gives a protocol its models by role and records every call, in the order made, into
/// the sample's transcript.
pub struct SampleContext<'a> {
    models: &'a Models,
    sample_id: &'a str,
    epoch: u32,
    seed: u64,
    calls: Mutex<Vec<CallRecord>>,
}

impl<'a> SampleContext<'a> {
    pub fn new(models: &'a Models, sample_id: &'a str, epoch: u32, seed: u64) -> Self {
        Self {
            models,
            sample_id,
            epoch,
            seed,
            calls: Mutex::new(Vec::new()),
        }
    }

    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A random generator determined by the run seed, the sample and the epoch.
    pub fn rng(&self) -> ChaCha8Rng {
        let mut h = Sha256::new();
        h.update(self.seed.to_le_bytes());
        h.update(self.sample_id.as_bytes());
        h.update(self.epoch.to_le_bytes());
        let d: [u8; 32] = h.finalize().into();
        ChaCha8Rng::from_seed(d)
    }

    pub fn model(&self, role: &str) -> Result<&Arc<dyn Model>, SampleError> {
        self.models
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
            .wrapping_add(((self.epoch.saturating_sub(1)) as u64) << 32);
        let result = model.generate(&req).await;
        let (response, error) = match &result {
            Ok(c) => (Some(c.clone()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        self.calls.lock().unwrap().push(CallRecord {
            role: role.to_string(),
            model: model.name().to_string(),
            request: req,
            response,
            error,
        });
        result.map_err(|source| SampleError::Model {
            role: role.to_string(),
            source,
        })
    }

    /// Runs several calls to the `role` model concurrently; results in request order.
    pub async fn generate_all(
        &self,
        role: &str,
        reqs: Vec<GenerateRequest>,
    ) -> Vec<Result<Completion, SampleError>> {
        futures::future::join_all(reqs.into_iter().map(|r| self.generate(role, r))).await
    }

    pub fn into_transcript(self) -> Transcript {
        Transcript {
            calls: self.calls.into_inner().unwrap(),
        }
    }
}
