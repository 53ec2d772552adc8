//! How the server ends a publish, and why.

use std::fmt;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// Why the server ended a publish. Each protocol driver maps it to what its publisher hears
/// ([`EndReason::rtmp_status`] for RTMP) and to its log; the transcoder decides from it whether
/// the stream's playlists wait for a publisher to come back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// A new publisher took the stream over (after silence).
    TakenOver,
    /// Cluster mode: another server holds the stream now (the address it is reached at); this
    /// one lost its lease.
    TakenOverElsewhere(String),
    /// The server is shutting down.
    Draining,
    /// The server refused the publish as it started (promised hardware missing, no thread to
    /// transcode it); the text says why, to the publisher too.
    Refused(String),
    /// Transcoding failed; the text is the pipeline's error.
    Failed(String),
}

impl EndReason {
    /// The RTMP status (`onStatus` code and description) that tells the publisher.
    pub fn rtmp_status(&self) -> (&'static str, String) {
        match self {
            EndReason::TakenOver | EndReason::Draining => (
                "NetStream.Publish.Idle",
                "Stream ended by the server.".to_owned(),
            ),
            EndReason::TakenOverElsewhere(_) => (
                "NetStream.Publish.Idle",
                "Stream taken over on another server.".to_owned(),
            ),
            EndReason::Refused(why) => ("NetStream.Publish.Failed", format!("Refused: {why}")),
            EndReason::Failed(why) => (
                "NetStream.Publish.Failed",
                format!("Transcoding failed: {why}"),
            ),
        }
    }

    /// Whether the stream's playlists may stay open for a publisher that comes back within the
    /// reconnect window: yes after a takeover (the new publisher continues them) and a drain
    /// (whose window is zero anyway); no after a failure or a refusal.
    pub fn keeps_playlists_open(&self) -> bool {
        matches!(self, EndReason::TakenOver | EndReason::Draining)
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::TakenOver => f.write_str("taken over by a new publisher"),
            EndReason::TakenOverElsewhere(owner) => {
                write!(f, "taken over by a publisher on another server ({owner})")
            }
            EndReason::Draining => f.write_str("the server is shutting down"),
            EndReason::Refused(why) => write!(f, "refused: {why}"),
            EndReason::Failed(why) => write!(f, "transcoding failed: {why}"),
        }
    }
}

/// Ends a publish, with the reason the ingest passes on to the publisher.
#[derive(Debug, Clone, Default)]
pub struct EndSignal {
    token: CancellationToken,
    reason: Arc<Mutex<Option<EndReason>>>,
}

impl EndSignal {
    /// Ends the publish; the first reason given is the one that counts.
    pub fn end(&self, reason: EndReason) {
        let mut r = self.reason.lock().expect("end reason lock");
        if r.is_none() {
            *r = Some(reason);
        }
        drop(r);
        self.token.cancel();
    }

    /// True once ended.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Why it ended; `None` while it has not.
    pub fn reason(&self) -> Option<EndReason> {
        self.reason.lock().expect("end reason lock").clone()
    }

    /// Completes once ended.
    pub fn cancelled(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_tells_the_publisher_and_the_playlists() {
        // (reason, RTMP code, RTMP description, playlists stay open)
        let cases = [
            (
                EndReason::TakenOver,
                "NetStream.Publish.Idle",
                "Stream ended by the server.",
                true,
            ),
            (
                EndReason::Draining,
                "NetStream.Publish.Idle",
                "Stream ended by the server.",
                true,
            ),
            (
                EndReason::TakenOverElsewhere("10.0.0.7:9091".into()),
                "NetStream.Publish.Idle",
                "Stream taken over on another server.",
                false,
            ),
            (
                EndReason::Refused("no NVENC".into()),
                "NetStream.Publish.Failed",
                "Refused: no NVENC",
                false,
            ),
            (
                EndReason::Failed("boom".into()),
                "NetStream.Publish.Failed",
                "Transcoding failed: boom",
                false,
            ),
        ];
        for (reason, code, text, open) in cases {
            assert_eq!(reason.rtmp_status(), (code, text.to_owned()), "{reason}");
            assert_eq!(reason.keeps_playlists_open(), open, "{reason}");
        }
    }

    #[test]
    fn the_first_reason_counts() {
        let end = EndSignal::default();
        assert_eq!(end.reason(), None);
        assert!(!end.is_cancelled());
        end.end(EndReason::TakenOver);
        end.end(EndReason::Failed("later".into()));
        assert!(end.is_cancelled());
        assert_eq!(end.reason(), Some(EndReason::TakenOver));
    }
}
