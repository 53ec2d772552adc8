//! GStreamer start-up, once per process.

use std::sync::OnceLock;

use crate::error::Error;

/// Initialises GStreamer and registers the fMP4 muxers. Idempotent and thread-safe.
pub fn init() -> Result<(), Error> {
    static INIT: OnceLock<Result<(), Error>> = OnceLock::new();
    INIT.get_or_init(|| {
        gst::init().map_err(|e| Error::Init(e.to_string()))?;
        gstfmp4::plugin_register_static().map_err(|e| Error::Init(e.to_string()))?;
        Ok(())
    })
    .clone()
}
