# HTTP API: POST /sweep-run (submit) and GET /sweep-run/{run_id} (status), both signed
# with SigV4 (AWS_IAM), both proxied to the runtime Lambda with payload format 2.0.

resource "aws_apigatewayv2_api" "sweep" {
  name          = "${local.name}-api"
  protocol_type = "HTTP"
  description   = "Parameter sweep submission and status."
}

resource "aws_apigatewayv2_integration" "runtime" {
  api_id                 = aws_apigatewayv2_api.sweep.id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = aws_lambda_function.runtime.invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 30000
}

resource "aws_apigatewayv2_route" "submit" {
  api_id             = aws_apigatewayv2_api.sweep.id
  route_key          = "POST /sweep-run"
  authorization_type = "AWS_IAM"
  target             = "integrations/${aws_apigatewayv2_integration.runtime.id}"
}

resource "aws_apigatewayv2_route" "status" {
  api_id             = aws_apigatewayv2_api.sweep.id
  route_key          = "GET /sweep-run/{run_id}"
  authorization_type = "AWS_IAM"
  target             = "integrations/${aws_apigatewayv2_integration.runtime.id}"
}

resource "aws_cloudwatch_log_group" "api_access" {
  #checkov:skip=CKV_AWS_158:Access logs hold no secrets; the CloudWatch Logs default encryption applies.
  #checkov:skip=CKV_AWS_338:Retention is a variable (default 30 days) for a sandbox; raise log_retention_days where a year is required.
  name              = "/aws/apigateway/${local.name}-api"
  retention_in_days = var.log_retention_days
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.sweep.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = var.api_throttling_rate_limit
    throttling_burst_limit = var.api_throttling_burst_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      requestTime        = "$context.requestTime"
      httpMethod         = "$context.httpMethod"
      routeKey           = "$context.routeKey"
      status             = "$context.status"
      responseLength     = "$context.responseLength"
      integrationLatency = "$context.integrationLatency"
      integrationError   = "$context.integrationErrorMessage"
      callerArn          = "$context.identity.userArn"
      sourceIp           = "$context.identity.sourceIp"
    })
  }
}

resource "aws_lambda_permission" "api_submit" {
  statement_id  = "AllowApiGatewaySubmit"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.runtime.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.sweep.execution_arn}/*/POST/sweep-run"
}

resource "aws_lambda_permission" "api_status" {
  statement_id  = "AllowApiGatewayStatus"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.runtime.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.sweep.execution_arn}/*/GET/sweep-run/*"
}
