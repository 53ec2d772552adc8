//! Cluster mode (issue 28, first slice): two real `ferrocast` processes share a real Redis
//! (Debian's `redis-server`, on a free port), and one stream has one publisher across both:
//! the same key on the other pod is refused over RTMP and over SRT while the stream is live,
//! accepted once its publisher stops, and accepted after its owner is killed once the lease
//! expires. A Redis outage ends nothing that is live, refuses new publishes, and every live
//! lease is asserted again once Redis is back.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use support::redis::Redis;
use support::{ffmpeg_publish, ffmpeg_srt, srt_addr, srt_url, wait_until, ChildGuard, Server};

const LIVE_TIMEOUT: Duration = Duration::from_secs(20);
const KEY: &str = "e2e-cluster-key";
const OTHER_KEY: &str = "e2e-cluster-other";

/// A pod in cluster mode on `redis`, with streams `main` and `other`.
fn pod(redis: &Redis) -> Server {
    Server::start(&[
        "--stream",
        &format!("main={KEY}"),
        "--stream",
        &format!("other={OTHER_KEY}"),
        "--set",
        &format!("cluster.redis_url={}", redis.url()),
        "--set",
        "cluster.lease_ttl=3s",
        "--set",
        "ingest.publisher_timeout=2s",
    ])
}

fn rejections(server: &Server, protocol: &str, reason: &str) -> f64 {
    server.metrics().value(
        "ferrocast_ingest_rejections_total",
        &[("protocol", protocol), ("reason", reason)],
    )
}

/// A publisher that must be refused: it exits non-zero within 15 s, and the stream never went
/// live on `server` meanwhile.
fn expect_refused(publisher: &mut ChildGuard, server: &Server, stream: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        assert_eq!(
            server.stream(stream)["live"],
            false,
            "a refused publisher went live\n{}",
            server.logs()
        );
        if let Some(s) = publisher.try_wait() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "{} was not refused\n{}\nserver log:\n{}",
            publisher.name,
            publisher.stderr(),
            server.logs()
        );
        thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success(), "{} exited 0", publisher.name);
}

/// The README's table of cluster metrics (between the `metrics-catalogue-cluster` markers)
/// against a cluster pod's scrape: each row's family is there with its type and samples, and
/// every `ferrocast_cluster_*` family the pod exposes is in the table.
fn check_cluster_catalogue(server: &Server) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let table = readme
        .split("<!-- metrics-catalogue-cluster:begin -->")
        .nth(1)
        .and_then(|t| t.split("<!-- metrics-catalogue-cluster:end -->").next())
        .expect("README.md has the cluster metrics table between its markers");
    let scrape = server.metrics().text;
    let mut documented = Vec::new();
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (name, kind) = (cells[1].trim_matches('`'), cells[2]);
        let family = name
            .strip_suffix("_total")
            .filter(|_| kind == "counter")
            .unwrap_or(name);
        assert!(
            scrape.contains(&format!("# TYPE {family} {kind}\n")),
            "README row {name} ({kind}): no `# TYPE {family} {kind}` in the scrape:\n{scrape}"
        );
        assert!(
            scrape
                .lines()
                .any(|l| l.starts_with(family) && !l.starts_with('#')),
            "README row {name}: no samples"
        );
        documented.push(family.to_owned());
    }
    assert_eq!(documented.len(), 4, "{table}");
    for line in scrape.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let family = line.split_whitespace().next().unwrap_or_default();
        assert!(
            !family.starts_with("ferrocast_cluster_") || documented.iter().any(|d| d == family),
            "{family} is exposed but not in the README's cluster table"
        );
    }
}

fn store_state(server: &Server) -> String {
    server.get_json("/readyz")["cluster"]["store"]
        .as_str()
        .unwrap_or("absent")
        .to_owned()
}

#[test]
fn one_publisher_per_stream_across_pods_until_it_stops_or_its_owner_dies() {
    let redis = Redis::start();
    let mut a = pod(&redis);
    let b = pod(&redis);
    assert_eq!(store_state(&b), "up");

    let mut pa = ffmpeg_publish(&a.dir, "a", &a.rtmp_url(KEY), "320x240", 60);
    a.wait_live("main", LIVE_TIMEOUT, |_| true);
    let lease = redis.lease("main").expect("A holds the lease");
    assert_eq!(lease["owner"], a.admin.to_string(), "{lease}");
    assert_eq!(
        a.metrics().value("ferrocast_cluster_leases", &[]),
        1.0,
        "{}",
        a.metrics().text
    );

    // The same key on B: refused over RTMP...
    let mut rtmp = ffmpeg_publish(&b.dir, "b-rtmp", &b.rtmp_url(KEY), "320x240", 5);
    expect_refused(&mut rtmp, &b, "main");
    assert!(
        rejections(&b, "rtmp", "live_elsewhere") >= 1.0,
        "{}",
        b.logs()
    );
    // ...and over SRT, at the handshake.
    let url = srt_url(srt_addr(&b), &format!("live/{KEY}"), "");
    let mut srt = ffmpeg_srt(&b.dir, "b-srt", &url, "320x240", 5);
    expect_refused(&mut srt, &b, "main");
    assert!(
        srt.stderr().to_ascii_lowercase().contains("reject"),
        "{}",
        srt.stderr()
    );
    assert!(
        rejections(&b, "srt", "live_elsewhere") >= 1.0,
        "{}",
        b.logs()
    );
    assert_eq!(a.stream("main")["live"], true, "A's stream went on");

    // A's publisher stops: the lease goes with it, and B takes the stream.
    drop(pa);
    wait_until(Duration::from_secs(10), "A's lease to be released", || {
        redis.lease("main").is_none().then_some(())
    });
    let pb = ffmpeg_publish(&b.dir, "b", &b.rtmp_url(KEY), "320x240", 60);
    b.wait_live("main", LIVE_TIMEOUT, |_| true);
    assert_eq!(redis.lease("main").unwrap()["owner"], b.admin.to_string());
    check_cluster_catalogue(&b);
    drop(pb);

    // A publishes `other`, and is killed: nobody releases its lease, which B respects until
    // it expires (3 s), and then B takes the stream.
    pa = ffmpeg_publish(&a.dir, "a-other", &a.rtmp_url(OTHER_KEY), "320x240", 60);
    a.wait_live("other", LIVE_TIMEOUT, |_| true);
    a.process.signal("KILL");
    a.process.expect_exit(Duration::from_secs(5));
    let killed = Instant::now();
    assert!(
        redis.lease("other").is_some(),
        "the dead pod's lease outlives it"
    );
    let mut tries = 0;
    let _pb = loop {
        tries += 1;
        let mut p = ffmpeg_publish(
            &b.dir,
            &format!("b-other-{tries}"),
            &b.rtmp_url(OTHER_KEY),
            "320x240",
            30,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        let live = loop {
            if b.stream("other")["live"] == true {
                break true;
            }
            if p.try_wait().is_some() || Instant::now() > deadline {
                break false;
            }
            thread::sleep(Duration::from_millis(100));
        };
        if live {
            assert!(
                killed.elapsed() >= Duration::from_millis(1500),
                "B took the stream {:?} after A died, before its lease could expire",
                killed.elapsed()
            );
            break p;
        }
        drop(p);
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "B never took the dead pod's stream\n{}",
            b.logs()
        );
        thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(redis.lease("other").unwrap()["owner"], b.admin.to_string());
    drop(pa);
}

#[test]
fn a_redis_outage_ends_nothing_live_refuses_new_publishes_and_heals() {
    let mut redis = Redis::start();
    let a = pod(&redis);
    let b = pod(&redis);
    let _pa = ffmpeg_publish(&a.dir, "a", &a.rtmp_url(KEY), "320x240", 60);
    a.wait_live("main", LIVE_TIMEOUT, |_| true);

    redis.stop();
    wait_until(
        Duration::from_secs(10),
        "both pods to see the store down",
        || (store_state(&a) == "down" && store_state(&b) == "down").then_some(()),
    );
    assert_eq!(a.metrics().value("ferrocast_cluster_store_up", &[]), 0.0);
    // A new publish is refused (cluster.on_store_down = "refuse", the default)...
    let mut refused = ffmpeg_publish(&b.dir, "b", &b.rtmp_url(OTHER_KEY), "320x240", 5);
    expect_refused(&mut refused, &b, "other");
    assert!(rejections(&b, "rtmp", "store_down") >= 1.0, "{}", b.logs());
    // ...while the live stream goes on, beyond its lease's TTL.
    let frames = |s: &Server| {
        s.metrics()
            .value("ferrocast_ingest_frames_total", &[("stream", "main")])
    };
    let before = frames(&a);
    thread::sleep(Duration::from_secs(4));
    assert!(frames(&a) > before, "A's stream stopped during the outage");
    assert_eq!(a.stream("main")["live"], true);

    // Redis comes back empty: A asserts its lease again, and new publishes are accepted.
    redis.restart();
    wait_until(Duration::from_secs(15), "A's lease asserted again", || {
        redis
            .lease("main")
            .filter(|l| l["owner"] == a.admin.to_string())
    });
    wait_until(Duration::from_secs(10), "B to see the store up", || {
        (store_state(&b) == "up").then_some(())
    });
    let _pb = ffmpeg_publish(&b.dir, "b-after", &b.rtmp_url(OTHER_KEY), "320x240", 30);
    b.wait_live("other", LIVE_TIMEOUT, |_| true);
}
