//! Content negotiation: which representation a response takes (`Accept`), and what a request
//! body is (`Content-Type`), as upstream's `endpoints/handlers/negotiation`.
//!
//! `Accept` is a list of media ranges with parameters and q-values; the first acceptable range
//! in preference order wins. Parameters select a server-side transformation: `as=Table`
//! (kubectl's columns), `as=PartialObjectMetadata[List]` (metadata-only informers) and
//! `as=APIGroupDiscoveryList` (aggregated discovery); `stream=watch` is accepted on JSON and
//! protobuf ranges (the encodings with a stream form), any other stream schema is not.
//!
//! Resources are served as JSON, YAML and Kubernetes protobuf. Protobuf needs a message for the
//! kind (every built-in kind has one; custom resources will not) and cannot carry a Table, so
//! such ranges are skipped, as upstream's endpoint restrictions skip them, and a client asking
//! for nothing else gets 406. Errors take the encoding of the first range without a
//! transformation (upstream's `ErrorNegotiated`), JSON when there is none.

use rkube_api::status::ApiError;

use crate::response::Failure;

/// Media types of kinds without a protobuf message (and of discovery), in upstream's order for
/// the 406 message.
pub(crate) const SERVED_MEDIA_TYPES: &[&str] = &["application/json", "application/yaml"];

/// Media types a request body can be in, and a built-in kind's response, in the order upstream
/// lists them in its 415 and 406 answers.
pub(crate) const BODY_MEDIA_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];

/// One parsed media range of an `Accept` header.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MediaRange {
    /// `application`, `*`.
    pub type_: String,
    /// `json`, `*`.
    pub subtype: String,
    /// Parameters other than `q`, keys lower-cased.
    pub params: Vec<(String, String)>,
    /// Quality, 0 to 1.
    pub q: f32,
}

impl MediaRange {
    fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses an `Accept` header into ranges sorted by preference (q descending, stable).
/// Unparseable ranges are skipped, as upstream's `goautoneg` does.
pub(crate) fn parse_accept(header: &str) -> Vec<MediaRange> {
    let mut ranges: Vec<MediaRange> = header
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let full = pieces.next()?.trim();
            let (type_, subtype) = match full.split_once('/') {
                Some((t, s)) => (t.trim(), s.trim()),
                None if full == "*" => ("*", "*"),
                None => return None,
            };
            if type_.is_empty() || subtype.is_empty() {
                return None;
            }
            let mut q = 1.0f32;
            let mut params = Vec::new();
            for p in pieces {
                let Some((k, v)) = p.split_once('=') else {
                    continue;
                };
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"'));
                if k == "q" {
                    q = v.parse().unwrap_or(0.0);
                } else {
                    params.push((k, v.to_owned()));
                }
            }
            Some(MediaRange {
                type_: type_.to_ascii_lowercase(),
                subtype: subtype.to_ascii_lowercase(),
                params,
                q,
            })
        })
        .filter(|r| r.q > 0.0)
        .collect();
    ranges.sort_by(|a, b| b.q.total_cmp(&a.q));
    ranges
}

/// The encoding of a response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// `application/json`.
    Json,
    /// `application/yaml`.
    Yaml,
    /// `application/vnd.kubernetes.protobuf`.
    Protobuf,
}

impl Encoding {
    /// The `Content-Type` of a body in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/json",
            Encoding::Yaml => "application/yaml",
            Encoding::Protobuf => rkube_api::protobuf::MEDIA_TYPE,
        }
    }

    /// The `Content-Type` of a watch stream: JSON frames are plain JSON to upstream, protobuf
    /// frames are marked as a stream.
    pub fn stream_content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/vnd.kubernetes.protobuf;stream=watch",
            other => other.content_type(),
        }
    }
}

/// A transformation asked for with `;as=<Kind>;v=<version>;g=<group>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transform {
    /// The object (or list) itself.
    None,
    /// `meta.k8s.io/v1` `Table`.
    Table,
    /// `meta.k8s.io/v1` `PartialObjectMetadata` (single objects and watch events).
    PartialObjectMetadata,
    /// `meta.k8s.io/v1` `PartialObjectMetadataList` (lists).
    PartialObjectMetadataList,
}

/// What an API resource response will be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Output {
    /// The encoding.
    pub encoding: Encoding,
    /// The transformation.
    pub transform: Transform,
}

impl Output {
    /// Plain JSON, what a missing or `*/*` Accept gets.
    pub const JSON: Output = Output {
        encoding: Encoding::Json,
        transform: Transform::None,
    };
}

/// The encoding a range names, if served (`*/*` and `application/*` mean JSON).
fn encoding_of(range: &MediaRange, streaming: bool) -> Option<Encoding> {
    let encoding = match (range.type_.as_str(), range.subtype.as_str()) {
        ("*", "*") | ("application", "*") | ("application", "json") => Encoding::Json,
        ("application", "yaml") => Encoding::Yaml,
        ("application", "vnd.kubernetes.protobuf") => Encoding::Protobuf,
        _ => return None,
    };
    // YAML has no stream form (upstream has no YAML watch either).
    let streams = encoding != Encoding::Yaml;
    match range.param("stream") {
        Some(schema) if !schema.is_empty() && (schema != "watch" || !streams) => None,
        _ if streaming && !streams => None,
        _ => Some(encoding),
    }
}

/// A request's `Accept` header, with whether the kind it asks for has a protobuf form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Accept<'a> {
    /// The header, if any.
    pub header: Option<&'a str>,
    /// The kind has a protobuf message.
    pub protobuf: bool,
}

/// Picks the output of a resource request (get, list, watch, writes). `streaming` is true for
/// watches; `list` selects the list form of the metadata transformation.
pub(crate) fn negotiate_output(
    accept: Accept<'_>,
    streaming: bool,
    list: bool,
) -> Result<Output, Failure> {
    let Accept { header, protobuf } = accept;
    let Some(accept) = header.filter(|a| !a.trim().is_empty()) else {
        return Ok(Output::JSON);
    };
    for range in parse_accept(accept) {
        let Some(encoding) = encoding_of(&range, streaming) else {
            continue;
        };
        let transform = match range.param("as") {
            None if encoding == Encoding::Protobuf && !protobuf => continue,
            None => Transform::None,
            Some(kind) => {
                // Transformations exist only in meta.k8s.io/v1 (v1beta1 Tables are gone).
                if range.param("g") != Some("meta.k8s.io") || range.param("v") != Some("v1") {
                    continue;
                }
                match kind {
                    // A Table has no protobuf form.
                    "Table" if encoding != Encoding::Protobuf => Transform::Table,
                    "PartialObjectMetadata" if !list || streaming => {
                        Transform::PartialObjectMetadata
                    }
                    "PartialObjectMetadataList" if list && !streaming => {
                        Transform::PartialObjectMetadataList
                    }
                    _ => continue,
                }
            }
        };
        return Ok(Output {
            encoding,
            transform,
        });
    }
    let served = if protobuf {
        BODY_MEDIA_TYPES
    } else {
        SERVED_MEDIA_TYPES
    };
    Err(ApiError::not_acceptable(served).into())
}

/// The encoding of an error's Status: the first acceptable range that asks for no
/// transformation, JSON when none does.
pub(crate) fn error_encoding(accept: Option<&str>) -> Encoding {
    accept
        .into_iter()
        .flat_map(parse_accept)
        .filter(|range| range.param("as").is_none())
        .find_map(|range| encoding_of(&range, false))
        .unwrap_or(Encoding::Json)
}

/// The media type of a request body, from its `Content-Type` (parameters such as `charset`
/// dropped); `None` when absent.
pub(crate) fn body_media_type(content_type: Option<&str>) -> Option<String> {
    let ct = content_type?;
    let base = ct
        .split(';')
        .next()
        .unwrap_or(ct)
        .trim()
        .to_ascii_lowercase();
    (!base.is_empty()).then_some(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_ranges_sort_by_quality() {
        let r = parse_accept(
            "text/html;q=0.1, application/json;as=Table;v=v1;g=meta.k8s.io, */*;q=0.5",
        );
        let names: Vec<_> = r
            .iter()
            .map(|m| format!("{}/{}", m.type_, m.subtype))
            .collect();
        assert_eq!(names, ["application/json", "*/*", "text/html"]);
        assert_eq!(r[0].param("as"), Some("Table"));
    }

    /// A built-in kind's endpoint.
    fn builtin(header: &str) -> Accept<'_> {
        Accept {
            header: Some(header),
            protobuf: true,
        }
    }

    /// A kind without a protobuf message (a custom resource).
    fn custom(header: &str) -> Accept<'_> {
        Accept {
            header: Some(header),
            protobuf: false,
        }
    }

    const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

    /// The encoding of a get (`watch` false) or watch.
    fn encoding(accept: Accept<'_>, watch: bool) -> Result<Encoding, u16> {
        negotiate_output(accept, watch, false)
            .map(|o| o.encoding)
            .map_err(|e| e.code())
    }

    #[test]
    fn outputs_follow_upstream() {
        let json = Ok(Output::JSON);
        let none = Accept {
            header: None,
            protobuf: true,
        };
        assert_eq!(negotiate_output(none, false, false), json);
        assert_eq!(negotiate_output(builtin("*/*"), false, false), json);
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            negotiate_output(builtin(kubectl), false, true).map(|o| o.transform),
            Ok(Transform::Table)
        );
        assert_eq!(
            encoding(builtin("application/yaml"), false),
            Ok(Encoding::Yaml)
        );
        let err = negotiate_output(builtin("application/yaml"), true, false).unwrap_err();
        assert_eq!(err.code(), 406);
        assert_eq!(
            err.message(),
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
        );
        assert_eq!(
            encoding(
                builtin("application/json;as=Table;v=v1beta1;g=meta.k8s.io"),
                false
            ),
            Err(406)
        );
        assert_eq!(
            negotiate_output(
                builtin("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"),
                false,
                true
            )
            .map(|o| o.transform),
            Ok(Transform::PartialObjectMetadataList)
        );
    }

    #[test]
    fn protobuf_where_upstream_serves_it() {
        // client-go's protobuf clients: protobuf first, JSON as the fallback.
        let client_go = "application/vnd.kubernetes.protobuf, application/json";
        for watch in [false, true] {
            assert_eq!(encoding(builtin(client_go), watch), Ok(Encoding::Protobuf));
            assert_eq!(encoding(builtin(PROTOBUF), watch), Ok(Encoding::Protobuf));
        }
        assert_eq!(
            encoding(
                builtin("application/vnd.kubernetes.protobuf;stream=watch"),
                true
            ),
            Ok(Encoding::Protobuf)
        );
        assert_eq!(
            encoding(
                builtin("application/json;q=0.5, application/vnd.kubernetes.protobuf"),
                false
            ),
            Ok(Encoding::Protobuf)
        );
        // No message for the kind: the JSON fallback, or 406 listing what it can be.
        assert_eq!(encoding(custom(client_go), false), Ok(Encoding::Json));
        let err = negotiate_output(custom(PROTOBUF), false, false).unwrap_err();
        assert_eq!(
            err.message(),
            "only the following media types are accepted: application/json, application/yaml"
        );
        // A Table has no protobuf form; metadata-only objects do, even for custom kinds.
        let table = "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io";
        assert_eq!(encoding(builtin(table), false), Err(406));
        let table_or_json = format!("{table}, application/json");
        assert_eq!(
            negotiate_output(builtin(&table_or_json), false, true),
            Ok(Output::JSON)
        );
        let metadata = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
        assert_eq!(
            negotiate_output(custom(metadata), false, true),
            Ok(Output {
                encoding: Encoding::Protobuf,
                transform: Transform::PartialObjectMetadataList
            })
        );
        // Only the watch stream schema exists, and YAML has no stream form.
        assert_eq!(
            encoding(builtin("application/json;stream=other"), false),
            Err(406)
        );
        assert_eq!(
            encoding(builtin("application/yaml;stream=watch"), false),
            Err(406)
        );
        assert_eq!(
            encoding(builtin("application/json;stream=watch"), false),
            Ok(Encoding::Json)
        );
    }

    #[test]
    fn errors_take_the_first_plain_encoding() {
        assert_eq!(error_encoding(None), Encoding::Json);
        assert_eq!(
            error_encoding(Some(
                "application/vnd.kubernetes.protobuf, application/json"
            )),
            Encoding::Protobuf
        );
        assert_eq!(error_encoding(Some("application/yaml")), Encoding::Yaml);
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
        assert_eq!(error_encoding(Some(kubectl)), Encoding::Json);
        assert_eq!(
            error_encoding(Some(
                "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io"
            )),
            Encoding::Json
        );
        assert_eq!(error_encoding(Some("text/html")), Encoding::Json);
    }

    #[test]
    fn body_media_types_drop_parameters() {
        assert_eq!(
            body_media_type(Some("application/json; charset=utf-8")).as_deref(),
            Some("application/json")
        );
        assert_eq!(body_media_type(None), None);
    }
}
