//! Knowledge bases filled over HTTP: `POST /api/rag/create {kb, model?}`
//! makes an empty one (or confirms one built with that model; all-minilm
//! when none is named), and `POST /api/rag/upload` (multipart: `kb`,
//! optionally `model` for a new one, then one or
//! more `file` parts) stores each file in the knowledge base's own folder
//! (`rag/KB.files/`) and indexes it. A file is received into a hidden
//! temporary file there, renamed to its name only once whole, and the
//! temporary is removed on any failure; names keep only their last path
//! component. Both routes are management routes, like `/api/rag/add`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hearth_rag::extract::Format;
use hearth_rag::{ingest, Kb, Limits};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::params::JsonBody;
use crate::rag::{blocking, embed_model, kb_dir, rag_error, recorded_model, ServedEmbedder};
use crate::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateReq {
    kb: String,
    /// The embedding model (default: all-minilm).
    model: Option<String>,
}

/// Creates knowledge base `kb` for the embedding model `model` (the
/// default one when not given), or checks that an existing one was built
/// with it.
pub async fn create(
    State(st): State<AppState>,
    JsonBody(r): JsonBody<CreateReq>,
) -> Result<Response, ApiError> {
    let (kb, dim, created) = open_for(&st, &r.kb, r.model).await?;
    Ok(Json(json!({"kb": r.kb, "model": kb, "dim": dim, "created": created})).into_response())
}

/// Opens (creating when missing) knowledge base `name` for `model` (the
/// recorded one when `None`): its model, dimension and whether it is new.
async fn open_for(
    st: &AppState,
    name: &str,
    model: Option<String>,
) -> Result<(String, usize, bool), ApiError> {
    let dir = kb_dir(st)?;
    let path = hearth_rag::kb_file(&dir, name).map_err(rag_error)?;
    let exists = path.is_file();
    let (model, use_) = embed_model(st, &path, model).await?;
    let rt = tokio::runtime::Handle::current();
    blocking(move || {
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::internal(format!("creating {}: {e}", dir.display())))?;
        let emb = ServedEmbedder {
            use_,
            name: model.clone(),
            rt,
        };
        let kb = Kb::create(&path, &emb).map_err(rag_error)?;
        Ok((model, kb.model().1, !exists))
    })
    .await
}

/// The name a file is stored under: the last component of what the client
/// sent (either slash), refused when nothing usable is left or hearth does
/// not read its format.
pub fn stored_name(sent: &str) -> Result<String, ApiError> {
    let last = sent.rsplit(['/', '\\']).next().unwrap_or("").trim();
    let bad = |why: &str| ApiError::bad_request(format!("file name {sent:?}: {why}"));
    if last.is_empty() || last.starts_with('.') {
        return Err(bad("no usable name (empty, or starts with '.')"));
    }
    if last.len() > 200 || last.chars().any(|c| c.is_control()) {
        return Err(bad("longer than 200 bytes or holds control characters"));
    }
    if Format::of(Path::new(last)).is_none() {
        return Err(bad(
            "not a format hearth reads (PDF, DOCX, HTML, Markdown, text, CSV)",
        ));
    }
    Ok(last.to_string())
}

/// A temporary file removed when dropped unless kept.
struct Partial(Option<PathBuf>);

impl Drop for Partial {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

static UPLOADS: AtomicU64 = AtomicU64::new(0);

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::new(e.status(), format!("the upload: {}", e.body_text()))
}

pub async fn upload(State(st): State<AppState>, mut mp: Multipart) -> Result<Response, ApiError> {
    let (mut kb, mut model) = (None::<String>, None::<String>);
    let mut folder = None::<PathBuf>;
    let mut stored: Vec<PathBuf> = Vec::new();
    while let Some(mut field) = mp.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "kb" | "model" => {
                if folder.is_some() {
                    return Err(ApiError::bad_request(format!(
                        "the {name} field must come before the files"
                    )));
                }
                let v = field.text().await.map_err(multipart_error)?;
                if name == "kb" { kb = Some(v) } else { model = Some(v) }
            }
            "file" => {
                let file_name = stored_name(field.file_name().unwrap_or(""))?;
                let dir = match &folder {
                    Some(d) => d.clone(),
                    None => {
                        let Some(k) = &kb else {
                            return Err(ApiError::bad_request(
                                "the kb field must come before the files",
                            ));
                        };
                        open_for(&st, k, model.clone()).await?;
                        let d = hearth_rag::uploads_dir(&hearth_rag::kb_file(&kb_dir(&st)?, k).map_err(rag_error)?);
                        std::fs::create_dir_all(&d).map_err(|e| {
                            ApiError::internal(format!("creating {}: {e}", d.display()))
                        })?;
                        folder = Some(d.clone());
                        d
                    }
                };
                let n = UPLOADS.fetch_add(1, Ordering::Relaxed);
                let tmp = dir.join(format!(".upload-{}-{n}.part", std::process::id()));
                let mut partial = Partial(Some(tmp.clone()));
                let mut out = std::fs::File::create(&tmp)
                    .map_err(|e| ApiError::internal(format!("creating {}: {e}", tmp.display())))?;
                while let Some(bytes) = field.chunk().await.map_err(multipart_error)? {
                    out.write_all(&bytes)
                        .map_err(|e| ApiError::internal(format!("writing the upload: {e}")))?;
                }
                out.sync_all()
                    .map_err(|e| ApiError::internal(format!("writing the upload: {e}")))?;
                let dest = dir.join(&file_name);
                std::fs::rename(&tmp, &dest)
                    .map_err(|e| ApiError::internal(format!("storing {file_name}: {e}")))?;
                partial.0 = None;
                stored.push(dest);
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown multipart field {other:?}: send kb, model (for a new knowledge base) and file"
                )))
            }
        }
    }
    let Some(k) = kb else {
        return Err(ApiError::bad_request("the upload has no kb field"));
    };
    if stored.is_empty() {
        return Err(ApiError::bad_request("the upload has no file field"));
    }
    let path = hearth_rag::kb_file(&kb_dir(&st)?, &k).map_err(rag_error)?;
    let name = recorded_model(path.clone()).await?;
    let use_ = st.models.acquire(&name, None).await?;
    let rt = tokio::runtime::Handle::current();
    let report = blocking(move || {
        let emb = ServedEmbedder { use_, name, rt };
        let mut kb = Kb::create(&path, &emb).map_err(rag_error)?;
        ingest::add(
            &mut kb,
            &emb,
            &stored,
            &Limits::default(),
            &AtomicBool::new(false),
            &mut |_| {},
        )
        .map_err(rag_error)
    })
    .await?;
    Ok((StatusCode::OK, Json(json!(report))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_keep_only_the_last_component() {
        for (sent, want) in [
            ("notes.md", "notes.md"),
            ("../../etc/evil.txt", "evil.txt"),
            ("C:\\Users\\me\\report.pdf", "report.pdf"),
            ("/abs/path/page.html", "page.html"),
        ] {
            assert_eq!(stored_name(sent).ok().as_deref(), Some(want), "{sent}");
        }
        for bad in [
            "",
            "..",
            "../",
            ".hidden.md",
            "a/.md",
            "x.exe",
            "bad\u{1}.txt",
            "dir/",
        ] {
            assert!(stored_name(bad).is_err(), "{bad:?}");
        }
    }
}
