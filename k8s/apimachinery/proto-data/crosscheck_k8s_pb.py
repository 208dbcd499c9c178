#!/usr/bin/env python3
"""Compare the generated table with the prost code of the crate k8s-pb
(generated from upstream generated.proto; 0.9.0 carries Kubernetes 1.35).

    cargo info k8s-pb@0.9.0   (unpacks it into ~/.cargo/registry/src), then
    python3 crosscheck_k8s_pb.py ~/.cargo/registry/src/*/k8s-pb-0.9.0 ../src/protobuf/table.rs

Prints every field whose number or wire shape disagrees, and the fields one
side has and the other lacks (newer fields than 1.35 show up here).
"""
import os
import re
import sys

PROST = re.compile(r'#\[prost\(([^\]]*)\)\]\s*pub (r#)?(\w+):')
STRUCT = re.compile(r'^pub struct (\w+) \{(.*?)^\}', re.S | re.M)


def prost_messages(root):
    out = {}
    for d, _, files in os.walk(os.path.join(root, "src")):
        if "mod.rs" not in files:
            continue
        rel = os.path.relpath(d, os.path.join(root, "src"))
        if rel.startswith("api/"):
            pkg = rel[4:]
        elif rel == "apimachinery/pkg/apis/meta/v1":
            pkg = "meta/v1"
        else:
            continue
        text = open(os.path.join(d, "mod.rs")).read()
        for m in STRUCT.finditer(text):
            fields = {}
            for a, _, name in PROST.findall(m.group(2)):
                tag = int(re.search(r'tag = "(\d+)"', a).group(1))
                fields[tag] = (a, name)
            out[f"{pkg}.{m.group(1)}"] = fields
    return out


def snake(s):
    s = re.sub(r'([A-Z]+)([A-Z][a-z])', r'\1_\2', s)
    return re.sub(r'([a-z0-9])([A-Z])', r'\1_\2', s).lower()


PROST_TY = {"Str": "string", "Bytes": "bytes", "Bool": "bool", "I32": "int32", "I64": "int64",
            "U32": "uint32", "U64": "uint64", "F64": "double", "F32": "float"}


def main():
    pb = prost_messages(sys.argv[1])
    table = open(sys.argv[2]).read()
    bad = 0
    for name, body in re.findall(r'/\* \d+ (\S+) \*/ Message \{ fields: &\[(.*?)\] \}', table):
        theirs = pb.get(name)
        if theirs is None:
            # prost renames acronyms (CSIDriver -> CsiDriver); try a loose match
            cand = [k for k in pb if k.lower() == name.lower()]
            theirs = pb[cand[0]] if cand else None
        if theirs is None:
            print(f"{name}: not in k8s-pb (newer than 1.35?)")
            continue
        mine = {}
        for n, j, ty, sh in re.findall(r'number: (\d+), json: "([^"]+)", ty: ([\w()0-9]+), shape: (\w+)', body):
            mine[int(n)] = (j, ty, sh)
        for n, (j, ty, sh) in sorted(mine.items()):
            if n not in theirs:
                print(f"{name}.{j} ({n}): not in k8s-pb (newer than 1.35?)")
                continue
            a, pname = theirs[n]
            if sh in ("Map", "MapOfLists"):
                ok = a.startswith("map") or a.startswith("btree_map")
            elif sh == "Repeated":
                ok = "repeated" in a
            else:
                ok = "repeated" not in a and not a.startswith("map")
            if sh != "MapOfLists" and not sh == "Map":
                want = PROST_TY.get(ty, "message")
                ok = ok and a.split(",")[0].split(" ")[0] == want
            if pname != snake(j) and j[0].islower():
                print(f"{name}.{j} ({n}): name differs from k8s-pb {pname}")
            if not ok:
                print(f"{name}.{j} ({n}): {ty} {sh} vs k8s-pb {a}")
                bad += 1
        for n, (a, pname) in sorted(theirs.items()):
            if n not in mine:
                print(f"{name}.{pname} ({n}): in k8s-pb only")
    print(f"{bad} disagreements")


if __name__ == "__main__":
    main()
