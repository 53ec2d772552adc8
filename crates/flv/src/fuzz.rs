//! Fuzz entry points: always compiled, so the `fuzz/` crate and the tests exercise the same
//! code.

use bytes::Bytes;

use crate::cases;
use crate::demux::Demuxer;

/// Feeds one tag body through a [`Demuxer`]. Never panics, whatever `data` holds.
///
/// Byte 0 selects: bit 0 video (1) or audio (0); bit 1 first loads valid H.264 and AAC
/// sequence headers, so that coded-frame paths are reached; bit 2 serves every track of a
/// multitrack publish, with track 1 configured. The rest is the tag body.
pub fn parse_tag(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let mut demuxer = Demuxer::new();
    if selector & 4 != 0 {
        demuxer.serve_tracks(crate::MAX_SERVED_TRACKS);
        let track_1 = [&[0x96, 0x00][..], b"avc1", &[1], cases::AVC_RECORD].concat();
        let _ = demuxer.push_video(0, Bytes::from(track_1));
    }
    if selector & 2 != 0 {
        let _ = demuxer.push_video(0, Bytes::from_static(cases::AVC_SEQUENCE_HEADER));
        let _ = demuxer.push_audio(0, Bytes::from_static(cases::AAC_SEQUENCE_HEADER));
    }
    let body = Bytes::copy_from_slice(body);
    let _ = if selector & 1 != 0 {
        demuxer.push_video(1000, body)
    } else {
        demuxer.push_audio(1000, body)
    };
}
