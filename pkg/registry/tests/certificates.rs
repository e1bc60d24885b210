//! CertificateSigningRequests through [`Registry`] over in-memory SQLite: create-time
//! validation, the immutable spec, and the `approval` and `status` subresources' rules.

// Test code: a failed expectation panics.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use base64::Engine as _;
use rkube_api::resources;
use rkube_api::status::ApiError;
use rkube_registry::rest::{CreateOptions, GetOptions, Scope, UpdateOptions};
use rkube_registry::{Registry, Rest};
use rkube_storage::KvStore;
use rkube_storage_sqlite::SqliteBackend;
use serde_json::{Value, json};

async fn registry() -> Registry {
    let backend = SqliteBackend::open_in_memory().unwrap();
    let registry = Registry::new(Arc::new(KvStore::new(Arc::new(backend))));
    registry.ready().await;
    registry
}

fn rest(registry: &Registry, sub: Option<&str>) -> Arc<dyn Rest> {
    let resource = resources::lookup("certificates.k8s.io", "v1", "certificatesigningrequests");
    registry.rest(resource.unwrap(), sub).unwrap()
}

/// A PEM request for `CN=alice, O=devs`, base64 as the API carries it.
fn request() -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "alice");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "devs");
    let pem = params.serialize_request(&key).unwrap().pem().unwrap();
    base64::engine::general_purpose::STANDARD.encode(pem)
}

fn csr(name: &str, request: &str) -> Value {
    json!({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"request": request, "signerName": "kubernetes.io/kube-apiserver-client",
                 "usages": ["client auth"], "username": "mallory", "groups": ["system:masters"]},
        "status": {"conditions": [{"type": "Approved", "status": "True"}]},
    })
}

async fn create(registry: &Registry, object: Value) -> Result<Value, ApiError> {
    rest(registry, None)
        .create(&Scope::default(), object, &CreateOptions::default())
        .await
        .map(|a| a.value.into_value())
}

async fn get(registry: &Registry, name: &str) -> Value {
    rest(registry, None)
        .get(&Scope::default(), name, &GetOptions::default())
        .await
        .unwrap()
        .into_value()
}

async fn update(registry: &Registry, sub: Option<&str>, object: Value) -> Result<Value, ApiError> {
    let name = object["metadata"]["name"].as_str().unwrap().to_owned();
    rest(registry, sub)
        .update(&Scope::default(), &name, object, &UpdateOptions::default())
        .await
        .map(|a| a.value.0.into_value())
}

fn causes(err: &ApiError) -> String {
    err.message().to_owned()
}

#[tokio::test]
async fn create_clears_identity_and_status_and_validates_the_spec() {
    let registry = registry().await;
    let created = create(&registry, csr("alice", &request())).await.unwrap();
    assert_eq!(created["status"], json!({}));
    assert!(created["spec"].get("username").is_none());
    assert!(created["spec"].get("groups").is_none());

    let garbage = base64::engine::general_purpose::STANDARD.encode("not a request");
    let mut bad = csr("bad", &garbage);
    bad["spec"]["signerName"] = json!("example");
    bad["spec"]["usages"] = json!(["client auth", "bogus", "client auth"]);
    bad["spec"]["expirationSeconds"] = json!(60);
    let err = create(&registry, bad).await.unwrap_err();
    let message = causes(&err);
    assert_eq!(err.code(), 422);
    for expected in [
        "spec.request: Invalid value: ",
        "PEM block type must be CERTIFICATE REQUEST",
        r#"spec.usages[1]: Unsupported value: "bogus": supported values: "any", "cert sign""#,
        r#"spec.usages[2]: Duplicate value: "client auth""#,
        r#"spec.signerName: Invalid value: "example": must be a fully qualified domain and path of the form 'example.com/signer-name'"#,
        "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds (10 minutes)",
    ] {
        assert!(message.contains(expected), "{expected:?} not in {message}");
    }

    // A request whose signature does not verify (one bit of the signature flipped).
    let pem = base64::engine::general_purpose::STANDARD
        .decode(request())
        .unwrap();
    let block = rkube_api::x509::pem_decode(&pem).0.unwrap();
    let mut der = block.der;
    let last = der.len() - 1;
    der[last] ^= 1;
    let tampered = rkube_api::x509::pem_encode("CERTIFICATE REQUEST", &der);
    let tampered = base64::engine::general_purpose::STANDARD.encode(tampered);
    let err = create(&registry, csr("tampered", &tampered))
        .await
        .unwrap_err();
    assert!(
        causes(&err).contains("x509: ECDSA verification failure"),
        "{}",
        causes(&err)
    );
}

#[tokio::test]
async fn approval_writes_only_conditions_and_status_cannot_approve() {
    let registry = registry().await;
    let request = request();
    create(&registry, csr("alice", &request)).await.unwrap();

    // The main resource changes neither spec nor status.
    let mut sent = get(&registry, "alice").await;
    sent["spec"]["usages"] = json!(["server auth"]);
    sent["status"] = json!({"conditions": [{"type": "Approved", "status": "True"}]});
    let stored = update(&registry, None, sent).await.unwrap();
    assert_eq!(stored["spec"]["usages"], json!(["client auth"]));
    assert_eq!(stored["status"], json!({}));

    // `status` may not add an approval condition.
    let mut sent = get(&registry, "alice").await;
    sent["status"] = json!({"conditions": [{"type": "Approved", "status": "True"}]});
    let err = update(&registry, Some("status"), sent).await.unwrap_err();
    assert!(
        causes(&err).contains(
            r#"status.conditions: Forbidden: updates may not add a condition of type "Approved""#
        ),
        "{}",
        causes(&err)
    );

    // `approval` may, and gets its times stamped; it cannot set the certificate.
    let mut sent = get(&registry, "alice").await;
    sent["status"] = json!({
        "conditions": [{"type": "Approved", "reason": "KubectlApprove"}],
        "certificate": "bm90IGEgY2VydA==",
    });
    sent["spec"]["signerName"] = json!("example.com/other");
    let approved = update(&registry, Some("approval"), sent).await.unwrap();
    let condition = &approved["status"]["conditions"][0];
    assert_eq!(condition["status"], "True");
    assert!(condition["lastUpdateTime"].is_string());
    assert!(condition["lastTransitionTime"].is_string());
    assert!(approved["status"].get("certificate").is_none());
    assert_eq!(
        approved["spec"]["signerName"],
        "kubernetes.io/kube-apiserver-client"
    );

    // Approved and Denied exclude each other; conditions cannot be removed.
    let mut both = approved.clone();
    both["status"]["conditions"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "Denied", "status": "True"}));
    let err = update(&registry, Some("approval"), both).await.unwrap_err();
    assert!(causes(&err).contains("Approved and Denied conditions are mutually exclusive"));
    let mut removed = approved.clone();
    removed["status"]["conditions"] = json!([]);
    let err = update(&registry, Some("approval"), removed)
        .await
        .unwrap_err();
    assert!(causes(&err).contains(r#"updates may not remove a condition of type "Approved""#));

    // `status` keeps the stored approval whatever it is sent, and checks the certificate.
    let mut sent = approved.clone();
    sent["status"]["conditions"][0]["reason"] = json!("Changed");
    sent["status"]["certificate"] = json!("bm90IGEgY2VydA==");
    let err = update(&registry, Some("status"), sent.clone())
        .await
        .unwrap_err();
    assert!(
        causes(&err).contains("status.certificate: Invalid value: \"<certificate data>\": must contain at least one CERTIFICATE PEM block"),
        "{}",
        causes(&err)
    );
    sent["status"]["certificate"] =
        json!(base64::engine::general_purpose::STANDARD.encode(self_signed()));
    let issued = update(&registry, Some("status"), sent).await.unwrap();
    assert_eq!(
        issued["status"]["conditions"][0]["reason"],
        "KubectlApprove"
    );
    assert!(issued["status"]["certificate"].is_string());

    // Once set, the certificate never changes.
    let mut again = issued.clone();
    again["status"]["certificate"] =
        json!(base64::engine::general_purpose::STANDARD.encode(self_signed()));
    let err = update(&registry, Some("status"), again).await.unwrap_err();
    assert!(causes(&err).contains("updates may not modify existing certificate content"));
}

fn self_signed() -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    rcgen::CertificateParams::new(vec!["x".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem()
}
