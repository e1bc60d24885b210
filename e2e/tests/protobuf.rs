//! Protobuf responses from the real binary, as client-go's protobuf clients ask for them
//! (`Accept: application/vnd.kubernetes.protobuf, application/json`): objects, lists, error
//! Statuses and watch streams over TLS with the admin's certificate, read with rkube's decoder;
//! and kubectl's typed commands, which read those answers themselves.

// Helpers of tests: a failed expectation is a test failure, as in the tests themselves.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};

use rkube_api::protobuf;
use rkube_e2e::{Cluster, api_kubectls};
use serde_json::Value;

const CLIENT_GO: &str = "application/vnd.kubernetes.protobuf, application/json";

/// A binary answer: status, content type, body.
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

/// Starts curl for `path` with client-go's protobuf `Accept`, the body going to a file.
fn curl(cluster: &Cluster, path: &str, out: &std::path::Path) -> Command {
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--max-time", "20"])
        .args(["--write-out", "%{http_code}\n%{content_type}"])
        .args(["--header", &format!("Accept: {CLIENT_GO}")])
        .args(cluster.client_files().unwrap().curl_args())
        .arg("--output")
        .arg(out)
        .arg(format!("{}{path}", cluster.url()))
        .stdin(Stdio::null());
    cmd
}

fn answer(output: &std::process::Output, out: &std::path::Path) -> Answer {
    assert!(
        output.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (status, content_type) = text.split_once('\n').unwrap();
    Answer {
        status: status.parse().unwrap(),
        content_type: content_type.to_owned(),
        body: std::fs::read(out).unwrap(),
    }
}

fn get(cluster: &Cluster, path: &str) -> Answer {
    let out = tempfile::NamedTempFile::new().unwrap();
    let output = curl(cluster, path, out.path()).output().unwrap();
    answer(&output, out.path())
}

fn decoded(answer: &Answer) -> Value {
    assert_eq!(answer.content_type, "application/vnd.kubernetes.protobuf");
    protobuf::decode(&answer.body).unwrap()
}

/// Splits a protobuf watch stream into events: 4-byte big-endian lengths, each frame a
/// `WatchEvent{type = 1, object = 2: RawExtension{raw = 1}}` without magic or envelope.
fn watch_events(mut stream: &[u8]) -> Vec<(String, Value)> {
    fn field(msg: &mut &[u8]) -> (u8, Vec<u8>) {
        let key = msg[0];
        let (mut len, mut shift, mut i) = (0usize, 0, 1);
        loop {
            len |= usize::from(msg[i] & 0x7f) << shift;
            i += 1;
            if msg[i - 1] & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let value = msg[i..i + len].to_vec();
        *msg = &msg[i + len..];
        (key, value)
    }
    let mut events = Vec::new();
    while !stream.is_empty() {
        let len = u32::from_be_bytes(stream[..4].try_into().unwrap()) as usize;
        let mut event = &stream[4..4 + len];
        stream = &stream[4 + len..];
        let (type_key, event_type) = field(&mut event);
        let (object_key, raw_extension) = field(&mut event);
        assert_eq!((type_key, object_key), (0x0a, 0x12));
        let (raw_key, raw) = field(&mut raw_extension.as_slice());
        assert_eq!(raw_key, 0x0a);
        events.push((
            String::from_utf8(event_type).unwrap(),
            protobuf::decode(&raw).unwrap(),
        ));
    }
    events
}

#[test]
fn protobuf_objects_lists_errors_and_watches() {
    let cluster = Cluster::start(&[]).unwrap();
    let kubectl = api_kubectls().into_iter().next().expect("a kubectl");
    let ok = |args: &[&str]| {
        let out = cluster.kubectl(&kubectl, args).unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(&["create", "namespace", "pb"]);
    ok(&[
        "create",
        "configmap",
        "c1",
        "-n",
        "pb",
        "--from-literal=a=1",
    ]);
    let cms = "/api/v1/namespaces/pb/configmaps";

    let got = get(&cluster, &format!("{cms}/c1"));
    assert_eq!(got.status, 200);
    let c1 = decoded(&got);
    assert_eq!(c1["kind"], "ConfigMap");
    assert_eq!(c1["data"]["a"], "1");

    let list = get(&cluster, cms);
    assert_eq!(list.status, 200);
    let list = decoded(&list);
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["items"][0]["metadata"]["name"], "c1");
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();

    let missing = get(&cluster, &format!("{cms}/nope"));
    assert_eq!(missing.status, 404);
    let status = decoded(&missing);
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "NotFound");
    assert_eq!(status["message"], r#"configmaps "nope" not found"#);

    // Watch from the list's resourceVersion: every later change arrives, whenever curl connects.
    let out = tempfile::NamedTempFile::new().unwrap();
    let watch = curl(
        &cluster,
        &format!("{cms}?watch=true&resourceVersion={rv}&timeoutSeconds=5"),
        out.path(),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    ok(&[
        "create",
        "configmap",
        "c2",
        "-n",
        "pb",
        "--from-literal=b=2",
    ]);
    ok(&["label", "configmap", "c2", "-n", "pb", "step=two"]);
    ok(&["delete", "configmap", "c2", "-n", "pb"]);
    let watched = answer(&watch.wait_with_output().unwrap(), out.path());
    assert_eq!(watched.status, 200);
    assert_eq!(
        watched.content_type,
        "application/vnd.kubernetes.protobuf;stream=watch"
    );
    let events = watch_events(&watched.body);
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["ADDED", "MODIFIED", "DELETED"]);
    assert_eq!(events[1].1["metadata"]["labels"]["step"], "two");
    assert!(events.iter().all(|(_, o)| o["metadata"]["name"] == "c2"));
}

#[test]
fn kubectl_typed_commands_read_protobuf_answers() {
    let cluster = Cluster::start(&[]).unwrap();
    for kubectl in &api_kubectls() {
        let run = |args: &[&str]| cluster.kubectl(kubectl, args).unwrap();
        let ns = format!("pb-{}", kubectl.version.replace('.', "-"));
        // `create <kind>` and `describe` use client-go's typed clients: protobuf out and back.
        for args in [
            vec!["create", "namespace", &ns],
            vec!["create", "deployment", "web", "--image=nginx", "-n", &ns],
            vec![
                "create",
                "service",
                "clusterip",
                "web",
                "--tcp=80:8080",
                "-n",
                &ns,
            ],
            vec![
                "create",
                "configmap",
                "cfg",
                "--from-literal=a=1",
                "-n",
                &ns,
            ],
            vec!["describe", "deployment", "web", "-n", &ns],
        ] {
            let out = run(&args);
            assert!(
                out.status.success(),
                "kubectl {} {args:?}: {}",
                kubectl.version,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // A GET sends no body, so the magic number in kubectl's hex dump of bodies is the
        // answer's: kubectl really read protobuf.
        let described = run(&["describe", "configmap", "cfg", "-n", &ns, "-v=8"]);
        assert!(described.status.success(), "{described:?}");
        let log = String::from_utf8_lossy(&described.stderr);
        assert!(
            log.contains("6b 38 73 00"),
            "kubectl {} got no protobuf answer:\n{log}",
            kubectl.version
        );
        assert!(String::from_utf8_lossy(&described.stdout).contains("a:"));
        let out = run(&["describe", "service", "web", "-n", &ns]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("8080/TCP"), "{text}");
    }
}
