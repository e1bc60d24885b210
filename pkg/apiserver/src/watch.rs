//! Watch responses, as upstream's `WatchServer` over HTTP: a chunked stream of
//! newline-separated JSON frames `{"type":"ADDED","object":...}`, or for protobuf clients
//! (`application/vnd.kubernetes.protobuf;stream=watch`) length-delimited `WatchEvent` messages
//! whose `object.raw` is the object's whole protobuf body
//! ([`rkube_api::protobuf::watch_frame`]).
//!
//! A JSON event's object is written from its shared, already encoded bytes
//! ([`rkube_storage::Object::json`]): a frame is a fixed prefix, those bytes and a suffix, so a
//! write fanned out to many watchers is serialized once. Protobuf frames are encoded per watcher
//! (objects have no shared protobuf encoding yet). The stream ends on an ERROR frame, when
//! `timeoutSeconds` (or the server's randomized default) elapses, or when the client goes away:
//! the body is dropped, which drops the storage watch with it; nothing is spawned.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use http::{HeaderValue, StatusCode, header};
use rkube_api::resources::Resource;
use rkube_api::status::ApiError;
use rkube_registry::errors::{Operation, to_api_error};
use rkube_storage::{Object, WatchEvent, WatchStream};
use serde_json::{Value, json};

use crate::as_table::{self, Include, ListMeta};
use crate::negotiate::{Encoding, Transform};

/// Marks a response the compression layer must leave alone (a stream flushed frame by frame).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Uncompressed;

/// Upstream's `--min-request-timeout` (1800s): a watch without `timeoutSeconds` lasts a random
/// time in [1800s, 3600s), spreading reconnects of many clients.
const MIN_REQUEST_TIMEOUT_SECS: u64 = 1800;

/// How long a watch lasts.
pub(crate) fn timeout(timeout_seconds: Option<i64>) -> Duration {
    match timeout_seconds {
        Some(s) if s > 0 => Duration::from_secs(s.unsigned_abs()),
        _ => {
            // Random bits from a fresh v4 UUID: no extra dependency for one random number.
            let jitter = (uuid::Uuid::new_v4().as_u128() as u64) % MIN_REQUEST_TIMEOUT_SECS;
            Duration::from_secs(MIN_REQUEST_TIMEOUT_SECS + jitter)
        }
    }
}

/// How events are rendered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Render {
    /// The resource watched (bookmark kind, table columns).
    pub resource: &'static Resource,
    /// Plain objects, one-row Tables or PartialObjectMetadata.
    pub transform: Transform,
    /// JSON or protobuf frames (negotiation never picks YAML for a watch).
    pub encoding: Encoding,
    /// Row objects of a Table.
    pub include: Include,
}

/// `{"type":"<type>","object":` + object + `}\n`.
fn frame(event_type: &str, object: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(object.len() + event_type.len() + 24);
    out.put_slice(b"{\"type\":\"");
    out.put_slice(event_type.as_bytes());
    out.put_slice(b"\",\"object\":");
    out.put_slice(object);
    out.put_slice(b"}\n");
    out.freeze()
}

impl Render {
    /// One frame in the stream's encoding, the object given as a value.
    fn value_frame(&self, event_type: &str, object: &Value) -> Bytes {
        match self.encoding {
            Encoding::Protobuf => {
                // Kinds and transformations negotiation allows always encode; a stored object
                // that does not fit its schema is sent as an ERROR frame instead of dropped.
                match rkube_api::protobuf::encode(object) {
                    Ok(body) => Bytes::from(rkube_api::protobuf::watch_frame(event_type, &body)),
                    Err(e) => self.error(&ApiError::internal(e)),
                }
            }
            // A `Value` always serializes.
            _ => frame(event_type, &serde_json::to_vec(object).unwrap_or_default()),
        }
    }

    fn object_frame(&self, event_type: &str, object: &Object, first: &mut bool) -> Bytes {
        match self.transform {
            Transform::None | Transform::PartialObjectMetadataList => match self.encoding {
                Encoding::Protobuf => self.value_frame(event_type, object.value()),
                _ => frame(event_type, object.json()),
            },
            Transform::PartialObjectMetadata => self.value_frame(
                event_type,
                &as_table::partial_object_metadata(object.value()),
            ),
            Transform::Table => {
                let meta = ListMeta {
                    resource_version: object.revision().to_string(),
                    ..ListMeta::default()
                };
                let table = as_table::table(
                    self.resource,
                    std::iter::once(object.value()),
                    &meta,
                    self.include,
                    *first,
                );
                *first = false;
                self.value_frame(event_type, &table)
            }
        }
    }

    /// A bookmark as upstream sends it: an empty object of the watched kind carrying only the
    /// resourceVersion (and the initial-events-end annotation when it closes them).
    fn bookmark(&self, revision: u64, initial_events_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({
            "kind": self.resource.kind,
            "apiVersion": self.resource.api_version(),
            "metadata": metadata,
        });
        self.value_frame("BOOKMARK", &object)
    }

    /// One event's frame; the bool is true when the stream must end after it.
    fn event(&self, event: WatchEvent, first: &mut bool) -> (Bytes, bool) {
        match event {
            WatchEvent::Added(o) => (self.object_frame("ADDED", &o, first), false),
            WatchEvent::Modified(o) => (self.object_frame("MODIFIED", &o, first), false),
            WatchEvent::Deleted(o) => (self.object_frame("DELETED", &o, first), false),
            WatchEvent::Bookmark {
                revision,
                initial_events_end,
            } => (self.bookmark(revision, initial_events_end), false),
            WatchEvent::Error(e) => {
                // The registry's conversion is the one place storage errors become a Status.
                let status = to_api_error(e, self.resource, "", Operation::Watch);
                (self.error(&status), true)
            }
        }
    }

    /// An ERROR frame carrying a Status.
    pub fn error(&self, err: &ApiError) -> Bytes {
        match self.encoding {
            Encoding::Protobuf => {
                let status = serde_json::to_value(err).unwrap_or_default();
                // A Status always has its message; JSON is the last resort all the same.
                match rkube_api::protobuf::encode(&status) {
                    Ok(body) => Bytes::from(rkube_api::protobuf::watch_frame("ERROR", &body)),
                    Err(_) => frame("ERROR", &err.to_json()),
                }
            }
            _ => frame("ERROR", &err.to_json()),
        }
    }
}

/// The streaming response of a watch.
pub(crate) fn response(events: WatchStream, render: Render, duration: Duration) -> Response {
    let deadline = tokio::time::sleep(duration);
    let frames = futures::stream::unfold(
        (events, false, true),
        move |(mut events, done, mut first)| async move {
            if done {
                return None;
            }
            let event = events.next().await?;
            let (bytes, end) = render.event(event, &mut first);
            Some((
                Ok::<_, std::convert::Infallible>(bytes),
                (events, end, first),
            ))
        },
    )
    .take_until(deadline);
    let mut response = Response::new(Body::from_stream(frames));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(render.encoding.stream_content_type()),
    );
    response.extensions_mut().insert(Uncompressed);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkube_storage::StorageError;

    fn render() -> Render {
        Render {
            resource: rkube_api::resources::lookup("", "v1", "configmaps").expect("cm"),
            transform: Transform::None,
            encoding: Encoding::Json,
            include: Include::Metadata,
        }
    }

    #[test]
    fn frames_embed_the_shared_bytes() {
        let o = Object::new("/k", json!({"metadata": {"name": "a"}}), 4).expect("object");
        let (bytes, end) = render().event(WatchEvent::Added(o), &mut true);
        assert!(!end);
        assert_eq!(
            &bytes[..],
            br#"{"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"4"}}}
"#
        );
    }

    #[test]
    fn bookmarks_and_errors_are_upstream_shaped() {
        let (bytes, _) = render().event(
            WatchEvent::Bookmark {
                revision: 9,
                initial_events_end: true,
            },
            &mut true,
        );
        let v: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(
            v,
            json!({"type": "BOOKMARK", "object": {"kind": "ConfigMap", "apiVersion": "v1",
                "metadata": {"resourceVersion": "9", "annotations": {"k8s.io/initial-events-end": "true"}}}})
        );
        let (bytes, end) = render().event(
            WatchEvent::Error(StorageError::Compacted {
                requested: 3,
                compacted: 7,
            }),
            &mut true,
        );
        assert!(end);
        let v: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(v["type"], "ERROR");
        assert_eq!(v["object"]["code"], 410);
        assert_eq!(v["object"]["reason"], "Expired");
        assert_eq!(v["object"]["message"], "too old resource version: 3 (7)");
    }

    /// The event type and the object of a protobuf frame (the object's body ends the frame).
    fn protobuf_event(frame: &[u8]) -> (String, Value) {
        let len = u32::from_be_bytes(frame[..4].try_into().expect("length"));
        assert_eq!(len as usize, frame.len() - 4);
        let type_len = usize::from(frame[5]);
        let event_type = String::from_utf8(frame[6..6 + type_len].to_vec()).expect("type");
        let body = frame
            .windows(4)
            .position(|w| w == rkube_api::protobuf::MAGIC)
            .expect("the object's body");
        let object = rkube_api::protobuf::decode(&frame[body..]).expect("object");
        (event_type, object)
    }

    #[test]
    fn protobuf_bookmarks_and_errors() {
        let render = Render {
            encoding: Encoding::Protobuf,
            ..render()
        };
        let (bytes, _) = render.event(
            WatchEvent::Bookmark {
                revision: 9,
                initial_events_end: false,
            },
            &mut true,
        );
        let (event_type, object) = protobuf_event(&bytes);
        assert_eq!(event_type, "BOOKMARK");
        assert_eq!(
            object,
            json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"resourceVersion": "9"}})
        );
        let (bytes, end) = render.event(
            WatchEvent::Error(StorageError::Compacted {
                requested: 3,
                compacted: 7,
            }),
            &mut true,
        );
        assert!(end);
        let (event_type, status) = protobuf_event(&bytes);
        assert_eq!(event_type, "ERROR");
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["code"], 410);
        assert_eq!(status["reason"], "Expired");
    }

    #[test]
    fn default_timeout_is_in_upstream_range() {
        let d = timeout(None).as_secs();
        assert!((1800..3600).contains(&d), "{d}");
        assert_eq!(timeout(Some(5)), Duration::from_secs(5));
    }
}
