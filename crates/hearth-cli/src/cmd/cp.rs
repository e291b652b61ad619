//! `hearth cp SRC DST`: another name for an installed model.

use anyhow::Result;
use clap::Args;
use hearth_store::Store;

#[derive(Args, Debug)]
pub struct CpArgs {
    /// The store name of the model to copy.
    pub source: String,
    /// The new name.
    pub destination: String,
}

pub fn main(a: CpArgs) -> Result<()> {
    let store = Store::open_default();
    let m = store.copy(&a.source, &a.destination)?;
    println!("copied '{}' to '{}'", a.source, m.name);
    Ok(())
}
