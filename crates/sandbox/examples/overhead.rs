//! The sandbox's cost per command: the same commands run directly (`sh -c` in a
//! temporary home on the host, with the sandbox's environment variables) and in an
//! episode's sandbox, N times each, alternating;
//! medians and ratios as a Markdown table. `bench/sandbox/run.sh` runs it.
//!
//! ```sh
//! cargo run --release -p shammie-sandbox --example overhead -- [N]
//! ```
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use shammie_sandbox::{Limits, Sandbox, Tree};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(30);
    // A home like the subterfuge environments': a few folders of small files.
    let mut files = Tree::new();
    for d in 0..5 {
        for f in 0..8 {
            files.insert_file(
                &format!("dir{d}/file{f}.txt"),
                "some notes\n".repeat(50),
                false,
            );
        }
    }
    let host = tempfile::tempdir()?;
    files.write_to(&host.path().join("home"))?;
    let home = host.path().join("home");
    let sb = Sandbox::new(Limits::default()).await?;
    let commands = [
        "true",
        "ls -R | wc -l",
        "cat dir0/file0.txt | grep -c notes; echo x > out.txt",
        "python3 -c 'print(sum(range(10**6)))'",
    ];
    println!("| command | direct (ms) | sandboxed (ms) | overhead (ms) | ratio |");
    println!("|---|---|---|---|---|");
    for cmd in commands {
        let (mut direct, mut boxed) = (Vec::new(), Vec::new());
        let mut ep = sb.episode(files.clone());
        for _ in 0..n {
            let t = Instant::now();
            // The sandbox's environment (its PATH finds /usr/bin/python3 itself, not a
            // version manager's shim that the host's PATH may put first).
            let st = tokio::process::Command::new("/bin/sh")
                .args(["-c", cmd])
                .env_clear()
                .env("PATH", "/usr/local/bin:/usr/bin:/bin")
                .env("HOME", &home)
                .env("LANG", "C.UTF-8")
                .current_dir(&home)
                .stdout(std::process::Stdio::piped())
                .output()
                .await?;
            direct.push(t.elapsed());
            anyhow::ensure!(st.status.success(), "direct: {cmd}");
            let t = Instant::now();
            let o = ep.run(cmd).await?;
            boxed.push(t.elapsed());
            anyhow::ensure!(o.exit_code == Some(0), "sandboxed: {cmd}: {o:?}");
        }
        let (d, b) = (median(direct), median(boxed));
        println!(
            "| `{cmd}` | {:.1} | {:.1} | {:.1} | {:.1}× |",
            d.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3,
            (b.as_secs_f64() - d.as_secs_f64()) * 1e3,
            b.as_secs_f64() / d.as_secs_f64()
        );
    }
    Ok(())
}
