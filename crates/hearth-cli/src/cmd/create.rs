//! `hearth create NAME -f Modelfile`: a store model made from a Modelfile
//! (as `ollama create`): `FROM` a store name or a GGUF path, with the
//! Modelfile's parameters, system message, template, messages and licence.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use hearth_store::{modelfile, Store};

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The name of the new model (`name[:tag]`).
    pub name: String,
    /// The Modelfile to read (default: ./Modelfile).
    #[arg(short = 'f', long = "file", default_value = "Modelfile")]
    pub file: PathBuf,
}

pub fn main(a: CreateArgs) -> Result<()> {
    let file = std::fs::File::open(&a.file)
        .with_context(|| format!("opening the Modelfile {}", a.file.display()))?;
    let mut text = String::new();
    file.take(modelfile::MAX_MODELFILE as u64 + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading the Modelfile {}", a.file.display()))?;
    let mf = modelfile::parse(&text).with_context(|| a.file.display().to_string())?;
    let base = a.file.parent().unwrap_or(Path::new("."));
    let m = Store::open_default().create(&a.name, &mf, base)?;
    println!("created {} ({}) from {}", m.name, m.short_id(), mf.from);
    Ok(())
}
