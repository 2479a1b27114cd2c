"""Shared fixtures for the infrastructure tests: the parsed Terraform configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra" / "aws_serverless_sweep"


@dataclass
class Terraform:
    """Every block of the .tf files in INFRA, merged across files (python-hcl2 dicts)."""

    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    data: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def resource(self, kind: str, name: str) -> dict[str, Any]:
        return self.resources[kind][name]


def load_terraform(directory: Path = INFRA) -> Terraform:
    options = SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
    tf = Terraform()
    for path in sorted(directory.glob("*.tf")):
        with path.open() as handle:
            parsed = hcl2.load(handle, serialization_options=options)
        for block in parsed.get("variable", []):
            tf.variables.update(block)
        for block in parsed.get("locals", []):
            tf.locals.update({k: v for k, v in block.items() if k != "__comments__"})
        for block in parsed.get("output", []):
            tf.outputs.update(block)
        for section, target in (("resource", tf.resources), ("data", tf.data)):
            for block in parsed.get(section, []):
                for kind, named in block.items():
                    for name, body in named.items():
                        assert name not in target.setdefault(kind, {}), f"{kind}.{name} twice"
                        target[kind][name] = body
    return tf


@pytest.fixture(scope="session")
def tf() -> Terraform:
    return load_terraform()
