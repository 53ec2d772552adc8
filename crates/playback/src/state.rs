//! What every playback route shares.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use hls::{Budget, Source};

use crate::assets::Assets;
use crate::held::HeldRequests;
use crate::viewers::Viewers;

/// Playback's state: where streams are read from, the player's files, and the viewer and
/// held-request counts it keeps.
#[derive(Debug)]
pub struct Playback {
    pub(crate) source: Arc<dyn Source>,
    pub(crate) assets: Assets,
    pub(crate) viewers: Arc<Viewers>,
    pub(crate) held: Arc<HeldRequests>,
    /// The configured streams' names: the watch page exists for these only.
    pub(crate) streams: HashSet<String>,
    /// Configured segment duration (bounds the waits of playlist requests).
    pub(crate) segment_duration: Duration,
}

impl Playback {
    /// Playback of the streams in `source` (the live outputs, or a [`hls::Chain`]) for the
    /// configured `streams`, whose segments last about `segment_duration`; the player's hls.js
    /// is read from `assets_dir`.
    pub fn new<'a>(
        source: Arc<dyn Source>,
        streams: impl IntoIterator<Item = &'a str>,
        segment_duration: Duration,
        assets_dir: &str,
    ) -> Arc<Playback> {
        let names: Vec<&str> = streams.into_iter().collect();
        let viewers = Arc::new(Viewers::default());
        viewers.track(names.iter().copied());
        let streams = names.into_iter().map(str::to_owned).collect();
        Arc::new(Playback {
            source,
            assets: Assets::load(assets_dir),
            viewers,
            held: Arc::new(HeldRequests::default()),
            streams,
            segment_duration,
        })
    }

    /// How long a request may be held: a first playlist waits for the ladder's first segment
    /// (four segments and 2 s); a blocking request the spec's bound, three target durations.
    pub fn budget(&self) -> Budget {
        Budget {
            start: self.segment_duration * 4 + Duration::from_secs(2),
            blocking: self.segment_duration * 3,
        }
    }

    /// The viewer counts, for the gauges.
    pub fn viewers(&self) -> &Arc<Viewers> {
        &self.viewers
    }

    /// The held-request counts, for the gauges.
    pub fn held(&self) -> &Arc<HeldRequests> {
        &self.held
    }
}
