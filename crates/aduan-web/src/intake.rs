//! `POST /api/v1/messages`: the channel of apps and web forms.

use aduan_core::{
    AttachmentRef, Channel, Identity, IdentityKind, InboundMessage, Location, Sender, ThreadHints,
    TicketCode,
};
use aduan_store::Scope;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{Fields, JsonObject};

pub(crate) const MAX_TEXT_CHARS: usize = 20_000;
const MAX_ATTACHMENTS: usize = 10;

/// An attachment decoded from the request, not yet written.
struct Upload {
    filename: Option<String>,
    content_type: String,
    data: Vec<u8>,
}

/// Checks the request and builds the message, naming the first field at fault.
fn parse(caller: &Caller, body: &JsonObject) -> Result<(InboundMessage, Vec<Upload>), ApiError> {
    let f = Fields::new(&body.0);
    let external_id = f.req_str("external_id", 200)?;
    let text = f.req_str("text", MAX_TEXT_CHARS)?;
    // App ids and idempotency keys are the caller's: two apps may both have a "u-77".
    let client = &caller.key.name;

    let mut sender = Sender::default();
    if let Some(s) = f.opt_object("sender")? {
        sender.display_name = s.opt_str("name", 200)?.map(str::to_owned);
        let app_id = s
            .opt_str("id", 200)?
            .map(|id| Identity::new(IdentityKind::AppUser, &format!("{client}:{id}")))
            .transpose()
            .map_err(|e| ApiError::field(s.path("id"), e.to_string()))?;
        let phone = s
            .opt_str("phone", 40)?
            .map(Identity::phone)
            .transpose()
            .map_err(|e| ApiError::field(s.path("phone"), e.to_string()))?;
        let email = s
            .opt_str("email", 320)?
            .map(Identity::email)
            .transpose()
            .map_err(|e| ApiError::field(s.path("email"), e.to_string()))?;
        // The account id identifies the sender; without one, their email or phone does.
        let mut all: Vec<Identity> = [app_id, email, phone].into_iter().flatten().collect();
        if !all.is_empty() {
            sender.identity = Some(all.remove(0));
            sender.contacts = all;
        }
    }

    let location = match f.opt_object("location")? {
        Some(l) => {
            let lat =
                l.opt_f64("lat")?.ok_or_else(|| ApiError::field(l.path("lat"), "is required"))?;
            let lon =
                l.opt_f64("lon")?.ok_or_else(|| ApiError::field(l.path("lon"), "is required"))?;
            Some(Location::new(lat, lon).map_err(|e| {
                let which = if matches!(e, aduan_core::LocationError::Lat) { "lat" } else { "lon" };
                ApiError::field(l.path(which), e.to_string())
            })?)
        }
        None => None,
    };

    let ticket = f
        .opt_str("ticket", 20)?
        .map(|t| t.parse::<TicketCode>())
        .transpose()
        .map_err(|e| ApiError::field("ticket", e.to_string()))?;

    let mut uploads = Vec::new();
    for a in f.opt_objects("attachments", MAX_ATTACHMENTS)? {
        let content_type = a.req_str("content_type", 100)?;
        let valid_type = content_type.split_once('/').is_some_and(|(t, s)| {
            !t.is_empty() && !s.is_empty() && content_type.is_ascii() && !content_type.contains(' ')
        });
        if !valid_type {
            return Err(ApiError::field(
                a.path("content_type"),
                "must be a media type like image/jpeg",
            ));
        }
        let data = a.req_str("data_base64", usize::MAX)?;
        let data = base64::engine::general_purpose::STANDARD
            .decode(data.as_bytes())
            .map_err(|_| ApiError::field(a.path("data_base64"), "is not valid base64"))?;
        if data.is_empty() {
            return Err(ApiError::field(a.path("data_base64"), "is empty"));
        }
        let filename = a.opt_str("filename", 255)?.map(sanitize_filename);
        uploads.push(Upload { filename, content_type: content_type.to_ascii_lowercase(), data });
    }

    let msg = InboundMessage {
        channel: Channel::Web,
        provider_id: format!("{client}:{external_id}"),
        sender,
        text: text.to_owned(),
        attachments: Vec::new(),
        location,
        received_at: aduan_store::now(),
        thread: ThreadHints { ticket, ..ThreadHints::default() },
    };
    Ok((msg, uploads))
}

/// Keeps the last path component and drops control characters.
fn sanitize_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.chars().filter(|c| !c.is_control()).collect::<String>().trim().to_owned()
}

/// The image types the public form takes, by their first bytes. Anything else (SVG, which
/// can carry script; HTML or an executable named `.jpg`) is not an image to us.
pub(crate) fn image_kind(data: &[u8]) -> Option<&'static str> {
    let starts = |m: &[u8]| data.starts_with(m);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some("image/gif")
    } else if data.len() >= 12 && &data[0..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        Some("image/webp")
    } else if data.len() >= 12
        && &data[4..8] == b"ftyp"
        && matches!(&data[8..12], b"heic" | b"heix" | b"mif1" | b"msf1" | b"heim" | b"heis")
    {
        Some("image/heic")
    } else {
        None
    }
}

/// Checks that a photo is the image it says it is: 415 for a type we don't take, 422 when
/// the bytes are not that type.
pub(crate) fn check_image(field: &str, declared: &str, data: &[u8]) -> Result<(), ApiError> {
    let declared = declared.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let declared = match declared.as_str() {
        "image/jpg" | "image/pjpeg" => "image/jpeg",
        "image/heif" => "image/heic",
        other => other,
    };
    if !matches!(declared, "image/jpeg" | "image/png" | "image/gif" | "image/webp" | "image/heic") {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
            message: format!("{field}: Foto harus JPEG, PNG, GIF, WebP atau HEIC."),
            field: Some(field.to_owned()),
        });
    }
    if image_kind(data) != Some(declared) {
        return Err(ApiError::field(field, "Berkas ini bukan gambar yang sah."));
    }
    Ok(())
}

/// The answer to an attachment that could not be written: 507 when the disk (or quota) is
/// full, 503 otherwise (read-only file system, permissions, I/O errors). Logged with the
/// error kind only.
pub(crate) fn storage_error(error: &std::io::Error) -> ApiError {
    tracing::error!(%error, kind = ?error.kind(), "Could not write an attachment; the message is not accepted.");
    match error.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "storage_full",
            "the attachment store is full; the message was not accepted, send it again later",
        ),
        _ => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "attachments can't be stored right now; the message was not accepted, send it \
             again later",
        ),
    }
}

pub(crate) async fn post_message(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonObject,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Scope::Intake)?;
    let (mut msg, uploads) = parse(&caller, &body)?;
    drop(body);
    let mut over_budget = None;
    if !uploads.is_empty() {
        // The sender's hourly attachment budget, as on every channel: what doesn't fit is
        // never written; the message is stored and its ticket says what was refused.
        let mut left = match &msg.sender.identity {
            Some(sender) => state.store.attachment_bytes_left(sender).await?,
            None => None,
        };
        let mut keep = Vec::with_capacity(uploads.len());
        let mut refused = 0u64;
        for u in uploads {
            let size = u.data.len() as u64;
            match left.as_mut() {
                Some(l) if size > *l => {
                    refused += size;
                    keep.push((u, false));
                }
                Some(l) => {
                    *l -= size;
                    keep.push((u, true));
                }
                None => keep.push((u, true)),
            }
        }
        if refused > 0 {
            let left = left.unwrap_or(0);
            over_budget = Some(aduan_connector::media::over_budget(refused, left));
        }
        let blobs = state.blobs.clone();
        let refs = tokio::task::spawn_blocking(move || {
            keep.into_iter()
                .map(|(u, write)| {
                    let sha256 = if write { blobs.put_blocking(&u.data)? } else { String::new() };
                    Ok(AttachmentRef {
                        filename: u.filename,
                        content_type: u.content_type,
                        size: u.data.len() as u64,
                        sha256,
                        provider_ref: None,
                    })
                })
                .collect::<std::io::Result<Vec<_>>>()
        })
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|error| storage_error(&error))?;
        msg.attachments = refs;
    }
    let outcome = state.store.ingest(msg).await?;
    if let Some(reason) = over_budget
        && !outcome.duplicate
    {
        state.store.message_attachments_refused(outcome.message_id, reason).await?;
    }
    state.telemetry.message_stored(Channel::Web, &outcome);
    let status = if outcome.duplicate { StatusCode::OK } else { StatusCode::CREATED };
    Ok((
        status,
        Json(json!({
            "ticket": outcome.ticket,
            "message_id": outcome.message_id.to_string(),
            "duplicate": outcome.duplicate,
        })),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_lose_their_paths() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("C:\\foto\\jalan.jpg"), "jalan.jpg");
        assert_eq!(sanitize_filename("a\u{0}b.jpg"), "ab.jpg");
    }

    #[test]
    fn images_are_known_by_their_bytes() {
        assert_eq!(image_kind(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some("image/jpeg"));
        assert_eq!(image_kind(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(image_kind(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(image_kind(b"<svg onload=alert(1)>"), None);
        assert!(check_image("photo", "image/jpeg", &[0xFF, 0xD8, 0xFF, 0xDB]).is_ok());
        let e = check_image("photo", "image/png", &[0xFF, 0xD8, 0xFF, 0xDB]).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        let e = check_image("photo", "image/svg+xml", b"<svg/>").unwrap_err();
        assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[test]
    fn a_write_refused_at_the_floor_is_507() {
        let dir = tempfile::tempdir().unwrap();
        let all = aduan_connector::StorageFloor { min_free_bytes: u64::MAX / 4, max_percent: 100 };
        let blobs = aduan_connector::BlobStore::new(dir.path(), all);
        let e = blobs.put_blocking(b"foto").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::StorageFull);
        assert_eq!(storage_error(&e).status, StatusCode::INSUFFICIENT_STORAGE);
        let e = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(storage_error(&e).status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
