//! Each stream's playlist continuity, kept for the next pod that takes the stream:
//! `ferrocast:continuity:<stream>`, a small hash its owner writes at each segment cut with a
//! TTL of the reconnect window. What the fields mean is the transcoder's business; here they
//! are strings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::store::{Store, StoreDown};

/// Merge ARGV[3..] (field, value pairs) into the hash and give it a TTL of ARGV[1] ms, in one
/// script, so a reader never sees half of a write. The fields named in ARGV[2] (comma
/// separated) are numbers that only grow: each keeps the greater of the stored and the new
/// value, so writes that arrive late or out of order (a pod still flushing after another took
/// the stream) never take a number back. The other fields come with the write whose first
/// growing field is at least the stored one.
const SAVE: &str = r#"
local growing = {}
for name in string.gmatch(ARGV[2], '[^,]+') do growing[name] = true end
local first = string.match(ARGV[2], '[^,]+')
local stored = tonumber(redis.call('HGET', KEYS[1], first) or '')
local newer = true
for i = 3, #ARGV, 2 do
  if ARGV[i] == first and stored and tonumber(ARGV[i + 1]) and tonumber(ARGV[i + 1]) < stored then
    newer = false
  end
end
for i = 3, #ARGV, 2 do
  local name, value = ARGV[i], ARGV[i + 1]
  if growing[name] then
    local old = tonumber(redis.call('HGET', KEYS[1], name) or '')
    local new = tonumber(value)
    if new and (not old or new > old) then
      redis.call('HSET', KEYS[1], name, value)
    end
  elseif newer then
    redis.call('HSET', KEYS[1], name, value)
  end
end
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

    /// Merges `fields` into `stream`'s hash and gives it `ttl` (at least a millisecond). The
    /// fields named in `growing` are numbers that only grow (the first of them orders the
    /// writes: the other fields of an older write are dropped).
    pub async fn save(
        &self,
        stream: &str,
        fields: &[(impl AsRef<str>, String)],
        growing: &[impl AsRef<str>],
        ttl: Duration,
    ) -> Result<(), StoreDown> {
        if fields.is_empty() || growing.is_empty() {
            return Ok(());
        }
        let ttl = ttl.as_millis().max(1).to_string();
        let growing = growing
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(",");
        let mut args: Vec<&str> = vec![&ttl, &growing];
        for (k, v) in fields {
            args.push(k.as_ref());
            args.push(v);
        }
        let _: i64 = self
            .store
            .eval(&self.save, &[&Self::key(stream)], &args)
            .await?;
        Ok(())
    }

    /// Whether the store answered lately (a read while it is down would only wait).
    pub fn is_up(&self) -> bool {
        self.store.is_up()
    }

    /// `stream`'s hash: empty when there is none (never written, or expired).
    pub async fn load(&self, stream: &str) -> Result<HashMap<String, String>, StoreDown> {
        self.store
            .query(redis::cmd("HGETALL").arg(Self::key(stream)).to_owned())
            .await
    }
}
