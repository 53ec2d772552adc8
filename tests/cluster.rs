//! Cluster mode (issues 28 and 30): real `ferrocast` processes share a real Redis
//! (Debian's `redis-server`, on a free port), and one stream has one publisher across both:
//! the same key on the other pod is refused over RTMP and over SRT while the stream is live,
//! accepted once its publisher stops, and accepted after its owner is killed once the lease
//! expires. A Redis outage ends nothing that is live, refuses new publishes, and every live
//! lease is asserted again once Redis is back. A publisher whose pod dies and that comes back
//! on a third pod within the reconnect window continues the playlists, each rung after its own
//! last segment (served through the second pod, where reloads made while the stream had no
//! live owner are held until it has one); after the window it starts new ones. A draining owner
//! hands its stream over: its lease goes at once, hls.js plays on through the second pod with
//! no playlist answered 404, and a blocking reload held there is answered by the new owner.

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
        "--set",
        &support::player_assets_arg(),
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

/// A publisher that must be refused: it exits non-zero within 15 s, and never went live on
/// `server` meanwhile (the API may show the stream live on another pod, without a publisher).
fn expect_refused(publisher: &mut ChildGuard, server: &Server, stream: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        let s = server.stream(stream);
        assert!(
            s["publisher"].is_null(),
            "a refused publisher went live here: {s}\n{}",
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
    assert_eq!(documented.len(), 7, "{table}");
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
    a.wait_live("main", LIVE_TIMEOUT, |p| p.is_object());
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
    wait_lease_gone(&redis, "A's lease to be released");
    let pb = ffmpeg_publish(&b.dir, "b", &b.rtmp_url(KEY), "320x240", 60);
    b.wait_live("main", LIVE_TIMEOUT, |p| p.is_object());
    assert_eq!(redis.lease("main").unwrap()["owner"], b.admin.to_string());
    check_cluster_catalogue(&b);
    drop(pb);

    // A publishes `other`, and is killed: nobody releases its lease, which B respects until
    // it expires (3 s), and then B takes the stream.
    pa = ffmpeg_publish(&a.dir, "a-other", &a.rtmp_url(OTHER_KEY), "320x240", 60);
    a.wait_live("other", LIVE_TIMEOUT, |p| p.is_object());
    a.process.signal("KILL");
    a.process.expect_exit(Duration::from_secs(5));
    let killed = Instant::now();
    assert!(
        redis.lease("other").is_some(),
        "the dead pod's lease outlives it"
    );
    let _pb = publish_when_admitted(&b, "b-other", ("other", OTHER_KEY), Duration::from_secs(20));
    assert!(
        killed.elapsed() >= Duration::from_millis(1500),
        "B took the stream {:?} after A died, before its lease could expire",
        killed.elapsed()
    );
    assert_eq!(redis.lease("other").unwrap()["owner"], b.admin.to_string());
    drop(pa);
}

#[test]
fn a_redis_outage_ends_nothing_live_refuses_new_publishes_and_heals() {
    let mut redis = Redis::start();
    let a = pod(&redis);
    let b = pod(&redis);
    let _pa = ffmpeg_publish(&a.dir, "a", &a.rtmp_url(KEY), "320x240", 60);
    a.wait_live("main", LIVE_TIMEOUT, |p| p.is_object());
    // B serves A's stream, and so knows its owner.
    const SOURCE: &str = "/live/main/source/index.m3u8";
    let msn_through_b = || {
        let r = b.get(SOURCE);
        (r.status == 200)
            .then(|| support::hls::parse_media(&r.body).last_msn())
            .flatten()
    };
    let first = wait_until(LIVE_TIMEOUT, "A's stream through B", msn_through_b);

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
    // B goes on serving it from the owner it knew, with new segments.
    wait_until(
        Duration::from_secs(10),
        "new segments of A's stream through B during the outage",
        || msn_through_b().filter(|m| *m > first),
    );

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
    b.wait_live("other", LIVE_TIMEOUT, |p| p.is_object());
}

/// `(msn, part)` of the newest part a media playlist lists.
fn newest_part(text: &str) -> Option<(u64, u32)> {
    let line = text.lines().rfind(|l| l.starts_with("#EXT-X-PART:"))?;
    let name = line.split("URI=\"part-").nth(1)?.split(".m4s").next()?;
    let (msn, part) = name.split_once('.')?;
    Some((msn.parse().ok()?, part.parse().ok()?))
}

#[test]
fn any_pod_serves_a_stream_published_to_another_through_one_fetch_per_object() {
    let redis = Redis::start();
    let mut a = pod(&redis);
    let b = pod(&redis);
    let _pa = ffmpeg_publish(&a.dir, "a", &a.rtmp_url(KEY), "320x240", 60);
    a.wait_live("main", LIVE_TIMEOUT, |p| p.is_object());
    const SOURCE: &str = "/live/main/source/index.m3u8";

    // The master and media playlists, through B, once A has segments.
    let playlist = wait_until(LIVE_TIMEOUT, "a segment listed through B", || {
        let r = b.get(SOURCE);
        (r.status == 200)
            .then(|| support::hls::parse_media(&r.body))
            .filter(|p| p.segments.len() >= 2)
    });
    let master = b.get("/live/main/index.m3u8");
    assert_eq!(master.status, 200, "{}", master.body);
    assert!(master.body.contains("source/index.m3u8"), "{}", master.body);
    for (path, what) in [("/live/main/index.m3u8", "master"), (SOURCE, "media")] {
        let (ra, rb) = (a.get(path), b.get(path));
        for h in ["content-type", "cache-control"] {
            assert_eq!(ra.header(h), rb.header(h), "{what} playlist {h}");
        }
    }
    // The init segment and a segment, byte-identical to A's, with the same headers.
    let init = playlist.map_uri.clone().expect("an EXT-X-MAP");
    let segment = playlist.segments[0].uri.clone();
    for uri in [init, segment] {
        let path = format!("/live/main/source/{uri}");
        let (ra, rb) = (a.get_bytes(&path), b.get_bytes(&path));
        assert_eq!((ra.status, rb.status), (200, 200), "{path}");
        assert!(
            !rb.body.is_empty() && ra.body == rb.body,
            "{path}: B's bytes differ from A's"
        );
        for h in ["content-type", "cache-control"] {
            assert_eq!(ra.header(h), rb.header(h), "{path} {h}");
        }
    }

    // A blocking request through B for the part after A's newest returns once A has it.
    let now = a.get(SOURCE);
    let (msn, part) = newest_part(&now.body).expect("parts");
    let (want_msn, want_part) = (msn, part + 1);
    let want = format!("part-{want_msn}.{want_part}.m4s");
    let next_segment = format!("part-{}.0.m4s", msn + 1);
    // Not listed yet (the preload hint may name it: it is the part expected next).
    assert!(
        !now.body
            .lines()
            .any(|l| l.starts_with("#EXT-X-PART:") && l.contains(&want)),
        "A already lists {want}"
    );
    let blocked = b.get(&format!(
        "{SOURCE}?_HLS_msn={want_msn}&_HLS_part={want_part}"
    ));
    assert_eq!(blocked.status, 200, "{}", blocked.body);
    assert!(
        blocked.body.contains(&want) || blocked.body.contains(&next_segment),
        "the blocking reload through B returned without {want}:\n{}",
        blocked.body
    );
    let part_path = format!("/live/main/source/{}", {
        let (m, p) = newest_part(&blocked.body).unwrap();
        format!("part-{m}.{p}.m4s")
    });
    let (pa_, pb_) = (a.get_bytes(&part_path), b.get_bytes(&part_path));
    assert_eq!((pa_.status, pb_.status), (200, 200), "{part_path}");
    assert_eq!(pa_.body, pb_.body, "{part_path}");

    // B's API lists the stream as live on A.
    let s = b.stream("main");
    assert_eq!(s["live"], true, "{s}");
    assert_eq!(s["owner"], a.admin.to_string(), "{s}");
    assert!(s["publisher"].is_null(), "{s}");

    // 30 viewers poll through B for 6 s: A is asked about once per object.
    let before = b.metrics();
    let fetched = std::sync::Mutex::new(std::collections::BTreeSet::new());
    thread::scope(|scope| {
        for _ in 0..30 {
            scope.spawn(|| {
                let until = Instant::now() + Duration::from_secs(6);
                while Instant::now() < until {
                    let r = b.get(SOURCE);
                    if r.status == 200 {
                        if let Some((m, p)) = newest_part(&r.body) {
                            let uri = format!("part-{m}.{p}.m4s");
                            let got = b.get_bytes(&format!("/live/main/source/{uri}"));
                            assert_eq!(got.status, 200, "{uri}");
                            fetched.lock().unwrap().insert(uri);
                        }
                    }
                    thread::sleep(Duration::from_millis(200));
                }
            });
        }
    });
    let after = b.metrics();
    let media = |m: &support::Metrics| {
        m.value(
            "ferrocast_cluster_proxy_requests_total",
            &[("kind", "media")],
        )
    };
    let objects = fetched.lock().unwrap().len() as f64;
    let from_a = media(&after) - media(&before);
    assert!(objects >= 5.0, "the viewers fetched only {objects} parts");
    assert!(
        from_a <= 2.0 * objects,
        "{from_a} media fetches from A for {objects} objects"
    );
    let hits = after.value("ferrocast_cluster_edge_cache_total", &[("result", "hit")])
        + after.value(
            "ferrocast_cluster_edge_cache_total",
            &[("result", "coalesced")],
        );
    assert!(hits >= 30.0, "{}", after.text);

    // A dies: B answers 503 with Retry-After until the lease expires, then not live. Between
    // the two, a reload is held (up to its 10 s budget) while a publisher may come back on
    // another pod, so the 404 comes a few holds later.
    a.process.signal("KILL");
    a.process.expect_exit(Duration::from_secs(5));
    let r = b.get(SOURCE);
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("1"));
    wait_until(
        Duration::from_secs(45),
        "B to answer 404 once the lease expired",
        || (b.get(SOURCE).status == 404).then_some(()),
    );
}

/// A publisher of `stream` (with `key`) on `server` that went live there: retried (each try
/// bounded) while the server refuses it, as a publisher whose stream is still leased elsewhere
/// is.
fn publish_when_admitted(
    server: &Server,
    tag: &str,
    (stream, key): (&str, &str),
    deadline: Duration,
) -> ChildGuard {
    publish_sized_when_admitted(server, tag, (stream, key), "320x240", deadline)
}

/// As [`publish_when_admitted`], a picture of `size`.
fn publish_sized_when_admitted(
    server: &Server,
    tag: &str,
    (stream, key): (&str, &str),
    size: &str,
    deadline: Duration,
) -> ChildGuard {
    let until = Instant::now() + deadline;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut p = ffmpeg_publish(
            &server.dir,
            &format!("{tag}-{attempt}"),
            &server.rtmp_url(key),
            size,
            60,
        );
        let tried = Instant::now() + Duration::from_secs(4);
        while Instant::now() < tried && p.try_wait().is_none() {
            if !server.stream(stream)["publisher"].is_null() {
                return p;
            }
            thread::sleep(Duration::from_millis(100));
        }
        drop(p);
        assert!(
            Instant::now() < until,
            "{tag}: never admitted\n{}",
            server.logs()
        );
        thread::sleep(Duration::from_millis(300));
    }
}

/// The discontinuity numbers of a media playlist's first segment with media (not a gap) and of
/// its newest media: `EXT-X-DISCONTINUITY-SEQUENCE` (0 when absent) plus the
/// `EXT-X-DISCONTINUITY` tags before each.
fn discontinuity_numbers(text: &str) -> (Option<u64>, u64) {
    let mut n = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-DISCONTINUITY-SEQUENCE:"))
        .map_or(0, |v| v.trim().parse().expect("a number"));
    let (mut first_media, mut gap) = (None, false);
    for line in text.lines() {
        if line == "#EXT-X-DISCONTINUITY" {
            n += 1;
        } else if line == "#EXT-X-GAP" {
            gap = true;
        } else if !line.starts_with('#') && !line.is_empty() && !std::mem::take(&mut gap) {
            first_media.get_or_insert(n);
        }
    }
    (first_media, n)
}

/// The continuity hash of `stream` in `redis` (field → value; empty when there is none).
fn continuity(redis: &Redis, stream: &str) -> std::collections::HashMap<String, String> {
    let out = redis.cli(&["HGETALL", &format!("ferrocast:continuity:{stream}")]);
    let lines: Vec<&str> = out.lines().collect();
    lines
        .chunks(2)
        .filter(|kv| kv.len() == 2)
        .map(|kv| (kv[0].to_owned(), kv[1].to_owned()))
        .collect()
}

/// Publishes to a new pod A, viewed through B, until B lists three of A's segments; then
/// stops A with `signal` (its publisher with it) and publishes again to C, and checks that
/// the playlists B serves go on from A's: the sequence follows on, after one discontinuity,
/// with a new init segment, byte-identical to C's. Returns how long A's lease outlived the
/// signal.
fn publish_moves_and_continues(signal: &str) -> Duration {
    const SOURCE: &str = "/live/main/source/index.m3u8";
    let redis = Redis::start();
    let mut a = pod(&redis);
    let b = pod(&redis);
    let c = pod(&redis);
    // Two rungs (source and 360p), so that each rung's own numbering is checked.
    const SIZE: &str = "640x360";
    let pa = ffmpeg_publish(&a.dir, "a", &a.rtmp_url(KEY), SIZE, 60);
    a.wait_live("main", LIVE_TIMEOUT, |p| p.is_object());
    // B serves A's playlists; A has a few segments, the newest ones in Redis.
    wait_until(LIVE_TIMEOUT, "three segments through B", || {
        let r = b.get(SOURCE);
        (r.status == 200)
            .then(|| support::hls::parse_media(&r.body))
            .filter(|p| p.segments.len() >= 3)
    });
    // The viewers: hls.js plays B's watch page (LL-HLS) across the hand-over. After a death,
    // it skips the rest of the segment the dead owner had open (C lists it as a gap).
    support::require_browser_tools();
    let player = support::play_at(b.http, "main", "", "moved", 24, Duration::from_secs(90));
    player.wait_started(Duration::from_secs(60));
    let on_a = support::hls::parse_media(&a.get(SOURCE).body);
    // A drained owner's viewers: a blocking reload through B for the segment after A's open
    // one, held when A goes, is answered by the new owner within its hold.
    let held = (signal == "TERM").then(|| {
        let next = newest_part(&on_a.text).map_or(0, |(open, _)| open) + 1;
        let http = b.http;
        thread::spawn(move || {
            support::http_get(http, &format!("{SOURCE}?_HLS_msn={next}&_HLS_part=0"))
        })
    });
    thread::sleep(Duration::from_millis(50));
    a.process.signal(signal);
    let signalled = Instant::now();
    if signal == "KILL" {
        a.process.expect_exit(Duration::from_secs(5));
    }
    drop(pa);
    // Viewers through B never see the stream end: A's playlists stay open as it goes.
    let no_end = |r: &support::HttpResponse| {
        assert!(
            !r.body.contains("#EXT-X-ENDLIST"),
            "B ended the stream:\n{}",
            r.body
        );
    };
    // A dead owner's viewers: a playlist reload through B while A's lease lasts, and another
    // once it has expired, are held until the stream moves (not answered 503 or 404 at once).
    let reload = || {
        let http = b.http;
        thread::spawn(move || support::http_get(http, SOURCE))
    };
    let reloads = if signal == "KILL" {
        vec![reload()]
    } else {
        Vec::new()
    };
    let lease_lasted = wait_until(Duration::from_secs(10), "A's lease to go", || {
        if redis.lease("main").is_none() {
            return Some(signalled.elapsed());
        }
        // A draining owner serves on until it has handed over (a dead one's reload is held).
        if signal == "TERM" {
            no_end(&b.get(SOURCE));
        }
        None
    });
    let reloads: Vec<_> = reloads
        .into_iter()
        .chain((signal == "KILL").then(reload))
        .collect();
    let last_on_a = on_a.last_msn().expect("A's segments");
    let init_on_a = on_a.map_uri.clone().expect("A's init");
    // Where A left each rung: the state C continues (a drained owner's once it has flushed).
    let left = wait_until(Duration::from_secs(10), "A's last continuity state", || {
        let state = continuity(&redis, "main");
        let closed =
            state.contains_key("closed_msn") && state.get("closed_msn") == state.get("next_msn");
        (signal == "KILL" || closed).then_some(state)
    });
    let rungs: Vec<String> = left["rungs"].split(',').map(str::to_owned).collect();
    assert!(rungs.len() >= 2, "one rung only: {left:?}");

    // The publisher comes back on C, now that A's lease is gone.
    let _pc = publish_sized_when_admitted(&c, "c", ("main", KEY), SIZE, Duration::from_secs(20));
    let on_c = wait_until(LIVE_TIMEOUT, "C's segments through B", || {
        let r = b.get(SOURCE);
        no_end(&r);
        (r.status == 200)
            .then(|| support::hls::parse_media(&r.body))
            .filter(|p| {
                p.media().next().is_some_and(|s| s.msn > last_on_a) && p.media().count() >= 2
            })
    });
    let first_on_c = on_c.media().next().unwrap().msn;
    // After a drain, each rung goes on from its own number (one may have flushed a segment
    // more than another): none skips a number. After a death, every rung from the stream's
    // (a rung's last write may not have landed, and no number a player saw is used again).
    for rung in &rungs {
        let field = if signal == "TERM" {
            format!("msn:{rung}")
        } else {
            "next_msn".to_owned()
        };
        let want: u64 = left[&field].parse().expect("a number");
        let path = format!("/live/main/{rung}/index.m3u8");
        let pl = wait_until(LIVE_TIMEOUT, "C's rung through B", || {
            let r = b.get(&path);
            (r.status == 200)
                .then(|| support::hls::parse_media(&r.body))
                .filter(|p| {
                    p.map_uri.as_deref() != Some(init_on_a.as_str()) && p.media().next().is_some()
                })
        });
        let first = pl.media().next().unwrap().msn;
        assert_eq!(first, want, "{rung}: {left:?}\n{}", pl.text);
        // After a death, the segment the rung had open on A (and any it had not opened yet)
        // is listed as a gap before C's first; after a drain there is none.
        let gaps: Vec<u64> = pl
            .segments
            .iter()
            .filter(|s| s.gap)
            .map(|s| s.msn)
            .collect();
        let lost: Vec<u64> = match left.get(&format!("open:{rung}")) {
            Some(open) if signal == "KILL" => (open.parse().expect("a number")..want).collect(),
            _ => Vec::new(),
        };
        assert_eq!(gaps, lost, "{rung}: {left:?}\n{}", pl.text);
    }
    // The sequence goes on where A left it: after its last segment, or after the one it had
    // open (a drain finishes it; a dead owner's is skipped, as players may have cached its
    // parts). A segment that opened between the look at A and the signal moves it on by one.
    let expected = match newest_part(&on_a.text) {
        Some((open, _)) if open > last_on_a => open + 1,
        _ => last_on_a + 1,
    };
    assert!(
        (expected..=expected + 1).contains(&first_on_c),
        "A's last segment {last_on_a}, C's first {first_on_c}, expected {expected}\n{}\n{}",
        on_a.text,
        on_c.text
    );
    // After a discontinuity (a higher number than A's newest media, whose gaps C lists in
    // A's; a drained owner numbered one for its own continuation, which never came), with a
    // new init segment.
    let c_first = discontinuity_numbers(&on_c.text).0.expect("C's media");
    assert!(
        c_first > discontinuity_numbers(&on_a.text).1,
        "{}\n{}",
        on_a.text,
        on_c.text
    );
    assert_ne!(
        on_c.map_uri.as_deref(),
        Some(init_on_a.as_str()),
        "{}",
        on_c.text
    );
    let log = c.logs();
    assert!(
        log.contains("continuing the playlists another server left"),
        "{log}"
    );
    // B's bytes are C's.
    let s = on_c.media().next().unwrap().uri.clone();
    let path = format!("/live/main/source/{s}");
    let (from_b, from_c) = (b.get_bytes(&path), c.get_bytes(&path));
    assert_eq!((from_b.status, from_c.status), (200, 200), "{path}");
    assert!(
        !from_b.body.is_empty() && from_b.body == from_c.body,
        "{path}"
    );
    for r in reloads {
        let r = r.join().expect("a held reload");
        assert_eq!(r.status, 200, "a reload held across the move: {}", r.body);
        let pl = support::hls::parse_media(&r.body);
        assert!(
            !pl.ended && pl.map_uri.as_deref() != Some(init_on_a.as_str()),
            "a reload held across the move was not answered by the new owner:\n{}",
            r.body
        );
    }
    // It played on into C's media, with no error and without reloading.
    {
        let r = player.join().expect("the player");
        // The new owner is waited for while it starts: no playlist the player asks for is
        // answered as missing (players do not retry a 404). A hinted part may be (the drain
        // closed its segment before it; a dead owner's is lost).
        let missing: Vec<&serde_json::Value> = r["errorResponses"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter(|e| {
                        e.as_str()
                            .is_some_and(|e| e.starts_with("404") && e.contains(".m3u8"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            missing.is_empty(),
            "playlists 404 across the move: {missing:?}"
        );
        support::check_played_across(&r, 12.0, &b.logs());
        assert!(
            r["end"]["recovered"]
                .as_array()
                .is_none_or(|v| v.is_empty()),
            "the page reloaded: {r:#}"
        );
    }
    if let Some(held) = held {
        let r = held.join().expect("the held request");
        assert_eq!(r.status, 200, "{}", r.body);
        let pl = support::hls::parse_media(&r.body);
        // C's playlist; A's only if A had the segment before it went (a cut that raced).
        let from_c = pl.map_uri.as_deref() != Some(init_on_a.as_str());
        let next = newest_part(&on_a.text).map_or(0, |(open, _)| open) + 1;
        assert!(
            !pl.ended && (from_c || r.body.contains(&format!("part-{next}.0.m4s"))),
            "the held reload was not answered by the new owner:\n{}",
            r.body
        );
    }
    lease_lasted
}

#[test]
fn a_publish_that_comes_back_on_another_pod_continues_the_playlists() {
    let lasted = publish_moves_and_continues("KILL");
    // Nobody released it: it expired (renewed every second, with a 3 s TTL).
    assert!(lasted >= Duration::from_secs(1), "{lasted:?}");
}

#[test]
fn a_draining_owner_hands_its_stream_over_and_the_playlists_continue() {
    // SIGTERM: A ends its publish cleanly and releases the lease at once, not by its TTL.
    let lasted = publish_moves_and_continues("TERM");
    assert!(lasted < Duration::from_secs(1), "{lasted:?}");
}

/// Waits (10 s at most) until nobody holds `main`'s lease in `redis`.
fn wait_lease_gone(redis: &Redis, what: &str) {
    wait_until(Duration::from_secs(10), what, || {
        redis.lease("main").is_none().then_some(())
    });
}

/// A publisher of `main` on `a`, once `b` lists two of its segments.
fn publish_seen_through(a: &Server, b: &Server) -> ChildGuard {
    let pa = ffmpeg_publish(&a.dir, "a", &a.rtmp_url(KEY), "320x240", 60);
    a.wait_live("main", LIVE_TIMEOUT, |p| p.is_object());
    wait_until(LIVE_TIMEOUT, "two segments through B", || {
        let r = b.get("/live/main/source/index.m3u8");
        (r.status == 200)
            .then(|| support::hls::parse_media(&r.body))
            .filter(|p| p.segments.len() >= 2)
    });
    pa
}

/// The publisher of a dead owner's stream comes back on the very pod its viewers ask: a reload
/// that pod held for them while the stream was between owners is answered by its own output,
/// once that exists, within the hold (not 503 when the hold runs out).
#[test]
fn a_stream_that_moves_to_the_pod_its_viewers_ask_is_answered_there() {
    const SOURCE: &str = "/live/main/source/index.m3u8";
    let redis = Redis::start();
    let mut a = pod(&redis);
    let b = pod(&redis);
    let pa = publish_seen_through(&a, &b);
    let init_on_a = support::hls::parse_media(&a.get(SOURCE).body)
        .map_uri
        .expect("A's init");
    a.process.signal("KILL");
    a.process.expect_exit(Duration::from_secs(5));
    drop(pa);
    // A viewer's reload through B, held while the stream has no owner (10 s at most).
    let http = b.http;
    let asked = Instant::now();
    let held = thread::spawn(move || support::http_get(http, SOURCE));
    wait_lease_gone(&redis, "A's lease to expire");
    let _pb = publish_when_admitted(&b, "b", ("main", KEY), Duration::from_secs(20));
    let r = held.join().expect("the held reload");
    assert_eq!(
        r.status,
        200,
        "after {:?}: {}\n{}",
        asked.elapsed(),
        r.body,
        b.logs()
    );
    let pl = support::hls::parse_media(&r.body);
    assert!(
        !pl.ended && pl.map_uri.as_deref() != Some(init_on_a.as_str()),
        "not B's own playlist:\n{}",
        r.body
    );
}

/// The publisher leaves (a network blip) and comes back on another pod. Meanwhile its owner
/// keeps the stream paused, as one server does, and viewers through a third pod are served that
/// paused playlist, not told the stream is gone (players give up on a 404); a blocking reload
/// held for them then is answered by the new owner, whose playlists go on.
#[test]
fn a_paused_stream_is_served_through_other_pods_until_its_publisher_comes_back() {
    const SOURCE: &str = "/live/main/source/index.m3u8";
    let redis = Redis::start();
    let a = pod(&redis);
    let b = pod(&redis);
    let c = pod(&redis);
    let pa = publish_seen_through(&a, &b);
    // The publisher goes: A pauses the stream and lets its lease go at once.
    drop(pa);
    wait_lease_gone(&redis, "A's lease to go");
    // Past B's cached lookup of the owner (a second): B finds nobody holds the stream.
    thread::sleep(Duration::from_millis(1500));
    let paused = b.get(SOURCE);
    assert_eq!(paused.status, 200, "{}\n{}", paused.body, b.logs());
    let on_a = support::hls::parse_media(&paused.body);
    assert!(!on_a.ended, "B ended the paused stream:\n{}", paused.body);
    assert_eq!(b.get("/live/main/index.m3u8").status, 200);
    let init_on_a = on_a.map_uri.clone().expect("A's init");
    // A viewer's blocking reload for the next segment, held through B.
    let next = on_a.last_msn().expect("A's segments") + 1;
    let http = b.http;
    let held = thread::spawn(move || {
        support::http_get(http, &format!("{SOURCE}?_HLS_msn={next}&_HLS_part=0"))
    });
    thread::sleep(Duration::from_millis(300));
    let _pc = publish_when_admitted(&c, "c", ("main", KEY), Duration::from_secs(20));
    let r = held.join().expect("the held reload");
    assert_eq!(r.status, 200, "{}\n{}", r.body, b.logs());
    let pl = support::hls::parse_media(&r.body);
    assert!(
        !pl.ended && pl.map_uri.as_deref() != Some(init_on_a.as_str()),
        "the held reload was not answered by the new owner:\n{}",
        r.body
    );
    // B's playlists are C's now, going on after A's.
    let on_c = wait_until(LIVE_TIMEOUT, "C's segments through B", || {
        let r = b.get(SOURCE);
        (r.status == 200)
            .then(|| support::hls::parse_media(&r.body))
            .filter(|p| p.map_uri.as_deref() != Some(init_on_a.as_str()))
            .filter(|p| p.media().next().is_some())
    });
    assert_eq!(
        on_c.media().next().map(|s| s.msn),
        Some(next),
        "{}",
        on_c.text
    );
}

/// A publisher that leaves its pod and comes back on the pod its viewers ask: a player behind
/// the live edge still gets the segments only the first pod made, through the second (which
/// asks the first: it keeps its paused output), byte for byte, and through the first.
#[test]
fn a_stream_that_moved_here_serves_what_only_its_last_owner_had() {
    const SOURCE: &str = "/live/main/source/index.m3u8";
    let redis = Redis::start();
    let a = pod(&redis);
    let b = pod(&redis);
    let pa = publish_seen_through(&a, &b);
    let on_a = support::hls::parse_media(&a.get(SOURCE).body);
    let first = on_a.media().next().expect("A's segments").uri.clone();
    let path = format!("/live/main/source/{first}");
    let from_a = a.get_bytes(&path);
    assert_eq!(from_a.status, 200, "{path}");
    drop(pa);
    wait_lease_gone(&redis, "A's lease to go");
    let _pb = publish_when_admitted(&b, "b", ("main", KEY), Duration::from_secs(20));
    wait_until(LIVE_TIMEOUT, "B's own segments", || {
        let r = b.get(SOURCE);
        (r.status == 200)
            .then(|| support::hls::parse_media(&r.body))
            .filter(|p| p.map_uri != on_a.map_uri && p.media().next().is_some())
    });
    let through_b = b.get_bytes(&path);
    assert_eq!(through_b.status, 200, "{path}\n{}", b.logs());
    assert!(
        !through_b.body.is_empty() && through_b.body == from_a.body,
        "{path}"
    );
    // And A's own viewers still get it from A (B never had it).
    let again = a.get_bytes(&path);
    assert_eq!(again.status, 200, "{path}\n{}", a.logs());
    assert!(again.body == from_a.body, "{path}");
}

#[test]
fn a_publish_that_comes_back_after_the_window_starts_new_playlists() {
    const SOURCE: &str = "/live/main/source/index.m3u8";
    let redis = Redis::start();
    let short = |redis: &Redis| {
        Server::start(&[
            "--stream",
            &format!("main={KEY}"),
            "--set",
            &format!("cluster.redis_url={}", redis.url()),
            "--set",
            "cluster.lease_ttl=3s",
            "--set",
            "ingest.reconnect_window=2s",
        ])
    };
    let a = short(&redis);
    let c = short(&redis);
    let mut pa = ffmpeg_publish(&a.dir, "a", &a.rtmp_url(KEY), "320x240", 4);
    a.wait_live("main", LIVE_TIMEOUT, |p| p.is_object());
    let on_a = wait_until(LIVE_TIMEOUT, "A's playlist to end", || {
        let r = a.get(SOURCE);
        (r.status == 200)
            .then(|| support::hls::parse_media(&r.body))
            .filter(|p| p.ended)
    });
    pa.expect_exit(Duration::from_secs(10));
    // Past the window: the continuity has expired with it.
    thread::sleep(Duration::from_secs(2));
    let _pc = publish_when_admitted(&c, "c", ("main", KEY), Duration::from_secs(20));
    let on_c = wait_until(LIVE_TIMEOUT, "C's segments", || {
        let r = c.get(SOURCE);
        (r.status == 200)
            .then(|| support::hls::parse_media(&r.body))
            .filter(|p| !p.segments.is_empty())
    });
    assert_eq!(
        discontinuity_numbers(&on_c.text),
        (Some(0), 0),
        "{}",
        on_c.text
    );
    let log = c.logs();
    assert!(
        !log.contains("continuing the playlists another server left"),
        "{log}"
    );
    assert_ne!(on_c.first_msn(), on_a.last_msn().map(|m| m + 1));
}
