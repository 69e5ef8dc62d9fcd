# ---- Amazon Connect contact events (queues): EventBridge rule -> Firehose -> MONTI ------------
#
# Connect publishes "Amazon Connect Contact Event"s on the account's default event bus. A rule
# sends the three MONTI reads (QUEUED, CONNECTED_TO_AGENT, DISCONNECTED) to a Firehose stream
# whose HTTP endpoint destination is MONTI's /api/v1/ingest/amazon-connect/contact-events/firehose,
# with the access key of the agent event stream. Firehose delivers from AWS's published address
# blocks, which the security group and the WAF already let through to the ingest paths only; an
# EventBridge API destination would come from anywhere. Records Firehose cannot deliver after
# its retries land in an S3 bucket.

locals {
  contact_events = var.amazon_connect_ingest && var.amazon_connect_contact_events
  contact_events_pattern = {
    source        = ["aws.connect"]
    "detail-type" = ["Amazon Connect Contact Event"]
    detail = merge(
      { eventType = ["QUEUED", "CONNECTED_TO_AGENT", "DISCONNECTED"] },
      var.connect_instance_arn == null ? {} : { instanceArn = [var.connect_instance_arn] },
    )
  }
}

resource "aws_s3_bucket" "contact_events_failed" {
  # checkov:skip=CKV_AWS_18:Only Firehose writes here (failed deliveries); its own logs are in CloudWatch.
  # checkov:skip=CKV_AWS_144:Failed deliveries are kept in one region; they are re-sent or dropped within days.
  # checkov:skip=CKV2_AWS_62:Nothing reacts to new objects; an operator reads them after an alarm.
  count         = local.contact_events ? 1 : 0
  bucket        = "${var.name}-contact-events-failed-${data.aws_caller_identity.current.account_id}"
  force_destroy = false
}

resource "aws_s3_bucket_versioning" "contact_events_failed" {
  count  = local.contact_events ? 1 : 0
  bucket = aws_s3_bucket.contact_events_failed[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "contact_events_failed" {
  count  = local.contact_events ? 1 : 0
  bucket = aws_s3_bucket.contact_events_failed[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "contact_events_failed" {
  count                   = local.contact_events ? 1 : 0
  bucket                  = aws_s3_bucket.contact_events_failed[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "contact_events_failed" {
  count  = local.contact_events ? 1 : 0
  bucket = aws_s3_bucket.contact_events_failed[0].id
  rule {
    id     = "expire"
    status = "Enabled"
    filter {}
    expiration {
      days = 30
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_cloudwatch_log_group" "contact_events_firehose" {
  count             = local.contact_events ? 1 : 0
  name              = "/monti/${var.name}/contact-events-firehose"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_cloudwatch_log_stream" "contact_events_firehose" {
  count          = local.contact_events ? 1 : 0
  name           = "http-endpoint"
  log_group_name = aws_cloudwatch_log_group.contact_events_firehose[0].name
}

resource "aws_iam_role" "contact_events_firehose" {
  count = local.contact_events ? 1 : 0
  name  = "${var.name}-contact-events-firehose"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "firehose.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id } }
    }]
  })
}

resource "aws_iam_role_policy" "contact_events_firehose" {
  count = local.contact_events ? 1 : 0
  name  = "deliver"
  role  = aws_iam_role.contact_events_firehose[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect = "Allow"
        Action = ["s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:PutObject"]
        Resource = [
          aws_s3_bucket.contact_events_failed[0].arn,
          "${aws_s3_bucket.contact_events_failed[0].arn}/*",
        ]
      },
      {
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = [aws_secretsmanager_secret.firehose_access_key[0].arn]
      },
      {
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = [var.kms_key_arn]
      },
      {
        Effect   = "Allow"
        Action   = ["logs:PutLogEvents"]
        Resource = ["${aws_cloudwatch_log_group.contact_events_firehose[0].arn}:*"]
      },
    ]
  })
}

resource "aws_kinesis_firehose_delivery_stream" "contact_events" {
  count       = local.contact_events ? 1 : 0
  name        = "${var.name}-contact-events"
  destination = "http_endpoint"

  lifecycle {
    precondition {
      condition     = var.public_url != ""
      error_message = "amazon_connect_contact_events needs public_url: where Firehose delivers."
    }
  }

  server_side_encryption {
    enabled  = true
    key_type = "CUSTOMER_MANAGED_CMK"
    key_arn  = var.kms_key_arn
  }

  http_endpoint_configuration {
    url  = "${var.public_url}/api/v1/ingest/amazon-connect/contact-events/firehose"
    name = "MONTI"
    # No buffering: a contact waiting shows on the floor as soon as Firehose has it.
    buffering_size     = 1
    buffering_interval = 0
    retry_duration     = 300
    role_arn           = aws_iam_role.contact_events_firehose[0].arn
    s3_backup_mode     = "FailedDataOnly"

    secrets_manager_configuration {
      enabled    = true
      secret_arn = aws_secretsmanager_secret.firehose_access_key[0].arn
      role_arn   = aws_iam_role.contact_events_firehose[0].arn
    }

    request_configuration {
      content_encoding = "GZIP"
    }

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.contact_events_firehose[0].name
      log_stream_name = aws_cloudwatch_log_stream.contact_events_firehose[0].name
    }

    s3_configuration {
      role_arn           = aws_iam_role.contact_events_firehose[0].arn
      bucket_arn         = aws_s3_bucket.contact_events_failed[0].arn
      compression_format = "GZIP"
      kms_key_arn        = var.kms_key_arn
    }
  }
}

resource "aws_iam_role" "contact_events_rule" {
  count = local.contact_events ? 1 : 0
  name  = "${var.name}-contact-events-rule"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id } }
    }]
  })
}

resource "aws_iam_role_policy" "contact_events_rule" {
  count = local.contact_events ? 1 : 0
  name  = "put-records"
  role  = aws_iam_role.contact_events_rule[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["firehose:PutRecord", "firehose:PutRecordBatch"]
        Resource = [aws_kinesis_firehose_delivery_stream.contact_events[0].arn]
      },
      {
        Effect   = "Allow"
        Action   = ["kms:GenerateDataKey"]
        Resource = [var.kms_key_arn]
      },
    ]
  })
}

resource "aws_cloudwatch_event_rule" "contact_events" {
  count         = local.contact_events ? 1 : 0
  name          = "${var.name}-connect-contact-events"
  description   = "Amazon Connect contact events MONTI reads (queued, answered, ended), to its Firehose stream"
  event_pattern = jsonencode(local.contact_events_pattern)
}

resource "aws_cloudwatch_event_target" "contact_events" {
  count     = local.contact_events ? 1 : 0
  rule      = aws_cloudwatch_event_rule.contact_events[0].name
  target_id = "monti-firehose"
  arn       = aws_kinesis_firehose_delivery_stream.contact_events[0].arn
  role_arn  = aws_iam_role.contact_events_rule[0].arn
}
