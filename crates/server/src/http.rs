//! The HTTP surface: health, readiness, metrics and the JSON API.
//!
//! [`router`] builds the axum router from [`AppState`]; [`serve`] runs it on a listener with a
//! connection limit until shutdown. Request metrics are labelled with the matched route template,
//! so a scan of random paths cannot grow the label set.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::{HttpLabels, Metrics, RouteLabel, RouteLabels};
use crate::registry::StreamRegistry;

/// Content type of `/metrics`.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Shared state of every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Streams and publishers.
    pub registry: Arc<StreamRegistry>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// False once shutdown began: `/readyz` answers 503.
    pub ready: Arc<AtomicBool>,
    /// `Access-Control-Allow-Origin` value, if CORS is on.
    pub cors_allow_origin: Option<HeaderValue>,
    /// Player assets.
    pub assets: Arc<Assets>,
    /// Every stream's HLS output.
    pub outputs: Arc<crate::transcode::Outputs>,
    /// Configured segment duration (bounds the waits of playlist requests).
    pub segment_duration: std::time::Duration,
}

/// The player page's files. Pages, script and style are compiled in; hls.js is read once at
/// start from `http.assets_dir`, where npm put it.
#[derive(Debug, Default)]
pub struct Assets {
    hls_js: Option<bytes::Bytes>,
}

impl Assets {
    /// Loads hls.js from `dir`; without it the page falls back to native HLS.
    pub fn load(dir: &str) -> Assets {
        let path = std::path::Path::new(dir).join("hls.min.js");
        match std::fs::read(&path) {
            Ok(b) => Assets {
                hls_js: Some(b.into()),
            },
            Err(e) => {
                tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "hls.js not found: the player page can only use native HLS; run `npm ci --prefix player` or set http.assets_dir"
                );
                Assets::default()
            }
        }
    }
}

const INDEX_HTML: &str = include_str!("../assets/index.html");
const WATCH_HTML: &str = include_str!("../assets/watch.html");
const WATCH_JS: &str = include_str!("../assets/watch.js");
const PLAYER_CSS: &str = include_str!("../assets/player.css");

/// Builds the router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/streams", get(list_streams))
        .route("/api/v1/streams/{name}", get(get_stream))
        .route("/api/v1/capabilities", get(capabilities))
        .route("/", get(index_page))
        .route("/watch/{name}", get(watch_page))
        .route("/assets/{file}", get(asset))
        .route("/live/{name}/index.m3u8", get(crate::playback::master))
        .route("/live/{name}/{*path}", get(crate::playback::resource))
        .route_layer(middleware::from_fn_with_state(state.clone(), track))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), cors))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
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
    Json(serde_json::json!({ "streams": state.registry.snapshot() })).into_response()
}

async fn get_stream(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match state
        .registry
        .snapshot()
        .into_iter()
        .find(|s| s.name.as_str() == name)
    {
        Some(s) => Json(s).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such stream"),
    }
}

/// The accelerator probe, the selected chain and why, encoder sessions, and each stream's
/// backends per rung.
async fn capabilities(State(state): State<AppState>) -> Response {
    match state.outputs.accelerator() {
        Some(acc) => {
            Json(crate::transcode::capabilities_json(&acc, &state.outputs)).into_response()
        }
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the transcoder has not probed yet",
        ),
    }
}

async fn index_page() -> Response {
    page(INDEX_HTML)
}

async fn watch_page(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    if state.registry.has_stream(&name) {
        page(WATCH_HTML)
    } else {
        error(StatusCode::NOT_FOUND, "no such stream")
    }
}

fn page(html: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html,
    )
        .into_response()
}

async fn asset(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let (content_type, body): (&str, bytes::Bytes) = match file.as_str() {
        "watch.js" => ("text/javascript; charset=utf-8", WATCH_JS.into()),
        "player.css" => ("text/css; charset=utf-8", PLAYER_CSS.into()),
        "hls.min.js" => match &state.assets.hls_js {
            Some(b) => ("text/javascript; charset=utf-8", b.clone()),
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    "hls.js is not installed on this server",
                )
            }
        },
        _ => return error(StatusCode::NOT_FOUND, "not found"),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

async fn not_found(State(state): State<AppState>, method: Method) -> Response {
    state
        .metrics
        .http_requests
        .get_or_create(&HttpLabels {
            route: "unmatched",
            method: method_label(&method),
            status: 404,
        })
        .inc();
    error(StatusCode::NOT_FOUND, "not found")
}

pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    // Errors describe a moment (not live yet, starting, gone): no cache or CDN may keep them.
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "error": message })),
    )
        .into_response()
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
    let m = &state.metrics;
    // Every body here is built whole, so its size is exact; a streamed one counts its lower bound.
    // A HEAD response's body is never sent.
    let hint = axum::body::HttpBody::size_hint(response.body());
    let bytes = if method == "HEAD" {
        0
    } else {
        hint.exact().unwrap_or(hint.lower())
    };
    m.http_response_bytes
        .get_or_create(&RouteLabel { route })
        .inc_by(bytes);
    m.http_duration
        .get_or_create(&RouteLabels { route, method })
        .observe(start.elapsed().as_secs_f64());
    m.http_requests
        .get_or_create(&HttpLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
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

/// A TCP listener that holds at most `max` connections open; more wait in the accept backlog.
#[derive(Debug)]
pub struct LimitedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
}

impl LimitedListener {
    /// Wraps a bound listener.
    pub fn new(inner: TcpListener, max: usize) -> Self {
        LimitedListener {
            inner,
            permits: Arc::new(Semaphore::new(max)),
        }
    }
}

/// A connection that returns its permit when dropped.
#[derive(Debug)]
pub struct LimitedStream {
    inner: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl axum::serve::Listener for LimitedListener {
    type Io = LimitedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let permit = self
                .permits
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore never closed");
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (
                        LimitedStream {
                            inner: stream,
                            _permit: permit,
                        },
                        addr,
                    );
                }
                Err(e) => {
                    // Out of descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StreamConfig;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use std::time::Duration;
    use tower::ServiceExt;

    fn state() -> AppState {
        let metrics = Metrics::new();
        let registry = StreamRegistry::new(
            vec![StreamConfig {
                name: "main".parse().unwrap(),
                key: "secret-key".into(),
                passphrase: String::new(),
            }],
            Duration::from_secs(5),
            metrics.clone(),
        );
        AppState {
            registry,
            metrics,
            ready: Arc::new(AtomicBool::new(true)),
            cors_allow_origin: Some(HeaderValue::from_static("*")),
            assets: Arc::new(Assets {
                hls_js: Some(bytes::Bytes::from_static(b"/* hls */")),
            }),
            outputs: crate::transcode::Outputs::new(Duration::from_secs(60)),
            segment_duration: Duration::from_secs(2),
        }
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
        let app = router(st.clone());
        assert_eq!(get(&app, "/healthz").await.0, StatusCode::OK);
        assert_eq!(get(&app, "/readyz").await.0, StatusCode::OK);
        st.ready.store(false, Ordering::SeqCst);
        let (status, _, body) = get(&app, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "draining\n");
        assert_eq!(
            get(&app, "/healthz").await.0,
            StatusCode::OK,
            "liveness is not readiness"
        );
    }

    #[tokio::test]
    async fn metrics_are_openmetrics_with_route_templates() {
        let app = router(state());
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
    async fn streams_api_never_shows_keys() {
        let app = router(state());
        let (status, headers, body) = get(&app, "/api/v1/streams").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["streams"][0]["name"], "main");
        assert_eq!(v["streams"][0]["live"], false);
        assert!(!body.contains("secret-key"));
    }

    #[tokio::test]
    async fn player_pages_and_assets() {
        let app = router(state());
        let (status, headers, body) = get(&app, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(body.contains("/api/v1/streams"));
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
        let app = router(state());
        for uri in [
            "/nope",
            "/../etc/passwd",
            "/api/v1/streams/..%2F..%2Fetc%2Fpasswd",
            "/api/v1/streams/main/../../metrics",
            "/%2e%2e/%2e%2e/etc/passwd",
        ] {
            let (status, _, body) = get(&app, uri).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
            assert!(!body.contains("root:"), "{uri}");
        }
    }
}
