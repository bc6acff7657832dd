//! Bounded reading of a provider's answer: a body is read chunk by chunk and refused as
//! soon as it would pass its limit (a declared `Content-Length` above it is refused before
//! reading), so a hostile or broken peer can't make us buffer without end.

/// Why a body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("answer larger than {0} bytes")]
    TooLarge(usize),
    /// The connection failed while reading. Its URL is cleared (media URLs carry signed
    /// tokens).
    #[error("reading the answer: {0}")]
    Read(reqwest::Error),
}

/// Reads `resp`'s body, at most `limit` bytes.
pub async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| BodyError::Read(e.without_url()))? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
