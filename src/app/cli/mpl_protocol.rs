//! `mpl-protocol` (research, on the tool itself): the multi-power-law paper's protocol.

use super::Exit;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    #[arg(default_value = "../shared/reference-data/mpl")]
    pub dir: std::path::PathBuf,
}

pub fn run(args: Args) -> Result<Exit> {
    let Args { dir } = args;
    print!("{}", crate::app::curve::mpl_protocol(&dir)?);
    Ok(Exit::Success)
}
