//! `hearth convert DIR OUT.gguf [--type f32|f16|q8_0]`: a
//! sentence-transformers BERT folder to GGUF.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use clap::Args;
use hearth_convert::{convert, OutType};

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// The folder: config.json, model.safetensors, tokenizer.json,
    /// 1_Pooling/config.json.
    pub dir: PathBuf,
    /// The GGUF file to write (a temporary file beside it, renamed when
    /// complete).
    pub output: PathBuf,
    /// Type of the weight matrices: f32, f16 or q8_0 (norms, biases and
    /// the token types stay f32).
    #[arg(long = "type", default_value = "f32")]
    pub ty: String,
}

pub fn main(a: ConvertArgs) -> Result<()> {
    let ty = OutType::parse(&a.ty)
        .ok_or_else(|| anyhow!("unknown type {:?}; the types are f32, f16, q8_0", a.ty))?;
    let r = convert(&a.dir, &a.output, ty)?;
    eprintln!(
        "wrote {}: {} tensors, {} tokens, {} pooling",
        a.output.display(),
        r.tensors,
        r.n_vocab,
        r.pooling
    );
    Ok(())
}
