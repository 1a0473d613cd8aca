//! One writer per run directory: an advisory lock (`flock`) on `RUN/.lock`, held for the
//! life of the process that writes the run.
//!
//! The kernel drops the lock when its holder exits, however it exits (a `kill -9`
//! included), so a lock left by a dead process never blocks anyone: the file may remain,
//! but it is not locked. The file records the holder's PID for the message a second
//! writer gets. Readers (`show`, analyses) never take it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::io::AsRawFd;

use crate::{io, LogError, RunDir};

const LOCK_FILE: &str = ".lock";

/// Held while this process writes a run directory; released on drop (or exit).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunDir {
    /// Takes the run directory's writer lock, or fails naming the process that holds it.
    pub fn lock(&self) -> Result<RunLock, LogError> {
        let path = self.path().join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::WouldBlock {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LogError::Locked {
                    path: self.path().to_path_buf(),
                    pid: text.trim().parse().ok(),
                });
            }
            return Err(io(&path)(err));
        }
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .and_then(|_| file.flush())
            .map_err(io(&path))?;
        Ok(RunLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::meta;

    #[test]
    fn a_second_writer_is_refused_until_the_first_lets_go() {
        let d = tempfile::tempdir().unwrap();
        let run = RunDir::create(d.path(), &meta()).unwrap();
        let held = run.lock().unwrap();
        // flock locks belong to open file descriptions: a second open in the same
        // process conflicts just as another process would.
        match run.lock() {
            Err(LogError::Locked { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        let e = run.lock().unwrap_err().to_string();
        assert!(e.contains("in use by another shammie process (pid"), "{e}");
        drop(held);
        run.lock().unwrap();
    }
}
