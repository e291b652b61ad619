//! `hearth plan MODEL`: the memory a model needs at a context length, what
//! this machine has, and whether it fits — from the file's header, before
//! anything is allocated.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use hearth_gguf::GgufFile;
use hearth_model::{Config, KvType, UBATCH};
use hearth_plan::{Available, Ctx, DoesNotFit, Options};

use crate::common::DEFAULT_CTX;

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Path to a .gguf model file.
    pub model: PathBuf,
    /// Context size in tokens, or `auto` (the largest that fits, up to the
    /// trained length); default: the trained length capped at 4096, as `run`.
    #[arg(long = "ctx", short = 'c')]
    pub ctx: Option<Ctx>,
    /// Sequences served at once, each with its own KV cache and buffers.
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// KV cache type: f16 or f32.
    #[arg(long, default_value = "f16")]
    pub kv_type: KvType,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn main(a: PlanArgs) -> Result<()> {
    if !a.model.exists() {
        bail!("model file {} does not exist", a.model.display());
    }
    let file =
        GgufFile::open(&a.model).with_context(|| format!("reading {}", a.model.display()))?;
    let ctx = match a.ctx {
        Some(c) => c,
        None => {
            let config = Config::from_gguf(&file)
                .with_context(|| format!("reading {}", a.model.display()))?;
            Ctx::Tokens(config.n_ctx_train.clamp(1, DEFAULT_CTX))
        }
    };
    let opts = Options {
        ctx,
        parallel: a.parallel,
        kv: a.kv_type,
        n_ubatch: UBATCH,
    };
    let name = a.model.file_name().map_or_else(
        || a.model.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let plan = hearth_plan::plan(&name, &file, &opts, &Available::probe()?)
        .with_context(|| format!("planning {}", a.model.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        println!("{plan}");
    }
    if !plan.fits {
        bail!("{}", DoesNotFit { plan });
    }
    Ok(())
}
