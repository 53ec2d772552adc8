//! A minimal MPEG-TS writer, for tests, examples, benchmarks and fuzz seeds. Not a muxer to
//! ship: no PCR, no timing model, just packets a demuxer must read.

use std::collections::BTreeMap;

use crate::packet::crc32_mpeg2;

/// PID of the PMT in [`synthetic_stream`].
pub const PMT_PID: u16 = 0x1000;
/// PID of the H.264 stream in [`synthetic_stream`].
pub const VIDEO_PID: u16 = 0x100;
/// PID of the AAC stream in [`synthetic_stream`].
pub const AUDIO_PID: u16 = 0x101;

/// SPS of an x264 640x360 Main profile stream (25 fps in its VUI).
pub const SPS: &[u8] = &[
    0x67, 0x4d, 0x40, 0x1e, 0xec, 0xa0, 0x50, 0x17, 0xfc, 0xb8, 0x08, 0x80, 0x00, 0x00, 0x03, 0x00,
    0x80, 0x00, 0x00, 0x19, 0x07, 0x8b, 0x16, 0xcb,
];
/// The PPS that goes with [`SPS`].
pub const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x20];

/// Writes transport packets, keeping a continuity counter per PID.
#[derive(Debug, Default, Clone)]
pub struct TsWriter {
    cc: BTreeMap<u16, u8>,
}

impl TsWriter {
    /// A writer whose counters all start at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// One packet carrying `payload` (at most 184 bytes; a shorter one is padded with an
    /// adaptation field).
    pub fn packet(&mut self, pid: u16, unit_start: bool, payload: &[u8]) -> Vec<u8> {
        let payload = &payload[..payload.len().min(184)];
        let cc = self.cc.entry(pid).or_insert(15);
        *cc = (*cc + 1) & 0x0f;
        let mut p = Vec::with_capacity(188);
        p.push(0x47);
        p.push(u8::from(unit_start) << 6 | (pid >> 8) as u8 & 0x1f);
        p.push(pid as u8);
        if payload.len() == 184 {
            p.push(0x10 | *cc);
        } else {
            p.push(0x30 | *cc);
            let af_len = 183 - payload.len();
            p.push(af_len as u8);
            if af_len > 0 {
                p.push(0);
                p.resize(5 + af_len, 0xff);
            }
        }
        p.extend_from_slice(payload);
        p
    }

    /// A payload split into packets, the first one flagged as a unit start.
    pub fn packets(&mut self, pid: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, chunk) in payload.chunks(184).enumerate() {
            out.extend(self.packet(pid, i == 0, chunk));
        }
        out
    }

    /// A PSI section in packets (pointer field 0, the last packet padded with 0xFF).
    pub fn psi(&mut self, pid: u16, section: &[u8]) -> Vec<u8> {
        let mut payload = vec![0];
        payload.extend_from_slice(section);
        let padded = payload.len().div_ceil(184) * 184;
        payload.resize(padded, 0xff);
        self.packets(pid, &payload)
    }

    /// A PAT naming program 1 on `pmt_pid`.
    pub fn pat(&mut self, pmt_pid: u16) -> Vec<u8> {
        let body = [0, 1, 0xe0 | (pmt_pid >> 8) as u8, pmt_pid as u8];
        self.psi(0, &section(0x00, 1, 0, &body))
    }

    /// A PMT for program 1 listing `(stream_type, pid)` pairs.
    pub fn pmt(&mut self, pmt_pid: u16, streams: &[(u8, u16)]) -> Vec<u8> {
        let pcr = streams.first().map_or(0x1fff, |s| s.1);
        let mut body = vec![0xe0 | (pcr >> 8) as u8, pcr as u8, 0xf0, 0];
        for &(stream_type, pid) in streams {
            body.extend_from_slice(&[stream_type, 0xe0 | (pid >> 8) as u8, pid as u8, 0xf0, 0]);
        }
        self.psi(pmt_pid, &section(0x02, 1, 0, &body))
    }

    /// A PES in packets. `bounded` writes PES_packet_length (when it fits), as audio needs;
    /// otherwise it is 0, as for video.
    #[allow(clippy::too_many_arguments)]
    pub fn pes(
        &mut self,
        pid: u16,
        stream_id: u8,
        pts: u64,
        dts: Option<u64>,
        payload: &[u8],
        bounded: bool,
    ) -> Vec<u8> {
        self.packets(pid, &pes(stream_id, pts, dts, payload, bounded))
    }
}

/// A long-form PSI section with its CRC.
pub fn section(table_id: u8, id_ext: u16, version: u8, body: &[u8]) -> Vec<u8> {
    let len = 5 + body.len() + 4;
    let mut s = vec![
        table_id,
        0xb0 | (len >> 8) as u8 & 0x0f,
        len as u8,
        (id_ext >> 8) as u8,
        id_ext as u8,
        0xc1 | (version & 0x1f) << 1,
        0,
        0,
    ];
    s.extend_from_slice(body);
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

/// A 33-bit timestamp in PES header form, with a 4-bit prefix.
fn timestamp(prefix: u8, ts: u64) -> [u8; 5] {
    [
        prefix << 4 | (((ts >> 30) & 7) as u8) << 1 | 1,
        (ts >> 22) as u8,
        (((ts >> 15) & 0x7f) as u8) << 1 | 1,
        (ts >> 7) as u8,
        ((ts & 0x7f) as u8) << 1 | 1,
    ]
}

/// A whole PES packet.
pub fn pes(stream_id: u8, pts: u64, dts: Option<u64>, payload: &[u8], bounded: bool) -> Vec<u8> {
    let header_len = if dts.is_some() { 10 } else { 5 };
    let len = 3 + header_len + payload.len();
    let len = if bounded && len <= 0xffff {
        len as u16
    } else {
        0
    };
    let mut p = vec![0, 0, 1, stream_id];
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[
        0x80,
        if dts.is_some() { 0xc0 } else { 0x80 },
        header_len as u8,
    ]);
    match dts {
        Some(dts) => {
            p.extend_from_slice(&timestamp(3, pts));
            p.extend_from_slice(&timestamp(1, dts));
        }
        None => p.extend_from_slice(&timestamp(2, pts)),
    }
    p.extend_from_slice(payload);
    p
}

/// An Annex B access unit: AUD, then (for a keyframe) SPS and PPS, then one slice of `size`
/// bytes that holds no start code.
pub fn access_unit(keyframe: bool, size: usize) -> Vec<u8> {
    let mut au = vec![0, 0, 0, 1, 0x09, 0xf0];
    if keyframe {
        for ps in [SPS, PPS] {
            au.extend_from_slice(&[0, 0, 0, 1]);
            au.extend_from_slice(ps);
        }
    }
    au.extend_from_slice(&[0, 0, 1, if keyframe { 0x65 } else { 0x41 }]);
    au.extend((0..size.saturating_sub(1)).map(|i| (i % 251) as u8 + 1));
    au
}

/// One ADTS frame (AAC-LC, 48 kHz, stereo) with `payload_len` bytes of payload.
pub fn adts_frame(payload_len: usize) -> Vec<u8> {
    let len = 7 + payload_len;
    let mut f = vec![
        0xff,
        0xf1,
        0x4c, // LC, 48 kHz (index 3)
        0x80 | (len >> 11) as u8 & 3,
        (len >> 3) as u8,
        ((len & 7) as u8) << 5 | 0x1f,
        0xfc,
    ];
    f.extend((0..payload_len).map(|i| (i % 200) as u8 + 0x21));
    f
}

/// A stream of `video_frames` frames at 30 fps (a keyframe, with SPS/PPS, every 30), with
/// 48 kHz AAC (two ADTS frames per PES) interleaved, starting at `start_pts` (90 kHz ticks,
/// wrapping at 2^33 as a muxer's clock does). PAT and PMT come before every keyframe.
/// Video DTS lags PTS by one frame.
pub fn synthetic_stream(start_pts: u64, video_frames: usize) -> Vec<u8> {
    const MASK: u64 = (1 << 33) - 1;
    let mut w = TsWriter::new();
    let mut out = Vec::new();
    let mut audio_ticks = 0u64;
    for i in 0..video_frames as u64 {
        let keyframe = i % 30 == 0;
        if keyframe {
            out.extend(w.pat(PMT_PID));
            out.extend(w.pmt(PMT_PID, &[(0x1b, VIDEO_PID), (0x0f, AUDIO_PID)]));
        }
        let dts = start_pts + i * 3000;
        let au = access_unit(keyframe, 200 + (i as usize * 97) % 900);
        out.extend(w.pes(
            VIDEO_PID,
            0xe0,
            (dts + 3000) & MASK,
            Some(dts & MASK),
            &au,
            false,
        ));
        // Two 1024-sample frames at 48 kHz are 3840 ticks.
        while audio_ticks <= i * 3000 {
            let mut payload = adts_frame(100 + (audio_ticks as usize / 3840) % 50);
            payload.extend(adts_frame(120));
            out.extend(w.pes(
                AUDIO_PID,
                0xc0,
                (start_pts + audio_ticks) & MASK,
                None,
                &payload,
                true,
            ));
            audio_ticks += 3840;
        }
    }
    out
}
