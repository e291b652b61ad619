//! `hearth rm NAME...`: remove models (a blob goes when no name uses it).

use anyhow::{bail, Result};
use clap::Args;
use hearth_store::Store;

#[derive(Args, Debug)]
pub struct RmArgs {
    /// The store names of the models to remove.
    #[arg(required = true)]
    pub names: Vec<String>,
}

pub fn main(a: RmArgs) -> Result<()> {
    let store = Store::open_default();
    let mut failed = 0;
    for n in &a.names {
        match store.remove(n) {
            Ok(m) => println!("deleted '{}'", m.name),
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} not removed", a.names.len());
    }
    Ok(())
}
