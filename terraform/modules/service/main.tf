# The MONTI server on ECS Fargate behind an Application Load Balancer: HTTPS only (HTTP
# redirects), an idle timeout long enough for WebSocket viewers, health checks on /readyz,
# CPU-based autoscaling, logs in CloudWatch, secrets from Secrets Manager, a WAF in front.

terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0, < 7.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6, < 4.0"
    }
  }
}

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_elb_service_account" "current" {}

locals {
  container_name = "monti-server"
  container_port = 8080

  # The paths sources post to. They carry their own credentials (the Firehose access key, an
  # ingest token) and their own body limits, so the WAF's body-size and IP-reputation rules do
  # not apply to them: a roster sync is far over 8 KB, and Firehose comes from AWS's addresses.
  ingest_paths = ["/api/v1/ingest/", "/api/v1/events", "/api/v1/roster"]

  # Amazon Data Firehose's documented address blocks per region (Firehose Developer Guide,
  # "Controlling access": the blocks it delivers from to Amazon Redshift and to Splunk). AWS
  # names no separate blocks for HTTP endpoint destinations; check the load balancer's access
  # logs after the first deliveries and set var.firehose_cidrs if they differ.
  documented_firehose_cidrs = {
    "us-east-1"      = ["52.70.63.192/27", "34.238.188.128/26", "34.238.188.192/26", "34.238.195.0/26"]
    "us-east-2"      = ["13.58.135.96/27", "18.216.68.160/27", "18.216.170.64/27", "18.216.170.96/27"]
    "us-west-1"      = ["13.57.135.192/27", "13.57.180.0/26"]
    "us-west-2"      = ["52.89.255.224/27", "34.216.24.32/27", "34.216.24.192/27", "34.216.24.224/27"]
    "ca-central-1"   = ["35.183.92.128/27", "35.183.92.64/26"]
    "eu-central-1"   = ["35.158.127.160/27", "18.194.95.192/27", "18.194.95.224/27", "18.195.48.0/27"]
    "eu-central-2"   = ["16.62.183.32/27", "16.62.183.64/26"]
    "eu-west-1"      = ["52.19.239.192/27", "34.241.197.32/27", "34.241.197.64/27", "34.241.197.96/27"]
    "eu-west-2"      = ["18.130.1.96/27", "18.130.91.0/26"]
    "eu-west-3"      = ["35.180.1.96/27", "35.180.112.0/26"]
    "eu-north-1"     = ["13.53.63.224/27", "13.53.191.0/26"]
    "eu-south-1"     = ["15.161.135.128/27", "15.161.135.192/26"]
    "eu-south-2"     = ["18.100.71.96/27", "18.100.194.0/26"]
    "ap-southeast-1" = ["13.228.64.192/27", "13.229.187.128/26"]
    "ap-southeast-2" = ["13.210.67.224/27", "13.211.12.0/26"]
    "ap-northeast-1" = ["13.113.196.224/27", "13.230.21.0/27", "13.230.21.32/27"]
    "ap-south-1"     = ["13.232.67.32/27", "13.232.67.64/26"]
  }
  firehose_cidrs = var.firehose_cidrs != null ? var.firehose_cidrs : lookup(local.documented_firehose_cidrs, data.aws_region.current.region, [])
}

# ---- load balancer --------------------------------------------------------------------------

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "MONTI load balancer"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each          = toset(var.allowed_ingress_cidrs)
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from allowed networks"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

# Firehose delivers to port 443 only; the WAF keeps these addresses to the ingest paths.
resource "aws_vpc_security_group_ingress_rule" "alb_https_firehose" {
  for_each          = var.amazon_connect_ingest ? toset(local.firehose_cidrs) : toset([])
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from Amazon Data Firehose (ingest paths only, see the WAF)"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  for_each          = toset(var.allowed_ingress_cidrs)
  security_group_id = aws_security_group.alb.id
  description       = "HTTP from allowed networks, redirected to HTTPS"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
}

resource "aws_vpc_security_group_egress_rule" "alb_to_service" {
  security_group_id            = aws_security_group.alb.id
  description                  = "To the MONTI service"
  referenced_security_group_id = var.service_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
}

resource "aws_vpc_security_group_ingress_rule" "service_from_alb" {
  security_group_id            = var.service_security_group_id
  description                  = "From the load balancer"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
}

resource "aws_s3_bucket" "alb_logs" {
  # checkov:skip=CKV_AWS_18:This bucket is the access log destination itself.
  # checkov:skip=CKV_AWS_144:Access logs are kept in one region; losing a region loses only logs.
  # checkov:skip=CKV2_AWS_62:Nothing reacts to new log objects.
  # checkov:skip=CKV_AWS_145:ALB access log delivery supports only SSE-S3, not KMS.
  bucket        = "${var.name}-alb-logs-${data.aws_caller_identity.current.account_id}"
  force_destroy = false
}

resource "aws_s3_bucket_versioning" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "alb_logs" {
  bucket                  = aws_s3_bucket.alb_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id
  rule {
    id     = "expire"
    status = "Enabled"
    filter {}
    expiration {
      days = var.log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_s3_bucket_policy" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "LoadBalancerWritesLogs"
        Effect    = "Allow"
        Principal = { AWS = data.aws_elb_service_account.current.arn }
        Action    = "s3:PutObject"
        Resource  = "${aws_s3_bucket.alb_logs.arn}/alb/AWSLogs/${data.aws_caller_identity.current.account_id}/*"
      },
      {
        Sid       = "TlsOnly"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.alb_logs.arn, "${aws_s3_bucket.alb_logs.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
}

resource "aws_lb" "this" {
  # checkov:skip=CKV_AWS_150:Deletion protection is the deletion_protection variable: envs/prod sets it, staging may be torn down.
  name                       = var.name
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  deletion_protection        = var.deletion_protection
  # Viewers hold one WebSocket for hours; the server's keepalive (10 s) keeps it busy, and the
  # long timeout covers quiet floors and clients on slow links.
  idle_timeout = 3600

  access_logs {
    bucket  = aws_s3_bucket.alb_logs.id
    prefix  = "alb"
    enabled = true
  }

  depends_on = [aws_s3_bucket_policy.alb_logs]
}

resource "aws_lb_target_group" "this" {
  name                 = var.name
  port                 = local.container_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 30

  health_check {
    path                = "/readyz"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_wafv2_web_acl" "this" {
  name  = var.name
  scope = "REGIONAL"

  default_action {
    allow {}
  }

  # The server's figures are for the metrics collector beside it (on localhost), not for the
  # internet: viewers, agents and sign-in refusals by reason.
  rule {
    name     = "no-metrics"
    priority = 5
    action {
      block {}
    }
    statement {
      byte_match_statement {
        search_string         = "/metrics"
        positional_constraint = "STARTS_WITH"
        field_to_match {
          uri_path {}
        }
        text_transformation {
          priority = 0
          type     = "LOWERCASE"
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-no-metrics"
      sampled_requests_enabled   = true
    }
  }

  # Firehose's addresses reach the ingest paths and nothing else.
  dynamic "rule" {
    for_each = var.amazon_connect_ingest && length(local.firehose_cidrs) > 0 ? [1] : []
    content {
      name     = "firehose-ingest-only"
      priority = 0
      action {
        block {}
      }
      statement {
        and_statement {
          statement {
            ip_set_reference_statement {
              arn = aws_wafv2_ip_set.firehose[0].arn
            }
          }
          statement {
            not_statement {
              statement {
                byte_match_statement {
                  search_string         = "/api/v1/ingest/amazon-connect"
                  positional_constraint = "STARTS_WITH"
                  field_to_match {
                    uri_path {}
                  }
                  text_transformation {
                    priority = 0
                    type     = "NONE"
                  }
                }
              }
            }
          }
        }
      }
      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${var.name}-firehose-ingest-only"
        sampled_requests_enabled   = true
      }
    }
  }

  rule {
    name     = "common"
    priority = 1
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesCommonRuleSet"
        vendor_name = "AWS"
        # Counted here, blocked below except on the ingest paths (batches and roster syncs
        # are far over the rule's 8 KB; MONTI limits them itself).
        rule_action_override {
          name = "SizeRestrictions_BODY"
          action_to_use {
            count {}
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "body-size-outside-ingest"
    priority = 4
    action {
      block {}
    }
    # Labelled too large by the common rule group, and on none of the ingest paths (written as
    # "not this and not that": WAF nests statements three levels deep at most).
    statement {
      and_statement {
        statement {
          label_match_statement {
            scope = "LABEL"
            key   = "awswaf:managed:aws:core-rule-set:SizeRestrictions_Body"
          }
        }
        dynamic "statement" {
          for_each = local.ingest_paths
          content {
            not_statement {
              statement {
                byte_match_statement {
                  search_string         = statement.value
                  positional_constraint = "STARTS_WITH"
                  field_to_match {
                    uri_path {}
                  }
                  text_transformation {
                    priority = 0
                    type     = "NONE"
                  }
                }
              }
            }
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-body-size"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "known-bad-inputs"
    priority = 2
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
        vendor_name = "AWS"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "anonymous-ip"
    priority = 3
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesAnonymousIpList"
        vendor_name = "AWS"
        # Hosting providers' addresses (AWS's own among them) are where sources run: the list
        # applies to everything but the ingest paths.
        scope_down_statement {
          and_statement {
            dynamic "statement" {
              for_each = local.ingest_paths
              content {
                not_statement {
                  statement {
                    byte_match_statement {
                      search_string         = statement.value
                      positional_constraint = "STARTS_WITH"
                      field_to_match {
                        uri_path {}
                      }
                      text_transformation {
                        priority = 0
                        type     = "NONE"
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-anonymous-ip"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = var.name
    sampled_requests_enabled   = true
  }
}

# ---- the Firehose access key -----------------------------------------------------------------

# In the JSON shape Firehose reads from Secrets Manager ({"api_key": ...}), so the Firehose
# stream and the service use the same secret; the service gets the api_key field.
resource "random_password" "firehose_access_key" {
  count   = var.amazon_connect_ingest ? 1 : 0
  length  = 40
  special = false
}

resource "aws_secretsmanager_secret" "firehose_access_key" {
  # checkov:skip=CKV2_AWS_57:The key is generated by Terraform; rotation is a new apply, a rolling restart and the same secret for Firehose (docs/INGEST.md).
  count                   = var.amazon_connect_ingest ? 1 : 0
  name                    = "${var.name}/firehose-access-key"
  description             = "X-Amz-Firehose-Access-Key for MONTI's Amazon Connect ingest"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "firehose_access_key" {
  count         = var.amazon_connect_ingest ? 1 : 0
  secret_id     = aws_secretsmanager_secret.firehose_access_key[0].id
  secret_string = jsonencode({ api_key = random_password.firehose_access_key[0].result })
}

locals {
  firehose_secret = var.amazon_connect_ingest ? {
    MONTI_AMAZON_CONNECT_ACCESS_KEY = "${aws_secretsmanager_secret.firehose_access_key[0].arn}:api_key::"
  } : {}
}

resource "aws_wafv2_ip_set" "firehose" {
  count              = var.amazon_connect_ingest && length(local.firehose_cidrs) > 0 ? 1 : 0
  name               = "${var.name}-firehose"
  description        = "Amazon Data Firehose delivery addresses"
  scope              = "REGIONAL"
  ip_address_version = "IPV4"
  addresses          = local.firehose_cidrs
}

resource "aws_wafv2_web_acl_association" "this" {
  resource_arn = aws_lb.this.arn
  web_acl_arn  = aws_wafv2_web_acl.this.arn
}

resource "aws_cloudwatch_log_group" "waf" {
  # WAF requires this exact name prefix.
  name              = "aws-waf-logs-${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  resource_arn            = aws_wafv2_web_acl.this.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]
}

# ---- service --------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "service" {
  name              = "/monti/${var.name}/server"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_ecs_cluster" "this" {
  name = var.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:aws:ecs:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:*"]
    }
  }
}

# The execution role pulls the image, writes logs and reads exactly the two secrets.
resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "PullImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [var.ecr_repository_arn]
  }
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions.
  }
  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.service.arn}:*"]
  }
  statement {
    sid       = "ReadSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = concat(var.secret_arns, aws_secretsmanager_secret.firehose_access_key[*].arn)
  }
  statement {
    sid       = "DecryptSecrets"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-log-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# The task role: MONTI calls no AWS API itself; the metrics collector beside it writes the
# metrics' log events (monitoring.tf).
resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
  container_definitions = jsonencode([{
    name                   = local.container_name
    image                  = "${var.ecr_repository_url}:${var.image_tag}"
    essential              = true
    readonlyRootFilesystem = true
    user                   = "10001:10001"
    portMappings           = [{ containerPort = local.container_port, protocol = "tcp" }]
    environment = [for key, value in merge({
      MONTI_SERVER_LISTEN         = "0.0.0.0:${local.container_port}"
      MONTI_LOG_JSON              = "true"
      MONTI_SIMULATOR_ENABLED     = tostring(var.simulator_enabled)
      MONTI_SERVER_TICK_MS        = "100"
      MONTI_SERVER_KEEPALIVE_SECS = "10"
      # The ALB terminates TLS; the client's address and scheme come in its forwarded headers.
      MONTI_SERVER_TRUSTED_PROXIES = join(",", var.trusted_proxy_cidrs)
    }, var.extra_environment) : { name = key, value = value }]
    secrets = [for key, arn in merge(var.secret_environment, local.firehose_secret) : { name = key, valueFrom = arn }]
    healthCheck = {
      command     = ["CMD", "/usr/local/bin/monti-server", "--healthcheck"]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 30
    }
    stopTimeout = 30
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.service.name
        awslogs-region        = data.aws_region.current.region
        awslogs-stream-prefix = "server"
      }
    }
  }, local.collector_container])
}

resource "aws_ecs_service" "this" {
  name                              = var.name
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.this.arn
  desired_count                     = var.min_tasks
  launch_type                       = "FARGATE"
  health_check_grace_period_seconds = 60
  propagate_tags                    = "SERVICE"

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.service_security_group_id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.this.arn
    container_name   = local.container_name
    container_port   = local.container_port
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  lifecycle {
    # Autoscaling owns the count after the first apply.
    ignore_changes = [desired_count]
  }

  depends_on = [aws_lb_listener.https]
}

resource "aws_appautoscaling_target" "this" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_tasks
  max_capacity       = var.max_tasks
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${var.name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  resource_id        = aws_appautoscaling_target.this.resource_id
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
