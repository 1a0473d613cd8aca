//! An episode's file system as data: every file, directory and symlink of the home tree
//! by relative path, moved in and out of the sandbox as a tar stream and never touching
//! the host's disk unless a user asks for a copy ([`Tree::write_to`]).
//!
//! Reading a tar that came out of the sandbox is reading hostile input: the model's
//! processes run as the same user as the sandbox's capture step and can write anything
//! into its stream. So [`Tree::from_tar`] accepts only relative paths without `..`,
//! regular files, directories and symlinks (a symlink's target is kept as text and never
//! resolved on the host), caps the total size, and [`Tree::write_to`] creates nothing
//! below a path that is not a directory of the tree, so no entry can be written through
//! a symlink.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path};

use crate::SandboxError;

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File {
        data: Vec<u8>,
        executable: bool,
    },
    Dir,
    /// The link's target, as written (never resolved on the host).
    Symlink(String),
}

/// A home directory: entries by relative path (`notes/todo.txt`, components separated by
/// `/`), parents before children in iteration order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    entries: BTreeMap<String, Entry>,
}

/// How an entry differs between two trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One difference between a tree before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
    pub before: Option<Entry>,
    pub after: Option<Entry>,
}

/// A relative path with no `.`/`..`/root components, as `a/b/c`; `None` for the root
/// itself or anything else.
fn normalize(path: &Path) -> Result<Option<String>, String> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => match p.to_str() {
                Some(s) => parts.push(s.to_string()),
                None => return Err(format!("{}: not UTF-8", path.display())),
            },
            Component::CurDir => {}
            _ => return Err(format!("{}: not a plain relative path", path.display())),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

impl Tree {
    pub fn new() -> Self {
        Tree::default()
    }

    /// Adds a file (and its missing parent directories).
    pub fn insert_file(&mut self, path: &str, data: impl Into<Vec<u8>>, executable: bool) {
        self.insert(
            path,
            Entry::File {
                data: data.into(),
                executable,
            },
        );
    }

    /// Adds an entry (and its missing parent directories). Panics on a path that is not a
    /// plain relative path; for trees built by code, not from input.
    pub fn insert(&mut self, path: &str, entry: Entry) {
        let p = normalize(Path::new(path))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("not a relative path: {path:?}"));
        self.add(p, entry);
    }

    /// Writes a regular file at a path that came from input (a model's edit): the path
    /// must be plain and relative, must not name a directory, and no parent of it may be
    /// a file or a symlink (a link is never followed, so nothing lands outside the tree).
    /// Missing parents are created.
    pub fn write_file(&mut self, path: &str, data: impl Into<Vec<u8>>) -> Result<(), String> {
        let p = normalize(Path::new(path))?.ok_or_else(|| format!("{path:?}: not a file path"))?;
        let mut prefix = String::new();
        for part in p
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .expect("non-empty")
            .1
        {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            match self.entries.get(&prefix) {
                None | Some(Entry::Dir) => {}
                Some(_) => return Err(format!("{p}: {prefix} is not a directory")),
            }
        }
        let executable = match self.entries.get(&p) {
            Some(Entry::Dir) => return Err(format!("{p} is a directory")),
            Some(Entry::File { executable, .. }) => *executable,
            _ => false,
        };
        self.add(
            p,
            Entry::File {
                data: data.into(),
                executable,
            },
        );
        Ok(())
    }

    fn add(&mut self, path: String, entry: Entry) {
        let mut prefix = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            self.entries.entry(prefix.clone()).or_insert(Entry::Dir);
        }
        self.entries.insert(path, entry);
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// A regular file's bytes.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        match self.entries.get(path)? {
            Entry::File { data, .. } => Some(data),
            _ => None,
        }
    }

    /// A regular file as text (lossy UTF-8).
    pub fn text(&self, path: &str) -> Option<String> {
        self.file(path)
            .map(|d| String::from_utf8_lossy(d).into_owned())
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes in regular files.
    pub fn size(&self) -> u64 {
        self.entries
            .values()
            .map(|e| match e {
                Entry::File { data, .. } => data.len() as u64,
                _ => 0,
            })
            .sum()
    }

    /// Reads a directory on the host (an environment's files): regular files, directories
    /// and symlinks (kept as links, not followed); anything else is an error naming it.
    pub fn from_dir(root: &Path) -> Result<Tree, SandboxError> {
        let mut t = Tree::new();
        let io = |p: &Path, e: std::io::Error| SandboxError::Io(format!("{}: {e}", p.display()));
        let meta = std::fs::metadata(root).map_err(|e| io(root, e))?;
        if !meta.is_dir() {
            return Err(SandboxError::Io(format!(
                "{}: not a directory",
                root.display()
            )));
        }
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let mut names: Vec<_> = std::fs::read_dir(&dir)
                .map_err(|e| io(&dir, e))?
                .collect::<Result<_, _>>()
                .map_err(|e| io(&dir, e))?;
            names.sort_by_key(|e| e.file_name());
            for ent in names {
                let path = ent.path();
                let rel = path.strip_prefix(root).expect("below the root");
                let key = normalize(rel)
                    .map_err(SandboxError::Io)?
                    .expect("an entry below the root");
                let m = std::fs::symlink_metadata(&path).map_err(|e| io(&path, e))?;
                let ft = m.file_type();
                if ft.is_symlink() {
                    let target = std::fs::read_link(&path).map_err(|e| io(&path, e))?;
                    t.add(key, Entry::Symlink(target.to_string_lossy().into_owned()));
                } else if ft.is_dir() {
                    t.add(key, Entry::Dir);
                    stack.push(path);
                } else if ft.is_file() {
                    use std::os::unix::fs::PermissionsExt;
                    let data = std::fs::read(&path).map_err(|e| io(&path, e))?;
                    let executable = m.permissions().mode() & 0o111 != 0;
                    t.add(key, Entry::File { data, executable });
                } else {
                    return Err(SandboxError::Io(format!(
                        "{}: not a file, directory or symlink",
                        path.display()
                    )));
                }
            }
        }
        Ok(t)
    }

    /// The tree as an uncompressed tar stream (paths relative, owner 1000).
    pub fn to_tar(&self) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, e) in &self.entries {
            let mut h = tar::Header::new_gnu();
            h.set_uid(1000);
            h.set_gid(1000);
            h.set_mtime(0);
            match e {
                Entry::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_size(0);
                    b.append_data(&mut h, path, std::io::empty())
                }
                Entry::File { data, executable } => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(if *executable { 0o755 } else { 0o644 });
                    h.set_size(data.len() as u64);
                    b.append_data(&mut h, path, data.as_slice())
                }
                Entry::Symlink(target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_mode(0o777);
                    h.set_size(0);
                    b.append_link(&mut h, path, target)
                }
            }
            .expect("writing a tar into memory");
        }
        b.into_inner().expect("writing a tar into memory")
    }

    /// Parses a tar stream from the sandbox (module comment: hostile input). Entries whose
    /// type is not a file, directory, symlink or hard link (to an earlier file) are
    /// skipped and counted; `max_bytes` caps the files' total size.
    pub fn from_tar(bytes: &[u8], max_bytes: u64) -> Result<(Tree, usize), SandboxError> {
        let bad = |m: String| SandboxError::Capture(m);
        let mut t = Tree::new();
        let mut skipped = 0;
        let mut total = 0u64;
        let mut a = tar::Archive::new(bytes);
        for ent in a.entries().map_err(|e| bad(e.to_string()))? {
            let mut ent = ent.map_err(|e| bad(e.to_string()))?;
            let path = ent.path().map_err(|e| bad(e.to_string()))?.into_owned();
            let Some(key) = normalize(&path).map_err(bad)? else {
                continue; // "." itself
            };
            let kind = ent.header().entry_type();
            let entry = match kind {
                tar::EntryType::Directory => Entry::Dir,
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = ent.header().size().map_err(|e| bad(e.to_string()))?;
                    total += size;
                    if total > max_bytes {
                        return Err(bad(format!(
                            "the file system holds more than {max_bytes} bytes"
                        )));
                    }
                    let mut data = Vec::with_capacity(size as usize);
                    ent.read_to_end(&mut data).map_err(|e| bad(e.to_string()))?;
                    let executable = ent.header().mode().unwrap_or(0o644) & 0o111 != 0;
                    Entry::File { data, executable }
                }
                tar::EntryType::Symlink => {
                    let target = ent
                        .link_name()
                        .map_err(|e| bad(e.to_string()))?
                        .map(|l| l.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    Entry::Symlink(target)
                }
                tar::EntryType::Link => {
                    let target = ent
                        .link_name()
                        .map_err(|e| bad(e.to_string()))?
                        .ok_or_else(|| bad("hard link without a target".into()))?;
                    let target = normalize(&target)
                        .map_err(bad)?
                        .ok_or_else(|| bad("hard link to the root".into()))?;
                    match t.entries.get(&target) {
                        Some(e @ Entry::File { data, .. }) => {
                            total += data.len() as u64;
                            if total > max_bytes {
                                return Err(bad(format!(
                                    "the file system holds more than {max_bytes} bytes"
                                )));
                            }
                            e.clone()
                        }
                        _ => {
                            skipped += 1;
                            continue;
                        }
                    }
                }
                _ => {
                    skipped += 1;
                    continue;
                }
            };
            t.add(key, entry);
        }
        Ok((t, skipped))
    }

    /// Every difference from `self` (before) to `after`, by path.
    pub fn diff(&self, after: &Tree) -> Vec<Change> {
        let mut out = Vec::new();
        for (path, b) in &self.entries {
            match after.entries.get(path) {
                None => out.push(Change {
                    path: path.clone(),
                    kind: ChangeKind::Deleted,
                    before: Some(b.clone()),
                    after: None,
                }),
                Some(a) if a != b => out.push(Change {
                    path: path.clone(),
                    kind: ChangeKind::Modified,
                    before: Some(b.clone()),
                    after: Some(a.clone()),
                }),
                Some(_) => {}
            }
        }
        for (path, a) in &after.entries {
            if !self.entries.contains_key(path) {
                out.push(Change {
                    path: path.clone(),
                    kind: ChangeKind::Added,
                    before: None,
                    after: Some(a.clone()),
                });
            }
        }
        out.sort_by(|x, y| x.path.cmp(&y.path));
        out
    }

    /// Writes the tree into `dir` (created; must be empty or absent). Symlinks are
    /// created as symlinks; an entry is written only below directories of the tree itself
    /// (module comment), so nothing lands outside `dir`.
    pub fn write_to(&self, dir: &Path) -> Result<(), SandboxError> {
        let io = |p: &Path, e: std::io::Error| SandboxError::Io(format!("{}: {e}", p.display()));
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        if std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .next()
            .is_some()
        {
            return Err(SandboxError::Io(format!(
                "{}: not empty; give a new or empty folder",
                dir.display()
            )));
        }
        for (path, e) in &self.entries {
            // Every ancestor must be a directory of this tree (created before, in order).
            if let Some((parent, _)) = path.rsplit_once('/') {
                if self.entries.get(parent) != Some(&Entry::Dir) {
                    return Err(SandboxError::Io(format!(
                        "{path}: its parent is not a directory of the tree"
                    )));
                }
            }
            let target = dir.join(path);
            match e {
                Entry::Dir => std::fs::create_dir(&target).map_err(|e| io(&target, e))?,
                Entry::File { data, executable } => {
                    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
                    let mode = if *executable { 0o755 } else { 0o644 };
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(mode)
                        .open(&target)
                        .map_err(|e| io(&target, e))?;
                    std::io::Write::write_all(&mut f, data).map_err(|e| io(&target, e))?;
                    f.set_permissions(std::fs::Permissions::from_mode(mode))
                        .map_err(|e| io(&target, e))?;
                }
                Entry::Symlink(to) => {
                    std::os::unix::fs::symlink(to, &target).map_err(|e| io(&target, e))?
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Tree {
        let mut t = Tree::new();
        t.insert_file("notes/todo.txt", "buy milk\n", false);
        t.insert_file("bin/run.sh", "#!/bin/sh\necho hi\n", true);
        t.insert("link", Entry::Symlink("/etc/shadow".into()));
        t
    }

    #[test]
    fn tar_round_trip_keeps_everything() {
        let t = sample();
        let (back, skipped) = Tree::from_tar(&t.to_tar(), 1 << 20).unwrap();
        assert_eq!(skipped, 0);
        assert_eq!(back, t);
        assert!(back.get("notes").is_some(), "parents are entries");
    }

    #[test]
    fn diff_names_added_modified_deleted() {
        let before = sample();
        let mut after = before.clone();
        after.insert_file("notes/todo.txt", "done\n", false);
        after.entries.remove("bin/run.sh");
        after.insert_file("new.txt", "x", false);
        let d = before.diff(&after);
        let got: Vec<(&str, ChangeKind)> = d.iter().map(|c| (c.path.as_str(), c.kind)).collect();
        assert_eq!(
            got,
            [
                ("bin/run.sh", ChangeKind::Deleted),
                ("new.txt", ChangeKind::Added),
                ("notes/todo.txt", ChangeKind::Modified)
            ]
        );
    }

    /// A hostile stream: `..`, an absolute path, and more bytes than allowed are refused.
    #[test]
    fn hostile_tars_are_refused() {
        for name in ["../escape", "/etc/passwd", "a/../../b"] {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            // Write the raw name into the header (the builder refuses such names itself).
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, &b"x"[..]).unwrap();
            let bytes = b.into_inner().unwrap();
            assert!(Tree::from_tar(&bytes, 1 << 20).is_err(), "{name}");
        }
        let mut t = Tree::new();
        t.insert_file("big", vec![0u8; 2000], false);
        assert!(Tree::from_tar(&t.to_tar(), 1000).is_err());
    }

    /// Writing out: symlinks stay links (their targets never followed), files keep their
    /// mode, and a non-empty folder is refused.
    #[test]
    fn write_to_creates_links_as_links() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("kept");
        sample().write_to(&out).unwrap();
        let link = std::fs::symlink_metadata(out.join("link")).unwrap();
        assert!(link.file_type().is_symlink());
        assert_eq!(
            std::fs::read_to_string(out.join("notes/todo.txt")).unwrap(),
            "buy milk\n"
        );
        assert_eq!(Tree::from_dir(&out).unwrap(), sample());
        assert!(sample().write_to(&out).is_err());
    }

    #[test]
    fn written_files_stay_inside_the_tree() {
        let mut t = Tree::new();
        t.insert_file("bin/run.sh", "echo hi", true);
        t.insert("link", Entry::Symlink("/etc".into()));
        t.write_file("src/new/mod.py", "x = 1\n").unwrap();
        assert_eq!(t.text("src/new/mod.py").as_deref(), Some("x = 1\n"));
        assert_eq!(t.get("src/new"), Some(&Entry::Dir));
        // An existing file keeps its mode.
        t.write_file("./bin/run.sh", "echo bye").unwrap();
        assert_eq!(
            t.get("bin/run.sh"),
            Some(&Entry::File {
                data: b"echo bye".to_vec(),
                executable: true
            })
        );
        for bad in [
            "../x",
            "/etc/passwd",
            "a/../../x",
            "",
            ".",
            "bin",
            "link/passwd",
            "bin/run.sh/x",
        ] {
            let before = t.clone();
            assert!(t.write_file(bad, "x").is_err(), "{bad:?} was written");
            assert_eq!(t, before);
        }
    }
}
