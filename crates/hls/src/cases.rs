//! One table of request paths, good and bad, with the [`Resource`] each should parse to. The
//! unit tests run it, and the `fuzz/` crate can write the paths out as seeds.

use crate::resource::Resource;

/// A request path tail and what [`Resource::parse`] should make of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathCase {
    /// The path below the stream's mount point.
    pub path: &'static str,
    /// The resource, or `None` when the path must be rejected.
    pub expect: Option<Resource>,
}

fn ok(path: &'static str, expect: Resource) -> PathCase {
    PathCase {
        path,
        expect: Some(expect),
    }
}

fn bad(path: &'static str) -> PathCase {
    PathCase { path, expect: None }
}

/// The table.
pub fn path_cases() -> Vec<PathCase> {
    let r = |s: &str| s.to_owned();
    vec![
        ok("index.m3u8", Resource::Master),
        ok("720p/index.m3u8", Resource::Media(r("720p"))),
        ok("source/init.mp4", Resource::Init(r("source"), 0)),
        ok("source/init-3.mp4", Resource::Init(r("source"), 3)),
        ok("720p/seg-12.m4s", Resource::Segment(r("720p"), 12)),
        ok("720p/seg-0.m4s", Resource::Segment(r("720p"), 0)),
        ok(
            "a_b-C/seg-18446744073709551615.m4s",
            Resource::Segment(r("a_b-C"), u64::MAX),
        ),
        ok("720p/part-12.3.m4s", Resource::Part(r("720p"), 12, 3)),
        ok("720p/part-0.0.m4s", Resource::Part(r("720p"), 0, 0)),
        ok(
            "x/part-1.4294967295.m4s",
            Resource::Part(r("x"), 1, u32::MAX),
        ),
        bad(""),
        bad("/"),
        bad("/index.m3u8"),
        bad("index.m3u8/"),
        bad("INDEX.M3U8"),
        bad("720p"),
        bad("720p/"),
        bad("720p/index.m3u"),
        bad("720p/init-0.mp4"),
        bad("720p/init-01.mp4"),
        bad("720p/init-.mp4"),
        bad("/720p/index.m3u8"),
        bad("720p//index.m3u8"),
        bad("720p/index.m3u8?x=1"),
        bad("../720p/index.m3u8"),
        bad("720p/../index.m3u8"),
        bad("./index.m3u8"),
        bad("%2e%2e/init.mp4"),
        bad("72%30p/init.mp4"),
        bad("7 20p/init.mp4"),
        bad("720p\\init.mp4"),
        bad("720p/seg-.m4s"),
        bad("720p/seg-01.m4s"),
        bad("720p/seg-00.m4s"),
        bad("720p/seg-+1.m4s"),
        bad("720p/seg--1.m4s"),
        bad("720p/seg-1 .m4s"),
        bad("720p/seg-1.mp4"),
        bad("720p/seg-1.m4s.m4s"),
        bad("720p/seg-18446744073709551616.m4s"),
        bad("720p/seg-99999999999999999999999999.m4s"),
        bad("720p/seg-１.m4s"),
        bad("720p/part-1.m4s"),
        bad("720p/part-1..m4s"),
        bad("720p/part-.1.m4s"),
        bad("720p/part-1.01.m4s"),
        bad("720p/part-1.2.3.m4s"),
        bad("720p/part-1.4294967296.m4s"),
        bad("720p/seg-1.m4s/x"),
        bad("a/b/seg-1.m4s"),
        bad("é/init.mp4"),
        bad("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/init.mp4"),
    ]
}
