//! Pad probes: counting a rung's frames, forcing a key unit on the frame of each cut, and
//! capping a rung's frame rate without losing a cut frame.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use gst::prelude::*;
use media::MediaTime;

use crate::output::RungOutput;
use crate::shared::Shared;

/// Duration of the GAP event that stands for a dropped frame without a duration.
const GAP_NS: u64 = 1_000_000;

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

/// The gate of a shed rung, on its video input queue's src pad (before the scaler and the
/// encoder, which then do no work): drops every frame within the rung's
/// [`crate::shared::Gate`], and sends the muxer a GAP event in its place through `mux_input`,
/// the pad that feeds it. The muxer, still taking the stream's audio, goes on cutting the
/// rung's segments in step with the others (without video; the rung's output drops them and
/// reports gaps instead). The encoder must hand its frames on synchronously (x264 with
/// `zerolatency` does), so that a GAP follows every frame before it; only software-encoded rungs
/// are shed. Each segment that passed while shed is reported to `output` as a gap.
pub(crate) fn gate_video(
    pad: &gst::Pad,
    mux_input: &gst::Pad,
    shared: &Arc<Shared>,
    output: &Arc<RungOutput>,
    rung: usize,
) {
    let shared = Arc::clone(shared);
    let output = Arc::clone(output);
    // Weak: the probe lives on a pad of the same pipeline.
    let mux_input = mux_input.downgrade();
    let last_cut = AtomicI64::new(-1);
    // The gate whose start was announced (its `from`).
    let announced = std::sync::atomic::AtomicU64::new(u64::MAX);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(gst::PadProbeData::Buffer(buffer)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(pts) = buffer.pts() else {
            return gst::PadProbeReturn::Ok;
        };
        let gate = shared.gate(rung);
        // Never shed: nothing to look at (the first cut seen once shed is the gate's own).
        if gate.from == u64::MAX {
            return gst::PadProbeReturn::Ok;
        }
        let rt = running_time(pad, pts);
        if shared.is_cut(rt) {
            let prev = last_cut.swap(rt as i64, Ordering::Relaxed);
            if prev >= 0 && gate.drops(prev as u64) && rt > prev as u64 {
                output.gap(ns_time(prev as u64), ns_time(rt - prev as u64));
            }
        }
        if !gate.drops(rt) {
            return gst::PadProbeReturn::Ok;
        }
        if announced.swap(gate.from, Ordering::Relaxed) != gate.from {
            output.shed_from(ns_time(gate.from));
        }
        if let Some(out) = mux_input.upgrade() {
            let d = buffer.duration().map_or(GAP_NS, |d| d.nseconds().max(1));
            // In the muxer input's own segment: the encoder may offset its timestamps
            // (x264enc adds 1000 hours), keeping running time.
            let gap = gst::event::Gap::builder(position_of(&out, rt))
                .duration(gst::ClockTime::from_nseconds(d))
                .build();
            if !out.push_event(gap) {
                tracing::debug!(pad = %out.name(), "gap event not handled");
            }
        }
        gst::PadProbeReturn::Drop
    });
}

/// The position in `pad`'s segment of running time `rt` (ns).
fn position_of(pad: &gst::Pad, rt: u64) -> gst::ClockTime {
    let rt = gst::ClockTime::from_nseconds(rt);
    pad.sticky_event::<gst::event::Segment>(0)
        .and_then(|ev| {
            ev.segment()
                .downcast_ref::<gst::ClockTime>()
                .and_then(|s| s.position_from_running_time(rt))
        })
        .unwrap_or(rt)
}

fn ns_time(ns: u64) -> MediaTime {
    MediaTime::from_nanos(i64::try_from(ns).unwrap_or(i64::MAX))
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

/// Most GAP events one hole is filled with (at the last frame's duration each); the rest of a
/// longer hole is one event.
const MAX_FILL_EVENTS: u64 = 2_000;

/// On a muxer's video sink pad, in chunk (LL-HLS part) mode: fills each hole in the video (a
/// frame that starts later than the one before it ended, as when the input dropped frames
/// until a keyframe) with GAP events a frame long, before the frame (or the gate's GAP) after
/// it.
///
/// isofmp4mux 0.14 in chunk mode lets a GOP that is followed by a hole stretch to the next
/// keyframe, so a part can end exactly on a planned fragment end without the fragment being
/// finished; the muxer then cuts one segment late on every rung with the hole (a fragment
/// boundary at the next cut is lost), and a rung shed at that keyframe (its GAPs start new
/// GOPs after the fragment end) never drains again: its playlist froze. With the hole filled the
/// muxer sees the video it sees without one (frame-long gaps, as the gate sends for frames
/// it drops). Video that reorders frames (B-frames: a DTS that differs from the PTS) is left
/// alone, since a hole is then not visible in presentation order; our encoders do not reorder,
/// and neither does a passthrough rung of a publisher without B-frames. The passthrough rung
/// has the probe too: under overload the source rung also lost a cut after an input hole (a
/// 4.3 s segment among 2 s ones, so its numbers fell out of step with the other rungs').
pub(crate) fn fill_video_holes(pad: &gst::Pad) {
    struct Track {
        /// Position where the last frame or gap ended (ns), once one was seen.
        end: Option<u64>,
        /// The last frame's (or gap's) duration (ns).
        step: u64,
        reorders: bool,
    }
    let track = std::sync::Mutex::new(Track {
        end: None,
        step: 33_333_333,
        reorders: false,
    });
    let filling = std::sync::atomic::AtomicBool::new(false);
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |pad, info| {
            // Our own GAP events pass through untouched.
            if filling.load(Ordering::Relaxed) {
                return gst::PadProbeReturn::Ok;
            }
            let (pts, duration) = match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => {
                    let Some(pts) = b.pts() else {
                        return gst::PadProbeReturn::Ok;
                    };
                    if b.dts().is_some_and(|dts| dts != pts) {
                        if let Ok(mut t) = track.lock() {
                            t.reorders = true;
                        }
                    }
                    (pts.nseconds(), b.duration().map(|d| d.nseconds()))
                }
                Some(gst::PadProbeData::Event(ev)) => match ev.view() {
                    gst::EventView::Gap(gap) => {
                        let (pts, duration) = gap.get();
                        (pts.nseconds(), duration.map(|d| d.nseconds()))
                    }
                    // A new segment or a flush starts over.
                    gst::EventView::Segment(_) | gst::EventView::FlushStop(_) => {
                        if let Ok(mut t) = track.lock() {
                            t.end = None;
                        }
                        return gst::PadProbeReturn::Ok;
                    }
                    _ => return gst::PadProbeReturn::Ok,
                },
                _ => return gst::PadProbeReturn::Ok,
            };
            let Ok(mut t) = track.lock() else {
                return gst::PadProbeReturn::Ok;
            };
            let step = duration.filter(|d| *d > 0).unwrap_or(t.step);
            let hole = match t.end {
                // More than half a frame missing: a hole.
                Some(end) if !t.reorders && pts > end + t.step / 2 => Some((end, t.step)),
                _ => None,
            };
            t.end = Some(t.end.map_or(pts + step, |end| end.max(pts + step)));
            t.step = step.clamp(5_000_000, 100_000_000);
            drop(t);
            if let Some((from, step)) = hole {
                filling.store(true, Ordering::Relaxed);
                let mut at = from;
                let mut sent = 0;
                while at < pts {
                    let d = if sent + 1 >= MAX_FILL_EVENTS {
                        pts - at
                    } else {
                        step.min(pts - at)
                    };
                    let gap = gst::event::Gap::builder(gst::ClockTime::from_nseconds(at))
                        .duration(gst::ClockTime::from_nseconds(d))
                        .build();
                    if !pad.send_event(gap) {
                        tracing::debug!(pad = %pad.name(), "hole-filling gap event not handled");
                        break;
                    }
                    at += d;
                    sent += 1;
                }
                filling.store(false, Ordering::Relaxed);
            }
            gst::PadProbeReturn::Ok
        },
    );
}
