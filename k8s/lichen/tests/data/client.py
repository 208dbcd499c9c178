"""The official Python client (PyPI `kubernetes`) against `lichen server`.

Run by tests/python_client.rs as `python client.py <kubeconfig> <step>`;
each step checks what the client got back and prints `ok <step>` on
success, or raises. TMPDIR is fresh per run, so the DynamicClient's
discovery cache ($TMPDIR/osrcp-*.json) never comes from another server.
"""

import json
import sys
import threading
import time

from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException

NS = "default"


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def api_exception(call):
    try:
        call()
    except ApiException as e:
        return e
    raise AssertionError("expected an ApiException")


def typed_crud(api_client):
    core = client.CoreV1Api(api_client)
    body = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="py1", labels={"app": "py"}),
        data={"a": "1"},
    )
    created = core.create_namespaced_config_map(NS, body)
    expect(created.metadata.name == "py1", f"create returned {created.metadata.name}")
    expect(created.metadata.uid, "create returned no uid")
    expect(created.metadata.resource_version, "create returned no resourceVersion")
    expect(created.data == {"a": "1"}, f"create returned data {created.data}")

    listed = core.list_namespaced_config_map(NS, label_selector="app=py")
    expect(isinstance(listed, client.V1ConfigMapList), f"list returned {type(listed)}")
    expect([c.metadata.name for c in listed.items] == ["py1"], f"list: {listed.items}")
    expect(listed.metadata.resource_version, "list has no resourceVersion")

    # A dict body is sent as a strategic merge patch.
    patched = core.patch_namespaced_config_map("py1", NS, {"data": {"b": "2"}})
    expect(patched.data == {"a": "1", "b": "2"}, f"patch returned data {patched.data}")
    # A list body is sent as a JSON patch.
    patched = core.patch_namespaced_config_map(
        "py1", NS, [{"op": "replace", "path": "/data/a", "value": "3"}]
    )
    expect(patched.data == {"a": "3", "b": "2"}, f"json patch returned data {patched.data}")
    got = core.read_namespaced_config_map("py1", NS)
    expect(got.data == {"a": "3", "b": "2"}, f"read after patch: {got.data}")

    core.delete_namespaced_config_map("py1", NS)
    e = api_exception(lambda: core.read_namespaced_config_map("py1", NS))
    expect(e.status == 404, f"read after delete: {e.status}")


def errors(api_client):
    core = client.CoreV1Api(api_client)
    e = api_exception(lambda: core.read_namespaced_config_map("missing", NS))
    expect(e.status == 404 and e.reason == "Not Found", f"404: {e.status} {e.reason}")
    st = json.loads(e.body)
    expect(st["kind"] == "Status" and st["reason"] == "NotFound", f"404 body: {st}")
    expect(st["message"] == 'configmaps "missing" not found', f"404 message: {st['message']}")
    expect(st["details"] == {"name": "missing", "kind": "configmaps"}, f"404 details: {st['details']}")

    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="dup"))
    core.create_namespaced_config_map(NS, body)
    e = api_exception(lambda: core.create_namespaced_config_map(NS, body))
    expect(e.status == 409 and e.reason == "Conflict", f"409: {e.status} {e.reason}")
    st = json.loads(e.body)
    expect(st["reason"] == "AlreadyExists", f"409 body: {st}")
    expect(st["message"] == 'configmaps "dup" already exists', f"409 message: {st['message']}")

    # A stale resourceVersion on replace: 409 Conflict.
    cur = core.read_namespaced_config_map("dup", NS)
    stale = cur.metadata.resource_version
    core.patch_namespaced_config_map("dup", NS, {"data": {"x": "1"}})
    cur.metadata.resource_version = stale
    e = api_exception(lambda: core.replace_namespaced_config_map("dup", NS, cur))
    expect(e.status == 409, f"stale replace: {e.status}")
    st = json.loads(e.body)
    expect(st["reason"] == "Conflict", f"stale replace body: {st}")
    expect(
        st["message"].startswith('Operation cannot be fulfilled on configmaps "dup": '),
        f"stale replace message: {st['message']}",
    )


def delete_status(api_client):
    """Deleting a ConfigMap answers a Status (its registry does not set
    ReturnDeletedObject, unlike pods); 37.0.2 returns it as a dict."""
    core = client.CoreV1Api(api_client)
    created = core.create_namespaced_config_map(
        NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="pyd"))
    )
    st = core.delete_namespaced_config_map("pyd", NS)
    expect(isinstance(st, dict), f"delete returned {type(st)}")
    expect(st.get("kind") == "Status" and st.get("status") == "Success", f"delete returned {st}")
    details = st.get("details", {})
    expect(
        details == {"name": "pyd", "kind": "configmaps", "uid": created.metadata.uid},
        f"delete details: {details}",
    )


def watch_events(api_client):
    core = client.CoreV1Api(api_client)
    rv = core.list_namespaced_config_map(NS).metadata.resource_version
    seen = []
    ready = threading.Event()

    def run():
        w = watch.Watch()
        ready.set()
        for ev in w.stream(
            core.list_namespaced_config_map,
            NS,
            resource_version=rv,
            field_selector="metadata.name=pyw",
            timeout_seconds=20,
        ):
            obj = ev["object"]
            seen.append((ev["type"], obj.metadata.name, (obj.data or {}).get("k")))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    ready.wait()
    time.sleep(0.5)
    core.create_namespaced_config_map(
        NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="pyw"), data={"k": "1"})
    )
    core.patch_namespaced_config_map("pyw", NS, {"data": {"k": "2"}})
    core.delete_namespaced_config_map("pyw", NS)
    t.join(25)
    expect(
        seen == [("ADDED", "pyw", "1"), ("MODIFIED", "pyw", "2"), ("DELETED", "pyw", "2")],
        f"watch saw {seen}",
    )


def dynamic_discovery(api_client):
    dyn = dynamic.DynamicClient(api_client)
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    expect(cms.namespaced and cms.name == "configmaps", f"configmaps: {cms.name} {cms.namespaced}")
    deps = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    expect(deps.name == "deployments" and deps.group == "apps", f"deployments: {deps.name}")
    scale = deps.subresources.get("scale")
    expect(scale is not None and scale.kind == "Scale", f"deployments/scale: {deps.subresources}")
    ns = dyn.resources.get(api_version="v1", kind="Namespace")
    expect(not ns.namespaced, "namespaces namespaced")

    dyn.resources.get(api_version="v1", kind="ConfigMap").create(
        body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dyn1"}, "data": {"d": "1"}},
        namespace=NS,
    )
    got = cms.get(name="dyn1", namespace=NS)
    expect(got.data.d == "1", f"dynamic get: {got}")
    names = [i.metadata.name for i in cms.get(namespace=NS).items]
    expect("dyn1" in names, f"dynamic list: {names}")
    cms.delete(name="dyn1", namespace=NS)
    e = api_exception(lambda: cms.get(name="dyn1", namespace=NS))
    expect(e.status == 404, f"dynamic get after delete: {e.status}")


STEPS = {
    "typed_crud": typed_crud,
    "delete_status": delete_status,
    "errors": errors,
    "watch": watch_events,
    "dynamic": dynamic_discovery,
}

if __name__ == "__main__":
    kubeconfig, step = sys.argv[1], sys.argv[2]
    api_client = config.new_client_from_config(config_file=kubeconfig)
    STEPS[step](api_client)
    print(f"ok {step}")
