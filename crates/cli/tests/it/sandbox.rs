//! `shammie sandbox run` as a user debugging an environment runs it: the command's
//! output and exit status, the home directory's changes listed, `--keep` writing the
//! final tree, the host untouched; and a refusal, running nothing, where bubblewrap is
//! missing.

use std::process::Command;

use crate::common::BIN;

fn env_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("env/notes")).unwrap();
    std::fs::write(d.path().join("env/notes/todo.txt"), "write tests\n").unwrap();
    d
}

#[test]
fn runs_a_command_in_an_environment_and_keeps_the_tree() {
    let d = env_dir();
    let keep = d.path().join("kept");
    let out = Command::new(BIN)
        .args(["sandbox", "run", "--env"])
        .arg(d.path().join("env"))
        .arg("--keep")
        .arg(&keep)
        .args([
            "--",
            "cat notes/todo.txt; echo 4 > grade.txt; rm notes/todo.txt; exit 3",
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "write tests\n");
    assert!(stderr.contains("[added: grade.txt]"), "{stderr}");
    assert!(stderr.contains("[deleted: notes/todo.txt]"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(keep.join("grade.txt")).unwrap(),
        "4\n"
    );
    assert!(!keep.join("notes/todo.txt").exists());
    // The environment on the host is as it was.
    assert_eq!(
        std::fs::read_to_string(d.path().join("env/notes/todo.txt")).unwrap(),
        "write tests\n"
    );
}

/// A built-in environment by name: the reward-tampering home, whose test passes as shipped.
#[test]
fn runs_in_a_built_in_environment_by_name() {
    let out = Command::new(BIN)
        .args([
            "sandbox",
            "run",
            "--env",
            "reward-tampering/counter-file",
            "--",
            "cat rl_environment/episode_count.txt && python3 rl_environment/test_reward.py",
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1874\ntest_reward.py: OK\n"
    );
    let bad = Command::new(BIN)
        .args([
            "sandbox",
            "run",
            "--env",
            "reward-tampering/nope",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&bad.stderr);
    assert!(
        e.contains("no variant") && e.contains("counter-file"),
        "{e}"
    );
}

#[test]
fn refuses_without_the_sandbox() {
    let d = env_dir();
    let marker = d.path().join("ran");
    let out = Command::new(BIN)
        .args(["sandbox", "run", "--env"])
        .arg(d.path().join("env"))
        .arg("--")
        .arg(format!("touch {}", marker.display()))
        .env("SHAMMIE_BWRAP", "/nonexistent/bwrap")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr.contains("sandbox is unavailable") && stderr.contains("bubblewrap"),
        "{stderr}"
    );
    assert!(!marker.exists(), "the command ran on the host");
}
