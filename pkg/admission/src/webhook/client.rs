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
    #[error("{0}")]
    Config(String),
    /// The service behind a `service` reference cannot be reached.
    #[error("{0}")]
    Resolve(String),
    /// Connecting, TLS or HTTP failed.
    #[error("Post \"{url}\": {source}")]
    Transport {
        /// The URL called.
        url: String,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No answer in time.
    #[error("Post \"{0}\": context deadline exceeded")]
    Timeout(String),
    /// The answer is not an AdmissionReview.
    #[error("{0}")]
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

/// Resolves a `clientConfig` to a [`Target`]: a URL as given, or a Service through its
/// Endpoints (there is no service proxy to route a ClusterIP yet), else its ClusterIP.
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
        let address = tokio::net::lookup_host((host.as_str(), port))
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| CallError::Resolve(format!("dial tcp: lookup {host}: no such host")))?;
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
    let unreachable = |why: String| CallError::Resolve(format!("Post \"{url}\": {why}"));
    let svc = cluster
        .get(("", "services"), namespace, name)
        .await
        .map_err(|e| unreachable(e.to_string()))?
        .ok_or_else(|| unreachable(format!("service \"{name}\" not found")))?;
    let svc_port = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["port"].as_i64() == Some(port))
        .cloned()
        .ok_or_else(|| unreachable(format!("service {name} has no port {port}")))?;
    let endpoints = cluster
        .get(("", "endpoints"), namespace, name)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let from_endpoints = endpoints.as_ref().and_then(|e| {
        e["subsets"].as_array()?.iter().find_map(|subset| {
            let ip = subset["addresses"].as_array()?.first()?["ip"].as_str()?;
            let ports = subset["ports"].as_array()?;
            let wanted = svc_port["name"].as_str().unwrap_or("");
            let port = ports
                .iter()
                .find(|p| p["name"].as_str().unwrap_or("") == wanted)
                .or(ports.first())?["port"]
                .as_i64()?;
            format!("{ip}:{port}")
                .parse::<SocketAddr>()
                .ok()
                .or_else(|| format!("[{ip}]:{port}").parse().ok())
        })
    });
    let address = match from_endpoints {
        Some(a) => a,
        None => svc["spec"]["clusterIP"]
            .as_str()
            .and_then(|ip| format!("{ip}:{port}").parse().ok())
            .ok_or_else(|| unreachable("no endpoints available for service".into()))?,
    };
    Ok(Target {
        url,
        server_name,
        address,
        path,
    })
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
    let url = target.url.clone();
    match tokio::time::timeout(timeout, post(target, ca_bundle, review)).await {
        Ok(result) => result,
        Err(_) => Err(CallError::Timeout(url)),
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
    serde_json::from_slice(&bytes)
        .map_err(|e| CallError::Response(format!("received invalid webhook response: {e}")))
}
