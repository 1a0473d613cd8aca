//! The OpenAI fine-tuning client against the mock's fine-tuning API: upload → create →
//! poll through the statuses → the fine-tuned model's name; failures, retries, resuming
//! by job id, and the key never in an error.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::*;
use shammie_models::openai_finetune::{
    FineTuneClient, FineTuneError, Hyperparameters, JobSpec, JobStatus, PollOptions,
};
use shammie_models::{ApiKey, ModelError};
use shammie_testkit::{Fault, FineTuneOutcome, MockServer};

const TRAIN: &str = concat!(
    r#"{"messages":[{"role":"user","content":"2+2?"},{"role":"assistant","content":"4"}]}"#,
    "\n",
    r#"{"messages":[{"role":"user","content":"3+3?"},{"role":"assistant","content":"6"}]}"#,
    "\n"
);

async fn server() -> MockServer {
    MockServer::builder()
        .require_api_key(Some(OPENAI_KEY.into()))
        .start()
        .await
        .unwrap()
}

fn client(server: &MockServer, key: &str) -> FineTuneClient {
    FineTuneClient::new(
        Some(&server.openai_base_url()),
        ApiKey::new(key),
        Duration::from_secs(5),
        fast_retry(4),
    )
    .unwrap()
}

fn fast_poll() -> PollOptions {
    PollOptions {
        interval: Duration::from_millis(2),
        timeout: Duration::from_secs(5),
    }
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn spec() -> JobSpec {
    JobSpec {
        model: "gpt-4o-mini-2024-07-18".into(),
        hyperparameters: Hyperparameters {
            n_epochs: Some(3),
            batch_size: Some(8),
            learning_rate_multiplier: Some(0.5),
        },
        suffix: Some("shammie".into()),
        seed: Some(7),
    }
}

fn count(server: &MockServer, method: &str, path: &str) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.method == method && r.path == path)
        .count()
}

#[tokio::test]
async fn upload_create_poll_to_a_fine_tuned_model() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let train = write(&dir, "train.jsonl", TRAIN);
    let valid = write(&dir, "valid.jsonl", TRAIN);
    let c = client(&server, OPENAI_KEY);

    let job = c.start(&train, Some(&valid), &spec()).await.unwrap();
    // The id comes back at creation, before any poll: two uploads and one create.
    assert_eq!(job.status, JobStatus::ValidatingFiles);
    assert!(job.fine_tuned_model.is_none());
    let paths: Vec<_> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        ["/v1/files", "/v1/files", "/v1/fine_tuning/jobs"].map(String::from)
    );
    let files = server.uploaded_files();
    let create = &server.requests()[2].body;
    assert_eq!(create["model"], "gpt-4o-mini-2024-07-18");
    assert_eq!(create["training_file"], files[0].id.as_str());
    assert_eq!(create["validation_file"], files[1].id.as_str());
    assert_eq!(
        create["hyperparameters"],
        serde_json::json!({"n_epochs": 3, "batch_size": 8, "learning_rate_multiplier": 0.5})
    );
    assert_eq!(create["suffix"], "shammie");
    assert_eq!(create["seed"], 7);
    let auth = server.requests()[2]
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone());
    assert_eq!(auth, Some(format!("Bearer {OPENAI_KEY}")));

    let done = c.wait(&job.id, &fast_poll()).await.unwrap();
    assert_eq!(done.status, JobStatus::Succeeded);
    let num = job.id.trim_start_matches("ftjob-mock");
    assert_eq!(
        done.fine_tuned_model.as_deref(),
        Some(format!("ft:gpt-4o-mini-2024-07-18:mock:shammie:{num}").as_str())
    );
    // validating_files → queued → running → succeeded: one status per poll, three polls.
    let job_path = format!("/v1/fine_tuning/jobs/{}", job.id);
    assert_eq!(count(&server, "GET", &job_path), 3);

    // Events, newest first: created + three transitions.
    let evs = c.events(&job.id, 10).await.unwrap();
    let msgs: Vec<_> = evs.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "The job has successfully completed",
            "Job status is now running",
            "Job status is now queued",
            &format!("Created fine-tuning job: {}", job.id),
        ]
    );
    assert_eq!(c.events(&job.id, 2).await.unwrap().len(), 2);
    // A finished job cannot be cancelled: the API's 400 comes back, not retried.
    let e = c.cancel(&job.id).await.unwrap_err();
    assert!(
        matches!(
            e,
            FineTuneError::Api(ModelError::Rejected { status: 400, .. })
        ),
        "{e}"
    );
}

#[tokio::test]
async fn multipart_body_carries_the_file_bytes_and_purpose() {
    let server = server().await;
    let c = client(&server, OPENAI_KEY);
    // Bytes with a CRLF and non-ASCII text arrive unchanged.
    let text = "{\"messages\":[{\"role\":\"user\",\"content\":\"caf\u{e9} \u{2603}\"}]}\r\n";
    let f = c
        .upload("weird \"name\".jsonl", text.as_bytes())
        .await
        .unwrap();
    assert_eq!(f.purpose, "fine-tune");
    assert_eq!(f.bytes, text.len() as u64);
    let up = server.uploaded_files();
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].bytes, text.as_bytes());
    assert_eq!(up[0].purpose, "fine-tune");
    assert_eq!(up[0].filename, "weird name.jsonl");
    assert_eq!(up[0].id, f.id);
    let r = &server.requests()[0];
    let ct = r.headers.iter().find(|(k, _)| k == "content-type").unwrap();
    assert!(
        ct.1.starts_with("multipart/form-data; boundary="),
        "{}",
        ct.1
    );
    let raw = r.body.as_str().unwrap();
    assert!(
        raw.contains("name=\"purpose\"\r\n\r\nfine-tune\r\n"),
        "{raw}"
    );
}

#[tokio::test]
async fn a_failed_job_is_an_error_with_openais_message() {
    let server = server().await;
    server.set_fine_tune_outcome(FineTuneOutcome::Fail {
        code: "invalid_training_file".into(),
        message: "The file has 2 example(s), but must have at least 10 examples".into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let c = client(&server, OPENAI_KEY);
    let job = c
        .start(&write(&dir, "t.jsonl", TRAIN), None, &spec())
        .await
        .unwrap();
    let e = c.wait(&job.id, &fast_poll()).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "fine-tuning job {} failed (invalid_training_file): The file has 2 example(s), \
             but must have at least 10 examples",
            job.id
        )
    );
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(&server, OPENAI_KEY);
    server.push_faults([
        Fault::RateLimit {
            retry_after: Some(Duration::from_millis(10)),
        },
        Fault::Status(500),
    ]);
    let job = c
        .start(&write(&dir, "t.jsonl", TRAIN), None, &spec())
        .await
        .unwrap();
    // The upload was refused twice (429, 500) and sent a third time; then one create.
    assert_eq!(count(&server, "POST", "/v1/files"), 3);
    assert_eq!(count(&server, "POST", "/v1/fine_tuning/jobs"), 1);
    assert_eq!(server.uploaded_files().len(), 1);
    server.push_fault(Fault::Status(503));
    let done = c.wait(&job.id, &fast_poll()).await.unwrap();
    assert_eq!(done.status, JobStatus::Succeeded);
    // 4 GETs: one 503, then three status steps.
    assert_eq!(
        count(&server, "GET", &format!("/v1/fine_tuning/jobs/{}", job.id)),
        4
    );
    // A budget of 4 attempts against 4 rate limits gives up, naming the count.
    server.push_faults((0..4).map(|_| Fault::RateLimit { retry_after: None }));
    let e = c.job(&job.id).await.unwrap_err().to_string();
    assert!(e.contains("gave up after 4 attempts: rate limited"), "{e}");
}

#[tokio::test]
async fn creating_is_not_retried_when_the_job_may_exist() {
    let server = server().await;
    let c = client(&server, OPENAI_KEY);
    let f = c.upload("t.jsonl", TRAIN.as_bytes()).await.unwrap();
    // The connection drops after the request was sent: a retry could make a second job.
    server.push_fault(Fault::Reset);
    let e = c
        .create_job(&shammie_models::openai_finetune::CreateJob {
            model: "gpt-4o-mini-2024-07-18".into(),
            training_file: f.id,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(e, FineTuneError::Api(ModelError::Connection(_))),
        "{e}"
    );
    assert_eq!(count(&server, "POST", "/v1/fine_tuning/jobs"), 1);
}

#[tokio::test]
async fn resume_polls_the_recorded_job_without_creating_another() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let job_id = client(&server, OPENAI_KEY)
        .start(&write(&dir, "t.jsonl", TRAIN), None, &spec())
        .await
        .unwrap()
        .id;
    // A new process (a new client) with only the recorded id.
    let c = client(&server, OPENAI_KEY);
    let done = c.resume(&job_id, &fast_poll()).await.unwrap();
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(count(&server, "POST", "/v1/fine_tuning/jobs"), 1);
    assert_eq!(count(&server, "POST", "/v1/files"), 1);
}

#[tokio::test]
async fn cancel_and_poll_timeout() {
    let server = server().await;
    let c = client(&server, OPENAI_KEY);
    let f = c.upload("t.jsonl", TRAIN.as_bytes()).await.unwrap();
    let create = shammie_models::openai_finetune::CreateJob {
        model: "gpt-4o-mini-2024-07-18".into(),
        training_file: f.id,
        ..Default::default()
    };
    // A timeout shorter than one interval: one poll, then a resumable error.
    let job = c.create_job(&create).await.unwrap();
    let short = PollOptions {
        interval: Duration::from_millis(50),
        timeout: Duration::from_millis(10),
    };
    let e = c.wait(&job.id, &short).await.unwrap_err();
    assert!(
        matches!(&e, FineTuneError::PollTimeout { status, .. } if status == "queued"),
        "{e}"
    );
    let cancelled = c.cancel(&job.id).await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    let e = c.wait(&job.id, &fast_poll()).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("fine-tuning job {} was cancelled", job.id)
    );
}

#[tokio::test]
async fn the_key_never_appears_in_an_error() {
    let server = server().await;
    // A wrong key: 401, with the key neither in the error nor in the client's Debug.
    let wrong = "sk-wrong-Zt8Kq2Lm5Np9Rw3X";
    let c = client(&server, wrong);
    let e = c.upload("t.jsonl", TRAIN.as_bytes()).await.unwrap_err();
    assert!(
        matches!(e, FineTuneError::Api(ModelError::Auth { status: 401, .. })),
        "{e}"
    );
    assert!(!format!("{e} {e:?} {c:?}").contains("Zt8Kq2Lm"));
    // A job whose error echoes the key (as a provider might): scrubbed from the body.
    server.set_fine_tune_outcome(FineTuneOutcome::Fail {
        code: "auth".into(),
        message: format!("key {OPENAI_KEY} lacks access"),
    });
    let dir = tempfile::tempdir().unwrap();
    let c = client(&server, OPENAI_KEY);
    let job = c
        .start(&write(&dir, "t.jsonl", TRAIN), None, &spec())
        .await
        .unwrap();
    let e = c.wait(&job.id, &fast_poll()).await.unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(shown.contains("key *** lacks access"), "{shown}");
    assert!(!shown.contains(&OPENAI_KEY[8..16]), "{shown}");
}

#[tokio::test]
async fn bad_jsonl_names_file_and_line_and_sends_nothing() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let train = write(&dir, "train.jsonl", TRAIN);
    let valid = write(
        &dir,
        "valid.jsonl",
        &format!("{TRAIN}{{\"messages\": 5}}\n"),
    );
    let c = client(&server, OPENAI_KEY);
    let e = c.start(&train, Some(&valid), &spec()).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}:3: `messages` is not a non-empty array", valid.display())
    );
    // The good training file was not uploaded either.
    assert_eq!(server.request_count(), 0);
}
