# One complete MONTI environment: network, database, cache and service, sharing one KMS key.
# envs/staging and envs/prod call this with their sizes.

terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0, < 7.0"
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

data "aws_ecr_repository" "server" {
  name = "monti-server"
}

resource "aws_kms_key" "this" {
  description         = "MONTI ${var.name}: logs, database, cache, secrets"
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        # The alarms publish to the encrypted alarm topic.
        Sid       = "CloudWatchAlarmsPublish"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id }
        }
      },
      {
        Sid       = "CloudWatchLogsEncrypt"
        Effect    = "Allow"
        Principal = { Service = "logs.${data.aws_region.current.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:aws:logs:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:*"
          }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

module "network" {
  source             = "../network"
  name               = var.name
  cidr_block         = var.vpc_cidr
  nat_gateways       = var.nat_gateways
  availability_zones = var.availability_zones
  kms_key_arn        = aws_kms_key.this.arn
}

# The tasks' security group lives here so the database and cache can admit it by reference.
resource "aws_security_group" "service" {
  name        = "${var.name}-service"
  description = "MONTI server tasks"
  vpc_id      = module.network.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "service_https" {
  security_group_id = aws_security_group.service.id
  description       = "HTTPS to AWS APIs, the image registry and the identity provider"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "service_postgres" {
  security_group_id = aws_security_group.service.id
  description       = "PostgreSQL inside the VPC"
  cidr_ipv4         = module.network.cidr_block
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
}

resource "aws_vpc_security_group_egress_rule" "service_redis" {
  security_group_id = aws_security_group.service.id
  description       = "Redis inside the VPC"
  cidr_ipv4         = module.network.cidr_block
  ip_protocol       = "tcp"
  from_port         = 6379
  to_port           = 6379
}

module "database" {
  source                   = "../database"
  name                     = var.name
  vpc_id                   = module.network.vpc_id
  subnet_ids               = module.network.private_subnet_ids
  client_security_group_id = aws_security_group.service.id
  kms_key_arn              = aws_kms_key.this.arn
  instance_class           = var.db_instance_class
  allocated_storage_gb     = var.db_storage_gb
  multi_az                 = var.db_multi_az
  backup_retention_days    = var.db_backup_retention_days
  deletion_protection      = var.deletion_protection
}

module "cache" {
  source                   = "../cache"
  name                     = var.name
  vpc_id                   = module.network.vpc_id
  subnet_ids               = module.network.private_subnet_ids
  client_security_group_id = aws_security_group.service.id
  kms_key_arn              = aws_kms_key.this.arn
  node_type                = var.cache_node_type
  replicas                 = var.cache_replicas
}

module "service" {
  source                    = "../service"
  name                      = var.name
  vpc_id                    = module.network.vpc_id
  public_subnet_ids         = module.network.public_subnet_ids
  private_subnet_ids        = module.network.private_subnet_ids
  service_security_group_id = aws_security_group.service.id
  allowed_ingress_cidrs     = var.allowed_ingress_cidrs
  trusted_proxy_cidrs       = [module.network.cidr_block]
  certificate_arn           = var.certificate_arn
  ecr_repository_url        = data.aws_ecr_repository.server.repository_url
  ecr_repository_arn        = data.aws_ecr_repository.server.arn
  image_tag                 = var.image_tag
  kms_key_arn               = aws_kms_key.this.arn
  secret_arns               = [module.database.url_secret_arn, module.cache.url_secret_arn]
  secret_environment = {
    MONTI_DATABASE_URL = module.database.url_secret_arn
    MONTI_REDIS_URL    = module.cache.url_secret_arn
  }
  extra_environment     = var.server_environment
  simulator_enabled     = var.simulator_enabled
  cpu                   = var.task_cpu
  memory                = var.task_memory
  min_tasks             = var.min_tasks
  max_tasks             = var.max_tasks
  log_retention_days    = var.log_retention_days
  deletion_protection   = var.deletion_protection
  amazon_connect_ingest = var.amazon_connect_ingest
  firehose_cidrs        = var.firehose_cidrs

  amazon_connect_contact_events = var.amazon_connect_contact_events
  connect_instance_arn          = var.connect_instance_arn
  public_url                    = var.public_url

  alarm_emails = var.alarm_emails
}
