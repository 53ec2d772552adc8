//! The demuxer: sync, packets, PSI, PES reassembly and the H.264/AAC elementary streams.

use std::collections::VecDeque;

use bytes::Bytes;
use media::h264::{self, AvcDecoderConfigurationRecord};
use media::{aac, AudioConfig, AudioFrame, MediaFrame, MediaTime, VideoConfig, VideoFrame};

use crate::error::Error;
use crate::outcome::{DropReason, Outcome};
use crate::packet::{
    self, check_continuity, parse_packet, Continuity, EsInfo, Packet, SectionAssembler,
    SectionError, NULL_PID, PACKET_LEN, PAT_PID, SYNC,
};
use crate::stats::Stats;
use crate::track::Track;
use crate::unsupported::Unsupported;

/// The largest video PES reassembled; a bigger one is dropped ([`DropReason::TooLarge`]).
pub const MAX_VIDEO_PES: usize = 4 << 20;
/// The largest audio PES reassembled; a bigger one is dropped ([`DropReason::TooLarge`]).
pub const MAX_AUDIO_PES: usize = 64 << 10;

/// Stream type of H.264 video (ISO/IEC 13818-1 table 2-34).
const STREAM_TYPE_H264: u8 = 0x1b;
/// Stream type of AAC audio in ADTS.
const STREAM_TYPE_AAC_ADTS: u8 = 0x0f;

/// Mask of a 33-bit PES timestamp.
const TS_MASK: u64 = (1 << 33) - 1;

/// Extends 33-bit 90 kHz timestamps, which wrap every 2^33 ticks (about 26.5 hours), to an
/// `i64` timeline that does not.
///
/// Each timestamp is placed at the extended value nearest the previous one, whatever the
/// stream, so audio and video (and PTS and DTS) share one offset and stay in sync across the
/// wrap.
#[derive(Debug, Clone, Default)]
struct Clock {
    last: Option<(u64, i64)>,
}

impl Clock {
    fn extend(&mut self, raw: u64) -> i64 {
        let raw = raw & TS_MASK;
        let extended = match self.last {
            None => raw as i64,
            Some((last_raw, last)) => {
                let step = raw.wrapping_sub(last_raw) & TS_MASK;
                let step = if step >= 1 << 32 {
                    step as i64 - (1 << 33)
                } else {
                    step as i64
                };
                last.saturating_add(step)
            }
        };
        self.last = Some((raw, extended));
        extended
    }
}

/// Where an elementary stream's PES reassembly stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PesState {
    /// Waiting for a packet that starts a PES (the first, or the one after a loss).
    Idle,
    /// Collecting a PES.
    Collecting,
}

/// One selected elementary stream.
#[derive(Debug)]
struct Es {
    pid: u16,
    cc: Option<u8>,
    state: PesState,
    pes: Vec<u8>,
    cap: usize,
}

impl Es {
    fn new(track: Track, pid: u16) -> Self {
        Es {
            pid,
            cc: None,
            state: PesState::Idle,
            pes: Vec::new(),
            cap: match track {
                Track::Video => MAX_VIDEO_PES,
                Track::Audio => MAX_AUDIO_PES,
            },
        }
    }
}

/// Video parameter sets in force and the configuration built from them.
#[derive(Debug, Default)]
struct VideoState {
    sps: Vec<Bytes>,
    pps: Vec<Bytes>,
    config: Option<VideoConfig>,
}

/// Audio configuration in force, and where the next frame would start when a PES has no PTS.
#[derive(Debug, Default)]
struct AudioState {
    asc: Option<Bytes>,
    config: Option<AudioConfig>,
    next_pts: Option<MediaTime>,
}

/// Turns an MPEG-TS byte stream into [`Outcome`]s, sans-IO.
///
/// Feed bytes as they arrive with [`push`](Demuxer::push), in chunks of any size, then drain
/// [`poll`](Demuxer::poll) until it returns `None` (which means "give me more bytes"). Errors
/// are per PES: after an `Err` from `poll` the demuxer carries on. Transport damage (lost,
/// duplicated or flagged packets, lost sync) is survived and counted in [`Stats`].
///
/// The first program of the PAT is followed; of its PMT the first H.264 and the first AAC
/// (ADTS) streams are demuxed. Timestamps are the stream's own 90 kHz clock in nanoseconds,
/// not rebased, extended past the 33-bit wrap.
#[derive(Debug, Default)]
pub struct Demuxer {
    buf: Vec<u8>,
    synced: bool,
    pat: SectionAssembler,
    pmt_pid: Option<u16>,
    pmt: SectionAssembler,
    pmt_section: Option<Vec<u8>>,
    video_es: Option<Es>,
    audio_es: Option<Es>,
    video: VideoState,
    audio: AudioState,
    clock: Clock,
    out: VecDeque<Result<Outcome, Error>>,
    stats: Stats,
}

/// Result of looking for packet alignment.
enum SyncSearch {
    /// Aligned at this offset.
    Found(usize),
    /// Not yet; the bytes before this offset are not a packet start and can go.
    NeedMore(usize),
}

/// Finds `i` where `data[i]`, `data[i + 188]` and `data[i + 376]` are all sync bytes. At the
/// end of the stream (`at_end`), positions past the data do not count against a candidate.
fn find_sync(data: &[u8], at_end: bool) -> SyncSearch {
    for (i, &b) in data.iter().enumerate() {
        if b != SYNC {
            continue;
        }
        match (data.get(i + PACKET_LEN), data.get(i + 2 * PACKET_LEN)) {
            (Some(&SYNC), Some(&SYNC)) => return SyncSearch::Found(i),
            (Some(&SYNC) | None, None) if at_end => return SyncSearch::Found(i),
            (_, None) if !at_end => return SyncSearch::NeedMore(i),
            _ => {}
        }
    }
    SyncSearch::NeedMore(data.len())
}

impl Demuxer {
    /// A demuxer that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes of the transport stream, in any chunking. Outcomes queue up for
    /// [`poll`](Demuxer::poll).
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        self.consume(false);
    }

    /// Reads every whole packet in `buf`.
    fn consume(&mut self, at_end: bool) {
        let buf = std::mem::take(&mut self.buf);
        let mut pos = 0;
        loop {
            let rest = &buf[pos..];
            if self.synced {
                let Some(packet) = rest.get(..PACKET_LEN) else {
                    break;
                };
                if packet[0] != SYNC {
                    self.synced = false;
                    self.stats.sync_losses += 1;
                    continue;
                }
                self.packet(packet);
                pos += PACKET_LEN;
            } else {
                match find_sync(rest, at_end) {
                    SyncSearch::Found(skip) => {
                        self.stats.skipped_bytes += skip as u64;
                        pos += skip;
                        self.synced = true;
                    }
                    SyncSearch::NeedMore(skip) => {
                        self.stats.skipped_bytes += skip as u64;
                        pos += skip;
                        break;
                    }
                }
            }
        }
        let mut buf = buf;
        buf.drain(..pos);
        self.buf = buf;
    }

    /// The end of the stream: reads the packets still held back (alignment is normally only
    /// taken on three packets in a row), finishes a PES still being collected (a video PES
    /// normally ends only when the next one starts), and forgets bytes that do not make a
    /// whole packet. The demuxer can go on with a new stream afterwards.
    pub fn flush(&mut self) {
        self.consume(true);
        self.stats.skipped_bytes += self.buf.len() as u64;
        self.buf.clear();
        self.synced = false;
        for track in [Track::Video, Track::Audio] {
            let Some(es) = self.es_mut(track) else {
                continue;
            };
            if es.state != PesState::Collecting {
                continue;
            }
            es.state = PesState::Idle;
            let pes = std::mem::take(&mut es.pes);
            self.finish_pes(track, pes);
        }
    }

    /// The next outcome, or `None` when the bytes pushed so far are used up.
    pub fn poll(&mut self) -> Option<Result<Outcome, Error>> {
        self.out.pop_front()
    }

    /// Counters of the damage seen and survived so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The H.264 configuration in use, once SPS and PPS have arrived.
    pub fn video_config(&self) -> Option<&VideoConfig> {
        self.video.config.as_ref()
    }

    /// The AAC configuration in use, once an ADTS frame has arrived.
    pub fn audio_config(&self) -> Option<&AudioConfig> {
        self.audio.config.as_ref()
    }

    fn es_mut(&mut self, track: Track) -> Option<&mut Es> {
        match track {
            Track::Video => self.video_es.as_mut(),
            Track::Audio => self.audio_es.as_mut(),
        }
    }

    fn packet(&mut self, bytes: &[u8]) {
        self.stats.packets += 1;
        let Some(packet) = parse_packet(bytes) else {
            self.stats.invalid_packets += 1;
            return;
        };
        if packet.transport_error {
            // Its PID may be the damaged part, so it is not trusted for anything; the loss
            // shows as a continuity gap on the stream it belonged to.
            self.stats.transport_errors += 1;
            return;
        }
        if packet.pid == NULL_PID {
            return;
        }
        if packet.pid == PAT_PID {
            self.psi_packet(true, &packet);
        } else if Some(packet.pid) == self.pmt_pid {
            self.psi_packet(false, &packet);
        } else if self
            .video_es
            .as_ref()
            .is_some_and(|es| es.pid == packet.pid)
        {
            self.es_packet(Track::Video, &packet);
        } else if self
            .audio_es
            .as_ref()
            .is_some_and(|es| es.pid == packet.pid)
        {
            self.es_packet(Track::Audio, &packet);
        }
    }

    fn psi_packet(&mut self, is_pat: bool, packet: &Packet<'_>) {
        let assembler = if is_pat { &mut self.pat } else { &mut self.pmt };
        match check_continuity(&mut assembler.cc, packet) {
            Continuity::Ok => {}
            Continuity::Duplicate => {
                self.stats.duplicate_packets += 1;
                return;
            }
            Continuity::Gap => {
                self.stats.cc_errors += 1;
                assembler.reset();
            }
        }
        if !packet.has_payload {
            return;
        }
        let Ok(sections) = assembler.push(packet.unit_start, packet.payload) else {
            self.stats.psi_errors += 1;
            return;
        };
        for section in sections {
            if is_pat {
                self.on_pat(&section);
            } else {
                self.on_pmt(section);
            }
        }
    }

    fn on_pat(&mut self, section: &[u8]) {
        match packet::parse_pat(section) {
            Ok(Some(pid)) if Some(pid) != self.pmt_pid && pid != PAT_PID => {
                self.pmt_pid = Some(pid);
                self.pmt = SectionAssembler::default();
                self.pmt_section = None;
            }
            Ok(_) | Err(SectionError::NotCurrent) => {}
            Err(_) => self.stats.psi_errors += 1,
        }
    }

    fn on_pmt(&mut self, section: Vec<u8>) {
        if self.pmt_section.as_ref() == Some(&section) {
            return;
        }
        let streams = match packet::parse_pmt(&section) {
            Ok(streams) => streams,
            Err(SectionError::NotCurrent) => return,
            Err(_) => {
                self.stats.psi_errors += 1;
                return;
            }
        };
        self.pmt_section = Some(section);
        let pick = |wanted: u8| {
            streams
                .iter()
                .find(|es| es.stream_type == wanted && es.pid != PAT_PID && es.pid != NULL_PID)
                .map(|es| es.pid)
        };
        let video = pick(STREAM_TYPE_H264);
        let audio = pick(STREAM_TYPE_AAC_ADTS);
        for (track, chosen) in [(Track::Video, video), (Track::Audio, audio)] {
            if chosen.is_some() {
                continue;
            }
            let refused = streams
                .iter()
                .map(|&EsInfo { stream_type, .. }| stream_type)
                .find(|&t| Unsupported::track_of(t) == Some(track));
            if let Some(stream_type) = refused {
                self.out
                    .push_back(Ok(Outcome::Unsupported(Unsupported { track, stream_type })));
            }
        }
        let old = (
            self.video_es.as_ref().map(|es| es.pid),
            self.audio_es.as_ref().map(|es| es.pid),
        );
        if old.0 != video {
            self.video_es = video.map(|pid| Es::new(Track::Video, pid));
        }
        if old.1 != audio {
            self.audio_es = audio.map(|pid| Es::new(Track::Audio, pid));
        }
        if old != (video, audio) {
            self.out.push_back(Ok(Outcome::Program {
                video_pid: video,
                audio_pid: audio,
            }));
        }
    }

    fn drop_pes(&mut self, track: Track, reason: DropReason) {
        self.stats.pes_dropped += 1;
        self.out.push_back(Ok(Outcome::Dropped { track, reason }));
    }

    fn es_packet(&mut self, track: Track, packet: &Packet<'_>) {
        let Some(es) = self.es_mut(track) else {
            return;
        };
        let continuity = check_continuity(&mut es.cc, packet);
        let was_collecting = es.state == PesState::Collecting;
        match continuity {
            Continuity::Ok => {}
            Continuity::Duplicate => {
                self.stats.duplicate_packets += 1;
                return;
            }
            Continuity::Gap => {
                es.state = PesState::Idle;
                es.pes.clear();
                self.stats.cc_errors += 1;
                if was_collecting {
                    self.drop_pes(track, DropReason::ContinuityError);
                }
            }
        }
        if !packet.has_payload {
            return;
        }
        let Some(es) = self.es_mut(track) else {
            return;
        };
        if packet.unit_start {
            if es.state == PesState::Collecting {
                let pes = std::mem::take(&mut es.pes);
                self.finish_pes(track, pes);
            }
            let Some(es) = self.es_mut(track) else {
                return;
            };
            es.pes.clear();
            es.state = PesState::Collecting;
        } else if es.state != PesState::Collecting {
            return;
        }
        let Some(es) = self.es_mut(track) else {
            return;
        };
        if es.pes.len() + packet.payload.len() > es.cap {
            es.pes = Vec::new();
            es.state = PesState::Idle;
            self.stats.pes_oversized += 1;
            self.drop_pes(track, DropReason::TooLarge);
            return;
        }
        es.pes.extend_from_slice(packet.payload);
        // A PES that declares its length is complete as soon as it is all here.
        if let Some(len) = es.pes.get(4..6) {
            let declared = usize::from(u16::from_be_bytes([len[0], len[1]]));
            if declared != 0 && es.pes.len() >= 6 + declared {
                es.pes.truncate(6 + declared);
                es.state = PesState::Idle;
                let pes = std::mem::take(&mut es.pes);
                self.finish_pes(track, pes);
            }
        }
    }

    fn finish_pes(&mut self, track: Track, pes: Vec<u8>) {
        let header = match packet::parse_pes_header(&pes) {
            Ok(Some(header)) => header,
            Ok(None) => return,
            Err(reason) => {
                self.stats.pes_errors += 1;
                self.out.push_back(Err(Error::InvalidPes { track, reason }));
                return;
            }
        };
        // A PES that declares a length but was cut short by the next one lost its tail.
        let declared = usize::from(u16::from_be_bytes([pes[4], pes[5]]));
        if declared != 0 && pes.len() < 6 + declared {
            self.drop_pes(track, DropReason::Truncated);
            return;
        }
        let pts = header.pts.map(|t| self.clock.extend(t));
        let dts = header.dts.map(|t| self.clock.extend(t));
        let payload = Bytes::from(pes).slice(header.payload_offset..);
        match track {
            Track::Video => self.video_pes(pts, dts, &payload),
            Track::Audio => self.audio_pes(pts, payload),
        }
    }

    fn video_pes(&mut self, pts: Option<i64>, dts: Option<i64>, payload: &[u8]) {
        let (mut sps, mut pps, mut nals) = (Vec::new(), Vec::new(), Vec::new());
        let mut keyframe = false;
        for nal in h264::annex_b_nal_units(payload) {
            match h264::nal_unit_type(nal) {
                Some(h264::NAL_SPS) => sps.push(Bytes::copy_from_slice(nal)),
                Some(h264::NAL_PPS) => pps.push(Bytes::copy_from_slice(nal)),
                // Access unit delimiters, end of sequence/stream and filler data mean nothing
                // in length-prefixed form.
                Some(h264::NAL_AUD | 10 | 11 | 12) => {}
                t => {
                    keyframe |= t == Some(h264::NAL_IDR);
                    nals.push(nal);
                }
            }
        }
        if !sps.is_empty() || !pps.is_empty() {
            self.parameter_sets(sps, pps);
        }
        if nals.is_empty() {
            return;
        }
        let Some(pts) = pts else {
            self.drop_pes(Track::Video, DropReason::MissingTimestamp);
            return;
        };
        if self.video.config.is_none() {
            self.out
                .push_back(Ok(Outcome::WaitingForConfig(Track::Video)));
            return;
        }
        let frame = h264::nal_units_to_length_prefixed(nals)
            .map(|data| {
                Outcome::Frame(MediaFrame::Video(VideoFrame {
                    dts: MediaTime::from_90khz(dts.unwrap_or(pts)),
                    pts: MediaTime::from_90khz(pts),
                    keyframe,
                    data,
                }))
            })
            .map_err(Error::VideoFrame);
        self.out.push_back(frame);
    }

    /// Takes in the SPS/PPS of an access unit; a new or changed set becomes a new
    /// configuration. An access unit carrying only one kind keeps the other in force.
    fn parameter_sets(&mut self, sps: Vec<Bytes>, pps: Vec<Bytes>) {
        let sps = if sps.is_empty() {
            self.video.sps.clone()
        } else {
            sps
        };
        let pps = if pps.is_empty() {
            self.video.pps.clone()
        } else {
            pps
        };
        if sps == self.video.sps && pps == self.video.pps {
            return;
        }
        self.video.sps = sps;
        self.video.pps = pps;
        if self.video.sps.is_empty() || self.video.pps.is_empty() {
            return;
        }
        let config =
            AvcDecoderConfigurationRecord::from_parameter_sets(&self.video.sps, &self.video.pps)
                .and_then(|record| h264::video_config(record.to_bytes()));
        match config {
            Ok(config) => {
                self.video.config = Some(config.clone());
                self.out
                    .push_back(Ok(Outcome::Frame(MediaFrame::VideoConfig(config))));
            }
            // The parameter sets stay recorded, so the error is reported once per change
            // rather than at every keyframe.
            Err(e) => self.out.push_back(Err(Error::VideoConfig(e))),
        }
    }

    fn audio_pes(&mut self, pts: Option<i64>, payload: Bytes) {
        let Some(base) = pts.map(MediaTime::from_90khz).or(self.audio.next_pts) else {
            self.drop_pes(Track::Audio, DropReason::MissingTimestamp);
            return;
        };
        let mut samples: u64 = 0;
        for item in aac::adts_frames(&payload) {
            let (header, raw) = match item {
                Ok(frame) => frame,
                Err(e) => {
                    self.out.push_back(Err(Error::Adts(e)));
                    return;
                }
            };
            let asc = match header.audio_specific_config() {
                Ok(asc) => asc,
                Err(e) => {
                    self.out.push_back(Err(Error::Adts(e)));
                    return;
                }
            };
            if self.audio.asc.as_ref() != Some(&asc) {
                match aac::audio_config(asc.clone()) {
                    Ok(config) => {
                        self.audio.asc = Some(asc);
                        self.audio.config = Some(config.clone());
                        self.out
                            .push_back(Ok(Outcome::Frame(MediaFrame::AudioConfig(config))));
                    }
                    Err(e) => {
                        self.out.push_back(Err(Error::Adts(e)));
                        return;
                    }
                }
            }
            // The i-th frame of a PES starts i frames of samples after the PES timestamp,
            // counted at the ADTS (core) sample rate.
            let offset = |samples: u64| {
                let nanos = samples.saturating_mul(1_000_000_000) / u64::from(header.sample_rate);
                MediaTime::from_nanos(i64::try_from(nanos).unwrap_or(i64::MAX))
            };
            let frame_pts = base + offset(samples);
            samples += 1024 * u64::from(header.raw_data_blocks);
            self.audio.next_pts = Some(base + offset(samples));
            if raw.is_empty() {
                continue;
            }
            self.out
                .push_back(Ok(Outcome::Frame(MediaFrame::Audio(AudioFrame {
                    pts: frame_pts,
                    data: payload.slice_ref(raw),
                }))));
        }
    }
}
