//! Test helpers: an in-memory [`Cluster`] and attribute builders.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use rkube_api::meta;
use rkube_api::status::ApiError;
use serde_json::Value;

use crate::attributes::{Attributes, Gvn, Operation};
use crate::chain::{Cluster, ResourceRef, Result};

/// Objects by resource, namespace and name; status updates check the resourceVersion.
#[derive(Debug, Default)]
pub(crate) struct FakeCluster {
    objects: Mutex<BTreeMap<(String, String, String, String), Value>>,
}

impl FakeCluster {
    pub(crate) fn put(&self, resource: ResourceRef<'_>, object: Value) {
        let ns = meta::namespace(&object).unwrap_or("").to_owned();
        let name = meta::name(&object).unwrap_or("").to_owned();
        self.objects
            .lock()
            .unwrap()
            .insert(key(resource, &ns, &name), object);
    }
}

#[async_trait]
impl Cluster for FakeCluster {
    async fn get(&self, resource: ResourceRef<'_>, ns: &str, name: &str) -> Result<Option<Value>> {
        let objects = self.objects.lock().unwrap();
        Ok(objects.get(&key(resource, ns, name)).cloned())
    }

    async fn list(&self, resource: ResourceRef<'_>, ns: Option<&str>) -> Result<Vec<Value>> {
        let objects = self.objects.lock().unwrap();
        Ok(objects
            .iter()
            .filter(|((g, r, n, _), _)| {
                (g.as_str(), r.as_str()) == resource && ns.is_none_or(|ns| ns == n)
            })
            .map(|(_, v)| v.clone())
            .collect())
    }

    async fn update_status(&self, resource: ResourceRef<'_>, mut object: Value) -> Result<Value> {
        let ns = meta::namespace(&object).unwrap_or("").to_owned();
        let name = meta::name(&object).unwrap_or("").to_owned();
        let mut objects = self.objects.lock().unwrap();
        let current = objects.get(&key(resource, &ns, &name)).cloned().unwrap();
        let rv = |o: &Value| meta::resource_version(o).unwrap_or("0").to_owned();
        if rv(&current) != rv(&object) {
            return Err(ApiError::conflict(
                rkube_api::resources::GroupResource::new(resource.0, resource.1),
                &name,
                "the object has been modified",
            ));
        }
        let next = rv(&current).parse::<u64>().unwrap_or(0) + 1;
        object["metadata"]["resourceVersion"] = next.to_string().into();
        objects.insert(key(resource, &ns, &name), object.clone());
        Ok(object)
    }
}

fn key(resource: ResourceRef<'_>, ns: &str, name: &str) -> (String, String, String, String) {
    (resource.0.into(), resource.1.into(), ns.into(), name.into())
}

/// Attributes of a request on a core or grouped resource.
pub(crate) fn attrs(
    op: Operation,
    group: &str,
    plural: &str,
    kind: &str,
    namespace: &str,
    object: Option<Value>,
) -> Attributes {
    Attributes {
        operation: Some(op),
        kind: Gvn::new(group, "v1", kind),
        resource: Gvn::new(group, "v1", plural),
        namespace: namespace.into(),
        name: object
            .as_ref()
            .and_then(|o| meta::name(o))
            .unwrap_or("")
            .into(),
        object,
        ..Attributes::default()
    }
}

/// A CSR object for `signer` whose request has subject `cn` in `orgs`.
pub(crate) fn csr_with_request(signer: &str, cn: &str, orgs: &[&str]) -> Value {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    // rcgen keeps one value per type: further organizations go in under the same OID as
    // a custom type.
    for (i, org) in orgs.iter().enumerate() {
        let ty = match i {
            0 => rcgen::DnType::OrganizationName,
            _ => rcgen::DnType::CustomDnType(vec![2, 5, 4, 10]),
        };
        params.distinguished_name.push(ty, *org);
    }
    let pem = params.serialize_request(&key).unwrap().pem().unwrap();
    let request = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, pem);
    serde_json::json!({"metadata": {"name": "req"}, "spec": {"signerName": signer, "request": request}})
}
