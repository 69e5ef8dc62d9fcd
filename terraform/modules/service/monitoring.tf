# ---- monitoring: the server's metrics in CloudWatch, alarms to SNS, a dashboard -------------
#
# An AWS Distro for OpenTelemetry collector runs beside the server in each task: it scrapes
# /metrics on localhost every minute and writes the figures to CloudWatch as embedded metric
# format logs (namespace MONTI, dimension Environment), so alarms and the dashboard read them
# like any CloudWatch metric. Counters arrive as the change since the last scrape (Sum per
# minute), gauges as each task's value (Sum over the tasks, or Maximum/Minimum). Why this and
# not Amazon Managed Service for Prometheus: docs/DEPLOY.md. What each alarm means and what to
# do: docs/OPERATIONS.md.

locals {
  metrics_namespace = "MONTI"
  environment       = { Environment = var.name }

  # Gauges and counters without labels, by the name /metrics gives them.
  plain_metrics = [
    "monti_connected_clients",
    "monti_summary_viewers",
    "monti_floor_agents",
    "monti_agents_stale",
    "monti_floor_pending_changes",
    "monti_degraded",
    "monti_redis_up",
    "monti_agent_state_changes_total",
    "monti_stream_bytes_sent_total",
    "monti_resyncs_total",
    "monti_slow_clients_dropped_total",
    "monti_ingest_failures_total",
    "monti_change_sends_total",
    "monti_change_sends_late_total",
    "monti_change_to_send_seconds",
    "monti_ingest_commit_seconds",
    "monti_db_connections",
    "monti_db_connections_idle",
    "monti_db_connections_max",
    "monti_process_cpu_seconds",
    "monti_process_resident_memory_bytes",
  ]

  collector_config = yamlencode({
    extensions = { health_check = {} }
    receivers = {
      prometheus = {
        config = {
          scrape_configs = [{
            job_name        = "monti"
            scrape_interval = "60s"
            metrics_path    = "/metrics"
            static_configs  = [{ targets = ["localhost:${local.container_port}"] }]
          }]
        }
      }
    }
    processors = {
      batch = { timeout = "10s" }
      "resource/environment" = {
        attributes = [{ key = "Environment", value = var.name, action = "upsert" }]
      }
    }
    exporters = {
      awsemf = {
        namespace                        = local.metrics_namespace
        log_group_name                   = aws_cloudwatch_log_group.metrics.name
        log_stream_name                  = "{TaskId}"
        region                           = data.aws_region.current.region
        dimension_rollup_option          = "NoDimensionRollup"
        resource_to_telemetry_conversion = { enabled = true }
        metric_declarations = [
          {
            dimensions            = [["Environment"]]
            metric_name_selectors = [for name in local.plain_metrics : "^${name}$"]
          },
          {
            dimensions            = [["Environment"], ["Environment", "source", "outcome"]]
            metric_name_selectors = ["^monti_ingest_events_total$", "^monti_ingest_contact_events_total$"]
          },
          {
            dimensions            = [["Environment"], ["Environment", "code"]]
            metric_name_selectors = ["^monti_auth_failures_total$", "^monti_refused_total$"]
          },
        ]
      }
    }
    service = {
      extensions = ["health_check"]
      pipelines = {
        metrics = {
          receivers  = ["prometheus"]
          processors = ["resource/environment", "batch"]
          exporters  = ["awsemf"]
        }
      }
    }
  })

  # The collector's container, added to the task definition beside the server.
  collector_container = {
    name                   = "metrics-collector"
    image                  = var.collector_image
    essential              = false
    readonlyRootFilesystem = true
    user                   = "10001:10001"
    environment            = [{ name = "AOT_CONFIG_CONTENT", value = local.collector_config }]
    dependsOn              = [{ containerName = local.container_name, condition = "START" }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.service.name
        awslogs-region        = data.aws_region.current.region
        awslogs-stream-prefix = "collector"
      }
    }
  }

  alarm_actions = [aws_sns_topic.alarms.arn]
  load_balancer = { LoadBalancer = aws_lb.this.arn_suffix }
  target_group  = { LoadBalancer = aws_lb.this.arn_suffix, TargetGroup = aws_lb_target_group.this.arn_suffix }
}

resource "aws_cloudwatch_log_group" "metrics" {
  name              = "/monti/${var.name}/metrics"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

# The collector writes the metrics' log events; nothing else in the task calls AWS.
data "aws_iam_policy_document" "task_metrics" {
  statement {
    sid       = "WriteMetrics"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [aws_cloudwatch_log_group.metrics.arn, "${aws_cloudwatch_log_group.metrics.arn}:*"]
  }
}

resource "aws_iam_role_policy" "task_metrics" {
  name   = "write-metrics"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task_metrics.json
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = var.kms_key_arn
}

resource "aws_sns_topic_subscription" "alarms" {
  for_each  = toset(var.alarm_emails)
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

# ---- alarms: one per runbook entry in docs/OPERATIONS.md --------------------------------------

# The ALB's own view: targets failing /readyz, and fewer healthy tasks than the minimum.
resource "aws_cloudwatch_metric_alarm" "unhealthy_targets" {
  alarm_name          = "${var.name}-unhealthy-targets"
  alarm_description   = "Tasks failing /readyz at the load balancer (docs/OPERATIONS.md#unhealthy-targets)"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "UnHealthyHostCount"
  dimensions          = local.target_group
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "healthy_targets" {
  alarm_name          = "${var.name}-healthy-targets"
  alarm_description   = "Fewer healthy tasks than the service's minimum (docs/OPERATIONS.md#healthy-targets)"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HealthyHostCount"
  dimensions          = local.target_group
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 3
  comparison_operator = "LessThanThreshold"
  threshold           = var.min_tasks
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "server_errors" {
  alarm_name          = "${var.name}-5xx"
  alarm_description   = "More than 1 % of requests answered 5xx by the servers for 5 minutes (docs/OPERATIONS.md#5xx)"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0.01
  evaluation_periods  = 5
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  metric_query {
    id          = "share"
    expression  = "errors / MAX([requests, 1])"
    label       = "share of requests answered 5xx"
    return_data = true
  }
  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = local.load_balancer
      stat        = "Sum"
      period      = 60
    }
  }
  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = local.load_balancer
      stat        = "Sum"
      period      = 60
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "degraded" {
  alarm_name          = "${var.name}-degraded"
  alarm_description   = "A server says its floor may be out of date for more than a minute (docs/OPERATIONS.md#degraded)"
  namespace           = local.metrics_namespace
  metric_name         = "monti_degraded"
  dimensions          = local.environment
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "redis_down" {
  alarm_name          = "${var.name}-redis-down"
  alarm_description   = "A server has lost its link to Redis (docs/OPERATIONS.md#redis-down)"
  namespace           = local.metrics_namespace
  metric_name         = "monti_redis_up"
  dimensions          = local.environment
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 2
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# p99 of change-to-send over 1 s is the same as more than 1 % of deltas sent later than 1 s.
resource "aws_cloudwatch_metric_alarm" "late_changes" {
  alarm_name          = "${var.name}-late-changes"
  alarm_description   = "More than 1 % of changes reached viewers later than 1 s, 5 minutes running: p99 over 1 s (docs/OPERATIONS.md#late-changes)"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0.01
  evaluation_periods  = 5
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  metric_query {
    id          = "share"
    expression  = "late / MAX([sends, 1])"
    label       = "share of changes sent later than 1 s"
    return_data = true
  }
  metric_query {
    id = "late"
    metric {
      namespace   = local.metrics_namespace
      metric_name = "monti_change_sends_late_total"
      dimensions  = local.environment
      stat        = "Sum"
      period      = 60
    }
  }
  metric_query {
    id = "sends"
    metric {
      namespace   = local.metrics_namespace
      metric_name = "monti_change_sends_total"
      dimensions  = local.environment
      stat        = "Sum"
      period      = 60
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "slow_viewers_dropped" {
  alarm_name          = "${var.name}-slow-viewers-dropped"
  alarm_description   = "Viewers disconnected for not keeping up (docs/OPERATIONS.md#slow-viewers-dropped)"
  namespace           = local.metrics_namespace
  metric_name         = "monti_slow_clients_dropped_total"
  dimensions          = local.environment
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_slow_viewers_per_5_minutes
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "ingest_failures" {
  alarm_name          = "${var.name}-ingest-failures"
  alarm_description   = "Ingest batches that could not be stored, so were not acknowledged (docs/OPERATIONS.md#ingest-failures)"
  namespace           = local.metrics_namespace
  metric_name         = "monti_ingest_failures_total"
  dimensions          = local.environment
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# Refusals by the reason the server counts them under (monti_auth_failures_total's code):
# deliveries refused for a wrong access key (Firehose) or API key (EventBridge), any at all;
# and sign-in refusals above the usual, one alarm per reason the server gives
# (server/src/api/token.rs and auth.rs): a wave of `expired` is a client clock or renewal
# problem, `unknown_key` a rotated provider key, `no_role` a group binding.
locals {
  refusal_alarms = merge(
    {
      for code in ["firehose_access_key", "eventbridge_key"] : code => {
        name        = "refused-${replace(code, "_", "-")}"
        description = "Deliveries refused for their ${code} (docs/OPERATIONS.md#refused-deliveries)"
        threshold   = 0
      }
    },
    {
      for code in [
        "missing", "malformed", "algorithm", "unknown_key", "signature", "expired",
        "not_yet_valid", "issuer", "audience", "claim", "keys_unavailable", "no_role",
        "signed_out",
        ] : code => {
        name        = "sign-in-refused-${replace(code, "_", "-")}"
        description = "Requests refused for their token (${code}) above the usual (docs/OPERATIONS.md#sign-in-refusals)"
        threshold   = var.alarm_sign_in_refusals_per_5_minutes
      }
    },
  )
}

resource "aws_cloudwatch_metric_alarm" "refusals" {
  for_each            = local.refusal_alarms
  alarm_name          = "${var.name}-${each.value.name}"
  alarm_description   = each.value.description
  namespace           = local.metrics_namespace
  metric_name         = "monti_auth_failures_total"
  dimensions          = merge(local.environment, { code = each.key })
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "database_connections" {
  alarm_name          = "${var.name}-database-connections"
  alarm_description   = "The servers use 95 % or more of their database connections, 3 minutes running (docs/OPERATIONS.md#database-connections)"
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 0.95
  evaluation_periods  = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  metric_query {
    id          = "used"
    expression  = "(open - idle) / MAX([most, 1])"
    label       = "share of database connections in use"
    return_data = true
  }
  metric_query {
    id = "open"
    metric {
      namespace   = local.metrics_namespace
      metric_name = "monti_db_connections"
      dimensions  = local.environment
      stat        = "Sum"
      period      = 60
    }
  }
  metric_query {
    id = "idle"
    metric {
      namespace   = local.metrics_namespace
      metric_name = "monti_db_connections_idle"
      dimensions  = local.environment
      stat        = "Sum"
      period      = 60
    }
  }
  metric_query {
    id = "most"
    metric {
      namespace   = local.metrics_namespace
      metric_name = "monti_db_connections_max"
      dimensions  = local.environment
      stat        = "Sum"
      period      = 60
    }
  }
}

# ---- the dashboard ------------------------------------------------------------------------

locals {
  server_metric = { for name in local.plain_metrics : name => [local.metrics_namespace, name, "Environment", var.name] }
  dashboard_widgets = [
    { title = "Viewers", stat = "Sum", metrics = [local.server_metric["monti_connected_clients"], local.server_metric["monti_summary_viewers"]] },
    { title = "Agent state changes per minute", stat = "Sum", metrics = [local.server_metric["monti_agent_state_changes_total"]] },
    { title = "Changes sent, and sent later than 1 s", stat = "Sum", metrics = [local.server_metric["monti_change_sends_total"], local.server_metric["monti_change_sends_late_total"]] },
    {
      title   = "Change to send (s): p50, p99, as CloudWatch keeps the histogram", stat = "p99",
      metrics = [for stat in ["p50", "p99"] : concat(local.server_metric["monti_change_to_send_seconds"], [{ stat = stat, label = stat }])]
    },
    { title = "Bytes sent per minute", stat = "Sum", metrics = [local.server_metric["monti_stream_bytes_sent_total"]] },
    { title = "Resyncs and slow viewers dropped", stat = "Sum", metrics = [local.server_metric["monti_resyncs_total"], local.server_metric["monti_slow_clients_dropped_total"]] },
    {
      title = "Ingest by source and outcome", stat = "Sum",
      metrics = [for pair in setproduct(["api", "amazon_connect", "simulator"], ["applied", "older", "duplicate", "refused"]) :
      [local.metrics_namespace, "monti_ingest_events_total", "Environment", var.name, "source", pair[0], "outcome", pair[1]]]
    },
    { title = "Commit time (average, s)", stat = "Average", metrics = [local.server_metric["monti_ingest_commit_seconds"]] },
    { title = "CPU seconds per minute", stat = "Sum", metrics = [local.server_metric["monti_process_cpu_seconds"]] },
    { title = "Resident memory (bytes, largest task)", stat = "Maximum", metrics = [local.server_metric["monti_process_resident_memory_bytes"]] },
    { title = "Degraded, Redis up", stat = "Maximum", metrics = [local.server_metric["monti_degraded"], local.server_metric["monti_redis_up"]] },
    { title = "Load balancer: healthy and unhealthy targets", stat = "Minimum", metrics = [
      ["AWS/ApplicationELB", "HealthyHostCount", "LoadBalancer", aws_lb.this.arn_suffix, "TargetGroup", aws_lb_target_group.this.arn_suffix],
      ["AWS/ApplicationELB", "UnHealthyHostCount", "LoadBalancer", aws_lb.this.arn_suffix, "TargetGroup", aws_lb_target_group.this.arn_suffix],
    ] },
    { title = "Database connections", stat = "Sum", metrics = [local.server_metric["monti_db_connections"], local.server_metric["monti_db_connections_idle"], local.server_metric["monti_db_connections_max"]] },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = [for i, widget in local.dashboard_widgets : {
      type   = "metric"
      x      = (i % 2) * 12
      y      = floor(i / 2) * 6
      width  = 12
      height = 6
      properties = {
        title   = widget.title
        region  = data.aws_region.current.region
        stat    = widget.stat
        period  = 60
        view    = "timeSeries"
        metrics = widget.metrics
      }
    }]
  })
}
