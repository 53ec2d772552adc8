//! Fuzz entry points: always compiled, so the `fuzz/` crate and the tests exercise the same
//! code.

use crate::demux::Demuxer;
use crate::error::Error;
use crate::outcome::Outcome;
use crate::testing;

fn drain(demuxer: &mut Demuxer, out: &mut Vec<Result<Outcome, Error>>) {
    while let Some(outcome) = demuxer.poll() {
        out.push(outcome);
    }
}

/// Runs `data` through a [`Demuxer`] whole and in chunks, and checks that both give the
/// same outcomes and statistics. Never panics otherwise.
///
/// Byte 0 selects: bits 0-3 the chunk size (`(n + 1) * 97` bytes); bit 4 puts a valid PAT
/// and PMT (H.264 on PID 0x100, AAC on 0x101) before the data, so PES paths are reached
/// quickly. The rest is the transport stream.
pub fn demux(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let mut input = Vec::new();
    if selector & 0x10 != 0 {
        let mut w = testing::TsWriter::new();
        input.extend(w.pat(testing::PMT_PID));
        input.extend(w.pmt(
            testing::PMT_PID,
            &[(0x1b, testing::VIDEO_PID), (0x0f, testing::AUDIO_PID)],
        ));
    }
    input.extend_from_slice(body);
    let chunk = (usize::from(selector & 0x0f) + 1) * 97;

    let mut whole = Demuxer::new();
    let mut a = Vec::new();
    whole.push(&input);
    drain(&mut whole, &mut a);
    whole.flush();
    drain(&mut whole, &mut a);

    let mut split = Demuxer::new();
    let mut b = Vec::new();
    for piece in input.chunks(chunk) {
        split.push(piece);
        drain(&mut split, &mut b);
    }
    split.flush();
    drain(&mut split, &mut b);

    assert_eq!(a, b, "outcomes depend on how the bytes were split");
    assert_eq!(whole.stats(), split.stats(), "stats depend on the split");
}
