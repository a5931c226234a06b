#!/usr/bin/env python3
"""The public API of each published crate, as a sorted text listing, checked in CI.

    python3 .ci/public_api.py check            # CI: listings current, breaking changes in CHANGELOG
    python3 .ci/public_api.py update           # after a deliberate API change: rewrite api/*.txt
    python3 .ci/public_api.py baseline REV     # at a release: the listing of REV becomes the baseline

Each listing is made from rustdoc's JSON output (`--output-format json`, all features). That
output is unstable in rustdoc, so it is asked for with RUSTC_BOOTSTRAP=1 on the stable toolchain
(as cargo-semver-checks does); the baseline and the current listing are always made by the same
toolchain, so a new JSON format version changes neither.

Files, per crate (api/):
- `<crate>.txt`: the public API now. Any change to it must be committed (`update`), so an API
  change is always visible in review.
- `baseline/<crate>.txt`: the public API of the last release (commit in `baseline/REV`).
- `<crate>.breaking.txt`: the baseline's lines missing from the current API (removed or
  changed: breaking). `check` requires each item's name to appear in the crate's CHANGELOG.md
  under "# Unreleased", so every breaking change is a listed decision.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = ["azad-core", "azad-tower", "azad-axum", "azad-macros"]
API = os.path.join(ROOT, "api")


def target_dir(workdir):
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=workdir, check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)["target_directory"]


def rustdoc_json(crate, workdir, target=None):
    env = dict(os.environ, RUSTC_BOOTSTRAP="1")
    if target:
        env["CARGO_TARGET_DIR"] = target
    env.pop("RUSTDOCFLAGS", None)
    subprocess.run(
        ["cargo", "rustdoc", "-q", "-p", crate, "--all-features", "--lib", "--",
         "-Z", "unstable-options", "--output-format", "json"],
        cwd=workdir, check=True, env=env,
    )
    with open(os.path.join(target or target_dir(workdir), "doc", crate.replace("-", "_") + ".json")) as f:
        return json.load(f)


class Lister:
    def __init__(self, doc):
        self.doc = doc
        self.index = doc["index"]
        self.paths = doc["paths"]
        self.lines = set()
        # id -> the public path of an item of this crate (filled by a first walk), so a type is
        # named where users name it, not where it is defined.
        self.public = {}

    def item(self, id_):
        return self.index.get(str(id_))

    def path_of(self, id_, fallback):
        if str(id_) in self.public:
            return self.public[str(id_)]
        p = self.paths.get(str(id_))
        return "::".join(p["path"]) if p else fallback

    # ---- types -------------------------------------------------------------------------
    def generic_args(self, args):
        if not args:
            return ""
        if "angle_bracketed" in args:
            ab = args["angle_bracketed"]
            parts = []
            for a in ab["args"]:
                if "type" in a:
                    parts.append(self.ty(a["type"]))
                elif "lifetime" in a:
                    parts.append(a["lifetime"])
                elif "const" in a:
                    parts.append(str(a["const"].get("expr", "_")))
                else:
                    parts.append("_")
            for c in ab.get("constraints", []):
                b = c.get("binding", {})
                if "equality" in b:
                    eq = b["equality"]
                    parts.append(f"{c['name']} = " + (self.ty(eq["type"]) if "type" in eq else "_"))
                else:
                    parts.append(f"{c['name']}: " + self.bounds(b.get("constraint", [])))
            return "<" + ", ".join(parts) + ">" if parts else ""
        if "parenthesized" in args:
            p = args["parenthesized"]
            out = "(" + ", ".join(self.ty(t) for t in p["inputs"]) + ")"
            if p.get("output"):
                out += " -> " + self.ty(p["output"])
            return out
        return ""

    def bounds(self, bounds):
        out = []
        for b in bounds:
            if "trait_bound" in b:
                tb = b["trait_bound"]
                tr = tb["trait"]
                mod = {"none": "", "maybe": "?", "maybe_const": "~const "}.get(tb.get("modifier", "none"), "")
                out.append(mod + self.path_of(tr["id"], tr["path"]) + self.generic_args(tr.get("args")))
            elif "outlives" in b:
                out.append(b["outlives"])
            else:
                out.append("use<..>")
        return " + ".join(out)

    def ty(self, t):
        if t is None:
            return "()"
        k, v = next(iter(t.items()))
        if k == "resolved_path":
            return self.path_of(v["id"], v["path"]) + self.generic_args(v.get("args"))
        if k == "primitive":
            return v
        if k == "generic":
            return v
        if k == "borrowed_ref":
            lt = (v["lifetime"] + " ") if v.get("lifetime") else ""
            return "&" + lt + ("mut " if v["is_mutable"] else "") + self.ty(v["type"])
        if k == "raw_pointer":
            return ("*mut " if v["is_mutable"] else "*const ") + self.ty(v["type"])
        if k == "slice":
            return "[" + self.ty(v) + "]"
        if k == "array":
            return "[" + self.ty(v["type"]) + "; " + v["len"] + "]"
        if k == "tuple":
            return "(" + ", ".join(self.ty(x) for x in v) + ("," if len(v) == 1 else "") + ")"
        if k == "impl_trait":
            return "impl " + self.bounds(v)
        if k == "dyn_trait":
            parts = [self.path_of(p["trait"]["id"], p["trait"]["path"]) + self.generic_args(p["trait"].get("args"))
                     for p in v["traits"]]
            if v.get("lifetime"):
                parts.append(v["lifetime"])
            return "dyn " + " + ".join(parts)
        if k == "qualified_path":
            tr = v.get("trait")
            trait = (" as " + self.path_of(tr["id"], tr["path"])) if tr else ""
            return f"<{self.ty(v['self_type'])}{trait}>::{v['name']}"
        if k == "function_pointer":
            return "fn(" + ", ".join(self.ty(i[1]) for i in v["sig"]["inputs"]) + ")" + self.ret(v["sig"])
        if k == "infer":
            return "_"
        if k == "pat":
            return self.ty(v["type"])
        return k

    def ret(self, sig):
        return (" -> " + self.ty(sig["output"])) if sig.get("output") else ""

    def generics(self, g):
        params = []
        for p in g.get("params", []):
            kind = p["kind"]
            if "lifetime" in kind:
                params.append(p["name"])
            elif "type" in kind:
                if kind["type"].get("is_synthetic"):
                    continue
                b = self.bounds(kind["type"].get("bounds", []))
                params.append(p["name"] + (": " + b if b else ""))
            elif "const" in kind:
                params.append("const " + p["name"] + ": " + self.ty(kind["const"]["type"]))
        preds = []
        for w in g.get("where_predicates", []):
            if "bound_predicate" in w:
                bp = w["bound_predicate"]
                preds.append(self.ty(bp["type"]) + ": " + self.bounds(bp["bounds"]))
        out = ("<" + ", ".join(params) + ">") if params else ""
        if preds:
            out += " where " + ", ".join(preds)
        return out

    def fn_sig(self, name, f):
        h = f["header"]
        quals = ("const " if h["is_const"] else "") + ("async " if h["is_async"] else "") + \
            ("unsafe " if h["is_unsafe"] else "")
        args = []
        for arg_name, arg_ty in f["sig"]["inputs"]:
            if arg_name == "self":
                s = self.ty(arg_ty)
                args.append({"Self": "self", "&Self": "&self", "&mut Self": "&mut self"}.get(s, "self: " + s))
            else:
                args.append(self.ty(arg_ty))
        g = f["generics"]
        gen = self.generics({"params": g["params"], "where_predicates": []})
        wh = self.generics({"params": [], "where_predicates": g["where_predicates"]})
        return f"{quals}fn {name}{gen}({', '.join(args)}){self.ret(f['sig'])}{wh}"

    # ---- items -------------------------------------------------------------------------
    def attrs(self, item):
        out = []
        for a in item.get("attrs", []):
            if a == "non_exhaustive" or (isinstance(a, dict) and "non_exhaustive" in a) or a == "#[non_exhaustive]":
                out.append("#[non_exhaustive] ")
        return "".join(out)

    def add(self, line):
        self.lines.add(line)

    def impls(self, path, impl_ids):
        for iid in impl_ids:
            imp = self.item(iid)
            if imp is None:
                continue
            i = imp["inner"]["impl"]
            if i.get("blanket_impl") is not None:
                continue
            if i.get("trait") is not None and i["trait"]["path"].split("::")[-1] in ("Freeze", "UnsafeUnpin"):
                continue  # unstable, compiler-internal auto traits
            if i.get("trait") is None:
                for mid in i["items"]:
                    m = self.item(mid)
                    if m is None or m.get("visibility") != "public":
                        continue
                    self.member(path, m)
            else:
                tr = i["trait"]
                neg = "!" if i.get("is_negative") else ""
                g = i["generics"]
                gen = self.generics({"params": g["params"], "where_predicates": []})
                wh = self.generics({"params": [], "where_predicates": g["where_predicates"]})
                self.add(f"impl{gen} {neg}{self.path_of(tr['id'], tr['path'])}{self.generic_args(tr.get('args'))} for {self.ty(i['for'])}{wh}")

    def member(self, path, m):
        k, v = next(iter(m["inner"].items()))
        name = m["name"]
        if k == "function":
            self.add(f"pub {self.fn_sig(f'{path}::{name}', v)}")
        elif k == "assoc_const":
            self.add(f"pub const {path}::{name}: {self.ty(v['type'])}")
        elif k == "assoc_type":
            self.add(f"pub type {path}::{name}")
        else:
            self.add(f"pub {k} {path}::{name}")

    def fields(self, path, ids, tuple_=False):
        for n, fid in enumerate(ids):
            if fid is None:
                continue
            f = self.item(fid)
            if f is None or f.get("visibility") != "public":
                continue
            self.add(f"pub field {path}.{n if tuple_ else f['name']}: {self.ty(f['inner']['struct_field'])}")

    def walk(self, path, id_, name=None, seen=None):
        seen = seen or set()
        item = self.item(id_)
        if item is None or id_ in seen:
            return
        seen = seen | {id_}
        name = name or item["name"]
        full = f"{path}::{name}" if path else name
        self.public.setdefault(str(id_), full)
        k, v = next(iter(item["inner"].items()))
        attrs = self.attrs(item)
        if k == "module":
            if path:
                self.add(f"pub mod {full}")
            for cid in v["items"]:
                c = self.item(cid)
                if c is None or c.get("visibility") != "public":
                    continue
                ck, cv = next(iter(c["inner"].items()))
                if ck == "use":
                    self.use(full, cv, seen)
                elif ck != "impl":
                    self.walk(full, cid, None, seen)
        elif k == "struct":
            self.add(f"{attrs}pub struct {full}{self.generics(v['generics'])}")
            kind = v["kind"]
            if "plain" in kind:
                self.fields(full, kind["plain"]["fields"])
            elif "tuple" in kind:
                self.fields(full, kind["tuple"], tuple_=True)
            self.impls(full, v["impls"])
        elif k == "enum":
            self.add(f"{attrs}pub enum {full}{self.generics(v['generics'])}")
            for vid in v["variants"]:
                var = self.item(vid)
                vk = var["inner"]["variant"]["kind"]
                vattrs = self.attrs(var)
                if vk == "plain":
                    self.add(f"{vattrs}pub variant {full}::{var['name']}")
                elif "tuple" in vk:
                    tys = [self.ty(self.item(f)["inner"]["struct_field"]) if f is not None else "_" for f in vk["tuple"]]
                    self.add(f"{vattrs}pub variant {full}::{var['name']}({', '.join(tys)})")
                else:
                    st = vk["struct"]
                    self.add(f"{vattrs}pub variant {full}::{var['name']} {{ .. }}")
                    self.fields(f"{full}::{var['name']}", st["fields"])
            self.impls(full, v["impls"])
        elif k == "union":
            self.add(f"pub union {full}")
            self.impls(full, v["impls"])
        elif k == "function":
            self.add(f"pub {self.fn_sig(full, v)}")
        elif k == "trait":
            unsafe = "unsafe " if v.get("is_unsafe") else ""
            self.add(f"pub {unsafe}trait {full}{self.generics(v['generics'])}" +
                     (": " + self.bounds(v["bounds"]) if v.get("bounds") else ""))
            for mid in v["items"]:
                m = self.item(mid)
                if m is not None:
                    self.member(full, m)
        elif k == "type_alias":
            self.add(f"pub type {full}{self.generics(v['generics'])} = {self.ty(v['type'])}")
        elif k == "constant":
            self.add(f"pub const {full}: {self.ty(v['type'])}")
        elif k == "static":
            self.add(f"pub static {full}: {self.ty(v['type'])}")
        elif k == "macro":
            self.add(f"pub macro {full}!")
        elif k == "proc_macro":
            self.add(f"pub proc_macro_{v['kind']} {full}")
        else:
            self.add(f"pub {k} {full}")

    def use(self, path, u, seen):
        target = u.get("id")
        if u.get("is_glob"):
            t = self.item(target) if target is not None else None
            if t is not None and "module" in t["inner"]:
                for cid in t["inner"]["module"]["items"]:
                    c = self.item(cid)
                    if c is not None and c.get("visibility") == "public":
                        self.walk(path, cid, None, seen)
            else:
                self.add(f"pub use {u['source']}::* in {path}")
            return
        if target is not None and self.item(target) is not None:
            self.walk(path, target, u["name"], seen)
        else:
            src = self.path_of(target, u["source"]) if target is not None else u["source"]
            self.add(f"pub use {path}::{u['name']} = {src}")

    def run(self):
        self.walk("", self.doc["root"])  # learns the public paths
        self.lines = set()
        self.walk("", self.doc["root"])
        return sorted(self.lines)


def listing(crate, workdir, target=None):
    return Lister(rustdoc_json(crate, workdir, target)).run()


def read(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [l.rstrip("\n") for l in f if l.strip() and not l.startswith("# ")]


def write(path, header, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(header)
        for l in lines:
            f.write(l + "\n")


def item_path(line):
    """The path of the item a listing line is about (for `impl … for T`, the type T)."""
    body = re.sub(r"^(#\[non_exhaustive\] )?(impl.* for |pub (\w+ )*)", "", line)
    return re.split(r"[(<:{ =]", body.replace("::", "§"))[0].replace("§", "::")


def item_name(line):
    """The name a CHANGELOG entry would use for a listing line: its last path segment."""
    return re.split(r"::|\.", item_path(line))[-1]


def owner(line):
    """The type or trait a member (field, method, variant, impl) belongs to, or None."""
    path = item_path(line)
    if line.startswith("impl"):
        return path
    if "." in path:
        return path.rsplit(".", 1)[0]
    if re.match(r"^(#\[non_exhaustive\] )?pub (struct|enum|trait|union|mod|type|const|static|proc_macro\w*|macro) ", line):
        return None
    return path.rsplit("::", 1)[0] if re.match(r"^pub (\w+ )*(fn|variant|const|type) ", line) else None


def undocumented(gone, notes):
    """Breaking lines whose item is not named in the notes, nor covered by its owner's entry."""
    defined = {item_path(l) for l in gone if owner(l) is None}
    missing = set()
    for l in gone:
        o = owner(l)
        if o is not None and o in defined:
            l = next(d for d in gone if owner(d) is None and item_path(d) == o)
        if item_name(l) not in notes:
            missing.add(item_path(l))
    return sorted(missing)


def unreleased(crate):
    with open(os.path.join(ROOT, crate, "CHANGELOG.md")) as f:
        text = f.read()
    m = re.search(r"^#+ Unreleased\s*$(.*?)(?=^#+ \[?\d|\Z)", text, re.S | re.M)
    return m.group(1) if m else ""


HEADER = "# The public API of {crate} (all features), generated by .ci/public_api.py; do not edit.\n"
BREAKING = ("# Lines of api/baseline/{crate}.txt (the last release) that are gone from the current API.\n"
            "# Each is a breaking change; the crate's CHANGELOG.md names each under \"# Unreleased\".\n")


def breaking(crate, current):
    base = read(os.path.join(API, "baseline", crate + ".txt"))
    now = set(current)
    return [l for l in base if l not in now]


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else "check"
    if cmd == "baseline":
        rev = sys.argv[2]
        with tempfile.TemporaryDirectory() as tmp:
            wt = os.path.join(tmp, "baseline")
            subprocess.run(["git", "worktree", "add", "--detach", "-q", wt, rev], cwd=ROOT, check=True)
            # A target directory of its own: cargo would otherwise take the old revision's build
            # of our crates (same names, newer files) as up to date for the current one.
            target = os.path.join(target_dir(ROOT), "public-api-baseline")
            try:
                for crate in CRATES:
                    write(os.path.join(API, "baseline", crate + ".txt"), HEADER.format(crate=crate),
                          listing(crate, wt, target))
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", wt], cwd=ROOT, check=True)
        with open(os.path.join(API, "baseline", "REV"), "w") as f:
            f.write(subprocess.run(["git", "rev-parse", rev], cwd=ROOT, check=True, capture_output=True,
                                   text=True).stdout)
        cmd = "update"
    failed = False
    for crate in CRATES:
        current = listing(crate, ROOT)
        gone = breaking(crate, current)
        cur_path = os.path.join(API, crate + ".txt")
        brk_path = os.path.join(API, crate + ".breaking.txt")
        if cmd == "update":
            write(cur_path, HEADER.format(crate=crate), current)
            write(brk_path, BREAKING.format(crate=crate), gone)
            print(f"{crate}: {len(current)} items, {len(gone)} breaking since the baseline")
            continue
        committed = read(cur_path)
        if committed != current:
            failed = True
            old, new = set(committed), set(current)
            print(f"{crate}: the public API differs from api/{crate}.txt:")
            for l in sorted(old - new):
                print(f"  - {l}")
            for l in sorted(new - old):
                print(f"  + {l}")
        if read(brk_path) != gone:
            failed = True
            print(f"{crate}: api/{crate}.breaking.txt is out of date")
        notes = unreleased(crate)
        missing = undocumented(gone, notes)
        if missing:
            failed = True
            print(f"{crate}: breaking changes not named under '# Unreleased' in {crate}/CHANGELOG.md: "
                  + ", ".join(missing))
    if failed:
        print("\nIf the change is deliberate: `python3 .ci/public_api.py update`, commit api/, and list every "
              "breaking change (old name -> new name) under '# Unreleased' in the crate's CHANGELOG.md.")
        sys.exit(1)
    if cmd == "check":
        print("public API: every listing is current; every breaking change since the baseline is in a CHANGELOG")


if __name__ == "__main__":
    main()
