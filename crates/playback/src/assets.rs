//! The player's hls.js, read once at start from where npm put it.

/// The player page's files. Pages, script and style are compiled in; hls.js is read once at
/// start from `http.assets_dir`, where npm put it.
#[derive(Debug, Default)]
pub struct Assets {
    hls_js: Option<bytes::Bytes>,
}

impl Assets {
    /// hls.js, when it was found.
    pub(crate) fn hls_js(&self) -> Option<&bytes::Bytes> {
        self.hls_js.as_ref()
    }

    /// Loads hls.js from `dir`; without it the page falls back to native HLS.
    pub fn load(dir: &str) -> Assets {
        let path = std::path::Path::new(dir).join("hls.min.js");
        match std::fs::read(&path) {
            Ok(b) => Assets {
                hls_js: Some(b.into()),
            },
            Err(e) => {
                tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "hls.js not found: the player page can only use native HLS; run `npm ci --prefix player` or set http.assets_dir"
                );
                Assets::default()
            }
        }
    }
}
