//! The namespace controller (upstream's `pkg/controller/namespace`): empties a namespace being
//! deleted, then releases it.
//!
//! Deleting a namespace only marks it (`deletionTimestamp`, phase `Terminating`) while
//! `spec.finalizers` holds `kubernetes`. For each such namespace this controller, as upstream's
//! `NamespacedResourcesDeleter.Delete`:
//! 1. reads the namespace afresh and makes sure its phase is `Terminating` (status write);
//! 2. discovers every namespaced resource with the `delete` verb ([`discovery`]), and for each
//!    deletes the collection in the namespace (background propagation; item by item where
//!    `deletecollection` is not served), then lists what is left;
//! 3. writes the five deletion conditions ([`conditions`]);
//! 4. waits while content remains: objects held by finalizers (or pods in their grace period)
//!    are looked at again after half the estimate plus a second; anything else left, or any
//!    failure, is an error retried with backoff (5 ms doubling to 60 s, upstream's
//!    namespace rate limiter);
//! 5. once nothing is left, removes `kubernetes` from `spec.finalizers` through the `finalize`
//!    subresource; the API server then removes the namespace.
//!
//! Writes that conflict are retried on a fresh read, unless the namespace was replaced by
//! another of the same name (its uid changed).

mod conditions;
mod discovery;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt as _, StreamExt as _};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt as _};

use self::conditions::Findings;
use self::discovery::{Deletable, aggregate};
use crate::backoff::ItemBackoff;

/// The finalizer in `spec.finalizers` this controller owns.
pub const FINALIZER: &str = "kubernetes";

/// Upstream's `finalizerEstimateSeconds`: how long content held by finalizers is assumed to take.
pub const FINALIZER_ESTIMATE: Duration = Duration::from_secs(15);

/// The first retry after a failure; each further failure doubles it.
const BACKOFF_BASE: Duration = Duration::from_millis(5);
/// The longest wait between retries of a failing namespace.
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// How the namespace controller waits.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long content held by finalizers is assumed to take ([`FINALIZER_ESTIMATE`]); the
    /// namespace is looked at again after half of it plus a second. Must not be zero (zero
    /// would read as "nothing to wait for").
    pub finalizer_estimate: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            finalizer_estimate: FINALIZER_ESTIMATE,
        }
    }
}

/// Why a pass over a namespace failed (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the API server failed.
    #[error("{action} namespace {namespace:?}")]
    Api {
        /// What was being done, e.g. `finalizing`.
        action: &'static str,
        /// The namespace.
        namespace: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The namespace was deleted and created again while this controller worked on it.
    #[error("namespace {namespace:?}: namespace uid has changed across retries")]
    UidChanged {
        /// The namespace.
        namespace: String,
    },
    /// Some content could not be deleted or discovered: upstream's aggregated messages.
    #[error("deleting the content of namespace {namespace:?}: {message}")]
    Content {
        /// The namespace.
        namespace: String,
        /// What failed, as upstream words it.
        message: String,
    },
}

/// The namespace controller's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs the namespace controller until `shutdown` completes; passes in progress finish first.
pub async fn run(
    client: Client,
    config: Config,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let context = Arc::new(Context {
        client,
        namespaces: namespaces.clone(),
        config,
        failures: ItemBackoff::new(BACKOFF_BASE, BACKOFF_MAX),
    });
    let controller = Controller::new(namespaces, watcher::Config::default());
    let cache = controller.store();
    let passes = controller
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile, error_policy, context)
        .for_each(|outcome| async move {
            match outcome {
                // Logged, with the retry delay, by `error_policy`.
                Ok(_) | Err(controller::Error::ReconcilerFailed(..)) => {}
                Err(e) => tracing::warn!(error = %e, "namespace controller"),
            }
        });
    // kube-runtime runs no pass before its cache has the first list, and waits for that even
    // once shutdown has begun: a shutdown before the list would wait forever. Nothing has run
    // then, so stopping at once loses nothing; afterwards the passes end on their own.
    let before_first_list = async {
        shutdown.await;
        if cache.wait_until_ready().now_or_never().is_some() {
            futures::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = passes => {}
        () = before_first_list => {}
    }
}

/// What a pass needs: the client, the configuration and the failure count per namespace.
struct Context {
    client: Client,
    namespaces: Api<Namespace>,
    config: Config,
    failures: ItemBackoff,
}

async fn reconcile(namespace: Arc<Namespace>, context: Arc<Context>) -> Result<Action> {
    let name = namespace.name_any();
    let wait = context.sync(&name).await?;
    context.failures.forget(&name);
    Ok(match wait {
        Some(delay) => {
            tracing::debug!(namespace = %name, "content remaining, looking again in {delay:?}");
            Action::requeue(delay)
        }
        None => Action::await_change(),
    })
}

fn error_policy(namespace: Arc<Namespace>, error: &Error, context: Arc<Context>) -> Action {
    let name = namespace.name_any();
    let delay = context.failures.failed(&name);
    let error = error_chain(error);
    tracing::warn!(namespace = %name, %error, "namespace deletion failed; retrying in {delay:?}");
    Action::requeue(delay)
}

/// An error and its sources, `: `-separated.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A client error as upstream's messages quote it: a `Status` by its message (Go's
/// `StatusError.Error()`), anything else as it displays.
pub(crate) fn message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => error_chain(other),
    }
}

/// Whether the server said the operation is not served for this resource (405, or 404 as for
/// resources discovery lists without top-level verbs).
fn unsupported(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if s.code == 405 || s.code == 404)
}

/// The namespace writes this controller makes, each retried on conflict.
#[derive(Debug, Clone, Copy)]
enum Update {
    /// `status.phase: Terminating`, unless already so.
    Terminating,
    /// `spec.finalizers` without [`FINALIZER`], through `namespaces/{name}/finalize`.
    Finalize,
}

/// What one resource left behind.
#[derive(Debug, Default)]
struct Left {
    /// How long to wait for it; zero when there is no reason to wait.
    estimate: Duration,
    /// Instances left.
    remaining: usize,
    /// Instances left per finalizer.
    finalizers: BTreeMap<String, usize>,
}

impl Context {
    /// One pass over namespace `name`; `Some(delay)` when content remains to wait for.
    async fn sync(&self, name: &str) -> Result<Option<Duration>> {
        let api_error = |action| {
            move |source| Error::Api {
                action,
                namespace: name.to_string(),
                source,
            }
        };
        let Some(namespace) = self
            .namespaces
            .get_opt(name)
            .await
            .map_err(api_error("reading"))?
        else {
            return Ok(None);
        };
        if namespace.metadata.deletion_timestamp.is_none() {
            return Ok(None);
        }
        let Some(namespace) = self.update(namespace, Update::Terminating).await? else {
            return Ok(None);
        };
        let (estimate, namespace) = self.delete_all_content(namespace).await?;
        if !estimate.is_zero() {
            return Ok(Some(estimate / 2 + Duration::from_secs(1)));
        }
        self.update(namespace, Update::Finalize).await?;
        Ok(None)
    }

    /// Makes `update` to `namespace`, re-reading it on conflict; `None` once it is gone.
    async fn update(&self, namespace: Namespace, update: Update) -> Result<Option<Namespace>> {
        let name = namespace.name_any();
        let mut current = namespace;
        loop {
            let attempt = match update {
                Update::Terminating => self.mark_terminating(&current).await,
                Update::Finalize => self.finalize(&current).await,
            };
            let source = match attempt {
                Ok(updated) => return Ok(Some(updated)),
                Err(kube::Error::Api(s)) if s.is_not_found() => return Ok(None),
                Err(kube::Error::Api(s)) if s.is_conflict() => {
                    let latest = self.namespaces.get_opt(&name).await;
                    match latest {
                        Ok(None) => return Ok(None),
                        Ok(Some(latest)) if latest.metadata.uid != current.metadata.uid => {
                            return Err(Error::UidChanged { namespace: name });
                        }
                        Ok(Some(latest)) => {
                            current = latest;
                            continue;
                        }
                        Err(source) => source,
                    }
                }
                Err(source) => source,
            };
            let action = match update {
                Update::Terminating => "marking as terminating",
                Update::Finalize => "finalizing",
            };
            return Err(Error::Api {
                action,
                namespace: name,
                source,
            });
        }
    }

    async fn mark_terminating(&self, namespace: &Namespace) -> kube::Result<Namespace> {
        let phase = namespace.status.as_ref().and_then(|s| s.phase.as_deref());
        if phase == Some("Terminating") {
            return Ok(namespace.clone());
        }
        let mut terminating = namespace.clone();
        terminating
            .status
            .get_or_insert_with(Default::default)
            .phase = Some("Terminating".into());
        self.namespaces
            .replace_status(&namespace.name_any(), &PostParams::default(), &terminating)
            .await
    }

    async fn finalize(&self, namespace: &Namespace) -> kube::Result<Namespace> {
        let mut finalized = namespace.clone();
        let spec = finalized.spec.get_or_insert_with(Default::default);
        // The others, sorted and without duplicates, as upstream's string set lists them.
        let kept: BTreeSet<String> = spec
            .finalizers
            .iter()
            .flatten()
            .filter(|f| *f != FINALIZER)
            .cloned()
            .collect();
        spec.finalizers = Some(kept.into_iter().collect());
        self.namespaces
            .replace_subresource(
                "finalize",
                &namespace.name_any(),
                &PostParams::default(),
                &finalized,
            )
            .await
    }

    /// Deletes everything in `namespace` and records the outcome in its conditions; returns how
    /// long to wait for what is left (zero: nothing is) and the namespace as last written.
    async fn delete_all_content(&self, namespace: Namespace) -> Result<(Duration, Namespace)> {
        let name = namespace.name_any();
        let deleted_at = namespace
            .metadata
            .deletion_timestamp
            .as_ref()
            .map_or_else(Timestamp::now, |t| t.0);
        let discovered = discovery::discover(&self.client).await;
        let mut errors: Vec<String> = Vec::new();
        errors.extend(discovered.failure.clone());
        errors.extend(discovered.parse_failure.clone());
        let mut findings = Findings {
            discovery_failure: discovered.failure,
            group_version_failure: discovered.parse_failure,
            ..Findings::default()
        };
        let mut estimate = Duration::ZERO;
        for resource in &discovered.resources {
            // A failure is kept and the other resources still deleted.
            let (left, failure) = self.delete_resource(resource, &name, deleted_at).await;
            if let Some(failure) = failure {
                findings.content_failures.push(failure.clone());
                errors.push(failure);
            }
            estimate = estimate.max(left.estimate);
            if left.remaining > 0 {
                findings
                    .remaining
                    .insert(resource.group_resource(), left.remaining);
                for (finalizer, count) in left.finalizers {
                    *findings.finalizers.entry(finalizer).or_default() += count;
                }
            }
        }

        // Always written: a condition that stopped failing must say so.
        let mut namespace = namespace;
        let now = Time(Timestamp::now());
        if conditions::apply(
            namespace.status.get_or_insert_with(Default::default),
            &findings,
            &now,
        ) {
            match self
                .namespaces
                .replace_status(&name, &PostParams::default(), &namespace)
                .await
            {
                Ok(written) => namespace = written,
                Err(e) => tracing::warn!(
                    namespace = %name,
                    error = %error_chain(&e),
                    "couldn't update the namespace's status conditions"
                ),
            }
        }
        if errors.is_empty() {
            Ok((estimate, namespace))
        } else {
            Err(Error::Content {
                namespace: name,
                message: aggregate(&errors),
            })
        }
    }

    /// Deletes `resource` in `namespace` (upstream's `deleteAllContentForGroupVersionResource`):
    /// what is left, and what failed.
    async fn delete_resource(
        &self,
        resource: &Deletable,
        namespace: &str,
        deleted_at: Timestamp,
    ) -> (Left, Option<String>) {
        let estimate = if resource.is_pods() {
            match self.pods_estimate(namespace, deleted_at).await {
                Ok(estimate) => estimate,
                Err(e) => return (Left::default(), Some(message(&e))),
            }
        } else {
            Duration::ZERO
        };
        let waiting = Left {
            estimate,
            ..Left::default()
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource.api_resource());
        // Background: the namespace is emptied before it goes, so nothing is orphaned.
        let background = DeleteParams::background();
        let everything = ListParams::default();

        let mut collected = false;
        if resource.deletecollection {
            match api.delete_collection(&background, &everything).await {
                Ok(_) => collected = true,
                Err(e) if unsupported(&e) => {}
                Err(e) => return (waiting, Some(message(&e))),
            }
        }
        if !collected && resource.list {
            match api.list_metadata(&everything).await {
                Ok(items) => {
                    for item in items {
                        match api.delete(&item.name_any(), &background).await {
                            Ok(_) => {}
                            Err(e) if unsupported(&e) => {}
                            Err(e) => return (waiting, Some(message(&e))),
                        }
                    }
                }
                Err(e) if unsupported(&e) => {}
                Err(e) => return (waiting, Some(message(&e))),
            }
        }
        if !resource.list {
            return (waiting, None);
        }

        let items = match api.list_metadata(&everything).await {
            Ok(list) => list.items,
            Err(e) if unsupported(&e) => return (waiting, None),
            Err(e) => return (waiting, Some(message(&e))),
        };
        if items.is_empty() {
            return (Left::default(), None);
        }
        let mut finalizers = BTreeMap::new();
        for item in &items {
            for finalizer in item.finalizers() {
                *finalizers.entry(finalizer.clone()).or_default() += 1;
            }
        }
        let remaining = items.len();
        if !estimate.is_zero() {
            return (
                Left {
                    estimate,
                    remaining,
                    finalizers,
                },
                None,
            );
        }
        if !finalizers.is_empty() {
            // Finalizers are normal: give their controllers time.
            let estimate = self.config.finalizer_estimate;
            return (
                Left {
                    estimate,
                    remaining,
                    finalizers,
                },
                None,
            );
        }
        (
            Left {
                remaining,
                ..Left::default()
            },
            Some(format!(
                "unexpected items still remain in namespace: {namespace} for gvr: {}",
                resource.gvr()
            )),
        )
    }

    /// How long the pods in `namespace` may still take to terminate: the longest grace period
    /// of a pod not yet finished, unless that much time has passed since `deleted_at`.
    async fn pods_estimate(
        &self,
        namespace: &str,
        deleted_at: Timestamp,
    ) -> kube::Result<Duration> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let list = pods.list(&ListParams::default()).await?;
        let longest = list
            .items
            .iter()
            .filter(|pod| {
                let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
                !matches!(phase, Some("Succeeded" | "Failed"))
            })
            .filter_map(|pod| pod.spec.as_ref()?.termination_grace_period_seconds)
            .max()
            .unwrap_or(0);
        // Upstream compares whole seconds since the deletion with the grace period.
        let elapsed = Timestamp::now().duration_since(deleted_at).as_secs();
        Ok(if elapsed >= longest {
            Duration::ZERO
        } else {
            Duration::from_secs(u64::try_from(longest).unwrap_or(0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_errors_are_quoted_by_their_message() {
        let status = kube::core::Status::failure("configmaps is forbidden", "Forbidden");
        assert_eq!(
            message(&kube::Error::Api(Box::new(status))),
            "configmaps is forbidden"
        );
    }
}
