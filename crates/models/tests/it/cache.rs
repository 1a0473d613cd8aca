//! The SQLite response cache behind `ModelHub`: hits, persistence, what the key covers,
//! failures never stored, and no secrets on disk.

use std::path::Path;
use std::sync::Arc;

use crate::common::*;
use shammie_models::{ApiKey, ModelError, ResponseCache};
use shammie_testkit::{responder, Fault, MockReply, MockServer};

fn open_cache(path: &Path) -> Arc<ResponseCache> {
    Arc::new(ResponseCache::open(path).expect("cache"))
}

#[tokio::test]
async fn a_repeated_request_is_answered_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start().await.unwrap();
    let cache = open_cache(&dir.path().join("responses.sqlite"));
    let hub = hub_with_cache(&server, cache.clone());
    for s in [
        compat_spec(&server, "mock"),
        spec("openai:gpt-test"),
        spec("anthropic:claude-test"),
    ] {
        let model = open(&hub, &s);
        let mut req = full_request();
        if s.provider != shammie_models::Provider::Anthropic {
            req.top_logprobs = Some(3);
        }
        let before = server.request_count();

        let first = model.generate(&req).await.unwrap();
        assert!(!first.meta.cached);
        assert_eq!(first.meta.attempts, 1);
        assert_eq!(server.request_count(), before + 1, "{s}");

        let second = model.generate(&req).await.unwrap();
        assert!(second.meta.cached, "{s}");
        assert_eq!(second.meta.attempts, 0);
        assert_eq!(
            server.request_count(),
            before + 1,
            "{s}: the cache hit reached the server"
        );
        assert_eq!(second.text, first.text);
        assert_eq!(second.logprobs, first.logprobs);
        assert_eq!(second.stop_reason, first.stop_reason);
        assert_eq!(second.usage, first.usage);
    }
    assert_eq!(cache.len().unwrap(), 3);
}

#[tokio::test]
async fn the_cache_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/responses.sqlite");
    let server = MockServer::start().await.unwrap();
    let req = ask("Is the cache durable?");

    let first = {
        let cache = open_cache(&path);
        let model = open(
            &hub_with_cache(&server, cache.clone()),
            &compat_spec(&server, "mock"),
        );
        let c = model.generate(&req).await.unwrap();
        // Stored before the caller saw it: a second connection to the file sees it now.
        let other = ResponseCache::open(&path).unwrap();
        assert_eq!(other.len().unwrap(), 1);
        c
    };
    assert_eq!(server.request_count(), 1);

    let cache = open_cache(&path);
    assert_eq!(cache.len().unwrap(), 1);
    let model = open(
        &hub_with_cache(&server, cache),
        &compat_spec(&server, "mock"),
    );
    let again = model.generate(&req).await.unwrap();
    assert!(again.meta.cached);
    assert_eq!(again.text, first.text);
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn the_key_covers_nonce_sampling_model_and_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start().await.unwrap();
    let other_server = MockServer::start().await.unwrap();
    let cache = open_cache(&dir.path().join("c.sqlite"));
    let hub = hub_with_cache(&server, cache.clone());

    let base = ask("Is the key complete?");
    let model = open(&hub, &compat_spec(&server, "mock"));
    model.generate(&base).await.unwrap();
    assert_eq!(server.request_count(), 1);

    let mut variants = Vec::new();
    let mut r = base.clone();
    r.nonce = 1;
    variants.push(("nonce", r));
    let mut r = base.clone();
    r.temperature = Some(0.7);
    variants.push(("temperature", r));
    let mut r = base.clone();
    r.seed = Some(7);
    variants.push(("seed", r));
    let mut r = base.clone();
    r.max_tokens += 1;
    variants.push(("max_tokens", r));
    let mut r = base.clone();
    r.system = Some("Be brief.".into());
    variants.push(("system", r));
    for (what, req) in &variants {
        let before = server.request_count();
        let c = model.generate(req).await.unwrap();
        assert!(!c.meta.cached, "{what}: served from the cache");
        assert_eq!(server.request_count(), before + 1, "{what}");
    }

    // Same request, other model / other provider on the same server / other server.
    let others = [
        (open(&hub, &compat_spec(&server, "mock-2")), &server),
        (open(&hub, &spec("openai:mock")), &server),
        (
            open(&hub, &compat_spec(&other_server, "mock")),
            &other_server,
        ),
    ];
    for (m, srv) in &others {
        let before = srv.request_count();
        let c = m.generate(&base).await.unwrap();
        assert!(
            !c.meta.cached,
            "{}: served another endpoint's answer",
            m.endpoint()
        );
        assert_eq!(srv.request_count(), before + 1, "{}", m.endpoint());
    }

    // Every one of them is now a hit.
    let total = server.request_count() + other_server.request_count();
    for (_, req) in &variants {
        assert!(model.generate(req).await.unwrap().meta.cached);
    }
    for (m, _) in &others {
        assert!(
            m.generate(&base).await.unwrap().meta.cached,
            "{}",
            m.endpoint()
        );
    }
    assert_eq!(server.request_count() + other_server.request_count(), total);
    assert_eq!(
        cache.len().unwrap(),
        1 + variants.len() as u64 + others.len() as u64
    );
}

#[tokio::test]
async fn failures_are_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start().await.unwrap();
    let cache = open_cache(&dir.path().join("c.sqlite"));
    let mut opts = options(&server);
    opts.cache = Some(cache.clone());
    opts.retry = fast_retry(2);
    let hub = hub(opts);
    let model = open(&hub, &compat_spec(&server, "mock"));
    let req = ask("Will this fail?");

    server.push_faults([Fault::Status(500), Fault::Status(503)]);
    let err = model.generate(&req).await.unwrap_err();
    assert!(
        matches!(err, ModelError::Exhausted { attempts: 2, .. }),
        "{err:?}"
    );
    assert_eq!(server.request_count(), 2);
    assert!(cache.is_empty().unwrap());

    server.push_fault(Fault::Status(400));
    let err = model.generate(&req).await.unwrap_err();
    assert!(
        matches!(err, ModelError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    assert_eq!(server.request_count(), 3);
    assert!(cache.is_empty().unwrap());

    // The same request later succeeds at the server, and only then is it stored.
    let ok = model.generate(&req).await.unwrap();
    assert!(!ok.meta.cached);
    assert_eq!(server.request_count(), 4);
    assert_eq!(cache.len().unwrap(), 1);
    assert!(model.generate(&req).await.unwrap().meta.cached);
    assert_eq!(server.request_count(), 4);

    // An unsupported request is refused before the cache and the server alike.
    let anthropic = open(&hub, &spec("anthropic:claude-test"));
    let mut r = req.clone();
    r.top_logprobs = Some(2);
    assert!(matches!(
        anthropic.generate(&r).await,
        Err(ModelError::Unsupported(_))
    ));
    assert_eq!(cache.len().unwrap(), 1);
    assert_eq!(server.request_count(), 4);
}

#[tokio::test]
async fn the_cache_file_holds_no_api_key() {
    const MARKER: &str = "zebra-crossing-5521";
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::builder()
        .responder(responder(|r| {
            MockReply::for_request(r, format!("{MARKER} {}", r.model))
        }))
        .start()
        .await
        .unwrap();
    {
        let cache = open_cache(&dir.path().join("c.sqlite"));
        let mut opts = options(&server);
        opts.cache = Some(cache.clone());
        opts.env.compatible_api_key = Some(ApiKey::new(COMPAT_KEY));
        let hub = hub(opts);
        for s in [
            compat_spec(&server, "mock"),
            spec("openai:gpt-test"),
            spec("anthropic:claude-test"),
        ] {
            let c = open(&hub, &s).generate(&full_request()).await.unwrap();
            assert!(c.text.starts_with(MARKER));
        }
        assert_eq!(cache.len().unwrap(), 3);
        // Look while the connection is open too (entries may still sit in the WAL).
        assert_no_keys_in(dir.path(), MARKER);
    }
    assert_no_keys_in(dir.path(), MARKER);
}

/// Every file in `dir` (database, WAL, shared memory) together: the stored answers are
/// there (so the search works), the keys are not.
fn assert_no_keys_in(dir: &Path, marker: &str) {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(
        contains(marker),
        "the stored responses are not in the files"
    );
    for key in [OPENAI_KEY, ANTHROPIC_KEY, COMPAT_KEY, "sk-test-"] {
        assert!(!contains(key), "{key} is in the cache file");
    }
}
