//! `hearth tokenize MODEL TEXT`: token ids and their pieces.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct TokenizeArgs {
    /// The model: a store name or a path to a GGUF file.
    pub model: PathBuf,
    /// The text to tokenize.
    pub text: String,
    /// Do not add BOS/EOS even if the model asks for them.
    #[arg(long)]
    pub no_bos: bool,
    /// Treat special-token text as plain text.
    #[arg(long)]
    pub no_parse_special: bool,
    /// Print only the list of ids.
    #[arg(long)]
    pub ids: bool,
}

pub fn main(a: TokenizeArgs) -> Result<()> {
    let gguf = hearth_gguf::GgufFile::open(crate::common::model_path(&a.model)?)?;
    let tok = hearth_tokenizer::Tokenizer::from_gguf(&gguf)?;
    let ids = tok.encode(&a.text, !a.no_bos, !a.no_parse_special);
    if a.ids {
        let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        println!("[{}]", list.join(", "));
        return Ok(());
    }
    for id in ids {
        let piece = tok.token_piece(id);
        println!("{id:>7} -> {:?}", String::from_utf8_lossy(piece));
    }
    Ok(())
}
