//! Helpers shared by the end-to-end test files (each file is its own test binary).
#![allow(dead_code)] // each binary uses its own subset

use std::path::PathBuf;
use std::process::{Command, Output};

/// The windtunnel binary cargo built for these tests.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_windtunnel"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh, empty folder under the system temp dir, unique to this test process.
pub fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("wt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// stdout then stderr of a finished command.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}
