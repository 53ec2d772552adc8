//! The demo publisher behind `ferrocast serve --demo`: a live test pattern with a running clock and
//! a once-a-second tick, encoded to H.264 + AAC and published over RTMP to Ferrocast's own ingest,
//! so it takes exactly the path an OBS stream takes.
//!
//! It reconnects after a failure (the server restarting its listener, a takeover) with a short
//! back-off, and stops when dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use gst::prelude::*;

use crate::elements::launch;
use crate::error::Error;
use crate::init::init;

/// A running demo publisher. Dropping it stops the publish.
#[derive(Debug)]
pub struct DemoSource {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Picture and sound of the demo.
#[derive(Debug, Clone)]
pub struct DemoSettings {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Video bitrate in kb/s.
    pub video_kbps: u32,
}

impl Default for DemoSettings {
    fn default() -> Self {
        DemoSettings {
            width: 1280,
            height: 720,
            fps: 30,
            video_kbps: 2500,
        }
    }
}

/// The pipeline description. The clock overlay needs the pango plugin; without it the ball
/// pattern still moves, so the demo works on a minimal install.
///
/// The sources are not live: `rtmp2sink` syncs to the clock, which paces them in real time, and
/// flvmux then interleaves strictly by timestamp. With live sources flvmux sent audio up to
/// ~350 ms ahead of video ("Got backwards dts"), and that skew made isofmp4mux in chunked (LL-HLS)
/// mode fail on our side with "Require timestamped buffers" (see the pipeline's known issues).
fn description(url: &str, s: &DemoSettings, with_clock: bool) -> String {
    let overlay = if with_clock {
        "clockoverlay halignment=center valignment=center font-desc=\"Sans Bold 64\" \
         time-format=\"%H:%M:%S\" shaded-background=true ! timeoverlay halignment=center \
         valignment=bottom font-desc=\"Sans 28\" ! "
    } else {
        ""
    };
    let pattern = if with_clock { "smpte" } else { "ball" };
    format!(
        "videotestsrc is-live=false pattern={pattern} ! \
         video/x-raw,width={w},height={h},framerate={fps}/1 ! {overlay}videoconvert ! \
         video/x-raw,format=I420 ! \
         x264enc tune=zerolatency speed-preset=ultrafast bitrate={kbps} key-int-max={gop} ! \
         video/x-h264,profile=main ! h264parse ! flvmux name=mux streamable=true ! \
         rtmp2sink location=\"{url}\" async-connect=false \
         audiotestsrc is-live=false wave=ticks freq=880 volume=0.4 ! audioconvert ! audioresample ! \
         audio/x-raw,rate=48000,channels=2 ! {aac} ! aacparse ! mux.",
        w = s.width,
        h = s.height,
        fps = s.fps,
        kbps = s.video_kbps,
        gop = s.fps,
        aac = aac_encoder(),
    )
}

fn aac_encoder() -> &'static str {
    if gst::ElementFactory::find("avenc_aac").is_some() {
        "avenc_aac bitrate=128000"
    } else {
        "voaacenc bitrate=128000"
    }
}

impl DemoSource {
    /// Starts publishing to `url` (`rtmp://127.0.0.1:PORT/live/KEY`) on a thread of its own.
    pub fn start(url: &str, settings: DemoSettings) -> Result<DemoSource, Error> {
        init()?;
        let with_clock = gst::ElementFactory::find("clockoverlay").is_some();
        if !with_clock {
            tracing::warn!("clockoverlay is missing (install gstreamer1.0-x); the demo shows a moving ball without a clock");
        }
        let desc = description(url, &settings, with_clock);
        // Fail now, not in the thread, if an element is missing.
        launch(&desc)?;
        let stop = Arc::new(AtomicBool::new(false));
        let name = "ferrocast-demo";
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn({
                let stop = stop.clone();
                move || run(&desc, &stop)
            })
            .map_err(|e| Error::SpawnThread {
                thread: name.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(DemoSource {
            stop,
            thread: Some(thread),
        })
    }
}

fn run(desc: &str, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match run_once(desc, stop) {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "demo publisher stopped; retrying in 2 s"),
        }
        for _ in 0..20 {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Runs until `stop` (Ok) or an error on the bus (Err).
fn run_once(desc: &str, stop: &AtomicBool) -> Result<(), String> {
    let pipeline = gst::parse::launch(desc).map_err(|e| e.to_string())?;
    let bus = pipeline.bus().ok_or("pipeline without a bus")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("cannot start: {e}"))?;
    let result = loop {
        if stop.load(Ordering::SeqCst) {
            break Ok(());
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Error(e) => break Err(format!("{} ({:?})", e.error(), e.debug())),
            gst::MessageView::Eos(_) => break Err("end of stream".into()),
            _ => {}
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

impl Drop for DemoSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_parses_with_the_installed_plugins() {
        crate::init::init().unwrap();
        for clock in [false, true] {
            if clock && gst::ElementFactory::find("clockoverlay").is_none() {
                continue;
            }
            let d = description("rtmp://127.0.0.1:1/live/k", &DemoSettings::default(), clock);
            gst::parse::launch(&d).unwrap_or_else(|e| panic!("{d}: {e}"));
        }
    }
}
