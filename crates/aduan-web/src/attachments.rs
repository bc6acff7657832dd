//! Attachments served (issue 19.1): `GET /attachments/{id}` and its thumbnail
//! `GET /attachments/{id}/thumb`.
//!
//! **Who.** A signed-in user or a `read`-scope API key that may see the attachment's ticket,
//! by the very check the ticket view makes ([`tickets::visible`]: officials only their OPD's
//! tickets). The id is the attachment row's; it is guessable, so it is worth nothing without
//! that permission: an unknown id and an attachment whose content is not stored are 404, a
//! ticket not the caller's is 403, no session or key is 401.
//!
//! **How.** Only a content type on [`INLINE_TYPES`] (parameters dropped) is served as itself,
//! `Content-Disposition: inline`; anything else (SVG, HTML, XML, text, unknown) goes as
//! `application/octet-stream` with `Content-Disposition: attachment`, so nothing a resident
//! uploads can run as a page of this origin. Every answer carries `X-Content-Type-Options:
//! nosniff`, [`ATTACHMENT_CSP`] (`default-src 'none'; sandbox`: even a PDF opened in its own
//! tab runs no script and reaches nothing) and `Cache-Control: private` (content is
//! addressed by hash and never changes, but it is personal: no shared cache keeps it). The
//! file name is reduced to ASCII letters, digits, `.`, `-` and `_` ([`safe_filename`]).
//!
//! **Thumbnails.** For JPEG, PNG, WebP and GIF: at most [`THUMB_EDGE`] px on the long side,
//! JPEG, made on first request and kept under `<[storage] dir>/thumbs/<ab>/<hash>.jpg`
//! (keyed by the content hash, so one per distinct photo whatever the tickets). They are made
//! on the blocking pool, at most [`THUMB_WORKERS`] at a time (a semaphore; a request that
//! waited looks for the file again before making it). Decoding is bounded: the header's
//! dimensions must be at most [`MAX_SOURCE_EDGE`] on each side, and the decoder runs with
//! `image::Limits` ([`MAX_DECODE_BYTES`]), so a decompression bomb is refused, not
//! allocated. A picture that cannot be decoded gets 404 (the page shows the plain link).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;
use crate::session::Principal;
use crate::tickets;

/// Content types served as themselves (inline); everything else is a download.
pub const INLINE_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "application/pdf",
    "audio/ogg",
    "audio/mpeg",
    "audio/mp4",
    "audio/aac",
    "audio/amr",
    "audio/wav",
    "video/mp4",
    "video/3gpp",
    "video/webm",
];

/// The policy of an attachment answer: nothing loads, nothing runs.
pub const ATTACHMENT_CSP: &str = "default-src 'none'; sandbox";

/// The long side of a thumbnail, in pixels.
pub const THUMB_EDGE: u32 = 320;
/// The largest width or height of a picture a thumbnail is made of.
pub const MAX_SOURCE_EDGE: u32 = 12_000;
/// The most memory the decoder may allocate for one picture.
pub const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;
/// Thumbnails made at once.
pub const THUMB_WORKERS: usize = 2;

static THUMB_PERMITS: LazyLock<tokio::sync::Semaphore> =
    LazyLock::new(|| tokio::sync::Semaphore::new(THUMB_WORKERS));

/// The URL of attachment `id`.
pub fn url(id: i64) -> String {
    format!("/attachments/{id}")
}

/// The stored type without parameters, lower case, when it is on [`INLINE_TYPES`].
pub fn inline_type(content_type: &str) -> Option<&'static str> {
    let bare = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    INLINE_TYPES.iter().copied().find(|t| *t == bare)
}

/// Whether a thumbnail can be made of this type.
pub fn is_thumbnailable(content_type: &str) -> bool {
    matches!(
        inline_type(content_type),
        Some("image/jpeg" | "image/png" | "image/webp" | "image/gif")
    )
}

/// A file name safe in a header: ASCII letters, digits, `.`, `-`, `_` (others become `_`),
/// no leading dot, at most 100 characters; `lampiran` when nothing is left.
pub fn safe_filename(name: Option<&str>) -> String {
    let cleaned: String = name
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .take(100)
        .collect();
    let cleaned = cleaned.trim_start_matches('.');
    if cleaned.chars().all(|c| c == '_') { "lampiran".to_owned() } else { cleaned.to_owned() }
}

/// The headers every attachment answer has.
fn protect(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(ATTACHMENT_CSP));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
}

fn not_stored() -> ApiError {
    ApiError::not_found("no such attachment, or its content is not stored")
}

/// The attachment `raw` names, when `p` may see its ticket.
async fn allowed(
    state: &AppState,
    p: &Principal,
    raw: &str,
) -> Result<aduan_store::StoredAttachment, ApiError> {
    p.require_read()?;
    let id: i64 = raw.parse().map_err(|_| not_stored())?;
    let a = state.store.attachment_by_id(id).await?.ok_or_else(not_stored)?;
    tickets::visible(state, p, a.ticket).await?;
    if a.sha256.is_empty() {
        return Err(not_stored());
    }
    Ok(a)
}

/// `GET /attachments/{id}`. Byte ranges are answered (`Range` → 206 with
/// `Content-Range`, a range past the end → 416, `If-Range`), so a phone's video player can
/// seek and Safari plays a video at all; the file is served by `tower_http`'s `ServeFile`
/// and only the caller's range headers reach it.
pub(crate) async fn get(
    State(state): State<AppState>,
    p: Result<Principal, ApiError>,
    UrlPath(raw): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let result: Result<Response, ApiError> = async {
        let a = allowed(&state, &p?, &raw).await?;
        let path = state.blobs.path(&a.sha256).ok_or_else(not_stored)?;
        if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
            tracing::warn!(attachment = a.id, "Attachment content missing from the store.");
            return Err(not_stored());
        }
        let mut req = axum::http::Request::new(Body::empty());
        for name in [header::RANGE, header::IF_RANGE] {
            if let Some(v) = headers.get(&name) {
                req.headers_mut().insert(name, v.clone());
            }
        }
        let served = tower_http::services::ServeFile::new(&path)
            .try_call(req)
            .await
            .map_err(|_| not_stored())?;
        let (mut parts, body) = served.into_parts();
        let name = safe_filename(a.filename.as_deref());
        let (ctype, disposition) = match inline_type(&a.content_type) {
            Some(t) => (t, format!("inline; filename=\"{name}\"")),
            None => ("application/octet-stream", format!("attachment; filename=\"{name}\"")),
        };
        let h = &mut parts.headers;
        // Content is addressed by its hash: `Last-Modified` of the blob file says nothing.
        h.remove(header::LAST_MODIFIED);
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
        if let Ok(v) = HeaderValue::from_str(&disposition) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        Ok(Response::from_parts(parts, Body::new(body)))
    }
    .await;
    let mut resp = result.unwrap_or_else(IntoResponse::into_response);
    protect(&mut resp);
    resp
}

/// `GET /attachments/{id}/thumb`: a JPEG of at most [`THUMB_EDGE`] px.
pub(crate) async fn thumb(
    State(state): State<AppState>,
    p: Result<Principal, ApiError>,
    UrlPath(raw): UrlPath<String>,
) -> Response {
    let result: Result<Response, ApiError> = async {
        let a = allowed(&state, &p?, &raw).await?;
        if !is_thumbnailable(&a.content_type) {
            return Err(ApiError::not_found("this attachment has no thumbnail"));
        }
        let source = state.blobs.path(&a.sha256).ok_or_else(not_stored)?;
        let target = thumb_path(state.blobs.dir(), &a.sha256);
        let bytes = match tokio::fs::read(&target).await {
            Ok(b) => b,
            Err(_) => {
                let _permit = THUMB_PERMITS.acquire().await.map_err(|_| not_stored())?;
                let id = a.id;
                tokio::task::spawn_blocking(move || ensure_thumb(&source, &target))
                    .await
                    .map_err(|_| ApiError::internal())?
                    .map_err(|error| {
                        tracing::info!(attachment = id, %error, "No thumbnail for this attachment.");
                        ApiError::not_found("no thumbnail can be made of this attachment")
                    })?
            }
        };
        let mut resp = Response::new(Body::from(bytes));
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
        h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("inline; filename=\"thumb.jpg\""));
        Ok(resp)
    }
    .await;
    let mut resp = result.unwrap_or_else(IntoResponse::into_response);
    protect(&mut resp);
    resp
}

/// Where the thumbnail of blob `sha256` (already checked as hex by `BlobStore::path`) is
/// kept.
pub fn thumb_path(dir: &Path, sha256: &str) -> PathBuf {
    dir.join("thumbs").join(&sha256[0..2]).join(format!("{sha256}.jpg"))
}

/// Errors making a thumbnail.
#[derive(Debug, thiserror::Error)]
pub enum ThumbError {
    #[error("reading or writing: {0}")]
    Io(#[from] std::io::Error),
    #[error("decoding: {0}")]
    Image(#[from] image::ImageError),
    #[error("the picture is {0}×{1} px, larger than allowed")]
    TooLarge(u32, u32),
}

/// The thumbnail at `target`, made from `source` unless it is there already (a concurrent
/// request may have made it while this one waited for a permit).
pub fn ensure_thumb(source: &Path, target: &Path) -> Result<Vec<u8>, ThumbError> {
    if let Ok(bytes) = std::fs::read(target) {
        return Ok(bytes);
    }
    let data = std::fs::read(source)?;
    let bytes = make_thumb(&data)?;
    let folder = target.parent().ok_or_else(|| std::io::Error::other("no folder"))?;
    std::fs::create_dir_all(folder)?;
    let tmp = folder.join(format!(".thumb.{}.tmp", rand::random::<u32>()));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(&bytes))
        .and_then(|()| std::fs::rename(&tmp, target));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(error.into());
    }
    Ok(bytes)
}

/// A JPEG thumbnail of the picture `data` (JPEG, PNG, WebP or GIF), decoded within limits.
pub fn make_thumb(data: &[u8]) -> Result<Vec<u8>, ThumbError> {
    use image::ImageReader;
    let reader = ImageReader::new(std::io::Cursor::new(data)).with_guessed_format()?;
    let (w, h) = reader.into_dimensions()?;
    if w == 0 || h == 0 || w > MAX_SOURCE_EDGE || h > MAX_SOURCE_EDGE {
        return Err(ThumbError::TooLarge(w, h));
    }
    let mut reader = ImageReader::new(std::io::Cursor::new(data)).with_guessed_format()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SOURCE_EDGE);
    limits.max_image_height = Some(MAX_SOURCE_EDGE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let picture = reader.decode()?;
    // Never enlarged: a small picture is its own thumbnail (as a JPEG).
    let small = if w <= THUMB_EDGE && h <= THUMB_EDGE {
        picture.into_rgb8()
    } else {
        picture.thumbnail(THUMB_EDGE, THUMB_EDGE).into_rgb8()
    };
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80);
    small.write_with_encoder(encoder)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_types_are_inline() {
        assert_eq!(inline_type("image/JPEG"), Some("image/jpeg"));
        assert_eq!(inline_type("audio/ogg; codecs=opus"), Some("audio/ogg"));
        assert_eq!(inline_type("image/svg+xml"), None);
        assert_eq!(inline_type("text/html"), None);
        assert_eq!(inline_type("text/plain"), None);
        assert!(is_thumbnailable("image/png"));
        assert!(!is_thumbnailable("application/pdf"));
    }

    #[test]
    fn file_names_are_safe_in_a_header() {
        assert_eq!(safe_filename(Some("foto jalan.jpg")), "foto_jalan.jpg");
        assert_eq!(safe_filename(Some("a\"; x=\r\n.svg")), "a___x___.svg");
        assert_eq!(safe_filename(Some("../../etc/passwd")), "passwd");
        assert_eq!(safe_filename(Some("..")), "lampiran");
        assert_eq!(safe_filename(None), "lampiran");
        assert_eq!(safe_filename(Some("jalan-rusak_№1.png")), "jalan-rusak__1.png");
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 30, 30]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn thumbnails_are_small_jpegs() {
        let t = make_thumb(&png(1000, 500)).unwrap();
        assert_eq!(&t[..3], &[0xFF, 0xD8, 0xFF]);
        let small = image::load_from_memory(&t).unwrap();
        assert_eq!((small.width(), small.height()), (THUMB_EDGE, THUMB_EDGE / 2));
    }

    #[test]
    fn a_decompression_bomb_is_refused_before_decoding() {
        // A PNG header claiming more pixels than it carries: refused from the header alone.
        let header_says = |w: u32, h: u32| {
            let mut bomb = png(1, 1);
            bomb[16..20].copy_from_slice(&w.to_be_bytes());
            bomb[20..24].copy_from_slice(&h.to_be_bytes());
            // The IHDR chunk's CRC over its type and data (bytes 12..29), at 29..33.
            let crc = crc32(&bomb[12..29]);
            bomb[29..33].copy_from_slice(&crc.to_be_bytes());
            bomb
        };
        let wide = header_says(MAX_SOURCE_EDGE + 1, 10);
        assert!(
            matches!(make_thumb(&wide), Err(ThumbError::TooLarge(w, 10)) if w == MAX_SOURCE_EDGE + 1)
        );
        // 60000×60000 px (10.8 GB of RGB).
        assert!(make_thumb(&header_says(60_000, 60_000)).is_err());
        // Not a picture at all.
        assert!(make_thumb(b"<svg xmlns='http://www.w3.org/2000/svg'/>").is_err());
    }

    #[test]
    fn a_thumbnail_is_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("src");
        std::fs::write(&source, png(40, 40)).unwrap();
        let target = thumb_path(dir.path(), &"ab".repeat(32));
        let first = ensure_thumb(&source, &target).unwrap();
        std::fs::write(&source, b"gone").unwrap();
        assert_eq!(ensure_thumb(&source, &target).unwrap(), first);
    }
}
