//! One command in one bubblewrap sandbox: the arguments, the file descriptors handed to
//! bwrap, the rlimits, the script that runs inside, and reading the results back.
//!
//! Descriptors in the child (set up between fork and exec, see `spawn`):
//! 3 the episode's tree as a tar (read by bwrap: `--ro-bind-data 3`), 4 bwrap's options,
//! NUL-separated (`--args 4`, so the sandbox's `/proc/1/cmdline` shows none of them; the
//! command line after them is the script and the model's own command), 5 the seccomp program (`--seccomp 5`), 6 the pipe the tree comes back on. The
//! script closes 3–5 first and runs the command with 6 closed.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::{CommandOutput, Episode, SandboxError, Tree};

/// Inside the sandbox, `$1` is the command, `$2` the timeout in seconds and `$3` the file
/// size limit in 512-byte blocks (set here rather than on bwrap, which must write the
/// seed tar, and for the command only). The command runs under `timeout` (TERM, then
/// KILL a second later) with stdin from /dev/null and the capture pipe closed; then every process it left is killed (`kill -9 -1`: all the
/// sandbox user's processes but this shell; bwrap's PID 1 is exempt) and the home tree
/// is streamed to descriptor 6. The command's exit status is the script's.
const SCRIPT: &str = r#"exec 3<&- 4<&- 5<&-
tar -xf /.shammie/seed.tar -C /home/user 2>/dev/null || { echo "shammie: could not unpack the home directory" >&2; exit 125; }
cd /home/user || exit 125
( ulimit -f "$3" && exec timeout -k 1 "$2" /bin/sh -c "$1" ) </dev/null 6>&-
rc=$?
kill -9 -1 2>/dev/null
tar -cf - -C /home/user . >&6 2>/dev/null
exit $rc
"#;

/// The host user (and group) bwrap runs as when Shammie runs as root: unprivileged, owning
/// no files and running nothing but this one sandbox, so that RLIMIT_NPROC counts only
/// its processes and one sandbox's fork bomb cannot starve another. Drawn from a range
/// of ids no system assigns (above 2^31 − 2^24), by process id and a counter.
fn sandbox_uid() -> libc::uid_t {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) % 4096;
    let slot = (std::process::id() % 4096) * 4096 + n;
    0x7f00_0000 + slot
}

/// How many processes (threads included, as RLIMIT_NPROC counts them) the current user
/// runs, from /proc; an overestimate never hurts here.
fn processes_of_current_user() -> u64 {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: getuid never fails.
    let uid = unsafe { libc::getuid() };
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| e.metadata().map(|m| m.uid() == uid).unwrap_or(false))
        .map(|e| {
            std::fs::read_dir(e.path().join("task"))
                .map(|t| t.count() as u64)
                .unwrap_or(1)
        })
        .sum()
}

/// Seconds the host waits beyond the inside timeout before killing the sandbox.
const OUTSIDE_GRACE: Duration = Duration::from_secs(10);

fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a valid array of two descriptors for pipe2 to fill.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if r != 0 {
        return Err(SandboxError::Io(format!(
            "pipe: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: pipe2 succeeded, so both are open descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A duplicate of `fd` numbered 10 or above (close-on-exec), so that moving the child's
/// descriptors onto 3–6 never overwrites one still to be moved.
fn high(fd: OwnedFd) -> Result<OwnedFd, SandboxError> {
    // SAFETY: F_DUPFD_CLOEXEC on an open descriptor returns a new one or -1.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if n < 0 {
        return Err(SandboxError::Io(format!(
            "fcntl: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: `n` is a fresh descriptor owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// Writes `data` to the pipe's write end on a thread (the reader is bwrap, which reads
/// it during setup; the data can exceed the pipe's buffer).
fn feed(w: OwnedFd, data: Vec<u8>) {
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(w);
        let _ = f.write_all(&data);
    });
}

/// How the host's `/bin`-like top-level paths are reproduced: a symlink where the host
/// has one (merged /usr), a read-only bind of the directory otherwise.
fn usr_links(args: &mut Vec<String>) {
    for top in ["bin", "sbin", "lib", "lib64", "lib32", "libx32"] {
        let host = Path::new("/").join(top);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                if let Ok(t) = std::fs::read_link(&host) {
                    args.extend([
                        "--symlink".into(),
                        t.to_string_lossy().into_owned(),
                        format!("/{top}"),
                    ]);
                }
            }
            Ok(m) if m.is_dir() => {
                args.extend(["--ro-bind".into(), format!("/{top}"), format!("/{top}")]);
            }
            _ => {}
        }
    }
}

/// bwrap's options (read from descriptor 4) and the command line after them.
fn bwrap_args(ep: &Episode, command: &str) -> (Vec<String>, Vec<String>) {
    let l = &ep.sandbox.limits;
    let wall = l.wall.as_secs().max(1).to_string();
    let disk = l.disk_bytes.to_string();
    let mut a: Vec<String> = [
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--uid",
        "1000",
        "--gid",
        "1000",
        "--hostname",
        "sandbox",
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/local/bin:/usr/bin:/bin",
        "--setenv",
        "HOME",
        "/home/user",
        "--setenv",
        "USER",
        "user",
        "--setenv",
        "LANG",
        "C.UTF-8",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    usr_links(&mut a);
    a.extend(
        [
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--size",
            &disk,
            "--tmpfs",
            "/tmp",
            "--perms",
            "0755",
            "--size",
            &disk,
            "--tmpfs",
            "/home/user",
            "--ro-bind-data",
            "3",
            "/.shammie/seed.tar",
            "--seccomp",
            "5",
            "--chdir",
            "/home/user",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let blocks = (l.file_size_bytes / 512).max(1).to_string();
    let argv = [
        "--",
        "/bin/sh",
        "-c",
        SCRIPT,
        "shammie-sandbox",
        command,
        &wall,
        &blocks,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    (a, argv)
}

/// Reads all of `r`, keeping the first `cap` bytes; returns them and the total.
async fn read_capped<R: AsyncRead + Unpin>(mut r: R, cap: usize) -> (Vec<u8>, u64) {
    let mut kept = Vec::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total += n as u64;
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (kept, total)
}

impl Episode {
    pub(crate) async fn run_inner(&mut self, command: &str) -> Result<CommandOutput, SandboxError> {
        let l = self.sandbox.limits.clone();
        let t0 = Instant::now();
        let (seed_r, seed_w) = pipe()?;
        let (args_r, args_w) = pipe()?;
        let (sec_r, sec_w) = pipe()?;
        let (state_r, state_w) = pipe()?;
        let child_fds = [high(seed_r)?, high(args_r)?, high(sec_r)?, high(state_w)?];
        let raw: Vec<RawFd> = child_fds.iter().map(|f| f.as_raw_fd()).collect();

        let (options, argv) = bwrap_args(self, command);
        let mut args = Vec::new();
        for a in options {
            args.extend_from_slice(a.as_bytes());
            args.push(0);
        }
        feed(seed_w, self.state.to_tar());
        feed(args_w, args);
        feed(sec_w, self.sandbox.filter.to_vec());

        let mut cmd = tokio::process::Command::new(&self.sandbox.bwrap);
        cmd.args(["--args", "4"])
            .args(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // RLIMIT_NPROC counts every process of the host user the sandbox runs as, and the
        // kernel does not apply it to root at all: as root, bwrap is started as an
        // unprivileged host user of its own (`sandbox_uid`), whose only processes are
        // sandboxes; otherwise the limit is the user's current count plus the budget.
        // SAFETY: getuid never fails.
        let root = unsafe { libc::getuid() } == 0;
        let uid = sandbox_uid();
        let nproc = if root {
            l.processes
        } else {
            processes_of_current_user() + l.processes
        };
        let limits = [
            (libc::RLIMIT_CPU, l.cpu_secs),
            (libc::RLIMIT_AS, l.memory_bytes),
            (libc::RLIMIT_NPROC, nproc),
            (libc::RLIMIT_NOFILE, l.open_files),
            (libc::RLIMIT_CORE, 0),
        ];
        // SAFETY: the closure runs in the forked child before exec and calls only
        // async-signal-safe functions (dup2, setrlimit, setgroups, setgid, setuid) on
        // values prepared beforehand.
        unsafe {
            cmd.pre_exec(move || {
                for (target, fd) in (3..).zip(&raw) {
                    if libc::dup2(*fd, target) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                for (res, v) in limits {
                    let lim = libc::rlimit {
                        rlim_cur: v,
                        rlim_max: v,
                    };
                    if libc::setrlimit(res, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if root
                    && (libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(uid) != 0
                        || libc::setuid(uid) != 0)
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            SandboxError::Unavailable(format!(
                "could not start {}: {e}",
                self.sandbox.bwrap.display()
            ))
        })?;
        // The parent's copies of the child's ends: closed, so the tree pipe ends when the
        // sandbox does.
        drop(child_fds);

        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let cap = l.output_bytes;
        let max_tree = l.disk_bytes + (l.disk_bytes / 8) + (1 << 20);
        let out_task = tokio::spawn(read_capped(stdout, cap));
        let err_task = tokio::spawn(read_capped(stderr, cap));
        let state_task = tokio::task::spawn_blocking(move || {
            let mut f = std::fs::File::from(state_r);
            let mut buf = Vec::new();
            let n = (&mut f).take(max_tree + 1).read_to_end(&mut buf);
            // Drain the rest so the writer never blocks.
            let _ = std::io::copy(&mut f, &mut std::io::sink());
            (buf, n.is_ok())
        });

        let deadline = l.wall + OUTSIDE_GRACE;
        let (status, killed) = match tokio::time::timeout(deadline, child.wait()).await {
            Ok(s) => (
                s.map_err(|e| SandboxError::Io(format!("waiting for bwrap: {e}")))?,
                false,
            ),
            Err(_) => {
                let _ = child.kill().await;
                (
                    child
                        .wait()
                        .await
                        .map_err(|e| SandboxError::Io(format!("waiting for bwrap: {e}")))?,
                    true,
                )
            }
        };
        let (out, out_total) = out_task.await.unwrap_or_default();
        let (err, err_total) = err_task.await.unwrap_or_default();
        let (tree_bytes, read_ok) = state_task.await.unwrap_or_default();
        let duration = t0.elapsed();

        let exit_code = status.code();
        let timed_out = killed || exit_code == Some(124) && duration >= l.wall;
        let (captured, note) = if killed {
            (
                false,
                Some("the sandbox was killed from outside after its time ran out".to_string()),
            )
        } else if !read_ok || tree_bytes.is_empty() {
            (
                false,
                Some("the file system could not be captured after this command".into()),
            )
        } else if tree_bytes.len() as u64 > max_tree {
            (
                false,
                Some(format!(
                    "the file system exceeds its limit of {} bytes",
                    l.disk_bytes
                )),
            )
        } else {
            match Tree::from_tar(&tree_bytes, l.disk_bytes) {
                Ok((t, _)) => {
                    self.state = t;
                    (true, None)
                }
                Err(e) => (false, Some(e.to_string())),
            }
        };
        let note = note.map(|n| format!("{n}; the files are as they were before the command"));
        Ok(CommandOutput {
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
            stdout_bytes: out_total,
            stderr_bytes: err_total,
            exit_code,
            timed_out,
            captured,
            note,
            duration,
        })
    }
}
