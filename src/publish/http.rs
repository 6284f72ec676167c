//! The HTTP client behind GitHub and Slack: octocrab's service stack (base URI, headers, the
//! token only for the API's own host) over a connector that honours the proxy variables as curl
//! reads them (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`). octocrab's default client
//! ignores them, and a runner that reaches GitHub only through a company proxy could not post.
//!
//! Through a proxy the connection is a `CONNECT host:port` tunnel (hyper-util's `Tunnel`), with
//! TLS end to end with GitHub or Slack inside it; the proxy's credentials (`http://user:pass@…`)
//! go to the proxy only, as `Proxy-Authorization`, and are never shown.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderName, HeaderValue, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo};
use octocrab::service::middleware::auth_header::AuthHeaderLayer;
use octocrab::service::middleware::base_uri::BaseUriLayer;
use octocrab::service::middleware::extra_headers::ExtraHeadersLayer;
use octocrab::{AuthState, Octocrab, OctocrabBuilder};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A client for `base`: every request a path relative to it. `bearer` (a token) is sent to
/// `base`'s host only; `headers` go with every request.
pub fn client(
    base: &str,
    bearer: Option<&str>,
    headers: Vec<(HeaderName, HeaderValue)>,
) -> Result<Octocrab, String> {
    let base_uri: Uri = base
        .parse()
        .map_err(|e| format!("`{base}` is not a URL: {e}"))?;
    let route = Route::for_uri(&base_uri, &Matcher::from_env())?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(route);
    let service = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(https);
    let auth = match bearer {
        Some(token) => {
            let mut v = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| "the token is not a valid header value".to_string())?;
            v.set_sensitive(true);
            Some(v)
        }
        None => None,
    };
    OctocrabBuilder::new_empty()
        .with_service(service)
        .with_layer(&BaseUriLayer::new(base_uri.clone()))
        .with_layer(&ExtraHeadersLayer::new(Arc::new(headers)))
        .with_layer(&AuthHeaderLayer::new(auth, base_uri.clone(), base_uri))
        .with_auth(AuthState::None)
        .build()
        .map_err(|e| e.to_string())
}

/// Direct, or through a CONNECT tunnel: decided once per client, for its one base URI.
#[derive(Clone)]
enum Route {
    Direct(HttpConnector),
    Tunnel {
        tunnel: Box<Tunnel<HttpConnector>>,
        name: String,
    },
}

impl Route {
    fn for_uri(uri: &Uri, matcher: &Matcher) -> Result<Route, String> {
        let mut direct = HttpConnector::new();
        // hyper-rustls does TLS over this connector for https:// URIs.
        direct.enforce_http(false);
        let Some(intercept) = matcher.intercept(uri) else {
            return Ok(Route::Direct(direct));
        };
        let proxy = intercept.uri().clone();
        if proxy.scheme_str() != Some("http") {
            return Err(format!(
                "the proxy variable names a {}:// proxy; only http:// proxies are supported (the CONNECT tunnel carries the TLS)",
                proxy.scheme_str().unwrap_or("?")
            ));
        }
        let name = format!(
            "{}:{}",
            proxy.host().unwrap_or_default(),
            proxy.port_u16().unwrap_or(80)
        );
        let mut tunnel = Tunnel::new(proxy, direct);
        if let Some(auth) = intercept.basic_auth() {
            tunnel = tunnel.with_auth(auth.clone());
        }
        Ok(Route::Tunnel {
            tunnel: Box::new(tunnel),
            name,
        })
    }

    #[cfg(test)]
    fn proxy_name(&self) -> Option<String> {
        match self {
            Route::Direct(_) => None,
            Route::Tunnel { name, .. } => Some(name.clone()),
        }
    }
}

impl tower_service::Service<Uri> for Route {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            Route::Direct(c) => c.poll_ready(cx).map_err(Into::into),
            Route::Tunnel { tunnel, .. } => tunnel.poll_ready(cx).map_err(Into::into),
        }
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        match self {
            Route::Direct(c) => {
                let f = c.call(dst);
                Box::pin(async move { f.await.map_err(Into::into) })
            }
            Route::Tunnel { tunnel, name } => {
                let (f, name) = (tunnel.call(dst), name.clone());
                Box::pin(async move {
                    f.await
                        .map_err(|e| format!("through the proxy {name}: {e}").into())
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_applies_unless_no_proxy_names_the_host() {
        let m = Matcher::builder()
            .https("http://user:secret@proxy.corp.example:3128")
            .no("ghe.corp.example")
            .build();
        let api: Uri = "https://api.github.com".parse().unwrap();
        let route = Route::for_uri(&api, &m).unwrap();
        assert_eq!(
            route.proxy_name().as_deref(),
            Some("proxy.corp.example:3128")
        );
        let ghe: Uri = "https://ghe.corp.example/api/v3".parse().unwrap();
        assert!(Route::for_uri(&ghe, &m).unwrap().proxy_name().is_none());
        let socks = Matcher::builder().https("socks5://p:1080").build();
        let e = Route::for_uri(&api, &socks).err().unwrap();
        assert!(e.contains("socks5://") && e.contains("only http://"), "{e}");
    }
}
