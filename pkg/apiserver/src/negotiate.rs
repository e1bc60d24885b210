//! Content negotiation: which representation a response takes (`Accept`), and what a request
//! body is (`Content-Type`), as upstream's `endpoints/handlers/negotiation`.
//!
//! `Accept` is a list of media ranges with parameters and q-values; the first acceptable range
//! in preference order wins. Parameters select a server-side transformation: `as=Table`
//! (kubectl's columns), `as=PartialObjectMetadata[List]` (metadata-only informers) and
//! `as=APIGroupDiscoveryList` (aggregated discovery). JSON and YAML are the encodings served;
//! protobuf is not, so clients that ask for it with a JSON fallback get JSON.

use rkube_api::status::ApiError;

use crate::response::Failure;

/// Media types a response can be encoded as, in upstream's order for the 406 message.
pub(crate) const SERVED_MEDIA_TYPES: &[&str] = &["application/json", "application/yaml"];

/// Media types a request body can be in, in the order upstream lists them in its 415 answer.
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
}

impl Encoding {
    /// The `Content-Type` of a body in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/json",
            Encoding::Yaml => "application/yaml",
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
    match (range.type_.as_str(), range.subtype.as_str()) {
        ("*", "*") | ("application", "*") | ("application", "json") => Some(Encoding::Json),
        // A watch is a stream of JSON frames; upstream has no YAML stream either.
        ("application", "yaml") if !streaming => Some(Encoding::Yaml),
        _ => None,
    }
}

/// Picks the output of a resource request (get, list, watch, writes). `streaming` is true for
/// watches; `list` selects the list form of the metadata transformation.
pub(crate) fn negotiate_output(
    accept: Option<&str>,
    streaming: bool,
    list: bool,
) -> Result<Output, Failure> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Output::JSON);
    };
    for range in parse_accept(accept) {
        let Some(encoding) = encoding_of(&range, streaming) else {
            continue;
        };
        let transform = match range.param("as") {
            None => Transform::None,
            Some(kind) => {
                // Transformations exist only in meta.k8s.io/v1 (v1beta1 Tables are gone).
                if range.param("g") != Some("meta.k8s.io") || range.param("v") != Some("v1") {
                    continue;
                }
                match kind {
                    "Table" => Transform::Table,
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
    Err(ApiError::not_acceptable(SERVED_MEDIA_TYPES).into())
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

    #[test]
    fn outputs_follow_upstream() {
        let json = Ok(Output::JSON);
        assert_eq!(negotiate_output(None, false, false), json);
        assert_eq!(negotiate_output(Some("*/*"), false, false), json);
        assert_eq!(
            negotiate_output(
                Some("application/vnd.kubernetes.protobuf, application/json"),
                false,
                false
            ),
            json
        );
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            negotiate_output(Some(kubectl), false, true).map(|o| o.transform),
            Ok(Transform::Table)
        );
        assert_eq!(
            negotiate_output(Some("application/yaml"), false, false).map(|o| o.encoding),
            Ok(Encoding::Yaml)
        );
        let err = negotiate_output(Some("application/yaml"), true, true).unwrap_err();
        assert_eq!(err.code(), 406);
        assert_eq!(
            err.message(),
            "only the following media types are accepted: application/json, application/yaml"
        );
        assert_eq!(
            negotiate_output(
                Some("application/json;as=Table;v=v1beta1;g=meta.k8s.io"),
                false,
                false
            )
            .map_err(|e| e.code()),
            Err(406)
        );
        assert_eq!(
            negotiate_output(
                Some("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"),
                false,
                true
            )
            .map(|o| o.transform),
            Ok(Transform::PartialObjectMetadataList)
        );
        assert!(
            negotiate_output(Some("application/vnd.kubernetes.protobuf"), false, false).is_err()
        );
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
