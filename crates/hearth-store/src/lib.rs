//! hearth's model store: where models live on this machine and how they
//! get there.
//!
//! This crate owns the store folder (`~/.hearth/models`, or
//! `$HEARTH_MODELS`): model files as blobs named by their sha256, one JSON
//! manifest per `name:tag`, and a partial area for downloads in progress.
//! It pulls from Hugging Face (or any `https://` URL) with resume, sha256
//! checks and atomic installs, imports local files, and lists, copies,
//! removes and verifies what is installed. It is the only part of hearth
//! that opens network connections, and only inside [`pull`].
//!
//! Key types: [`Store`], [`Manifest`], [`ModelName`], [`Progress`],
//! [`PullOptions`], [`StoreError`]; [`resolve_model`] turns what a user
//! typed as MODEL (a path or a store name) into a file to load.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use hearth_store::{pull, PullOptions, Store};
//! let store = Store::open_default();
//! let m = pull(
//!     &store,
//!     "hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M",
//!     &PullOptions::from_env(),
//!     &mut |p| eprintln!("{}", p.to_ollama_json()),
//!     &AtomicBool::new(false),
//! )?;
//! println!("{} {}", m.name, m.short_id());
//! let path = hearth_store::resolve_model(&m.name)?;
//! # Ok::<(), hearth_store::StoreError>(())
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod error;
pub mod header;
mod http;
pub mod modelfile;
pub mod name;
mod pull;
pub mod quant;
pub mod split;
mod store;
mod target;

use std::path::{Path, PathBuf};

pub use error::{Result, StoreError};
pub use header::{hub_header, runnable_types, HeaderCheck};
pub use http::{hub_file_prefix, hub_gguf_files, HubConfig, MAX_LISTING, MAX_RETRIES};
pub use modelfile::{ConfigMessage, ModelConfig, Modelfile};
pub use name::{HfRef, ModelName};
pub use pull::{pull, Progress, PullOptions};
pub use store::{
    capabilities, default_root, file_type_of, gguf_facts, hash_file, hash_path, name_from_file,
    parse_sha256, GgufFacts, Manifest, Source, Store, Verified,
};
pub use target::{check_public_url, is_internal};

/// What a MODEL argument means: an existing file is itself; anything else
/// is looked up as a name in the default store. The error says whether a
/// path was missing or a name is not installed (with a near name, and
/// `hearth pull` as the way out).
pub fn resolve_model(arg: &str) -> Result<PathBuf> {
    resolve_in(&Store::open_default(), arg)
}

/// [`resolve_model`] against a given store.
pub fn resolve_in(store: &Store, arg: &str) -> Result<PathBuf> {
    let p = Path::new(arg);
    if p.exists() {
        return Ok(p.to_path_buf());
    }
    let looks_like_path = arg.starts_with(['/', '.', '~'])
        || arg.contains(std::path::MAIN_SEPARATOR)
            && !arg.contains(':')
            && name::parse(arg).is_err()
        || arg.to_ascii_lowercase().ends_with(".gguf");
    match name::parse(arg) {
        Ok(_) if !looks_like_path => store.model_path(arg),
        _ => Err(StoreError::NoSuchFile(p.to_path_buf())),
    }
}
