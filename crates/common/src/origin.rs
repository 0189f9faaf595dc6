//! Cross-origin writes refused.
//!
//! Any web page can make its visitors' browsers send a "simple" POST (no `Content-Type`, or
//! `text/plain`) to any address without a CORS preflight. A write that a browser sends is
//! therefore taken only from the service's own origin (the `Origin` header names the `Host`
//! the request was sent to) or one of `CORS_ALLOWED_ORIGINS`, and only with a JSON body:
//!
//! - an `Origin` that is neither, or `Sec-Fetch-Site` saying another site when the browser
//!   sent no `Origin`: 403 `cross_origin`;
//! - a request from a browser (it carries `Origin` or `Sec-Fetch-Site`) whose body is not
//!   declared JSON: 415 `unsupported_media_type`.
//!
//! Programs that are not browsers send neither header and keep the original API's leniency: a
//! body without a `Content-Type` is read as JSON. Reads (`GET`, `HEAD`, `OPTIONS`) pass.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ApiError;

/// `Sec-Fetch-Site`, which browsers send with every request: who started it.
const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// The origins a browser may write from besides the service's own.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    allowed: Arc<[HeaderValue]>,
}

impl Origins {
    /// The service's own origin and `allowed` (`CORS_ALLOWED_ORIGINS`).
    pub fn new(allowed: &[HeaderValue]) -> Self {
        Self {
            allowed: allowed.into(),
        }
    }
}

/// Middleware: refuses a browser's write from another origin, or without a JSON body.
pub async fn enforce(State(origins): State<Origins>, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(axum::http::uri::Authority::as_str)
        });
    match check(request.headers(), host, &origins.allowed) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
}

fn check(headers: &HeaderMap, host: Option<&str>, allowed: &[HeaderValue]) -> Result<(), ApiError> {
    let origin = headers.get(header::ORIGIN);
    let fetch_site = headers.get(SEC_FETCH_SITE);
    let trusted = match origin {
        Some(origin) => {
            allowed.contains(origin)
                || origin
                    .to_str()
                    .is_ok_and(|origin| host.is_some_and(|host| same_origin(origin, host)))
        }
        // A browser that sent no Origin still says whose page started the request.
        None => fetch_site.is_none_or(|site| site == "same-origin" || site == "none"),
    };
    if !trusted {
        return Err(ApiError::client(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "Writes from another site's pages are refused",
        ));
    }
    let from_browser = origin.is_some() || fetch_site.is_some();
    if from_browser && !crate::json::declared_json(headers) {
        return Err(ApiError::client(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as application/json",
        ));
    }
    Ok(())
}

/// Whether `origin` (`scheme://host[:port]`) is the origin of a request sent to `host`
/// (`host[:port]`, the port left out when it is the scheme's default). Behind a proxy that
/// ends TLS the service cannot see the scheme the browser used: host and port decide.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    match (
        host_and_port(authority, default_port),
        host_and_port(host, default_port),
    ) {
        (Some(origin), Some(host)) => origin == host,
        _ => false,
    }
}

/// `host[:port]` as lower-case host and port; `None` when malformed.
fn host_and_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 address without a port: the colon is the address's own.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let port = match port {
        Some(port) => port.parse().ok()?,
        None => default_port,
    };
    (!host.is_empty() && !authority.contains(['/', '@'])).then(|| (host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    name.parse::<header::HeaderName>().unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                )
            })
            .collect()
    }

    fn status(pairs: &[(&str, &str)], host: &str) -> Option<StatusCode> {
        let allowed = [HeaderValue::from_static("https://allowed.example")];
        check(&headers(pairs), Some(host), &allowed)
            .err()
            .map(|e| e.status())
    }

    const JSON: (&str, &str) = ("content-type", "application/json");

    #[test]
    fn the_own_origin_and_the_allowed_ones_may_write_json() {
        for origin in [
            "http://127.0.0.1:8080",
            "HTTP://127.0.0.1:8080",
            "https://allowed.example",
        ] {
            assert_eq!(status(&[("origin", origin), JSON], "127.0.0.1:8080"), None);
        }
        // Default ports, left out on either side.
        assert_eq!(
            status(
                &[("origin", "https://site.example"), JSON],
                "site.example:443"
            ),
            None
        );
        assert_eq!(
            status(
                &[("origin", "https://site.example:443"), JSON],
                "site.example"
            ),
            None
        );
        assert_eq!(
            status(&[("origin", "http://[::1]:8080"), JSON], "[::1]:8080"),
            None
        );
        assert_eq!(
            status(&[("sec-fetch-site", "same-origin"), JSON], "site.example"),
            None
        );
    }

    #[test]
    fn another_origin_is_refused_whatever_the_body() {
        for origin in [
            "https://evil.example",
            "null",
            "http://site.example:8081",
            "https://site.example",
            "ftp://site.example:8080",
            "http://site.example:8080.evil.example",
            "http://user@site.example:8080",
        ] {
            for body in [&[("origin", origin), JSON][..], &[("origin", origin)][..]] {
                assert_eq!(
                    status(body, "site.example:8080"),
                    Some(StatusCode::FORBIDDEN),
                    "{origin}"
                );
            }
        }
        for site in ["cross-site", "same-site"] {
            assert_eq!(
                status(&[("sec-fetch-site", site), JSON], "site.example"),
                Some(StatusCode::FORBIDDEN)
            );
        }
    }

    #[test]
    fn a_browser_must_declare_json_and_other_programs_need_not() {
        let own = ("origin", "http://site.example");
        for content_type in [None, Some("text/plain"), Some("multipart/form-data")] {
            let mut pairs = vec![own];
            pairs.extend(content_type.map(|t| ("content-type", t)));
            assert_eq!(
                status(&pairs, "site.example"),
                Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
                "{content_type:?}"
            );
        }
        // A program that is no browser keeps the original API's bare bodies.
        assert_eq!(status(&[], "site.example"), None);
        assert_eq!(status(&[JSON], "site.example"), None);
    }
}
