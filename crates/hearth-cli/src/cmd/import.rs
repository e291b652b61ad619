//! `hearth import FILE [--name NAME]`: put a local GGUF, or a Whisper
//! speech model (a CTranslate2 folder or a whisper.cpp ggml `.bin`), into
//! the store.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use hearth_store::Store;

use super::store_fmt::human_size;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The GGUF file (or Whisper model folder or ggml `.bin`) to put into
    /// the store.
    pub file: PathBuf,
    /// Name to install it under (default: the file name without .gguf).
    #[arg(long)]
    pub name: Option<String>,
}

pub fn main(a: ImportArgs) -> Result<()> {
    if hearth_speech::detect_whisper(&a.file) {
        return import_whisper(&a);
    }
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

/// A Whisper model is loaded whole (weights, tokenizer) before it enters
/// the store, and listed with the architecture `whisper`.
pub fn import_whisper(a: &ImportArgs) -> Result<()> {
    let model = hearth_speech::Whisper::load(&a.file).with_context(|| {
        format!(
            "{} is not a Whisper model hearth can load",
            a.file.display()
        )
    })?;
    // A CTranslate2 `model.bin` named directly stands for its folder.
    let path = match a.file.parent() {
        Some(dir) if a.file.is_file() && !is_ggml(&a.file) => dir.to_path_buf(),
        _ => a.file.clone(),
    };
    let facts = hearth_store::GgufFacts {
        architecture: Some("whisper".into()),
        parameters: Some(model.parameter_count()),
        file_type: Some(model.weights.tok_emb.ty.name().to_string()),
    };
    let store = Store::open_default();
    let m = store.import_with(&path, a.name.as_deref(), facts)?;
    println!(
        "imported {} as {} (whisper, {}, {})",
        path.display(),
        m.name,
        m.short_id(),
        human_size(m.size)
    );
    Ok(())
}

/// Whether the file starts with whisper.cpp's ggml magic.
fn is_ggml(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == hearth_speech::ggml::MAGIC.to_le_bytes())
}
