"""The client stays out of the Lambda's imports, and loads botocore and rich only on use."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import clean_env


def _modules_after(*imports: str) -> set[str]:
    code = "import json, sys\n" + "".join(f"import {m}\n" for m in imports)
    code += "print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), check=True
    )
    return set(json.loads(result.stdout))


def test_the_lambda_handler_never_imports_the_client() -> None:
    loaded = _modules_after("sim_serverless_sweep.aws.handler")
    assert not {m for m in loaded if m.startswith("sim_serverless_sweep.client")}
    assert "sim_serverless_sweep.cli.remote" not in loaded


def test_botocore_and_rich_load_only_when_signing_or_watching() -> None:
    loaded = _modules_after(
        "sim_serverless_sweep.cli.remote",
        "sim_serverless_sweep.client.api",
        "sim_serverless_sweep.client.watch",
    )
    assert not {m for m in loaded if m.split(".")[0] in ("botocore", "boto3", "rich")}
