//! The HTTP transport: one small trait, a closure blanket impl, and a reqwest implementation
//! (behind the `reqwest` feature) that never follows redirects and caps response sizes.
//!
//! Requests and responses are plain [`http`] types with `Vec<u8>` bodies, so the protocol code
//! (discovery, JWKS, token requests) is pure and testable with closures.
//!
//! # Example
//!
//! ```
//! use azad_core::http::{HttpClient, HttpRequest, HttpResponse};
//! use azad_core::HttpError;
//!
//! // A closure is an HttpClient: handy for tests.
//! let client = |req: HttpRequest| async move {
//!     assert_eq!(req.uri(), "https://login.example.com/keys");
//!     Ok::<_, HttpError>(http::Response::new(br#"{"keys":[]}"#.to_vec()))
//! };
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let req = http::Request::get("https://login.example.com/keys").body(Vec::new()).unwrap();
//! let res: HttpResponse = client.send(req).await.unwrap();
//! assert_eq!(res.status(), 200);
//! # });
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use std::time::Duration;

use crate::error::HttpError;

/// Limits of the HTTP client used for metadata, keys and tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct HttpOptions {
    /// Timeout to establish a connection (default 5 seconds).
    pub connect_timeout: Duration,
    /// Timeout of a whole request (default 10 seconds).
    pub timeout: Duration,
    /// Largest accepted response body (default 512 KiB).
    pub max_response_bytes: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            max_response_bytes: 512 * 1024,
        }
    }
}

/// An HTTP request with a buffered body.
pub type HttpRequest = http::Request<Vec<u8>>;
/// An HTTP response with a buffered body.
pub type HttpResponse = http::Response<Vec<u8>>;

/// The `nonce` a sign-in expects in the ID token of this token request: a request extension,
/// in-process only (never sent), read by the simulation layer's replay to mint a matching ID
/// token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpectedNonce(pub(crate) String);

/// A boxed future returned by [`HttpClient::send`].
pub type HttpFuture<'a> = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'a>>;

/// Sends HTTP requests. Implemented for closures `Fn(HttpRequest) -> impl Future<Output =
/// Result<HttpResponse, HttpError>>`, and by [`ReqwestClient`].
///
/// Implementations must not follow redirects and should cap response sizes.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an azad HTTP client",
    note = "use `azad_core::http::ReqwestClient`, or a closure `Fn(HttpRequest) -> impl Future<Output = Result<HttpResponse, HttpError>>`"
)]
pub trait HttpClient: Send + Sync + 'static {
    /// Sends one request.
    fn send(&self, request: HttpRequest) -> HttpFuture<'_>;
}

impl<F, Fut> HttpClient for F
where
    F: Fn(HttpRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<HttpResponse, HttpError>> + Send + 'static,
{
    fn send(&self, request: HttpRequest) -> HttpFuture<'_> {
        Box::pin(self(request))
    }
}

impl<T: HttpClient + ?Sized> HttpClient for Arc<T> {
    fn send(&self, request: HttpRequest) -> HttpFuture<'_> {
        (**self).send(request)
    }
}

/// The process-wide default client for the given limits and extra trusted roots, built once
/// per distinct pair.
pub(crate) fn default_client(options: HttpOptions, extra_roots: &[Vec<u8>]) -> Option<Arc<dyn HttpClient>> {
    #[cfg(feature = "reqwest")]
    {
        use std::collections::HashMap;
        use std::sync::{Mutex, OnceLock};
        type Key = (HttpOptions, Vec<Vec<u8>>);
        static CLIENTS: OnceLock<Mutex<HashMap<Key, Arc<dyn HttpClient>>>> = OnceLock::new();
        let mut map = CLIENTS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        let key = (options, extra_roots.to_vec());
        if let Some(c) = map.get(&key) {
            return Some(c.clone());
        }
        let client: Arc<dyn HttpClient> = Arc::new(ReqwestClient::with_extra_roots(options, extra_roots).ok()?);
        map.insert(key, client.clone());
        Some(client)
    }
    #[cfg(not(feature = "reqwest"))]
    {
        let _ = (options, extra_roots);
        None
    }
}

#[cfg(feature = "reqwest")]
pub use self::reqwest_client::ReqwestClient;

#[cfg(feature = "reqwest")]
mod reqwest_client {
    use super::HttpOptions;
    use super::{HttpClient, HttpFuture, HttpRequest};
    use crate::error::{HttpError, HttpErrorKind};

    /// The reqwest-based [`HttpClient`]: rustls, connect and total timeouts, a response-size
    /// cap, no redirects, and an `azad/<version>` user agent. Clones share one connection pool.
    #[derive(Debug, Clone)]
    #[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
    pub struct ReqwestClient {
        client: reqwest::Client,
        max_response_bytes: usize,
    }

    impl ReqwestClient {
        /// Builds a client with the given limits.
        ///
        /// # Errors
        ///
        /// An [`HttpError`] if the TLS backend cannot be initialised.
        pub fn new(options: HttpOptions) -> Result<Self, HttpError> {
            Self::build(options, false, &[])
        }

        /// Builds a client that trusts these CA certificates (DER) in addition to the
        /// platform's roots: an authority served with a private CA, such as the dev tenant
        /// over HTTPS. Certificates are still verified, hostnames included.
        ///
        /// # Errors
        ///
        /// An [`HttpError`] if a certificate is unusable or the TLS backend cannot be
        /// initialised.
        pub fn with_extra_roots(options: HttpOptions, roots_der: &[Vec<u8>]) -> Result<Self, HttpError> {
            Self::build(options, false, roots_der)
        }

        /// Builds a client that ignores proxy settings (for the instance metadata service,
        /// which must never be reached through a proxy).
        ///
        /// # Errors
        ///
        /// An [`HttpError`] if the TLS backend cannot be initialised.
        pub fn without_proxy(options: HttpOptions) -> Result<Self, HttpError> {
            Self::build(options, true, &[])
        }

        fn build(options: HttpOptions, no_proxy: bool, roots_der: &[Vec<u8>]) -> Result<Self, HttpError> {
            let mut builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(options.connect_timeout)
                .timeout(options.timeout)
                .user_agent(concat!("azad/", env!("CARGO_PKG_VERSION")));
            if no_proxy {
                builder = builder.no_proxy();
            }
            if !roots_der.is_empty() {
                let certs = roots_der
                    .iter()
                    .map(|der| reqwest::Certificate::from_der(der))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| HttpError::new(HttpErrorKind::Other, Some(Box::new(e))))?;
                builder = builder.tls_certs_merge(certs);
            }
            let client = builder.build().map_err(|e| HttpError::new(HttpErrorKind::Other, Some(Box::new(e))))?;
            Ok(Self { client, max_response_bytes: options.max_response_bytes })
        }
    }

    fn classify(e: reqwest::Error) -> HttpError {
        let kind = if e.is_timeout() {
            HttpErrorKind::Timeout
        } else if e.is_connect() {
            HttpErrorKind::Connect
        } else {
            HttpErrorKind::Other
        };
        HttpError::new(kind, Some(Box::new(e)))
    }

    impl HttpClient for ReqwestClient {
        fn send(&self, request: HttpRequest) -> HttpFuture<'_> {
            Box::pin(async move {
                let request = reqwest::Request::try_from(request)
                    .map_err(|e| HttpError::new(HttpErrorKind::Other, Some(Box::new(e))))?;
                let mut response = self.client.execute(request).await.map_err(classify)?;
                if response.status().is_redirection() && response.status() != http::StatusCode::NOT_MODIFIED {
                    return Err(HttpError::new(HttpErrorKind::Redirect, None));
                }
                let cap = self.max_response_bytes;
                if response.content_length().is_some_and(|len| len > cap as u64) {
                    return Err(HttpError::new(HttpErrorKind::TooLarge, None));
                }
                let mut builder = http::Response::builder().status(response.status());
                if let Some(headers) = builder.headers_mut() {
                    *headers = std::mem::take(response.headers_mut());
                }
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(classify)? {
                    if body.len() + chunk.len() > cap {
                        return Err(HttpError::new(HttpErrorKind::TooLarge, None));
                    }
                    body.extend_from_slice(&chunk);
                }
                builder.body(body).map_err(|e| HttpError::new(HttpErrorKind::Other, Some(Box::new(e))))
            })
        }
    }
}
