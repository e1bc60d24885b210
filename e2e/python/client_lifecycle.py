"""The official Python client (PyPI `kubernetes`) against rkube: create, list, watch,
replace (and a stale replace refused), delete with resourceVersion preconditions.

Usage: client_lifecycle.py KUBECONFIG NAMESPACE; prints "ok" and exits 0 when every
expectation holds, raises otherwise.
"""

import sys
import threading

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


def expect_status(status, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except ApiException as error:
        assert error.status == status, f"expected {status}, got {error.status}: {error.body}"
        return error
    raise AssertionError(f"expected HTTP {status}, the call succeeded")


def main(kubeconfig, namespace):
    config.load_kube_config(config_file=kubeconfig)
    v1 = client.CoreV1Api()
    v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))

    events = []

    def follow():
        # Without a resourceVersion the watch first replays what exists, so nothing created
        # before it starts is missed.
        stream = watch.Watch()
        for event in stream.stream(
            v1.list_namespaced_config_map,
            namespace=namespace,
            field_selector="metadata.name=py",
            timeout_seconds=60,
        ):
            events.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                stream.stop()

    watcher = threading.Thread(target=follow)
    watcher.start()

    created = v1.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py"), data={"k": "v"}),
    )
    assert created.metadata.resource_version and created.metadata.uid, created.metadata
    # Every namespace also has the root CA publisher's ConfigMap.
    listed = v1.list_namespaced_config_map(
        namespace, field_selector="metadata.name!=kube-root-ca.crt"
    )
    assert [c.metadata.name for c in listed.items] == ["py"], listed.items
    assert listed.metadata.resource_version

    created.data["k"] = "v2"
    replaced = v1.replace_namespaced_config_map("py", namespace, created)
    assert replaced.data == {"k": "v2"}, replaced.data
    stale = expect_status(409, v1.replace_namespaced_config_map, "py", namespace, created)
    assert "the object has been modified" in stale.body, stale.body

    old = client.V1DeleteOptions(
        preconditions=client.V1Preconditions(resource_version=created.metadata.resource_version)
    )
    expect_status(409, v1.delete_namespaced_config_map, "py", namespace, body=old)
    current = client.V1DeleteOptions(
        preconditions=client.V1Preconditions(resource_version=replaced.metadata.resource_version)
    )
    v1.delete_namespaced_config_map("py", namespace, body=current)
    expect_status(404, v1.read_namespaced_config_map, "py", namespace)

    watcher.join(timeout=60)
    assert not watcher.is_alive(), f"the watch never saw the delete: {events}"
    assert events == [("ADDED", "py"), ("MODIFIED", "py"), ("DELETED", "py")], events
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
