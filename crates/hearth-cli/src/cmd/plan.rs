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
    /// The model: a store name or a path to a GGUF file; or `hf.co/OWNER/REPO` (then every
    /// quantization the repository has is planned, before downloading).
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
    if let Some(r) = a.model.to_str().and_then(hearth_store::name::parse_hf) {
        return plan_hub_repo(&a, &r);
    }
    let path = crate::common::model_path(&a.model)?;
    let file = GgufFile::open(&path).with_context(|| format!("reading {}", path.display()))?;
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

/// Plans every quantization of a hub repository from its file listing and
/// one file's header, fetched with a Range request.
fn plan_hub_repo(a: &PlanArgs, r: &hearth_store::HfRef) -> Result<()> {
    let hub = hearth_store::HubConfig::from_env();
    let files = hearth_store::hub_gguf_files(&hub, &r.owner, &r.repo)?;
    let Some((first, first_len)) = files
        .iter()
        .find(|(p, _)| !p.to_ascii_lowercase().contains("mmproj"))
        .cloned()
    else {
        bail!("hf.co/{}/{} has no GGUF model files", r.owner, r.repo);
    };
    let header = hearth_store::hub_header(&hub, &r.owner, &r.repo, &first, first_len)
        .with_context(|| format!("reading the header of {first}"))?;
    let opts = Options {
        ctx: a.ctx.unwrap_or(Ctx::Auto),
        parallel: a.parallel,
        kv: a.kv_type,
        n_ubatch: UBATCH,
    };
    let fits = hearth_plan::plan_repo(&header, &files, &opts, &Available::probe()?)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&fits)?);
    } else {
        println!("hf.co/{}/{}:", r.owner, r.repo);
        print!("{}", hearth_plan::repo_table(&fits));
    }
    Ok(())
}
