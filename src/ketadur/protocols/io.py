"""Reading protocols from YAML, and the library of seed protocols shipped with ketadur.

YAML is read as YAML 1.2 booleans (only ``true``/``false``; ``on``, ``yes`` and ``no`` stay
strings, so ``on: relapse`` means what it says) and duplicate keys are errors. Every problem comes
out as a :class:`~ketadur.errors.KetadurInputError`: malformed YAML with its line and column, schema
violations with the path of the field.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ketadur.errors import KetadurInputError, from_validation_error
from ketadur.protocols.schema import Protocol


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans and duplicate-key detection."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
        seen[key] = loader.construct_object(value_node, deep=True)
    return seen


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def parse_yaml(text: str, source: str = "<protocol>") -> Any:
    """Parse YAML text; errors name ``source``, line and column (1-based)."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise KetadurInputError(where, f"malformed YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise KetadurInputError(source, f"malformed YAML: {exc}") from None


def protocol_from_yaml(text: str, source: str = "<protocol>") -> Protocol:
    """Validate a protocol given as YAML text."""
    data = parse_yaml(text, source)
    if not isinstance(data, dict):
        raise KetadurInputError(source, "a protocol must be a YAML mapping", type(data).__name__)
    return protocol_from_dict(data)


def protocol_from_dict(data: dict[str, Any]) -> Protocol:
    """Validate a protocol given as a mapping; errors name the path of the field."""
    try:
        return Protocol.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    except RecursionError:
        raise KetadurInputError("protocol", "nested too deeply") from None


def load_protocol(path_or_name: str | Path) -> Protocol:
    """A protocol from a YAML file, or from the library by name (see :func:`library_names`)."""
    path = Path(path_or_name)
    if path.suffix.lower() in {".yaml", ".yml"} or path.exists():
        if not path.is_file():
            raise KetadurInputError("file", "no such protocol file", str(path_or_name))
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise KetadurInputError("file", f"cannot be read: {exc}", str(path)) from None
        return protocol_from_yaml(text, path.name)
    name = str(path_or_name)
    if name not in library_names():
        raise KetadurInputError(
            "protocol", "neither a YAML file nor a library protocol (see `protocols list`)", name
        )
    return protocol_from_yaml(_library_file(name).read_text(encoding="utf-8"), f"{name}.yaml")


def _library_file(name: str) -> Any:
    return resources.files("ketadur.protocols.library").joinpath(f"{name}.yaml")


def library_names() -> list[str]:
    """Names of the protocols shipped in ``protocols/library``, sorted."""
    folder = resources.files("ketadur.protocols.library")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def library() -> dict[str, Protocol]:
    """Every library protocol, validated, by name."""
    return {name: load_protocol(name) for name in library_names()}
