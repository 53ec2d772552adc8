//! Where a stream's playlists stand, kept outside the process so that a publish of the stream
//! on another server continues them (cluster mode: a small hash in Redis, written as each
//! segment opens and completes, with the reconnect window as its TTL). The transcoder knows only the
//! [`ContinuityStore`] trait; the wiring plugs the cluster's in.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A stream's playlists as its owner left them, for the next publish to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuity {
    /// The first media sequence number no rung has used: where the next publish's first
    /// segment is numbered. A segment that was open (its parts listed) when the owner died is
    /// never finished, and its number is not used again.
    pub next_msn: u64,
    /// Each rung's own next media sequence number, by name (rungs of `rungs` only): a rung
    /// continues its own numbering, which may be a segment behind the stream's when another
    /// rung had opened one more as the owner stopped. A rung missing here starts at
    /// `next_msn`.
    pub next_msn_of: Vec<(String, u64)>,
    /// Where each rung's complete media ended, by name (rungs of `rungs` only): its first
    /// segment that was not complete (the open one, or the next), that segment's start on the
    /// program-date-time clock, and its discontinuity number. A server that continues after
    /// this one died lists the numbers from there up to its first as gaps
    /// (`hls::PackagerConfig::lost_of`), when they are in the discontinuity before its own.
    pub open_of: Vec<(String, u64, SystemTime, u64)>,
    /// The discontinuity sequence the next publish starts at: one above every one used.
    pub next_discontinuity_sequence: u64,
    /// The init version the next publish starts at: above every one used.
    pub next_init_version: u32,
    /// The end of the newest media on the program-date-time clock: the next publish's
    /// timeline starts no earlier.
    pub last_end: SystemTime,
    /// The ladder's rung names, in order.
    pub rungs: Vec<String>,
    /// The owner had flushed its pipeline when it wrote this: nothing follows it there. Kept
    /// as `closed_msn`, the `next_msn` of the owner's closing write (a number that only grows),
    /// so that a write from before the flush that lands after it does not reopen the state.
    pub closed: bool,
    /// When it was written (the writer's clock).
    pub written: SystemTime,
}

/// How much later than now a state's `last_end` may be and still be believed (clocks differ).
const SKEW: Duration = Duration::from_secs(10);

impl Continuity {
    /// The fields that only grow (the store keeps the greatest of each); the first,
    /// `next_msn`, orders the states.
    const GROWING: [&'static str; 5] = [
        "next_msn",
        "next_discontinuity_sequence",
        "next_init_version",
        "last_end_ms",
        "closed_msn",
    ];

    /// The hash field of `rung`'s next media sequence number.
    fn rung_field(rung: &str) -> String {
        format!("msn:{rung}")
    }

    /// The hash fields of `rung`'s first incomplete segment, of its start (ms) and of its
    /// discontinuity number.
    fn open_fields(rung: &str) -> [String; 3] {
        [
            format!("open:{rung}"),
            format!("open_ms:{rung}"),
            format!("open_ds:{rung}"),
        ]
    }

    /// The fields of this state that only grow ([`ContinuityStore::save`] keeps the greatest
    /// of each, so that a late write never takes a number back); the first, `next_msn`, orders
    /// the states.
    pub fn growing(&self) -> Vec<String> {
        Self::GROWING
            .iter()
            .map(|f| (*f).to_owned())
            .chain(self.next_msn_of.iter().map(|(r, _)| Self::rung_field(r)))
            .chain(self.open_of.iter().flat_map(|(r, ..)| Self::open_fields(r)))
            .collect()
    }

    /// The hash fields it is stored as.
    pub fn to_fields(&self) -> Vec<(String, String)> {
        let ms = |t: SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        };
        let end_ms = ms(self.last_end);
        let fixed = [
            ("next_msn", self.next_msn.to_string()),
            (
                "next_discontinuity_sequence",
                self.next_discontinuity_sequence.to_string(),
            ),
            ("next_init_version", self.next_init_version.to_string()),
            ("last_end_ms", end_ms.to_string()),
            ("rungs", self.rungs.join(",")),
            ("closed", u8::from(self.closed).to_string()),
            // Written by a closing write only (the store keeps the greatest).
            ("closed_msn", self.next_msn.to_string()),
            ("written_ms", ms(self.written).to_string()),
        ];
        fixed
            .into_iter()
            .filter(|(k, _)| self.closed || *k != "closed_msn")
            .map(|(k, v)| (k.to_owned(), v))
            .chain(
                self.next_msn_of
                    .iter()
                    .map(|(r, msn)| (Self::rung_field(r), msn.to_string())),
            )
            .chain(self.open_of.iter().flat_map(|(r, msn, at, ds)| {
                let [f_msn, f_at, f_ds] = Self::open_fields(r);
                [
                    (f_msn, msn.to_string()),
                    (f_at, ms(*at).to_string()),
                    (f_ds, ds.to_string()),
                ]
            }))
            .collect()
    }

    /// Where `rung`'s playlist goes on: its own next number, or the stream's.
    pub fn next_msn_of(&self, rung: &str) -> u64 {
        self.next_msn_of
            .iter()
            .find(|(r, _)| r == rung)
            .map_or(self.next_msn, |&(_, msn)| msn)
    }

    /// Where `rung`'s complete media ended ([`Continuity::open_of`]), if its writer said.
    pub fn open_of(&self, rung: &str) -> Option<(u64, SystemTime, u64)> {
        self.open_of
            .iter()
            .find(|(r, ..)| r == rung)
            .map(|&(_, msn, at, ds)| (msn, at, ds))
    }

    /// Reads it back from its hash fields; `None` when a field is missing or malformed.
    pub fn from_fields(fields: &HashMap<String, String>) -> Option<Continuity> {
        let get = |k: &str| fields.get(k).map(String::as_str);
        let rungs: Vec<String> = get("rungs")?
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect();
        let next_msn: u64 = get("next_msn")?.parse().ok()?;
        // A rung's own number, if its writer kept one; never beyond the stream's (the fields
        // grow apart, and a damaged one is not followed).
        let next_msn_of = rungs
            .iter()
            .filter_map(|r| {
                let msn: u64 = get(&Self::rung_field(r))?.parse().ok()?;
                Some((r.clone(), msn.min(next_msn)))
            })
            .collect();
        // Likewise where a rung's complete media ended (never beyond the stream's number).
        let open_of = rungs
            .iter()
            .filter_map(|r| {
                let [f_msn, f_at, f_ds] = Self::open_fields(r);
                let msn: u64 = get(&f_msn)?.parse().ok()?;
                let at: u64 = get(&f_at)?.parse().ok()?;
                let ds: u64 = get(&f_ds)?.parse().ok()?;
                (msn <= next_msn)
                    .then(|| (r.clone(), msn, UNIX_EPOCH + Duration::from_millis(at), ds))
            })
            .collect();
        Some(Continuity {
            next_msn,
            next_msn_of,
            open_of,
            next_discontinuity_sequence: get("next_discontinuity_sequence")?.parse().ok()?,
            next_init_version: get("next_init_version")?.parse().ok()?,
            last_end: UNIX_EPOCH + Duration::from_millis(get("last_end_ms")?.parse().ok()?),
            rungs,
            // Closed when the closing write is the newest (another server's writes move
            // `next_msn` past it); `closed` alone from a writer without `closed_msn`.
            closed: match get("closed_msn").and_then(|v| v.parse::<u64>().ok()) {
                Some(at) => at == next_msn,
                None => get("closed")? == "1",
            },
            written: UNIX_EPOCH + Duration::from_millis(get("written_ms")?.parse().ok()?),
        })
    }

    /// Whether a state read back could have been written by a server: its media sequence
    /// number no greater than the clock's (every stream's numbering starts from the clock, in
    /// half-seconds, and grows by one a segment), its end of media not far in the future. A
    /// damaged or forged one is not continued.
    pub fn is_plausible(&self, now: SystemTime) -> bool {
        let clock_msn = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| (d.as_millis() / 500) as u64);
        self.next_msn <= clock_msn + 1_000
            && self.next_discontinuity_sequence < 1_000_000
            && self.next_init_version < 1_000_000
            && self.last_end <= now + SKEW
    }
}

/// Keeps [`Continuity`] outside the process.
pub trait ContinuityStore: Send + Sync + std::fmt::Debug + 'static {
    /// Records `state` for `stream`. Never blocks (the write goes on in the background) and
    /// may be lost; called from the pipeline's threads at each segment cut.
    fn save(&self, stream: &str, state: Continuity);
    /// What was recorded for `stream` within the reconnect window, if anything. Blocks
    /// briefly (bounded); called from a publish's feeder thread as it starts.
    fn load(&self, stream: &str) -> Option<Continuity>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_bad_ones_read_as_none() {
        let c = Continuity {
            next_msn: 3_600_123,
            next_msn_of: vec![("source".into(), 3_600_122), ("360p".into(), 3_600_123)],
            open_of: vec![
                (
                    "source".into(),
                    3_600_121,
                    UNIX_EPOCH + Duration::from_millis(1_765_000_000_000),
                    1,
                ),
                (
                    "360p".into(),
                    3_600_122,
                    UNIX_EPOCH + Duration::from_millis(1_765_000_000_010),
                    1,
                ),
            ],
            next_discontinuity_sequence: 2,
            next_init_version: 5,
            last_end: UNIX_EPOCH + Duration::from_millis(1_765_000_000_123),
            rungs: vec!["source".into(), "360p".into()],
            closed: true,
            written: UNIX_EPOCH + Duration::from_millis(1_765_000_000_200),
        };
        let now = UNIX_EPOCH + Duration::from_millis(1_765_000_001_000);
        assert!(c.is_plausible(now));
        assert!(!Continuity {
            next_msn: u64::MAX - 1,
            ..c.clone()
        }
        .is_plausible(now));
        assert!(!Continuity {
            last_end: now + Duration::from_secs(3600),
            ..c.clone()
        }
        .is_plausible(now));
        let fields: HashMap<String, String> = c
            .to_fields()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(Continuity::from_fields(&fields), Some(c.clone()));
        assert_eq!(c.next_msn_of("source"), 3_600_122);
        assert_eq!(c.next_msn_of("720p"), 3_600_123);
        let growing = c.growing();
        assert_eq!(growing[0], "next_msn");
        assert!(growing.contains(&"msn:source".to_owned()), "{growing:?}");
        assert!(growing.contains(&"open_ms:360p".to_owned()), "{growing:?}");
        assert_eq!(
            c.open_of("360p"),
            Some((
                3_600_122,
                UNIX_EPOCH + Duration::from_millis(1_765_000_000_010),
                1
            ))
        );
        assert_eq!(c.open_of("720p"), None);
        // A rung's number without the rung listed, or one beyond the stream's, is not used; a
        // state written without them (an older server) gives every rung the stream's number.
        let mut odd = fields.clone();
        odd.insert("msn:720p".into(), "5".into());
        odd.insert("msn:360p".into(), "3600999".into());
        odd.remove("msn:source");
        let read = Continuity::from_fields(&odd).expect("readable");
        assert_eq!(read.next_msn_of, vec![("360p".to_owned(), 3_600_123)]);
        assert_eq!(read.next_msn_of("source"), 3_600_123);
        // So is a rung's incomplete segment beyond the stream's number, or half of one.
        let mut odd = fields.clone();
        odd.insert("open:360p".into(), "3600124".into());
        odd.remove("open_ms:source");
        let read = Continuity::from_fields(&odd).expect("readable");
        assert!(read.open_of.is_empty(), "{read:?}");
        // A write from before the flush that lands after it (closed 0, the same next_msn)
        // does not reopen the state; another server's later write does.
        let mut late = fields.clone();
        late.insert("closed".into(), "0".into());
        assert!(Continuity::from_fields(&late).expect("readable").closed);
        late.insert("next_msn".into(), "3600124".into());
        assert!(!Continuity::from_fields(&late).expect("readable").closed);
        let open = Continuity {
            closed: false,
            ..c.clone()
        };
        assert!(
            !open.to_fields().iter().any(|(k, _)| k == "closed_msn"),
            "an open state writes no closed_msn"
        );
        let mut bad = fields.clone();
        bad.insert("next_msn".into(), "x".into());
        assert_eq!(Continuity::from_fields(&bad), None);
        let mut missing = fields;
        missing.remove("rungs");
        assert_eq!(Continuity::from_fields(&missing), None);
        assert_eq!(Continuity::from_fields(&HashMap::new()), None);
    }
}
