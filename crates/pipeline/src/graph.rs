//! The graph of one stream: appsrcs, parsers, the decoder, each rung's scale/convert/encode
//! chain and muxer, and the appsinks, all linked and handed their probes and callbacks.

use std::sync::Arc;

use gst::prelude::*;
use media::{AudioCodec, AudioConfig, VideoCodec, VideoConfig};

use crate::accel::{
    apply_properties, encoder_properties, set_cuda_device, Backend, EncoderChoice, EncoderKind,
    EncoderSettings, Stage,
};
use crate::bus::HardwareElements;
use crate::caps::{audio_caps, video_caps, video_parser};
use crate::chain::Chain;
use crate::config::{LadderConfig, RungPlan};
use crate::elements::{
    add_to, ghost_pad, link, link_chain, link_pads, make, make_any, new_queue, request_pad,
    static_pad,
};
use crate::error::Error;
use crate::output::RungOutput;
use crate::probes::{
    cap_frame_rate, count_buffers, fill_video_holes, force_key_units_at_cuts, gate_video,
};
use crate::shared::Shared;
use crate::sink::ChunkSink;

/// Raw frames a rung's input queue may hold: enough to keep the encoder busy, no more.
const RUNG_QUEUE_BUFFERS: u32 = 4;
/// Scheduled fragments are never reached: splits are requested explicitly at every cut.
const FRAGMENT_DURATION_NS: u64 = 3_600_000_000_000;

/// The elements the running stream talks to.
pub(crate) struct Built {
    /// The video input, when the stream has video.
    pub(crate) video_src: Option<gst_app::AppSrc>,
    /// The audio input, when the stream has audio.
    pub(crate) audio_src: Option<gst_app::AppSrc>,
    /// Every rung's muxer, in rung order: told where to split at each cut.
    pub(crate) muxers: Vec<gst::Element>,
    /// The input of each other track of a multitrack publish that a rung carries, by track id.
    pub(crate) track_srcs: Vec<(u8, gst_app::AppSrc)>,
}

/// Builds the graph of `plan` into `pipeline`, recording its hardware elements in `hardware`.
// One call site; the arguments are the pipeline's whole description.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build(
    pipeline: &gst::Pipeline,
    video: Option<&VideoConfig>,
    audio: Option<&AudioConfig>,
    tracks: &[(u8, VideoConfig)],
    ladder: &LadderConfig,
    plan: &[RungPlan],
    shared: &Arc<Shared>,
    sink: &Arc<dyn ChunkSink>,
    chain: &Chain,
    hardware: &HardwareElements,
) -> Result<Built, Error> {
    let selection = &chain.selection;
    let cuda_scale = selection.scale == Backend::Nvidia;
    let device = selection.device;
    let mark = |e: &gst::Element, stage: Stage, backend: Backend| {
        if backend.is_hardware() {
            if let Ok(mut h) = hardware.lock() {
                h.push((e.name().to_string(), stage, backend));
            }
        }
    };
    let add = |e: &gst::Element| add_to(pipeline.upcast_ref(), e);

    // Video input: appsrc → h264parse → tee (compressed), and the decoder, once, only when
    // some rung transcodes. Its output is in CUDA memory when the rungs scale on the GPU:
    // straight from NVDEC, or uploaded once here for every rung.
    let (video_src, vtee, decoded_tee) = match video {
        Some(video) => {
            let (src, vtee, decoded) = video_input(pipeline, video, plan, chain, &mark)?;
            (Some(src), Some(vtee), decoded)
        }
        None => (None, None, None),
    };

    // Audio input: AAC passes through (appsrc → aacparse → tee); MP3 is decoded and encoded
    // to AAC once (appsrc → mpegaudioparse → decoder → audioconvert → audioresample → AAC
    // encoder → aacparse → tee). Either way every rung's muxer takes the same tee.
    let audio_src = audio.map(|a| input_src("audio-src", &audio_caps(a, &a.record)));
    let audio_tee = match &audio_src {
        Some(src) => {
            let mut elements: Vec<gst::Element> = vec![src.clone().upcast()];
            if audio.is_some_and(|a| a.codec == AudioCodec::Mp3) {
                elements.extend(mp3_to_aac()?);
            }
            elements.push(make("aacparse", "audio-parse")?);
            let tee = make("tee", "audio-tee")?;
            elements.push(tee.clone());
            for e in &elements {
                add(e)?;
            }
            link_chain(&elements.iter().collect::<Vec<_>>())?;
            Some(tee)
        }
        None => None,
    };

    let source_fps = video.and_then(|v| v.frame_rate).filter(|f| *f > 0.0);
    let mut muxers = Vec::with_capacity(plan.len());
    let mut track_srcs = Vec::new();
    for rung in plan {
        let i = rung.index;
        let mux = make("isofmp4mux", &format!("r{i}-mux"))?;
        mux.set_property("fragment-duration", FRAGMENT_DURATION_NS);
        if let Some(part) = ladder.part_duration {
            mux.set_property("chunk-duration", part.as_nanos() as u64);
        }
        mux.set_property_from_str("header-update-mode", "none");
        mux.set_property("send-force-keyunit", false);
        mux.set_property("write-mfra", false);
        let appsink = gst_app::AppSink::builder()
            .name(format!("r{i}-sink"))
            .sync(false)
            .buffer_list(true)
            .build();
        let appsink_el: gst::Element = appsink.clone().upcast();
        add(&mux)?;
        add(&appsink_el)?;
        link(&mux, &appsink_el)?;

        // Video into the muxer first: the muxer's first stream decides where fragments end.
        let track = (rung.track != 0)
            .then(|| tracks.iter().find(|(id, _)| *id == rung.track))
            .flatten();
        let mux_video = match (&vtee, track) {
            (_, Some((id, config))) => {
                let pad = request_pad(&mux, "sink_%u")?;
                let (src, out) = track_input(pipeline, *id, config, rung, shared)?;
                link_pads(&static_pad(&out, "src")?, &pad)?;
                if ladder.part_duration.is_some() {
                    fill_video_holes(&pad);
                }
                track_srcs.push((*id, src));
                Some((pad, out))
            }
            (Some(vtee), None) => {
                let pad = request_pad(&mux, "sink_%u")?;
                let out = rung_video(
                    pipeline,
                    rung,
                    vtee,
                    decoded_tee.as_ref(),
                    ladder,
                    shared,
                    chain,
                    &mark,
                    source_fps,
                    cuda_scale,
                    device,
                )?;
                link_pads(&static_pad(&out, "src")?, &pad)?;
                // Every rung, passthrough included (see fill_video_holes).
                if ladder.part_duration.is_some() {
                    fill_video_holes(&pad);
                }
                Some((pad, out))
            }
            (None, None) => None,
        };

        let audio_codec = match (&audio_tee, audio) {
            (Some(tee), Some(a)) => {
                let q = new_queue(
                    &format!("r{i}-audio-queue"),
                    0,
                    gst::ClockTime::from_seconds(10),
                )?;
                // Another track's rung stops when the publisher stops sending that track (or it
                // is dropped, misaligned): its audio is then dropped here rather than held up
                // at the tee, which would stop every rung.
                if track.is_some() {
                    q.set_property_from_str("leaky", "downstream");
                }
                add(&q)?;
                link_pads(&request_pad(tee, "src_%u")?, &static_pad(&q, "sink")?)?;
                link_pads(&static_pad(&q, "src")?, &request_pad(&mux, "sink_%u")?)?;
                Some(match a.codec {
                    // Encoded by `mp3_to_aac`: AAC-LC.
                    AudioCodec::Mp3 => "mp4a.40.2".to_owned(),
                    _ => a.codec_string.clone(),
                })
            }
            _ => None,
        };

        let output = Arc::new(RungOutput::new(
            rung,
            sink,
            shared,
            mux_video.as_ref().map(|(pad, _)| pad),
            match track {
                Some((_, config)) => Some(config.codec_string.clone()),
                None => video
                    .filter(|_| rung.passthrough)
                    .map(|v| v.codec_string.clone()),
            },
            audio_codec,
        ));
        // A transcoded rung can be shed: its gate sits before its scaler and encoder. So can
        // another track's (when its keyframes miss the cuts): its gate is at its queue.
        if let (Some((_, out)), true) = (&mux_video, !rung.passthrough || rung.track != 0) {
            let queue =
                pipeline
                    .by_name(&format!("r{i}-queue"))
                    .ok_or_else(|| Error::Inconsistent {
                        rung: rung.name.clone(),
                        missing: "input queue",
                    })?;
            gate_video(
                &static_pad(&queue, "src")?,
                &static_pad(out, "src")?,
                shared,
                &output,
                i,
            );
        }
        output.attach(&appsink);
        muxers.push(mux);
    }
    Ok(Built {
        video_src,
        audio_src,
        muxers,
        track_srcs,
    })
}

/// The input of another track of a multitrack publish, passed through on `rung`: appsrc →
/// parser → queue. Returns the appsrc and the queue, whose src pad feeds the rung's muxer.
fn track_input(
    pipeline: &gst::Pipeline,
    id: u8,
    config: &VideoConfig,
    rung: &RungPlan,
    shared: &Arc<Shared>,
) -> Result<(gst_app::AppSrc, gst::Element), Error> {
    let i = rung.index;
    let src = input_src(
        &format!("track{id}-src"),
        &video_caps(config, &config.record),
    );
    let parse = make(video_parser(config.codec), &format!("track{id}-parse"))?;
    let q = new_queue(&format!("r{i}-queue"), 0, gst::ClockTime::from_seconds(2))?;
    let src_el: gst::Element = src.clone().upcast();
    for e in [&src_el, &parse, &q] {
        add_to(pipeline.upcast_ref(), e)?;
    }
    link_chain(&[&src_el, &parse, &q])?;
    count_buffers(&static_pad(&q, "src")?, shared, i);
    Ok((src, q))
}

/// The video chain of `rung`, from the compressed tee `vtee` (passthrough) or the decoded tee
/// (scale, convert, encode, parse): the element whose src pad feeds the rung's muxer.
// One call site; the arguments are the rung's whole description.
#[allow(clippy::too_many_arguments)]
fn rung_video(
    pipeline: &gst::Pipeline,
    rung: &RungPlan,
    vtee: &gst::Element,
    decoded_tee: Option<&gst::Element>,
    ladder: &LadderConfig,
    shared: &Arc<Shared>,
    chain: &Chain,
    mark: &dyn Fn(&gst::Element, Stage, Backend),
    source_fps: Option<f64>,
    cuda_scale: bool,
    device: u32,
) -> Result<gst::Element, Error> {
    let i = rung.index;
    let add = |e: &gst::Element| add_to(pipeline.upcast_ref(), e);
    Ok(if rung.passthrough {
        let q = new_queue(&format!("r{i}-queue"), 0, gst::ClockTime::from_seconds(2))?;
        add(&q)?;
        link_pads(&request_pad(vtee, "src_%u")?, &static_pad(&q, "sink")?)?;
        count_buffers(&static_pad(&q, "src")?, shared, i);
        q
    } else {
        let tee = decoded_tee.ok_or_else(|| Error::Inconsistent {
            rung: rung.name.clone(),
            missing: "decoder",
        })?;
        let q = new_queue(
            &format!("r{i}-queue"),
            RUNG_QUEUE_BUFFERS,
            gst::ClockTime::ZERO,
        )?;
        let (choice, _) = chain
            .encoders
            .get(i)
            .and_then(|e| e.as_ref())
            .ok_or_else(|| Error::Inconsistent {
                rung: rung.name.clone(),
                missing: "encoder",
            })?;
        let format = choice.kind.input_format();
        let sized = |b: gst::caps::Builder<gst::caps::NoFeature>| {
            b.field("format", format)
                .field("width", rung.width as i32)
                .field("height", rung.height as i32)
                .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        };
        let caps = make("capsfilter", &format!("r{i}-caps"))?;
        let mut elements = vec![q.clone()];
        // The last element before the encoder: where cuts become force-key-unit events.
        let mut feed = caps.clone();
        if cuda_scale {
            let scale = make("cudascale", &format!("r{i}-scale"))?;
            let convert = make("cudaconvert", &format!("r{i}-convert"))?;
            for e in [&scale, &convert] {
                set_cuda_device(e, device);
                mark(e, Stage::Scale, Backend::Nvidia);
            }
            caps.set_property(
                "caps",
                sized(gst::Caps::builder("video/x-raw"))
                    .features(["memory:CUDAMemory"])
                    .build(),
            );
            elements.extend([scale, convert, caps.clone()]);
            if !choice.kind.takes_cuda_memory() {
                let down = make("cudadownload", &format!("r{i}-download"))?;
                set_cuda_device(&down, device);
                mark(&down, Stage::Scale, Backend::Nvidia);
                let sys = make("capsfilter", &format!("r{i}-syscaps"))?;
                sys.set_property("caps", sized(gst::Caps::builder("video/x-raw")).build());
                elements.extend([down, sys.clone()]);
                feed = sys;
            }
        } else {
            let scale = make("videoscale", &format!("r{i}-scale"))?;
            let convert = make("videoconvert", &format!("r{i}-convert"))?;
            caps.set_property("caps", sized(gst::Caps::builder("video/x-raw")).build());
            elements.extend([scale, convert, caps.clone()]);
        }
        let enc = make_encoder(choice, &format!("r{i}-enc"))?;
        mark(&enc, Stage::Encode, choice.kind.backend());
        let parse = make("h264parse", &format!("r{i}-parse"))?;
        let mut chain = elements;
        let fps = match (rung.fps_cap, source_fps) {
            (Some(cap), Some(src)) if src > f64::from(cap) + 0.5 => {
                // Not videorate: it may drop the very frame a segment must start on. Our
                // probe drops to the cap but keeps cut frames; capssetter then tells the
                // encoder the capped rate, which its rate control needs.
                cap_frame_rate(&static_pad(&q, "src")?, shared, cap);
                let setter = make("capssetter", &format!("r{i}-rate"))?;
                setter.set_property(
                    "caps",
                    gst::Caps::builder("video/x-raw")
                        .field("framerate", gst::Fraction::new(cap as i32, 1))
                        .build(),
                );
                chain.push(setter.clone());
                feed = setter;
                f64::from(cap)
            }
            (_, Some(src)) => src,
            (Some(cap), None) => f64::from(cap),
            (None, None) => 30.0,
        };
        // IDRs only where the cadence forces them: the encoder's own keyframes would only
        // come after ten segments' worth of frames.
        let seg_frames = fps * ladder.segment_duration.as_secs_f64();
        let settings = EncoderSettings {
            kbps: rung.video_kbps.unwrap_or(1000),
            key_int_max: ((seg_frames * 10.0).ceil() as u32).max(60),
            preset: ladder.preset.clone(),
            // Always: cuts must land on the forced IDR of exactly the cut frame, and LL-HLS
            // parts must not wait for reordered frames.
            low_latency: true,
        };
        let skipped = apply_properties(
            &encoder_core(&enc, choice),
            &encoder_properties(choice.kind, &settings),
        )?;
        if !skipped.is_empty() {
            tracing::warn!(encoder = %choice.factory, ?skipped, "encoder lacks properties; left at their defaults");
        }
        chain.push(enc.clone());
        chain.push(parse.clone());
        for e in &chain {
            add(e)?;
        }
        link_pads(&request_pad(tee, "src_%u")?, &static_pad(&q, "sink")?)?;
        let refs: Vec<&gst::Element> = chain.iter().collect();
        link_chain(&refs)?;
        force_key_units_at_cuts(&static_pad(&feed, "src")?, shared);
        count_buffers(&static_pad(&enc, "src")?, shared, i);
        parse
    })
}

/// The video input of `video` in `pipeline`: its appsrc, the tee of its compressed frames and,
/// when some rung of `plan` transcodes, the tee of its decoded frames.
fn video_input(
    pipeline: &gst::Pipeline,
    video: &VideoConfig,
    plan: &[RungPlan],
    chain: &Chain,
    mark: &dyn Fn(&gst::Element, Stage, Backend),
) -> Result<(gst_app::AppSrc, gst::Element, Option<gst::Element>), Error> {
    let selection = &chain.selection;
    let cuda_scale = selection.scale == Backend::Nvidia;
    let device = selection.device;
    let add = |e: &gst::Element| add_to(pipeline.upcast_ref(), e);
    let video_src = input_src("video-src", &video_caps(video, &video.record));
    let vparse = make(video_parser(video.codec), "video-parse")?;
    let vtee = make("tee", "video-tee")?;
    let video_src_el: gst::Element = video_src.clone().upcast();
    for e in [&video_src_el, &vparse, &vtee] {
        add(e)?;
    }
    link_chain(&[&video_src_el, &vparse, &vtee])?;

    let decoded_tee = if plan.iter().any(|r| !r.passthrough) {
        let q = new_queue("decode-queue", 0, gst::ClockTime::from_seconds(1))?;
        // The probed decoder is H.264's; HEVC (libav) and AV1 (libaom) decode in software for
        // now.
        let (factory, backend) = match video.codec {
            VideoCodec::Hevc => ("avdec_h265", Backend::Software),
            VideoCodec::Av1 => ("av1dec", Backend::Software),
            VideoCodec::Vp9 => ("vp9dec", Backend::Software),
            _ => (
                selection.decoder.factory.as_str(),
                selection.decoder.backend,
            ),
        };
        let dec = make(factory, "decoder")?;
        mark(&dec, Stage::Decode, backend);
        let tee = make("tee", "decoded-tee")?;
        let mut elements = vec![q.clone(), dec.clone()];
        if backend == Backend::Nvidia {
            let caps = make("capsfilter", "decoded-caps")?;
            caps.set_property(
                "caps",
                if cuda_scale {
                    gst::Caps::builder("video/x-raw")
                        .features(["memory:CUDAMemory"])
                        .build()
                } else {
                    gst::Caps::builder("video/x-raw").build()
                },
            );
            elements.push(caps);
        } else if cuda_scale {
            let up = make("cudaupload", "upload")?;
            set_cuda_device(&up, device);
            mark(&up, Stage::Scale, Backend::Nvidia);
            elements.push(up);
        }
        elements.push(tee.clone());
        for e in &elements {
            add(e)?;
        }
        link_pads(&request_pad(&vtee, "src_%u")?, &static_pad(&q, "sink")?)?;
        let refs: Vec<&gst::Element> = elements.iter().collect();
        link_chain(&refs)?;
        Some(tee)
    } else {
        None
    };
    Ok((video_src, vtee, decoded_tee))
}

/// The appsrc of one input track. It never blocks and has no byte limit: `push` bounds its
/// queue by frames.
fn input_src(name: &str, caps: &gst::Caps) -> gst_app::AppSrc {
    gst_app::AppSrc::builder()
        .name(name)
        .caps(caps)
        .format(gst::Format::Time)
        .is_live(false)
        .block(false)
        .max_bytes(0)
        .build()
}

/// Bit rate of the AAC that MP3 input is encoded to.
const MP3_TO_AAC_BITRATE: i32 = 128_000;

/// The elements that turn parsed MP3 into AAC-LC at [`MP3_TO_AAC_BITRATE`], in link order:
/// mpegaudioparse, a decoder, audioconvert, audioresample and an encoder.
fn mp3_to_aac() -> Result<Vec<gst::Element>, Error> {
    let parse = make("mpegaudioparse", "audio-mp3-parse")?;
    let decoder = make_any(&["mpg123audiodec", "avdec_mp3"], "audio-mp3-decoder")?;
    let convert = make("audioconvert", "audio-convert")?;
    let resample = make("audioresample", "audio-resample")?;
    let encoder = make_any(&["avenc_aac", "voaacenc"], "audio-aac-encoder")?;
    encoder.set_property("bitrate", MP3_TO_AAC_BITRATE);
    Ok(vec![parse, decoder, convert, resample, encoder])
}

/// The encoder element of a rung: a plain factory, or the test-only failing bin.
fn make_encoder(choice: &EncoderChoice, name: &str) -> Result<gst::Element, Error> {
    match choice.kind {
        EncoderKind::Fault { error_after } => {
            let bin = gst::Bin::with_name(name);
            let fault = make("identity", &format!("{name}-fault"))?;
            fault.set_property("error-after", error_after as i32);
            fault.set_property("silent", true);
            let x264 = make("x264enc", &format!("{name}-x264"))?;
            add_to(&bin, &fault)?;
            add_to(&bin, &x264)?;
            link(&fault, &x264)?;
            ghost_pad(&bin, &static_pad(&fault, "sink")?)?;
            ghost_pad(&bin, &static_pad(&x264, "src")?)?;
            Ok(bin.upcast())
        }
        _ => make(&choice.factory, name),
    }
}

/// The element to set encoder properties on (inside the fault bin: its x264enc).
fn encoder_core(enc: &gst::Element, choice: &EncoderChoice) -> gst::Element {
    if let EncoderKind::Fault { .. } = choice.kind {
        if let Some(inner) = enc
            .downcast_ref::<gst::Bin>()
            .and_then(|b| b.by_name(&format!("{}-x264", enc.name())))
        {
            return inner;
        }
    }
    enc.clone()
}
