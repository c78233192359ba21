//! Whether a run folder is what its name says: a real folder of its own whose config.json is
//! the run the name is the id of. Every reader of run folders (`run`, `status`, `collect`,
//! `plan`) asks here first, so a folder that is something else (a file, a symlink to another
//! run, a dangling link, a folder that cannot be read, a copy of another run) is named as
//! such by all of them, and never read as the run it is not (a symlink to a finished run
//! would otherwise be "done" twice, with the other run's loss) nor silently left out of the
//! counts.

use super::RunDir;
use crate::spec::config::RunConfig;
use std::ffi::OsString;
use std::io;
use std::path::Path;

/// What stands at a run folder's path.
#[derive(Clone, Debug, PartialEq)]
pub enum Place {
    /// Nothing: the run has not been prepared yet.
    Absent,
    /// A real folder whose config.json is this run's (boxed: a config is large beside a path).
    Own(Box<RunConfig>),
    /// Something else, which must be named rather than read.
    Problem(Problem),
}

/// Why a run folder cannot be used as the run it is named for.
#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    /// A plain file (or anything but a folder) where the folder belongs.
    NotAFolder,
    /// A symbolic link (to this target). Refused even when its target is a good folder: a
    /// link to another run's folder would be read, trained and counted as that run.
    Symlink(String),
    /// A symbolic link whose target does not exist.
    Dangling(String),
    /// The folder (or its config.json) cannot be read: the OS error, e.g. permission denied.
    Unreadable(String),
    /// An empty folder: no config.json, no record.
    Empty,
    /// Files but no config.json (config.json is the first file a run folder gets).
    NoConfig,
    /// config.json does not parse as a run config.
    BadConfig(String),
    /// config.json is the config of the run with this id, not of the run the folder is
    /// named for (a copied or renamed folder).
    Foreign(String),
}

impl Problem {
    /// Whether `run` must refuse the sweep over it. An empty folder or one without config.json
    /// holds nothing to lose: `run` writes the config and trains the run. The others hold
    /// something that is not this run (or cannot be seen), which only a person can sort out.
    pub fn blocks_training(&self) -> bool {
        !matches!(self, Problem::Empty | Problem::NoConfig)
    }

    /// What is wrong, for a message that names the folder before it.
    pub fn describe(&self) -> String {
        match self {
            Problem::NotAFolder => "a file, not a run folder".into(),
            Problem::Symlink(t) => format!(
                "a symlink to {t}; a run folder must be a folder of its own (a link to another run would be read as that \
                 run; to keep runs on another disk, link the results folder or its runs/ instead)"
            ),
            Problem::Dangling(t) => format!("a dangling symlink (to {t}, which does not exist)"),
            Problem::Unreadable(e) => format!("cannot be read: {e}"),
            Problem::Empty => "an empty folder (no config.json, no record)".into(),
            Problem::NoConfig => "no config.json (the first file a run folder gets)".into(),
            Problem::BadConfig(e) => format!("config.json is not a run config: {e}"),
            Problem::Foreign(id) => format!(
                "its config.json is run {id}'s, not this folder's (a copied or renamed run folder: its record is not \
                 this run's)"
            ),
        }
    }
}

fn list(p: &Path) -> io::Result<Vec<OsString>> {
    std::fs::read_dir(p)?.map(|e| e.map(|e| e.file_name())).collect()
}

impl RunDir {
    /// What stands at this run's folder (see `Place`).
    pub fn place(&self) -> Place {
        classify(&self.path, &self.id, None, &list)
    }

    /// `place`, for a folder whose run's config is known (the sweep's): a config.json that
    /// is exactly what `run` writes for it is its own without reparsing it (see `classify`).
    pub fn place_of(&self, expected: &RunConfig) -> Place {
        classify(&self.path, &self.id, Some(expected), &list)
    }

    /// `place_of`'s problem, if there is one (an absent folder is none).
    pub fn problem(&self, expected: &RunConfig) -> Option<Problem> {
        match self.place_of(expected) {
            Place::Problem(p) => Some(p),
            _ => None,
        }
    }
}

/// config.json as `run` writes it (`store::write_json_atomic`).
fn config_bytes(c: &RunConfig) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(c).unwrap_or_default();
    b.push(b'\n');
    b
}

/// `RunDir::place`, with the folder listing passed in: the unreadable-folder path cannot be
/// provoked for root (tests run as root, and root reads a chmod 000 folder), so tests give a
/// listing that fails the way it does for other users.
///
/// A config.json byte for byte the `expected` one is this run's. Otherwise its id is computed
/// from the parsed config, which is exact for the ids `run` writes except where serde_json's
/// float parser (not correctly rounded without its `float_roundtrip` feature) moves a long
/// decimal like an lr of 10^-2.5 by one bit: that is why the bytes are compared first, so a
/// run of the sweep is never taken for a copy of another.
pub fn classify(
    path: &Path,
    id: &str,
    expected: Option<&RunConfig>,
    list: &dyn Fn(&Path) -> io::Result<Vec<OsString>>,
) -> Place {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Place::Absent,
        Err(e) => return Place::Problem(Problem::Unreadable(e.to_string())),
    };
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path).map_or_else(|e| format!("? ({e})"), |t| t.display().to_string());
        return Place::Problem(match std::fs::metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Problem::Dangling(target),
            _ => Problem::Symlink(target),
        });
    }
    if !meta.is_dir() {
        return Place::Problem(Problem::NotAFolder);
    }
    let names = match list(path) {
        Ok(n) => n,
        Err(e) => return Place::Problem(Problem::Unreadable(e.to_string())),
    };
    if names.is_empty() {
        return Place::Problem(Problem::Empty);
    }
    if !names.iter().any(|n| n == "config.json") {
        return Place::Problem(Problem::NoConfig);
    }
    let config = path.join("config.json");
    let text = match std::fs::read_to_string(&config) {
        Ok(t) => t,
        Err(e) => return Place::Problem(Problem::Unreadable(format!("config.json: {e}"))),
    };
    if let Some(e) = expected.filter(|e| text.as_bytes() == config_bytes(e).as_slice()) {
        return Place::Own(Box::new(e.clone()));
    }
    let cfg: RunConfig = match serde_json::from_str(&text) {
        Ok(c) => c,
        Err(e) => return Place::Problem(Problem::BadConfig(e.to_string())),
    };
    let own = cfg.run_id();
    if own != id {
        return Place::Problem(Problem::Foreign(own));
    }
    Place::Own(Box::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SweepDir;

    fn sweep() -> crate::spec::config::Sweep {
        crate::spec::parse(include_str!("../../sweeps/tiny.toml"), "tiny.toml").unwrap()
    }

    #[test]
    fn every_kind_of_wrong_run_folder_is_named() {
        let root = std::env::temp_dir().join(format!("wt-place-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let sd = SweepDir::new(&root, "s");
        let runs = sweep().runs;
        let (a, b) = (sd.run(&runs[0].run_id()), sd.run(&runs[1].run_id()));
        assert_eq!(a.place(), Place::Absent);
        crate::store::write_json_atomic(&a.config_json(), &runs[0]).unwrap();
        assert!(matches!(a.place(), Place::Own(c) if c.run_id() == a.id));
        assert_eq!(a.place_of(&runs[0]), Place::Own(Box::new(runs[0].clone())));
        // b is a symlink to a: read as a, it would be a's run twice.
        std::os::unix::fs::symlink(&a.path, &b.path).unwrap();
        let p = b.problem(&runs[1]).unwrap();
        assert!(matches!(&p, Problem::Symlink(t) if t.contains(&a.id)), "{p:?}");
        assert!(p.blocks_training() && p.describe().contains("symlink to"), "{}", p.describe());
        // ... dangling once a is gone.
        std::fs::rename(&a.path, root.join("moved")).unwrap();
        assert!(matches!(b.problem(&runs[1]), Some(Problem::Dangling(_))), "{:?}", b.place());
        std::fs::remove_file(&b.path).unwrap();
        // A copy of a under b's name: its config is a's.
        std::fs::create_dir_all(&b.path).unwrap();
        std::fs::copy(root.join("moved/config.json"), b.config_json()).unwrap();
        assert_eq!(b.problem(&runs[1]), Some(Problem::Foreign(runs[0].run_id())));
        std::fs::write(b.config_json(), "{").unwrap();
        assert!(matches!(b.problem(&runs[1]), Some(Problem::BadConfig(_))));
        std::fs::remove_file(b.config_json()).unwrap();
        assert_eq!(b.problem(&runs[1]), Some(Problem::Empty));
        assert!(!Problem::Empty.blocks_training());
        std::fs::write(b.path.join("metrics.jsonl"), "").unwrap();
        assert_eq!(b.problem(&runs[1]), Some(Problem::NoConfig));
        std::fs::remove_dir_all(&b.path).unwrap();
        std::fs::write(&b.path, "not a folder").unwrap();
        assert_eq!(b.problem(&runs[1]), Some(Problem::NotAFolder));
        std::fs::remove_file(&b.path).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// A folder its reader may not list (chmod 000 for anyone but root) is named with the OS
    /// error. Root lists any folder, so the failing listing is given here; when the test does
    /// not run as root, a real chmod 000 folder is checked too.
    #[test]
    fn an_unreadable_run_folder_is_named_with_its_error() {
        let root = std::env::temp_dir().join(format!("wt-place-ro-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let rd = SweepDir::new(&root, "s").run("r");
        std::fs::create_dir_all(&rd.path).unwrap();
        let denied = |_: &Path| -> io::Result<Vec<OsString>> { Err(io::Error::from_raw_os_error(13)) };
        let p = match classify(&rd.path, &rd.id, None, &denied) {
            Place::Problem(p) => p,
            other => panic!("{other:?}"),
        };
        assert!(p.describe().contains("Permission denied"), "{}", p.describe());
        assert!(p.blocks_training());
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&rd.path, std::fs::Permissions::from_mode(0o000)).unwrap();
            let real = match rd.place() {
                Place::Problem(p) => Some(p),
                _ => None,
            };
            std::fs::set_permissions(&rd.path, std::fs::Permissions::from_mode(0o755)).unwrap();
            assert!(matches!(real, Some(Problem::Unreadable(_))), "{real:?}");
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
