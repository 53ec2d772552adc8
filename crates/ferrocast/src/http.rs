//! The HTTP surface, on two listeners: [`public_router`] serves playback (`listen.http`), and
//! [`admin_router`] health, readiness, metrics and the JSON API (`listen.admin`).
//!
//! Each path answers on one listener only. Request metrics are labelled with the matched route
//! template, so a scan of random paths cannot grow the label set.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ingest::StreamRegistry;
use playback::{error, Playback};
use transcode::Transcoder;

use crate::health::Health;
use crate::metrics::{HttpMetrics, Metrics, OPENMETRICS_CONTENT_TYPE};
use crate::supervise::Faults;
#[cfg(debug_assertions)]
use crate::supervise::Listener;

/// Shared state of the wiring's handlers.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Streams and publishers.
    pub registry: Arc<StreamRegistry>,
    /// The transcoder (its hardware and outputs, for the capabilities API).
    pub transcoder: Arc<Transcoder>,
    /// Playback: HLS and the player page.
    pub playback: Arc<Playback>,
    /// Every registered metric, for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// HTTP request metrics.
    pub http_metrics: Arc<HttpMetrics>,
    /// The listeners, the drain and the pipelines, for `/healthz` and `/readyz`.
    pub health: Arc<Health>,
    /// Test-only fault injection (debug builds with `TESTING_FERROCAST_FAULTS=1`).
    pub faults: Option<Arc<Faults>>,
    /// `Access-Control-Allow-Origin` value, if CORS is on.
    pub cors_allow_origin: Option<HeaderValue>,
    /// `api.token`: the bearer token `/api/v1` requires, if set.
    pub api_token: Option<ApiToken>,
    /// Cluster mode: this pod's leases and store.
    pub cluster: Option<crate::cluster::ClusterNode>,
}

/// `api.token`, redacted in `Debug` (the state is printed in debug logs and panics).
#[derive(Clone)]
pub struct ApiToken(Arc<str>);

impl ApiToken {
    /// The token `token`, or none when it is empty.
    pub fn new(token: &str) -> Option<ApiToken> {
        let t = token.trim();
        (!t.is_empty()).then(|| ApiToken(Arc::from(t)))
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// The public listener's router (`listen.http`): the player and HLS, and the names of the live
/// streams (`/streams.json`). The API, metrics and probes answer 404 here; the first time one
/// is asked for, the log says they moved to the admin listener at `admin`, for Prometheus jobs
/// and probes set up before it existed.
pub fn public_router(state: AppState, admin: SocketAddr) -> Router {
    let warned = Arc::new(AtomicBool::new(false));
    let moved = move |req: Request| {
        let warned = warned.clone();
        async move {
            if !warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    path = %req.uri().path(),
                    admin = %admin,
                    "the API, /metrics, /healthz and /readyz moved to the admin listener \
                     (listen.admin) and answer 404 on listen.http: point Prometheus, probes and \
                     API clients there (logged once)"
                );
            }
            error(StatusCode::NOT_FOUND, "not found")
        }
    };
    let mut router = playback::routes(state.playback.clone());
    for path in ["/metrics", "/healthz", "/readyz", "/api", "/api/{*rest}"] {
        router = router.route(path, axum::routing::any(moved.clone()));
    }
    // CORS lets any web page read the answers: playback's only (the API names publishers'
    // addresses; a page in a browser that can reach the admin listener must not read it).
    router
        .route_layer(middleware::from_fn_with_state(state.clone(), track))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), cors))
        .with_state(state)
}

/// The admin listener's router (`listen.admin`): `/api/v1` (behind `api.token` when set),
/// `/metrics`, `/healthz`, `/readyz` and the test-only fault hooks; playback answers 404 here.
pub fn admin_router(state: AppState) -> Router {
    admin_routes(&state)
        .route_layer(middleware::from_fn_with_state(state.clone(), track))
        .fallback(not_found)
        .with_state(state)
}

fn admin_routes(state: &AppState) -> Router<AppState> {
    let router = Router::new();
    #[cfg(debug_assertions)]
    let router = match state.faults {
        Some(_) => router
            .route(
                "/testing/faults/listener/{name}",
                axum::routing::post(kill_listener),
            )
            .route(
                "/testing/faults/shed/{stream}/{rung}",
                axum::routing::post(force_shed),
            ),
        None => router,
    };
    let api = Router::new()
        .route("/api/v1/streams", get(list_streams))
        .route("/api/v1/streams/{name}", get(get_stream))
        .route("/api/v1/capabilities", get(capabilities))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    let router = router
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(api);
    // Cluster mode: the other pods ask for this pod's streams here (never through its proxy).
    match &state.cluster {
        Some(_) => router.merge(playback::peer_routes(
            state.transcoder.outputs().clone(),
            state.playback.budget(),
        )),
        None => router,
    }
}

/// With `api.token` set, a request needs `Authorization: Bearer TOKEN`: 401 otherwise, with
/// nothing about the token in the answer or the log.
async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(ApiToken(expected)) = state.api_token.as_ref() else {
        return next.run(req).await;
    };
    // `Bearer TOKEN`; the scheme is case-insensitive (RFC 9110 11.1).
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token.trim());
    if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        next.run(req).await
    } else {
        let mut r = error(StatusCode::UNAUTHORIZED, "a valid API token is required");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"ferrocast\""),
        );
        r
    }
}

/// Compares in time that depends on the lengths only, never on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

async fn healthz(State(state): State<AppState>) -> Response {
    let (status, report) = state.health.liveness();
    (status, Json(report)).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    let (status, report) = state.health.readiness();
    (status, Json(report)).into_response()
}

/// `POST /testing/faults/listener/{name}?down_for_ms=N`: kills that listener's task, which its
/// supervisor starts again N ms later (default 0). Debug builds with fault injection only.
#[cfg(debug_assertions)]
async fn kill_listener(
    State(state): State<AppState>,
    Path(name): Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let Some(faults) = &state.faults else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let Some(listener) = Listener::from_name(&name) else {
        return error(StatusCode::NOT_FOUND, "no such listener");
    };
    let down_for = match q.get("down_for_ms").map(|v| v.parse::<u64>()) {
        None => 0,
        Some(Ok(ms)) => ms,
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "down_for_ms is not a number"),
    };
    tracing::warn!(
        listener = name,
        down_for_ms = down_for,
        "fault injection: killing the listener task"
    );
    faults.kill(listener, std::time::Duration::from_millis(down_for));
    (StatusCode::ACCEPTED, "killed\n").into_response()
}

/// `POST /testing/faults/shed/{stream}/{rung}?shed=0|1`: sheds that rung of a live stream as
/// overload would (default), or brings it back. Debug builds with fault injection only.
#[cfg(debug_assertions)]
async fn force_shed(
    State(state): State<AppState>,
    Path((stream, rung)): Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    if state.faults.is_none() {
        return error(StatusCode::NOT_FOUND, "not found");
    }
    let shed = match q.get("shed").map(String::as_str) {
        None | Some("1") => true,
        Some("0") => false,
        Some(_) => return error(StatusCode::BAD_REQUEST, "shed is 0 or 1"),
    };
    let Some(output) = state
        .transcoder
        .outputs()
        .get(&stream)
        .filter(|o| !o.is_over())
    else {
        return error(StatusCode::NOT_FOUND, "no such live stream");
    };
    match output.request_shed(&rung, shed) {
        Ok(()) => {
            tracing::warn!(stream, rung, shed, "fault injection: shedding a rung");
            (StatusCode::ACCEPTED, "requested\n").into_response()
        }
        Err(e) => error(StatusCode::NOT_FOUND, &e.to_string()),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}

async fn list_streams(State(state): State<AppState>) -> Response {
    let mut streams = Vec::new();
    for s in state.registry.snapshot() {
        streams.push(stream_json(&state, s).await);
    }
    Json(serde_json::json!({ "streams": streams })).into_response()
}

async fn get_stream(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match state
        .registry
        .snapshot()
        .into_iter()
        .find(|s| s.name.as_str() == name)
    {
        Some(s) => Json(stream_json(&state, s).await).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such stream"),
    }
}

/// A stream as the API shows it: the registry's snapshot, and the rungs of its output while it
/// is packaged (empty otherwise). In cluster mode, `owner` names the pod that has it live (this
/// one's advertise address, another's, or null), and a stream live on another pod is `live`
/// here too, without its publisher (that pod's API shows it).
async fn stream_json(state: &AppState, s: ingest::StreamSnapshot) -> serde_json::Value {
    let owner = match &state.cluster {
        Some(node) if s.live => Some(Some(node.leases.advertise().to_owned())),
        Some(node) => Some(
            node.proxy
                .remote_owner(s.name.as_str())
                .await
                .map(|l| l.owner),
        ),
        None => None,
    };
    let rungs = state
        .transcoder
        .outputs()
        .get(s.name.as_str())
        .filter(|o| !o.is_over())
        .map_or_else(|| serde_json::json!([]), |o| transcode::rungs_json(&o));
    let mut v = serde_json::to_value(s).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.insert("rungs".into(), rungs);
        if let Some(owner) = owner {
            if owner.is_some() {
                m.insert("live".into(), true.into());
            }
            m.insert("owner".into(), owner.into());
        }
    }
    v
}

/// The accelerator probe, the selected chain and why, encoder sessions, and each stream's
/// backends per rung.
async fn capabilities(State(state): State<AppState>) -> Response {
    let t = &state.transcoder;
    Json(transcode::capabilities_json(t.hardware(), t.outputs())).into_response()
}

async fn not_found(State(state): State<AppState>, method: Method) -> Response {
    state
        .http_metrics
        .counted("unmatched", method_label(&method), 404);
    error(StatusCode::NOT_FOUND, "not found")
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

/// The route template as a `'static` label, so that recording a request allocates nothing.
/// Templates come from the router (a dozen), so the set kept here is bounded by it.
fn route_label(template: &str) -> &'static str {
    static ROUTES: std::sync::RwLock<Vec<&'static str>> = std::sync::RwLock::new(Vec::new());
    let known = |routes: &[&'static str]| routes.iter().copied().find(|r| *r == template);
    if let Some(r) = known(&ROUTES.read().unwrap_or_else(|e| e.into_inner())) {
        return r;
    }
    let mut routes = ROUTES.write().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = known(&routes) {
        return r;
    }
    let r: &'static str = Box::leak(template.to_owned().into_boxed_str());
    routes.push(r);
    r
}

/// Records request count, duration and response bytes under the matched route template.
async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| route_label(p.as_str()));
    let method = method_label(req.method());
    let response = next.run(req).await;
    // Every body here is built whole, so its size is exact; a streamed one counts its lower bound.
    // A HEAD response's body is never sent.
    let hint = axum::body::HttpBody::size_hint(response.body());
    let bytes = if method == "HEAD" {
        0
    } else {
        hint.exact().unwrap_or(hint.lower())
    };
    state.http_metrics.request(
        route,
        method,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
        bytes,
    );
    response
}

async fn cors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    if let Some(origin) = &state.cors_allow_origin {
        response
            .headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use ingest::StreamConfig;
    use tower::ServiceExt;
    use transcode::Hardware;

    /// No hardware element exists: the software chain.
    struct NoHardware;

    impl pipeline::accel::ElementRegistry for NoHardware {
        fn has(&self, _factory: &str) -> bool {
            false
        }
        fn can_open(&self, _factory: &str) -> bool {
            false
        }
    }

    /// The wired service's state, with one stream and a stand-in hls.js.
    fn state() -> AppState {
        let assets = std::env::temp_dir().join(format!(
            "ferrocast-http-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&assets).unwrap();
        std::fs::write(assets.join("hls.min.js"), "/* hls */").unwrap();
        let mut config = Config::default();
        config.http.assets_dir = assets.display().to_string();
        let streams = vec![StreamConfig {
            name: "main".parse().unwrap(),
            key: "secret-key".into(),
            passphrase: String::new(),
        }];
        let hardware = Hardware::from_registry(&config.transcode, &config.nvidia, &NoHardware);
        let admin = "127.0.0.1:9091".parse().unwrap();
        let wired = crate::wire(&config, streams, hardware, admin).unwrap();
        std::fs::remove_dir_all(&assets).unwrap();
        wired.state
    }

    async fn get(app: &Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let res = app
            .clone()
            .oneshot(Request::builder().uri(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn health_and_readiness() {
        let st = state();
        let app = admin_router(st.clone());
        // Nothing serves until the listeners' tasks start.
        let (status, _, body) = get(&app, "/healthz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        st.health.rtmp.up();
        st.health.srt.up();
        let (status, headers, body) = get(&app, "/healthz").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        let (status, _, body) = get(&app, "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        let report: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(report["status"], "ready");
        assert_eq!(report["listeners"]["rtmp"]["state"], "up");
        assert_eq!(report["pipelines"]["running"], 0);
        st.health.start_drain();
        let (status, _, body) = get(&app, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let report: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(report["status"], "draining");
        assert_eq!(
            get(&app, "/healthz").await.0,
            StatusCode::OK,
            "liveness is not readiness"
        );
        // Without fault injection there is no testing route.
        assert!(st.faults.is_none());
        let res = app
            .clone()
            .oneshot(
                Request::builder()
                    .method(Method::POST)
                    .uri("/testing/faults/listener/rtmp")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_ne!(res.status(), StatusCode::ACCEPTED);
    }

    #[tokio::test]
    async fn metrics_are_openmetrics_with_route_templates() {
        let app = admin_router(state());
        get(&app, "/api/v1/streams/main").await;
        get(&app, "/api/v1/streams/other").await;
        get(&app, "/no/such/path").await;
        let (status, headers, body) = get(&app, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], OPENMETRICS_CONTENT_TYPE);
        assert!(body.ends_with("# EOF\n"), "{body}");
        assert!(body.contains("ferrocast_build_info{version=\""), "{body}");
        assert!(body.contains(
            "ferrocast_http_requests_total{route=\"/api/v1/streams/{name}\",method=\"GET\",status=\"200\"} 1"
        ), "{body}");
        assert!(body.contains(
            "ferrocast_http_requests_total{route=\"/api/v1/streams/{name}\",method=\"GET\",status=\"404\"} 1"
        ), "{body}");
        assert!(
            body.contains("route=\"unmatched\",method=\"GET\",status=\"404\"} 1"),
            "{body}"
        );
        assert!(
            !body.contains("/no/such/path"),
            "raw paths never become labels"
        );
        assert!(!body.contains("route=\"/api/v1/streams/main\""));
        assert!(body.contains("process_resident_memory_bytes "), "{body}");
        assert!(body.contains("process_cpu_seconds_total "), "{body}");
        assert!(
            body.contains("ferrocast_stream_live{stream=\"main\"} 0"),
            "{body}"
        );
        assert!(
            body.contains("ferrocast_active_publishers{protocol=\"rtmp\"} 0"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn each_path_answers_on_its_own_listener() {
        let st = state();
        st.health.rtmp.up();
        st.health.srt.up();
        let public = public_router(st.clone(), ([127, 0, 0, 1], 9091).into());
        let admin = admin_router(st.clone());
        let admin_paths = [
            "/healthz",
            "/readyz",
            "/metrics",
            "/api/v1/streams",
            "/api/v1/streams/main",
            "/api/v1/capabilities",
        ];
        let public_paths = [
            "/",
            "/watch/main",
            "/assets/watch.js",
            "/assets/player.css",
            "/assets/hls.min.js",
            "/streams.json",
        ];
        for path in admin_paths {
            assert_eq!(
                get(&public, path).await.0,
                StatusCode::NOT_FOUND,
                "public {path}"
            );
            assert_eq!(get(&admin, path).await.0, StatusCode::OK, "admin {path}");
        }
        for path in public_paths {
            assert_eq!(get(&public, path).await.0, StatusCode::OK, "public {path}");
            assert_eq!(
                get(&admin, path).await.0,
                StatusCode::NOT_FOUND,
                "admin {path}"
            );
        }
        // CORS on playback only: no web page may read the admin listener's answers.
        let (_, headers, _) = get(&admin, "/api/v1/streams").await;
        assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        let (_, headers, _) = get(&public, "/streams.json").await;
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        // The public list names live streams only: none is live here.
        let (_, _, body) = get(&public, "/streams.json").await;
        assert_eq!(body, r#"{"streams":[]}"#);
    }

    #[tokio::test]
    async fn the_api_needs_the_token_when_one_is_set() {
        let mut st = state();
        st.api_token = ApiToken::new("s3cret-token");
        assert!(!format!("{st:?}").contains("s3cret"), "the token in Debug");
        let admin = admin_router(st);
        let call = |auth: Option<&'static str>, uri: &'static str| {
            let admin = admin.clone();
            async move {
                let mut req = Request::builder().uri(uri);
                if let Some(a) = auth {
                    req = req.header(header::AUTHORIZATION, a);
                }
                let res = admin
                    .oneshot(req.body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                let status = res.status();
                let challenge = res.headers().get(header::WWW_AUTHENTICATE).cloned();
                let body = res.into_body().collect().await.unwrap().to_bytes();
                (
                    status,
                    challenge,
                    String::from_utf8_lossy(&body).into_owned(),
                )
            }
        };
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Bearer s3cret-toke"),
            Some("Bearer s3cret-token-and-more"),
            Some("Basic czNjcmV0LXRva2Vu"),
            Some("s3cret-token"),
        ] {
            for uri in [
                "/api/v1/streams",
                "/api/v1/streams/main",
                "/api/v1/capabilities",
            ] {
                let (status, challenge, body) = call(auth, uri).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} with {auth:?}");
                assert!(challenge.is_some(), "{uri}: no WWW-Authenticate");
                assert!(!body.contains("s3cret"), "{body}");
            }
        }
        for auth in [
            "Bearer s3cret-token",
            "bearer s3cret-token",
            "BEARER  s3cret-token ",
        ] {
            let (status, _, body) = call(Some(auth), "/api/v1/streams").await;
            assert_eq!(status, StatusCode::OK, "{auth}: {body}");
        }
        // Probes and Prometheus need no token.
        for uri in ["/metrics", "/readyz", "/healthz"] {
            assert_ne!(call(None, uri).await.0, StatusCode::UNAUTHORIZED, "{uri}");
        }
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(constant_time_eq(b"", b""));
        for other in [&b"abd"[..], b"ab", b"abcd", b"", b"ABC"] {
            assert!(!constant_time_eq(b"abc", other), "{other:?}");
        }
    }

    #[tokio::test]
    async fn streams_api_never_shows_keys() {
        let app = admin_router(state());
        let (status, headers, body) = get(&app, "/api/v1/streams").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["streams"][0]["name"], "main");
        assert_eq!(v["streams"][0]["live"], false);
        assert!(!body.contains("secret-key"));
    }

    #[tokio::test]
    async fn player_pages_and_assets() {
        let app = public_router(state(), ([127, 0, 0, 1], 9091).into());
        let (status, headers, body) = get(&app, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        // The page lists streams from the public list, never from the admin API.
        assert!(body.contains("/streams.json") && !body.contains("/api/"));
        let (status, _, body) = get(&app, "/watch/main").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("/assets/hls.min.js") && body.contains("/assets/watch.js"));
        let (status, headers, _) = get(&app, "/watch/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        let (status, headers, body) = get(&app, "/assets/hls.min.js").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(body, "/* hls */");
        assert_eq!(get(&app, "/assets/watch.js").await.0, StatusCode::OK);
        assert_eq!(
            get(&app, "/assets/..%2Fsrc%2Fhttp.rs").await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get(&app, "/assets/index.html").await.0,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn unknown_and_traversal_paths_are_404() {
        let st = state();
        for app in [
            admin_router(st.clone()),
            public_router(st, ([127, 0, 0, 1], 9091).into()),
        ] {
            for uri in [
                "/nope",
                "/../etc/passwd",
                "/api/v1/streams/..%2F..%2Fetc%2Fpasswd",
                "/api/v1/streams/main/../../metrics",
                "/live/main/../../metrics",
                "/%2e%2e/%2e%2e/etc/passwd",
            ] {
                let (status, _, body) = get(&app, uri).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
                assert!(!body.contains("root:"), "{uri}");
            }
        }
    }
}
