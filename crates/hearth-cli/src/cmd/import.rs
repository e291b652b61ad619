//! `hearth import FILE [--name NAME]`: put a local GGUF into the store.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use hearth_store::Store;

use super::store_fmt::human_size;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The GGUF file to put into the store.
    pub file: PathBuf,
    /// Name to install it under (default: the file name without .gguf).
    #[arg(long)]
    pub name: Option<String>,
}

pub fn main(a: ImportArgs) -> Result<()> {
    let store = Store::open_default();
    let m = store.import(&a.file, a.name.as_deref())?;
    println!(
        "imported {} as {} ({}, {})",
        a.file.display(),
        m.name,
        m.short_id(),
        human_size(m.size)
    );
    Ok(())
}
