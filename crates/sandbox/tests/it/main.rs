//! The sandbox against a command line adversary: each escape test tries one way out and
//! checks that it fails safely (and that the episode goes on working afterwards). They
//! need bubblewrap and user namespaces, which `scripts/test` installs; where they are
//! missing the tests fail with the install hint rather than pass vacuously.

use std::time::Duration;

use shammie_sandbox::{ChangeKind, CommandOutput, Entry, Episode, Limits, Sandbox, Tree};

fn limits() -> Limits {
    Limits {
        wall: Duration::from_secs(5),
        ..Limits::default()
    }
}

async fn sandbox() -> Sandbox {
    match Sandbox::new(limits()).await {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

fn home() -> Tree {
    let mut t = Tree::new();
    t.insert_file("notes/todo.txt", "write tests\n", false);
    t.insert_file("run.sh", "#!/bin/sh\necho from-script\n", true);
    t
}

async fn run(ep: &mut Episode, cmd: &str) -> CommandOutput {
    ep.run(cmd).await.expect("the sandbox starts")
}

/// After an escape attempt the episode still works.
async fn still_works(ep: &mut Episode) {
    let o = run(ep, "echo alive").await;
    assert_eq!(o.stdout, "alive\n", "{o:?}");
    assert!(o.captured, "{o:?}");
}

#[tokio::test]
async fn files_persist_across_commands_and_are_diffed() {
    let sb = sandbox().await;
    let mut ep = sb.episode(home());
    let o = run(&mut ep, "pwd; id -u; ./run.sh; cat notes/todo.txt").await;
    assert_eq!(
        o.stdout, "/home/user\n1000\nfrom-script\nwrite tests\n",
        "{o:?}"
    );
    let o = run(
        &mut ep,
        "echo done >> notes/todo.txt; mkdir -p out; echo 3 > out/grade.txt; rm run.sh",
    )
    .await;
    assert!(o.captured && o.exit_code == Some(0), "{o:?}");
    let o = run(&mut ep, "cat notes/todo.txt out/grade.txt").await;
    assert_eq!(o.stdout, "write tests\ndone\n3\n");
    let changes: Vec<(String, ChangeKind)> =
        ep.changes().into_iter().map(|c| (c.path, c.kind)).collect();
    assert_eq!(
        changes,
        [
            ("notes/todo.txt".to_string(), ChangeKind::Modified),
            ("out".to_string(), ChangeKind::Added),
            ("out/grade.txt".to_string(), ChangeKind::Added),
            ("run.sh".to_string(), ChangeKind::Deleted),
        ]
    );
    assert_eq!(ep.state().text("out/grade.txt").as_deref(), Some("3\n"));
}

#[tokio::test]
async fn host_files_are_out_of_reach() {
    // A run directory and an API-key cache on the host, at known paths.
    let host = tempfile::tempdir().unwrap();
    let secret = host.path().join("credentials.toml");
    std::fs::write(&secret, "api_key = \"sk-SECRET-123\"\n").unwrap();
    let home_dir = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let sb = sandbox().await;
    let mut ep = sb.episode(home());
    let cmd = format!(
        "cat /etc/shadow; cat /etc/passwd; ls {home_dir}; cat {s}; ls {d}; ls /work /root /home; \
         cat ~/.cache/shammie/*; find / -name credentials.toml 2>/dev/null; grep -r SECRET / 2>/dev/null | head",
        s = secret.display(),
        d = host.path().display()
    );
    let o = run(&mut ep, &cmd).await;
    assert!(
        !o.stdout.contains("SECRET") && !o.stderr.contains("SECRET"),
        "{o:?}"
    );
    assert!(!o.stdout.contains("root:"), "{o:?}");
    // The home is the sandbox's only home.
    let o = run(&mut ep, "ls /home").await;
    assert_eq!(o.stdout, "user\n");
    still_works(&mut ep).await;
}

#[tokio::test]
async fn writes_outside_the_home_never_reach_the_host() {
    let host = tempfile::tempdir().unwrap();
    let target = host.path().join("planted");
    let marker = format!("/tmp/shammie-escape-{}", std::process::id());
    let sb = sandbox().await;
    let mut ep = sb.episode(home());
    let cmd = format!(
        "echo x > {t}; echo x > /usr/bin/planted; echo x > {marker}; echo x > /planted; \
         mkdir -p {d}; echo x > {t}",
        t = target.display(),
        d = host.path().display()
    );
    run(&mut ep, &cmd).await;
    assert!(!target.exists());
    assert!(!std::path::Path::new("/usr/bin/planted").exists());
    assert!(!std::path::Path::new(&marker).exists());
    assert!(!std::path::Path::new("/planted").exists());
    // Nothing outside the home is kept in the episode either.
    assert!(ep.changes().is_empty(), "{:?}", ep.changes());
    still_works(&mut ep).await;
}

#[tokio::test]
async fn symlinks_and_dotdot_stay_inside() {
    let sb = sandbox().await;
    let mut ep = sb.episode(home());
    let o = run(
        &mut ep,
        "ln -s /etc/shadow shadow; ln -s / root; ln -s ../../.. up; cat shadow; \
         cat ../../../../etc/shadow; ls root/; ls up/",
    )
    .await;
    assert!(!o.stdout.contains("root:"), "{o:?}");
    // The links come back as links, their targets never read on the host.
    assert_eq!(
        ep.state().get("shadow"),
        Some(&Entry::Symlink("/etc/shadow".into()))
    );
    assert_eq!(ep.state().file("shadow"), None);
    // Written out with --keep they stay links.
    let keep = tempfile::tempdir().unwrap();
    let dir = keep.path().join("kept");
    ep.state().write_to(&dir).unwrap();
    assert!(std::fs::symlink_metadata(dir.join("shadow"))
        .unwrap()
        .file_type()
        .is_symlink());
    still_works(&mut ep).await;
}

#[tokio::test]
async fn other_processes_are_invisible() {
    let me = std::process::id();
    let sb = sandbox().await;
    let mut ep = sb.episode(home());
    let o = run(
        &mut ep,
        &format!(
            "cat /proc/{me}/environ; cat /proc/{me}/cmdline; ls /proc | grep -c '^[0-9]'; \
             tr '\\0' ' ' < /proc/1/cmdline"
        ),
    )
    .await;
    let (n, init) = o.stdout.split_once('\n').unwrap_or_default();
    let n: usize = n.trim().parse().unwrap_or_else(|_| panic!("{o:?}"));
    assert!(n < 10, "the sandbox sees {n} processes: {o:?}");
    // PID 1 is bubblewrap, started with its options on a descriptor: no host paths.
    assert!(init.contains("bwrap --args 4 -- /bin/sh"), "{o:?}");
    assert!(
        !init.contains("--ro-bind") && !init.contains("--seccomp"),
        "{o:?}"
    );
    assert!(!o.stdout.contains("HOME="), "{o:?}");
    still_works(&mut ep).await;
}

#[tokio::test]
async fn no_network_at_all() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let sb = sandbox().await;
    let mut ep = sb.episode(home());
    let py = format!(
        "import socket\nfor fam, addr in [(socket.AF_INET, ('127.0.0.1', {port})), (socket.AF_INET, ('1.1.1.1', 80)), (socket.AF_INET6, ('::1', {port}))]:\n    try:\n        s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(2); s.connect(addr); print('CONNECTED', addr)\n    except OSError as e:\n        print('refused', addr, e.errno)\n"
    );
    let o = run(&mut ep, &format!("python3 -c \"{py}\"")).await;
    assert!(!o.stdout.contains("CONNECTED"), "{o:?}");
    assert_eq!(o.stdout.matches("refused").count(), 3, "{o:?}");
    assert!(
        listener.accept().is_err(),
        "the host listener got a connection"
    );
    // Unix sockets (local IPC, e.g. Python's multiprocessing) still work.
    let o = run(
        &mut ep,
        "python3 -c \"import socket; a, b = socket.socketpair(); a.send(b'hi'); print(b.recv(2))\"",
    )
    .await;
    assert_eq!(o.stdout, "b'hi'\n", "{o:?}");
}

#[tokio::test]
async fn fork_bombs_are_contained() {
    let sb = sandbox().await;
    let mut ep = sb.episode(home());
    let bomb = run(
        &mut ep,
        "f() { f | f & }; f 2>/dev/null; sleep 3; echo survived",
    );
    let host = async {
        // While the bomb runs, the host still starts threads and processes, and the
        // sandbox's processes stay within their budget.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let threads: Vec<_> = (0..32).map(|_| std::thread::spawn(|| 1)).collect();
        let n: i32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(n, 32);
        assert!(std::process::Command::new("true")
            .status()
            .unwrap()
            .success());
        let procs = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            })
            .count();
        procs
    };
    let (o, procs_during) = tokio::join!(bomb, host);
    assert!(
        o.duration < limits().wall + Duration::from_secs(12),
        "{o:?}"
    );
    // Every process on the machine, the bomb's included: far fewer than an unchecked
    // bomb makes in 1.5 s (thousands, until the machine runs out).
    assert!(
        procs_during < 1000,
        "{procs_during} processes during the bomb"
    );
    still_works(&mut ep).await;
}

#[tokio::test]
async fn memory_hogs_fail() {
    let sb = sandbox().await;
    let mut ep = sb.episode(home());
    let o = run(
        &mut ep,
        "python3 -c \"x = bytearray(4 << 30); print('allocated')\"",
    )
    .await;
    assert!(!o.stdout.contains("allocated"), "{o:?}");
    assert!(o.stderr.contains("MemoryError"), "{o:?}");
    still_works(&mut ep).await;
}

#[tokio::test]
async fn infinite_loops_time_out_and_keep_the_files() {
    let sb = sandbox().await;
    let mut ep = sb.episode(home());
    let o = run(&mut ep, "echo before > f; while :; do :; done").await;
    assert!(o.timed_out, "{o:?}");
    assert_eq!(o.exit_code, Some(124), "{o:?}");
    assert!(o.duration < limits().wall + Duration::from_secs(3), "{o:?}");
    // What the command wrote before it was stopped is kept.
    assert!(o.captured, "{o:?}");
    assert_eq!(ep.state().text("f").as_deref(), Some("before\n"));
    // Background processes die with the command.
    let o = run(&mut ep, "sleep 1000 & echo started").await;
    assert_eq!(o.stdout, "started\n");
    assert!(o.duration < Duration::from_secs(4), "{o:?}");
    still_works(&mut ep).await;
}

#[tokio::test]
async fn huge_outputs_are_capped() {
    let sb = sandbox().await;
    let mut ep = sb.episode(home());
    let o = run(
        &mut ep,
        "head -c 50000000 /dev/zero | tr '\\0' a; echo err >&2",
    )
    .await;
    assert_eq!(o.stdout.len(), limits().output_bytes);
    assert_eq!(o.stdout_bytes, 50_000_000);
    assert!(o.stdout_truncated());
    assert_eq!(o.stderr, "err\n");
    // A file bigger than the file-size limit, and a home bigger than the disk limit.
    let o = run(&mut ep, "head -c 20000000 /dev/zero > big").await;
    assert_ne!(o.exit_code, Some(0), "{o:?}");
    assert!(o.stderr.contains("File size limit exceeded"), "{o:?}");
    let size = ep.state().file("big").map(|d| d.len()).unwrap_or(0);
    assert!(size <= limits().file_size_bytes as usize, "{size}");
    still_works(&mut ep).await;
}

#[tokio::test]
async fn signals_never_reach_the_host() {
    // A host process the sandbox might try to kill.
    let mut victim = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = victim.id();
    let sb = sandbox().await;
    let mut ep = sb.episode(home());
    let o = run(
        &mut ep,
        &format!(
            "kill -9 {pid}; kill -9 {me}; kill -9 1; kill -9 $PPID; kill -9 -1; echo after",
            me = std::process::id()
        ),
    )
    .await;
    assert!(
        victim.try_wait().unwrap().is_none(),
        "the host process was killed: {o:?}"
    );
    victim.kill().unwrap();
    victim.wait().unwrap();
    still_works(&mut ep).await;
}

#[tokio::test]
async fn namespaces_and_mounts_cannot_be_made() {
    let sb = sandbox().await;
    let mut ep = sb.episode(home());
    let o = run(
        &mut ep,
        "unshare -r id; unshare -m true; echo unshare=$?; mount -t tmpfs none /tmp; echo mount=$?; \
         python3 -c \"import ctypes; print('ptrace', ctypes.CDLL(None).ptrace(16, 1, 0, 0))\"",
    )
    .await;
    assert!(o.stdout.contains("unshare=1"), "{o:?}");
    assert!(!o.stdout.contains("mount=0"), "{o:?}");
    assert!(o.stdout.contains("ptrace -1"), "{o:?}");
    still_works(&mut ep).await;
}

/// Where bubblewrap cannot run, the sandbox refuses: no command runs on the host.
#[tokio::test]
async fn unavailable_isolation_is_refused() {
    for fake in ["/bin/false", "/nonexistent/bwrap"] {
        let r = Sandbox::with_bwrap(fake.into(), limits()).await;
        let e = r.expect_err("a sandbox without bwrap");
        let msg = e.to_string();
        assert!(
            msg.contains("unavailable") && msg.contains("bubblewrap"),
            "{msg}"
        );
    }
}
