"""JSON Merge Patch (RFC 7386): how one patch changes many sagas' inputs."""

from __future__ import annotations

from typing import Any


def apply(target: Any, patch: Any) -> Any:
    """Return `target` changed by `patch`: objects merge, null removes a member, else replaces.

    Neither argument is changed.
    """
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = apply(result.get(name), value)
    return result
