//! Where elements come from, and whether they really open: the running GStreamer, with a
//! one-frame test pipeline per hardware factory, or a test's fake.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use gst::prelude::*;

use crate::init::init;

/// How long one "can this element open a session" probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where elements come from: the running GStreamer ([`GstRegistry`]) or a test's fake
/// ([`FakeRegistry`]).
pub trait ElementRegistry: Send + Sync {
    /// The factory is registered.
    fn has(&self, factory: &str) -> bool;
    /// An element of the factory can actually process a frame (opens a session, finds a device).
    fn can_open(&self, factory: &str) -> bool;
}

/// The running GStreamer. `can_open` runs a one-frame test pipeline through the element, under
/// a timeout, once per factory.
#[derive(Debug, Default)]
pub struct GstRegistry {
    opened: Mutex<HashMap<String, bool>>,
}

impl GstRegistry {
    /// A registry over the process's GStreamer (initialising it if needed).
    pub fn new() -> GstRegistry {
        let _ = init();
        GstRegistry::default()
    }
}

impl ElementRegistry for GstRegistry {
    fn has(&self, factory: &str) -> bool {
        init().is_ok() && gst::ElementFactory::find(factory).is_some()
    }

    fn can_open(&self, factory: &str) -> bool {
        if !self.has(factory) {
            return false;
        }
        if let Some(&v) = self
            .opened
            .lock()
            .ok()
            .and_then(|m| m.get(factory).copied())
            .as_ref()
        {
            return v;
        }
        let result = match probe_launch_line(factory, |f| self.has(f)) {
            Some(line) => match run_probe(&line) {
                Ok(()) => true,
                Err(e) => {
                    tracing::info!(factory, "probe failed: {e}");
                    false
                }
            },
            // Nothing to probe with (a filter we do not know): registered is all we can say.
            None => true,
        };
        if let Ok(mut m) = self.opened.lock() {
            m.insert(factory.to_owned(), result);
        }
        result
    }
}

/// The one-frame pipeline that shows whether `factory` works, or `None` to trust registration.
fn probe_launch_line(factory: &str, has: impl Fn(&str) -> bool) -> Option<String> {
    const RAW: &str =
        "videotestsrc num-buffers=2 ! video/x-raw,width=320,height=240,framerate=30/1";
    let cuda = ["cudaupload", "cudascale", "cudaconvert", "cudadownload"];
    if cuda.contains(&factory) {
        return Some(format!(
            "{RAW} ! cudaupload ! cudascale ! cudaconvert ! \
             video/x-raw(memory:CUDAMemory),width=160,height=120,format=NV12 ! cudadownload ! fakesink"
        ));
    }
    if factory.ends_with("dec") {
        // A decoder needs H.264 to chew on; without an encoder here, registration must do.
        if !has("x264enc") {
            return None;
        }
        return Some(format!(
            "{RAW},format=I420 ! x264enc speed-preset=ultrafast tune=zerolatency ! h264parse ! {factory} ! fakesink"
        ));
    }
    if factory.ends_with("enc") {
        return Some(format!("{RAW},format=NV12 ! {factory} ! fakesink"));
    }
    None
}

fn run_probe(line: &str) -> Result<(), String> {
    let pipeline = gst::parse::launch(line).map_err(|e| e.to_string())?;
    let bus = pipeline.bus().ok_or("no bus")?;
    if let Err(e) = pipeline.set_state(gst::State::Playing) {
        let _ = pipeline.set_state(gst::State::Null);
        return Err(e.to_string());
    }
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(PROBE_TIMEOUT.as_nanos() as u64),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = pipeline.set_state(gst::State::Null);
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(()),
        Some(gst::MessageView::Error(e)) => Err(e.error().to_string()),
        _ => Err(format!("no frame within {PROBE_TIMEOUT:?}")),
    }
}

/// A registry that says what a test tells it to.
#[derive(Debug, Clone, Default)]
pub struct FakeRegistry {
    present: HashSet<String>,
    broken: HashSet<String>,
}

impl FakeRegistry {
    /// Nothing registered.
    pub fn empty() -> FakeRegistry {
        FakeRegistry::default()
    }

    /// The software elements every Ferrocast machine has.
    pub fn software() -> FakeRegistry {
        FakeRegistry::empty().with(&["avdec_h264", "videoscale", "videoconvert", "x264enc"])
    }

    /// Adds registered, working factories.
    pub fn with(mut self, factories: &[&str]) -> FakeRegistry {
        self.present
            .extend(factories.iter().map(|f| (*f).to_owned()));
        self
    }

    /// Adds factories that are registered but fail to open.
    pub fn with_broken(mut self, factories: &[&str]) -> FakeRegistry {
        for f in factories {
            self.present.insert((*f).to_owned());
            self.broken.insert((*f).to_owned());
        }
        self
    }
}

impl ElementRegistry for FakeRegistry {
    fn has(&self, factory: &str) -> bool {
        self.present.contains(factory)
    }

    fn can_open(&self, factory: &str) -> bool {
        self.present.contains(factory) && !self.broken.contains(factory)
    }
}
