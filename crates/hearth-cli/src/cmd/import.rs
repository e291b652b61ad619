//! `hearth import FILE [--name NAME]`: put a local GGUF into the store.

use std::path::PathBuf;

use anyhow::{Context, Result};
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
    // The whole model is checked before it enters the store (container,
    // hyper-parameters, every tensor's name, shape and type, tokenizer), so
    // nothing in the store can make `run` or `serve` fail later.
    if a.file.is_file() {
        let model = hearth_model::Model::load(&a.file)
            .with_context(|| format!("{} is not a GGUF model hearth can run", a.file.display()))?;
        hearth_tokenizer::Tokenizer::from_gguf(model.file())
            .with_context(|| format!("{} has no usable tokenizer", a.file.display()))?;
    }
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
