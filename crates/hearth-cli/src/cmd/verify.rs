//! `hearth verify NAME...`: re-hash installed models and compare with
//! their manifests.

use anyhow::{bail, Result};
use clap::Args;
use hearth_store::Store;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The store names of the models to check.
    #[arg(required = true)]
    pub names: Vec<String>,
}

pub fn main(a: VerifyArgs) -> Result<()> {
    let store = Store::open_default();
    let mut bad = 0;
    for n in &a.names {
        match store.verify(n) {
            Ok(v) if v.ok() => println!("{n}: ok (sha256:{}, {} bytes)", v.actual, v.size),
            Ok(v) => {
                eprintln!(
                    "{n}: CORRUPT: expected sha256:{}, the file hashes to sha256:{}; remove it and pull or import it again",
                    v.expected, v.actual
                );
                bad += 1;
            }
            Err(e) => {
                eprintln!("{n}: error: {e}");
                bad += 1;
            }
        }
    }
    if bad > 0 {
        bail!("{bad} of {} failed verification", a.names.len());
    }
    Ok(())
}
