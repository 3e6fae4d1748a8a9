"""Backward compatibility by the Avro schema-resolution rules.

``backward_problems(old, new)`` answers: can data written with ``old`` be read with ``new``?
It follows the resolution rules of the Avro specification (records matched by name or alias,
fields by name or alias, defaults for fields the writer lacks, the legal promotions, enum and
union resolution) and adds two checks that keep meaning stable: a logical type may not change
(e.g. timestamp-millis to timestamp-micros) and a decimal may not change scale or lose
precision. Defaults of fields the reader adds must be valid for the field's type (for a union:
its first branch).
"""

from __future__ import annotations

from typing import Any

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "error", "enum", "fixed"})
_TYPE_KEYWORDS = PRIMITIVES | NAMED | {"array", "map"}
PROMOTIONS = frozenset(
    {
        ("int", "long"),
        ("int", "float"),
        ("int", "double"),
        ("long", "float"),
        ("long", "double"),
        ("float", "double"),
        ("string", "bytes"),
        ("bytes", "string"),
    }
)

Names = dict[str, tuple[dict[str, Any], str]]  # full name -> (definition, its namespace)


def backward_problems(writer_old: Any, reader_new: Any) -> list[str]:
    """Problems that stop data written with ``writer_old`` from being read with ``reader_new``.

    Both are Avro schemas as JSON values (dicts as loaded from ``.avsc``; fastavro-parsed
    schemas work too). Returns human-readable problems, empty when compatible.
    """
    writer_names: Names = {}
    reader_names: Names = {}
    _collect(writer_old, "", writer_names)
    _collect(reader_new, "", reader_names)
    checker = _Checker(writer_names, reader_names)
    checker.check(writer_old, "", reader_new, "", _root_label(reader_new))
    return list(dict.fromkeys(checker.problems))  # de-duplicated, in order


def _root_label(schema: Any) -> str:
    if isinstance(schema, dict) and isinstance(schema.get("name"), str):
        return schema["name"].rsplit(".", 1)[-1]
    return "<root>"


def _full_name(name: str, namespace: str) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _namespace_of(full: str) -> str:
    return full.rsplit(".", 1)[0] if "." in full else ""


def _collect(schema: Any, namespace: str, names: Names) -> None:
    """Register every named type defined in ``schema`` under its full name."""
    if isinstance(schema, list):
        for branch in schema:
            _collect(branch, namespace, names)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if isinstance(kind, dict | list):
        _collect(kind, namespace, names)
        return
    if kind in NAMED:
        own_ns = schema.get("namespace", namespace) or ""
        full = _full_name(str(schema["name"]), own_ns)
        inner_ns = _namespace_of(full)
        names.setdefault(full, (schema, inner_ns))
        if kind in ("record", "error"):
            for field in schema.get("fields", []):
                _collect(field.get("type"), inner_ns, names)
    elif kind == "array":
        _collect(schema.get("items"), namespace, names)
    elif kind == "map":
        _collect(schema.get("values"), namespace, names)


class _Checker:
    def __init__(self, writer_names: Names, reader_names: Names) -> None:
        self.writer_names = writer_names
        self.reader_names = reader_names
        self.problems: list[str] = []
        self._seen: set[tuple[int, int]] = set()

    # -- schema navigation ----------------------------------------------------------------

    @staticmethod
    def _resolve(schema: Any, ns: str, names: Names) -> tuple[Any, str]:
        """Follow named references and ``{"type": <schema>}`` wrappers."""
        for _ in range(64):
            if isinstance(schema, str) and schema not in PRIMITIVES:
                found = names.get(_full_name(schema, ns)) or names.get(schema)
                if found is None:
                    return schema, ns
                schema, ns = found
                continue
            if isinstance(schema, dict):
                kind = schema.get("type")
                if isinstance(kind, dict | list):
                    schema = kind
                    continue
                if isinstance(kind, str) and kind not in _TYPE_KEYWORDS:  # {"type": "Name"}
                    schema = kind
                    continue
                if kind in NAMED:
                    ns = _namespace_of(_full_name(str(schema["name"]), schema.get("namespace", ns)))
            return schema, ns
        return schema, ns

    @staticmethod
    def _kind(schema: Any) -> str:
        if isinstance(schema, list):
            return "union"
        if isinstance(schema, str):
            return schema if schema in PRIMITIVES else f"unknown type {schema}"
        if isinstance(schema, dict):
            kind = schema.get("type")
            return "record" if kind == "error" else str(kind)
        return "invalid"

    @staticmethod
    def _name(schema: dict[str, Any], ns: str) -> str:
        return _full_name(str(schema["name"]), schema.get("namespace", ns) or "")

    def _label(self, schema: Any, ns: str) -> str:
        kind = self._kind(schema)
        if kind in {"record", "enum", "fixed"} and isinstance(schema, dict):
            return f"{kind} {self._name(schema, ns).rsplit('.', 1)[-1]}"
        return kind

    def _names_match(self, w: dict[str, Any], wns: str, r: dict[str, Any], rns: str) -> bool:
        wfull, rfull = self._name(w, wns), self._name(r, rns)
        if wfull == rfull or wfull.rsplit(".", 1)[-1] == rfull.rsplit(".", 1)[-1]:
            return True
        r_ns = _namespace_of(rfull)
        return any(_full_name(str(alias), r_ns) == wfull for alias in r.get("aliases", []))

    def _matches(self, w: Any, wns: str, r: Any, rns: str, promote: bool) -> bool:
        """Does reader branch ``r`` match writer ``w`` (for picking a union branch)?"""
        w, wns = self._resolve(w, wns, self.writer_names)
        r, rns = self._resolve(r, rns, self.reader_names)
        wk, rk = self._kind(w), self._kind(r)
        if wk == rk:
            if wk in {"record", "enum", "fixed"}:
                return self._names_match(w, wns, r, rns)
            return True
        return promote and (wk, rk) in PROMOTIONS

    # -- the rules --------------------------------------------------------------------------

    def check(self, w: Any, wns: str, r: Any, rns: str, path: str) -> None:
        w, wns = self._resolve(w, wns, self.writer_names)
        r, rns = self._resolve(r, rns, self.reader_names)
        wk, rk = self._kind(w), self._kind(r)

        if wk == "union":
            for branch in w:
                if rk == "union":
                    match = self._pick(branch, wns, r, rns)
                    if match is None:
                        label = self._label(*self._resolve(branch, wns, self.writer_names))
                        self.problems.append(
                            f"{path}: union branch {label} was removed "
                            "(data written with it cannot be read)"
                        )
                    else:
                        self.check(branch, wns, match, rns, path)
                else:
                    self.check(branch, wns, r, rns, path)
            return
        if rk == "union":
            match = self._pick(w, wns, r, rns)
            if match is None:
                self.problems.append(
                    f"{path}: writer type {self._label(w, wns)} matches no branch of the "
                    "reader union"
                )
            else:
                self.check(w, wns, match, rns, path)
            return

        if wk != rk:
            if (wk, rk) not in PROMOTIONS:
                self.problems.append(
                    f"{path}: type changed from {self._label(w, wns)} to {self._label(r, rns)} "
                    "(not a legal promotion)"
                )
            return
        if wk in PRIMITIVES:
            self._check_logical(w, r, path)
        elif wk == "record":
            self._check_record(w, wns, r, rns, path)
        elif wk == "enum":
            self._check_enum(w, wns, r, rns, path)
        elif wk == "fixed":
            if not self._names_match(w, wns, r, rns):
                self.problems.append(f"{path}: fixed renamed without an alias")
            if w.get("size") != r.get("size"):
                self.problems.append(f"{path}: fixed size changed")
            self._check_logical(w, r, path)
        elif wk == "array":
            self.check(w.get("items"), wns, r.get("items"), rns, f"{path}[]")
        elif wk == "map":
            self.check(w.get("values"), wns, r.get("values"), rns, f"{path}{{}}")
        else:
            self.problems.append(f"{path}: cannot resolve {wk}")

    def _pick(self, w: Any, wns: str, union: list[Any], rns: str) -> Any | None:
        """The reader union branch a writer value resolves to: exact match first, then a
        promotion (the first one in reader order)."""
        for promote in (False, True):
            for branch in union:
                if self._matches(w, wns, branch, rns, promote):
                    return branch
        return None

    def _check_logical(self, w: Any, r: Any, path: str) -> None:
        wl = w.get("logicalType") if isinstance(w, dict) else None
        rl = r.get("logicalType") if isinstance(r, dict) else None
        if wl and rl and wl != rl:
            self.problems.append(f"{path}: logical type changed from {wl} to {rl}")
        if wl == rl == "decimal":
            if w.get("scale", 0) != r.get("scale", 0):
                self.problems.append(f"{path}: decimal scale changed")
            if int(r.get("precision", 0)) < int(w.get("precision", 0)):
                self.problems.append(f"{path}: decimal precision reduced")

    def _check_record(
        self, w: dict[str, Any], wns: str, r: dict[str, Any], rns: str, path: str
    ) -> None:
        key = (id(w), id(r))
        if key in self._seen:
            return
        self._seen.add(key)
        if not self._names_match(w, wns, r, rns):
            self.problems.append(
                f"{path}: record renamed from {self._name(w, wns)} to {self._name(r, rns)} "
                "without an alias"
            )
        inner_w = _namespace_of(self._name(w, wns))
        inner_r = _namespace_of(self._name(r, rns))
        writer_fields = {f["name"]: f for f in w.get("fields", [])}
        for field in r.get("fields", []):
            name = field["name"]
            candidates = [name, *field.get("aliases", [])]
            wfield = next((writer_fields[c] for c in candidates if c in writer_fields), None)
            fpath = f"{path}.{name}"
            if wfield is not None:
                self.check(wfield["type"], inner_w, field["type"], inner_r, fpath)
            elif "default" not in field:
                self.problems.append(f"{fpath}: field added without a default")
            elif not self._default_ok(field["default"], field["type"], inner_r):
                self.problems.append(f"{fpath}: default does not fit the field type")

    def _check_enum(
        self, w: dict[str, Any], wns: str, r: dict[str, Any], rns: str, path: str
    ) -> None:
        if not self._names_match(w, wns, r, rns):
            self.problems.append(f"{path}: enum renamed without an alias")
        reader_symbols = set(r.get("symbols", []))
        missing = [s for s in w.get("symbols", []) if s not in reader_symbols]
        if missing and r.get("default") not in reader_symbols:
            self.problems.append(
                f"{path}: enum symbols removed without an enum default: {', '.join(missing)}"
            )

    def _default_ok(self, value: Any, schema: Any, ns: str, depth: int = 0) -> bool:
        schema, ns = self._resolve(schema, ns, self.reader_names)
        kind = self._kind(schema)
        if depth > 32:
            return True
        if kind == "union":
            return bool(schema) and self._default_ok(value, schema[0], ns, depth + 1)
        checks = {
            "null": lambda v: v is None,
            "boolean": lambda v: isinstance(v, bool),
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "double": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "string": lambda v: isinstance(v, str),
            "bytes": lambda v: isinstance(v, str),
            "fixed": lambda v: isinstance(v, str),
            "enum": lambda v: v in schema.get("symbols", []),
            "array": lambda v: (
                isinstance(v, list)
                and all(self._default_ok(i, schema.get("items"), ns, depth + 1) for i in v)
            ),
            "map": lambda v: (
                isinstance(v, dict)
                and all(
                    self._default_ok(i, schema.get("values"), ns, depth + 1) for i in v.values()
                )
            ),
        }
        if kind == "record":
            if not isinstance(value, dict):
                return False
            inner = _namespace_of(self._name(schema, ns))
            return all(
                self._default_ok(value[f["name"]], f["type"], inner, depth + 1)
                if f["name"] in value
                else "default" in f
                for f in schema.get("fields", [])
            )
        check = checks.get(kind)
        return bool(check and check(value))
