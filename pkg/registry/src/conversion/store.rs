//! [`ConvertingStore`]: one served version of a kind over a storage prefix that holds another.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::{BoxFuture, ready};
use rkube_api::resources::Resource;
use rkube_storage::{
    BoxError, DeleteValidation, GetOptions, ListOptions, Object, ObjectList, Preconditions,
    Predicate, Result, Revision, StorageError, Store, Update, UpdateFn, WatchEvent, WatchOptions,
    WatchStream,
};
use serde_json::Value;

use super::convert;

/// A [`Store`] that serves one version of a kind over a store that keeps its objects in
/// another (see the [module docs](super)): kube-apiserver's conversion between the request's
/// version and the storage version, done here so the registry above sees one version only.
///
/// It sits above the watch cache, which a prefix's versions share: the cache holds stored
/// objects once and each served version converts what it hands out.
pub struct ConvertingStore {
    inner: Arc<dyn Store>,
    view: View,
}

impl ConvertingStore {
    /// `resource`'s view of `inner`, which holds `resource`'s storage prefix.
    pub fn new(inner: Arc<dyn Store>, resource: &Resource) -> Self {
        ConvertingStore {
            inner,
            view: View {
                kind: resource.kind,
                served: resource.api_version().into(),
                stored: resource.storage_api_version().into(),
            },
        }
    }
}

impl fmt::Debug for ConvertingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConvertingStore")
            .field("kind", &self.view.kind)
            .field("served", &self.view.served)
            .field("stored", &self.view.stored)
            .finish_non_exhaustive()
    }
}

/// The two versions, cheap to clone into predicates, streams and update futures.
#[derive(Debug, Clone)]
struct View {
    kind: &'static str,
    served: Arc<str>,
    stored: Arc<str>,
}

impl View {
    /// A stored object as the served version shows it.
    fn served(&self, object: Object) -> Result<Object> {
        match convert(self.kind, object.value(), &self.served) {
            Ok(None) => Ok(object),
            Ok(Some(value)) => Object::new(object.key(), value, object.revision()),
            Err(e) => Err(invalid(object.key(), e)),
        }
    }

    /// A served object as it is stored.
    fn stored(&self, key: &str, value: Value) -> Result<Value> {
        match convert(self.kind, &value, &self.stored) {
            Ok(None) => Ok(value),
            Ok(Some(converted)) => Ok(converted),
            Err(e) => Err(invalid(key, e)),
        }
    }

    /// `predicate` (over served objects) as a predicate over stored ones. An object that
    /// does not convert matches, so that reading it reports the error instead of skipping it.
    fn predicate(&self, predicate: &Predicate) -> Predicate {
        if predicate.is_everything() {
            return Predicate::everything();
        }
        let (view, predicate) = (self.clone(), predicate.clone());
        Predicate::new(
            move |stored| match convert(view.kind, stored, &view.served) {
                Ok(None) => predicate.matches(stored),
                Ok(Some(served)) => predicate.matches(&served),
                Err(_) => true,
            },
        )
    }

    fn event(&self, event: WatchEvent) -> WatchEvent {
        let served = |object, wrap: fn(Object) -> WatchEvent| {
            self.served(object).map_or_else(WatchEvent::Error, wrap)
        };
        match event {
            WatchEvent::Added(o) => served(o, WatchEvent::Added),
            WatchEvent::Modified(o) => served(o, WatchEvent::Modified),
            WatchEvent::Deleted(o) => served(o, WatchEvent::Deleted),
            other @ (WatchEvent::Bookmark { .. } | WatchEvent::Error(_)) => other,
        }
    }
}

fn invalid(key: &str, err: super::Error) -> StorageError {
    StorageError::InvalidObject {
        key: key.to_string(),
        reason: err.to_string(),
    }
}

/// A callback's result that failed before the callback ran.
fn failed<'a, T: Send + 'a>(err: StorageError) -> BoxFuture<'a, std::result::Result<T, BoxError>> {
    Box::pin(ready(Err(err.into())))
}

#[async_trait]
impl Store for ConvertingStore {
    async fn create(&self, key: &str, value: Value, ttl: Option<Duration>) -> Result<Object> {
        let value = self.view.stored(key, value)?;
        let created = self.inner.create(key, value, ttl).await?;
        self.view.served(created)
    }

    async fn get(&self, key: &str, options: &GetOptions) -> Result<Object> {
        self.view.served(self.inner.get(key, options).await?)
    }

    async fn list(&self, prefix: &str, options: &ListOptions) -> Result<ObjectList> {
        let options = ListOptions {
            predicate: self.view.predicate(&options.predicate),
            ..options.clone()
        };
        let mut list = self.inner.list(prefix, &options).await?;
        list.items = list
            .items
            .into_iter()
            .map(|o| self.view.served(o))
            .collect::<Result<_>>()?;
        Ok(list)
    }

    async fn watch(&self, prefix: &str, options: &WatchOptions) -> Result<WatchStream> {
        let options = WatchOptions {
            predicate: self.view.predicate(&options.predicate),
            ..options.clone()
        };
        let view = self.view.clone();
        Ok(self
            .inner
            .watch(prefix, &options)
            .await?
            .map(move |event| view.event(event)))
    }

    async fn guaranteed_update(
        &self,
        key: &str,
        preconditions: &Preconditions,
        ignore_not_found: bool,
        update: &mut UpdateFn<'_>,
    ) -> Result<Object> {
        let view = &self.view;
        // The caller's function sees and returns the served version; the store compares and
        // writes the stored one.
        let mut converting = |current: Option<Object>| {
            let current = match current.map(|o| view.served(o)).transpose() {
                Ok(current) => current,
                Err(e) => return failed(e),
            };
            let pending = update(current);
            let (view, key) = (view.clone(), key.to_string());
            Box::pin(async move {
                let mut next: Update = pending.await?;
                next.value = view.stored(&key, next.value)?;
                Ok(next)
            }) as BoxFuture<'_, _>
        };
        let updated = self
            .inner
            .guaranteed_update(key, preconditions, ignore_not_found, &mut converting)
            .await?;
        self.view.served(updated)
    }

    async fn delete(
        &self,
        key: &str,
        preconditions: &Preconditions,
        validate: Option<&mut DeleteValidation<'_>>,
    ) -> Result<Object> {
        let deleted = match validate {
            None => self.inner.delete(key, preconditions, None).await?,
            Some(validate) => {
                let view = &self.view;
                let mut converting = |current: Object| match view.served(current) {
                    Ok(current) => validate(current),
                    Err(e) => failed(e),
                };
                self.inner
                    .delete(key, preconditions, Some(&mut converting))
                    .await?
            }
        };
        self.view.served(deleted)
    }

    async fn count(&self, prefix: &str) -> Result<u64> {
        self.inner.count(prefix).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.inner.current_revision().await
    }
}
