"""The submitter policy grants execute-api:Invoke on exactly the API's two routes.

The routes come from api.tf, the permissions from the client (what its 403 message tells
a caller to get), so the policy, the routes and the client cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from sim_serverless_sweep.client.api import INVOKE_ACTION, STATUS_PERMISSION, SUBMIT_PERMISSION

EXECUTION_ARN = "${aws_apigatewayv2_api.sweep.execution_arn}"


def _route_resource(route_key: str) -> str:
    """'GET /sweep-run/{run_id}' -> '<execution_arn>/*/GET/sweep-run/*' (any stage)."""
    method, path = route_key.split(" ", 1)
    segments = ["*" if s.startswith("{") else s for s in path.split("/")]
    return f"{EXECUTION_ARN}/*/{method}{'/'.join(segments)}"


def test_submitter_policy_invokes_exactly_the_apis_routes(tf: Any) -> None:
    (statement,) = tf.data["aws_iam_policy_document"]["submitter"]["statement"]
    assert statement.get("effect", "Allow") == "Allow"
    assert "not_actions" not in statement and "not_resources" not in statement
    assert "condition" not in statement
    assert statement["actions"] == [INVOKE_ACTION] == ["execute-api:Invoke"]
    routes = {b["route_key"] for b in tf.resources["aws_apigatewayv2_route"].values()}
    assert sorted(statement["resources"]) == sorted(_route_resource(r) for r in routes)
    # What the client's 403 message asks for is what the policy grants.
    assert sorted(statement["resources"]) == sorted(
        f"{EXECUTION_ARN}/*/{method}{path}"
        for method, path in (SUBMIT_PERMISSION, STATUS_PERMISSION)
    )
    # The same ARNs API Gateway may invoke the function for.
    permissions = {b["source_arn"] for b in tf.resources["aws_lambda_permission"].values()}
    assert set(statement["resources"]) == permissions


def test_submitter_policy_resource_and_outputs(tf: Any) -> None:
    policy = tf.resource("aws_iam_policy", "submitter")
    assert policy["policy"] == "${data.aws_iam_policy_document.submitter.json}"
    assert policy["name"] == "${local.name}-submitter"
    assert policy["description"]
    outputs = tf.outputs
    assert outputs["submitter_policy_arn"]["value"] == "${aws_iam_policy.submitter.arn}"
    assert (
        outputs["submitter_policy_json"]["value"]
        == "${data.aws_iam_policy_document.submitter.json}"
    )
    assert outputs["api_endpoint"]["value"] == "${aws_apigatewayv2_api.sweep.api_endpoint}"
    for name in ("submitter_policy_arn", "submitter_policy_json", "api_endpoint"):
        assert outputs[name]["description"], name
