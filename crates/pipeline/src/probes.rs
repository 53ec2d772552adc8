//! Pad probes: counting a rung's frames, forcing a key unit on the frame of each cut, and
//! capping a rung's frame rate without losing a cut frame.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use gst::prelude::*;

use crate::shared::Shared;

/// Counts buffers (and buffers in lists) passing `pad`.
pub(crate) fn count_buffers(pad: &gst::Pad, shared: &Arc<Shared>, rung: usize) {
    let shared = Arc::clone(shared);
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let n = match &info.data {
                Some(gst::PadProbeData::Buffer(_)) => 1,
                Some(gst::PadProbeData::BufferList(l)) => l.len() as u64,
                _ => 0,
            };
            if let Some(c) = shared.rungs.get(rung) {
                c.frames.fetch_add(n, Ordering::Relaxed);
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// On every frame entering a rung's encoder, sends a force-key-unit event first when the frame
/// is at or after a cut the encoder has not been asked for yet.
pub(crate) fn force_key_units_at_cuts(pad: &gst::Pad, shared: &Arc<Shared>) {
    let shared = Arc::clone(shared);
    let last_forced = AtomicI64::new(-1);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(running_time) = buffer_running_time(pad, info) else {
            return gst::PadProbeReturn::Ok;
        };
        let last = last_forced.load(Ordering::Relaxed);
        if let Some(cut) = shared.due_cut(running_time, last) {
            last_forced.store(cut as i64, Ordering::Relaxed);
            let event = gst_video::DownstreamForceKeyUnitEvent::builder()
                .running_time(gst::ClockTime::from_nseconds(cut))
                .all_headers(true)
                .build();
            if !pad.push_event(event) {
                tracing::warn!(pad = %pad.name(), "force-key-unit event not handled");
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// Drops frames so that at most `cap` per second pass `pad`, keeping every frame a segment
/// starts on (those must reach the encoder to become its IDRs).
pub(crate) fn cap_frame_rate(pad: &gst::Pad, shared: &Arc<Shared>, cap: u32) {
    let shared = Arc::clone(shared);
    let interval = 1_000_000_000 / u64::from(cap.max(1));
    // Timestamps are rounded to ns (or to ms by RTMP): allow a little early.
    let slack = (interval / 10).min(3_000_000);
    let next_allowed = AtomicI64::new(-1);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(rt) = buffer_running_time(pad, info) else {
            return gst::PadProbeReturn::Ok;
        };
        let is_cut = shared.is_cut(rt);
        let next = next_allowed.load(Ordering::Relaxed);
        if is_cut || next < 0 || rt + slack >= next as u64 {
            next_allowed.store((rt + interval) as i64, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        } else {
            gst::PadProbeReturn::Drop
        }
    });
}

/// Running time (ns) of the buffer a probe on `pad` sees; `None` for anything but a buffer
/// with a PTS.
fn buffer_running_time(pad: &gst::Pad, info: &gst::PadProbeInfo) -> Option<u64> {
    let Some(gst::PadProbeData::Buffer(buffer)) = &info.data else {
        return None;
    };
    buffer.pts().map(|pts| running_time(pad, pts))
}

/// Running time (ns) of `pts` in the segment last seen on `pad`.
fn running_time(pad: &gst::Pad, pts: gst::ClockTime) -> u64 {
    pad.sticky_event::<gst::event::Segment>(0)
        .and_then(|ev| {
            ev.segment()
                .downcast_ref::<gst::ClockTime>()
                .and_then(|s| s.to_running_time(pts))
        })
        .unwrap_or(pts)
        .nseconds()
}
