//! `status`: where a sweep stands, from its files.

use super::Exit;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// A results folder (results/<sweep>).
    pub dir: std::path::PathBuf,
}

pub fn run(args: Args) -> Result<Exit> {
    let Args { dir } = args;
    let rows = crate::app::status::rows(&dir)?;
    print!("{}", crate::app::status::render(&dir, &rows));
    Ok(Exit::Success)
}
