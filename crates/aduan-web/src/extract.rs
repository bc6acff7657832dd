//! Request bodies: read with a size limit, parsed as JSON, validated field by field so a
//! 422 can name the field at fault.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde_json::{Map, Value};

use crate::AppState;
use crate::error::ApiError;

/// A JSON object body. Non-JSON content types get 415, an unreadable body 400, an
/// oversize one 413.
pub struct JsonObject(pub Map<String, Value>);

impl FromRequest<AppState> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim();
                v.eq_ignore_ascii_case("application/json")
                    || v.to_ascii_lowercase().ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        let limit = state.config.max_json_bytes;
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large(limit)
            } else {
                ApiError::malformed("the body could not be read")
            }
        })?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(JsonObject(map)),
            Ok(_) => Err(ApiError::malformed("the body must be a JSON object")),
            Err(e) => Err(ApiError::malformed(format!("invalid JSON: {e}"))),
        }
    }
}

/// Typed access to the fields of a JSON object, with errors naming `prefix.field`.
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    prefix: String,
}

impl<'a> Fields<'a> {
    pub fn new(obj: &'a Map<String, Value>) -> Fields<'a> {
        Fields { obj, prefix: String::new() }
    }

    pub fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn present(&self, name: &str) -> Option<&'a Value> {
        self.obj.get(name).filter(|v| !v.is_null())
    }

    /// A string field that may be absent or null; blank counts as absent.
    pub fn opt_str(&self, name: &str, max_chars: usize) -> Result<Option<&'a str>, ApiError> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::String(s)) => {
                let t = s.trim();
                if t.chars().count() > max_chars {
                    Err(ApiError::field(self.path(name), format!("at most {max_chars} characters")))
                } else if t.is_empty() {
                    Ok(None)
                } else {
                    Ok(Some(t))
                }
            }
            Some(_) => Err(ApiError::field(self.path(name), "must be a string")),
        }
    }

    pub fn req_str(&self, name: &str, max_chars: usize) -> Result<&'a str, ApiError> {
        self.opt_str(name, max_chars)?.ok_or_else(|| {
            ApiError::field(self.path(name), "is required and must be a non-empty string")
        })
    }

    pub fn opt_f64(&self, name: &str) -> Result<Option<f64>, ApiError> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .map(Some)
                .ok_or_else(|| ApiError::field(self.path(name), "must be a number")),
            Some(_) => Err(ApiError::field(self.path(name), "must be a number")),
        }
    }

    pub fn opt_object(&self, name: &str) -> Result<Option<Fields<'a>>, ApiError> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Object(obj)) => {
                Ok(Some(Fields { obj, prefix: format!("{}{name}.", self.prefix) }))
            }
            Some(_) => Err(ApiError::field(self.path(name), "must be an object")),
        }
    }

    /// An array of objects, each with its index in the path (`attachments[2].filename`).
    pub fn opt_objects(&self, name: &str, max_items: usize) -> Result<Vec<Fields<'a>>, ApiError> {
        match self.present(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => {
                if items.len() > max_items {
                    return Err(ApiError::field(
                        self.path(name),
                        format!("at most {max_items} items"),
                    ));
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Value::Object(obj) => {
                            Ok(Fields { obj, prefix: format!("{}{name}[{i}].", self.prefix) })
                        }
                        _ => Err(ApiError::field(
                            format!("{}{name}[{i}]", self.prefix),
                            "must be an object",
                        )),
                    })
                    .collect()
            }
            Some(_) => Err(ApiError::field(self.path(name), "must be an array")),
        }
    }
}
