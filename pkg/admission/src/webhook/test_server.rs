//! A webhook server for tests: HTTPS on 127.0.0.1 with a self-signed certificate (for
//! `127.0.0.1` and the Service names tests use), answering each AdmissionReview with what a
//! test's function says (after an optional delay), and recording when each call arrived and
//! was answered.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

/// What a test's webhook answers: the `response` fields besides `uid`, from the request
/// path and the review's `request`.
pub(crate) type Answer = dyn Fn(&str, &Value) -> Value + Send + Sync;

/// A running server; stops when dropped.
pub(crate) struct Server {
    pub(crate) address: SocketAddr,
    /// Base64 of the certificate's PEM, as `caBundle` carries it.
    pub(crate) ca_bundle: String,
    calls: Arc<Mutex<BTreeMap<String, Vec<Call>>>>,
    task: tokio::task::JoinHandle<()>,
}

/// When one review arrived and when its answer was sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call {
    pub(crate) arrived: Instant,
    pub(crate) answered: Instant,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub(crate) async fn start(answer: Arc<Answer>) -> Server {
        Self::start_slow(answer, Duration::ZERO).await
    }

    /// A server that waits `delay` before each answer.
    pub(crate) async fn start_slow(answer: Arc<Answer>, delay: Duration) -> Server {
        let names = vec!["127.0.0.1".to_owned(), "hook.ns.svc".to_owned()];
        let cert = rcgen::generate_simple_self_signed(names).unwrap();
        let ca_bundle = base64::engine::general_purpose::STANDARD.encode(cert.cert.pem());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(cert.cert.der().to_vec())], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let calls: Arc<Mutex<BTreeMap<String, Vec<Call>>>> = Arc::default();
        let counted = calls.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, answer, calls) = (acceptor.clone(), answer.clone(), counted.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(
                        move |request: http::Request<hyper::body::Incoming>| {
                            let (answer, calls) = (answer.clone(), calls.clone());
                            async move {
                                let arrived = Instant::now();
                                let path = request.uri().path().to_owned();
                                let body = request.into_body().collect().await?.to_bytes();
                                let review: Value = serde_json::from_slice(&body).unwrap();
                                let mut response = answer(&path, &review["request"]);
                                response["uid"] = review["request"]["uid"].clone();
                                tokio::time::sleep(delay).await;
                                let answered = Instant::now();
                                calls
                                    .lock()
                                    .unwrap()
                                    .entry(path)
                                    .or_default()
                                    .push(Call { arrived, answered });
                                let out = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
                                Ok::<_, hyper::Error>(http::Response::new(Full::new(
                                    bytes::Bytes::from(out.to_string()),
                                )))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Server {
            address,
            ca_bundle,
            calls,
            task,
        }
    }

    /// How many reviews arrived at `path`.
    pub(crate) fn calls(&self, path: &str) -> usize {
        self.calls.lock().unwrap().get(path).map_or(0, Vec::len)
    }

    /// The reviews answered at `path`, in the order they were answered.
    pub(crate) fn timings(&self, path: &str) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    /// A `clientConfig` calling `path` by URL.
    pub(crate) fn url(&self, path: &str) -> Value {
        json!({"url": format!("https://{}{path}", self.address), "caBundle": self.ca_bundle})
    }
}

/// An `allowed` answer applying `ops` as a JSONPatch (none: no patch).
pub(crate) fn patch(ops: Value) -> Value {
    if ops.as_array().is_none_or(|o| o.is_empty()) {
        return json!({"allowed": true});
    }
    json!({
        "allowed": true,
        "patchType": "JSONPatch",
        "patch": base64::engine::general_purpose::STANDARD.encode(ops.to_string()),
    })
}
