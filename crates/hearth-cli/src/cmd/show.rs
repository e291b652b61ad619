//! `hearth show MODEL`: what a model holds (MODEL is a file or a store name).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use clap::Args;
use hearth_gguf::GgufFile;
use hearth_store::{Manifest, ModelConfig, Store};
use serde_json::json;

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The model: a store name or a path to a GGUF file.
    pub model: String,
    /// Print a Modelfile that recreates the model (`hearth create`).
    #[arg(long, conflicts_with_all = ["json", "tensors", "verbose"])]
    pub modelfile: bool,
    /// Print the facts as one JSON object.
    #[arg(long, conflicts_with = "tensors")]
    pub json: bool,
    /// Also print every metadata key.
    #[arg(long, short)]
    pub verbose: bool,
    /// Also list every tensor.
    #[arg(long)]
    pub tensors: bool,
}

/// The store's manifest when MODEL is a store name (not an existing path).
fn manifest_of(model: &str) -> Option<Manifest> {
    if Path::new(model).exists() {
        return None;
    }
    Store::open_default().get(model).ok().flatten()
}

pub fn main(a: ShowArgs) -> Result<()> {
    let path = crate::common::model_path(Path::new(&a.model))?;
    if hearth_speech::detect_whisper(&path) {
        return show_whisper(&a, &path);
    }
    let f = GgufFile::open(&path)?;
    let manifest = manifest_of(&a.model);
    let config = manifest
        .as_ref()
        .map(|m| m.config.clone())
        .unwrap_or_default();
    if a.modelfile {
        println!(
            "# Modelfile of {}, printed by `hearth show --modelfile`",
            a.model
        );
        print!("{}", config.to_modelfile(&path.display().to_string()));
        return Ok(());
    }
    if a.json {
        return print_json(&a.model, &path, &f, manifest.as_ref(), &config);
    }
    let arch = f.architecture().unwrap_or("?");
    let n_params: u64 = f.tensors().iter().map(|t| t.n_elements()).sum();
    let bytes: u64 = f.tensors().iter().map(|t| t.size).sum();
    let mut by_type: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    for t in f.tensors() {
        let e = by_type.entry(t.ty.name()).or_default();
        e.0 += 1;
        e.1 += t.n_elements();
    }
    println!("  Model");
    println!("    architecture        {arch}");
    if let Some(n) = f.get("general.name").and_then(|v| v.as_str()) {
        println!("    name                {n}");
    }
    println!("    parameters          {}", human_count(n_params));
    if let Some(c) = f
        .get(&format!("{arch}.context_length"))
        .and_then(|v| v.as_u64())
    {
        println!("    context length      {c}");
    }
    if let Some(e) = f
        .get(&format!("{arch}.embedding_length"))
        .and_then(|v| v.as_u64())
    {
        println!("    embedding length    {e}");
    }
    if let Some(r) = recurrent_layers(&f) {
        println!("    recurrent layers    {}", r.text());
    }
    println!(
        "    weights             {:.1} MiB",
        bytes as f64 / (1u64 << 20) as f64
    );
    print_experts(&f);
    let types: Vec<String> = by_type
        .iter()
        .map(|(t, (n, el))| {
            format!(
                "{t} ×{n} ({:.0}%)",
                100.0 * *el as f64 / n_params.max(1) as f64
            )
        })
        .collect();
    println!("    tensor types        {}", types.join(", "));
    println!("    GGUF version        {}", f.version);
    // The manifest's hash for a store name; a file is hashed now.
    let sha = match hearth_store::Store::open_default().get(&a.model) {
        Ok(Some(m)) if !Path::new(&a.model).exists() => m.sha256,
        _ => hearth_store::hash_file(&path)?.0,
    };
    println!("    sha256              {sha}");
    // A Modelfile's licence and template replace the file's.
    let license = match config.license.is_empty() {
        false => Some(config.license.join("\n")),
        true => f
            .get("general.license")
            .and_then(|v| v.as_str())
            .map(str::to_string),
    };
    let template = config.template.clone().or_else(|| {
        f.get("tokenizer.chat_template")
            .and_then(|v| v.as_str())
            .map(str::to_string)
    });
    for (title, text) in [("License", license), ("Template", template)] {
        if let Some(t) = text {
            println!();
            println!("  {title}");
            for line in t.lines() {
                println!("    {line}");
            }
        }
    }
    if let Some(sys) = &config.system {
        println!();
        println!("  System");
        for line in sys.lines() {
            println!("    {line}");
        }
    }
    if !config.parameters.is_empty() {
        println!();
        println!("  Parameters");
        for line in config.parameters_text().lines() {
            println!("    {line}");
        }
    }
    if a.verbose {
        println!();
        println!("  Metadata");
        for (k, v) in f.metadata() {
            println!("    {k:<44} {}", v.display_short(8));
        }
    }
    if a.tensors {
        println!();
        println!("  Tensors");
        for t in f.tensors() {
            println!(
                "    {:<36} {:<6} {:<20} {:>10} bytes",
                t.name,
                t.ty.name(),
                format!("{:?}", t.dims),
                t.size
            );
        }
    } else {
        println!();
        println!("  {} tensors (--tensors to list them)", f.tensors().len());
    }
    // Everything above is what the file says; a supported architecture
    // whose hyper-parameters no model can have is then an error, so that
    // `show` does not vouch for a file `run` would refuse.
    // (Files that are not whole models, such as split shards, still show.)
    match hearth_model::Config::from_gguf(&f) {
        Err(e @ hearth_model::ModelError::BadHparam { .. }) => {
            anyhow::bail!("{} cannot run: {e}", a.model)
        }
        _ => Ok(()),
    }
}

fn print_json(
    model: &str,
    path: &Path,
    f: &GgufFile,
    manifest: Option<&Manifest>,
    config: &ModelConfig,
) -> Result<()> {
    let arch = f.architecture().unwrap_or("unknown");
    let key = |k: &str| f.get(&format!("{arch}.{k}")).and_then(|v| v.as_u64());
    let sha = match manifest {
        Some(m) => m.sha256.clone(),
        None => hearth_store::hash_file(path)?.0,
    };
    let v = json!({
        "model": model,
        "path": path,
        "sha256": sha,
        "architecture": arch,
        "name": f.get("general.name").and_then(|v| v.as_str()),
        "parameters": f.tensors().iter().map(|t| t.n_elements()).sum::<u64>(),
        "quantization": hearth_store::file_type_of(f),
        "context_length": key("context_length"),
        "embedding_length": key("embedding_length"),
        "capabilities": hearth_store::capabilities(f),
        "recurrent_layers": recurrent_layers(f).map(|r| json!({
            "layers": r.layers,
            "of": r.n_layer,
            "mixers": r.mixers,
            "state_bytes_per_sequence": r.state_bytes,
        })),
        "experts": hearth_plan::experts(f),
        "config": config,
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

/// A hybrid model's recurrent layers, from its configuration.
struct RecurrentLayers {
    layers: Vec<usize>,
    n_layer: usize,
    /// The kinds of recurrent mixer, in layer order, each once.
    mixers: Vec<&'static str>,
    /// Convolution history and scan state of one sequence.
    state_bytes: u64,
}

impl RecurrentLayers {
    fn text(&self) -> String {
        let list: Vec<String> = self.layers.iter().map(|l| l.to_string()).collect();
        format!(
            "{} of {} ({}): {}, state {:.1} KiB per sequence",
            self.layers.len(),
            self.n_layer,
            list.join(", "),
            self.mixers.join(", "),
            self.state_bytes as f64 / 1024.0
        )
    }
}

/// The recurrent layers of a model hearth can run, when it has any.
fn recurrent_layers(f: &GgufFile) -> Option<RecurrentLayers> {
    let c = hearth_model::Config::from_gguf(f).ok()?;
    let mut r = RecurrentLayers {
        layers: Vec::new(),
        n_layer: c.n_layer,
        mixers: Vec::new(),
        state_bytes: c.recurrent_bytes(),
    };
    for (i, l) in c.layers.iter().enumerate() {
        if let hearth_model::Mixer::Recurrent(m) = l.mixer {
            r.layers.push(i);
            if !r.mixers.contains(&m.name()) {
                r.mixers.push(m.name());
            }
        }
    }
    (!r.layers.is_empty()).then_some(r)
}

/// A mixture-of-experts model's experts and the parameters a token uses.
fn print_experts(f: &GgufFile) {
    let Some(e) = hearth_plan::experts(f) else {
        return;
    };
    let shared = match e.shared {
        0 => String::new(),
        n => format!(", {n} shared"),
    };
    println!(
        "    experts             {} ({} used per token{shared})",
        e.count, e.used
    );
    println!(
        "    active parameters   {} per token",
        human_count(e.active_params)
    );
}

fn human_count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2}B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1}K", n as f64 / 1e3),
        n => n.to_string(),
    }
}

/// A Whisper speech model's facts (kind `whisper`).
fn show_whisper(a: &ShowArgs, path: &Path) -> Result<()> {
    if a.modelfile || a.tensors {
        anyhow::bail!(
            "{} is a Whisper speech model: it has no Modelfile and no GGUF tensors",
            a.model
        );
    }
    let m = hearth_speech::Whisper::load(path)?;
    let hp = &m.weights.hp;
    let sha = match manifest_of(&a.model) {
        Some(man) => man.sha256,
        None => hearth_store::hash_path(path)?.0,
    };
    let languages = if m.is_multilingual() {
        "multilingual"
    } else {
        "English only"
    };
    let weights = m.weights.tok_emb.ty.name();
    if a.json {
        let v = json!({
            "model": a.model, "path": path, "kind": "whisper", "architecture": "whisper",
            "languages": languages, "n_mels": hp.n_mels, "n_vocab": hp.n_vocab,
            "audio": {"layers": hp.n_audio_layer, "width": hp.n_audio_state, "heads": hp.n_audio_head},
            "text": {"layers": hp.n_text_layer, "width": hp.n_text_state, "heads": hp.n_text_head},
            "weights": weights, "sha256": sha,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("  Model");
    println!("    architecture        whisper (speech to text)");
    println!("    languages           {languages}");
    println!("    mel bins            {}", hp.n_mels);
    println!(
        "    audio encoder       {} layers, {} wide, {} heads",
        hp.n_audio_layer, hp.n_audio_state, hp.n_audio_head
    );
    println!(
        "    text decoder        {} layers, {} wide, {} heads",
        hp.n_text_layer, hp.n_text_state, hp.n_text_head
    );
    println!("    vocabulary          {}", hp.n_vocab);
    println!("    weights             {weights}");
    println!("    sha256              {sha}");
    Ok(())
}
