//! This pod's connection to Redis: connected in the background with backoff, watched by a ping
//! once a second, every command bounded by a timeout.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::ClusterMetrics;

/// How long one command (or one connection attempt) may take before the store counts as down.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the store is pinged.
const PING_EVERY: Duration = Duration::from_secs(1);
/// The first and the longest wait between two reconnection attempts.
const RECONNECT_DELAY: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(1));

/// Why a store command failed: Redis could not be reached in time, or refused the command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the cluster store (Redis) is unreachable: {0}")]
pub struct StoreDown(pub String);

/// The connection to Redis.
pub struct Store {
    client: redis::Client,
    conn: Mutex<Option<ConnectionManager>>,
    up: watch::Sender<bool>,
    metrics: Arc<ClusterMetrics>,
    stop: CancellationToken,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// A store for `redis_url` (checked by [`crate::Cluster::validate`]). It connects in the
    /// background: call [`Store::start`] on a tokio runtime.
    pub fn new(redis_url: &str, metrics: Arc<ClusterMetrics>) -> Result<Arc<Store>, StoreDown> {
        let client = redis::Client::open(redis_url).map_err(|e| StoreDown(e.to_string()))?;
        metrics.store_up(false);
        Ok(Arc::new(Store {
            client,
            conn: Mutex::new(None),
            up: watch::channel(false).0,
            metrics,
            stop: CancellationToken::new(),
        }))
    }

    /// Connects (retrying with backoff) and pings once a second, until [`Store::stop`].
    pub fn start(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move {
            let stop = this.stop.clone();
            tokio::select! {
                _ = this.run() => {}
                _ = stop.cancelled() => {}
            }
        });
    }

    /// Stops the background task.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Whether the last command or ping reached Redis.
    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    /// A receiver that changes when the store goes up or down.
    pub fn watch_up(&self) -> watch::Receiver<bool> {
        self.up.subscribe()
    }

    async fn run(&self) {
        // Connects on the first command, and again after a command finds the connection gone:
        // a few tries a second apart at most, each bounded; the ping keeps commands coming
        // while nothing else asks, so the state is never older than a second or two.
        let config = ConnectionManagerConfig::new()
            .set_min_delay(RECONNECT_DELAY.0)
            .set_max_delay(RECONNECT_DELAY.1)
            .set_number_of_retries(3)
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT));
        match ConnectionManager::new_lazy_with_config(self.client.clone(), config) {
            Ok(conn) => *self.conn.lock().expect("store lock") = Some(conn),
            Err(e) => {
                self.set_up(false, &e.to_string());
                return;
            }
        }
        loop {
            let _ = self.query::<String>(redis::cmd("PING")).await;
            tokio::time::sleep(PING_EVERY).await;
        }
    }

    fn set_up(&self, up: bool, why: &str) {
        let was = self.up.send_replace(up);
        self.metrics.store_up(up);
        if was != up {
            if up {
                tracing::info!("cluster store reachable");
            } else {
                tracing::warn!(error = %why, "cluster store unreachable; live streams go on");
            }
        }
    }

    /// Runs `cmd`, within the command timeout.
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: redis::Cmd,
    ) -> Result<T, StoreDown> {
        let conn = self.conn.lock().expect("store lock").clone();
        let Some(mut conn) = conn else {
            return Err(StoreDown("not connected yet".into()));
        };
        self.timed(async move { cmd.query_async(&mut conn).await })
            .await
    }

    /// Runs `script` on `keys` and `args`, within the command timeout.
    pub(crate) async fn eval<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[&str],
    ) -> Result<T, StoreDown> {
        let conn = self.conn.lock().expect("store lock").clone();
        let Some(mut conn) = conn else {
            return Err(StoreDown("not connected yet".into()));
        };
        let mut invocation = script.prepare_invoke();
        for k in keys {
            invocation.key(*k);
        }
        for a in args {
            invocation.arg(*a);
        }
        self.timed(async move { invocation.invoke_async(&mut conn).await })
            .await
    }

    async fn timed<T>(
        &self,
        command: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreDown> {
        let start = Instant::now();
        match tokio::time::timeout(COMMAND_TIMEOUT, command).await {
            Ok(Ok(v)) => {
                self.metrics.round_trip(start.elapsed().as_secs_f64());
                self.set_up(true, "");
                Ok(v)
            }
            Ok(Err(e)) if is_reply_error(&e) => {
                // Redis answered: it is up, and the command was wrong.
                self.set_up(true, "");
                Err(StoreDown(e.to_string()))
            }
            Ok(Err(e)) => {
                self.set_up(false, &e.to_string());
                Err(StoreDown(e.to_string()))
            }
            Err(_) => {
                self.set_up(false, "command timed out");
                Err(StoreDown("command timed out".into()))
            }
        }
    }
}

/// An error Redis itself replied with (the connection works).
fn is_reply_error(e: &redis::RedisError) -> bool {
    !(e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal())
}
