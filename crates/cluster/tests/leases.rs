//! The lease logic against a real Redis (Debian's `redis-server`, started here on a free port
//! on the loopback and stopped by its PID): two pods never both hold a stream, a pod never
//! renews or releases a lease another pod holds, a silent publisher lets its lease go, and a
//! Redis outage refuses new publishes (or lets them go on locally) and ends with every live
//! lease asserted again. Continuity writes merge: no number goes back.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::{Cluster, ClusterMetrics, Holder, Lease, Leases, OnStoreDown, Refusal, Store};
use prometheus_client::registry::Registry;

const TTL: Duration = Duration::from_secs(3);

/// A redis-server of our own, killed when dropped.
struct Redis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    fn start() -> Redis {
        let dir = std::env::temp_dir().join(format!(
            "ferrocast-redis-{}-{:x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        // Redis cannot bind port 0: a port free now, tried until one works.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut redis = Redis {
                child: None,
                port,
                dir: dir.clone(),
            };
            if redis.spawn() {
                return redis;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// Starts redis-server on `self.port`; true once it answers PING.
    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}); scripts/install-deps.sh installs it")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.cli(&["PING"]) == "PONG" {
                return true;
            }
            if self.child.as_mut().unwrap().try_wait().unwrap().is_some() {
                self.child = None;
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
        false
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `redis-cli` (the real client), bounded to 5 s.
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("timeout")
            .args([
                "5",
                "redis-cli",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Kills the server (its data goes with it: nothing is saved).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        assert!(
            self.spawn(),
            "redis-server did not start again on {}",
            self.port
        );
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A publish as the keeper sees it.
#[derive(Default)]
struct Publish {
    over: AtomicBool,
    silent: AtomicBool,
    lost_to: Mutex<Option<String>>,
}

impl Holder for Publish {
    fn is_over(&self) -> bool {
        self.over.load(Ordering::SeqCst)
    }
    fn is_silent(&self) -> bool {
        self.silent.load(Ordering::SeqCst)
    }
    fn lost(&self, owner: &str) {
        *self.lost_to.lock().unwrap() = Some(owner.to_owned());
        self.over.store(true, Ordering::SeqCst);
    }
}

/// One pod: its leases over its own connection to `redis`, and its metrics.
struct Pod {
    leases: Arc<Leases>,
    registry: Registry,
}

impl Pod {
    async fn start(redis: &Redis, advertise: &str, on_store_down: OnStoreDown) -> Pod {
        let config = Cluster {
            redis_url: redis.url(),
            lease_ttl: TTL,
            on_store_down,
            ..Cluster::default()
        };
        config.validate().unwrap();
        let mut registry = Registry::default();
        let metrics = Arc::new(ClusterMetrics::new(&mut registry));
        let store = Store::new(&config.redis_url, metrics.clone()).unwrap();
        store.start();
        let leases = Leases::new(&config, advertise.to_owned(), store.clone(), metrics);
        wait_for("the store to be up", || store.is_up()).await;
        Pod { leases, registry }
    }

    fn metrics(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        text
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        self.leases.store().stop();
    }
}

async fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn lease_of(redis: &Redis, stream: &str) -> Option<Lease> {
    let v = redis.cli(&["GET", &format!("ferrocast:lease:{stream}")]);
    (!v.is_empty()).then(|| serde_json::from_str(&v).unwrap_or_else(|e| panic!("{e}: {v:?}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pod_holds_a_stream_and_the_other_is_refused_until_it_lets_go() {
    let redis = Redis::start();
    let a = Pod::start(&redis, "10.0.0.1:9091", OnStoreDown::Refuse).await;
    let b = Pod::start(&redis, "10.0.0.2:9091", OnStoreDown::Refuse).await;
    let pa = Arc::new(Publish::default());
    let claim = a
        .leases
        .claim("main", 7, pa.clone())
        .await
        .expect("A claims");
    let held = lease_of(&redis, "main").expect("a lease");
    assert_eq!((held.owner.as_str(), held.publish), ("10.0.0.1:9091", 7));
    let ttl: i64 = redis
        .cli(&["PTTL", "ferrocast:lease:main"])
        .parse()
        .unwrap();
    assert!(ttl > 0 && ttl <= TTL.as_millis() as i64, "PTTL {ttl}");

    let elsewhere = Refusal::LiveElsewhere {
        owner: "10.0.0.1:9091".into(),
    };
    assert_eq!(b.leases.check("main").await, Err(elsewhere.clone()));
    let refused = b
        .leases
        .claim("main", 1, Arc::new(Publish::default()))
        .await;
    assert_eq!(refused.err(), Some(elsewhere));
    assert_eq!(
        a.leases.check("main").await,
        Ok(()),
        "its own pod may take it over"
    );
    assert_eq!(b.leases.check("other").await, Ok(()));
    assert_eq!(lease_of(&redis, "main").unwrap().owner, "10.0.0.1:9091");

    // A takeover on A's own pod replaces A's lease with the new publish's.
    let pa2 = Arc::new(Publish::default());
    let claim2 = a
        .leases
        .claim("main", 8, pa2.clone())
        .await
        .expect("A again");
    assert_eq!(lease_of(&redis, "main").unwrap().publish, 8);
    // The first publish's release does not touch its successor's lease.
    drop(claim);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(lease_of(&redis, "main").unwrap().publish, 8);

    // The publish ends: the lease goes at once, and B may take the stream.
    drop(claim2);
    wait_for("A's lease to be released", || {
        lease_of(&redis, "main").is_none()
    })
    .await;
    let _b_claim = b
        .leases
        .claim("main", 1, Arc::new(Publish::default()))
        .await
        .expect("B claims once A let go");
    assert_eq!(lease_of(&redis, "main").unwrap().owner, "10.0.0.2:9091");
    assert!(pa.lost_to.lock().unwrap().is_none() && pa2.lost_to.lock().unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_never_renews_or_releases_a_lease_another_pod_holds() {
    let redis = Redis::start();
    let a = Pod::start(&redis, "10.0.0.1:9091", OnStoreDown::Refuse).await;
    let pa = Arc::new(Publish::default());
    let claim = a.leases.claim("main", 1, pa.clone()).await.unwrap();
    // A renews its own lease: a third of the TTL later it is fresh again.
    tokio::time::sleep(TTL / 3 + Duration::from_millis(500)).await;
    let ttl: i64 = redis
        .cli(&["PTTL", "ferrocast:lease:main"])
        .parse()
        .unwrap();
    assert!(
        ttl > (TTL / 2).as_millis() as i64,
        "A's lease was not renewed: PTTL {ttl}"
    );
    assert!(pa.lost_to.lock().unwrap().is_none());

    // Meanwhile (A's lease expired while it was cut off, say) pod C took the stream.
    let c = r#"{"owner":"10.0.0.3:9091","instance":"c0ffee","publish":9}"#;
    assert_eq!(
        redis.cli(&["SET", "ferrocast:lease:main", c, "PX", "60000"]),
        "OK"
    );
    wait_for("A to find its lease lost", || {
        pa.lost_to.lock().unwrap().is_some()
    })
    .await;
    assert_eq!(pa.lost_to.lock().unwrap().as_deref(), Some("10.0.0.3:9091"));
    // A neither extended C's lease nor took it back.
    assert_eq!(redis.cli(&["GET", "ferrocast:lease:main"]), c);
    let ttl: i64 = redis
        .cli(&["PTTL", "ferrocast:lease:main"])
        .parse()
        .unwrap();
    assert!(ttl > 50_000 && ttl <= 60_000, "C's PTTL {ttl}");
    // Nor does its release delete it.
    drop(claim);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(redis.cli(&["GET", "ferrocast:lease:main"]), c);
    let metrics = a.metrics();
    assert!(
        metrics.contains("ferrocast_cluster_lease_renew_failures_total{reason=\"lost\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("ferrocast_cluster_leases 0"), "{metrics}");
    assert!(
        metrics.contains("ferrocast_cluster_store_up 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ferrocast_cluster_store_rtt_seconds_count"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_publisher_lets_its_lease_go_and_takes_it_back_when_it_speaks() {
    let redis = Redis::start();
    let a = Pod::start(&redis, "10.0.0.1:9091", OnStoreDown::Refuse).await;
    let pa = Arc::new(Publish::default());
    let _claim = a.leases.claim("main", 1, pa.clone()).await.unwrap();
    pa.silent.store(true, Ordering::SeqCst);
    wait_for("the silent publisher's lease to go", || {
        lease_of(&redis, "main").is_none()
    })
    .await;
    // Any pod could take the stream over now; nobody does, and the publisher speaks again.
    pa.silent.store(false, Ordering::SeqCst);
    wait_for("the lease to be taken back", || {
        lease_of(&redis, "main").is_some_and(|l| l.owner == "10.0.0.1:9091")
    })
    .await;
    assert!(pa.lost_to.lock().unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_refuses_new_publishes_or_goes_on_locally_then_every_lease_is_asserted_again(
) {
    let mut redis = Redis::start();
    let strict = Pod::start(&redis, "10.0.0.1:9091", OnStoreDown::Refuse).await;
    let local = Pod::start(&redis, "10.0.0.2:9091", OnStoreDown::Local).await;
    let live = Arc::new(Publish::default());
    let _live = strict.leases.claim("live", 1, live.clone()).await.unwrap();

    redis.stop();
    wait_for("the store to be seen down", || {
        !strict.leases.store().is_up()
    })
    .await;
    assert_eq!(strict.leases.check("new").await, Err(Refusal::StoreDown));
    let refused = strict
        .leases
        .claim("new", 2, Arc::new(Publish::default()))
        .await;
    assert_eq!(refused.err(), Some(Refusal::StoreDown));
    // The outage ends nothing that is live.
    tokio::time::sleep(TTL).await;
    assert!(!live.is_over(), "a live publish was ended by the outage");
    assert!(strict.metrics().contains("ferrocast_cluster_store_up 0"));
    assert!(strict
        .metrics()
        .contains("ferrocast_cluster_lease_renew_failures_total{reason=\"store_down\"}"));
    // `local` publishes anyway.
    let _local = local
        .leases
        .claim("elsewhere", 3, Arc::new(Publish::default()))
        .await
        .expect("on_store_down = local publishes without the store");

    // Redis comes back empty: both pods assert their leases again.
    redis.restart();
    wait_for("both leases to be asserted again", || {
        lease_of(&redis, "live").is_some_and(|l| l.owner == "10.0.0.1:9091")
            && lease_of(&redis, "elsewhere").is_some_and(|l| l.owner == "10.0.0.2:9091")
    })
    .await;
    assert!(strict.leases.store().is_up());
    let _new = strict
        .leases
        .claim("new", 4, Arc::new(Publish::default()))
        .await
        .expect("new publishes are accepted again");
    assert!(!live.is_over());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuity_writes_merge_so_that_no_number_goes_back() {
    let redis = Redis::start();
    let a = Pod::start(&redis, "10.0.0.1:9091", OnStoreDown::Refuse).await;
    let hashes = cluster::ContinuityHashes::new(a.leases.store().clone());
    // Each rung's own number (msn:<rung>) grows on its own, as the stream's does.
    const GROWING: [&str; 3] = ["next_msn", "next_init_version", "msn:360p"];
    let state = |msn: u64, init: u32, closed: &str| {
        vec![
            ("next_msn", msn.to_string()),
            ("next_init_version", init.to_string()),
            ("closed", closed.to_owned()),
            ("msn:360p", (msn - 1).to_string()),
        ]
    };
    let ttl = Duration::from_secs(30);
    assert!(hashes.load("main").await.unwrap().is_empty());
    hashes
        .save("main", &state(100, 2, "0"), &GROWING, ttl)
        .await
        .unwrap();
    // A newer state replaces it.
    hashes
        .save("main", &state(101, 2, "1"), &GROWING, ttl)
        .await
        .unwrap();
    // An older one, arriving late, takes no number back and leaves the rest as it was; its
    // greater init version is kept.
    hashes
        .save("main", &state(99, 3, "0"), &GROWING, ttl)
        .await
        .unwrap();
    let got = hashes.load("main").await.unwrap();
    assert_eq!(got["next_msn"], "101");
    assert_eq!(got["msn:360p"], "100");
    assert_eq!(got["next_init_version"], "3");
    assert_eq!(got["closed"], "1");
    let pttl: i64 = redis
        .cli(&["PTTL", "ferrocast:continuity:main"])
        .parse()
        .unwrap();
    assert!(pttl > 0 && pttl <= 30_000, "PTTL {pttl}");
    // Other streams are apart.
    assert!(hashes.load("other").await.unwrap().is_empty());
}
