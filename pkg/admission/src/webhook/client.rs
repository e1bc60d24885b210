//! One webhook call: an `AdmissionReview` POSTed over HTTPS (HTTP/1.1) to a URL or a
//! Service, trusting the webhook's `caBundle`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;

use crate::chain::Cluster;

/// Why a call did not produce a review (upstream's `ErrCallingWebhook` causes).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The client configuration is unusable.
    #[error("could not get REST client: {0}")]
    Config(String),
    /// The service behind a `service` reference cannot be reached.
    #[error("failed to call webhook: Post \"{url}\": {why}")]
    Resolve {
        /// The URL called.
        url: String,
        /// Why it cannot be reached.
        why: String,
    },
    /// Connecting, TLS or HTTP failed.
    #[error("failed to call webhook: Post \"{url}\": {source}")]
    Transport {
        /// The URL called.
        url: String,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No answer in time.
    #[error("failed to call webhook: Post \"{0}\": context deadline exceeded")]
    Timeout(String),
    /// The answer is not an AdmissionReview.
    #[error("failed to call webhook: {0}")]
    Response(String),
}

/// Where a webhook lives, from its `clientConfig`.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL shown in errors.
    pub url: String,
    /// The name the certificate must carry.
    pub server_name: String,
    /// The address to connect to.
    pub address: SocketAddr,
    /// The request path (with query).
    pub path: String,
}

async fn lookup(host: &str, port: u16) -> Option<SocketAddr> {
    tokio::net::lookup_host((host, port)).await.ok()?.next()
}

fn socket(ip: &str, port: i64) -> Option<SocketAddr> {
    let ip: std::net::IpAddr = ip.parse().ok()?;
    Some(SocketAddr::new(ip, u16::try_from(port).ok()?))
}

/// Resolves a `clientConfig` to a [`Target`]: a URL as given, or a Service. There is no
/// service proxy, so a Service is reached as kube-apiserver's aggregator routing reaches it:
/// at a ready endpoint of its EndpointSlices (or, for hand-made ones, its Endpoints), on the
/// endpoint port named as the Service's port; an ExternalName Service at its name.
pub async fn resolve(cluster: &dyn Cluster, config: &Value) -> Result<Target, CallError> {
    if let Some(url) = config["url"].as_str() {
        let parsed = url::Url::parse(url)
            .map_err(|e| CallError::Config(format!("invalid url {url:?}: {e}")))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| CallError::Config(format!("url {url:?} has no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = parsed.port().unwrap_or(443);
        let address = lookup(&host, port)
            .await
            .ok_or_else(|| CallError::Resolve {
                url: url.to_owned(),
                why: format!("dial tcp: lookup {host}: no such host"),
            })?;
        let mut path = parsed.path().to_owned();
        if let Some(q) = parsed.query() {
            path = format!("{path}?{q}");
        }
        return Ok(Target {
            url: url.to_owned(),
            server_name: host,
            address,
            path,
        });
    }
    let service = &config["service"];
    let (Some(namespace), Some(name)) = (service["namespace"].as_str(), service["name"].as_str())
    else {
        return Err(CallError::Config(
            "clientConfig needs a url or a service".into(),
        ));
    };
    let port = service["port"].as_i64().unwrap_or(443);
    let path = service["path"].as_str().unwrap_or("/").to_owned();
    let server_name = format!("{name}.{namespace}.svc");
    let url = format!("https://{server_name}:{port}{path}");
    let unreachable = |why: String| CallError::Resolve {
        url: url.clone(),
        why,
    };
    let svc = cluster
        .get(("", "services"), namespace, name)
        .await
        .map_err(|e| unreachable(e.message().to_owned()))?
        .ok_or_else(|| unreachable(format!("service {name:?} not found")))?;
    let address = match svc["spec"]["type"].as_str().unwrap_or("ClusterIP") {
        "ExternalName" => {
            let host = svc["spec"]["externalName"].as_str().unwrap_or("");
            let port = u16::try_from(port).unwrap_or(443);
            lookup(host, port)
                .await
                .ok_or_else(|| unreachable(format!("dial tcp: lookup {host}: no such host")))?
        }
        "ClusterIP" | "NodePort" | "LoadBalancer" => {
            let port_name = svc["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["port"].as_i64() == Some(port))
                .map(|p| p["name"].as_str().unwrap_or("").to_owned())
                .ok_or_else(|| {
                    unreachable(format!("no service port {port} found for service {name:?}"))
                })?;
            endpoint(cluster, namespace, name, &port_name)
                .await
                .map_err(|e| unreachable(e.message().to_owned()))?
                .ok_or_else(|| {
                    unreachable(format!("no endpoints available for service {name:?}"))
                })?
        }
        other => return Err(unreachable(format!("unsupported service type {other:?}"))),
    };
    Ok(Target {
        url,
        server_name,
        address,
        path,
    })
}

/// A ready endpoint of Service `namespace/name` on its port `port_name`: from its
/// EndpointSlices, else from its Endpoints.
async fn endpoint(
    cluster: &dyn Cluster,
    namespace: &str,
    name: &str,
    port_name: &str,
) -> crate::chain::Result<Option<SocketAddr>> {
    let named = |p: &&Value| p["name"].as_str().unwrap_or("") == port_name;
    let slices = cluster
        .list(("discovery.k8s.io", "endpointslices"), Some(namespace))
        .await?;
    let from_slices = slices
        .iter()
        .filter(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == name)
        .find_map(|slice| {
            let port = slice["ports"].as_array()?.iter().find(named)?["port"].as_i64()?;
            slice["endpoints"]
                .as_array()?
                .iter()
                .filter(|e| e["conditions"]["ready"] != false)
                .find_map(|e| socket(e["addresses"][0].as_str()?, port))
        });
    if from_slices.is_some() {
        return Ok(from_slices);
    }
    let endpoints = cluster.get(("", "endpoints"), namespace, name).await?;
    Ok(endpoints.as_ref().and_then(|e| {
        e["subsets"].as_array()?.iter().find_map(|subset| {
            let port = subset["ports"].as_array()?.iter().find(named)?["port"].as_i64()?;
            socket(subset["addresses"][0]["ip"].as_str()?, port)
        })
    }))
}

/// The TLS client trusting `ca_bundle` (base64 of PEM, as the API carries it).
fn tls_config(ca_bundle: Option<&str>) -> Result<rustls::ClientConfig, CallError> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(bundle) = ca_bundle.filter(|b| !b.is_empty()) {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(bundle)
            .map_err(|e| CallError::Config(format!("caBundle is not base64: {e}")))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| CallError::Config(format!("caBundle: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| CallError::Config(format!("caBundle: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CallError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The largest review answer read (upstream reads at most what it would accept as a request).
const MAX_RESPONSE_BYTES: usize = 3 * 1024 * 1024;

/// POSTs `review` to `target` within `timeout`; answers the response's review.
pub async fn call(
    target: &Target,
    ca_bundle: Option<&str>,
    review: &Value,
    timeout: Duration,
) -> Result<Value, CallError> {
    // client-go tells the server its timeout in the query, as `?timeout=10s`.
    let separator = if target.path.contains('?') { '&' } else { '?' };
    let query = format!("{separator}timeout={}s", timeout.as_secs());
    let target = Target {
        url: format!("{}{query}", target.url),
        path: format!("{}{query}", target.path),
        ..target.clone()
    };
    match tokio::time::timeout(timeout, post(&target, ca_bundle, review)).await {
        Ok(result) => result,
        Err(_) => Err(CallError::Timeout(target.url)),
    }
}

async fn post(
    target: &Target,
    ca_bundle: Option<&str>,
    review: &Value,
) -> Result<Value, CallError> {
    let transport = |e: Box<dyn std::error::Error + Send + Sync>| CallError::Transport {
        url: target.url.clone(),
        source: e,
    };
    let config = tls_config(ca_bundle)?;
    let name = ServerName::try_from(target.server_name.clone())
        .map_err(|e| CallError::Config(format!("server name {:?}: {e}", target.server_name)))?;
    let tcp = TcpStream::connect(target.address)
        .await
        .map_err(|e| transport(Box::new(e)))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| transport(Box::new(e)))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| transport(Box::new(e)))?;
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "webhook connection ended");
        }
    });
    let body = serde_json::to_vec(review).map_err(|e| CallError::Config(e.to_string()))?;
    let request = http::Request::post(&target.path)
        .header(http::header::HOST, &target.server_name)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| CallError::Config(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| transport(Box::new(e)))?;
    let status = response.status();
    let bytes = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(transport)?
        .to_bytes();
    driver.abort();
    if !status.is_success() {
        return Err(CallError::Response(format!(
            "the server responded with the status code {} but did not return more information",
            status.as_u16()
        )));
    }
    serde_json::from_slice(&bytes).map_err(|e| CallError::Response(e.to_string()))
}
