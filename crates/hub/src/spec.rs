//! What a name given by the user refers to: a known model, a file on the Hugging Face hub,
//! or a path on this machine.

use std::path::{Path, PathBuf};

use crate::registry::{Artifact, FileSpec, HfSource, ModelKind, ModelSpec, Registry, Source};
use crate::{HubConfig, HubError};

pub(crate) enum Target {
    /// A file or folder on this machine, used in place.
    Local(PathBuf),
    /// A model fetched into (and looked up in) `dir`.
    Model { spec: ModelSpec, dir: PathBuf },
}

/// Whether a name is a path: it starts with `/`, `./` or `../`.
pub(crate) fn is_path(name: &str) -> bool {
    name.starts_with('/') || name.starts_with("./") || name.starts_with("../")
}

pub(crate) fn target(cfg: &HubConfig, registry: &Registry, name: &str) -> Result<Target, HubError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(HubError::InvalidSpec {
            spec: name.to_string(),
            reason: "empty model name".to_string(),
        });
    }
    if let Some(rest) = name.strip_prefix("hf:") {
        let (spec, dir) = parse_hf(cfg, name, rest)?;
        return Ok(Target::Model { spec, dir });
    }
    if is_path(name) {
        return Ok(Target::Local(PathBuf::from(name)));
    }
    match registry.find(name) {
        Some(spec) => Ok(Target::Model {
            spec: spec.clone(),
            dir: cfg.cache_dir.join(&spec.name),
        }),
        None => Err(HubError::UnknownModel {
            name: name.to_string(),
            known: registry.known_names(),
        }),
    }
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && !s.contains('\\')
        && !s.chars().any(|c| c.is_control() || c == '#' || c == '?')
}

/// `hf:OWNER/REPO/PATH/IN/REPO[#sha256=HEX]`, cached under `CACHE/hf/OWNER/REPO/PATH`.
fn parse_hf(cfg: &HubConfig, spec: &str, rest: &str) -> Result<(ModelSpec, PathBuf), HubError> {
    let invalid = |reason: &str| HubError::InvalidSpec {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let (path, fragment) = match rest.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (rest, None),
    };
    let sha256 = match fragment {
        None => None,
        Some(f) => {
            let hex = f
                .strip_prefix("sha256=")
                .ok_or_else(|| invalid("the only fragment understood is #sha256=HEX"))?;
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(invalid("sha256 must be 64 hexadecimal digits"));
            }
            Some(hex.to_ascii_lowercase())
        }
    };
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() < 3 {
        return Err(invalid("expected hf:OWNER/REPO/FILE"));
    }
    if !segments.iter().all(|s| valid_segment(s)) {
        return Err(invalid(
            "empty, `.`/`..` or otherwise unusable path segment",
        ));
    }
    let repo = format!("{}/{}", segments[0], segments[1]);
    let file = segments[2..].join("/");
    let kind = if file.ends_with(".gguf") {
        ModelKind::Gguf
    } else {
        ModelKind::Embedding
    };
    let model = ModelSpec {
        name: format!("hf:{path}"),
        aliases: Vec::new(),
        kind,
        description: format!("{file} from the Hugging Face repository {repo}"),
        licence: "see the repository".to_string(),
        artifact: Artifact::File(FileSpec {
            path: file.clone(),
            sha256,
            size: None,
            required: true,
        }),
        sources: vec![Source::HuggingFace(HfSource {
            repo,
            revision: "main".to_string(),
            files: vec![(file.clone(), file)],
        })],
    };
    let dir = cfg.cache_dir.join("hf").join(segments[0]).join(segments[1]);
    Ok((model, dir))
}

/// A local path as a pull returns it: canonical, after checking it exists and is not an
/// unfinished download.
pub(crate) fn local(path: &Path) -> Result<PathBuf, HubError> {
    if path.extension().is_some_and(|e| e == crate::cache::PARTIAL) {
        return Err(HubError::PartialFile {
            path: path.to_path_buf(),
        });
    }
    match std::fs::canonicalize(path) {
        Ok(p) => Ok(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(HubError::LocalNotFound {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(HubError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HubConfig {
        HubConfig::new("/cache")
    }

    #[test]
    fn hf_specs() {
        let reg = Registry::empty();
        let sha = "AB".repeat(32);
        let Target::Model { spec, dir } =
            target(&cfg(), &reg, &format!("hf:o/r/sub/f.gguf#sha256={sha}")).unwrap()
        else {
            panic!("not a model")
        };
        assert_eq!(dir, Path::new("/cache/hf/o/r"));
        assert_eq!(spec.name, "hf:o/r/sub/f.gguf");
        assert_eq!(spec.sha256(), Some("ab".repeat(32).as_str()));
        assert_eq!(
            spec.artifact,
            Artifact::File(FileSpec {
                path: "sub/f.gguf".to_string(),
                sha256: Some("ab".repeat(32)),
                size: None,
                required: true
            })
        );
        for bad in [
            "hf:o/r",
            "hf:o/r/",
            "hf:o/../f",
            "hf:o/r/f#md5=00",
            "hf:o/r/f#sha256=12",
            "hf:o//f",
        ] {
            assert!(
                matches!(target(&cfg(), &reg, bad), Err(HubError::InvalidSpec { .. })),
                "{bad} should be invalid"
            );
        }
    }

    #[test]
    fn names_paths_and_unknowns() {
        let reg = Registry::builtin();
        assert!(matches!(
            target(&cfg(), &reg, "/x/y.gguf"),
            Ok(Target::Local(_))
        ));
        assert!(matches!(
            target(&cfg(), &reg, "./y.gguf"),
            Ok(Target::Local(_))
        ));
        let Ok(Target::Model { spec, dir }) = target(&cfg(), &reg, "GEMMA3-270M") else {
            panic!("alias not found")
        };
        assert_eq!(spec.name, "gemma-3-270m");
        assert_eq!(dir, Path::new("/cache/gemma-3-270m"));
        let err = target(&cfg(), &reg, "y.gguf").err().unwrap().to_string();
        assert!(err.contains("unknown model `y.gguf`"), "{err}");
        assert!(
            err.contains("gemma-3-270m") && err.contains("all-minilm-l6-v2"),
            "{err}"
        );
    }
}
