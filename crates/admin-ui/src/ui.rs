//! The UI itself: the built files of the npm package `@socket.io/admin-ui`
//! (`ui/dist`, MIT, vendored in `ui/` with its LICENSE by
//! `scripts/update-admin-ui.sh`), embedded in the binary and served under
//! a base path (`/admin/`).
//!
//! - Its bundles have content hashes in their names (`js/app.0d7d7845.js`):
//!   cached for a year, `immutable`. `index.html` and the favicon are
//!   revalidated (`no-cache`), so a new version shows at the next load.
//! - The page refers to its files relatively (`publicPath: "./"`), so it
//!   works under any base path that ends with `/`; the base without the
//!   slash redirects to it.
//! - The UI asks for a server URL and keeps it in `localStorage`; on a first
//!   visit (nothing kept) the page served here presets it to the page's
//!   own origin, the engine path and the admin namespace of this server,
//!   so the login form only wants the username and password.
//! - The page loads its icon font (`@mdi/font`) from jsDelivr and its text
//!   font from Google Fonts. The icons are vendored too (`ui/mdi`,
//!   Apache-2.0) and the page served here loads them from this server,
//!   under `mdi/<version>/`, so the UI's buttons have icons without the
//!   internet; Roboto, if unreachable, falls back to the system's fonts.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// The embedded files: path under `dist/`, bytes.
static ASSETS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The version of `@socket.io/admin-ui` whose UI is embedded.
pub const UI_VERSION: &str = include_str!("../ui/VERSION").trim_ascii();

/// The version of `@mdi/font` whose icons are embedded.
const MDI_VERSION: &str = include_str!("../ui/mdi/VERSION").trim_ascii();

/// Where the page of the npm package loads its icon font from.
const MDI_CDN: &str =
    "https://cdn.jsdelivr.net/npm/@mdi/font@latest/css/materialdesignicons.min.css";

/// The UI under `base` (such as `/admin`), with no server preset: the user
/// types the server's URL in the login form. See also
/// [`Instrumentation::ui_router`](crate::Instrumentation::ui_router),
/// which presets it.
///
/// ```
/// let app: axum::Router = iocluster_admin_ui::ui_router("/admin");
/// ```
pub fn ui_router(base: &str) -> Router {
    router(base, "", "")
}

/// The UI under `base`; the first visit preset to `engine_path` and
/// `namespace` on the page's origin, unless they are empty.
pub(crate) fn router(base: &str, engine_path: &str, namespace: &str) -> Router {
    let base = base.trim_end_matches('/').to_owned();
    let index = index_page(engine_path, namespace);
    let slash = format!("{base}/");
    Router::new()
        .route(
            &base,
            get({
                let slash = slash.clone();
                move || async move { Redirect::permanent(&slash) }
            }),
        )
        .route(
            &slash,
            get(move || {
                let index = index.clone();
                async move { html(index) }
            }),
        )
        .route(&format!("{base}/{{*file}}"), get(asset))
}

fn html(page: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        page,
    )
        .into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
    if file == "index.html" {
        return Redirect::permanent("./").into_response();
    }
    let Some((_, bytes)) = ASSETS.iter().find(|(name, _)| *name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Hashed names, and the icons under their version, never change.
    let cache = if is_hashed(&file) || file.starts_with("mdi/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = Response::new(axum::body::Body::from(*bytes));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&file)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `index.html`, with a script that presets the connection on a first
/// visit (the UI reads `server_url`, `path` and `namespace` from
/// `localStorage` when it starts).
fn index_page(engine_path: &str, namespace: &str) -> String {
    let page = ASSETS
        .iter()
        .find(|(name, _)| *name == "index.html")
        .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
        .unwrap_or_default()
        .replace(
            MDI_CDN,
            &format!("mdi/{MDI_VERSION}/css/materialdesignicons.min.css"),
        );
    if engine_path.is_empty() {
        return page;
    }
    let path = engine_path.trim_end_matches('/');
    let preset = serde_json::json!({ "path": path, "namespace": namespace });
    let script = format!(
        "<script>(function(){{try{{var s=window.localStorage;if(!s.getItem(\"server_url\")){{\
         var p={preset};s.setItem(\"server_url\",location.origin);\
         s.setItem(\"path\",p.path);s.setItem(\"namespace\",p.namespace);}}}}catch(e){{}}}})();</script>"
    );
    match page.find("</head>") {
        Some(at) => format!("{}{script}{}", &page[..at], &page[at..]),
        None => page,
    }
}

/// Whether a file's name carries a content hash (`name.0123abcd.ext`).
fn is_hashed(file: &str) -> bool {
    let name = file.rsplit('/').next().unwrap_or(file);
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() >= 3
        && parts[parts.len() - 2].len() >= 8
        && parts[parts.len() - 2]
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    async fn get(router: &Router, uri: &str) -> Response {
        router
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn index_and_bundles_are_served_with_their_types_and_caching() {
        let router = router("/admin", "/socket.io/", "/admin");
        let index = get(&router, "/admin/").await;
        assert_eq!(index.status(), StatusCode::OK);
        assert_eq!(index.headers()[header::CACHE_CONTROL], "no-cache");
        let body = index.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("Socket.IO Admin UI"));
        assert!(body.contains(r#""path":"/socket.io""#));

        let (bundle, _) = ASSETS
            .iter()
            .find(|(name, _)| name.starts_with("js/app."))
            .unwrap();
        let response = get(&router, &format!("/admin/{bundle}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert!(
            response.headers()[header::CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        assert!(body.contains(&format!("mdi/{MDI_VERSION}/css/")));
        assert!(!body.contains("cdn.jsdelivr.net"));
        let icons = format!("/admin/mdi/{MDI_VERSION}/fonts/materialdesignicons-webfont.woff2");
        let response = get(&router, &icons).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "font/woff2");
        let favicon = get(&router, "/admin/favicon.png").await;
        assert_eq!(favicon.headers()[header::CONTENT_TYPE], "image/png");
        assert_eq!(favicon.headers()[header::CACHE_CONTROL], "no-cache");
    }

    #[tokio::test]
    async fn base_without_slash_redirects_and_unknown_files_are_404() {
        let router = ui_router("/admin");
        let response = get(&router, "/admin").await;
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(response.headers()[header::LOCATION], "/admin/");
        assert_eq!(
            get(&router, "/admin/js/nope.js").await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get(&router, "/admin/../Cargo.toml").await.status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn hashed_names_are_recognised() {
        assert!(is_hashed("js/app.0d7d7845.js"));
        assert!(is_hashed("img/logo-dark.3727fec5.svg"));
        assert!(!is_hashed("favicon.png"));
        assert!(!is_hashed("index.html"));
    }
}
