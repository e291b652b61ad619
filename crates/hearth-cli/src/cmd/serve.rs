//! `hearth serve [MODEL]`: the Ollama- and OpenAI-compatible HTTP server.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use hearth_model::KvType;
use hearth_server::{parse_keep_alive, AppState, EngineDefaults, KeepAlive, ServerConfig};

use crate::common;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// A model to load at start: a store name or a path to a GGUF file.
    pub model: Option<String>,
    /// Address to listen on [env: HEARTH_HOST] (default 127.0.0.1:11434).
    #[arg(long)]
    pub host: Option<String>,
    /// Sequences generated at once per model (default: 4, or fewer when the
    /// memory plan says 4 do not fit).
    #[arg(long)]
    pub parallel: Option<usize>,
    /// Requests that may wait for a free sequence; beyond it the server answers 503.
    #[arg(long, default_value_t = 512)]
    pub max_queue: usize,
    /// Context per sequence in tokens (default: the model's, capped at 4096).
    #[arg(long = "ctx", short = 'c')]
    pub ctx: Option<usize>,
    /// Threads of the one pool every loaded model computes on, taking
    /// turns (default: the machine's cores).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// KV cache type: f16 or f32.
    #[arg(long, default_value = "f16")]
    pub kv_type: KvType,
    /// Require `Authorization: Bearer KEY` on every route but / and /health
    /// [env: HEARTH_API_KEY].
    #[arg(long)]
    pub api_key: Option<String>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    pub max_body: usize,
    /// Seconds a connection has to send a complete request head, counted
    /// from when it opens or its previous response ends (so it is also how
    /// long an idle keep-alive connection stays open).
    #[arg(long, default_value_t = 30.0)]
    pub header_timeout: f64,
    /// Seconds a request's body has to arrive after its head; a late or
    /// short body is a 408 and the connection is closed. Responses are
    /// never timed.
    #[arg(long, default_value_t = 60.0)]
    pub body_timeout: f64,
    /// How long a model stays loaded after its last request ("5m", seconds,
    /// negative = forever, 0 = unload at once) [env: HEARTH_KEEP_ALIVE].
    #[arg(long, allow_negative_numbers = true)]
    pub keep_alive: Option<String>,
    /// Turn off the model-management routes (pull, delete, copy). They are
    /// off anyway on a non-loopback address without --api-key.
    #[arg(long)]
    pub no_admin: bool,
    /// Let requests name models by .gguf file path (default: store names
    /// and the model given here only).
    #[arg(long)]
    pub allow_paths: bool,
    /// The folder `/api/rag/add` may index files from (default: none;
    /// the route refuses server-side paths).
    #[arg(long)]
    pub rag_root: Option<std::path::PathBuf>,
    /// Let /api/pull fetch http:// URLs and URLs of loopback, private or
    /// link-local addresses.
    #[arg(long)]
    pub allow_insecure_pull: bool,
    /// Batch-invariant kernels: a temperature-0 request returns the same
    /// text alone, batched with others or after a cached prefix (prompts
    /// evaluate more slowly; see docs/serve.md).
    #[arg(long)]
    pub deterministic: bool,
    /// Do not serve the chat page: `/` answers "Ollama is running" to
    /// browsers too, and `/ui/` is not found.
    #[arg(long)]
    pub no_ui: bool,
    /// Routing config: upstreams, routes, keys, redaction (default:
    /// ~/.hearth/config.toml when it exists; see docs/route.md).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Comma-separated entries of an environment variable.
fn env_list(name: &str) -> Vec<String> {
    env(name)
        .map(|s| {
            s.split(',')
                .map(|o| o.trim().to_string())
                .filter(|o| !o.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Why the management routes are off, if they are.
fn admin_off(no_admin: bool, addr: SocketAddr, has_key: bool) -> Option<String> {
    if no_admin {
        Some("the server was started with --no-admin".into())
    } else if !addr.ip().is_loopback() && !has_key {
        Some(format!(
            "the server listens on {addr}, a non-loopback address without --api-key"
        ))
    } else {
        None
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Parses `ADDR:PORT`, or a bare port, or a bare host (port 11434).
fn parse_host(s: &str) -> Result<SocketAddr> {
    let s = s.trim().trim_start_matches("http://");
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let with_port = format!("{s}:11434");
    if let Ok(a) = with_port.parse::<SocketAddr>() {
        return Ok(a);
    }
    use std::net::ToSocketAddrs;
    let mut addrs = s
        .to_socket_addrs()
        .or_else(|_| with_port.to_socket_addrs())
        .with_context(|| format!("invalid --host/HEARTH_HOST '{s}': expected ADDR:PORT"))?;
    addrs
        .next()
        .with_context(|| format!("'{s}' resolves to no address"))
}

pub fn main(a: ServeArgs) -> Result<()> {
    let host = a.host.clone().or_else(|| env("HEARTH_HOST"));
    let addr = parse_host(host.as_deref().unwrap_or("127.0.0.1:11434"))?;
    if a.parallel == Some(0) {
        bail!("--parallel must be at least 1");
    }
    if a.max_body < 1024 {
        bail!("--max-body must be at least 1024 bytes");
    }
    if let Some(c) = a.ctx {
        if !(16..=1 << 20).contains(&c) {
            bail!("--ctx must be between 16 and 1048576, got {c}");
        }
    }
    let keep_alive = match a.keep_alive.clone().or_else(|| env("HEARTH_KEEP_ALIVE")) {
        None => KeepAlive::For(std::time::Duration::from_secs(300)),
        Some(s) => {
            let v = s
                .trim()
                .parse::<f64>()
                .map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::String(s.clone()));
            parse_keep_alive(&v).map_err(|e| anyhow::anyhow!("--keep-alive: {e}"))?
        }
    };
    let seconds = |flag: &str, v: f64| {
        if !(v.is_finite() && (0.001..=86_400.0).contains(&v)) {
            bail!("--{flag} must be between 0.001 and 86400 seconds, got {v}");
        }
        Ok(std::time::Duration::from_secs_f64(v))
    };
    let timeouts = hearth_server::Timeouts {
        header: seconds("header-timeout", a.header_timeout)?,
        body: seconds("body-timeout", a.body_timeout)?,
    };
    let extra_origins = env_list("HEARTH_ORIGINS");
    let api_key = a.api_key.clone().or_else(|| env("HEARTH_API_KEY"));
    let security = hearth_server::Security {
        allowed_hosts: env_list("HEARTH_ALLOWED_HOSTS"),
        bound: Some(addr),
        admin_off: admin_off(a.no_admin, addr, api_key.is_some()),
        allow_paths: a.allow_paths,
        insecure_pull: a.allow_insecure_pull,
        rag_root: a.rag_root.clone(),
    };
    let cfg = ServerConfig {
        engine: EngineDefaults {
            n_parallel: a.parallel,
            n_ctx: a.ctx,
            kv: a.kv_type,
            threads: common::threads(a.threads)?,
            max_queue: a.max_queue,
            deterministic: a.deterministic,
        },
        api_key,
        max_body: a.max_body,
        timeouts,
        keep_alive,
        extra_origins,
        // The planner's figure (MemAvailable, the cgroup's room,
        // HEARTH_MEMORY_LIMIT), read once: loaded models count against it.
        memory_budget: Some(hearth_plan::Available::probe().context("measuring free memory")?),
        resolver: None,
        store: Some(std::sync::Arc::new(hearth_store::Store::open_default())),
        security,
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HEARTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    if let Some(why) = &cfg.security.admin_off {
        eprintln!("pull, delete and copy are off: {why}");
    }
    let gateway = route_gateway(a.config.as_deref())?;
    rt.block_on(async move {
        let mut state = AppState::new(cfg);
        state.gateway = gateway;
        if let Some(m) = &a.model {
            if PathBuf::from(m).extension().is_some_and(|e| e == "gguf")
                && !PathBuf::from(m).is_file()
            {
                bail!("model file {m} does not exist");
            }
            let spinner = common::Spinner::after_a_second(&format!("loading {m}"));
            let name = state
                .preload(m)
                .await
                .map_err(|e| anyhow::anyhow!("loading {m}: {e}"))?;
            drop(spinner);
            eprintln!("loaded {m} as '{name}'");
        }
        state.spawn_reaper();
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        eprintln!("hearth is listening on http://{addr}");
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        hearth_server::serve(
            listener,
            hearth_server::router_with_ui(state, !a.no_ui),
            timeouts,
            shutdown,
        )
        .await
        .context("serving")
    })
}

/// The routing gateway for `--config FILE`, or for the default config file
/// when it exists; `None` without either.
fn route_gateway(
    flag: Option<&std::path::Path>,
) -> Result<Option<std::sync::Arc<hearth_route::upstream::Gateway>>> {
    let default = hearth_route::config::default_path();
    let path = match flag {
        Some(p) => p.to_path_buf(),
        None if default.is_file() => default,
        None => return Ok(None),
    };
    let config = hearth_route::config::Config::load(&path)?;
    let audit = hearth_route::audit::default_path();
    let gw = hearth_route::upstream::Gateway::new(config, &audit)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    eprintln!(
        "routing with {} ({} upstreams, {} routes); egress is logged to {}",
        path.display(),
        gw.config.upstreams.len(),
        gw.config.routes.len(),
        audit.display()
    );
    Ok(Some(std::sync::Arc::new(gw)))
}
