//! The element chain a stream is built with: the selection it asks for, hardware encoder
//! sessions admitted per rung, and what each rung ended up with.

use std::sync::Arc;

use crate::accel::{
    Backend, DecoderChoice, EncoderChoice, FailurePolicy, Selection, SessionBudget, SessionLease,
};
use crate::config::RungPlan;
use crate::error::Error;

/// How a pipeline is built beyond its ladder: the element chain and hardware admission.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// The chain (from [`crate::accel::select`]); the default is all software.
    pub selection: Option<Selection>,
    /// Hardware encoder sessions, taken per hardware-encoded rung for the pipeline's life.
    pub sessions: Option<Arc<SessionBudget>>,
    /// When the session budget is spent: encode the rung with x264 (`Fallback`) or refuse the
    /// stream with [`crate::Error::Accelerator`] (`Fail`).
    pub on_failure: FailurePolicy,
    /// Input timestamp that becomes media time zero: pass a failed pipeline's
    /// [`crate::StreamPipeline::input_offset`] so that its replacement continues its timeline.
    pub input_offset: Option<i64>,
    /// A multitrack publish's other video tracks (E-RTMP v2 track id 1 and up) with their
    /// configurations: each is passed through as rung `track<id>` after the ladder
    /// ([`crate::with_tracks`]).
    pub tracks: Vec<(u8, media::VideoConfig)>,
    /// Repackage a stream whose ladder keeps only the passthrough rung without GStreamer (the
    /// fMP4 writer of `media`, on the pushing thread), where the publish allows it: one video
    /// track of H.264, HEVC or AV1, with AAC-LC audio or none. Off (the library's default;
    /// Ferrocast's configuration turns it on): every stream runs in GStreamer.
    pub direct_passthrough: bool,
}

/// What one rung's encoder turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RungBackend {
    /// The rendition's name.
    pub name: String,
    /// Encoder factory; `None` for passthrough.
    pub encoder: Option<String>,
    /// Who encodes; `Software` for passthrough (nothing is encoded).
    pub backend: Backend,
    /// Why the rung is in software although the stream's selection had hardware.
    pub fallback: Option<String>,
}

/// The chain a pipeline was built with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamBackends {
    /// The decoder (also when no rung transcodes, as selected).
    pub decoder: DecoderChoice,
    /// Scale and convert.
    pub scale: Backend,
    /// Per rung, in rung order.
    pub rungs: Vec<RungBackend>,
}

/// Each transcoded rung's encoder (with the reason it fell back, if it did); `None` for
/// passthrough rungs.
pub(crate) type RungEncoders = Vec<Option<(EncoderChoice, Option<String>)>>;

/// What the graph is built from: the stream's selection and each rung's admitted encoder.
pub(crate) struct Chain {
    pub(crate) selection: Selection,
    pub(crate) encoders: RungEncoders,
    /// Hardware encoder sessions, held until the chain (the pipeline) is gone.
    _leases: Vec<SessionLease>,
}

impl Chain {
    /// Admits hardware-encoded rungs against the session budget, one session per rung.
    pub(crate) fn admit(plan: &[RungPlan], options: &StartOptions) -> Result<Chain, Error> {
        let selection = options
            .selection
            .clone()
            .unwrap_or_else(Selection::software);
        let mut leases = Vec::new();
        let mut encoders = Vec::with_capacity(plan.len());
        for rung in plan {
            if rung.passthrough {
                encoders.push(None);
                continue;
            }
            let choice = &selection.encoder;
            if choice.kind.backend() != Backend::Nvidia {
                encoders.push(Some((choice.clone(), None)));
                continue;
            }
            match options
                .sessions
                .as_ref()
                .map(|b| (b.try_acquire(), b.limit()))
            {
                None => encoders.push(Some((choice.clone(), None))),
                Some((Some(lease), _)) => {
                    leases.push(lease);
                    encoders.push(Some((choice.clone(), None)));
                }
                Some((None, limit)) => {
                    let why = format!(
                        "all {} hardware encoder sessions are in use (nvidia.max_encode_sessions)",
                        limit.unwrap_or_default()
                    );
                    if options.on_failure == FailurePolicy::Fail {
                        return Err(Error::Accelerator(format!(
                            "rung {:?} cannot be encoded on the GPU: {why}; raise the limit, or \
                             set transcode.on_accelerator_failure = \"fallback\" to encode it \
                             with x264",
                            rung.name
                        )));
                    }
                    encoders.push(Some((EncoderChoice::x264(), Some(why))));
                }
            }
        }
        Ok(Chain {
            selection,
            encoders,
            _leases: leases,
        })
    }

    /// What each stage and rung ended up with.
    pub(crate) fn backends(&self, plan: &[RungPlan]) -> StreamBackends {
        StreamBackends {
            decoder: self.selection.decoder.clone(),
            scale: self.selection.scale,
            rungs: plan
                .iter()
                .zip(&self.encoders)
                .map(|(r, e)| RungBackend {
                    name: r.name.clone(),
                    encoder: e.as_ref().map(|(c, _)| c.factory.clone()),
                    backend: e
                        .as_ref()
                        .map(|(c, _)| c.kind.backend())
                        .unwrap_or(Backend::Software),
                    fallback: e.as_ref().and_then(|(_, why)| why.clone()),
                })
                .collect(),
        }
    }
}
