//! The local live outputs as a playback [`Source`] (seam 4 in ARCHITECTURE.md): the packager
//! decides ([`Request::decide`]), the output renders playlists through its cache, and a request
//! that has to wait is held on the output's `watch` cursor (never a poll loop or a thread per
//! request) until the answer, the end of the stream, or its budget.

use hls::{Answer, Budget, Decision, Reply, Request, Source};

use crate::output::StreamOutput;
use crate::outputs::Outputs;

impl Source for Outputs {
    fn answer(&self, stream: &str, request: Request, budget: Budget) -> Reply {
        let Some(output) = self.get(stream) else {
            return Reply::Now(Answer::NotLive);
        };
        let deadline = tokio::time::Instant::now() + budget.of(&request);
        let mut rx = output.subscribe();
        rx.borrow_and_update();
        if let Some(answer) = output.answer_now(&request) {
            return Reply::Now(answer);
        }
        if output.is_over() {
            return Reply::Now(output.last_answer(&request));
        }
        Reply::Held(Box::pin(async move {
            loop {
                match tokio::time::timeout_at(deadline, rx.changed()).await {
                    Ok(Ok(())) => {}
                    // The budget is spent, or the output is gone.
                    _ => return output.give_up(&request),
                }
                rx.borrow_and_update();
                if let Some(answer) = output.answer_now(&request) {
                    return answer;
                }
                if output.is_over() {
                    return output.last_answer(&request);
                }
            }
        }))
    }

    fn live_streams(&self) -> Vec<String> {
        self.all()
            .iter()
            .filter(|o| !o.is_over())
            .map(|o| o.name().to_string())
            .collect()
    }
}

impl StreamOutput {
    /// The answer to `request` if there is one now; `None` to wait.
    fn answer_now(&self, request: &Request) -> Option<Answer> {
        let decision = self
            .with_packager(|p| request.decide(Some(p)))
            .unwrap_or_else(|| request.decide(None));
        match decision {
            Decision::Answer(answer) => Some(answer),
            Decision::Render { rung, skip, cache } => self
                .playlist(rung.as_deref(), skip)
                .map(|text| Answer::Playlist { text, cache }),
            Decision::Wait => None,
        }
    }

    /// The answer once the stream is over: one last look, else what a request that waited in
    /// vain gets.
    fn last_answer(&self, request: &Request) -> Answer {
        self.answer_now(request)
            .unwrap_or_else(|| self.give_up(request))
    }

    fn give_up(&self, request: &Request) -> Answer {
        self.with_packager(|p| request.give_up(Some(p)))
            .unwrap_or_else(|| request.give_up(None))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use hls::{Cache, Resource, Subject};
    use media::cmaf::ChunkKind;

    use super::*;
    use crate::output::tests::{chunk, live_output};

    const BUDGET: Budget = Budget {
        start: Duration::from_secs(10),
        blocking: Duration::from_secs(6),
    };

    /// Outputs with one live low-latency stream `s` (rung `source`), segment 0 open with part 0.
    fn one_live() -> (Arc<Outputs>, Arc<StreamOutput>) {
        let outputs = Outputs::new(Duration::from_secs(60));
        let o = live_output(true);
        o.packaged.on_chunk(
            0,
            chunk(ChunkKind::SegmentStart, 0, 500),
            SystemTime::now(),
            &[],
        );
        outputs.replace(o.clone());
        (outputs, o)
    }

    fn held(reply: Reply) -> hls::Held {
        match reply {
            Reply::Held(f) => f,
            Reply::Now(a) => panic!("answered at once: {a:?}"),
        }
    }

    fn now(reply: Reply) -> Answer {
        match reply {
            Reply::Now(a) => a,
            Reply::Held(_) => panic!("held"),
        }
    }

    fn next_part() -> Request {
        Request::new(Resource::Media("source".into()), Some(0), Some(1), false)
    }

    #[tokio::test(start_paused = true)]
    async fn what_is_there_is_answered_at_once() {
        let (outputs, _o) = one_live();
        assert_eq!(
            now(outputs.answer("nope", Request::Master, BUDGET)),
            Answer::NotLive
        );
        let part = Request::Media(Resource::Part("source".into(), 0, 0));
        assert!(matches!(
            now(outputs.answer("s", part, BUDGET)),
            Answer::Body { init: false, .. }
        ));
        let first = Request::new(Resource::Media("source".into()), Some(0), Some(0), false);
        match now(outputs.answer("s", first, BUDGET)) {
            Answer::Playlist { text, cache } => {
                assert_eq!(cache, Cache::Blocking);
                assert!(std::str::from_utf8(&text).unwrap().contains("part-0.0.m4s"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(outputs.live_streams(), ["s"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_blocking_request_is_answered_by_the_next_chunk() {
        let (outputs, o) = one_live();
        let start = tokio::time::Instant::now();
        let task = tokio::spawn(held(outputs.answer("s", next_part(), BUDGET)));
        tokio::task::yield_now().await;
        assert!(!task.is_finished(), "answered before the part existed");
        o.packaged.on_chunk(
            0,
            chunk(ChunkKind::Continuation, 500, 500),
            SystemTime::now(),
            &[],
        );
        match task.await.unwrap() {
            Answer::Playlist { text, cache } => {
                assert_eq!(cache, Cache::Blocking);
                assert!(std::str::from_utf8(&text).unwrap().contains("part-0.1.m4s"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "no time passed");
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_chunk_the_answer_is_not_in_time_at_the_budget() {
        let (outputs, _o) = one_live();
        let start = tokio::time::Instant::now();
        let answer = held(outputs.answer("s", next_part(), BUDGET)).await;
        assert_eq!(answer, Answer::NotInTime(Subject::Playlist));
        assert_eq!(start.elapsed(), BUDGET.blocking);
        let part = Request::Media(Resource::Part("source".into(), 0, 1));
        let start = tokio::time::Instant::now();
        let answer = held(outputs.answer("s", part, BUDGET)).await;
        assert_eq!(answer, Answer::NotInTime(Subject::Media));
        assert_eq!(start.elapsed(), BUDGET.blocking);
    }

    #[tokio::test(start_paused = true)]
    async fn the_end_of_the_stream_wakes_a_held_request() {
        let (outputs, o) = one_live();
        let part = Request::Media(Resource::Part("source".into(), 0, 1));
        let start = tokio::time::Instant::now();
        let task = tokio::spawn(held(outputs.answer("s", part.clone(), BUDGET)));
        let playlist = tokio::spawn(held(outputs.answer("s", next_part(), BUDGET)));
        tokio::task::yield_now().await;
        o.packaged.end();
        assert_eq!(
            task.await.unwrap(),
            Answer::Gone,
            "the part will never come"
        );
        assert!(
            matches!(playlist.await.unwrap(), Answer::Playlist { ref text, .. } if text.ends_with(b"#EXT-X-ENDLIST\n")),
            "the ended playlist, at once"
        );
        assert_eq!(start.elapsed(), Duration::ZERO);
        // Over: answered at once, never held.
        assert_eq!(now(outputs.answer("s", part, BUDGET)), Answer::Gone);
    }
}
