//! The CSR signing and approving controllers against the real API (the router over the
//! registry and an in-memory SQLite store): approved requests get a certificate from the CA
//! with the request's exact subject and key; requests that break their signer's rules get a
//! `Failed` condition; kubelet client requests are approved when their requester may have
//! them, as a SubjectAccessReview through the API says.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::{Api, PostParams};
use rkube_api::x509;
use rkube_apiserver::reviews_layer;
use rkube_auth::UserInfo;
use rkube_auth::authn::BearerToken;
use rkube_auth::authz::{Attributes, Authorizer, Decision};
use rkube_auth::review::Reviewer;
use rkube_controllers::certificates::{self, Config, SigningCa};
use serde_json::json;

mod common;
use common::{app, client, client_of};

/// A guard against a hang, never a measure of speed.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// A CA certificate and key, PEM.
fn ca() -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test-ca");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("ca");
    (cert.pem(), key.serialize_pem())
}

/// A request for `subject` (raw `Name` DER is built by rcgen's CSR writer; several `O`s are
/// added as custom attributes so the request carries them all).
fn request(cn: &str, orgs: &[&str]) -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    // rcgen keeps one value per type: a second organization goes in under the same OID as a
    // custom type, which rcgen does not merge.
    for (i, org) in orgs.iter().enumerate() {
        let ty = if i == 0 {
            rcgen::DnType::OrganizationName
        } else {
            rcgen::DnType::CustomDnType(vec![2, 5, 4, 10])
        };
        params.distinguished_name.push(ty, *org);
    }
    let pem = params
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem");
    pem.into_bytes()
}

/// Creates the CSR `name` for `signer` with client usages.
async fn create(api: &Api<CertificateSigningRequest>, name: &str, signer: &str, request: &[u8]) {
    let csr: CertificateSigningRequest = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"request": k8s_openapi::ByteString(request.to_vec()), "signerName": signer,
                 "usages": ["client auth", "digital signature"]},
    }))
    .expect("csr");
    api.create(&PostParams::default(), &csr)
        .await
        .expect("create");
}

/// Creates the CSR `name` and approves it.
async fn submit(api: &Api<CertificateSigningRequest>, name: &str, signer: &str, request: &[u8]) {
    create(api, name, signer, request).await;
    let mut approved = api.get(name).await.expect("get");
    approved.status = Some(
        serde_json::from_value(json!({"conditions": [
            {"type": "Approved", "status": "True", "reason": "Test"}]}))
        .expect("status"),
    );
    api.replace_subresource("approval", name, &PostParams::default(), &approved)
        .await
        .expect("approve");
}

/// Polls `name` until `done` holds.
async fn wait_for(
    api: &Api<CertificateSigningRequest>,
    name: &str,
    done: impl Fn(&CertificateSigningRequest) -> bool,
) -> CertificateSigningRequest {
    tokio::time::timeout(HANG_GUARD, async {
        loop {
            let csr = api.get(name).await.expect("get");
            if done(&csr) {
                return csr;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the controller never got there")
}

#[tokio::test]
async fn approved_requests_are_signed_or_failed_by_their_signer_rules() {
    let client = client().await;
    let (ca_pem, ca_key) = ca();
    let config = Config {
        client_ca: Some(Arc::new(SigningCa::from_pem(&ca_pem, &ca_key).expect("ca"))),
        server_ca: None,
        duration: Duration::from_secs(3600),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(certificates::run(client.clone(), config, async {
        let _ = stopped.await;
    }));
    let api: Api<CertificateSigningRequest> = Api::all(client);

    let alice = request("alice", &["devs", "admins"]);
    submit(&api, "alice", certificates::KUBE_APISERVER_CLIENT, &alice).await;
    let signed = wait_for(&api, "alice", |c| {
        c.status
            .as_ref()
            .and_then(|s| s.certificate.as_ref())
            .is_some()
    })
    .await;
    let pem = &signed
        .status
        .as_ref()
        .and_then(|s| s.certificate.clone())
        .expect("cert")
        .0;
    let block = x509::pem_decode(pem).0.expect("pem");
    assert_eq!(block.label, "CERTIFICATE");
    let cert = x509::Certificate::parse(&block.der).expect("certificate");
    let request_block = x509::pem_decode(&alice).0.expect("pem");
    let parsed = x509::CertificateRequest::parse(&request_block.der).expect("request");
    // The subject (with both groups) and the key are the request's, byte for byte.
    assert_eq!(cert.subject_der, parsed.subject_der);
    assert_eq!(
        x509::name_values(&cert.subject, x509::oid::ORGANIZATION),
        ["devs", "admins"]
    );
    assert_eq!(cert.spki, parsed.spki);
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    assert!(
        (now + 3500..=now + 3700).contains(&cert.not_after),
        "{}",
        cert.not_after
    );
    // Signed by the CA's key.
    let ca_block = x509::pem_decode(ca_pem.as_bytes()).0.expect("pem");
    let ca_cert = x509::Certificate::parse(&ca_block.der).expect("ca");
    let ca_key = x509::PublicKey::parse(ca_cert.spki).expect("key");
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, ca_key.key)
        .verify(cert.tbs, cert.signature)
        .expect("the CA's signature");

    // The kubelet client signer wants a node identity.
    submit(
        &api,
        "not-a-node",
        certificates::KUBELET_CLIENT,
        &request("alice", &["devs"]),
    )
    .await;
    let failed = wait_for(&api, "not-a-node", |c| {
        c.status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .any(|c| c.type_ == "Failed")
    })
    .await;
    let status = failed.status.expect("status");
    let condition = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Failed")
        .expect("failed");
    assert_eq!(condition.reason.as_deref(), Some("SignerValidationFailure"));
    assert_eq!(
        condition.message.as_deref(),
        Some("subject organization is not system:nodes")
    );
    assert!(status.certificate.is_none());

    stop.send(()).expect("stop");
    controller.await.expect("controller");
}

/// RBAC as a kubeadm cluster binds it: nodes may renew their own client certificates
/// (`selfnodeclient`), bootstrap tokens may ask for any node's (`nodeclient`).
#[derive(Debug)]
struct NodeClientPolicy;

impl Authorizer for NodeClientPolicy {
    fn authorize(&self, a: &Attributes<'_>) -> Decision {
        let grant = match a.subresource {
            "selfnodeclient" => "system:nodes",
            "nodeclient" => "system:bootstrappers",
            _ => return Decision::NoOpinion(String::new()),
        };
        let fits = a.verb == "create"
            && a.api_group == "certificates.k8s.io"
            && a.resource == "certificatesigningrequests"
            && a.user.in_group(grant);
        if fits {
            Decision::Allow(String::new())
        } else {
            Decision::NoOpinion(String::new())
        }
    }
}

/// The Approved condition of `name`, once it has one.
async fn approval(api: &Api<CertificateSigningRequest>, name: &str) -> (String, String) {
    let csr = wait_for(api, name, |c| {
        c.status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .any(|c| c.type_ == "Approved")
    })
    .await;
    let conditions = csr.status.and_then(|s| s.conditions).expect("conditions");
    let approved = conditions.into_iter().find(|c| c.type_ == "Approved");
    let approved = approved.expect("approved");
    (
        approved.reason.unwrap_or_default(),
        approved.message.unwrap_or_default(),
    )
}

#[tokio::test]
async fn kubelet_client_requests_are_approved_when_their_requester_may_have_them() {
    let reviewer = Reviewer::new(BearerToken::new(vec![]), &[], Arc::new(NodeClientPolicy));
    let app = app().await.layer(reviews_layer(Arc::new(reviewer)));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(certificates::approver::run(
        client_of(app.clone(), None),
        async {
            let _ = stopped.await;
        },
    ));
    let as_user = |name: &str, group: &str| -> Api<CertificateSigningRequest> {
        let user = UserInfo::new(name, &[group, "system:authenticated"]);
        Api::all(client_of(app.clone(), Some(user)))
    };
    let node = as_user("system:node:n1", "system:nodes");
    let bootstrap = as_user("system:bootstrap:abcdef", "system:bootstrappers");
    let kubelet = |n: &str| request(&format!("system:node:{n}"), &["system:nodes"]);

    // Asked first, never approved: a node asking for another node's certificate, a
    // non-kubelet request, and a kubelet request breaking the signer's rules.
    create(
        &node,
        "other-node",
        certificates::KUBELET_CLIENT,
        &kubelet("n2"),
    )
    .await;
    let other_signer = certificates::KUBE_APISERVER_CLIENT;
    create(&node, "other-signer", other_signer, &kubelet("n1")).await;
    let not_nodes = request("system:node:n1", &["devs"]);
    create(&node, "not-nodes", certificates::KUBELET_CLIENT, &not_nodes).await;

    create(&node, "self", certificates::KUBELET_CLIENT, &kubelet("n1")).await;
    assert_eq!(
        approval(&node, "self").await,
        (
            "AutoApproved".to_owned(),
            "Auto approving self kubelet client certificate after SubjectAccessReview.".to_owned()
        )
    );
    create(
        &bootstrap,
        "joining",
        certificates::KUBELET_CLIENT,
        &kubelet("n3"),
    )
    .await;
    assert_eq!(
        approval(&bootstrap, "joining").await,
        (
            "AutoApproved".to_owned(),
            "Auto approving kubelet client certificate after SubjectAccessReview.".to_owned()
        )
    );
    // The others stay pending (their passes run alongside the ones above).
    for name in ["other-node", "other-signer", "not-nodes"] {
        let csr = node.get(name).await.expect("get");
        let conditions = csr.status.and_then(|s| s.conditions).unwrap_or_default();
        assert!(conditions.is_empty(), "{name}: {conditions:?}");
    }

    stop.send(()).expect("stop");
    controller.await.expect("controller");
}
