"""Read Go runtime type descriptors (internal/abi) from a static amd64 Go ELF.

Only what gen_schema.py needs: struct types with their package path, field
names, struct tags, embedded flags and field types. Layouts are those of Go
1.26 (the toolchain kubectl v1.37.1 was built with); `moduledata` lives in
the `.go.module` section.
"""
import struct

KIND_BOOL, KIND_INT, KIND_INT32, KIND_INT64 = 1, 2, 5, 6
KIND_UINT8, KIND_UINT32, KIND_UINT64 = 8, 10, 11
KIND_FLOAT32, KIND_FLOAT64 = 13, 14
KIND_ARRAY, KIND_INTERFACE, KIND_MAP, KIND_PTR, KIND_SLICE = 17, 20, 21, 22, 23
KIND_STRING, KIND_STRUCT = 24, 25

# Offset of the uncommon type after the kind-specific descriptor.
UNCOMMON_AT = {KIND_STRUCT: 80, KIND_PTR: 56, KIND_SLICE: 56, KIND_MAP: 112, KIND_ARRAY: 72}


class GoBinary:
    def __init__(self, path):
        self.b = open(path, "rb").read()
        b = self.b
        if b[:4] != b"\x7fELF":
            raise ValueError("not an ELF file")
        shoff = struct.unpack_from("<Q", b, 0x28)[0]
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", b, 0x3A)
        raw = [struct.unpack_from("<IIQQQQ", b, shoff + i * shentsize) for i in range(shnum)]
        stroff = raw[shstrndx][4]
        self.secs = []
        module = None
        for name, typ, _flags, addr, off, size in raw:
            sname = b[stroff + name:b.index(b"\0", stroff + name)].decode()
            if addr and typ != 8:  # SHT_NOBITS has no bytes
                self.secs.append((addr, off, size))
            if sname == ".go.module":
                module = addr
        if module is None:
            raise ValueError("no .go.module section (needs a Go >= 1.26 binary)")
        self.types = self.u64(module + 296)
        self.etypes = self.u64(module + 304)
        self.typelinks = (self.u64(module + 360), self.u64(module + 368))

    def fo(self, va):
        for a, o, s in self.secs:
            if a <= va < a + s:
                return o + va - a
        raise ValueError(hex(va))

    def u64(self, va):
        return struct.unpack_from("<Q", self.b, self.fo(va))[0]

    def i32(self, va):
        return struct.unpack_from("<i", self.b, self.fo(va))[0]

    def u8(self, va):
        return self.b[self.fo(va)]

    def varint(self, va):
        r = s = 0
        while True:
            c = self.u8(va)
            va += 1
            r |= (c & 0x7F) << s
            s += 7
            if c < 0x80:
                return r, va

    def name(self, va):
        """(name, tag, flags) of an abi.Name."""
        fl = self.u8(va)
        n, p = self.varint(va + 1)
        s = self.b[self.fo(p):self.fo(p) + n].decode()
        p += n
        tag = ""
        if fl & 2:
            tn, p = self.varint(p)
            tag = self.b[self.fo(p):self.fo(p) + tn].decode()
        return s, tag, fl

    def kind(self, t):
        return self.u8(t + 23) & 0x1F

    def tname(self, t):
        s = self.name(self.types + self.i32(t + 40))[0]
        return s[1:] if self.u8(t + 20) & 2 else s  # TFlagExtraStar

    def pkgpath(self, t):
        k = self.kind(t)
        if not self.u8(t + 20) & 1 or k not in UNCOMMON_AT:  # TFlagUncommon
            return ""
        off = self.i32(t + UNCOMMON_AT[k])
        return self.name(self.types + off)[0] if off else ""

    def elem(self, t):
        return self.u64(t + 48)

    def map_kv(self, t):
        return self.u64(t + 48), self.u64(t + 56)

    def fields(self, t):
        """[(name, tag, embedded, type)] of a struct type."""
        fp, n = self.u64(t + 56), self.u64(t + 64)
        out = []
        for i in range(n):
            nm, tag, fl = self.name(self.u64(fp + 24 * i))
            out.append((nm, tag, bool(fl & 8), self.u64(fp + 24 * i + 8)))
        return out

    def children(self, t):
        k = self.kind(t)
        out = []
        if k in (KIND_PTR, KIND_SLICE, KIND_ARRAY):
            out.append(self.elem(t))
        elif k == KIND_MAP:
            out += list(self.map_kv(t))
        elif k == KIND_STRUCT:
            out += [f[3] for f in self.fields(t)]
        p = self.i32(t + 44)
        if p:
            out.append(self.types + p)
        return out

    def all_types(self):
        """Every type reachable from the typelinks table."""
        tl, n = self.typelinks
        seen = set()
        stack = [self.types + self.i32(tl + 4 * i) for i in range(n)]
        while stack:
            t = stack.pop()
            if t in seen or not (self.types <= t < self.etypes):
                continue
            seen.add(t)
            stack += self.children(t)
        return seen
