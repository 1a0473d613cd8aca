//! The minigames: a small repository and a sequence of change requests, each with a hidden
//! check and (for the built-in games) a reference solution.
//!
//! A game is a folder (the built-in ones are `games/` in this crate's source, embedded at
//! build time; `games_dir=DIR` adds the sub-folders of DIR):
//! - `game.toml`: `name` (else the folder's name), `language`, `description`, `tests` (the repository's own test command,
//!   which the engineer is told), `check` (how one hidden check runs, `{check}` standing
//!   for its file name), an optional `git` (a git repository, relative to the folder,
//!   whose `HEAD` is the repository, in place of `repo/`), and `[[request]]` tables with
//!   `id`, `title`, `text` (what the engineer is asked) and `check` (a file in `checks/`);
//! - `repo/`: the repository's files (unless `git` names one);
//! - `checks/`: the hidden checks, copied into the repository's `.checks/` only when they
//!   run, in a sandbox of their own, never shown to either model;
//! - `solutions/<request id>/`: optional reference solutions, whole files written over the
//!   repository as it stands after the requests before.
//!
//! Each change request starts from the repository as the reference solutions of the
//! requests before it leave it (the requests without a solution leave it unchanged), so
//! a weak or sabotaged commit does not decide the next one (docs/studies/sabotage.md,
//! "one commit at a time").

use std::path::Path;

use include_dir::{include_dir, Dir};
use serde::Deserialize;
use shammie_sandbox::{Entry, Tree};

static BUILT_IN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/games");

/// Where the hidden checks are copied before they run.
pub const CHECKS_DIR: &str = ".checks";

/// One change request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: String,
    pub title: String,
    pub text: String,
    /// The hidden check's file name (in the game's `checks/`).
    pub check: String,
    /// The reference solution's files, when the game has one.
    pub solution: Option<Tree>,
}

/// One minigame.
#[derive(Debug, Clone, PartialEq)]
pub struct Game {
    pub name: String,
    pub language: String,
    pub description: String,
    /// The repository's own test command.
    pub tests: String,
    /// A hidden check's command, `{check}` standing for its file name.
    pub check: String,
    pub repo: Tree,
    /// The hidden checks by file name.
    pub checks: Tree,
    pub requests: Vec<Request>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GameToml {
    #[serde(default)]
    name: Option<String>,
    language: String,
    description: String,
    tests: String,
    check: String,
    #[serde(default)]
    git: Option<String>,
    #[serde(rename = "request", default)]
    requests: Vec<RequestToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestToml {
    id: String,
    title: String,
    text: String,
    check: String,
}

impl Game {
    /// The repository as request `k` (0-based) starts from: the base with the reference
    /// solutions of the requests before it written over it.
    pub fn start(&self, k: usize) -> Tree {
        let mut t = self.repo.clone();
        for r in &self.requests[..k] {
            if let Some(s) = &r.solution {
                overlay(&mut t, s);
            }
        }
        t
    }

    /// The commands that run the hidden checks of requests `0..=k` on a tree, after
    /// [`Game::with_checks`] has put them in: `(request id, command)`.
    pub fn check_commands(&self, k: usize) -> Vec<(String, String)> {
        self.requests[..=k]
            .iter()
            .map(|r| (r.id.clone(), self.check.replace("{check}", &r.check)))
            .collect()
    }

    /// `tree` with the hidden checks of requests `0..=k` in [`CHECKS_DIR`] (over anything
    /// the engineer wrote there).
    pub fn with_checks(&self, tree: &Tree, k: usize) -> Tree {
        // Whatever the engineer left under the checks' folder goes: only the checks run there.
        let mut t = Tree::new();
        for (p, e) in tree.entries() {
            if p != CHECKS_DIR && !p.starts_with(&format!("{CHECKS_DIR}/")) {
                t.insert(p, e.clone());
            }
        }
        for r in &self.requests[..=k] {
            let data = self
                .checks
                .file(&r.check)
                .expect("checked at load")
                .to_vec();
            t.insert_file(&format!("{CHECKS_DIR}/{}", r.check), data, false);
        }
        t
    }
}

/// Writes every file of `files` over `t`.
fn overlay(t: &mut Tree, files: &Tree) {
    for (p, e) in files.entries() {
        if let Entry::File { .. } = e {
            t.insert(p, e.clone());
        }
    }
}

/// Every built-in game, in name order.
pub fn built_in() -> Vec<Game> {
    let mut out: Vec<Game> = BUILT_IN
        .dirs()
        .map(|d| {
            let name = d.path().to_string_lossy().into_owned();
            let mut t = Tree::new();
            add_embedded(d, d.path(), &mut t);
            parse(&name, &format!("games/{name}"), t, None).expect("the built-in games are valid")
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn add_embedded(d: &Dir<'static>, root: &Path, t: &mut Tree) {
    for f in d.files() {
        let rel = f.path().strip_prefix(root).expect("below the game");
        let rel = rel.to_string_lossy();
        // include_dir keeps no modes: scripts are executable by name.
        t.insert_file(&rel, f.contents().to_vec(), rel.ends_with(".sh"));
    }
    for sub in d.dirs() {
        let rel = sub.path().strip_prefix(root).expect("below the game");
        t.insert(&rel.to_string_lossy(), Entry::Dir);
        add_embedded(sub, root, t);
    }
}

/// The games in the sub-folders of `dir` (each with a `game.toml`), in name order.
pub fn load_dir(dir: &Path) -> Result<Vec<Game>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut folders: Vec<std::path::PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("game.toml").is_file())
        .collect();
    folders.sort();
    if folders.is_empty() {
        return Err(format!(
            "{}: no game folders (sub-folders holding a game.toml)",
            dir.display()
        ));
    }
    folders
        .iter()
        .map(|f| {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let t = Tree::from_dir(f).map_err(|e| e.to_string())?;
            parse(&name, &f.display().to_string(), t, Some(f))
        })
        .collect()
}

/// The files of `t` below `prefix/`, with the prefix taken off.
fn subtree(t: &Tree, prefix: &str) -> Tree {
    let mut out = Tree::new();
    let p = format!("{prefix}/");
    for (path, e) in t.entries() {
        if let Some(rest) = path.strip_prefix(&p) {
            out.insert(rest, e.clone());
        }
    }
    out
}

/// A git repository's `HEAD` as a tree (`git archive`: files only, nothing of the work
/// tree or the history).
fn git_head(repo: &Path) -> Result<Tree, String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["archive", "--format=tar", "HEAD"])
        .output()
        .map_err(|e| format!("git archive in {}: {e}", repo.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{}: not a git repository with a commit at HEAD ({})",
            repo.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Tree::from_tar(&out.stdout, 64 << 20)
        .map(|(t, _)| t)
        .map_err(|e| format!("{}: {e}", repo.display()))
}

/// A game from its folder's files; `shown` names the folder in errors, `dir` is where it
/// lies on disk (for `git`).
fn parse(name: &str, shown: &str, files: Tree, dir: Option<&Path>) -> Result<Game, String> {
    let toml_text = files
        .text("game.toml")
        .ok_or_else(|| format!("{shown}/game.toml: missing"))?;
    let g: GameToml = toml::from_str(&toml_text).map_err(|e| format!("{shown}/game.toml: {e}"))?;
    let bad = |m: String| Err(format!("{shown}/game.toml: {m}"));
    if !g.check.contains("{check}") {
        return bad("`check` must contain {check}, where the check's file name goes".into());
    }
    if g.requests.is_empty() {
        return bad("no [[request]]".into());
    }
    let repo = match (&g.git, dir) {
        (Some(git), Some(dir)) => {
            if files.get("repo").is_some() {
                return bad("both `git` and a repo/ folder: give one".into());
            }
            git_head(&dir.join(git))?
        }
        (Some(_), None) => return bad("`git` is for games in a folder of their own".into()),
        (None, _) => subtree(&files, "repo"),
    };
    if repo.is_empty() {
        return bad("the repository is empty (a repo/ folder, or `git = \"PATH\"`)".into());
    }
    let checks = subtree(&files, "checks");
    let mut requests: Vec<Request> = Vec::new();
    for (i, r) in g.requests.into_iter().enumerate() {
        let n = i + 1;
        if r.id.is_empty()
            || !r
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return bad(format!(
                "request {n}: id {:?} must be lower-case letters, digits and -",
                r.id
            ));
        }
        if requests.iter().any(|q| q.id == r.id) {
            return bad(format!("request {n}: id {:?} given twice", r.id));
        }
        if checks.file(&r.check).is_none() {
            return bad(format!(
                "request {}: its check {:?} is not a file in checks/",
                r.id, r.check
            ));
        }
        if r.text.trim().is_empty() {
            return bad(format!("request {}: empty text", r.id));
        }
        let sol = subtree(&files, &format!("solutions/{}", r.id));
        requests.push(Request {
            solution: (!sol.is_empty()).then_some(sol),
            id: r.id,
            title: r.title,
            text: r.text.trim().to_string(),
            check: r.check,
        });
    }
    let name = g.name.clone().unwrap_or_else(|| name.to_string());
    if name.is_empty() || name.contains(['/', ',']) || name.trim() != name {
        return bad(format!(
            "name {name:?}: give a name without / , or surrounding spaces"
        ));
    }
    Ok(Game {
        name,
        language: g.language,
        description: g.description,
        tests: g.tests,
        check: g.check,
        repo,
        checks,
        requests,
    })
}
