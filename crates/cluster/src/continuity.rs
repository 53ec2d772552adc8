//! Each stream's playlist continuity, kept for the next pod that takes the stream:
//! `ferrocast:continuity:<stream>`, a small hash its owner writes at each segment cut with a
//! TTL of the reconnect window. What the fields mean is the transcoder's business; here they
//! are strings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::store::{Store, StoreDown};

/// Replace the hash with ARGV[2..] (field, value pairs) and give it a TTL of ARGV[1] ms: one
/// write, so a reader never sees half of one state and half of another.
const SAVE: &str = r#"
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"#;

/// The streams' continuity hashes in the cluster store.
pub struct ContinuityHashes {
    store: Arc<Store>,
    save: redis::Script,
}

impl std::fmt::Debug for ContinuityHashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContinuityHashes").finish_non_exhaustive()
    }
}

impl ContinuityHashes {
    /// The hashes in `store`.
    pub fn new(store: Arc<Store>) -> ContinuityHashes {
        ContinuityHashes {
            store,
            save: redis::Script::new(SAVE),
        }
    }

    fn key(stream: &str) -> String {
        format!("ferrocast:continuity:{stream}")
    }

    /// Replaces `stream`'s hash with `fields`, for `ttl` (at least a millisecond).
    pub async fn save(
        &self,
        stream: &str,
        fields: &[(&str, String)],
        ttl: Duration,
    ) -> Result<(), StoreDown> {
        if fields.is_empty() {
            return Ok(());
        }
        let ttl = ttl.as_millis().max(1).to_string();
        let mut args: Vec<&str> = vec![&ttl];
        for (k, v) in fields {
            args.push(k);
            args.push(v);
        }
        let _: i64 = self
            .store
            .eval(&self.save, &[&Self::key(stream)], &args)
            .await?;
        Ok(())
    }

    /// `stream`'s hash: empty when there is none (never written, or expired).
    pub async fn load(&self, stream: &str) -> Result<HashMap<String, String>, StoreDown> {
        self.store
            .query(redis::cmd("HGETALL").arg(Self::key(stream)).to_owned())
            .await
    }
}
