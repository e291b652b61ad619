//! Compresses every file under `web/` with gzip into OUT_DIR and writes the
//! table `src/lib.rs` includes (path, content type, compressed bytes, ETag).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

/// FNV-1a, 64 bits: enough to tell one build's page from another's.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn main() {
    let web = Path::new("web");
    println!("cargo:rerun-if-changed=web");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let mut names: Vec<String> = std::fs::read_dir(web)
        .expect("web/ holds the page")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut table = String::from("&[\n");
    for name in &names {
        let raw = std::fs::read(web.join(name)).expect("reading a page file");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&raw).expect("gzip in memory");
        let gz = gz.finish().expect("gzip in memory");
        let gz_path = Path::new(&out).join(format!("{name}.gz"));
        std::fs::write(&gz_path, &gz).expect("writing OUT_DIR");
        let _ = writeln!(
            table,
            "    Asset {{ path: {name:?}, content_type: {:?}, gzip: include_bytes!({:?}), etag: \"\\\"{:016x}\\\"\", raw_len: {} }},",
            content_type(name),
            gz_path.display().to_string(),
            fnv(&raw),
            raw.len()
        );
    }
    table.push(']');
    std::fs::write(Path::new(&out).join("assets.rs"), table).expect("writing OUT_DIR");
}
